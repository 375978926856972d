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
        raise ProducerYamlError(*french_yaml_error(error, content)) from None
    except CONSTRUCTION_ERRORS as error:
        # PyYAML's constructors raise these on values it recognises but cannot build (found
        # by fuzzing): a date 2026-90-01, a broken !!timestamp, 5,000 digits, deep nesting.
        reason = (
            "valeur illisible : une date impossible, un nombre démesuré ou une imbrication "
            "trop profonde ; corrigez la valeur ou écrivez-la entre guillemets "
            f"({type(error).__name__} : {short_error(error)})"
        )
        raise ProducerYamlError(reason) from None


class ProducerYamlError(yaml.YAMLError):
    """YAML a producer wrote that does not parse: why, in French, and where (line, from 1)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


# PyYAML's words for the usual mistakes -> what a producer should do, in French.
_YAML_PROBLEMS = (
    ("flow sequence", "une liste ouverte par « [ » n'est pas refermée par « ] »"),
    ("flow mapping", "un dictionnaire ouvert par « { » n'est pas refermé par « } »"),
    (
        "mapping values are not allowed",
        "un « : » inattendu (une valeur qui contient « : » s'écrit entre guillemets, "
        "ou l'indentation est décalée)",
    ),
    ("'\\t'", "une tabulation : indentez avec des espaces"),
    ("quoted scalar", "des guillemets ouverts ne sont jamais refermés"),
    ("could not find expected ':'", "une ligne sans « : » (chaque ligne s'écrit « clé: valeur »)"),
    ("block end", "l'indentation est incohérente (alignez les clés d'un même niveau)"),
    (
        "did not find expected key",
        "l'indentation est incohérente (alignez les clés d'un même niveau)",
    ),
    (
        "cannot start any token",
        "un caractère qui ne peut pas commencer une valeur : écrivez-la entre guillemets",
    ),
    ("another document", "plusieurs documents (« --- ») : un seul est attendu"),
    ("could not determine a constructor", "une étiquette YAML (« !! ») non acceptée"),
    ("special characters are not allowed", "un caractère de contrôle (invisible) : retirez-le"),
)


def french_yaml_error(error: yaml.YAMLError, content: str | bytes) -> tuple[str, int | None]:
    """PyYAML's error said in French, with its line and column; and the line (from 1)."""
    if isinstance(error, yaml.reader.ReaderError) and isinstance(error.character, int):
        line = _line_of(content, error.position)
        if error.encoding != "unicode":
            return (
                f"ligne {line} : l'octet 0x{error.character:02X} n'est pas de l'UTF-8 ; "
                "enregistrez le fichier en UTF-8",
                line,
            )
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    english = " ".join(str(getattr(error, part, "") or "") for part in ("context", "problem"))
    if isinstance(error, yaml.reader.ReaderError):
        english, line = error.reason, _line_of(content, error.position)
    said = next((french for words, french in _YAML_PROBLEMS if words in english), None)
    if said is None:
        said = f"syntaxe YAML incorrecte ({short_error(yaml.YAMLError(english.strip()))})"
    where = f"ligne {line}" + (f", colonne {mark.column + 1}" if mark is not None else "")
    return (f"{where} : {said}" if line else said), line


def _line_of(content: str | bytes, position: int) -> int:
    newline = b"\n" if isinstance(content, bytes) else "\n"
    return content[:position].count(newline) + 1  # type: ignore[arg-type]


def short_error(error: Exception) -> str:
    """PyYAML's message, without the excerpt of the input beyond a few characters."""
    text = str(error)
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS] + "…"
