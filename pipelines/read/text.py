"""Is a file text, in which encoding, with lines a CSV can have: one bounded scan.

A file that is not text (a renamed workbook, an image, a PDF), text in an encoding the
platform does not read (UTF-16, UTF-32), a document that is not a table (HTML, XML, JSON),
two encodings mixed in one file and a line longer than `MAX_LINE_BYTES` are refused in
French before any parsing. Otherwise the encoding is UTF-8 (with or without BOM) when the
whole file decodes as such, else Windows-1252 (Latin-1 for the bytes it leaves undefined).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.problems import reject
from pipelines import safety
from pipelines.read import STAGE

SNIFF_BYTES = 256 * 1024
SCAN_CHUNK = 8 * 1024 * 1024


MAX_LINE_BYTES = 8 * 1024 * 1024  # one physical line of a CSV


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


@dataclass
class TextScan:
    """One pass over a text file: is it UTF-8, how long are its lines, how many quotes."""

    utf8: bool = True
    invalid_line: int | None = None  # line of the first byte that is not UTF-8
    invalid_byte: int | None = None
    longest_line: int = 0
    newlines: int = 0
    quotes: int = 0


def read_sample(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(SNIFF_BYTES)


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


def detect_encoding(path: Path, sample: bytes) -> str:
    """UTF-8 (with or without BOM) when the whole file decodes as such, else Windows-1252."""
    return encoding_from_scan(sample, scan_text(path))


def encoding_from_scan(sample: bytes, scan: TextScan) -> str:
    if sample.startswith(codecs.BOM_UTF8) and scan.utf8:
        return "utf-8-sig"
    if scan.utf8:
        return "utf-8"
    # Bytes Windows-1252 leaves undefined are only valid in Latin-1.
    undefined = {0x81, 0x8D, 0x8F, 0x90, 0x9D}
    return "latin-1" if undefined & set(sample) else "cp1252"


def scan_text(path: Path) -> TextScan:
    """Check UTF-8 and measure lines in one pass; refuse a line too long to be a CSV row."""
    scan = TextScan()
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


def _decode_chunk(decoder: codecs.IncrementalDecoder, chunk: bytes, scan: TextScan) -> None:
    pending = len(decoder.getstate()[0])
    try:
        decoder.decode(chunk)
    except UnicodeDecodeError as error:
        offset = max(error.start - pending, 0)
        scan.utf8 = False
        scan.invalid_line = scan.newlines + chunk.count(b"\n", 0, offset) + 1
        scan.invalid_byte = chunk[offset] if offset < len(chunk) else None


def _measure_lines(chunk: bytes, current: int, scan: TextScan, filename: str) -> int:
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


def refuse_mixed_encoding(sample: bytes, scan: TextScan, filename: str) -> None:
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
