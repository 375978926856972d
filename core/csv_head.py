"""The head of a CSV: is it text, in which encoding, split by which delimiter, under
which column names. What the read stage decides first (`pipelines.read.csv`), from the
file's first bytes and one scan of the whole file (is it all UTF-8); the upload API
decides the same at once from the first bytes alone (`sniff`), so a file that is no CSV
is refused in the same French words before it is ever queued.

A file that is not text (a renamed workbook, an image, a PDF), text in an encoding the
platform does not read (UTF-16, UTF-32), a document that is not a table (HTML, XML, JSON),
two encodings mixed in one file, and a header split by another delimiter than its rows
are refused. Otherwise the encoding is UTF-8 (with or without BOM) when the whole file
decodes as such, else Windows-1252 (Latin-1 for the bytes it leaves undefined).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass

from core.column_names import STAGE, check_header
from core.problems import reject

SNIFF_BYTES = 256 * 1024


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


JSON_START = re.compile(r'^\s*[\[{]\s*["\[{]')
UTF8_FRENCH = re.compile(rb"\xc3[\x80-\xbf]|\xc2[\xa0-\xbf]|\xe2\x82\xac")


CONTROL_CHARACTERS = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")


DELIMITERS = (";", ",", "\t", "|")
DELIMITER_NAMES = {";": "point-virgule", ",": "virgule", "\t": "tabulation", "|": "barre verticale"}


DELIMITER_PLURALS = {
    ";": "points-virgules",
    ",": "virgules",
    "\t": "tabulations",
    "|": "barres verticales",
}


def refuse_empty(size: int, filename: str) -> None:
    """A file without a byte, whatever its format."""
    if size == 0:
        raise reject(STAGE, "fichier-vide", f"Le fichier {filename} est vide.")


@dataclass(frozen=True)
class CsvHead:
    encoding: str
    delimiter: str
    header: list[str]
    quoted: bool  # whether it quotes values at all


def sniff(
    sample: bytes,
    utf8: bool,
    filename: str,
    invalid_line: int | None = None,
    invalid_byte: int | None = None,
) -> CsvHead:
    """Encoding, delimiter and header of a text file from its first bytes (`sample`),
    refusing what is not a CSV. `utf8`: whether the file decodes as UTF-8 (the whole file
    for the read stage; the sample for the upload API), and where it stops doing so."""
    refuse_binary(sample, filename)
    encoding = encoding_of(sample, utf8)
    if not utf8:
        refuse_mixed_encoding(sample, invalid_line, invalid_byte, filename)
    text = sample.decode(encoding, errors="ignore")
    refuse_non_csv_text(text, filename)
    delimiter = detect_delimiter(text)
    refuse_mixed_delimiters(text, delimiter, filename)
    return CsvHead(encoding, delimiter, read_header(text, delimiter, filename), '"' in text)


def encoding_of(sample: bytes, utf8: bool) -> str:
    if sample.startswith(codecs.BOM_UTF8) and utf8:
        return "utf-8-sig"
    if utf8:
        return "utf-8"
    # Bytes Windows-1252 leaves undefined are only valid in Latin-1.
    undefined = {0x81, 0x8D, 0x8F, 0x90, 0x9D}
    return "latin-1" if undefined & set(sample) else "cp1252"


def sample_utf8(sample: bytes, complete: bool) -> tuple[bool, int | None, int | None]:
    """Whether `sample` is UTF-8 (a character cut at its end is not held against it unless
    the sample is the whole file), the line and the byte where it stops being so."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(sample, final=complete)
    except UnicodeDecodeError as error:
        line = sample.count(b"\n", 0, error.start) + 1
        return False, line, sample[error.start] if error.start < len(sample) else None
    return True, None, None


def read_header(text: str, delimiter: str, filename: str) -> list[str]:
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


def refuse_binary(sample: bytes, filename: str) -> None:
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


def refuse_mixed_encoding(
    sample: bytes, invalid_line: int | None, invalid_byte: int | None, filename: str
) -> None:
    """UTF-8 accents in a file that is not all UTF-8: two encodings were mixed."""
    if not UTF8_FRENCH.search(sample):
        return
    byte = f" (octet 0x{invalid_byte:02X})" if invalid_byte is not None else ""
    raise reject(
        STAGE,
        "encodage-mixte",
        f"Le fichier {filename} mélange deux encodages : ses accents sont en UTF-8 mais la "
        f"ligne {invalid_line} ne l'est pas{byte}. Enregistrez tout le fichier en "
        "« CSV UTF-8 ».",
        row=invalid_line,
    )


def refuse_non_csv_text(text: str, filename: str) -> None:
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
