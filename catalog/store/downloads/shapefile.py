"""Shapefile, zipped with its sidecars, the full field names (`champs.csv`: a Shapefile cuts
them to 10 bytes) and the licence; datetimes, which it cannot hold, as ISO 8601 text."""

from __future__ import annotations

import csv
import io
import tempfile
import zipfile
from pathlib import Path

import pyarrow as pa
import pyogrio

from catalog.store.downloads.format import Format
from catalog.store.downloads.layers import release_layer, write_layer
from catalog.store.downloads.tables import dates_as_text, stored_crs

SHAPEFILE_FIELDS = "champs.csv"  # the Shapefile's field names (10 bytes) and the full ones


def write(source: Path, target: Path, crs: int | None, notice: str, dates: frozenset[str]) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        shapefile = Path(folder) / f"{source.stem}.shp"
        crs = crs or stored_crs(source)
        # a Shapefile has dates but no datetimes: those become ISO 8601 text
        layer = release_layer(source, crs, dates, lambda t: dates_as_text(t, pa.types.is_timestamp))
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


FORMAT = Format("shp", "Shapefile (zip)", "zip", "application/zip", write, geographic_only=True)
