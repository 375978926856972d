"""Parquet, the release's own file; GeoParquet for maps, reprojected when a CRS is asked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pyarrow as pa
import pyarrow.parquet as pq
import pyproj

from catalog.store.downloads import tables
from catalog.store.downloads.format import Format
from catalog.store.downloads.layers import write_geoparquet as write_chunks
from catalog.store.downloads.tables import stored_crs

MEDIA_TYPE = "application/vnd.apache.parquet"


def write_geoparquet(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    """The release's map in `crs`, chunk by chunk."""
    file = pq.ParquetFile(source)
    column = json.loads(file.schema_arrow.metadata[b"geo"])["primary_column"]
    stored = pyproj.CRS.from_epsg(stored_crs(source))

    def chunks() -> Iterator[tuple[pa.Table, gpd.GeoSeries]]:
        empty = True
        for batch in file.iter_batches(batch_size=tables.CHUNK_ROWS):
            empty = False
            yield _reprojected(pa.Table.from_batches([batch]), column, stored, crs)
        if empty:  # an empty release: one empty chunk, for its schema
            yield _reprojected(file.schema_arrow.empty_table(), column, stored, crs)

    write_chunks(chunks, target)


def _reprojected(
    table: pa.Table, column: str, stored: pyproj.CRS, crs: int | None
) -> tuple[pa.Table, gpd.GeoSeries]:
    wkb = table.column(column).to_numpy(zero_copy_only=False)
    geometry = gpd.GeoSeries.from_wkb(wkb, crs=stored)
    return table.drop_columns([column]).replace_schema_metadata(None), geometry.to_crs(crs)


def write_parquet(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    """The release's file is served as is; only a map asked in another CRS is written."""
    if crs:
        write_geoparquet(source, target, crs, notice, dates)


PARQUET = Format("parquet", "Parquet", "parquet", MEDIA_TYPE, write_parquet)
GEOPARQUET = Format(
    "geoparquet", "GeoParquet", "parquet", MEDIA_TYPE, write_geoparquet, geographic_only=True
)
