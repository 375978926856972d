"""Geographic tables: a CSV or spreadsheet whose columns hold positions becomes a map.

The most common municipal open-data file is a table with latitude and longitude
columns (fountains, toilets, sports facilities). Its positions are found, in order:

1. in the metadata: `colonnes_geographiques: {x: <colonne>, y: <colonne>}` or
   `{geometrie: <colonne>}` (a WKT or GeoJSON column);
2. in the schema: a `geojson` field, else a `geopoint` field (all three formats);
3. by name: a WKT/GeoJSON column (`geometry`, `wkt`, `geo_shape`…), Opendatasoft's
   `geo_point_2d` ("lat, lon"), or a pair of coordinate columns (`latitude`/`longitude`,
   `lat`/`lon`, `y`/`x`, `ylat`/`xlong`, `y_l93`/`x_l93`…) holding numbers.

The columns stay in the table; the geometry is built beside them, in the declared CRS or,
when none is declared, the one the values can only be in (degrees for latitude and
longitude; Lambert-93 or CC46 for metres, whichever puts the points on the metropolis).
Then the checks of every geographic file apply: swapped axes, metres declared as
degrees, a declared CRS the data contradict — refused, never dropped.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from pyproj import CRS

from core.metadata_checks import accepted_crs_list
from core.problems import Problem, Repair, reject
from pipelines.personal.words import column_tokens
from pipelines.read import geometry
from pipelines.read.geometry import MOSTLY, PROJECTED_CRS
from pipelines.read.table import SourceTable
from pipelines.structured_types import geopoint_coordinates

STAGE = "lecture"
WGS84 = 4326

LATITUDE_NAMES = {"lat", "latitude", "ylat", "latwgs84", "latitudewgs84", "coordlat", "wgs84lat"}
LONGITUDE_NAMES = {
    "lon", "lng", "long", "longitude", "xlong", "xlon", "lonwgs84", "longwgs84",
    "longitudewgs84", "coordlon", "coordlong", "wgs84lon", "wgs84long",
}  # fmt: skip
# X/Y columns, in degrees or metres: `x`, `coord_x`, `coordonnee_x`, `x_l93`, `x_cc46`…
XY_NAME = re.compile(r"^(coord(onnees?)?)?(?P<axis>[xy])(l93|lambert93?|cc46|wgs84|rgf93)?$")
GEOMETRY_NAMES = {"geometry", "geometrie", "geom", "thegeom", "wkt", "geojson", "geoshape", "shape"}
SHAPE_PREFIXES = ("geom", "wkt", "thegeom", "geoshape")
LAT_LON_POINT_NAMES = {"geopoint2d"}  # Opendatasoft exports: "45.76, 4.83", latitude first
# One column holding both coordinates, "a, b" or "[a, b]", in an order its values tell.
POINT_TEXT_NAMES = {
    "geopoint", "geolocalisation", "geoloc", "coordonnees", "coordonneesgeographiques",
    "coordonneesgeo", "coordgeo", "coordinates", "coordonneesxy", "coordonneexy", "position",
    "localisation", "latlon", "latlong", "lonlat", "xy",
}  # fmt: skip
POINT_TEXT = r"^\s*\[?\s*[+-]?\d+(\.\d+)?\s*,\s*[+-]?\d+(\.\d+)?\s*\]?\s*$"
FRANCE_LATITUDES = (41.0, 51.5)
FRANCE_LONGITUDES = (-5.5, 10.0)
WKT_START = re.compile(
    r"^\s*(SRID=\d+;\s*)?(POINT|LINESTRING|POLYGON|MULTIPOINT|MULTILINESTRING|MULTIPOLYGON|"
    r"GEOMETRYCOLLECTION)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class GeometryColumns:
    """Where a table's positions are: two coordinate columns, or one column of shapes."""

    x: str | None = None
    y: str | None = None
    shape: str | None = None  # WKT, GeoJSON or geopoint text
    # xy | wkt | geojson | geopoint[-array|-object] (schema) | latlon | lonlat (point text)
    kind: str = "xy"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @property
    def columns(self) -> list[str]:
        return [c for c in (self.x, self.y, self.shape) if c]


