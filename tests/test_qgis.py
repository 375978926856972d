"""QGIS, the desktop GIS of the communes' agents, as a client of every OGC service.

QGIS 3.22 (Debian's `python3-qgis`, installed by `scripts/bootstrap.sh`) runs headless in
its own process (`qgis_client.py`, under Debian's Python) against the real catalog on
loopback, and loads each sample layer through WMS, WFS and OGC API Features, as an agent
does from « Ajouter une couche ». What it reads is compared with the release's GeoParquet:
every feature, its attributes, its place in Lambert-93 and the layer's extent.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest

from conftest import SAMPLES, Deployment, deployment, running_catalog

SYSTEM_PYTHON = "/usr/bin/python3"
CLIENT = Path(__file__).with_name("qgis_client.py")
LAYERS = {
    "ecully-bancs-publics": (SAMPLES / "inbox" / "ecully" / "bancs-publics", "Point"),
    "vaulx-en-velin-pistes-cyclables": (
        SAMPLES / "inbox" / "vaulx-en-velin" / "pistes-cyclables",
        "Line",
    ),
    "lyon-signalements-espace-public": (
        SAMPLES / "inbox" / "lyon" / "signalements-espace-public",
        "Point",
    ),
}
QGIS_GEOMETRY = {0: "Point", 1: "Line", 2: "Polygon"}  # QgsWkbTypes.GeometryType
METRE = 1.0  # Lambert-93 coordinates are metres
DEGREES_BOX_MARGIN = 150 * METRE  # a few km box near Lyon, turned by about 1.3°

pytestmark = pytest.mark.slow


def qgis_installed() -> bool:
    check = [SYSTEM_PYTHON, "-c", "import qgis.core"]
    return subprocess.run(check, capture_output=True, timeout=60, check=False).returncode == 0


@pytest.fixture(scope="module")
def seen_by_qgis(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, Any], Deployment]]:
    if not qgis_installed():
        pytest.fail("python3-qgis manque : lancez scripts/bootstrap.sh (paquet Debian)")
    with deployment(tmp_path_factory, "qgis") as published:
        for folder, _ in LAYERS.values():
            published.publish_sample(folder)
        with running_catalog(published.store) as base:
            request = json.dumps({"base": base, "layers": list(LAYERS)})
            done = subprocess.run(
                [SYSTEM_PYTHON, str(CLIENT)],
                input=request,
                capture_output=True,
                text=True,
                timeout=240,
                check=False,
            )
            assert done.returncode == 0, done.stderr[-3000:]
            yield json.loads(done.stdout), published


def truth(published: Deployment, slug: str) -> gpd.GeoDataFrame:
    release = published.store.current_release(slug)
    return gpd.read_parquet(published.store.release_path(release, "parquet")).to_crs(2154)


def assert_extent_holds_the_data(
    extent: list[float], frame: gpd.GeoDataFrame, margin: float
) -> None:
    """« Zoomer sur la couche » shows every feature, with at most `margin` metres around."""
    xmin, ymin, xmax, ymax = frame.total_bounds
    outward = [xmin - extent[0], ymin - extent[1], extent[2] - xmax, extent[3] - ymax]
    assert all(-METRE <= gap <= margin for gap in outward), (extent, list(frame.total_bounds))


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("service", ["WFS", "OAPIF"])
def test_qgis_reads_every_feature_where_it_is(seen_by_qgis, layer: str, service: str) -> None:
    report, published = seen_by_qgis
    facts = report[layer][service]
    assert facts["valid"], facts.get("error")
    frame = truth(published, layer)
    assert QGIS_GEOMETRY[facts["geometry"]] == LAYERS[layer][1]
    assert len(facts["features"]) == len(frame)
    want = sorted((round(c.x, 1), round(c.y, 1)) for c in frame.geometry.centroid)
    got = sorted(tuple(round(v, 1) for v in f["centroid"]) for f in facts["features"])
    for (x, y), (wx, wy) in zip(got, want, strict=True):
        assert math.hypot(x - wx, y - wy) <= METRE
    # WFS gives its extent in Lambert-93; OGC API in degrees: a box in degrees is a rotated
    # quadrilateral in Lambert-93 (meridians converge), so its envelope there is wider
    margin = METRE if service == "WFS" else DEGREES_BOX_MARGIN
    assert_extent_holds_the_data(facts["extent"], frame, margin)


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("service", ["WFS", "OAPIF"])
def test_qgis_sees_the_published_columns_and_values(seen_by_qgis, layer: str, service: str) -> None:
    report, published = seen_by_qgis
    facts = report[layer][service]
    frame = truth(published, layer)
    columns = [c for c in frame.columns if c != "geometry"]
    assert set(columns) <= set(facts["fields"])
    text_column = next(c for c in columns if frame[c].dtype == object)
    want = sorted(str(v) for v in frame[text_column] if v is not None)
    got = sorted(
        str(f["attributes"][text_column])
        for f in facts["features"]
        if f["attributes"][text_column] is not None
    )
    assert got == want


@pytest.mark.parametrize("layer", list(LAYERS))
def test_qgis_draws_the_wms_layer_over_its_extent(seen_by_qgis, layer: str) -> None:
    report, published = seen_by_qgis
    facts = report[layer]["WMS"]
    assert facts["valid"], facts.get("error")
    assert facts["errors"] == []
    assert facts["drawn_pixels"] > 20, "la carte WMS est vide"
    # WMS advertises its extent in degrees too (see above)
    assert_extent_holds_the_data(facts["extent"], truth(published, layer), DEGREES_BOX_MARGIN)
