"""Read stage: turn a commune's data file into a table of text cells plus geometries.

Every format ends as the same `SourceTable`: attribute values as Arrow string
columns (empty cells are null), so the structure check applies one set of
vectorised rules whatever the input, and geometries as a GeoSeries in the
file's own CRS.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyogrio

from pipelines.metadata import accepted_crs_list, crs_code
from pipelines.report import Problem, Report, SubmissionRejected, reject

STAGE = "lecture"

FORMATS = {
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".geojson": "geojson",
    ".json": "geojson",
    ".zip": "shapefile",
    ".gpkg": "gpkg",
}
GEOGRAPHIC_FORMATS = {"geojson", "shapefile", "gpkg"}
DELIMITERS = (";", ",", "\t", "|")
SNIFF_BYTES = 256 * 1024


@dataclass
class CsvDialect:
    encoding: str
    delimiter: str
    decimal_comma: bool

    def describe(self) -> str:
        names = {";": "point-virgule", ",": "virgule", "\t": "tabulation", "|": "barre verticale"}
        decimal = "virgule" if self.decimal_comma else "point"
        return f"{self.encoding}, séparateur {names[self.delimiter]}, décimales à la {decimal}"


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
            "CSV, XLSX, GeoJSON, Shapefile zippé (.zip), GeoPackage (.gpkg).",
        )
    return fmt


def read_source(path: Path, declared_crs: int | None = None) -> SourceTable:
    """Read a data file; raise SubmissionRejected when it cannot be read at all."""
    if not path.is_file():
        raise reject(STAGE, "fichier-absent", f"Fichier de données introuvable : {path.name}")
    if path.stat().st_size == 0:
        raise reject(STAGE, "fichier-vide", f"Le fichier {path.name} est vide.")
    fmt = detect_format(path)
    if fmt == "csv":
        source = read_csv(path)
    elif fmt == "xlsx":
        source = read_xlsx(path)
    else:
        source = read_geographic(path, fmt, declared_crs)
    if source.table.num_rows == 0:
        raise reject(
            STAGE, "aucune-ligne", f"Le fichier {path.name} ne contient aucune ligne de données."
        )
    return source


# --- CSV -------------------------------------------------------------------------------------


def read_csv(path: Path) -> SourceTable:
    sample = _read_sample(path)
    if b"\x00" in sample:
        raise reject(
            STAGE,
            "fichier-binaire",
            f"Le fichier {path.name} n'est pas un fichier texte CSV (il contient des octets nuls). "
            "Enregistrez-le au format « CSV » depuis votre tableur.",
        )
    encoding = detect_encoding(path, sample)
    text_sample = sample.decode(encoding, errors="ignore")
    delimiter = detect_delimiter(text_sample)
    header = _read_header(text_sample, delimiter, path.name)
    table, skipped = _parse_csv(path, encoding, delimiter, header)
    if skipped:
        # Rare: re-read serially so that every rejected row has its line number, letting
        # quoted values span lines when the file quotes at all.
        table, skipped = _parse_csv(
            path, encoding, delimiter, header, newlines_in_values='"' in text_sample, serial=True
        )
    dialect = CsvDialect(encoding, delimiter, _uses_decimal_comma(table, delimiter))
    source = SourceTable(table=table, source_format="csv", dialect=dialect)
    if skipped:
        _account_for_skipped_rows(source, skipped)
    return source


def _read_sample(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(SNIFF_BYTES)


def detect_encoding(path: Path, sample: bytes) -> str:
    """UTF-8 (with or without BOM) when the whole file decodes as such, else Windows-1252."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as handle:
            while chunk := handle.read(8 * 1024 * 1024):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        return "utf-8"
    except UnicodeDecodeError:
        # Bytes Windows-1252 leaves undefined are only valid in Latin-1.
        undefined = {0x81, 0x8D, 0x8F, 0x90, 0x9D}
        return "latin-1" if undefined & set(sample) else "cp1252"


def detect_delimiter(text: str) -> str:
    """The delimiter giving the most columns, consistently, over the first lines."""
    lines = text.splitlines()[:50]
    if len(text) >= SNIFF_BYTES // 2 and len(lines) > 1:
        lines = lines[:-1]  # the last sampled line may be cut
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        widths = [len(row) for row in csv.reader(lines, delimiter=delimiter) if row]
        if not widths:
            continue
        header_width = widths[0]
        consistent = sum(width == header_width for width in widths)
        score = (consistent if header_width > 1 else 0, header_width)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _read_header(text: str, delimiter: str, filename: str) -> list[str]:
    first = next(csv.reader(io.StringIO(text), delimiter=delimiter), None)
    return check_header(first or [], filename)


