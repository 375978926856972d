"""Read stage: turn a commune's data file into a table of text cells plus geometries.

Every format ends as the same `SourceTable`: attribute values as Arrow string
columns (empty cells are null), so the structure check applies one set of
vectorised rules whatever the input, and geometries as a GeoSeries in the
file's own CRS.

Nothing a commune uploads may crash, hang or half-read: each reader bounds what it
reads (sizes, lines, columns, rows, archive members; `pipelines.safety`), refuses what
it cannot read with a French `SubmissionRejected` naming the rule (and the line or the
column where there is one), and never extracts or writes anything outside a temporary
folder of its own. Invalid geometries are refused, not repaired: a repaired polygon can
change type or shape, and what is published must be what the commune validated.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import logging
import os
import re
import sqlite3
import tempfile
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.request import pathname2url

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyogrio
import pyogrio.raw
import shapely
from pyproj import CRS, Transformer

from core.problems import Problem, Report, SubmissionRejected, reject
from pipelines import safety
from pipelines.metadata import ACCEPTED_CRS, accepted_crs_list, crs_code
from pipelines.mojibake import repair_mojibake
from pipelines.safety import UnsafeInput

LOGGER = logging.getLogger(__name__)

STAGE = "lecture"

FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".geojson": "geojson",
    ".json": "geojson",
    ".zip": "shapefile",
    ".gpkg": "gpkg",
    ".kml": "kml",
    ".gml": "gml",
}
GEOGRAPHIC_FORMATS = {"geojson", "shapefile", "gpkg", "kml", "gml"}
FORMAT_LABELS = {
    "csv": "CSV",
    "xlsx": "classeur XLSX",
    "geojson": "GeoJSON",
    "shapefile": "Shapefile zippé",
    "gpkg": "GeoPackage",
    "kml": "KML",
    "gml": "GML",
}
DELIMITERS = (";", ",", "\t", "|")
DELIMITER_NAMES = {";": "point-virgule", ",": "virgule", "\t": "tabulation", "|": "barre verticale"}
DELIMITER_PLURALS = {
    ";": "points-virgules",
    ",": "virgules",
    "\t": "tabulations",
    "|": "barres verticales",
}
SNIFF_BYTES = 256 * 1024
SCAN_CHUNK = 8 * 1024 * 1024

MAX_COLUMNS = 1000
MAX_COLUMN_NAME = 255
MAX_LINE_BYTES = 8 * 1024 * 1024  # one physical line of a CSV
MAX_XLSX_ROWS = 1_048_576  # Excel's own limit
MAX_XLSX_CELLS = 50_000_000  # cells scanned in a sheet (rows × their width)
MAX_LISTED_GEOMETRY_PROBLEMS = 1000
WORK_PREFIX = "opendata-lecture-"

# Where the platform's data lie: the metropolis (4.68–5.07 E, 45.55–45.95 N) and about
# 25 km around it, in WGS 84. Used only to recognise coordinates given in the wrong order
# or the wrong CRS, never to refuse data that are simply elsewhere.
LYON_WINDOW = (4.35, 45.35, 5.40, 46.15)
GEOGRAPHIC_CRS = {4326, 4171}
PROJECTED_CRS = {2154, 3946}
MOSTLY = 0.9

# Files that are not text, recognised by their first bytes.
SIGNATURES = (
    (b"PK\x03\x04", "une archive zip (ou un classeur XLSX/ODS renommé)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "un classeur Excel 97-2003 (.xls)"),
    (b"%PDF", "un document PDF"),
    (b"\x89PNG", "une image PNG"),
    (b"\xff\xd8\xff", "une image JPEG"),
    (b"GIF8", "une image GIF"),
    (b"SQLite format 3\x00", "une base SQLite (GeoPackage ?)"),
    (b"\x1f\x8b", "un fichier compressé gzip"),
    (b"7z\xbc\xaf\x27\x1c", "une archive 7z"),
    (b"Rar!\x1a\x07", "une archive RAR"),
    (b"\x00\x00\x27\x0a", "un fichier .shp"),
    (b"{\\rtf", "un document RTF"),
)
WIDE_ENCODINGS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
MARKUP_PREFIXES = {
    "<!doctype html": "une page HTML",
    "<html": "une page HTML",
    "<?xml": "un document XML",
    "<kml": "un document KML",
    "<svg": "une image SVG",
}
IDENTIFIER_NAME = re.compile(r"^(id|identifiant|gid|objectid|ogc_fid)$|^id[_-]|[_-]id$", re.I)
JSON_START = re.compile(r'^\s*[\[{]\s*["\[{]')
UTF8_FRENCH = re.compile(rb"\xc3[\x80-\xbf]|\xc2[\xa0-\xbf]|\xe2\x82\xac")
# Zero-width (non-)joiners are written in some national schemas' own field names (CNIG).
JOINERS = {"\u200c", "\u200d"}
CONTROL_CHARACTERS = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")


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


@dataclass
class SourceTable:
    """A submission's content: text cells, optional geometries, and where rows come from."""

    table: pa.Table
    source_format: str
    geometry: gpd.GeoSeries | None = None
    crs: int | None = None
    dialect: CsvDialect | None = None
    row_numbers: np.ndarray | None = None  # line of each row in the file, when not index + 2
    problems: Report = field(default_factory=Report)  # rows the reader could not take

    @property
    def is_geographic(self) -> bool:
        return self.geometry is not None

    def feature(self, index: int) -> str | None:
        """How a problem names a row of a geographic file: its feature, with its identifier
        where the file has one ("objet n° 3 (id_banc 12)"); None for a table's line."""
        if self.source_format not in GEOGRAPHIC_FORMATS:
            return None
        label = f"objet n° {index + 1}"
        name = self.identifier_column
        value = None if name is None else self.table.column(name)[index].as_py()
        return label if value is None else f"{label} ({name} {value})"

    @property
    def identifier_column(self) -> str | None:
        return next((n for n in self.table.column_names if IDENTIFIER_NAME.search(n)), None)

    def row_number(self, index: np.ndarray) -> np.ndarray:
        """Line number in the file (header = 1) of the rows at these positions."""
        if self.row_numbers is None:
            return np.asarray(index) + 2
        return self.row_numbers[np.asarray(index)]


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise reject(
            STAGE,
            "format-non-accepte",
            f"Format de fichier « {path.suffix or path.name} » non accepté. Formats acceptés : "
            "CSV, XLSX, GeoJSON, Shapefile zippé (.zip), GeoPackage (.gpkg), KML (.kml), "
            "GML (.gml).",
        )
    return fmt


