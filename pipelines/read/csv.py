"""The CSV reader: sniffed (`text`, `dialect`), then parsed by Arrow, every cell as text.

Rows of the wrong width are set aside and reported with their line (re-read serially when
there are any, so that each keeps its number); a quote never closed is refused rather than
publishing the rest of the file as one value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from core.csv_head import DELIMITER_PLURALS, CsvHead, delimiter_fitting, refuse_binary, sniff
from core.problems import Problem, SubmissionRejected, reject
from pipelines.read import STAGE
from pipelines.read.dialect import CsvDialect, uses_decimal_comma
from pipelines.read.table import SourceTable
from pipelines.read.text import TextScan, read_sample, scan_text


def read_csv(path: Path) -> SourceTable:
    sample = read_sample(path)
    refuse_binary(sample, path.name)  # before the scan: a binary file has no lines
    scan = scan_text(path)
    head = _sniff(sample, scan, path.name)
    encoding, delimiter, header = head.encoding, head.delimiter, head.header
    block = _block_size(scan.longest_line)
    table, skipped = _parse_csv(path, encoding, delimiter, header, block_size=block)
    if skipped:
        # Rare: re-read serially so that every rejected row has its line number, letting
        # quoted values span lines when the file quotes at all.
        table, skipped = _parse_csv(
            path, encoding, delimiter, header, head.quoted, serial=True, block_size=block
        )
    _refuse_unclosed_quote(table, scan, path.name)
    dialect = CsvDialect(encoding, delimiter, uses_decimal_comma(table, delimiter))
    source = SourceTable(table=table, source_format="csv", dialect=dialect)
    if skipped:
        _account_for_skipped_rows(source, skipped, delimiter)
    return source


def _sniff(sample: bytes, scan: TextScan, filename: str) -> CsvHead:
    """Encoding, delimiter and header of a text file, refusing what is not a CSV; and
    whether it quotes values at all (`core.csv_head`, the encoding from the whole file)."""
    return sniff(sample, scan.utf8, filename, scan.invalid_line, scan.invalid_byte)


def _block_size(longest_line: int) -> int:
    """Arrow's block must hold the longest row."""
    return max(1 << 20, 1 << (2 * longest_line + 64).bit_length())


def _parse_csv(
    path: Path,
    encoding: str,
    delimiter: str,
    header: list[str],
    newlines_in_values: bool = False,
    serial: bool = False,
    block_size: int = 1 << 20,
) -> tuple[pa.Table, list[pacsv.InvalidRow]]:
    skipped: list[pacsv.InvalidRow] = []

    def keep_aside(row: pacsv.InvalidRow) -> str:
        skipped.append(row)
        return "skip"

    arrow_encoding = "utf8" if encoding.startswith("utf-8") else encoding
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                encoding=arrow_encoding,
                column_names=header,
                skip_rows=1,
                use_threads=serial is False,
                block_size=block_size,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter,
                newlines_in_values=newlines_in_values,
                ignore_empty_lines=False,
                invalid_row_handler=keep_aside,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in header},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as error:
        if "Could not skip initial" in str(error):  # the header is the whole file
            return pa.table({name: pa.array([], pa.string()) for name in header}), skipped
        raise _csv_error(path.name, error) from error
    # each untrimmed column let go as soon as it is trimmed: the read's peak holds one
    # table and one column, not two tables (issue #20, 10M-row files)
    columns = []
    while table.num_columns:
        columns.append(_trimmed(table.column(0)))
        table = table.remove_column(0)
    return pa.Table.from_arrays(columns, names=header), skipped


