"""Maps handed to GDAL (pyogrio) straight from Arrow: a release's GeoParquet streamed in a
CRS, or a table and its geometries in memory (the pipeline's publication)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import geopandas.io.arrow as geopandas_arrow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pyogrio
import pyproj
import shapely

from catalog.store.downloads import tables


@dataclass(frozen=True)
class Layer:
    """A map for GDAL: Arrow batches of attributes and a WKB geometry column, streamed."""

    batches: pa.RecordBatchReader
    geometry: str  # the geometry column's name
    geometry_type: str  # OGR's name: Point, MultiPolygon…, or Unknown when mixed


def arrow_layer(table: pa.Table, geometry: gpd.GeoSeries, crs: int | None = None) -> Layer:
    """A table in memory and its geometries (one per row), in `crs` (theirs by default),
    handed to GDAL chunk by chunk: neither the reprojected geometries nor their WKB are
    ever whole in memory."""
    name = free_name(table.column_names, "geometry")
    kinds = sorted(set(geometry.dropna().geom_type))
    kind = _geometry_type(kinds, bool(geometry.has_z.any()))

    def batches() -> Iterator[pa.RecordBatch]:
        for attributes, part in chunked(table, geometry):
            part = part if crs is None else part.to_crs(crs)
            values = np.asarray(part.values, dtype=object)
            wkb = pa.array(shapely.to_wkb(values), type=pa.binary())
            yield from attributes.append_column(name, wkb).to_batches()

    schema = table.schema.append(pa.field(name, pa.binary()))
    return Layer(pa.RecordBatchReader.from_batches(schema, batches()), name, kind)


def release_layer(
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
    name = free_name([n for n in schema.names if n != column], "geometry")

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in pq.ParquetFile(source).iter_batches(batch_size=tables.CHUNK_ROWS):
            table = pa.Table.from_batches([batch])
            geometry = gpd.GeoSeries.from_wkb(
                table.column(column).to_numpy(zero_copy_only=False), crs=source_crs
            ).to_crs(crs)
            table = change(tables.with_dates(table.drop_columns([column]), dates))
            wkb = pa.array(geometry.to_wkb().tolist(), type=pa.binary())
            yield from table.append_column(name, wkb).replace_schema_metadata(None).to_batches()

    stream = batches()
    first = next(stream, None)
    if first is None:  # an empty release: its schema from an empty read
        nothing = pq.read_table(source).slice(0, 0).drop_columns([column])
        empty = change(tables.with_dates(nothing, dates))
        empty = empty.append_column(name, pa.array([], type=pa.binary()))
        reader = empty.replace_schema_metadata(None).to_reader()
    else:
        reader = pa.RecordBatchReader.from_batches(first.schema, itertools.chain([first], stream))
    kinds = [k.removesuffix(" Z") for k in geo["columns"][column].get("geometry_types", [])]
    has_z = any(k.endswith(" Z") for k in geo["columns"][column].get("geometry_types", []))
    return Layer(reader, name, _geometry_type(sorted(set(kinds)), has_z))


def free_name(columns: list[str], wanted: str) -> str:
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
        options = {**options, "FID": free_name(columns, "fid")}
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


def geoparquet_table(table: pa.Table, geometry: gpd.GeoSeries) -> pa.Table:
    """GeoParquet keeping Arrow's types (integers with blanks stay integers, dates dates),
    without pandas metadata, so that readers build the same frames as before."""
    frame = gpd.GeoDataFrame(
        table.to_pandas(types_mapper=pd.ArrowDtype), geometry=geometry.reset_index(drop=True)
    )
    # geopandas' own GeoParquet writer, up to the file: its `geo` metadata is the standard's
    written = geopandas_arrow._geopandas_to_arrow(frame, index=False)
    return written.replace_schema_metadata({b"geo": written.schema.metadata[b"geo"]})


def write_geoparquet(
    chunks: Callable[[], Iterator[tuple[pa.Table, gpd.GeoSeries]]], target: Path
) -> None:
    """GeoParquet written chunk by chunk (memory does not grow with the file): `chunks()`
    gives (attributes, geometries in the CRS to write), and is read twice, first for the
    `geo` metadata of the whole file (its bbox and geometry types), then to write."""
    geo: dict | None = None
    for attributes, geometry in chunks():
        part = json.loads(geoparquet_table(attributes, geometry).schema.metadata[b"geo"])
        geo = part if geo is None else _union(geo, part)
    writer = None
    try:
        for attributes, geometry in chunks():
            table = geoparquet_table(attributes, geometry)
            if writer is None:
                schema = table.schema.with_metadata({b"geo": json.dumps(geo).encode()})
                writer = pq.ParquetWriter(target, schema, compression="zstd")
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()


def _union(geo: dict, part: dict) -> dict:
    """The `geo` metadata of two chunks of one file: bounding box and types of both."""
    column = geo["primary_column"]
    mine, theirs = geo["columns"][column], part["columns"][column]
    if theirs.get("bbox"):
        if mine.get("bbox"):
            a, b = mine["bbox"], theirs["bbox"]
            mine["bbox"] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
        else:
            mine["bbox"] = theirs["bbox"]
    kinds = set(mine.get("geometry_types", [])) | set(theirs.get("geometry_types", []))
    mine["geometry_types"] = sorted(kinds)
    return geo


def chunked(table: pa.Table, geometry: gpd.GeoSeries) -> Iterator[tuple[pa.Table, gpd.GeoSeries]]:
    """A table in memory and its geometries, `tables.CHUNK_ROWS` rows at a time."""
    geometry = geometry.reset_index(drop=True)
    for start in range(0, max(table.num_rows, 1), tables.CHUNK_ROWS):  # an empty one too
        end = start + tables.CHUNK_ROWS
        yield table.slice(start, tables.CHUNK_ROWS), geometry.iloc[start:end]


def geojson_options(crs: int) -> dict[str, str]:
    """RFC 7946 in WGS84; a text cell stays text, even when it looks like JSON (the
    "[4.83, 45.76]" of a geopoint)."""
    return {"AUTODETECT_JSON_STRINGS": "NO", **({"RFC7946": "YES"} if crs == 4326 else {})}
