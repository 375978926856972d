"""The input formats' readers, in pygeoapi's shape: a small Protocol and one table.

The table is `core.input_formats.DESCRIPTIONS`: each input format's description names its
reader by a dotted path (`"pipelines.read.csv:CsvReader"`), loaded here the first time a
file of that format is read. A reader is any class whose instances answer `InputFormat`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Protocol

from core.input_formats import INPUT_FORMATS
from core.plugins import load
from pipelines.read.table import SourceTable


class InputFormat(Protocol):
    """One input format's reader."""

    name: str  # as in core.input_formats

    def read(self, path: Path, declared_crs: int | None) -> SourceTable:
        """The file's rows as text cells (and its geometries, in `declared_crs` when the
        file does not name its own); `SubmissionRejected` in French when it cannot be
        read, or a problem per row it could not take in `SourceTable.problems`."""
        ...


@cache
def reader_for(name: str) -> InputFormat:
    """The reader of the input format `name` (a key of `core.input_formats.INPUT_FORMATS`)."""
    reader: InputFormat = load(INPUT_FORMATS[name].reader)()
    if reader.name != name:
        raise ValueError(f"{INPUT_FORMATS[name].reader} reads {reader.name}, not {name}")
    return reader
