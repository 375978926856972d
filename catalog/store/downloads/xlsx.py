"""XLSX: a `donnees` sheet written row by row (write-only workbook), and a `licence` sheet."""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from catalog.store.downloads.format import Format
from catalog.store.downloads.tables import neutralise_formulas, tables


def write(source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]) -> None:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("donnees")
    header_written = False
    for table in tables(source, crs, dates):
        table = neutralise_formulas(table)
        if not header_written:
            sheet.append(table.column_names)
            header_written = True
        for row in table.to_pylist():
            sheet.append([_xlsx_cell(v) for v in row.values()])
    book.create_sheet("licence").append([notice])
    book.save(target)


def _xlsx_cell(value: object) -> object:
    """Control characters are not allowed in XLSX cells: they are dropped."""
    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


FORMAT = Format(
    "xlsx",
    "Excel (XLSX)",
    "xlsx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    write,
)
