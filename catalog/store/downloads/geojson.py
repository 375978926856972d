"""GeoJSON (RFC 7946 in WGS84), through GDAL from the release's GeoParquet."""

from __future__ import annotations

from pathlib import Path

from catalog.store.downloads.format import Format
from catalog.store.downloads.layers import geojson_options, release_layer, write_layer


def write(source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]) -> None:
    crs = crs or 4326
    layer = release_layer(source, crs, dates)
    write_layer(layer, target, "GeoJSON", source.stem, crs, geojson_options(crs))


FORMAT = Format(
    "geojson", "GeoJSON", "geojson", "application/geo+json", write, geographic_only=True
)