def read_source(path: Path, declared_crs: int | None = None) -> SourceTable:
    """Read a data file; raise SubmissionRejected when it cannot be read at all."""
    if not path.is_file():
        raise reject(STAGE, "fichier-absent", f"Fichier de données introuvable : {path.name}")
    if path.stat().st_size == 0:
        raise reject(STAGE, "fichier-vide", f"Le fichier {path.name} est vide.")
    fmt = detect_format(path)
    source = _read_guarded(path, fmt, declared_crs)
    source.table = repair_mojibake(source.table, source.problems, source.row_number)
    if source.table.num_rows == 0:
        if not source.problems.valid:
            raise SubmissionRejected(source.problems)  # every row was refused: say why
        raise reject(
            STAGE, "aucune-ligne", f"Le fichier {path.name} ne contient aucune ligne de données."
        )
    return source


def _read_guarded(path: Path, fmt: str, declared_crs: int | None) -> SourceTable:
    """The format's reader; whatever escapes it becomes a French rejection, never a crash."""
    try:
        safety.check_file_size(path, fmt)
        if fmt == "csv":
            return read_csv(path)
        if fmt == "xlsx":
            return read_xlsx(path)
        return read_geographic(path, fmt, declared_crs)
    except UnsafeInput as error:
        raise reject(STAGE, error.rule, error.message) from error
    except SubmissionRejected:
        raise
    except Exception as error:  # the last line of defence: logged, and refused in French
        LOGGER.exception("Unexpected error while reading %s", path)
        raise reject(
            STAGE,
            "fichier-illisible",
            f"Le fichier {path.name} n'a pas pu être lu comme un fichier "
            f"{FORMAT_LABELS[fmt]} ({type(error).__name__}) : vérifiez qu'il n'est pas "
            "corrompu et qu'il est bien dans ce format.",
        ) from error


# --- CSV -------------------------------------------------------------------------------------


@dataclass
class _TextScan:
    """One pass over a text file: is it UTF-8, how long are its lines, how many quotes."""

    utf8: bool = True
    invalid_line: int | None = None  # line of the first byte that is not UTF-8
    invalid_byte: int | None = None
    longest_line: int = 0
    newlines: int = 0
    quotes: int = 0


def read_csv(path: Path) -> SourceTable:
    sample = _read_sample(path)
    _refuse_binary(sample, path.name)
    scan = _scan_text(path)
    encoding, delimiter, header, quoted = _sniff(sample, scan, path.name)
    block = _block_size(scan.longest_line)
    table, skipped = _parse_csv(path, encoding, delimiter, header, block_size=block)
    if skipped:
        # Rare: re-read serially so that every rejected row has its line number, letting
        # quoted values span lines when the file quotes at all.
        table, skipped = _parse_csv(
            path, encoding, delimiter, header, quoted, serial=True, block_size=block
        )
    _refuse_unclosed_quote(table, scan, path.name)
    dialect = CsvDialect(encoding, delimiter, _uses_decimal_comma(table, delimiter))
    source = SourceTable(table=table, source_format="csv", dialect=dialect)
    if skipped:
        _account_for_skipped_rows(source, skipped, delimiter)
    return source


def _sniff(sample: bytes, scan: _TextScan, filename: str) -> tuple[str, str, list[str], bool]:
    """Encoding, delimiter and header of a text file, refusing what is not a CSV; and
    whether it quotes values at all."""
    encoding = _encoding_from_scan(sample, scan)
    if not scan.utf8:
        _refuse_mixed_encoding(sample, scan, filename)
    text = sample.decode(encoding, errors="ignore")
    _refuse_non_csv_text(text, filename)
    delimiter = detect_delimiter(text)
    _refuse_mixed_delimiters(text, delimiter, filename)
    return encoding, delimiter, _read_header(text, delimiter, filename), '"' in text


