"""XLSX: a `donnees` sheet written row by row (write-only workbook), continued in
`donnees_2`… past Excel's 1,048,576 rows, and a `licence` sheet."""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from catalog.store.downloads.format import Format
from catalog.store.downloads.tables import neutralise_formulas, tables

SHEET_ROWS = 1_048_576  # Excel's limit, its header row included


def write(source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]) -> None:
    """Rows in `donnees`, then `donnees_2`… past a sheet's 1,048,576 rows (header included)."""
    book = Workbook(write_only=True)
    sheets, sheet, header, room = 0, None, None, 0
    for table in tables(source, crs, dates):
        table = neutralise_formulas(table)
        header = header or table.column_names
        for row in table.to_pylist():
            if room == 0:
                sheets += 1
                sheet = book.create_sheet("donnees" if sheets == 1 else f"donnees_{sheets}")
                sheet.append(header)
                room = SHEET_ROWS - 1
            sheet.append([_xlsx_cell(v) for v in row.values()])  # type: ignore[union-attr]
            room -= 1
    if sheet is None:  # no rows: the header alone
        empty = book.create_sheet("donnees")
        if header:
            empty.append(header)
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
