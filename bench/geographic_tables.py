"""Geographic tables bench (issue #15): the real corpus submitted as communes send it.

Every file of tests/data/real_corpus/ in which our code finds positions
(`pipelines.read.read_source` then `pipelines.coordinates.locate_geometry`, nothing
declared) is submitted through the whole pipeline (`pipelines.submission.run_submission`)
in four variants:

- « tel quel »: the file's own bytes;
- « CSV ; cp1252 »: the same cells re-written with the csv module, `;` as separator,
  decimal commas in every cell that is a plain decimal number (point texts, WKT and GeoJSON
  cells are left alone: a commune's spreadsheet does not touch them), encoded cp1252;
  a file holding a character cp1252 cannot encode is not made in this variant;
- « Shapefile 2154 (zip) » and « GeoPackage 3946 »: made by GDAL alone, independently of
  our code: `ogr2ogr` reads the original with GDAL's CSV driver (open options
  X_POSSIBLE_NAMES / Y_POSSIBLE_NAMES or GEOM_POSSIBLE_NAMES, KEEP_GEOM_COLUMNS=NO)
  and reprojects with `-t_srs`. The Shapefile is written in UTF-8 with its .cpg, as QGIS
  writes it. Where GDAL's CSV driver cannot read the positions (one « lat, lon » text
  column, a `|` separator), the points are built here from the raw text (the order of the
  two numbers is read row by row: mainland France's latitudes and longitudes do not
  overlap), written to a GeoPackage by pyogrio, then reprojected by `ogr2ogr` the same way.

Files whose header our reader refuses are still searched for positions: their cells are
read with the csv module and given to `locate_geometry`; they are submitted like the
others (and the refusal is recorded). Files marked `personnel: oui` in manifest.yaml are
submitted too, declaring no treatment: their refusal is expected and recorded apart; they
do not count in the target. When such a refusal is only about personal columns that do not
hold the positions, the same file is submitted again declaring their removal
(`traitement: supprimer`), to see whether its map comes out right.

Reference positions: GDAL's reading of the original (or the points built from its raw
text, as above), reprojected to WGS84 by `ogr2ogr -t_srs EPSG:4326`. The CRS of the
original is WGS84 except where manifest.yaml says otherwise (Lambert-93 X/Y, see
SOURCE_CRS). The published GeoJSON (WGS84) is compared feature by feature, in row order:
geodesic distance (pyproj Geod, WGS84 ellipsoid) vertex by vertex when both geometries
have the same vertices, else the Hausdorff distance in Lambert-93 metres. When the
published file does not have one feature per reference row, each reference geometry is
matched to the nearest published one. The published GeoPackage (dataset CRS, full
precision) is measured the same way after `ogr2ogr -t_srs EPSG:4326`.

Every store is fresh (one per variant). No metadata declares the CRS or the position
columns. The corpus files are small (at most 300 rows): no cap is applied.

    .venv/bin/python bench/geographic_tables.py

Writes bench/GEOGRAPHIC_RESULTS.md (in French).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import re
import subprocess
import tempfile
import time
import traceback
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyogrio
import pyproj
import shapely
import shapely.geometry
import yaml
from pyproj import Geod, Transformer

from core.problems import Problem, SubmissionRejected
from pipelines.coordinates import GeometryColumns, locate_geometry
from pipelines.read.stage import read_source
from pipelines.read.table import SourceTable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS = ROOT / "tests" / "data" / "real_corpus"
OUTPUT = HERE / "GEOGRAPHIC_RESULTS.md"
PRODUCER = "ecully"
TARGET_METRES = 0.01
MAX_LISTED_PROBLEMS = 12  # problems listed per refused submission

# CRS of the original positions when they are not WGS84, as manifest.yaml describes them.
SOURCE_CRS = {"apur_paris_commerces_non_alimentaires.csv": 2154}  # « X/Y Lambert-93 »

AS_IS, CP1252, SHAPEFILE, GEOPACKAGE = (
    "tel quel",
    "CSV ; cp1252",
    "Shapefile 2154 (zip)",
    "GeoPackage 3946",
)
VARIANTS = (AS_IS, CP1252, SHAPEFILE, GEOPACKAGE)

# Mainland France: latitudes and longitudes do not overlap, so a pair tells its own order.
FRANCE_LATITUDES = (41.0, 51.5)
FRANCE_LONGITUDES = (-5.5, 10.0)
NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
DECIMAL = re.compile(r"\s*[+-]?\d+\.\d+\s*")

METADATA = """\
identifiant: {identifier}
titre: "Banc géographique : {title}"
description: "Fichier réel du corpus ({filename}), déposé par le banc d'essai des tableaux \
géographiques."
licence: etalab-2.0
frequence: annuelle
modalites_livraison: Dépôt annuel du fichier.
date_mise_a_jour: 2026-10-01
mots_cles: [banc, carte]
theme: ENVI
contact: {{nom: Banc d'essai, email: banc@mairie-ecully.fr}}
"""

GEOD = Geod(ellps="WGS84")
TO_LAMBERT93 = Transformer.from_crs(4326, 2154, always_xy=True)


# --- the corpus -------------------------------------------------------------------------------


@dataclass
class CorpusFile:
    name: str
    entry: dict[str, Any]  # its manifest.yaml entry
    columns: GeometryColumns | None = None  # where our code finds its positions
    found_crs: int | None = None  # the CRS our code gives them
    read_refusal: list[Problem] = field(default_factory=list)  # our reader's refusal
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)  # raw cells (csv module)
    reference: Reference | None = None

    @property
    def path(self) -> Path:
        return CORPUS / self.name

    @property
    def personal(self) -> bool:
        return str(self.entry.get("personnel", "non")).lower() == "oui"

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.path.stem.lower()).strip("-")[:60]


def load_corpus() -> list[CorpusFile]:
    manifest = yaml.safe_load((CORPUS / "manifest.yaml").read_text(encoding="utf-8"))
    files = []
    for entry in manifest["fichiers"]:
        item = CorpusFile(entry["fichier"], entry)
        item.header, item.rows = raw_cells(item)
        locate(item)
        files.append(item)
    return files


def raw_cells(item: CorpusFile) -> tuple[list[str], list[list[str]]]:
    """The file's cells as the csv module reads them with the manifest's dialect."""
    with item.path.open(encoding=item.entry["encodage"], newline="") as handle:
        lines = list(csv.reader(handle, delimiter=item.entry["separateur"]))
    return lines[0], [row for row in lines[1:] if row]


def locate(item: CorpusFile) -> None:
    """Our code's answer: where the positions are, in which CRS (nothing declared)."""
    try:
        source = read_source(item.path)
    except SubmissionRejected as refusal:
        item.read_refusal = list(refusal.report.problems)
        source = raw_source(item)
    try:
        located, columns = locate_geometry(source, None, None, None, item.name)
    except SubmissionRejected as refusal:
        item.read_refusal += list(refusal.report.problems)
        return
    item.columns, item.found_crs = columns, located.crs


def raw_source(item: CorpusFile) -> SourceTable:
    """The raw cells as a table of text, for a file our reader refuses (duplicate names
    get a suffix, as pandas does)."""
    names, seen = [], Counter()
    for name in item.header:
        names.append(name if not seen[name] else f"{name}.{seen[name]}")
        seen[name] += 1
    width = len(names)
    columns = [
        pa.array([(row[i] if i < len(row) and row[i] != "" else None) for row in item.rows])
        for i in range(width)
    ]
    return SourceTable(table=pa.Table.from_arrays(columns, names=names), source_format="csv")


# --- the reference, read by GDAL ----------------------------------------------------------------


@dataclass
class Reference:
    gdal_source: Path | None  # the file ogr2ogr converts (the CSV, or a GPKG built here)
    open_options: list[str]
    crs: int
    how: str  # how GDAL got the positions, in French
    geometries: list[Any] = field(default_factory=list)  # WGS84, one per row (None: no position)


def gdal_options(columns: GeometryColumns) -> list[str] | None:
    if columns.kind == "xy":
        return [
            f"X_POSSIBLE_NAMES={columns.x}",
            f"Y_POSSIBLE_NAMES={columns.y}",
            "KEEP_GEOM_COLUMNS=NO",
        ]
    if columns.kind in {"wkt", "geojson"}:
        return [f"GEOM_POSSIBLE_NAMES={columns.shape}", "KEEP_GEOM_COLUMNS=NO"]
    return None  # a point text: GDAL's CSV driver has no reader for it


def build_reference(item: CorpusFile, work: Path) -> Reference:
    assert item.columns is not None
    crs = SOURCE_CRS.get(item.name, 4326)
    options = gdal_options(item.columns)
    if options is not None and item.entry["encodage"].startswith("utf-8"):
        try:
            frame = pyogrio.read_dataframe(item.path, **open_options(options))
        except Exception as error:  # GDAL cannot read it: built from the text below
            frame, why = None, f"GDAL : {error}"
        else:
            why = gdal_shortfall(item, frame)
        if why is None:
            reference = Reference(item.path, options, crs, "pilote CSV de GDAL")
            reference.geometries = to_wgs84(reference, work)
            return reference
    else:
        why = (
            "une seule colonne de texte « a, b » : le pilote CSV de GDAL ne la lit pas"
            if options is None
            else "encodage autre qu'UTF-8"
        )
    built = built_points(item, work, crs)
    reference = Reference(built, [], crs, f"points construits depuis le texte brut ({why})")
    reference.geometries = to_wgs84(reference, work)
    return reference


def open_options(options: list[str]) -> dict[str, str]:
    return dict(option.split("=", 1) for option in options)


def gdal_shortfall(item: CorpusFile, frame: Any) -> str | None:
    """Why GDAL's reading cannot be the reference, or None when it can."""
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.isna().all():
        return "le pilote CSV de GDAL ne trouve aucune position"
    if len(frame) != len(item.rows):
        return f"le pilote CSV de GDAL lit {len(frame)} lignes, le module csv {len(item.rows)}"
    return None


def built_points(item: CorpusFile, work: Path, crs: int) -> Path:
    """Points from a « a, b » text column, the order of each pair read from its values;
    the other columns as text. Written to a GeoPackage by pyogrio (GDAL)."""
    assert item.columns is not None and item.columns.shape is not None
    column = item.header.index(item.columns.shape)
    bracketed = any(row[column].strip().startswith("[") for row in item.rows if len(row) > column)
    points = [
        point_from_text(row[column] if column < len(row) else "", bracketed) for row in item.rows
    ]
    names, seen = [], Counter()
    for index, name in enumerate(item.header):
        if index == column:
            continue
        key = name.lower()
        names.append((index, name if not seen[key] else f"{name}_{seen[key]}"))
        seen[key] += 1
    frame = gpd.GeoDataFrame(
        {name: [row[i] if i < len(row) else None for row in item.rows] for i, name in names},
        geometry=points,
        crs=f"EPSG:{crs}",
    )
    path = work / f"{item.slug}-points.gpkg"
    pyogrio.write_dataframe(frame, path, layer=item.slug, driver="GPKG")
    return path


def point_from_text(text: str, bracketed: bool) -> Any:
    numbers = [float(n) for n in NUMBER.findall(text)]
    if len(numbers) != 2:
        return None
    a, b = numbers
    if in_range(a, FRANCE_LATITUDES) and in_range(b, FRANCE_LONGITUDES):
        return shapely.Point(b, a)
    if in_range(a, FRANCE_LONGITUDES) and in_range(b, FRANCE_LATITUDES):
        return shapely.Point(a, b)
    # Outside mainland France: "[x, y]" is Table Schema's geopoint array, longitude first;
    # "a, b" is Opendatasoft's geo_point_2d, latitude first.
    return shapely.Point(a, b) if bracketed else shapely.Point(b, a)


def in_range(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] <= value <= bounds[1]


def to_wgs84(reference: Reference, work: Path) -> list[Any]:
    assert reference.gdal_source is not None
    target = work / f"reference-{reference.gdal_source.stem}.gpkg"
    ogr2ogr(reference, target, "GPKG", 4326)
    frame = pyogrio.read_dataframe(target)
    return list(frame.geometry.array)


def ogr2ogr(reference: Reference, target: Path, driver: str, crs: int, *extra: str) -> None:
    """The reference's source (the original CSV, or the GeoPackage built here) converted
    by ogr2ogr alone."""
    assert reference.gdal_source is not None
    source_crs = ["-s_srs", f"EPSG:{reference.crs}"]
    opening = [part for option in reference.open_options for part in ("-oo", option)]
    convert(reference.gdal_source, target, driver, crs, *source_crs, *extra, *opening)


def convert(source: Path, target: Path, driver: str, crs: int, *extra: str) -> None:
    command = ["ogr2ogr", "-f", driver, "-t_srs", f"EPSG:{crs}", *extra, str(target), str(source)]
    done = subprocess.run(command, capture_output=True, text=True, errors="replace", check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ogr2ogr : {done.stderr.strip()[:400]}")


# --- the variants ----------------------------------------------------------------------------


def cp1252_bytes(item: CorpusFile) -> tuple[bytes | None, str | None]:
    """The file as a French spreadsheet saves it, or why it cannot be."""
    text = io.StringIO()
    writer = csv.writer(text, delimiter=";", lineterminator="\r\n")
    writer.writerow(item.header)
    for row in item.rows:
        writer.writerow([decimal_comma(cell) for cell in row])
    content = text.getvalue()
    missing = sorted({c for c in set(content) if not encodable(c)})
    if missing:
        listed = ", ".join(f"« {c} » (U+{ord(c):04X})" for c in missing[:8])
        more = f" et {len(missing) - 8} autres" if len(missing) > 8 else ""
        return None, f"caractères absents de cp1252 : {listed}{more}"
    return content.encode("cp1252"), None


def decimal_comma(cell: str) -> str:
    return cell.replace(".", ",") if DECIMAL.fullmatch(cell) else cell


def encodable(character: str) -> bool:
    try:
        character.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def shapefile_zip(reference: Reference, item: CorpusFile, work: Path) -> Path:
    folder = work / f"{item.slug}-shp"
    folder.mkdir()
    stem = item.slug.replace("-", "_")[:40]
    ogr2ogr(reference, folder / f"{stem}.shp", "ESRI Shapefile", 2154, "-lco", "ENCODING=UTF-8")
    archive = work / f"{stem}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for part in sorted(folder.iterdir()):
            bundle.write(part, part.name)
    return archive


def geopackage(reference: Reference, item: CorpusFile, work: Path) -> Path:
    target = work / f"{item.slug.replace('-', '_')[:40]}.gpkg"
    ogr2ogr(reference, target, "GPKG", 3946, "-nln", item.slug.replace("-", "_"))
    return target


# --- submitting and measuring ------------------------------------------------------------------


@dataclass
class Result:
    file: CorpusFile
    variant: str
    status: str  # publiee | refusee | confirmee | non produite | plantage
    seconds: float | None = None
    geometry_type: str | None = None
    crs: int | None = None
    positions: str | None = None  # where our code read the positions
    published: int | None = None  # features with a geometry in the published GeoJSON
    expected: int | None = None  # reference rows with a position
    max_metres: float | None = None
    gpkg_max_metres: float | None = None  # the published GeoPackage (full precision)
    worst_row: int | None = None  # 1-based data row of the largest distance
    rows_over: int = 0  # rows farther than the target from their reference
    matching: str = "ligne à ligne"
    problems: list[Problem] = field(default_factory=list)
    repairs: list[Any] = field(default_factory=list)  # core.problems.Repair
    note: str = ""
    treated: bool = False  # resubmitted declaring the removal of the refused personal columns

    @property
    def is_map(self) -> bool:
        return self.status == "publiee" and self.geometry_type is not None


class Stores:
    """One fresh store per variant."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.opened: dict[str, tuple[Any, Any]] = {}

    def get(self, variant: str) -> tuple[Any, Any]:
        if variant not in self.opened:
            from core.settings import load_settings
            from pipelines.submission import open_settings_store

            folder = self.work / f"store-{VARIANTS.index(variant)}"
            os.environ["OPENDATA_DATA_DIR"] = str(folder / "data")
            os.environ["OPENDATA_INBOX_DIR"] = str(folder / "inbox")
            settings = load_settings()
            self.opened[variant] = (settings, open_settings_store(settings))
        settings, store = self.opened[variant]
        os.environ["OPENDATA_DATA_DIR"] = str(settings.data_dir)
        os.environ["OPENDATA_INBOX_DIR"] = str(settings.inbox_dir)
        return settings, store


def submit(
    stores: Stores,
    item: CorpusFile,
    variant: str,
    filename: str,
    content: bytes,
    work: Path,
    *,
    treated: bool = False,
    extra_metadata: str = "",
) -> Result:
    from pipelines.submission import Submission, run_submission

    settings, store = stores.get(variant)
    suffix = "-traite" if treated else ""
    folder = work / f"submission-{VARIANTS.index(variant)}{suffix}" / item.slug
    folder.mkdir(parents=True)
    data = folder / filename
    data.write_bytes(content)
    (folder / "metadata.yaml").write_text(
        METADATA.format(identifier=item.slug, title=item.path.stem, filename=item.name)
        + extra_metadata,
        encoding="utf-8",
    )
    label = f"{variant} + colonnes personnelles supprimées" if treated else variant
    result = Result(item, label, "plantage", treated=treated)
    started = time.perf_counter()
    try:
        outcome = run_submission(
            Submission.new(PRODUCER, data, folder / "metadata.yaml", "banc"), settings, store
        )
    except Exception as error:  # a crash is a finding: recorded, the bench goes on
        result.seconds = time.perf_counter() - started
        result.note = f"{type(error).__name__} : {error}"
        result.problems = [Problem("plantage", type(error).__name__, traceback.format_exc())]
        return result
    result.seconds = time.perf_counter() - started
    result.status = outcome.status
    result.problems = list(outcome.report.problems)
    result.repairs = list(outcome.report.repairs)
    if outcome.status == "publiee":
        structure = store.structure_versions(outcome.dataset)[-1].structure
        result.geometry_type = structure.get("geometry_type")
        result.crs = structure.get("crs")
        result.positions = describe_positions(structure.get("geometry_columns"))
        release = store.current_release(outcome.dataset)
        geojson = store.release_path(release, "geojson")
        if geojson is None:
            result.note = "pas de GeoJSON publié"
        else:
            measure(result, geojson)
        package = store.release_path(release, "gpkg")
        if package is not None and result.file.reference and result.file.reference.geometries:
            result.gpkg_max_metres = measure_gpkg(result, package, folder)
    return result


def describe_positions(columns: dict[str, Any] | None) -> str:
    if not columns:
        return "fichier géographique"
    if columns.get("kind") == "xy":
        return f"x « {columns['x']} », y « {columns['y']} »"
    return f"« {columns['shape']} » ({columns['kind']})"


def measure(result: Result, geojson: Path) -> None:
    assert result.file.reference is not None
    reference = result.file.reference.geometries
    if not reference:
        result.note = "pas de référence : écart non mesuré"
        return
    features = json.loads(geojson.read_text(encoding="utf-8"))["features"]
    published = [
        shapely.geometry.shape(f["geometry"]) if f.get("geometry") else None for f in features
    ]
    result.published = sum(g is not None for g in published)
    result.expected = sum(g is not None for g in reference)
    if len(published) == len(reference):
        pairs = list(enumerate(zip(reference, published, strict=True)))
    else:
        result.matching = (
            f"au plus proche ({len(published)} entités publiées pour {len(reference)} lignes)"
        )
        pairs = list(enumerate(nearest_pairs(reference, published)))
    worst, worst_row = 0.0, None
    for index, (expected, got) in pairs:
        metres = distance(expected, got)
        result.rows_over += metres > TARGET_METRES
        if metres > worst or (math.isinf(metres) and worst_row is None):
            worst, worst_row = metres, index + 1
    result.max_metres, result.worst_row = worst, worst_row


def measure_gpkg(result: Result, package: Path, work: Path) -> float:
    """The largest distance between the reference and the published GeoPackage (in the
    dataset's CRS, at full precision), brought to WGS84 by ogr2ogr."""
    assert result.file.reference is not None
    reference = result.file.reference.geometries
    target = work / "publie-wgs84.gpkg"
    convert(package, target, "GPKG", 4326)
    published = list(pyogrio.read_dataframe(target).geometry.array)
    if len(published) != len(reference):
        pairs = nearest_pairs(reference, published)
    else:
        pairs = list(zip(reference, published, strict=True))
    return max((distance(expected, got) for expected, got in pairs), default=0.0)


def nearest_pairs(reference: list[Any], published: list[Any]) -> list[tuple[Any, Any]]:
    present = [g for g in published if g is not None]
    if not present:
        return [(g, None) for g in reference]
    tree = shapely.STRtree(present)
    return [(g, None if g is None else present[int(tree.nearest(g))]) for g in reference]


def distance(expected: Any, got: Any) -> float:
    """Metres between the reference and the published geometry (0 when neither exists)."""
    if expected is None and got is None:
        return 0.0
    if expected is None or got is None:
        return math.inf
    a, b = shapely.get_coordinates(expected), shapely.get_coordinates(got)
    vertexwise = math.inf
    if a.shape == b.shape:
        with np.errstate(invalid="ignore"):
            _, _, metres = GEOD.inv(a[:, 0], a[:, 1], b[:, 0], b[:, 1])
        vertexwise = float(np.max(metres))
        if vertexwise <= TARGET_METRES:
            return vertexwise
    return min(vertexwise, hausdorff(expected, got))


def hausdorff(expected: Any, got: Any) -> float:
    project = np.vectorize(lambda x, y: TO_LAMBERT93.transform(x, y), otypes=[float, float])

    def projected(geometry: Any) -> Any:
        return shapely.transform(geometry, lambda xy: np.column_stack(project(xy[:, 0], xy[:, 1])))

    return float(shapely.hausdorff_distance(projected(expected), projected(got)))


# --- the run -----------------------------------------------------------------------------------


def run(work: Path) -> tuple[list[CorpusFile], list[Result]]:
    files = load_corpus()
    stores = Stores(work)
    results = []
    for item in files:
        if item.columns is None:
            continue
        item_work = work / "files" / item.slug
        item_work.mkdir(parents=True)
        try:
            item.reference = build_reference(item, item_work)
        except RuntimeError as error:  # no reference: submitted all the same, not measured
            item.reference = Reference(None, [], 4326, f"référence impossible ({error})")
        print(f"{item.name}: {item.reference.how}", flush=True)
        for variant in VARIANTS:
            for result in run_variant(stores, item, variant, item_work):
                results.append(result)
                metres = "—" if result.max_metres is None else f"{result.max_metres * 100:.4f}"
                print(f"  {result.variant:40} {result.status:12} {metres} cm", flush=True)
    return files, results


def run_variant(stores: Stores, item: CorpusFile, variant: str, work: Path) -> list[Result]:
    """The variant's submission; for a `personnel: oui` file refused for untreated personal
    columns, a second one declaring their removal, to see whether its map comes out."""
    made = make_variant(item, variant, work)
    if isinstance(made, str):
        return [Result(item, variant, "non produite", note=made)]
    filename, content = made
    first = submit(stores, item, variant, filename, content, work)
    treatments = removals(item, first)
    if treatments is None:
        return [first]
    second = submit(
        stores, item, variant, filename, content, work, treated=True, extra_metadata=treatments
    )
    return [first, second]


def make_variant(item: CorpusFile, variant: str, work: Path) -> tuple[str, bytes] | str:
    """The file to submit (name, bytes), or why the variant cannot be made."""
    reference = item.reference
    assert reference is not None
    try:
        if variant == AS_IS:
            return item.name, item.path.read_bytes()
        if variant == CP1252:
            encoded, why = cp1252_bytes(item)
            if encoded is None:
                return why or "non produite"
            return item.name, encoded
        if reference.gdal_source is None:
            return reference.how
        if variant == SHAPEFILE:
            archive = shapefile_zip(reference, item, work)
            return archive.name, archive.read_bytes()
        package = geopackage(reference, item, work)
        return package.name, package.read_bytes()
    except RuntimeError as error:
        return str(error)


def removals(item: CorpusFile, result: Result) -> str | None:
    """Metadata lines removing every personal column a refusal names, when the refusal is
    only about such columns and none of them holds the positions."""
    if not item.personal or result.status != "refusee" or not result.problems:
        return None
    if any(p.rule != "donnee-personnelle-non-traitee" for p in result.problems):
        return None
    columns = sorted({p.column for p in result.problems if p.column})
    positions = set(item.columns.columns if item.columns else []) | {"geometry"}
    if not columns or positions & set(columns):
        return None
    lines = ["donnees_personnelles:"]
    lines += [f"  {json.dumps(c, ensure_ascii=False)}: {{traitement: supprimer}}" for c in columns]
    return "\n".join(lines) + "\n"


# --- the report (in French) ---------------------------------------------------------------------


def centimetres(result: Result) -> str:
    """The largest distance in centimetres, for the table (kilometres when that large)."""
    if result.max_metres is None:
        return "—"
    if math.isinf(result.max_metres) or result.max_metres >= 1000:
        return cm_text(result.max_metres)
    return f"{result.max_metres * 100:.4f}"


def code_version() -> str:
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "pipelines", "catalog"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return head + (" + modifications non commitées de pipelines/ et catalog/" if dirty else "")


def gdal_version() -> str:
    done = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip().split(",")[0]


def problem_line(problem: Problem) -> str:
    where = problem.location()
    message = " ".join(problem.message.split())
    return f"`{problem.stage}/{problem.rule}`{f' ({where})' if where else ''} : {message}"


def write_report(files: list[CorpusFile], results: list[Result], elapsed: float) -> None:
    located = [f for f in files if f.columns is not None]
    lines = [
        "# Tableaux géographiques : le corpus réel déposé comme les communes l'envoient "
        "(issue #15)",
        "",
        f"Produit par `.venv/bin/python bench/geographic_tables.py` le {date.today()} "
        f"({gdal_version()}, pyogrio {pyogrio.__version__}, pyproj {pyproj.__version__}, "
        f"PROJ {pyproj.proj_version_str}, Python {platform.python_version()}, notre code : "
        f"{code_version()}). Durée totale : {elapsed:.0f} s. Machine : 2 cœurs partagés.",
        "",
        *METHOD,
        "",
        "## Résumé",
        "",
        *summary_lines(files, results),
        "",
        "## Constats",
        "",
        "Classement automatique des refus et des écarts (le détail des messages suit dans "
        "« Refus et variantes non produites »).",
        "",
        *finding_lines(results),
        "",
        "## Tableau",
        "",
        "Type de géométrie : celui que retient la structure publiée (famille, « Multi » "
        "retiré). Écarts en centimètres ; « ligne de données » 1 = première ligne après "
        "l'en-tête.",
        "",
        *table_lines(results),
        "",
        "## Refus et variantes non produites",
        "",
        *refusal_lines(results, files),
        "## Écarts de plus de 1 cm et positions perdues",
        "",
        *over_lines(results),
        "",
        "## Réparations signalées sur les dépôts publiés",
        "",
        *repair_lines(results),
        "",
        "## Références",
        "",
        *[
            f"- {item.name} : {item.reference.how} ; notre code y trouve "
            f"{describe_positions(item.columns.to_dict() if item.columns else None)}, "
            f"EPSG:{item.found_crs}."
            for item in located
            if item.reference
        ],
        "",
        "## Fichiers sans positions",
        "",
        *[f"- {item.name}{unfound(item)}" for item in files if item.columns is None],
    ]
    OUTPUT.write_text("\n".join(lines) + "\n", encoding="utf-8")


def unfound(item: CorpusFile) -> str:
    """Why a file has no positions: its reader's refusal, or GeoJSON cells we missed."""
    notes = []
    if item.read_refusal:
        notes.append(f"lecture refusée : {problem_line(item.read_refusal[0])}")
    for index, name in enumerate(item.header):
        cells = [row[index] for row in item.rows if index < len(row) and row[index].strip()]
        if cells and all('"coordinates"' in cell and "{" in cell for cell in cells):
            notes.append(
                f"la colonne « {name} » contient des géométries GeoJSON que `locate_geometry` "
                "ne retient pas (nom absent de ses listes)"
            )
    return f" ({' ; '.join(notes)})" if notes else ""


METHOD = [
    "Corpus : `tests/data/real_corpus/` (provenance et licences dans son `manifest.yaml`). "
    "Un fichier entre dans le banc quand notre code y trouve des positions (`read_source` "
    "puis `locate_geometry`, rien de déclaré) ; quand notre lecteur refuse le fichier, ses "
    "cellules lues par le module csv sont données à `locate_geometry`. Les fichiers marqués "
    "`personnel: oui` sont déposés aussi, sans traitement déclaré : leur refus est attendu ; "
    "quand il ne porte que sur des colonnes personnelles qui ne tiennent pas les positions, "
    "le même fichier est redéposé en déclarant leur suppression (`traitement: supprimer`), "
    "pour voir si sa carte sort. Ils sont comptés à part et n'entrent pas dans l'objectif.",
    "",
    "Chaque fichier est déposé en quatre variantes, chacune dans un entrepôt neuf, par "
    "`run_submission` (chaîne complète, en processus), sans déclarer ni système de "
    "coordonnées ni colonnes de position :",
    "",
    "- **tel quel** : les octets du fichier ;",
    "- **CSV ; cp1252** : les mêmes cellules réécrites par le module csv, séparateur `;`, "
    "virgule décimale dans toute cellule qui est un nombre décimal (les textes « lat, lon », "
    "WKT et GeoJSON ne sont pas touchés, comme dans un tableur), encodées en cp1252 ; un "
    "fichier qui contient un caractère absent de cp1252 n'est pas produit dans cette "
    "variante ;",
    "- **Shapefile 2154 (zip)** et **GeoPackage 3946** : fabriqués par GDAL seul, sans notre "
    "code : `ogr2ogr` lit l'original avec le pilote CSV de GDAL (`-oo X_POSSIBLE_NAMES`, "
    "`Y_POSSIBLE_NAMES` ou `GEOM_POSSIBLE_NAMES`, `KEEP_GEOM_COLUMNS=NO`) et reprojette avec "
    "`-t_srs EPSG:2154` / `EPSG:3946` ; Shapefile écrit en UTF-8 avec son `.cpg` (comme "
    "QGIS), zippé. Quand le pilote CSV de GDAL ne lit pas les positions (une seule colonne "
    "de texte « a, b »), les points sont construits ici depuis le texte brut (l'ordre des "
    "deux nombres est lu ligne à ligne : en métropole latitudes et longitudes ne se "
    "recouvrent pas ; hors métropole « [x, y] » est lu longitude d'abord, « a, b » latitude "
    "d'abord), écrits en GeoPackage par pyogrio, puis reprojetés par `ogr2ogr` de la même "
    "façon.",
    "",
    "Référence : la lecture de l'original par GDAL (ou les points construits depuis le "
    "texte brut), reprojetée en WGS84 par `ogr2ogr -t_srs EPSG:4326` ; l'original est en "
    "WGS84 sauf `apur_paris_commerces_non_alimentaires.csv` (X/Y Lambert-93 d'après "
    "`manifest.yaml`). Le GeoJSON publié (WGS84) est comparé entité par entité dans l'ordre "
    "des lignes : distance géodésique (pyproj `Geod`, ellipsoïde WGS84) sommet à sommet quand "
    "les deux géométries ont les mêmes sommets, sinon distance de Hausdorff en mètres "
    "Lambert-93 ; une position perdue (présente d'un côté seulement) compte pour un écart "
    "infini. Quand le fichier publié n'a pas une entité par ligne, chaque géométrie de "
    "référence est appariée à la plus proche publiée. Le GeoPackage publié (dans le SCR du "
    "jeu, pleine précision) est mesuré de la même façon après `ogr2ogr -t_srs EPSG:4326`. "
    "Les fichiers du corpus ont au plus 300 lignes : aucune coupe. Temps de dépôt : "
    "`run_submission` seul (lecture, contrôles, publication), hors fabrication des variantes ; "
    "le premier dépôt du passage comprend le chargement des modules.",
]


def summary_lines(files: list[CorpusFile], results: list[Result]) -> list[str]:
    located = [f for f in files if f.columns is not None]
    public = [f for f in located if not f.personal]
    personal = [f for f in located if f.personal]
    public_results = [r for r in results if not r.file.personal]

    def produced(item: CorpusFile) -> list[Result]:
        return [r for r in public_results if r.file is item and r.status != "non produite"]

    everywhere = [f for f in public if all(r.is_map for r in produced(f))]
    somewhere = [f for f in public if any(r.is_map for r in produced(f))]
    measured = [r for r in public_results if r.max_metres is not None]
    worst = max(measured, key=lambda r: r.max_metres or 0.0, default=None)
    worst_gpkg = max(
        (r.gpkg_max_metres for r in public_results if r.gpkg_max_metres is not None),
        default=None,
    )
    over = [r for r in measured if (r.max_metres or 0.0) > TARGET_METRES]
    lines = [
        f"- Fichiers du corpus : {len(files)} ; avec des positions : **{len(located)}** "
        f"({len(public)} non personnels, {len(personal)} `personnel: oui`) ; sans : "
        f"{len(files) - len(located)}.",
        f"- Fichiers non personnels devenus une carte dans **toutes** leurs variantes "
        f"produites : **{len(everywhere)} / {len(public)}** ; dans au moins une : "
        f"{len(somewhere)} / {len(public)}.",
        f"- Dépôts de fichiers non personnels : {len(public_results)} "
        f"({sum(r.is_map for r in public_results)} cartes publiées, "
        f"{sum(r.status == 'refusee' for r in public_results)} refus, "
        f"{sum(r.status == 'plantage' for r in public_results)} plantages, "
        f"{sum(r.status == 'non produite' for r in public_results)} variantes non produites).",
    ]
    for variant in VARIANTS:
        chosen = [r for r in public_results if r.variant == variant]
        measured_here = [r.max_metres for r in chosen if r.max_metres is not None]
        worst_here = max(measured_here, default=None)
        lines.append(
            f"  - {variant} : **{sum(r.is_map for r in chosen)} cartes / {len(chosen)} "
            f"fichiers** ({sum(r.status == 'non produite' for r in chosen)} non produites, "
            f"{sum(r.status == 'refusee' for r in chosen)} refus, "
            f"{sum(r.status == 'plantage' for r in chosen)} plantages) ; écart max "
            f"{'—' if worst_here is None else f'{worst_here * 100:.4f} cm'}."
        )
    if worst is not None:
        lines.append(
            f"- Pire écart du GeoJSON publié (fichiers non personnels) : "
            f"**{cm_text(worst.max_metres or 0.0)}** ({worst.file.name}, {worst.variant}, ligne de "
            f"données {worst.worst_row}) ; dépôts au-delà de 1 cm : **{len(over)}** sur "
            f"{len(measured)} mesurés."
        )
    if worst_gpkg is not None:
        lines.append(
            f"- Pire écart du GeoPackage publié (pleine précision) : "
            f"{worst_gpkg * 100:.6f} cm."
            + (
                " L'écart du GeoJSON vient donc de son arrondi à 7 décimales (GDAL, option "
                "RFC7946=YES de pipelines/publish.py : 10⁻⁷ degré ≈ 1,1 cm en latitude) ; il "
                "est nul pour les fichiers dont les coordonnées ont 7 décimales au plus."
                if worst_gpkg < 0.001
                else ""
            )
        )
    for item in personal:
        chosen = [r for r in results if r.file is item]
        first = [r for r in chosen if not r.treated]
        treated = [r for r in chosen if r.treated]
        rules = sorted({first_rule(r) for r in first if r.status == "refusee"})
        text = (
            f"- `personnel: oui` — {item.name} : {sum(r.is_map for r in first)} cartes sur "
            f"{len(first)} dépôts sans traitement (refus : {', '.join(rules) or 'aucun'})"
        )
        if treated:
            worst_treated = max(
                (r.max_metres for r in treated if r.max_metres is not None), default=None
            )
            text += (
                f" ; redéposé avec suppression des colonnes personnelles : "
                f"{sum(r.is_map for r in treated)} cartes sur {len(treated)}, écart max "
                f"{'—' if worst_treated is None else cm_text(worst_treated)}"
            )
        lines.append(text + ".")
    return lines


def finding_lines(results: list[Result]) -> list[str]:
    def names(chosen: list[Result]) -> str:
        return ", ".join(sorted({f"{r.file.name} ({r.variant})" for r in chosen}))

    def has(result: Result, rule: str, text: str = "") -> bool:
        return any(p.rule == rule and text in p.message for p in result.problems)

    published_as_is = {r.file.name for r in results if r.variant == AS_IS and r.is_map}
    findings = [
        (
            [r for r in results if has(r, "geo-illisible", "codec can't decode")],
            "Shapefile refusé comme illisible : GDAL (3.6, `ENCODING=UTF-8`, comme QGIS) "
            "tronque les noms de champs à 10 octets, parfois au milieu d'un caractère "
            "accentué (« Intitulé gare » devient `Intitul\\xc3…`) ; GDAL relit ce fichier, "
            "notre lecteur s'arrête sur l'erreur de décodage Python, citée telle quelle dans "
            "le message",
        ),
        (
            [
                r
                for r in results
                if r.variant == SHAPEFILE
                and not r.file.personal
                and r.file.name in published_as_is
                and has(r, "donnee-personnelle-non-traitee")
            ],
            "données personnelles détectées seulement dans le Shapefile, pas dans le CSV "
            "d'origine publié tel quel : les noms de colonnes tronqués à 10 caractères "
            "(« Nom statio », « nom_realis ») ne sont plus reconnus",
        ),
        (
            [r for r in results if has(r, "type", "décimales avec")],
            "colonne de coordonnées qui mêle virgules et points décimaux (quelques lignes "
            "au point dans un fichier à la virgule) : refusée par le contrôle de type alors "
            "que `locate_geometry` et GDAL lisent ces valeurs",
        ),
        (
            [r for r in results if has(r, "entete-duplique")],
            "en-tête avec un nom de colonne en double (refus de lecture légitime ; GDAL "
            "renomme la seconde, d'où les Shapefile et GeoPackage publiés)",
        ),
        (
            [
                r
                for r in results
                if r.max_metres is not None
                and r.max_metres > TARGET_METRES
                and r.positions
                and ("latlon" in r.positions or "lonlat" in r.positions)
            ],
            "colonne « a, b » dont l'ordre change d'une ligne à l'autre : un seul ordre est "
            "retenu pour toute la colonne et les lignes minoritaires sont publiées axes "
            "inversés, sans refus ni avertissement",
        ),
        (
            [r for r in results if r.status == "non produite" and r.variant == CP1252],
            "variante cp1252 non produite : caractères absents de cp1252 dans l'original",
        ),
    ]
    lines = [f"- {text} : {names(chosen)}." for chosen, text in findings if chosen]
    return lines or ["Aucun refus ni écart au-delà de 1 cm."]


def cm_text(metres: float) -> str:
    if math.isinf(metres):
        return "∞ (position perdue)"
    return f"{metres / 1000:.0f} km" if metres >= 1000 else f"{metres * 100:.4f} cm"


def table_lines(results: list[Result]) -> list[str]:
    lines = [
        "| fichier | personnel | variante | statut | type de géométrie | SCR publié | "
        "positions lues dans | objets (publiés / attendus) | écart max GeoJSON (cm) | "
        "écart max GPKG (cm) | temps de dépôt (s) |",
        "|---|---|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        objects = "—" if r.published is None else f"{r.published} / {r.expected}"
        seconds = "—" if r.seconds is None else f"{r.seconds:.2f}"
        status = "publiée" if r.status == "publiee" else r.status
        if r.status == "refusee":
            status = f"refusée ({first_rule(r)})"
        gpkg = "—"
        if r.gpkg_max_metres is not None:
            gpkg = (
                cm_text(r.gpkg_max_metres)
                if math.isinf(r.gpkg_max_metres) or r.gpkg_max_metres >= 1000
                else f"{r.gpkg_max_metres * 100:.4f}"
            )
        lines.append(
            f"| {r.file.name} | {'oui' if r.file.personal else 'non'} | {r.variant} | "
            f"{status} | {r.geometry_type or '—'} | "
            f"{'EPSG:' + str(r.crs) if r.crs else '—'} | {r.positions or '—'} | {objects} | "
            f"{centimetres(r)} | {gpkg} | {seconds} |"
        )
    return lines


def first_rule(result: Result) -> str:
    return result.problems[0].rule if result.problems else "?"


def refusal_lines(results: list[Result], files: list[CorpusFile]) -> list[str]:
    lines = []
    read_refused = [f for f in files if f.columns is not None and f.read_refusal]
    if read_refused:
        lines += [
            "Fichiers avec des positions que notre lecteur refuse tels quels (positions "
            "trouvées sur les cellules lues par le module csv) :",
            "",
            *[f"- {item.name} : {problem_line(item.read_refusal[0])}" for item in read_refused],
            "",
        ]
    for personal in (False, True):
        chosen = [
            r
            for r in results
            if r.file.personal == personal and r.status not in {"publiee", "confirmee"}
        ]
        title = (
            "Fichiers `personnel: oui` (refus attendus)"
            if personal
            else "Fichiers non personnels (constats)"
        )
        lines += [f"### {title}", ""]
        if not chosen:
            lines.append("Aucun.")
        for r in chosen:
            status = "refusée" if r.status == "refusee" else r.status
            lines.append(
                f"- **{r.file.name}, {r.variant}** — {status}" + (f" : {r.note}" if r.note else "")
            )
            lines += [f"  - {problem_line(p)}" for p in r.problems[:MAX_LISTED_PROBLEMS]]
            if len(r.problems) > MAX_LISTED_PROBLEMS:
                lines.append(f"  - … et {len(r.problems) - MAX_LISTED_PROBLEMS} autres.")
        lines.append("")
    return lines


def over_lines(results: list[Result]) -> list[str]:
    over = [
        r
        for r in results
        if (r.max_metres or 0.0) > TARGET_METRES or (r.gpkg_max_metres or 0.0) > TARGET_METRES
    ]
    if not over:
        return ["Aucun."]
    lines = []
    for r in over:
        gpkg = "—" if r.gpkg_max_metres is None else cm_text(r.gpkg_max_metres)
        lines.append(
            f"- {r.file.name}, {r.variant} : GeoJSON "
            f"{'—' if r.max_metres is None else cm_text(r.max_metres)} (ligne de données "
            f"{r.worst_row} ; {r.rows_over} lignes au-delà de 1 cm), GeoPackage {gpkg} ; "
            f"{r.matching} ; positions lues dans "
            f"{r.positions} ; {r.published} / {r.expected} objets."
        )
    return lines


def repair_lines(results: list[Result]) -> list[str]:
    lines = []
    for result in results:
        for repair in result.repairs:
            message = " ".join(repair.message.split())
            lines.append(
                f"- {result.file.name}, {result.variant} : `{repair.stage}/{repair.rule}` "
                f"(colonne « {repair.column} », {repair.count}) : {message}"
            )
    return lines or ["Aucune."]


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="geographic-tables-") as scratch:
        files, results = run(Path(scratch))
        write_report(files, results, time.perf_counter() - started)
    print(f"Écrit : {OUTPUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
