"""Conditional requests: `If-None-Match` as RFC 9110 (§13.1.2, §8.8.3.2) defines it.

If-None-Match compares entity tags weakly: `W/"x"` and `"x"` match each other (a cache or
a proxy may have weakened the tag), `*` matches any current representation, and the
header may list several tags separated by commas (a comma may also sit inside a tag).
"""

from __future__ import annotations

import re

ENTITY_TAG = re.compile(r'(?:W/)?"([^"]*)"')


def opaque_tag(etag: str) -> str:
    """The tag without its weakness indicator: what weak comparison compares."""
    found = ENTITY_TAG.fullmatch(etag.strip())
    return found.group(1) if found else etag.strip()


def none_match(if_none_match: str, etag: str) -> bool:
    """True when `If-None-Match` holds `*` or a tag weakly equal to `etag` (a 304)."""
    if if_none_match.strip() == "*":
        return True
    wanted = opaque_tag(etag)
    return any(tag == wanted for tag in ENTITY_TAG.findall(if_none_match))
