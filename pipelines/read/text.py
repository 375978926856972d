"""Is a file text, in which encoding, with lines a CSV can have: one bounded scan.

The checks of a CSV's first bytes (text at all, which encoding, a table at all) are
`core.csv_head`'s, shared with the upload API; this scan adds what needs the whole file:
is it all UTF-8 (which decides the encoding), and no line longer than `MAX_LINE_BYTES`,
refused in French before any parsing.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.csv_head import SNIFF_BYTES, encoding_of
from core.problems import reject
from pipelines import safety
from pipelines.read import STAGE

SCAN_CHUNK = 8 * 1024 * 1024


MAX_LINE_BYTES = 8 * 1024 * 1024  # one physical line of a CSV


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


def detect_encoding(path: Path, sample: bytes) -> str:
    """UTF-8 (with or without BOM) when the whole file decodes as such, else Windows-1252."""
    return encoding_from_scan(sample, scan_text(path))


def encoding_from_scan(sample: bytes, scan: TextScan) -> str:
    return encoding_of(sample, scan.utf8)


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
