"""QGIS as a reuser's client: loads WMS, WFS and OGC API Features layers headless.

Runs under Debian's Python with `python3-qgis` (QGIS 3.22), never in the project's virtual
environment. Reads a JSON request on stdin ({"base": URL, "layers": [names]}) and prints,
for each layer and service, what a QGIS user would see: whether the layer loads, its
extent in EPSG:2154, its fields, its features (attributes and centroid) for WFS and OGC API,
and, for WMS, how many pixels of a rendered 256×256 map are not blank.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402 (the platform must be chosen before Qt loads)
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402

LAMBERT_93 = QgsCoordinateReferenceSystem("EPSG:2154")


def wms_layer(base: str, name: str) -> QgsRasterLayer:
    source = f"crs=EPSG:2154&format=image/png&layers={name}&styles=&url={base}/wms"
    return QgsRasterLayer(source, name, "wms")


def wfs_layer(base: str, name: str) -> QgsVectorLayer:
    source = (
        f"url='{base}/wfs' typename='ms:{name}' version='2.0.0' "
        "srsname='EPSG:2154' pagingEnabled='true'"
    )
    return QgsVectorLayer(source, name, "WFS")


def ogc_api_layer(base: str, name: str) -> QgsVectorLayer:
    return QgsVectorLayer(f"url='{base}/ogc' typename='{name}'", name, "OAPIF")


def in_lambert_93(layer: Any, rectangle: QgsRectangle) -> list[float]:
    transform = QgsCoordinateTransform(layer.crs(), LAMBERT_93, QgsProject.instance())
    box = transform.transformBoundingBox(rectangle)
    return [box.xMinimum(), box.yMinimum(), box.xMaximum(), box.yMaximum()]


def plain(value: Any) -> Any:
    if value is None or (hasattr(value, "isNull") and value.isNull()):
        return None
    if hasattr(value, "toString") and not isinstance(value, str):
        return value.toString("yyyy-MM-dd")  # QDate
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def vector_facts(layer: QgsVectorLayer) -> dict[str, Any]:
    if not layer.isValid():
        return {"valid": False, "error": layer.error().summary()}
    transform = QgsCoordinateTransform(layer.crs(), LAMBERT_93, QgsProject.instance())
    features = []
    for feature in layer.getFeatures():
        geometry = feature.geometry()
        geometry.transform(transform)
        point = geometry.centroid().asPoint()
        attributes = {f.name(): plain(feature[f.name()]) for f in layer.fields()}
        features.append({"attributes": attributes, "centroid": [point.x(), point.y()]})
    return {
        "valid": True,
        "crs": layer.crs().authid(),
        "geometry": layer.geometryType(),
        "fields": [f.name() for f in layer.fields()],
        "extent": in_lambert_93(layer, layer.extent()),
        "features": features,
    }


def raster_facts(layer: QgsRasterLayer) -> dict[str, Any]:
    if not layer.isValid():
        return {"valid": False, "error": layer.error().summary()}
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(LAMBERT_93)
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(256, 256))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    white = QColor(255, 255, 255).rgb()
    drawn = sum(
        1 for x in range(image.width()) for y in range(image.height()) if image.pixel(x, y) != white
    )
    return {
        "valid": True,
        "crs": layer.crs().authid(),
        "extent": in_lambert_93(layer, layer.extent()),
        "drawn_pixels": drawn,
        "errors": [str(e) for e in job.errors()],
    }


def main() -> None:
    request = json.load(sys.stdin)
    base = request["base"]
    QgsApplication.setPrefixPath("/usr", True)
    application = QgsApplication([], False)
    application.initQgis()
    report = {
        name: {
            "WMS": raster_facts(wms_layer(base, name)),
            "WFS": vector_facts(wfs_layer(base, name)),
            "OAPIF": vector_facts(ogc_api_layer(base, name)),
        }
        for name in request["layers"]
    }
    json.dump(report, sys.stdout)
    sys.stdout.flush()
    os._exit(0)  # QGIS 3.22's exitQgis can abort at shutdown in offscreen mode


if __name__ == "__main__":
    main()
