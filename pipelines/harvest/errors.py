"""The one failure of a fetch: `SourceError`, in French, with its URL and rule.

Whatever goes wrong (an unreachable server, a refused request, content that is not data,
a broken paging), the harvest stops with a `SourceError` and no file: a partial download
is never handed on.
"""

from __future__ import annotations


class SourceError(Exception):
    """The source could not be fetched: what happened, at which URL, under which rule."""

    def __init__(self, rule: str, message: str, url: str) -> None:
        self.rule = rule
        self.message = message
        self.url = url
        super().__init__(f"{message} — adresse : {_short(url)} (règle « {rule} »)")


def _short(url: str) -> str:
    return url if len(url) <= 300 else url[:297] + "…"
