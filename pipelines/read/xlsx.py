"""The XLSX reader: the workbook's container checked first (a zip within bounds, no macros,
no links to other workbooks, not an .xls or .ods renamed), then its first sheet read cell by
cell in openpyxl's streaming mode, within Excel's own limits.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pyarrow as pa

from core.column_names import check_header
from core.problems import Problem, Report, SubmissionRejected, reject
from pipelines import safety
from pipelines.read import STAGE
from pipelines.read.cells import cell_to_text
from pipelines.read.table import SourceTable
from pipelines.safety import UnsafeInput

MAX_XLSX_ROWS = 1_048_576  # Excel's own limit
MAX_XLSX_CELLS = 50_000_000  # cells scanned in a sheet (rows × their width)


def read_xlsx(path: Path) -> SourceTable:
    """The first sheet, cell by cell in openpyxl's streaming mode: its header is the first
    non-empty row; empty rows are skipped (their line numbers kept); a value beyond the
    header's last column is reported, not dropped."""
    _check_xlsx_container(path)
    book = _open_workbook(path)
    try:
        if not book.worksheets:
            raise reject(STAGE, "fichier-vide", f"Le classeur {path.name} n'a aucune feuille.")
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # the declared size is the file's word, not a fact
        return _read_sheet(sheet.iter_rows(values_only=True), path.name)
    finally:
        book.close()


def _check_xlsx_container(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise reject(
            STAGE,
            "xlsx-illisible",
            f"Le classeur {path.name} est au format Excel 97-2003 (.xls) : enregistrez-le au "
            "format « Classeur Excel (.xlsx) ».",
        )
    try:
        archive = safety.open_zip(path)
    except UnsafeInput as error:
        raise reject(
            STAGE,
            "xlsx-illisible",
            f"Le fichier {path.name} n'est pas un classeur Excel (.xlsx) valide : "
            "ce n'est pas une archive zip, ou elle est tronquée.",
        ) from error
    with contextlib.closing(archive):
        infos = safety.check_archive(archive, path.name, "xlsx")
        if _is_opendocument(archive):
            raise reject(
                STAGE,
                "xlsx-illisible",
                f"Le fichier {path.name} est un classeur OpenDocument (.ods) : enregistrez-le "
                "au format « Classeur Excel (.xlsx) ».",
            )
        safety.check_archive_xml(archive, infos, path.name)
        _refuse_active_content(infos, path.name)


def _refuse_active_content(infos: list[zipfile.ZipInfo], filename: str) -> None:
    """Macros and links to other workbooks: a reuser's Excel would run or follow them."""
    names = [info.filename.replace("\\", "/").lower() for info in infos]
    if any(name.endswith("vbaproject.bin") for name in names):
        raise reject(
            STAGE,
            "xlsx-macros",
            f"Le classeur {filename} contient des macros : enregistrez-le au format « Classeur "
            "Excel (.xlsx) » sans macros.",
        )
    if any(name.startswith("xl/externallinks/") for name in names):
        raise reject(
            STAGE,
            "xlsx-liens-externes",
            f"Le classeur {filename} contient des liens vers d'autres classeurs : copiez les "
            "valeurs (Collage spécial > Valeurs), supprimez les liens, puis déposez-le.",
        )


def _is_opendocument(archive: zipfile.ZipFile) -> bool:
    try:
        with archive.open("mimetype") as member:
            return b"opendocument" in member.read(200)
    except (KeyError, *safety.ZIP_ERRORS):  # no such part, or a broken one: openpyxl says
        return False


def _open_workbook(path: Path) -> Any:
    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for broken files
        raise reject(
            STAGE,
            "xlsx-illisible",
            f"Le classeur {path.name} est illisible : ce n'est pas un classeur Excel (.xlsx) "
            f"valide ({type(error).__name__}).",
        ) from error


@dataclass
class _SheetRows:
    header: list[str] | None = None
    columns: list[list[str | None]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    problems: Report = field(default_factory=Report)
    cells: int = 0


def _read_sheet(rows: Iterator[tuple[Any, ...]], filename: str) -> SourceTable:
    state = _SheetRows()
    line = 0
    try:
        for line, row in enumerate(rows, start=1):
            _bound_sheet(state, line, len(row), filename)
            _take_row(state, line, row, filename)
    except SubmissionRejected:
        raise
    except Exception as error:  # a broken part of the sheet's XML, a bad shared string…
        raise reject(
            STAGE,
            "xlsx-illisible",
            f"Le classeur {filename} est illisible après la ligne {line} ({type(error).__name__}).",
            row=line + 1,
        ) from error
    if state.header is None:
        raise reject(STAGE, "fichier-vide", f"Le classeur {filename} est vide.")
    arrays = [pa.array(values, type=pa.string()) for values in state.columns]
    table = pa.Table.from_arrays(arrays, names=state.header)
    source = SourceTable(table=table, source_format="xlsx", problems=state.problems)
    source.row_numbers = np.asarray(state.lines, dtype=np.int64)
    return source


def _bound_sheet(state: _SheetRows, line: int, width: int, filename: str) -> None:
    state.cells += width
    if line > MAX_XLSX_ROWS:
        raise reject(
            STAGE,
            "trop-de-lignes",
            f"La feuille du classeur {filename} dépasse {MAX_XLSX_ROWS} lignes, la limite "
            "d'Excel : le fichier est corrompu ou forgé.",
        )
    if state.cells > MAX_XLSX_CELLS:
        raise reject(
            STAGE,
            "trop-de-cellules",
            f"La feuille du classeur {filename} dépasse {MAX_XLSX_CELLS} cellules (à la "
            f"ligne {line}) : découpez-la ou déposez un CSV.",
            row=line,
        )


def _take_row(state: _SheetRows, line: int, row: tuple[Any, ...], filename: str) -> None:
    texts = [cell_to_text(value) for value in row]
    if all(text is None for text in texts):
        return  # an empty row (often only formatted): skipped, as spreadsheets show it
    if state.header is None:
        state.header = check_header(texts, filename)
        state.columns = [[] for _ in state.header]
        return
    width = len(state.header)
    extra = sum(text is not None for text in texts[width:])
    if extra:
        state.problems.add(
            Problem(
                "structure",
                "cellules-en-trop",
                f"{extra} cellule(s) remplie(s) au-delà des {width} colonnes de l'en-tête.",
                row=line,
            )
        )
    if all(text is None for text in texts[:width]):
        return
    texts += [None] * (width - len(texts))
    for column, text in zip(state.columns, texts, strict=False):
        column.append(text)
    state.lines.append(line)


class XlsxReader:
    """Excel workbooks (`.xlsx`): the first sheet."""

    name = "xlsx"

    def read(self, path: Path, declared_crs: int | None) -> SourceTable:
        return read_xlsx(path)
