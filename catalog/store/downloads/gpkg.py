"""GeoPackage, streamed through GDAL, in the release's CRS unless another is asked."""

from __future__ import annotations

from pathlib import Path

from catalog.store.downloads.format import Format
from catalog.store.downloads.layers import release_layer, write_layer
from catalog.store.downloads.tables import stored_crs


def write(source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]) -> None:
    crs = crs or stored_crs(source)
    write_layer(release_layer(source, crs, dates), target, "GPKG", source.stem, crs, {})


FORMAT = Format(
    "gpkg", "GeoPackage", "gpkg", "application/geopackage+sqlite3", write, geographic_only=True
)
