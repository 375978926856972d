"""JSON: an array of objects, one per row, dates in ISO 8601 as the rows API gives them."""

from __future__ import annotations

import json
from pathlib import Path

from catalog.store.downloads.format import Format
from catalog.store.downloads.tables import tables


def write(source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]) -> None:
    with target.open("w", encoding="utf-8") as out:
        out.write("[")
        first = True
        for table in tables(source, crs, dates):
            for row in table.to_pylist():
                out.write(
                    ("" if first else ",\n")
                    + json.dumps(row, ensure_ascii=False, default=_json_value)
                )
                first = False
        out.write("]\n")


def _json_value(value: object) -> object:
    """Dates and datetimes in ISO 8601 (2016-03-22T10:05:00), as the rows API gives them."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


FORMAT = Format("json", "JSON", "json", "application/json", write)
