"""Is a file text, in which encoding, with lines a CSV can have: one bounded scan.

The checks of a CSV's first bytes (text at all, which encoding, a table at all) are
`core.csv_head`'s, shared with the upload API; this scan adds what needs the whole file:
is it all UTF-8 (which decides the encoding), and no line longer than `MAX_LINE_BYTES`,
refused in French before any parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

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
    pending = b""  # the start of a character cut by the end of the previous chunk
    current = 0  # length of the line being read
    with path.open("rb") as handle:
        while chunk := handle.read(SCAN_CHUNK):
            if scan.utf8:
                pending = _check_utf8(pending, chunk, scan)
            codes = np.frombuffer(chunk, dtype=np.uint8)
            line_feeds = codes == 10
            current = _measure_lines(chunk, codes, line_feeds, current, scan, path.name)
            scan.newlines += int(np.count_nonzero(line_feeds))
            scan.quotes += int(np.count_nonzero(codes == 34))
    if scan.utf8 and pending:  # the file ends inside a character
        scan.utf8, scan.invalid_line = False, scan.newlines + 1
        try:
            pending.decode("utf-8")
        except UnicodeDecodeError as error:
            if error.reason != "unexpected end of data":
                scan.invalid_byte = pending[error.start]
    return scan


def _check_utf8(pending: bytes, chunk: bytes, scan: TextScan) -> bytes:
    """Whether `pending + chunk` is UTF-8 up to its last whole character (checked by Arrow
    on the bytes, without decoding them to Python text); what is left of a character cut
    at the end. At the first invalid byte, its line and value are recorded in `scan`."""
    data = pending + chunk if pending else chunk
    whole = len(data) - _cut_character(data)
    if _valid_utf8(memoryview(data)[:whole]):
        return data[whole:]
    try:
        data[:whole].decode("utf-8")
    except UnicodeDecodeError as error:
        scan.utf8 = False  # the carried bytes hold no line break: no count to add for them
        offset = max(error.start - len(pending), 0)
        scan.invalid_line = scan.newlines + chunk.count(b"\n", 0, offset) + 1
        scan.invalid_byte = data[error.start]
    return b""


def _cut_character(data: bytes) -> int:
    """How many bytes at the end of `data` start a character that the next chunk ends."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return 0
        if 0xC2 <= byte <= 0xF4:  # a lead byte: is its character complete?
            length = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return back if length > back else 0
        if byte >= 0xC0:
            return 0  # never a lead byte in UTF-8: the check says where
    return 0


def _valid_utf8(data: memoryview) -> bool:
    text = pa.Array.from_buffers(
        pa.string(), 1, [None, pa.py_buffer(np.array([0, len(data)], np.int32)), pa.py_buffer(data)]
    )
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _measure_lines(
    chunk: bytes,
    codes: np.ndarray,
    line_feeds: np.ndarray,
    current: int,
    scan: TextScan,
    filename: str,
) -> int:
    """Track the longest physical line (\\n or \\r ends one); the length of the open one."""
    breaks = np.flatnonzero(line_feeds | (codes == 13) if b"\r" in chunk else line_feeds)
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
