"""A CSV's dialect: its delimiter (the one giving the most columns, consistently, over the
first lines), whether its decimals are written with a comma, and how a French message names
them. A header split by one delimiter and rows by another is refused at once.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from core.problems import reject
from pipelines.read import STAGE
from pipelines.read.text import SNIFF_BYTES

DELIMITERS = (";", ",", "\t", "|")
DELIMITER_NAMES = {";": "point-virgule", ",": "virgule", "\t": "tabulation", "|": "barre verticale"}


DELIMITER_PLURALS = {
    ";": "points-virgules",
    ",": "virgules",
    "\t": "tabulations",
    "|": "barres verticales",
}


@dataclass
class CsvDialect:
    encoding: str
    delimiter: str
    decimal_comma: bool

    def describe(self) -> str:
        decimal = "virgule" if self.decimal_comma else "point"
        return (
            f"{self.encoding}, séparateur {DELIMITER_NAMES[self.delimiter]}, "
            f"décimales à la {decimal}"
        )


def _sample_lines(text: str) -> list[str]:
    lines = text.splitlines()[:50]
    if len(text) >= SNIFF_BYTES // 2 and len(lines) > 1:
        lines = lines[:-1]  # the last sampled line may be cut
    return lines


def _widths(lines: list[str], delimiter: str) -> list[int]:
    try:
        return [len(row) for row in csv.reader(lines, delimiter=delimiter) if row]
    except csv.Error:  # a field longer than the csv module takes: not this delimiter
        return []


def detect_delimiter(text: str) -> str:
    """The delimiter giving the most columns, consistently, over the first lines."""
    lines = _sample_lines(text)
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        widths = _widths(lines, delimiter)
        if not widths:
            continue
        header_width = widths[0]
        consistent = sum(width == header_width for width in widths)
        score = (consistent if header_width > 1 else 0, header_width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def refuse_mixed_delimiters(text: str, delimiter: str, filename: str) -> None:
    """The header split by one delimiter and most rows by another: say so at once, rather
    than one « missing cells » problem per row."""
    lines = _sample_lines(text)
    header = _widths(lines[:1], delimiter)
    if len(lines) < 3 or not header or header[0] < 2:
        return
    rows = lines[1:]
    own = _widths(rows, delimiter)
    narrow = sum(width == 1 for width in own)
    if narrow * 2 <= len(own):
        return
    for other in DELIMITERS:
        if other == delimiter:
            continue
        widths = _widths(rows, other)
        if widths and sum(width == header[0] for width in widths) * 2 > len(widths):
            raise reject(
                STAGE,
                "separateurs-melanges",
                f"L'en-tête du fichier {filename} est séparé par des "
                f"{DELIMITER_PLURALS[delimiter]} mais ses lignes par des "
                f"{DELIMITER_PLURALS[other]} (dès la ligne 2) : utilisez un seul séparateur.",
                row=2,
            )


def delimiter_fitting(text: str, width: int, delimiter: str) -> str | None:
    """Another delimiter that splits this row into exactly the header's width."""
    if width < 2:
        return None
    for other in DELIMITERS:
        if other != delimiter and _widths([text], other) == [width]:
            return other
    return None


def uses_decimal_comma(table: pa.Table, delimiter: str) -> bool:
    if delimiter == "," or table.num_rows == 0:
        return False
    head = table.slice(0, 1000)
    for column in head.columns:
        if pc.any(pc.match_substring_regex(column, r"^-?\d+,\d+$")).as_py():
            return True
    return False
