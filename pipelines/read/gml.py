"""The GML reader: an XML document without DTD holding a feature collection (GML, WFS,
OGR…) or any element of a GML namespace, read from our own copy, without its schema."""

from __future__ import annotations

from pathlib import Path

from pipelines import safety
from pipelines.read.geographic import GeographicReader, not_the_format, xml_root


def _is_gml_root(root: str) -> bool:
    """A feature collection (GML, WFS, OGR…) or any element of a GML namespace."""
    return safety.local_name(root).endswith("FeatureCollection") or safety.namespace(
        root
    ).startswith("http://www.opengis.net/gml")


class GmlReader(GeographicReader):
    """GML documents (`.gml`)."""

    name = "gml"

    def prepare(self, path: Path, work: Path) -> tuple[str, dict[str, str]]:
        root = xml_root(path)
        if not _is_gml_root(root):
            raise not_the_format(path.name, "GML", f"élément racine « {root} »")
        copy = work / "couche.gml"  # GDAL writes and reads sidecar files (.gfs, .xsd) beside it
        safety.copy_bounded(path, copy)
        # GDAL would expose a GML 2 feature's fid attribute as a « fid » column.
        return str(copy), {"DOWNLOAD_SCHEMA": "NO", "EXPOSE_FID": "NO"}
