"""The OGC API's OpenAPI document, made self-contained.

pygeoapi's document points at OGC definitions on remote servers (schemas.opengis.net, the
OGC's GitHub repositories): an offline client, or a validator without network, cannot
resolve them. Each such `$ref` is pointed at `#/components/...` instead, and the
components it needs (with theirs, transitively) are copied into the document from a copy
packaged here (`openapi_bundle/ogcapi-components.json`: OGC API – Features Part 1's
components and OGC API – Records' `q` and `sortby` parameters, under the OGC licence,
`openapi_bundle/LICENSE-OGC.txt`). Nothing is fetched, at run time or in the tests.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import re
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger(__name__)
BUNDLE = Path(__file__).parent / "openapi_bundle" / "ogcapi-components.json"
# a remote file that holds one component: …/parameters/q.yaml, …/responses/NotFound.yaml
COMPONENT_FILE = re.compile(r"/(parameters|responses|schemas)/([A-Za-z0-9._-]+)\.ya?ml$")


@functools.cache
def _bundle() -> dict[str, dict[str, Any]]:
    return json.loads(BUNDLE.read_text("utf-8"))["components"]


def local_reference(reference: str) -> str | None:
    """The `#/components/<kind>/<name>` a remote `$ref` stands for (None: unknown)."""
    if reference.startswith("#"):
        return reference
    _, _, fragment = reference.partition("#")
    if fragment.startswith("/components/"):
        wanted = "#" + fragment
    else:
        found = COMPONENT_FILE.search(reference)
        if found is None:
            return None
        wanted = f"#/components/{found.group(1)}/{found.group(2)}"
    kind, name = wanted.split("/")[2:4]
    return wanted if name in _bundle().get(kind, {}) else None


def self_contained(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with every remote `$ref` made local and the components they name added
    (a component of pygeoapi's own is never replaced)."""
    document = _localised(document)
    components = document.setdefault("components", {})
    pending = _references(document)
    while pending:
        reference = pending.pop()
        kind, name = reference.split("/")[2:4]
        if name in components.get(kind, {}):
            continue
        added = _bundle().get(kind, {}).get(name)
        if added is None:
            LOGGER.warning("OpenAPI : référence %s sans définition", reference)
            continue
        added = _localised(copy.deepcopy(added))
        components.setdefault(kind, {})[name] = added
        pending |= _references(added)
    return document


def _localised(node: Any) -> Any:
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
                local = local_reference(value)
                if local is None:
                    LOGGER.warning("OpenAPI : référence distante inconnue %s", value)
                result[key] = local or value
            else:
                result[key] = _localised(value)
        return result
    if isinstance(node, list):
        return [_localised(value) for value in node]
    return node


def _references(node: Any) -> set[str]:
    """The `#/components/…` references inside `node`."""
    if isinstance(node, dict):
        found = {
            value
            for key, value in node.items()
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/")
        }
        for value in node.values():
            found |= _references(value)
        return found
    if isinstance(node, list):
        return set().union(*(_references(value) for value in node)) if node else set()
    return set()
