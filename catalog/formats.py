"""Download formats derived on request from a release's Parquet/GeoParquet distribution.

Tabular formats, GeoPackage and Shapefile are written chunk by chunk, so memory does not
grow with the file; GeoJSON, KML and GeoParquet in another CRS are written whole.
Releases are immutable, so a derived file (a format, in a CRS) is written once, beside
the release, under a temporary name then renamed: concurrent requests never serve a
half-written file, and later ones are plain file downloads (ranges, caching).
"""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import io
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
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pyogrio
import pyproj
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


def _geo_frame(source: Path, crs: int | None) -> gpd.GeoDataFrame:
    frame = gpd.read_parquet(source)
    return frame.to_crs(crs) if crs and frame.crs.to_epsg() != crs else frame


def _frames(
    source: Path, crs: int | None, dates: frozenset[str] = frozenset()
) -> Iterator[gpd.GeoDataFrame]:
    """A GeoParquet release, chunk by chunk, in `crs`, with `dates` as dates (map releases
    store them as timestamps): memory does not grow with the file."""
    metadata = json.loads(pq.read_schema(source).metadata[b"geo"])
    column = metadata["primary_column"]
    source_crs = pyproj.CRS.from_user_input(metadata["columns"][column].get("crs") or 4326)
    for batch in pq.ParquetFile(source).iter_batches(batch_size=CHUNK_ROWS):
        geometry = gpd.GeoSeries.from_wkb(
            batch.column(column).to_numpy(zero_copy_only=False), crs=source_crs
        )
        attributes = _with_dates(pa.Table.from_batches([batch]).drop_columns([column]), dates)
        frame = gpd.GeoDataFrame(attributes.to_pandas(), geometry=geometry)
        yield frame.to_crs(crs) if crs else frame


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
        table = neutralise_formulas(table)
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
    _geo_frame(source, crs).to_parquet(target, compression="zstd")


def _write_geojson(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    crs = crs or 4326
    options = {"RFC7946": "YES"} if crs == 4326 else {}
    _write_layer(_layer(source, crs, dates), target, "GeoJSON", source.stem, crs, options)


def _write_gpkg(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    for number, frame in enumerate(_frames(source, crs, dates)):
        pyogrio.write_dataframe(frame, target, driver="GPKG", layer=source.stem, append=number > 0)


def _write_kml(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    layer = _layer(source, 4326, dates)
    # KML values are text: GDAL would write its own « 2016/03/22 »; ISO 8601 instead.
    table = layer.table
    for position, column in enumerate(table.columns):
        if pa.types.is_date(column.type) or pa.types.is_timestamp(column.type):
            table = table.set_column(position, table.field(position).name, _iso_text(column))
    layer = dataclasses.replace(layer, table=table)
    # the layer (KML folder and schema) is named after the dataset, as an XML name
    _write_layer(layer, target, "KML", re.sub(r"[^A-Za-z0-9_]", "_", source.stem), 4326, {})


SHAPEFILE_FIELDS = "champs.csv"  # the Shapefile's field names (10 bytes) and the full ones


def _write_shapefile(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        shapefile = Path(folder) / f"{source.stem}.shp"
        names: list[str] = []
        for number, frame in enumerate(_frames(source, crs, dates)):
            names = [c for c in frame.columns if c != frame.geometry.name]
            for name in names:  # a Shapefile has no datetime type: ISO 8601 text
                if pd.api.types.is_datetime64_any_dtype(frame[name]):
                    frame[name] = frame[name].map(lambda v: v.isoformat() if pd.notna(v) else None)
            pyogrio.write_dataframe(
                frame, shapefile, driver="ESRI Shapefile", encoding="UTF-8", append=number > 0
            )
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
class _Layer:
    """A map release for GDAL: attributes and a WKB geometry column, in one Arrow table."""

    table: pa.Table
    geometry: str  # the geometry column's name
    geometry_type: str  # OGR's name: Point, MultiPolygon…, or Unknown when mixed


def _layer(source: Path, crs: int, dates: frozenset[str]) -> _Layer:
    """The whole release in `crs`, its attributes kept as Arrow types (integers with
    blanks stay integers), `dates` as dates (older map releases store them as timestamps)."""
    table = pq.read_table(source)
    geo = json.loads(table.schema.metadata[b"geo"])
    column = geo["primary_column"]
    geometry = gpd.GeoSeries.from_wkb(
        table.column(column).to_numpy(zero_copy_only=False),
        crs=pyproj.CRS.from_user_input(geo["columns"][column].get("crs") or 4326),
    ).to_crs(crs)
    table = _with_dates(table.drop_columns([column]).replace_schema_metadata(None), dates)
    name = _free_name(table.column_names, "geometry")
    wkb = pa.array(geometry.to_wkb().tolist(), type=pa.binary())
    return _Layer(table.append_column(name, wkb), name, _geometry_type(geometry))


def _free_name(columns: list[str], wanted: str) -> str:
    """`wanted`, or `wanted_`…, unused by the table's columns whatever their case."""
    taken = {c.casefold() for c in columns}
    while wanted.casefold() in taken:
        wanted += "_"
    return wanted


def _geometry_type(geometry: gpd.GeoSeries) -> str:
    kinds = set(geometry.dropna().geom_type)
    kind = kinds.pop() if len(kinds) == 1 else "Unknown"
    return f"{kind} Z" if kind != "Unknown" and geometry.has_z.any() else kind


def _write_layer(
    layer: _Layer, target: Path, driver: str, name: str, crs: int, options: dict[str, str]
) -> None:
    pyogrio.write_arrow(
        layer.table,
        target,
        driver=driver,
        layer=name,
        geometry_name=layer.geometry,
        geometry_type=layer.geometry_type,
        crs=f"EPSG:{crs}",
        layer_options=options,
    )


def _iso_text(column: pa.ChunkedArray) -> pa.Array:
    """Dates as 2016-03-22, datetimes as 2016-03-22T10:05:00 (ISO 8601)."""
    return pa.array(
        [None if value is None else value.isoformat() for value in column.to_pylist()],
        type=pa.string(),
    )


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
