"""KML, always in WGS84; its values are text, so dates are written in ISO 8601."""

from __future__ import annotations

import re
from pathlib import Path

from catalog.store.downloads.format import Format
from catalog.store.downloads.layers import release_layer, write_layer
from catalog.store.downloads.tables import dates_as_text


def write(source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]) -> None:
    # KML values are text: GDAL would write its own « 2016/03/22 »; ISO 8601 instead.
    layer = release_layer(source, 4326, dates, dates_as_text)
    # the layer (KML folder and schema) is named after the dataset, as an XML name
    write_layer(layer, target, "KML", re.sub(r"[^A-Za-z0-9_]", "_", source.stem), 4326, {})


FORMAT = Format(
    "kml",
    "KML",
    "kml",
    "application/vnd.google-earth.kml+xml",
    write,
    geographic_only=True,
    fixed_crs=4326,
)
