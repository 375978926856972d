"""Parquet, the release's own file; GeoParquet for maps, reprojected when a CRS is asked."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pyarrow.parquet as pq
import pyproj

from catalog.store.downloads.format import Format
from catalog.store.downloads.layers import geoparquet_table
from catalog.store.downloads.tables import stored_crs

MEDIA_TYPE = "application/vnd.apache.parquet"


def write_geoparquet(
    source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]
) -> None:
    table = pq.read_table(source)
    column = json.loads(table.schema.metadata[b"geo"])["primary_column"]
    stored = pyproj.CRS.from_epsg(stored_crs(source))
    wkb = table.column(column).to_numpy(zero_copy_only=False)
    geometry = gpd.GeoSeries.from_wkb(wkb, crs=stored)
    attributes = table.drop_columns([column]).replace_schema_metadata(None)
    pq.write_table(geoparquet_table(attributes, geometry.to_crs(crs)), target, compression="zstd")


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
