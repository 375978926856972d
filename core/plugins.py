"""Implementations named by a dotted path, as pygeoapi's plugin registry names them: every
registry of the platform (store backends, input formats, source types, download formats,
lifecycle rules) says `"package.module:attribute"` and the implementation is imported
only when it is first needed."""

from __future__ import annotations

import importlib
from typing import Any


def load(entry: str) -> Any:
    """The attribute that `"package.module:attribute"` names; ValueError when malformed."""
    module, separator, attribute = entry.partition(":")
    if not separator or not module or not attribute:
        raise ValueError(f"« {entry} » : attendu « paquet.module:attribut »")
    return getattr(importlib.import_module(module), attribute)
