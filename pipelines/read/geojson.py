"""The GeoJSON reader: a JSON object, whose CRS is named, never linked to."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines import safety
from pipelines.read.geographic import GeographicReader, not_the_format, refuse_pattern

# What makes GDAL (or a GIS opening the published file) fetch a URL named by the file.
LINKED_CRS = re.compile(rb'"crs"\s*:\s*\{(?:[^{}]|\{[^{}]*\})*"type"\s*:\s*"link"', re.I)


def _linked_crs_message(filename: str) -> str:
    return (
        f"Le fichier {filename} désigne son système de coordonnées par un lien (« crs » de "
        "type « link ») : la plateforme ne suit aucun lien d'un fichier déposé. Écrivez-le "
        "par son nom (« urn:ogc:def:crs:EPSG::2154 »), ou retirez « crs » et déclarez "
        "« systeme_coordonnees » dans les métadonnées."
    )


def _check_json_object(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(4096).removeprefix(safety.UTF8_BOM).lstrip()
    if not head.startswith(b"{"):
        raise not_the_format(path.name, "GeoJSON", "il ne commence pas par un objet JSON « { »")


class GeoJsonReader(GeographicReader):
    """GeoJSON files (`.geojson`, `.json`)."""

    name = "geojson"

    def prepare(self, path: Path, work: Path) -> tuple[str, dict[str, str]]:
        _check_json_object(path)
        refuse_pattern(path, LINKED_CRS, "crs-lien-refuse", _linked_crs_message)
        return str(path), {}