def check_header(first: list[Any], filename: str) -> list[str]:
    """Column names of a first row: present, named, and each name once."""
    names = ["" if name is None or pd.isna(name) else str(name).strip() for name in first]
    while names and not names[-1]:
        names.pop()  # trailing empty cells of a spreadsheet's first row
    if not names:
        raise reject(STAGE, "entete-absent", f"Le fichier {filename} n'a pas de ligne d'en-tête.")
    header = names
    report = Report()
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if not name:
            report.add(
                Problem(STAGE, "entete-vide", f"La colonne n° {position} n'a pas de nom.", row=1)
            )
        elif name in seen:
            report.add(
                Problem(
                    STAGE,
                    "entete-duplique",
                    f"Le nom de colonne « {name} » est utilisé plusieurs fois.",
                    row=1,
                    column=name,
                )
            )
        seen.add(name)
    if not report.valid:
        raise SubmissionRejected(report)
    return header


def _parse_csv(
    path: Path,
    encoding: str,
    delimiter: str,
    header: list[str],
    newlines_in_values: bool = False,
    serial: bool = False,
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
        raise reject(
            STAGE, "csv-illisible", f"Le fichier {path.name} n'est pas un CSV lisible : {error}"
        ) from error
    table = pa.Table.from_arrays(
        [pc.utf8_trim_whitespace(column) for column in table.columns], names=header
    )
    return table, skipped


def _account_for_skipped_rows(source: SourceTable, skipped: list[pacsv.InvalidRow]) -> None:
    """Report rows of the wrong width and keep the line numbers of the other rows right."""
    width = source.table.num_columns
    numbers = [row.number for row in skipped]
    for row in skipped:
        if row.text.strip() == "":
            rule, message = "ligne-vide", "Ligne vide."
        elif row.actual_columns > width:
            rule = "cellules-en-trop"
            message = f"{row.actual_columns} cellules au lieu de {width} (en-tête)."
        else:
            rule = "cellules-manquantes"
            message = f"{row.actual_columns} cellule(s) au lieu de {width} (en-tête)."
        source.problems.add(
            # The row's text is not repeated: it may hold personal data.
            Problem("structure", rule, message, row=row.number)
        )
    if all(number is not None for number in numbers):
        total = source.table.num_rows + len(skipped)
        source.row_numbers = np.setdiff1d(np.arange(2, total + 2), np.array(numbers))


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
    try:
        # Without a header row, so that pandas renames no duplicate column silently.
        frame = pd.read_excel(path, sheet_name=0, dtype=object, engine="openpyxl", header=None)
    except Exception as error:  # openpyxl raises many types for broken files
        raise reject(
            STAGE, "xlsx-illisible", f"Le classeur {path.name} est illisible : {error}"
        ) from error
    if frame.empty:
        raise reject(STAGE, "fichier-vide", f"Le classeur {path.name} est vide.")
    header = check_header(frame.iloc[0].tolist(), path.name)
    data = frame.iloc[1:, : len(header)]
    data.columns = header
    return SourceTable(table=_frame_to_text(data), source_format="xlsx")


def _cell_to_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | pd.Timestamp):
        if value.hour == value.minute == value.second == 0:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    text = str(value).strip()
    return text or None


def _frame_to_text(frame: pd.DataFrame) -> pa.Table:
    arrays = [
        pa.array([_cell_to_text(v) for v in frame[name].tolist()], type=pa.string())
        for name in frame.columns
    ]
    return pa.Table.from_arrays(arrays, names=list(frame.columns))


# --- Geographic formats ----------------------------------------------------------------------


def read_geographic(path: Path, fmt: str, declared_crs: int | None) -> SourceTable:
    location = _shapefile_in_zip(path) if fmt == "shapefile" else str(path)
    try:
        frame = pyogrio.read_dataframe(location)
    except Exception as error:  # GDAL errors come in several types
        raise reject(
            STAGE, "geo-illisible", f"Le fichier géographique {path.name} est illisible : {error}"
        ) from error
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry is None:
        raise reject(
            STAGE, "geo-sans-geometrie", f"Le fichier {path.name} ne contient pas de géométries."
        )
    crs = _resolve_crs(frame, declared_crs, path.name)
    geometry = frame.geometry.set_crs(f"EPSG:{crs}", allow_override=True)
    attributes = pd.DataFrame(frame.drop(columns=frame.geometry.name))
    return SourceTable(
        table=_frame_to_text(attributes), source_format=fmt, geometry=geometry, crs=crs
    )


def _shapefile_in_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            shapefiles = [n for n in archive.namelist() if n.lower().endswith(".shp")]
    except zipfile.BadZipFile as error:
        raise reject(
            STAGE, "zip-illisible", f"L'archive {path.name} n'est pas un zip valide."
        ) from error
    if len(shapefiles) != 1:
        raise reject(
            STAGE,
            "shapefile-introuvable",
            f"L'archive {path.name} doit contenir "
            f"exactement un fichier .shp (trouvé : {len(shapefiles)}).",
        )
    return f"/vsizip/{path}/{shapefiles[0]}"


def _resolve_crs(frame: gpd.GeoDataFrame, declared: int | None, filename: str) -> int:
    found = frame.crs.to_epsg() if frame.crs is not None else None
    if found is None and frame.crs is not None:
        found = frame.crs.to_epsg(min_confidence=50)
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
