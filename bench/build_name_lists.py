"""Build the reference lists of French first names and surnames from INSEE open data.

The personal-data detector ships two lists inside the repository (nothing is downloaded at
run time). This script rebuilds them from the raw INSEE files, so that the transformation
is reproducible:

    .venv/bin/python bench/build_name_lists.py \\
        --prenoms prenoms-2023-nat_csv.zip \\
        --noms noms2008nat_txt.zip

Inputs (a ``.zip`` archive as published, or the file extracted from it):

* ``--prenoms``: INSEE "Fichier des prénoms", national file (``natYYYY.csv`` or
  ``prenoms-YYYY-nat.csv``). Columns ``sexe;preusuel;annais;nombre`` (editions up to 2024)
  or ``sexe;prenom;periode;valeur`` (later editions).
* ``--noms``: INSEE "Fichier des noms de famille" (patronymes), national file
  ``noms2008nat_txt.txt``: ``NOM`` then one tab-separated column of births per decade,
  ``_1891_1900`` to ``_1991_2000``.

Outputs, in ``--out`` (default ``pipelines/data/names``):

* ``prenoms.tsv.gz`` and ``noms.tsv.gz``: one line per name, ``name<TAB>count``, no header,
  sorted by decreasing count then name. ``name`` is lower-cased with accents removed;
  ``count`` is the total number of births over every year (and both sexes for first
  names). Names whose total is below ``--min-count`` (20) are dropped, as are INSEE's
  aggregates ``_PRENOMS_RARES`` and ``AUTRES NOMS``. The gzip header carries no file name
  and no time stamp, so the same inputs give byte-identical files.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import sys
import unicodedata
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE.parent / "pipelines" / "data" / "names"
DEFAULT_MIN_COUNT = 20

# INSEE aggregates that are not names.
RARE_FIRST_NAMES = "_PRENOMS_RARES"
OTHER_SURNAMES = "AUTRES NOMS"

# Letters that NFKD does not decompose (ligatures): spelled out as INSEE does elsewhere.
LIGATURES = str.maketrans({"æ": "ae", "œ": "oe", "ß": "ss"})


def normalise(name: str) -> str:
    """Lower-case, remove accents (NFKD then drop combining marks), spell out ligatures.

    Hyphens, apostrophes and inner spaces are kept: ``Jean-Pierre`` gives ``jean-pierre``.
    """
    decomposed = unicodedata.normalize("NFKD", name.strip().lower())
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(bare.translate(LIGATURES).split())


def open_text(path: Path) -> io.TextIOBase:
    """Open a text file, or the single data file inside a ``.zip`` archive.

    INSEE files are UTF-8 in recent editions and Windows-1252 in older ones: the bytes are
    decoded as UTF-8 when they are valid UTF-8, else as Windows-1252.
    """
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [
                info
                for info in archive.infolist()
                if not info.is_dir() and info.filename.lower().endswith((".csv", ".txt"))
            ]
            if len(members) != 1:
                names = [info.filename for info in members]
                raise SystemExit(f"{path}: expected one .csv/.txt file in the archive, got {names}")
            raw = archive.read(members[0])
    else:
        raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    return io.StringIO(text, newline="")


def read_first_names(path: Path) -> Counter[str]:
    """Total births per normalised first name, over all years and both sexes."""
    totals: Counter[str] = Counter()
    with open_text(path) as handle:
        reader = csv.reader(handle, delimiter=";")
        header = [column.strip().lower() for column in next(reader)]
        if "preusuel" in header:
            name_col, count_col = header.index("preusuel"), header.index("nombre")
        elif "prenom" in header:
            name_col, count_col = header.index("prenom"), header.index("valeur")
        else:
            raise SystemExit(f"{path}: unknown header {header}")
        for row in reader:
            if not row:
                continue
            raw_name = row[name_col].strip()
            if not raw_name or raw_name == RARE_FIRST_NAMES:
                continue
            # Rows whose year is "XXXX" hold the births of years too small to publish:
            # they are births all the same, so they count in the total.
            totals[normalise(raw_name)] += int(row[count_col])
    return totals


def read_surnames(path: Path) -> Counter[str]:
    """Total births 1891-2000 per normalised surname (sum of the decade columns)."""
    totals: Counter[str] = Counter()
    with open_text(path) as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [column.strip().upper() for column in next(reader)]
        if not header or header[0] != "NOM" or not all(c.startswith("_") for c in header[1:]):
            raise SystemExit(f"{path}: unknown header {header}")
        for row in reader:
            if not row:
                continue
            raw_name = row[0].strip()
            if not raw_name or raw_name == OTHER_SURNAMES:
                continue
            totals[normalise(raw_name)] += sum(int(value) for value in row[1:] if value.strip())
    return totals


def kept(totals: Counter[str], min_count: int) -> Iterator[tuple[str, int]]:
    """Names with at least ``min_count`` births, by decreasing count then name."""
    rows = [(name, count) for name, count in totals.items() if name and count >= min_count]
    rows.sort(key=lambda item: (-item[1], item[0]))
    yield from rows


def write_list(rows: Iterator[tuple[str, int]], target: Path) -> int:
    """Write ``name<TAB>count`` lines to a reproducible gzip file; return the line count."""
    target.parent.mkdir(parents=True, exist_ok=True)
    lines = 0
    with (
        target.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as packed,
    ):
        for name, count in rows:
            if "\t" in name or "\n" in name:
                raise SystemExit(f"unexpected control character in name {name!r}")
            packed.write(f"{name}\t{count}\n".encode())
            lines += 1
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prenoms", type=Path, help="INSEE national first-name file (.csv/.zip)")
    parser.add_argument("--noms", type=Path, help="INSEE national surname file (.txt/.zip)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    parser.add_argument(
        "--min-count",
        type=int,
        default=DEFAULT_MIN_COUNT,
        help=f"minimum total births for a name to be kept (default {DEFAULT_MIN_COUNT})",
    )
    args = parser.parse_args(argv)
    if args.prenoms is None and args.noms is None:
        parser.error("give --prenoms, --noms or both")

    if args.prenoms is not None:
        totals = read_first_names(args.prenoms)
        target = args.out / "prenoms.tsv.gz"
        written = write_list(kept(totals, args.min_count), target)
        print(f"{target}: {written} first names ({len(totals)} before the threshold)")
    if args.noms is not None:
        totals = read_surnames(args.noms)
        target = args.out / "noms.tsv.gz"
        written = write_list(kept(totals, args.min_count), target)
        print(f"{target}: {written} surnames ({len(totals)} before the threshold)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
