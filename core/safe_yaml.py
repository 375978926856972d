"""YAML written by producers (metadata.yaml, a schema in YAML): read without aliases.

PyYAML's `safe_load` refuses arbitrary objects but still expands aliases: a 356-byte file
of nested `&a [*b, *b, …]` becomes millions of nodes (the "billion laughs"), freezing the
process and filling its memory. Producers never need anchors: a file that uses one is
refused at once, before anything is expanded. Its size is bounded first, and errors quote
at most a short excerpt of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_PRODUCER_YAML_BYTES = 256 * 1024  # a metadata file is a few kilobytes
MAX_ERROR_CHARS = 300


CONSTRUCTION_ERRORS = (ValueError, TypeError, AttributeError, OverflowError, RecursionError)


class UnsafeYaml(ValueError):
    """Producer YAML the platform will not read; the message is in French."""


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that stops at the first alias, before composing anything from it."""

    def compose_node(self, parent: Any, index: Any) -> Any:  # noqa: D102 (PyYAML's hook)
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            line = event.start_mark.line + 1 if event.start_mark else None
            where = f" (ligne {line})" if line else ""
            raise UnsafeYaml(
                f"Les alias YAML (« *{event.anchor} »){where} ne sont pas acceptés : écrivez "
                "chaque valeur en entier."
            )
        return super().compose_node(parent, index)


def read_producer_yaml(path: Path) -> Any:
    """A producer's YAML file, its size checked before it is read."""
    size = path.stat().st_size
    if size > MAX_PRODUCER_YAML_BYTES:
        raise _too_large(path.name, size)
    return load_producer_yaml(path.read_bytes(), path.name)


def _too_large(name: str, size: int) -> UnsafeYaml:
    return UnsafeYaml(
        f"Le fichier {name} fait {size // 1024} Kio : {MAX_PRODUCER_YAML_BYTES // 1024} Kio au "
        "plus sont acceptés."
    )


def load_producer_yaml(content: str | bytes, name: str) -> Any:
    """The document, or UnsafeYaml (size, alias) / yaml.YAMLError (syntax, shortened)."""
    size = len(content.encode("utf-8") if isinstance(content, str) else content)
    if size > MAX_PRODUCER_YAML_BYTES:
        raise _too_large(name, size)
    try:
        return yaml.load(content, Loader=_NoAliasLoader)  # noqa: S506 (a SafeLoader subclass)
    except UnsafeYaml:
        raise
    except yaml.YAMLError as error:
        raise yaml.YAMLError(short_error(error)) from None
    except CONSTRUCTION_ERRORS as error:
        # PyYAML's constructors raise these on values it recognises but cannot build (found
        # by fuzzing): a date 2026-90-01, a broken !!timestamp, 5,000 digits, deep nesting.
        reason = f"valeur illisible ({type(error).__name__}) : {short_error(error)}"
        raise yaml.YAMLError(reason) from None


def short_error(error: Exception) -> str:
    """PyYAML's message, without the excerpt of the input beyond a few characters."""
    text = str(error)
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "…"