def _trimmed(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Cells without their surrounding spaces; a cell of spaces only is empty (null), as in
    a spreadsheet (found by the property tests: it used to stay an empty string)."""
    if not any(_may_have_edge_spaces(chunk) for chunk in column.chunks):
        return column  # most columns: nothing to trim, nothing copied
    trimmed = pc.utf8_trim_whitespace(column)
    same = pc.all(pc.equal(pc.binary_length(trimmed), pc.binary_length(column))).as_py()
    if same is not False:  # nothing to trim (most files): the column itself, no copy kept
        return column
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


_ASCII_SPACES = np.array([0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20], dtype=np.uint8)


def _may_have_edge_spaces(chunk: pa.Array) -> bool:
    """Whether any cell may start or end with white space, from the first and last bytes of
    each cell on Arrow's buffers: a column of numbers, codes or French words is let go
    without running the trim, its comparison and its copy. Conservative: ASCII spaces, and
    any character of two bytes led by 0xC2 (U+0085, U+00A0) or of three or four bytes (the
    other Unicode spaces); Latin letters (é, œ: led by 0xC3 to 0xDF) are not spaces."""
    if len(chunk) == 0:
        return False
    _validity, offsets_buffer, data_buffer = chunk.buffers()
    if data_buffer is None or data_buffer.size == 0:
        return False
    width = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=width)[
        chunk.offset : chunk.offset + len(chunk) + 1
    ]
    data = np.frombuffer(data_buffer, dtype=np.uint8)
    filled = offsets[1:] > offsets[:-1]  # a null or empty cell has no byte
    starts, ends = offsets[:-1][filled], offsets[1:][filled]
    first, last = data[starts], data[ends - 1]
    before_last = data[np.maximum(ends - 2, starts)]
    first_space = np.isin(first, _ASCII_SPACES) | (first == 0xC2) | (first >= 0xE0)
    latin_last = (before_last >= 0xC3) & (before_last <= 0xDF)
    last_space = np.where(last < 0x80, np.isin(last, _ASCII_SPACES), ~latin_last)
    return bool(first_space.any() or last_space.any())


def _csv_error(filename: str, error: pa.ArrowInvalid) -> SubmissionRejected:
    if "straddl" in str(error):
        return reject(
            STAGE,
            "guillemet-non-ferme",
            f"Dans le fichier {filename}, une valeur entre guillemets s'étend sur des "
            "milliers de lignes : un guillemet n'est probablement jamais refermé.",
        )
    return reject(
        STAGE, "csv-illisible", f"Le fichier {filename} n'est pas un CSV lisible : {error}"
    )


def _refuse_unclosed_quote(table: pa.Table, scan: TextScan, filename: str) -> None:
    """A quote opened and never closed swallows the rest of the file into one cell of the
    last row: refuse rather than publish the following lines as one value."""
    if scan.quotes % 2 == 0 or table.num_rows == 0:
        return
    last = table.slice(table.num_rows - 1)
    for name in table.column_names:
        value = last.column(name)[0].as_py()
        if value is not None and ("\n" in value or "\r" in value):
            line = scan.newlines - value.count("\n") + 1
            raise reject(
                STAGE,
                "guillemet-non-ferme",
                f"Un guillemet ouvert dans la colonne « {name} » n'est jamais refermé : toute "
                f"la suite du fichier {filename} (à partir de la ligne {line}) serait lue "
                "comme une seule valeur.",
                row=line,
                column=name,
            )


def _account_for_skipped_rows(
    source: SourceTable, skipped: list[pacsv.InvalidRow], delimiter: str
) -> None:
    """Report rows of the wrong width and keep the line numbers of the other rows right."""
    width = source.table.num_columns
    numbers = [row.number for row in skipped]
    for row in skipped:
        rule, message = _skipped_row_problem(row, width, delimiter)
        # The row's text is not repeated: it may hold personal data.
        source.problems.add(Problem("structure", rule, message, row=row.number))
    if all(number is not None for number in numbers):
        total = source.table.num_rows + len(skipped)
        source.row_numbers = np.setdiff1d(np.arange(2, total + 2), np.array(numbers))


def _skipped_row_problem(row: pacsv.InvalidRow, width: int, delimiter: str) -> tuple[str, str]:
    if row.text.strip() == "":
        return "ligne-vide", "Ligne vide."
    other = delimiter_fitting(row.text, width, delimiter)
    if other is not None:
        return (
            "separateur-different",
            f"Cette ligne est séparée par des {DELIMITER_PLURALS[other]}, l'en-tête par des "
            f"{DELIMITER_PLURALS[delimiter]}.",
        )
    if row.actual_columns > width:
        return "cellules-en-trop", f"{row.actual_columns} cellules au lieu de {width} (en-tête)."
    return "cellules-manquantes", f"{row.actual_columns} cellule(s) au lieu de {width} (en-tête)."


class CsvReader:
    """CSV files (`.csv`, `.txt`): no geometry of their own (positions in columns are
    found later, by `pipelines.coordinates`)."""

    name = "csv"

    def read(self, path: Path, declared_crs: int | None) -> SourceTable:
        return read_csv(path)