def locate_geometry(
    source: SourceTable,
    schema: dict[str, Any] | None,
    declared: dict[str, str] | None,
    declared_crs: int | None,
    filename: str,
) -> tuple[SourceTable, GeometryColumns | None]:
    """The table with its geometry built from its columns, when it has positions."""
    if source.is_geographic:
        return source, None
    if declared:
        columns = _declared_columns(source, declared, filename)
    else:
        candidates = _schema_columns(schema) + _named_columns(source.table)
        columns = _fullest(source.table, candidates)
    if columns is None:
        if declared_crs is not None:
            raise _crs_without_positions(source, declared_crs, filename)
        return source, None
    x, y = _coordinates(source, columns, filename)
    geometries = _geometries(source, columns, x, y)
    if columns.kind in {"wkt", "geojson"}:
        bounds = shapely.bounds(geometries)
        x, y = (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2
    crs = _crs(columns, x, y, declared_crs, filename)
    located = dataclasses.replace(
        source, geometry=gpd.GeoSeries(geometries, crs=f"EPSG:{crs}"), crs=crs
    )
    geometry.check_geography(located, filename)
    return located, columns


def _crs_without_positions(source: SourceTable, crs: int, filename: str) -> Exception:
    return reject(
        STAGE,
        "positions-introuvables",
        f"Les métadonnées déclarent le système de coordonnées EPSG:{crs}, mais aucune colonne "
        f"de {filename} ne donne de positions reconnaissables (colonnes : "
        f"{', '.join(source.table.column_names[:20])}). Nommez-les avec "
        "« colonnes_geographiques: {x: …, y: …} », ou retirez « systeme_coordonnees ».",
        column="systeme_coordonnees",
    )


# --- where the positions are -----------------------------------------------------------------


def _folded(name: str) -> str:
    """The header's words run together: « Coordonnées géo » → "coordonneesgeo"."""
    return column_tokens(name).replace("_", "")


def _declared_columns(
    source: SourceTable, declared: dict[str, str], filename: str
) -> GeometryColumns:
    names = source.table.column_names
    for column in declared.values():
        if column not in names:
            raise reject(
                STAGE,
                "colonne-geographique-absente",
                f"La colonne « {column} » déclarée dans « colonnes_geographiques » est absente "
                f"de {filename} (colonnes : {', '.join(names)}).",
                column=column,
            )
    if "geometrie" in declared:
        shape = declared["geometrie"]
        kind = "geojson" if _looks_like_geojson(source.table.column(shape)) else "wkt"
        return GeometryColumns(shape=shape, kind=kind)
    return GeometryColumns(x=declared["x"], y=declared["y"])


def _fullest(table: pa.Table, candidates: list[GeometryColumns]) -> GeometryColumns | None:
    """The candidate with positions in the most rows (the first on a tie); none when every
    candidate is empty (a schema's optional geopoint left blank draws no map)."""
    best, most = None, 0
    for candidate in candidates:
        filled = min(table.num_rows - table.column(c).null_count for c in candidate.columns)
        if filled > most:
            best, most = candidate, filled
    return best


def _schema_columns(schema: dict[str, Any] | None) -> list[GeometryColumns]:
    fields = (schema or {}).get("fields", [])
    shapes = [
        GeometryColumns(shape=f["name"], kind="geojson")
        for f in fields
        if f.get("type") == "geojson" and f.get("format", "default") == "default"
    ]
    points = [
        GeometryColumns(shape=f["name"], kind=_geopoint_kind(f.get("format", "default")))
        for f in fields
        if f.get("type") == "geopoint"
    ]
    return shapes + points


def _geopoint_kind(fmt: str) -> str:
    return "geopoint" if fmt == "default" else f"geopoint-{fmt}"


def _named_columns(table: pa.Table) -> list[GeometryColumns]:
    folded = {_folded(name): name for name in table.column_names}
    candidates = []
    for key, name in folded.items():
        named = key in GEOMETRY_NAMES | POINT_TEXT_NAMES or key.startswith(SHAPE_PREFIXES)
        if named or key.endswith("wkt"):
            column = table.column(name)
            if _looks_like_geojson(column):
                candidates.append(GeometryColumns(shape=name, kind="geojson"))
            elif _mostly(column, WKT_START.pattern, flags="(?i)"):
                candidates.append(GeometryColumns(shape=name, kind="wkt"))
    for key, name in folded.items():
        if key in LAT_LON_POINT_NAMES | POINT_TEXT_NAMES and _mostly(
            table.column(name), POINT_TEXT
        ):
            kind = "latlon" if key in LAT_LON_POINT_NAMES else _point_order(table.column(name))
            candidates.append(GeometryColumns(shape=name, kind=kind))
    pair = _coordinate_pair(table, folded)
    return candidates + ([pair] if pair else [])


def _point_order(column: pa.ChunkedArray) -> str:
    """"latlon" when most points read as a latitude of France then a longitude of France;
    else longitude first, as Table Schema's geopoint. Rows written the other way round are
    read in their own order (see `_rows_in_their_order`)."""
    first, second = _point_parts(column.combine_chunks())
    known = np.isfinite(first) & np.isfinite(second)
    latlon = _in_france(first, second)
    return "latlon" if known.any() and latlon[known].mean() >= MOSTLY else "lonlat"


def _in_france(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return (
            (lat >= FRANCE_LATITUDES[0]) & (lat <= FRANCE_LATITUDES[1])
            & (lon >= FRANCE_LONGITUDES[0]) & (lon <= FRANCE_LONGITUDES[1])
        )  # fmt: skip


def _rows_in_their_order(
    source: SourceTable, column: str, kind: str, first: np.ndarray, second: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes of a point text with no declared order: a row whose numbers
    only make sense the other way round (a consolidation of several exports) is read that
    way, and the report counts it."""
    if kind == "latlon":
        lon, lat = second.copy(), first.copy()
    else:
        lon, lat = first.copy(), second.copy()
    other = ~_in_france(lat, lon) & _in_france(lon, lat)
    if other.any():
        lon[other], lat[other] = lat[other], lon[other]
        order = "latitude, longitude" if kind == "lonlat" else "longitude, latitude"
        source.problems.repairs.append(
            Repair(
                STAGE,
                "ordre-des-coordonnees",
                column,
                int(other.sum()),
                f"{int(other.sum())} position(s) écrite(s) dans l'ordre {order}, contrairement "
                "au reste de la colonne, lue(s) dans cet ordre.",
            )
        )
    return lon, lat


def _point_parts(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    bare = pc.replace_substring_regex(text, r"[\[\]\s]", "")
    parts = pc.split_pattern(bare, ",")
    rows = len(text)
    first, second = np.full(rows, np.nan), np.full(rows, np.nan)
    for index, pair in enumerate(parts.to_pylist()):
        if pair and len(pair) == 2:
            try:
                first[index], second[index] = float(pair[0]), float(pair[1])
            except ValueError:
                continue
    return first, second


def _coordinate_pair(table: pa.Table, folded: dict[str, str]) -> GeometryColumns | None:
    latitude = [name for key, name in folded.items() if key in LATITUDE_NAMES]
    longitude = [name for key, name in folded.items() if key in LONGITUDE_NAMES]
    if len(latitude) == 1 and len(longitude) == 1 and _numeric(table, latitude + longitude):
        return GeometryColumns(x=longitude[0], y=latitude[0])
    axes: dict[str, list[str]] = {"x": [], "y": []}
    for key, name in folded.items():
        match = XY_NAME.match(key)
        if match:
            axes[match.group("axis")].append(name)
    if len(axes["x"]) == 1 and len(axes["y"]) == 1 and _numeric(table, axes["x"] + axes["y"]):
        return GeometryColumns(x=axes["x"][0], y=axes["y"][0])
    return None


NUMBER = r"^\s*[+-]?\d+([.,]\d+)?\s*$"


def _numeric(table: pa.Table, names: list[str]) -> bool:
    return all(_mostly(table.column(name), NUMBER) for name in names)


def _mostly(column: pa.ChunkedArray, pattern: str, flags: str = "") -> bool:
    values = pc.drop_null(column)
    if len(values) == 0:
        return False
    matches = pc.sum(pc.match_substring_regex(values, flags + pattern)).as_py() or 0
    return matches / len(values) >= MOSTLY


def _looks_like_geojson(column: pa.ChunkedArray) -> bool:
    return _mostly(column, r'^\s*\{.*"type"\s*:')


# --- coordinates and geometries --------------------------------------------------------------


def _coordinates(
    source: SourceTable, columns: GeometryColumns, filename: str
) -> tuple[np.ndarray, np.ndarray]:
    """X and Y of each row (NaN where a row has none), for pairs and point texts."""
    table = source.table
    rows = table.num_rows
    if columns.kind == "xy":
        x = _numbers(source, columns.x, filename)  # type: ignore[arg-type]
        y = _numbers(source, columns.y, filename)  # type: ignore[arg-type]
        _report_half_points(source, columns, x, y)
        return x, y
    if columns.kind in {"latlon", "lonlat"}:
        text = table.column(columns.shape).combine_chunks()
        first, second = _point_parts(text)
        unreadable = text.is_valid().to_numpy(zero_copy_only=False) & np.isnan(first + second)
        _report_rows(
            source,
            np.flatnonzero(unreadable),
            "coordonnee-illisible",
            columns.shape,  # type: ignore[arg-type]
            lambda index: f"« {text[int(index)].as_py()} » n'est pas une position (deux nombres "
            "séparés par une virgule sont attendus).",
        )
        return _rows_in_their_order(source, columns.shape, columns.kind, first, second)  # type: ignore[arg-type]
    if columns.kind.startswith("geopoint"):
        text = table.column(columns.shape).combine_chunks()
        fmt = columns.kind.removeprefix("geopoint").removeprefix("-") or "default"
        return geopoint_coordinates(text, fmt)
    return np.full(rows, np.nan), np.full(rows, np.nan)


def _numbers(source: SourceTable, name: str, filename: str) -> np.ndarray:
    text = pc.utf8_trim_whitespace(source.table.column(name).combine_chunks())
    text = pc.replace_substring(text, ",", ".")
    usable = pc.match_substring_regex(text, r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
    numbers = pc.cast(pc.if_else(usable, text, pa.scalar(None, pa.string())), pa.float64())
    values = numbers.to_numpy(zero_copy_only=False).astype(float)
    unreadable = np.flatnonzero(text.is_valid().to_numpy(zero_copy_only=False) & np.isnan(values))
    _report_rows(
        source,
        unreadable,
        "coordonnee-illisible",
        name,
        lambda index: f"« {source.table.column(name)[int(index)].as_py()} » n'est pas une "
        "coordonnée (un nombre est attendu).",
    )
    return values


def _report_half_points(
    source: SourceTable, columns: GeometryColumns, x: np.ndarray, y: np.ndarray
) -> None:
    for present, absent in ((columns.x, columns.y), (columns.y, columns.x)):
        have = source.table.column(present).is_valid().to_numpy(zero_copy_only=False)
        lack = source.table.column(absent).is_null().to_numpy(zero_copy_only=False)
        _report_rows(
            source,
            np.flatnonzero(have & lack),
            "coordonnee-manquante",
            absent,
            lambda _index, a=absent, p=present: f"Coordonnée « {a} » manquante alors que "
            f"« {p} » est remplie : une position a ses deux coordonnées ou aucune.",
        )


def _report_rows(source: SourceTable, indexes: np.ndarray, rule: str, column: str, what) -> None:
    if indexes.size == 0:
        return
    listed = indexes[: geometry.MAX_LISTED_GEOMETRY_PROBLEMS]
    rows = source.row_number(listed)
    problems = [
        Problem(STAGE, rule, what(index), row=int(row), column=column)
        for index, row in zip(listed, rows, strict=True)
    ]
    source.problems.add_many(problems, total=int(indexes.size))


def _geometries(
    source: SourceTable, columns: GeometryColumns, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    if columns.kind in {"wkt", "geojson"}:
        return _shapes(source, columns)
    known = np.isfinite(x) & np.isfinite(y)
    geometries = np.full(len(x), None, dtype=object)
    geometries[known] = shapely.points(x[known], y[known])
    return geometries


def _shapes(source: SourceTable, columns: GeometryColumns) -> np.ndarray:
    text = source.table.column(columns.shape).combine_chunks()
    cells = np.asarray(text.to_pylist(), dtype=object)
    if columns.kind == "wkt":
        cells = np.array([_without_srid(c) for c in cells], dtype=object)
        geometries = shapely.from_wkt(cells, on_invalid="ignore")
    else:
        geometries = shapely.from_geojson(cells, on_invalid="ignore")
        _close_rings(cells, geometries)
    broken = np.flatnonzero(_filled(cells) & shapely.is_missing(geometries))
    kind = "WKT" if columns.kind == "wkt" else "GeoJSON"
    _report_rows(
        source,
        broken,
        "geometrie-illisible",
        columns.shape,  # type: ignore[arg-type]
        lambda _index: f"Géométrie {kind} illisible : corrigez-la puis déposez à nouveau le "
        "fichier.",
    )
    return geometries


def _close_rings(cells: np.ndarray, geometries: np.ndarray) -> None:
    """Polygons whose rings end a few millimetres from where they start (CNIG's own
    examples do): closed, as GDAL closes them in a GeoJSON file."""
    for index in np.flatnonzero(_filled(cells) & shapely.is_missing(geometries)):
        try:
            shape = json.loads(cells[index])
            _close(shape)
            geometries[index] = shapely.from_geojson(json.dumps(shape))
        except (ValueError, TypeError, KeyError, AttributeError, shapely.errors.GEOSException):
            continue


def _close(shape: dict[str, Any]) -> None:
    if shape.get("type") == "Feature":
        _close(shape["geometry"])
    elif shape.get("type") == "GeometryCollection":
        for member in shape["geometries"]:
            _close(member)
    elif shape.get("type") in {"Polygon", "MultiPolygon"}:
        polygons = shape["coordinates"]
        for polygon in [polygons] if shape["type"] == "Polygon" else polygons:
            for ring in polygon:
                if ring and ring[0] != ring[-1]:
                    ring.append(ring[0])


def _filled(cells: np.ndarray) -> np.ndarray:
    return np.array([c is not None and c != "" for c in cells], dtype=bool)


def _without_srid(cell: str | None) -> str | None:
    return None if cell is None else re.sub(r"^\s*SRID=\d+;\s*", "", cell)


# --- which CRS -------------------------------------------------------------------------------


def _inside_area_of_use(code: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Points that fall where the projection is meant to be used (all of mainland France for
    Lambert-93, a band around the 46th parallel for CC46)."""
    area = CRS.from_epsg(code).area_of_use
    lon, lat = geometry.to_wgs84(code).transform(x, y, errcheck=False)
    with np.errstate(invalid="ignore"):
        return (
            (lon >= area.west) & (lon <= area.east) & (lat >= area.south) & (lat <= area.north)
        )


def _crs(
    columns: GeometryColumns,
    x: np.ndarray,
    y: np.ndarray,
    declared_crs: int | None,
    filename: str,
) -> int:
    """The declared CRS (the checks then catch a contradiction); else the only one the
    values can be in."""
    if declared_crs is not None:
        return declared_crs
    if columns.kind not in {"xy", "wkt", "geojson"} or _folded(columns.y or "") in LATITUDE_NAMES:
        return WGS84  # geopoints and latitude columns are degrees by definition
    known = np.isfinite(x) & np.isfinite(y)
    if not known.any() or ((np.abs(x[known]) <= 180) & (np.abs(y[known]) <= 90)).all():
        return WGS84
    for inside in (geometry.inside_as, _inside_area_of_use):
        for code in sorted(PROJECTED_CRS):
            if inside(code, x[known], y[known]).mean() >= MOSTLY:
                return code
    raise reject(
        STAGE,
        "crs-inconnu",
        f"Les coordonnées de {filename} (colonnes « {', '.join(columns.columns)} ») sont en "
        "mètres, dans un système que rien ne permet de reconnaître : déclarez-le dans les "
        f"métadonnées (« systeme_coordonnees »). Systèmes acceptés : "
        f"{accepted_crs_list()}.",
    )
