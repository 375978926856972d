"""Download formats derived on request from a release's Parquet/GeoParquet distribution.

Tabular formats, GeoPackage and Shapefile are written chunk by chunk, so memory does not
grow with the file; GeoJSON, KML and GeoParquet in another CRS are written whole.
Releases are immutable, so a derived file (a format, in a CRS) is written once, beside
the release, under a temporary name then renamed: concurrent requests never serve a
half-written file, and later ones are plain file downloads (ranges, caching).
"""

from __future__ import annotations

import csv
import fcntl
import io
import itertools
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import geopandas.io.arrow as geopandas_arrow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pyogrio
import pyproj
import shapely
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

ACCEPTED_CRS = (4326, 2154, 3946, 3857, 4171)
FORMULA_CHARACTERS = pa.array(["=", "+", "-", "@", "\t", "\r"])


@dataclass(frozen=True)
class Format:
    name: str
    extension: str
    media_type: str
    geographic_only: bool = False
    fixed_crs: int | None = None  # KML and RFC 7946 GeoJSON are WGS84 by definition


FORMATS = {
    f.name: f
    for f in (
        Format("csv", "csv", "text/csv"),
        Format("json", "json", "application/json"),
        Format("xlsx", "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        Format("parquet", "parquet", "application/vnd.apache.parquet"),
        Format("geoparquet", "parquet", "application/vnd.apache.parquet", geographic_only=True),
        Format("geojson", "geojson", "application/geo+json", geographic_only=True),
        Format("gpkg", "gpkg", "application/geopackage+sqlite3", geographic_only=True),
        Format("shp", "zip", "application/zip", geographic_only=True),
        Format(
            "kml",
            "kml",
            "application/vnd.google-earth.kml+xml",
            geographic_only=True,
            fixed_crs=4326,
        ),
    )
}


class FormatError(ValueError):
    """A format or CRS this dataset cannot be served in (French message)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status  # 404: no such file for this dataset; 400: a bad parameter


def offered(geographic: bool) -> list[str]:
    return [name for name, f in FORMATS.items() if geographic or not f.geographic_only]


def check_request(fmt: str, crs: int | None, geographic: bool) -> Format:
    spec = FORMATS.get(fmt)
    if spec is None or (spec.geographic_only and not geographic):
        raise FormatError(
            f"Format « {fmt} » non disponible pour ce jeu de données. "
            f"Formats disponibles : {', '.join(offered(geographic))}.",
            404,
        )
    if crs is not None:
        if not geographic:
            raise FormatError(
                "Ce jeu de données n'est pas géographique : « crs » ne s'applique pas."
            )
        if crs not in ACCEPTED_CRS:
            raise FormatError(
                f"Système de coordonnées EPSG:{crs} non proposé. Systèmes "
                f"proposés : {', '.join(f'EPSG:{c}' for c in ACCEPTED_CRS)}."
            )
        if spec.fixed_crs and crs != spec.fixed_crs:
            raise FormatError(f"Le format {fmt} est toujours en EPSG:{spec.fixed_crs}.")
    return spec


def neutralise_formulas(table: pa.Table) -> pa.Table:
    """Text cells a spreadsheet would run as a formula get a leading apostrophe."""
    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type):
            first = pc.utf8_slice_codeunits(column, 0, 1)  # cheaper than a regex
            risky = pc.is_in(first, value_set=FORMULA_CHARACTERS)
            if pc.any(risky).as_py():
                column = pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def neutralise_cell(value: object) -> object:
    """One cell, as `neutralise_formulas` does for whole columns."""
    if isinstance(value, str) and value[:1] in FORMULA_CHARACTERS.to_pylist():
        return "'" + value
    return value


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """One builder at a time for `path`, across threads and processes (uvicorn workers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".verrou"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def derived_file(
    source: Path, fmt: str, crs: int | None, notice: str, dates: frozenset[str] = frozenset()
) -> Path:
    """The file of `source` (a release's Parquet) in `fmt` and `crs`, made once; `dates`
    are the columns the schema says are dates (map releases store them as timestamps)."""
    spec = FORMATS[fmt]
    suffix = f"-{crs}" if crs else ""
    target = source.parent / "derived" / f"{source.stem}{suffix}-{fmt}.{spec.extension}"
    return build_once(target, lambda path: _WRITERS[fmt](source, path, crs, notice, dates))


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """`target`, built by `build` into a temporary file then renamed, by one request only:
    concurrent requests wait for it and never see a half-written file."""
    if target.is_file():
        return target
    with exclusive(target):
        if target.is_file():  # built by another request meanwhile
            return target
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=target.suffix)
        os.close(handle)
        try:
            build(Path(temporary))
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    return target


CHUNK_ROWS = 50_000


def _is_geoparquet(path: Path) -> bool:
    return b"geo" in (pq.read_schema(path).metadata or {})


def _stored_crs(source: Path) -> int:
    geo = json.loads(pq.read_schema(source).metadata[b"geo"])
    stored = geo["columns"][geo["primary_column"]].get("crs")
    return (pyproj.CRS.from_user_input(stored).to_epsg() if stored else None) or 4326


def _with_dates(table: pa.Table, dates: frozenset[str]) -> pa.Table:
    """`dates` as Arrow dates, blanks kept blank: releases published before issue #15
    store a map's dates as timestamps, later ones as dates."""
    for name in dates & set(table.column_names):
        position = table.column_names.index(name)
        table = table.set_column(position, name, pc.cast(table.column(name), pa.date32()))
    return table


def _tables(source: Path, crs: int | None, dates: frozenset[str]) -> Iterator[pa.Table]:
    """Attributes as Arrow types (dates as dates), plus the geometry as WKT in `crs` (WGS84
    by default) for map data; chunk by chunk, every chunk with the same schema."""
    metadata = pq.read_schema(source).metadata or {}
    column, source_crs = None, None
    if b"geo" in metadata:
        geo = json.loads(metadata[b"geo"])
        column = geo["primary_column"]
        source_crs = pyproj.CRS.from_user_input(geo["columns"][column].get("crs") or 4326)
    for batch in pq.ParquetFile(source).iter_batches(batch_size=CHUNK_ROWS):
        table = _with_dates(pa.Table.from_batches([batch]), dates)
        if column is None:
            yield table
            continue
        geometry = gpd.GeoSeries.from_wkb(
            table.column(column).to_numpy(zero_copy_only=False), crs=source_crs
        ).to_crs(crs or 4326)
        wkt = pa.array(geometry.to_wkt().tolist(), type=pa.string())
        yield table.drop_columns([column]).append_column("geometry", wkt)


def _write_csv(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    writer, schema = None, None
    options = pacsv.WriteOptions(quoting_style="needed")
    for table in _tables(source, crs, dates):
        table = neutralise_formulas(datetimes_as_iso(table))
        if writer is None:
            schema = table.schema
            writer = pacsv.CSVWriter(target, schema, write_options=options)
        writer.write_table(table.cast(schema))
    if writer is not None:
        writer.close()


def _write_json(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    with target.open("w", encoding="utf-8") as out:
        out.write("[")
        first = True
        for table in _tables(source, crs, dates):
            for row in table.to_pylist():
                out.write(
                    ("" if first else ",\n")
                    + json.dumps(row, ensure_ascii=False, default=_json_value)
                )
                first = False
        out.write("]\n")


def _json_value(value: object) -> object:
    """Dates and datetimes in ISO 8601 (2016-03-22T10:05:00), as the rows API gives them."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _write_xlsx(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("donnees")
    header_written = False
    for table in _tables(source, crs, dates):
        table = neutralise_formulas(table)
        if not header_written:
            sheet.append(table.column_names)
            header_written = True
        for row in table.to_pylist():
            sheet.append([_xlsx_cell(v) for v in row.values()])
    book.create_sheet("licence").append([notice])
    book.save(target)


def _xlsx_cell(value: object) -> object:
    """Control characters are not allowed in XLSX cells: they are dropped."""
    return ILLEGAL_CHARACTERS_RE.sub("", value) if isinstance(value, str) else value


def _write_geoparquet(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    table = pq.read_table(source)
    column = json.loads(table.schema.metadata[b"geo"])["primary_column"]
    stored = pyproj.CRS.from_epsg(_stored_crs(source))
    wkb = table.column(column).to_numpy(zero_copy_only=False)
    geometry = gpd.GeoSeries.from_wkb(wkb, crs=stored)
    attributes = table.drop_columns([column]).replace_schema_metadata(None)
    pq.write_table(geoparquet_table(attributes, geometry.to_crs(crs)), target, compression="zstd")


def geoparquet_table(table: pa.Table, geometry: gpd.GeoSeries) -> pa.Table:
    """GeoParquet keeping Arrow's types (integers with blanks stay integers, dates dates),
    without pandas metadata, so that readers build the same frames as before."""
    frame = gpd.GeoDataFrame(
        table.to_pandas(types_mapper=pd.ArrowDtype), geometry=geometry.reset_index(drop=True)
    )
    # geopandas' own GeoParquet writer, up to the file: its `geo` metadata is the standard's
    written = geopandas_arrow._geopandas_to_arrow(frame, index=False)
    return written.replace_schema_metadata({b"geo": written.schema.metadata[b"geo"]})


def _write_geojson(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    crs = crs or 4326
    layer = _layer(source, crs, dates)
    write_layer(layer, target, "GeoJSON", source.stem, crs, geojson_options(crs))


def geojson_options(crs: int) -> dict[str, str]:
    """RFC 7946 in WGS84; a text cell stays text, even when it looks like JSON (the
    "[4.83, 45.76]" of a geopoint)."""
    return {"AUTODETECT_JSON_STRINGS": "NO", **({"RFC7946": "YES"} if crs == 4326 else {})}


def _write_gpkg(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    crs = crs or _stored_crs(source)
    write_layer(_layer(source, crs, dates), target, "GPKG", source.stem, crs, {})


def _write_kml(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    # KML values are text: GDAL would write its own « 2016/03/22 »; ISO 8601 instead.
    layer = _layer(source, 4326, dates, _dates_as_text)
    # the layer (KML folder and schema) is named after the dataset, as an XML name
    write_layer(layer, target, "KML", re.sub(r"[^A-Za-z0-9_]", "_", source.stem), 4326, {})


def _dates_as_text(table: pa.Table, kinds: Callable[[pa.DataType], bool] | None = None) -> pa.Table:
    """Dates and datetimes (or only the `kinds` asked) as ISO 8601 text."""
    wanted = kinds or (lambda t: pa.types.is_date(t) or pa.types.is_timestamp(t))
    for position, column in enumerate(table.columns):
        if wanted(column.type):
            table = table.set_column(position, table.field(position).name, _iso_text(column))
    return table


SHAPEFILE_FIELDS = "champs.csv"  # the Shapefile's field names (10 bytes) and the full ones


def _write_shapefile(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        shapefile = Path(folder) / f"{source.stem}.shp"
        crs = crs or _stored_crs(source)
        # a Shapefile has dates but no datetimes: those become ISO 8601 text
        layer = _layer(source, crs, dates, lambda t: _dates_as_text(t, pa.types.is_timestamp))
        names = [n for n in layer.batches.schema.names if n != layer.geometry]
        write_layer(layer, shapefile, "ESRI Shapefile", source.stem, crs, {"ENCODING": "UTF-8"})
        fields = list(pyogrio.read_info(shapefile)["fields"])
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for part in sorted(Path(folder).iterdir()):
                archive.write(part, part.name)
            archive.writestr(SHAPEFILE_FIELDS, _field_names_csv(fields, names))
            archive.writestr("LICENCE.txt", notice + "\n")


def _field_names_csv(shapefile_names: list[str], full_names: list[str]) -> str:
    """Each field's name in the Shapefile (cut to 10 bytes by the format) beside the
    dataset's column it holds, in the same order."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["nom_shapefile", "nom_complet"])
    writer.writerows(zip(shapefile_names, full_names, strict=True))
    return buffer.getvalue()


@dataclass(frozen=True)
class Layer:
    """A map for GDAL: Arrow batches of attributes and a WKB geometry column, streamed."""

    batches: pa.RecordBatchReader
    geometry: str  # the geometry column's name
    geometry_type: str  # OGR's name: Point, MultiPolygon…, or Unknown when mixed


def arrow_layer(table: pa.Table, geometry: gpd.GeoSeries) -> Layer:
    """A table in memory and its geometries (one per row, in the CRS to write)."""
    name = _free_name(table.column_names, "geometry")
    values = np.asarray(geometry.values, dtype=object)
    wkb = pa.array(shapely.to_wkb(values), type=pa.binary())
    kinds = sorted(set(geometry.dropna().geom_type))
    kind = _geometry_type(kinds, bool(geometry.has_z.any()))
    return Layer(table.append_column(name, wkb).to_reader(), name, kind)


def _layer(
    source: Path,
    crs: int,
    dates: frozenset[str],
    change: Callable[[pa.Table], pa.Table] = lambda table: table,
) -> Layer:
    """A GeoParquet release in `crs`, chunk by chunk (memory does not grow with the file),
    attributes as Arrow types (integers with blanks stay integers), `dates` as dates (older
    map releases store them as timestamps), then `change`d."""
    schema = pq.read_schema(source)
    geo = json.loads(schema.metadata[b"geo"])
    column = geo["primary_column"]
    source_crs = pyproj.CRS.from_user_input(geo["columns"][column].get("crs") or 4326)
    name = _free_name([n for n in schema.names if n != column], "geometry")

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in pq.ParquetFile(source).iter_batches(batch_size=CHUNK_ROWS):
            table = pa.Table.from_batches([batch])
            geometry = gpd.GeoSeries.from_wkb(
                table.column(column).to_numpy(zero_copy_only=False), crs=source_crs
            ).to_crs(crs)
            table = change(_with_dates(table.drop_columns([column]), dates))
            wkb = pa.array(geometry.to_wkb().tolist(), type=pa.binary())
            yield from table.append_column(name, wkb).replace_schema_metadata(None).to_batches()

    stream = batches()
    first = next(stream, None)
    if first is None:  # an empty release: its schema from an empty read
        empty = change(_with_dates(pq.read_table(source).slice(0, 0).drop_columns([column]), dates))
        empty = empty.append_column(name, pa.array([], type=pa.binary()))
        reader = empty.replace_schema_metadata(None).to_reader()
    else:
        reader = pa.RecordBatchReader.from_batches(first.schema, itertools.chain([first], stream))
    kinds = [k.removesuffix(" Z") for k in geo["columns"][column].get("geometry_types", [])]
    has_z = any(k.endswith(" Z") for k in geo["columns"][column].get("geometry_types", []))
    return Layer(reader, name, _geometry_type(sorted(set(kinds)), has_z))


def _free_name(columns: list[str], wanted: str) -> str:
    """`wanted`, or `wanted_`…, unused by the table's columns whatever their case: GDAL must
    not mistake (or crash on) a column called "geometry" or "fid"."""
    taken = {c.casefold() for c in columns}
    while wanted.casefold() in taken:
        wanted += "_"
    return wanted


def _geometry_type(kinds: list[str], has_z: bool) -> str:
    kind = kinds[0] if len(kinds) == 1 else "Unknown"
    return f"{kind} Z" if kind != "Unknown" and has_z else kind


def write_layer(
    layer: Layer, target: Path, driver: str, name: str, crs: int, options: dict[str, str]
) -> None:
    """One layer written from Arrow: types as validated, with no detour through floats."""
    if driver == "GPKG":
        columns = [n for n in layer.batches.schema.names if n != layer.geometry]
        options = {**options, "FID": _free_name(columns, "fid")}
    pyogrio.write_arrow(
        layer.batches,
        target,
        driver=driver,
        layer=name,
        geometry_name=layer.geometry,
        geometry_type=layer.geometry_type,
        crs=f"EPSG:{crs}",
        layer_options=options,
    )


def _iso_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dates as 2016-03-22, datetimes as 2016-03-22T10:05:00 (ISO 8601), in whole seconds
    (Arrow's %S would write the fractions of a finer unit: 10:05:00.000)."""
    if pa.types.is_date(column.type):
        return pc.strftime(column, format="%Y-%m-%d")
    seconds = pc.cast(column, pa.timestamp("s", column.type.tz), safe=False)
    if column.type.tz is not None:
        return pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S")
    # Arrow's own cast writes "2016-03-22 10:05:00" fast; the T goes in its place
    return pc.utf8_replace_slice(pc.cast(seconds, pa.string()), 10, 11, "T")


def datetimes_as_iso(table: pa.Table) -> pa.Table:
    """Datetimes as ISO 8601 text (2016-03-22T10:05:00), as the schema's `datetime` reads
    them; Arrow's CSV writer would put a space between date and time."""
    return _dates_as_text(table, lambda kind: pa.types.is_timestamp(kind) and kind.tz is None)


_WRITERS = {
    "csv": _write_csv,
    "json": _write_json,
    "xlsx": _write_xlsx,
    "parquet": lambda source, target, crs, notice, dates: (
        _write_geoparquet(source, target, crs, notice, dates) if crs else None
    ),
    "geoparquet": _write_geoparquet,
    "geojson": _write_geojson,
    "gpkg": _write_gpkg,
    "kml": _write_kml,
    "shp": _write_shapefile,
}
