"""CSV (RFC 4180), written chunk by chunk; formulas neutralised, datetimes in ISO 8601."""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pacsv

from catalog.store.downloads.format import Format
from catalog.store.downloads.tables import datetimes_as_iso, neutralise_formulas, tables


def write(source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]) -> None:
    writer, schema = None, None
    options = pacsv.WriteOptions(quoting_style="needed")
    for table in tables(source, crs, dates):
        table = neutralise_formulas(datetimes_as_iso(table))
        if writer is None:
            schema = table.schema
            writer = pacsv.CSVWriter(target, schema, write_options=options)
        writer.write_table(table.cast(schema))
    if writer is not None:
        writer.close()


FORMAT = Format("csv", "CSV", "csv", "text/csv", write)