def _read_sample(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(SNIFF_BYTES)


def _refuse_binary(sample: bytes, filename: str) -> None:
    """Files that are not text at all, or text in an encoding we do not read."""
    for signature, what in SIGNATURES:
        if sample.startswith(signature):
            raise reject(
                STAGE,
                "fichier-binaire",
                f"Le fichier {filename} n'est pas un fichier texte CSV : c'est {what}. "
                "Enregistrez-le au format « CSV » depuis votre tableur.",
            )
    wide = _wide_encoding(sample)
    if wide is not None:
        raise reject(
            STAGE,
            "encodage-non-pris-en-charge",
            f"Le fichier {filename} est encodé en {wide}. Enregistrez-le en « CSV UTF-8 » "
            "(ou en Windows-1252) depuis votre tableur.",
        )
    if b"\x00" in sample:
        raise reject(
            STAGE,
            "fichier-binaire",
            f"Le fichier {filename} n'est pas un fichier texte CSV (il contient des octets nuls). "
            "Enregistrez-le au format « CSV » depuis votre tableur.",
        )


def _wide_encoding(sample: bytes) -> str | None:
    for bom, name in WIDE_ENCODINGS:
        if sample.startswith(bom):
            return name
    pairs = sample[: len(sample) // 2 * 2]
    if len(pairs) >= 8:
        zeros = max(pairs[0::2].count(0), pairs[1::2].count(0))
        if zeros > len(pairs) // 2 * 0.4:
            return "UTF-16"
    return None


def detect_encoding(path: Path, sample: bytes) -> str:
    """UTF-8 (with or without BOM) when the whole file decodes as such, else Windows-1252."""
    return _encoding_from_scan(sample, _scan_text(path))


def _encoding_from_scan(sample: bytes, scan: _TextScan) -> str:
    if sample.startswith(codecs.BOM_UTF8) and scan.utf8:
        return "utf-8-sig"
    if scan.utf8:
        return "utf-8"
    # Bytes Windows-1252 leaves undefined are only valid in Latin-1.
    undefined = {0x81, 0x8D, 0x8F, 0x90, 0x9D}
    return "latin-1" if undefined & set(sample) else "cp1252"


def _scan_text(path: Path) -> _TextScan:
    """Check UTF-8 and measure lines in one pass; refuse a line too long to be a CSV row."""
    scan = _TextScan()
    decoder = codecs.getincrementaldecoder("utf-8")()
    current = 0  # length of the line being read
    with path.open("rb") as handle:
        while chunk := handle.read(SCAN_CHUNK):
            if scan.utf8:
                _decode_chunk(decoder, chunk, scan)
            current = _measure_lines(chunk, current, scan, path.name)
            scan.newlines += chunk.count(b"\n")
            scan.quotes += chunk.count(b'"')
    if scan.utf8:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            scan.utf8, scan.invalid_line = False, scan.newlines + 1
    return scan


def _decode_chunk(decoder: codecs.IncrementalDecoder, chunk: bytes, scan: _TextScan) -> None:
    pending = len(decoder.getstate()[0])
    try:
        decoder.decode(chunk)
    except UnicodeDecodeError as error:
        offset = max(error.start - pending, 0)
        scan.utf8 = False
        scan.invalid_line = scan.newlines + chunk.count(b"\n", 0, offset) + 1
        scan.invalid_byte = chunk[offset] if offset < len(chunk) else None


def _measure_lines(chunk: bytes, current: int, scan: _TextScan, filename: str) -> int:
    """Track the longest physical line (\\n or \\r ends one); the length of the open one."""
    codes = np.frombuffer(chunk, dtype=np.uint8)
    breaks = np.flatnonzero((codes == 10) | (codes == 13))
    if breaks.size == 0:
        current += len(chunk)
        longest, end = current, len(chunk)
    else:
        # Lines ending in this chunk: the open one, those between breaks, the new open one.
        ends = np.concatenate([breaks, [len(chunk)]])
        lengths = np.diff(ends, prepend=-1) - 1
        lengths[0] += current + 1
        position = int(lengths.argmax())
        longest, end = int(lengths[position]), int(ends[position])
        current = int(lengths[-1])
    scan.longest_line = max(scan.longest_line, longest)
    if scan.longest_line > MAX_LINE_BYTES:
        line = scan.newlines + chunk.count(b"\n", 0, end) + 1
        raise reject(
            STAGE,
            "ligne-trop-longue",
            f"La ligne {line} du fichier {filename} dépasse "
            f"{safety.human_size(MAX_LINE_BYTES)} : ce n'est probablement pas un CSV, ou un "
            "guillemet n'est jamais refermé.",
            row=line,
        )
    return current


def _refuse_mixed_encoding(sample: bytes, scan: _TextScan, filename: str) -> None:
    """UTF-8 accents in a file that is not all UTF-8: two encodings were mixed."""
    if not UTF8_FRENCH.search(sample):
        return
    byte = f" (octet 0x{scan.invalid_byte:02X})" if scan.invalid_byte is not None else ""
    raise reject(
        STAGE,
        "encodage-mixte",
        f"Le fichier {filename} mélange deux encodages : ses accents sont en UTF-8 mais la "
        f"ligne {scan.invalid_line} ne l'est pas{byte}. Enregistrez tout le fichier en "
        "« CSV UTF-8 ».",
        row=scan.invalid_line,
    )


def _refuse_non_csv_text(text: str, filename: str) -> None:
    start = text.lstrip("\ufeff \t\r\n")
    lowered = start[:20].lower()
    for prefix, what in MARKUP_PREFIXES.items():
        if lowered.startswith(prefix):
            raise reject(
                STAGE,
                "pas-un-csv",
                f"Le fichier {filename} n'est pas un CSV : c'est {what}.",
            )
    if JSON_START.match(start):
        raise reject(
            STAGE,
            "pas-un-csv",
            f"Le fichier {filename} n'est pas un CSV : c'est un document JSON (déposez un "
            "GeoJSON avec l'extension .geojson).",
        )
    controls = len(CONTROL_CHARACTERS.findall(text))
    if controls >= 8 and controls > 0.03 * len(text):
        raise reject(
            STAGE,
            "fichier-binaire",
            f"Le fichier {filename} n'est pas un fichier texte CSV : {controls} caractères de "
            "contrôle dans son début. Enregistrez-le au format « CSV » depuis votre tableur.",
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


def _refuse_mixed_delimiters(text: str, delimiter: str, filename: str) -> None:
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


def _read_header(text: str, delimiter: str, filename: str) -> list[str]:
    try:
        first = next(csv.reader(io.StringIO(text, newline=None), delimiter=delimiter), None)
    except csv.Error as error:  # only a field longer than the csv module's limit (128 kio)
        raise reject(
            STAGE,
            "entete-trop-long",
            f"La ligne d'en-tête du fichier {filename} contient un nom de colonne de plus de "
            f"{csv.field_size_limit()} caractères (ou un guillemet jamais refermé).",
            row=1,
        ) from error
    return check_header(first or [], filename)


def check_header(first: list[Any], filename: str, trim: bool = True) -> list[str]:
    """Column names of a first row: present, named, printable, and each name once (whatever
    the case: databases and GIS formats do not tell « Nom » from « nom »)."""
    names = ["" if name is None or _is_nan(name) else str(name).strip() for name in first]
    while trim and names and not names[-1]:
        names.pop()  # trailing empty cells of a spreadsheet's first row
    if not names:
        raise reject(STAGE, "entete-absent", f"Le fichier {filename} n'a pas de ligne d'en-tête.")
    if len(names) > MAX_COLUMNS:
        raise reject(
            STAGE,
            "trop-de-colonnes",
            f"Le fichier {filename} a {len(names)} colonnes (maximum {MAX_COLUMNS}).",
            row=1,
        )
    report = Report()
    seen: dict[str, str] = {}
    for position, name in enumerate(names, start=1):
        problem = _header_problem(position, name, seen)
        if problem is not None:
            report.add(problem)
        seen.setdefault(name.casefold(), name)
    if not report.valid:
        raise SubmissionRejected(report)
    return names


def _header_problem(position: int, name: str, seen: dict[str, str]) -> Problem | None:
    if not name:
        return Problem(STAGE, "entete-vide", f"La colonne n° {position} n'a pas de nom.", row=1)
    shown = name if len(name) <= 60 else name[:60] + "…"
    if len(name) > MAX_COLUMN_NAME:
        return Problem(
            STAGE,
            "entete-trop-long",
            f"Le nom de la colonne n° {position} fait {len(name)} caractères "
            f"(maximum {MAX_COLUMN_NAME}).",
            row=1,
            column=shown,
        )
    hidden = [ch for ch in name if not ch.isprintable() and ch not in JOINERS]
    if hidden:
        return Problem(
            STAGE,
            "entete-caractere-interdit",
            f"Le nom de la colonne n° {position} contient un caractère invisible ou de "
            f"contrôle ({_character_name(hidden[0])}) : retirez-le.",
            row=1,
            column=_visible(shown),
        )
    earlier = seen.get(name.casefold())
    if earlier is None:
        return None
    message = (
        f"Le nom de colonne « {name} » est utilisé plusieurs fois."
        if earlier == name
        else f"Les noms de colonne « {earlier} » et « {name} » ne diffèrent que par la casse."
    )
    return Problem(STAGE, "entete-duplique", message, row=1, column=name)


CONTROL_NAMES = {"\n": "retour à la ligne", "\r": "retour chariot", "\t": "tabulation"}


def _character_name(character: str) -> str:
    name = CONTROL_NAMES.get(character) or unicodedata.name(character, "caractère de contrôle")
    return f"U+{ord(character):04X}, {name}"


def _visible(name: str) -> str:
    """The name with its invisible characters written as escapes, its accents as they are."""
    return "".join(
        ch if ch.isprintable() or ch in JOINERS else ch.encode("unicode_escape").decode("ascii")
        for ch in name
    )


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


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
    table = pa.Table.from_arrays([_trimmed(column) for column in table.columns], names=header)
    return table, skipped


def _trimmed(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Cells without their surrounding spaces; a cell of spaces only is empty (null), as in
    a spreadsheet (found by the property tests: it used to stay an empty string)."""
    trimmed = pc.utf8_trim_whitespace(column)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


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


def _refuse_unclosed_quote(table: pa.Table, scan: _TextScan, filename: str) -> None:
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
    other = _delimiter_fitting(row.text, width, delimiter)
    if other is not None:
        return (
            "separateur-different",
            f"Cette ligne est séparée par des {DELIMITER_PLURALS[other]}, l'en-tête par des "
            f"{DELIMITER_PLURALS[delimiter]}.",
        )
    if row.actual_columns > width:
        return "cellules-en-trop", f"{row.actual_columns} cellules au lieu de {width} (en-tête)."
    return "cellules-manquantes", f"{row.actual_columns} cellule(s) au lieu de {width} (en-tête)."


def _delimiter_fitting(text: str, width: int, delimiter: str) -> str | None:
    """Another delimiter that splits this row into exactly the header's width."""
    if width < 2:
        return None
    for other in DELIMITERS:
        if other != delimiter and _widths([text], other) == [width]:
            return other
    return None


def _uses_decimal_comma(table: pa.Table, delimiter: str) -> bool:
    if delimiter == "," or table.num_rows == 0:
        return False
    head = table.slice(0, 1000)
    for column in head.columns:
        if pc.any(pc.match_substring_regex(column, r"^-?\d+,\d+$")).as_py():
            return True
    return False


# --- XLSX ------------------------------------------------------------------------------------


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
    texts = [_cell_to_text(value) for value in row]
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


def _cell_to_text(value: Any) -> str | None:
    if value is None or _is_nan(value) or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, datetime | pd.Timestamp):
        if value.hour == value.minute == value.second == value.microsecond == 0:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, np.ndarray | list | tuple):
        return json.dumps(np.asarray(value).tolist(), ensure_ascii=False, default=str)
    if isinstance(value, bytes):
        return value.hex()
    text = str(value).strip()
    return text or None


def _array_to_text(values: np.ndarray) -> pa.Array:
    return pa.array([_cell_to_text(v) for v in values.tolist()], type=pa.string())


# --- Geographic formats ----------------------------------------------------------------------


@dataclass
class _Layer:
    """One layer as GDAL gives it: attribute arrays, WKB geometries, CRS."""

    name: str
    fields: list[str]
    values: list[np.ndarray]
    wkb: np.ndarray
    crs: str | None


def read_geographic(path: Path, fmt: str, declared_crs: int | None) -> SourceTable:
    """GeoJSON, zipped Shapefile, GeoPackage, KML or GML: checked for what it is, read by
    GDAL from our own folder, then its attributes, geometries and coordinates checked."""
    with tempfile.TemporaryDirectory(prefix=WORK_PREFIX) as work:
        location, options = _prepare_geographic(path, fmt, Path(work))
        with _gdal_config(OFFLINE_GDAL), _no_proxy_exemptions():
            layer = _read_layer(location, options, fmt, path.name)
    _refuse_without_attributes(layer, path.name)
    header = check_header(layer.fields, path.name, trim=False)
    _refuse_reserved_names(header, path.name)
    table = pa.Table.from_arrays([_array_to_text(v) for v in layer.values], names=header)
    source = SourceTable(table=table, source_format=fmt)
    geometries = _decode_geometries(layer.wkb, source, path.name)
    crs = _resolve_crs(_crs_of(layer.crs), declared_crs, path.name)
    source.crs = crs
    source.geometry = gpd.GeoSeries(geometries, crs=f"EPSG:{crs}")
    check_geography(source, path.name)
    return source


def check_geography(source: SourceTable, filename: str) -> None:
    """Every geographic table's checks: valid geometries, coordinates in the declared CRS."""
    _check_geometries(source)
    _check_coordinates(source, filename)


def _refuse_without_attributes(layer: _Layer, filename: str) -> None:
    if layer.fields:
        return
    if len(layer.wkb) == 0:
        raise reject(STAGE, "aucune-ligne", f"Le fichier {filename} ne contient aucun objet.")
    raise reject(
        STAGE,
        "geo-sans-attribut",
        f"Les objets du fichier {filename} n'ont aucun attribut : ajoutez au moins un identifiant.",
    )


# Names the published GIS formats give their own columns (GeoPackage's fid and geometry
# column, the WKT column of the CSV): an attribute of that name cannot be published.
RESERVED_GEOGRAPHIC_NAMES = {"fid", "geom", "geometry"}


def _refuse_reserved_names(header: list[str], filename: str) -> None:
    report = Report()
    for name in header:
        if name.casefold() in RESERVED_GEOGRAPHIC_NAMES:
            report.add(
                Problem(
                    STAGE,
                    "colonne-nom-reserve",
                    f"L'attribut « {name} » du fichier {filename} porte un nom réservé par les "
                    "formats publiés (identifiant et géométrie du GeoPackage, géométrie du "
                    f"CSV) : renommez-le, par exemple « {name}_origine ».",
                    row=1,
                    column=name,
                )
            )
    if not report.valid:
        raise SubmissionRejected(report)


def _prepare_geographic(path: Path, fmt: str, work: Path) -> tuple[str, dict[str, str]]:
    """Where GDAL reads the file, after checking it is what its name says (GDAL picks a
    driver from the content: a « .geojson » holding a VRT would read other files)."""
    if fmt == "shapefile":
        return str(_extract_shapefile(path, work)), {}
    if fmt == "gpkg":
        _check_geopackage(path)
        return str(path), {}
    if fmt == "geojson":
        _check_json_object(path)
        _refuse_pattern(path, LINKED_CRS, "crs-lien-refuse", _linked_crs_message)
        return str(path), {}
    root = _xml_root(path)
    if fmt == "kml":
        if safety.local_name(root) != "kml":
            raise _not_the_format(path.name, "KML", f"élément racine « {root} »")
        _refuse_pattern(path, NETWORK_LINK, "kml-lien-reseau", _network_link_message)
        return str(path), {}
    if not _is_gml_root(root):
        raise _not_the_format(path.name, "GML", f"élément racine « {root} »")
    copy = work / "couche.gml"  # GDAL writes and reads sidecar files (.gfs, .xsd) beside it
    safety.copy_bounded(path, copy)
    # GDAL would expose a GML 2 feature's fid attribute as a « fid » column.
    return str(copy), {"DOWNLOAD_SCHEMA": "NO", "EXPOSE_FID": "NO"}


def _not_the_format(filename: str, label: str, detail: str) -> SubmissionRejected:
    return reject(
        STAGE,
        "format-incoherent",
        f"Le fichier {filename} n'est pas un fichier {label} ({detail}).",
    )


# What makes GDAL (or a GIS opening the published file) fetch a URL named by the file.
LINKED_CRS = re.compile(rb'"crs"\s*:\s*\{(?:[^{}]|\{[^{}]*\})*"type"\s*:\s*"link"', re.I)
NETWORK_LINK = re.compile(rb"<(?:[\w.-]+:)?NetworkLink[\s>/]")
SCAN_OVERLAP = 256


def _refuse_pattern(
    path: Path, pattern: re.Pattern[bytes], rule: str, message: Callable[[str], str]
) -> None:
    """Refuse the file when `pattern` occurs anywhere in it (read in chunks that overlap, so
    that no occurrence is cut in two)."""
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(SCAN_CHUNK):
            if pattern.search(tail + chunk):
                raise reject(STAGE, rule, message(path.name))
            tail = chunk[-SCAN_OVERLAP:]


def _linked_crs_message(filename: str) -> str:
    return (
        f"Le fichier {filename} désigne son système de coordonnées par un lien (« crs » de "
        "type « link ») : la plateforme ne suit aucun lien d'un fichier déposé. Écrivez-le "
        "par son nom (« urn:ogc:def:crs:EPSG::2154 »), ou retirez « crs » et déclarez "
        "« systeme_coordonnees » dans les métadonnées."
    )


def _network_link_message(filename: str) -> str:
    return (
        f"Le fichier KML {filename} contient un lien réseau (« NetworkLink ») : ses données "
        "viendraient d'ailleurs, et la plateforme ne suit aucun lien d'un fichier déposé. "
        "Déposez un KML qui contient lui-même ses objets."
    )


def _check_json_object(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(4096).removeprefix(safety.UTF8_BOM).lstrip()
    if not head.startswith(b"{"):
        raise _not_the_format(path.name, "GeoJSON", "il ne commence pas par un objet JSON « { »")


def _xml_root(path: Path) -> str:
    """The root of a document without DTD, well-formed to its end (GDAL would read a cut
    document's first features as if they were all)."""
    with path.open("rb") as stream:
        root = safety.check_xml_stream(stream, path.name, allow_doctype=False)
    with path.open("rb") as stream:
        safety.check_xml_well_formed(stream, path.name)
    return root


def _is_gml_root(root: str) -> bool:
    """A feature collection (GML, WFS, OGR…) or any element of a GML namespace."""
    return safety.local_name(root).endswith("FeatureCollection") or safety.namespace(
        root
    ).startswith("http://www.opengis.net/gml")


GPKG_APPLICATION_IDS = {b"GPKG", b"GP10", b"GP11"}


def _check_geopackage(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(100)
    if not head.startswith(b"SQLite format 3\x00"):
        raise _not_the_format(path.name, "GeoPackage", "ce n'est pas une base SQLite")
    if head[68:72] not in GPKG_APPLICATION_IDS:
        raise _not_the_format(
            path.name, "GeoPackage", "base SQLite sans l'identifiant d'application GeoPackage"
        )
    views, triggers = _geopackage_code(path)
    if views:
        raise reject(
            STAGE,
            "gpkg-vue-refusee",
            f"Le GeoPackage {path.name} contient une vue SQL ({', '.join(sorted(views)[:5])}) : "
            "seules les tables sont acceptées (une vue peut exécuter une requête sans fin).",
        )
    if triggers:
        raise reject(
            STAGE,
            "gpkg-declencheur-refuse",
            f"Le GeoPackage {path.name} contient des déclencheurs SQL qui ne sont pas ceux du "
            f"standard ({', '.join(sorted(triggers)[:5])}) : ils s'exécuteraient chez chaque "
            "utilisateur qui modifie le fichier. Exportez la couche dans un nouveau GeoPackage.",
        )


# Triggers the GeoPackage standard and GDAL create: spatial index, feature counts, tiles.
STANDARD_TRIGGER = re.compile(r"^(rtree_.+|gpkg_.+|trigger_(insert|delete)_feature_count_.+)$")


def _geopackage_code(path: Path) -> tuple[set[str], set[str]]:
    """Every view (listed in gpkg_contents or hidden), and every non-standard trigger."""
    uri = f"file:{pathname2url(str(path.resolve()))}?mode=ro&immutable=1"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
            connection.text_factory = lambda raw: raw.decode("utf-8", errors="replace")
            connection.execute("PRAGMA trusted_schema = OFF")
            rows = connection.execute(
                "SELECT type, name FROM sqlite_master WHERE type IN ('view', 'trigger')"
            ).fetchall()
    except (sqlite3.Error, UnicodeDecodeError) as error:  # a corrupt schema's error message
        raise reject(
            STAGE,
            "gpkg-illisible",
            f"Le GeoPackage {path.name} est illisible : base SQLite corrompue ou tronquée.",
        ) from error
    views = {str(name) for kind, name in rows if kind == "view"}
    triggers = {str(n) for kind, n in rows if kind == "trigger" and not STANDARD_TRIGGER.match(n)}
    return views, triggers


SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")
SHP_MAGIC = b"\x00\x00\x27\x0a"


def _extract_shapefile(path: Path, work: Path) -> Path:
    """Extract the Shapefile's parts, under names we choose, into our own folder."""
    with contextlib.closing(safety.open_zip(path)) as archive:
        infos = safety.check_archive(archive, path.name, "shapefile")
        files = [i for i in infos if not i.is_dir() and not _is_resource_fork(i.filename)]
        shapefiles = [i for i in files if i.filename.lower().endswith(".shp")]
        if len(shapefiles) != 1:
            raise reject(
                STAGE,
                "shapefile-introuvable",
                f"L'archive {path.name} doit contenir "
                f"exactement un fichier .shp (trouvé : {len(shapefiles)}).",
            )
        stem = shapefiles[0].filename[:-4].lower()
        budget = safety.MAX_UNCOMPRESSED_BYTES["shapefile"]
        for info in files:
            suffix = info.filename[-4:].lower()
            if info.filename[:-4].lower() == stem and suffix in SHAPEFILE_PARTS:
                budget -= safety.extract_member(
                    archive, info, work / f"couche{suffix}", budget, path.name
                )
    target = work / "couche.shp"
    _mend_field_names(work / "couche.dbf")
    with target.open("rb") as handle:
        if handle.read(4) != SHP_MAGIC:
            raise reject(
                STAGE,
                "shapefile-invalide",
                f"Le fichier {shapefiles[0].filename} de l'archive {path.name} n'est pas un "
                "fichier .shp valide.",
            )
    return target


DBF_HEADER = 32  # bytes before the field descriptors, and the size of each descriptor
DBF_NAME = 11  # a field name's bytes, NUL-padded


def _mend_field_names(dbf: Path) -> None:
    """A DBF stores field names in 10 bytes: GDAL cuts a UTF-8 name there, sometimes inside
    an accented letter ("Intitul\xc3_1"), which no UTF-8 reader then accepts. The broken
    bytes are dropped, in our own copy, so the name reads "Intitul_1"."""
    cpg = dbf.with_suffix(".cpg")
    declared = cpg.read_bytes()[:64].decode("ascii", "ignore") if cpg.is_file() else ""
    if not dbf.is_file() or "utf" not in declared.lower():
        return  # names in another encoding are GDAL's to decode, as they are
    with dbf.open("r+b") as handle:
        header = handle.read(DBF_HEADER)
        if len(header) < DBF_HEADER:
            return
        header_size = int.from_bytes(header[8:10], "little")
        for offset in range(DBF_HEADER, header_size - 1, DBF_HEADER):
            handle.seek(offset)
            raw = handle.read(DBF_NAME)
            if not raw or raw[0] == 0x0D:  # the descriptors' terminator
                break
            name = raw.split(b"\0", 1)[0]
            mended = name.decode("utf-8", errors="ignore").encode("utf-8")
            if mended != name:
                handle.seek(offset)
                handle.write(mended.ljust(DBF_NAME, b"\0"))


def _is_resource_fork(name: str) -> bool:
    """macOS adds __MACOSX/._x.shp copies that are not Shapefiles."""
    normalised = name.replace("\\", "/")
    return normalised.startswith("__MACOSX/") or normalised.rsplit("/", 1)[-1].startswith("._")


# GDAL follows URLs a file names (a GeoJSON "crs" link, however it is spelt): while it
# reads a submission, its HTTP client goes through a "proxy" at port 0, where nothing can
# listen, so no request leaves the process; the files themselves never need the network.
OFFLINE_GDAL = {
    "GML_DOWNLOAD_WFS_SCHEMA": "NO",
    "GDAL_HTTP_PROXY": "127.0.0.1:0",
    "GDAL_HTTPS_PROXY": "127.0.0.1:0",
    "GDAL_HTTP_CONNECTTIMEOUT": "1",
    "GDAL_HTTP_TIMEOUT": "1",
    "GDAL_HTTP_MAX_RETRY": "0",
}
NO_PROXY_VARIABLES = ("no_proxy", "NO_PROXY")


@contextlib.contextmanager
def _no_proxy_exemptions() -> Iterator[None]:
    """curl skips the proxy for the hosts of `no_proxy` (often loopback): not while GDAL
    reads a submission. Reads run in the pipeline's own processes, one at a time."""
    saved = {name: os.environ.pop(name) for name in NO_PROXY_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


@contextlib.contextmanager
def _gdal_config(options: dict[str, str]) -> Iterator[None]:
    previous = {name: pyogrio.get_gdal_config_option(name) for name in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(previous)


def _read_layer(location: str, options: dict[str, str], fmt: str, filename: str) -> _Layer:
    try:
        names = _layer_names(location, options, fmt, filename)
        layers = [_read_one_layer(location, name, options) for name in names]
    except SubmissionRejected:
        raise
    except Exception as error:  # GDAL errors come in several types
        raise reject(
            STAGE,
            "geo-illisible",
            f"Le fichier géographique {filename} est illisible "
            f"({_gdal_message(error, location, filename)}).",
        ) from error
    if not layers:
        raise reject(
            STAGE, "geo-sans-geometrie", f"Le fichier {filename} ne contient aucune couche."
        )
    return _merge_layers(layers, filename)  # a KML's folders are one dataset


def _layer_names(location: str, options: dict[str, str], fmt: str, filename: str) -> list[str]:
    """The layers to read: every folder of a KML; otherwise the one spatial layer holding
    features (tables without geometry, such as QGIS's « layer_styles », are left aside)."""
    listed = [(str(name), kind) for name, kind in pyogrio.list_layers(location)]
    spatial = [name for name, kind in listed if kind is not None]
    if not spatial:
        return [name for name, _ in listed[:1]]
    if fmt == "kml" or len(spatial) == 1:
        return spatial
    filled = [name for name in spatial if _feature_count(location, name, options) != 0]
    if len(filled) > 1:
        raise reject(
            STAGE,
            "plusieurs-couches",
            f"Le fichier {filename} contient {len(filled)} couches de données "
            f"({', '.join(filled[:10])}) : déposez-en une seule par jeu de données.",
        )
    return filled or spatial[:1]


def _feature_count(location: str, name: str, options: dict[str, str]) -> int:
    info = pyogrio.read_info(location, layer=name, force_feature_count=True, **options)
    return int(info["features"])


GDAL_MESSAGES = (
    (re.compile(r".*not recognized as being in a supported file format.*"), "format non reconnu"),
    (
        re.compile(r"Failed to read GeoJSON data; At line (\d+), character (\d+): (.*)"),
        r"JSON invalide à la ligne \1, caractère \2 : \3",
    ),
    (re.compile(r"\.shp file is unreadable, or corrupt\."), "fichier .shp illisible ou corrompu"),
)


def _gdal_message(error: Exception, location: str, filename: str) -> str:
    """GDAL's message, without our paths, its main phrases in French."""
    text = " ".join(str(error).split()).replace(f"'{location}'", filename)
    text = text.replace(location, filename)
    for pattern, french in GDAL_MESSAGES:
        text = pattern.sub(french, text)
    return text if len(text) <= 300 else text[:300] + "…"


def _read_one_layer(location: str, name: str, options: dict[str, str]) -> _Layer:
    meta, _, wkb, values = pyogrio.raw.read(location, layer=name, **options)
    if wkb is None:  # a table without geometry column
        wkb = np.full(len(values[0]) if values else 0, None, dtype=object)
    return _Layer(
        name=name,
        fields=[str(f) for f in meta["fields"]],
        values=list(values),
        wkb=np.asarray(wkb, dtype=object),
        crs=meta.get("crs"),
    )


def _merge_layers(layers: list[_Layer], filename: str) -> _Layer:
    """One layer of several with the union of their attributes (a KML's folders)."""
    if len(layers) == 1:
        return layers[0]
    fields = list(dict.fromkeys(name for layer in layers for name in layer.fields))
    values = [np.concatenate([_values_of(layer, name) for layer in layers]) for name in fields]
    wkb = np.concatenate([layer.wkb for layer in layers])
    return _Layer(name=filename, fields=fields, values=values, wkb=wkb, crs=layers[0].crs)


def _values_of(layer: _Layer, name: str) -> np.ndarray:
    if name in layer.fields:
        return np.asarray(layer.values[layer.fields.index(name)], dtype=object)
    return np.full(len(layer.wkb), None, dtype=object)


def _decode_geometries(wkb: np.ndarray, source: SourceTable, filename: str) -> np.ndarray:
    """Shapely geometries; a geometry GEOS cannot even build (a line of one point, a ring
    not closed) is reported with its feature."""
    if wkb.size == 0 or all(value is None for value in wkb):
        if source.table.num_rows:
            raise reject(
                STAGE,
                "geo-sans-geometrie",
                f"Le fichier {filename} ne contient pas de géométries.",
            )
        return np.array([], dtype=object)
    geometries = shapely.from_wkb(wkb, on_invalid="ignore")
    broken = np.flatnonzero(pd.notna(wkb) & shapely.is_missing(geometries))
    if broken.size:
        problems = [
            Problem(
                STAGE,
                "geometrie-illisible",
                "Géométrie impossible à construire (ligne d'un seul "
                "point, anneau de polygone non fermé ou trop court…). Corrigez-la puis déposez "
                "à nouveau le fichier.",
                row=int(source.row_number(np.array([index]))[0]),
                column="geometrie",
                feature=source.feature(int(index)),
            )
            for index in broken[:MAX_LISTED_GEOMETRY_PROBLEMS]
        ]
        source.problems.add_many(problems, total=int(broken.size))
    return geometries


def _crs_of(text: str | None) -> int | None | str:
    """The EPSG code of GDAL's CRS description; the text itself when it has none."""
    if not text:
        return None
    try:
        crs = CRS.from_user_input(text)
    except Exception:  # pyproj raises CRSError, and more for odd input
        return text
    if crs.is_geographic and len(crs.axis_info) == 3:
        crs = crs.to_2d()  # GDAL says EPSG:4979 for a GeoJSON with heights: WGS 84 in 3D
    code = crs.to_epsg()
    if code is None:
        code = crs.to_epsg(min_confidence=50)
    return code if code is not None else text


def _resolve_crs(found: int | str | None, declared: int | None, filename: str) -> int:
    if isinstance(found, str):
        raise reject(
            STAGE,
            "crs-non-accepte",
            f"Le système de coordonnées de {filename} n'est pas identifiable à un code EPSG "
            f"accepté. Systèmes acceptés : {accepted_crs_list()}.",
        )
    if found is None and declared is None:
        raise reject(
            STAGE,
            "crs-inconnu",
            f"Le système de coordonnées de {filename} est inconnu : "
            f"déclarez-le dans les métadonnées (« systeme_coordonnees »). Systèmes "
            f"acceptés : {accepted_crs_list()}.",
        )
    if found is not None and crs_code(found) is None:
        raise reject(
            STAGE,
            "crs-non-accepte",
            f"Le système de coordonnées EPSG:{found} de "
            f"{filename} n'est pas accepté. Systèmes acceptés : {accepted_crs_list()}.",
        )
    if found is not None and declared is not None and found != declared:
        raise reject(
            STAGE,
            "crs-incoherent",
            f"Le fichier {filename} est en EPSG:{found} mais "
            f"les métadonnées déclarent EPSG:{declared}.",
        )
    return found if found is not None else declared  # type: ignore[return-value]


# --- geometry and coordinate checks ----------------------------------------------------------

GEOS_REASONS = (
    ("Ring Self-intersection", "un anneau se recoupe lui-même"),
    ("Self-intersection", "le contour se recoupe lui-même"),
    ("Too few points", "trop peu de points"),
    ("Hole lies outside shell", "un trou est en dehors du contour extérieur"),
    ("Nested holes", "des trous sont imbriqués"),
    ("Nested shells", "des polygones sont imbriqués"),
    ("Interior is disconnected", "l'intérieur du polygone est coupé en morceaux"),
    ("Duplicate Rings", "un anneau est en double"),
    ("Invalid Coordinate", "une coordonnée est invalide"),
    ("Ring is not closed", "un anneau n'est pas fermé"),
)


def _check_geometries(source: SourceTable) -> None:
    """Non-finite coordinates and invalid geometries (OGC rules), each with its feature."""
    geometries = np.asarray(source.geometry.values, dtype=object)
    coordinates, owners = shapely.get_coordinates(geometries, return_index=True)
    non_finite = np.zeros(len(geometries), dtype=bool)
    non_finite[owners[~np.isfinite(coordinates).all(axis=1)]] = True
    _add_geometry_problems(
        source,
        np.flatnonzero(non_finite),
        "coordonnees-non-finies",
        lambda _index: "coordonnées non numériques ou infinies",
    )
    present = ~shapely.is_missing(geometries) & ~non_finite
    invalid = np.flatnonzero(present & ~shapely.is_valid(geometries))
    reasons = dict(zip(invalid.tolist(), shapely.is_valid_reason(geometries[invalid]), strict=True))
    _add_geometry_problems(
        source, invalid, "geometrie-invalide", lambda index: _french_reason(reasons[index])
    )


def _add_geometry_problems(
    source: SourceTable, indexes: np.ndarray, rule: str, reason: Callable[[int], str]
) -> None:
    if indexes.size == 0:
        return
    rows = source.row_number(indexes[:MAX_LISTED_GEOMETRY_PROBLEMS])
    problems = [
        Problem(
            STAGE,
            rule,
            f"Géométrie invalide ({reason(int(index))}). Corrigez-la "
            "(par exemple avec « Réparer les géométries » de QGIS) puis déposez à nouveau le "
            "fichier.",
            row=int(row),
            column="geometrie",
            feature=source.feature(int(index)),
        )
        for index, row in zip(indexes[:MAX_LISTED_GEOMETRY_PROBLEMS], rows, strict=True)
    ]
    source.problems.add_many(problems, total=int(indexes.size))


def _french_reason(reason: str) -> str:
    where = re.search(r"\[([-+\d.eE]+) ([-+\d.eE]+)", reason)
    at = f" au point ({where.group(1)}, {where.group(2)})" if where else ""
    for english, french in GEOS_REASONS:
        if reason.startswith(english):
            return french + at
    return f"règle OGC non respectée : {reason}"


@lru_cache(maxsize=16)
def to_wgs84(code: int) -> Transformer:
    return Transformer.from_crs(f"EPSG:{code}", "EPSG:4326", always_xy=True)


def _inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    west, south, east, north = LYON_WINDOW
    with np.errstate(invalid="ignore"):
        return (x >= west) & (x <= east) & (y >= south) & (y <= north)


def inside_as(code: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        lon, lat = to_wgs84(code).transform(x, y, errcheck=False)
    return _inside(np.asarray(lon), np.asarray(lat))


def _check_coordinates(source: SourceTable, filename: str) -> None:
    """Coordinates in the wrong order or in another CRS than the one declared: refused when
    another reading (axes swapped, metres, the other projection) puts the data on the
    metropolis and the declared one does not. Data simply elsewhere are not refused."""
    geometries = np.asarray(source.geometry.values, dtype=object)
    bounds = shapely.bounds(geometries)
    x = (bounds[:, 0] + bounds[:, 2]) / 2
    y = (bounds[:, 1] + bounds[:, 3]) / 2
    known = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if known.size == 0:
        return
    x, y = x[known], y[known]
    code = int(source.crs)  # type: ignore[arg-type]
    if code in GEOGRAPHIC_CRS:
        _check_geographic(source, filename, code, known, x, y)
    elif code in PROJECTED_CRS:
        _check_projected(source, filename, code, known, x, y)


def _crs_label(code: int) -> str:
    return f"EPSG:{code} ({ACCEPTED_CRS[code][0]})"


def _check_geographic(
    source: SourceTable, filename: str, code: int, known: np.ndarray, x: np.ndarray, y: np.ndarray
) -> None:
    domain = (np.abs(x) <= 180) & (np.abs(y) <= 90)
    inside = domain & inside_as(code, x, y)
    swapped = domain & ~inside & inside_as(code, y, x)
    if inside.mean() < 0.5:
        for other in sorted(PROJECTED_CRS):
            if inside_as(other, x, y).mean() >= MOSTLY:
                raise reject(
                    STAGE,
                    "crs-metres-declares-en-degres",
                    f"Les coordonnées de {filename} sont en mètres ({_crs_label(other)}) alors "
                    f"que le fichier est déclaré en degrés, {_crs_label(code)}. Déclarez le bon "
                    "système de coordonnées (fichier .prj, métadonnées « systeme_coordonnees »).",
                )
        if swapped.mean() >= MOSTLY:
            raise reject(
                STAGE,
                "coordonnees-inversees",
                f"Les coordonnées de {filename} sont dans l'ordre latitude, longitude : en "
                f"{_crs_label(code)}, l'ordre attendu est longitude (x), puis latitude (y).",
            )
    _row_problems(
        source,
        known[~domain],
        "coordonnees-hors-domaine",
        f"coordonnées hors des limites des degrés (±180, ±90) en {_crs_label(code)}",
    )
    _row_problems(
        source,
        known[swapped],
        "coordonnees-inversees",
        "latitude et longitude inversées (l'ordre attendu est longitude, latitude)",
    )


def _check_projected(
    source: SourceTable, filename: str, code: int, known: np.ndarray, x: np.ndarray, y: np.ndarray
) -> None:
    degrees = (np.abs(x) <= 180) & (np.abs(y) <= 90) & (_inside(x, y) | _inside(y, x))
    if inside_as(code, x, y).mean() < 0.5:
        if degrees.mean() >= MOSTLY:
            raise reject(
                STAGE,
                "crs-degres-declares-en-metres",
                f"Les coordonnées de {filename} sont en degrés (longitude, latitude) alors que "
                f"le fichier est déclaré en {_crs_label(code)}, en mètres. Déclarez EPSG:4326 "
                "(WGS 84) ou reprojetez le fichier.",
            )
        for other in sorted(PROJECTED_CRS - {code}):
            if inside_as(other, x, y).mean() >= MOSTLY:
                raise reject(
                    STAGE,
                    "crs-incoherent-coordonnees",
                    f"Les coordonnées de {filename} correspondent à {_crs_label(other)}, pas à "
                    f"{_crs_label(code)} déclaré : corrigez la déclaration du système de "
                    "coordonnées (fichier .prj, métadonnées).",
                )
    _row_problems(
        source,
        known[degrees],
        "coordonnees-en-degres",
        f"coordonnées en degrés dans un fichier en mètres ({_crs_label(code)})",
    )


def _row_problems(source: SourceTable, indexes: np.ndarray, rule: str, what: str) -> None:
    if indexes.size == 0:
        return
    listed = indexes[:MAX_LISTED_GEOMETRY_PROBLEMS]
    rows = source.row_number(listed)
    problems = [
        Problem(
            STAGE,
            rule,
            f"{what[0].upper()}{what[1:]}.",
            row=int(row),
            column="geometrie",
            feature=source.feature(int(index)),
        )
        for index, row in zip(listed, rows, strict=True)
    ]
    source.problems.add_many(problems, total=int(indexes.size))
