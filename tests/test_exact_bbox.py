"""A box in any advertised CRS selects exactly the features it meets (issue #18).

A box in EPSG:2154 (Lambert-93, the CRS of the Métropole's GIS viewer and of QGIS users
here) is a curved quadrilateral in longitude and latitude: a service that replaces it by a
box in CRS84 (its envelope, or the box of two reprojected corners) returns features
outside it and misses some inside. Both services are read on both store backends (the
embedded SQLite/GeoPackage one and PostGIS) by real clients: OWSLib's WFS 2.0 client and
GDAL's WFS driver (ogr2ogr `-spat -spat_srs EPSG:2154`) for MapServer, OWSLib's OGC API
client (`bbox-crs`) and GDAL's OAPIF driver for pygeoapi.

The data: two samples (Écully's benches, points; Vaulx-en-Velin's cycle lanes, lines,
published in Lambert-93), and three layers of probes, points, lines and polygons, laid
`MARGIN` metres (or `MARGIN_DEGREES`) inside and outside each edge of the boxes, near the
corners where a box in CRS84 strays farthest from the asked one. The truth is computed
here, independently, with geopandas in the box's own CRS on the published GeoParquet.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pytest
import shapely
from owslib.ogcapi.features import Features
from owslib.wfs import WebFeatureService
from pyproj import Transformer

from catalog.ogc import mapserver

from conftest import SAMPLES, Deployment, running_catalog, write_submission

pytest_plugins = ["backends"]  # the session's throwaway PostGIS database
pytestmark = pytest.mark.slow  # two deployments, each read by four clients

GEOJSON = "application/json; subtype=geojson"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
BANCS, PISTES = "ecully-bancs-publics", "vaulx-en-velin-pistes-cyclables"
SAMPLE_FOLDERS = {BANCS: "ecully/bancs-publics", PISTES: "vaulx-en-velin/pistes-cyclables"}
PROBES = {"ecully-bornes": "Point", "ecully-traits": "LineString", "ecully-emprises": "Polygon"}
KEYS = {BANCS: "id_banc", PISTES: "id_troncon"} | dict.fromkeys(PROBES, "numero")
# Lambert-93 boxes (x, y) cutting through each layer; the probes' box is Écully's centre
LAMBERT = {
    BANCS: (837_400.0, 6_520_600.0, 838_500.0, 6_521_700.0),
    PISTES: (848_300.0, 6_520_900.0, 850_800.0, 6_522_400.0),
}
PROBE_LAMBERT = (836_500.0, 6_518_000.0, 839_500.0, 6_520_000.0)
LONLAT = {  # CRS84 (longitude, latitude)
    BANCS: (4.770, 45.772, 4.780, 45.780),
    PISTES: (4.915, 45.772, 4.935, 45.782),
}
PROBE_LONLAT = (4.800, 45.745, 4.830, 45.760)
MARGIN = 0.25  # metres: "just inside" and "just outside" a Lambert-93 box
MARGIN_DEGREES = 3e-7  # about 25 cm: finer than an R-tree's float32 bounds (0.4 m)
STEP = 0.02  # a probe's position along an edge (near the corners) and its far side


def _edge_probes(box: tuple[float, ...], margin: float, size: float) -> list[Any]:
    """Shapes (in the box's CRS) `margin` inside and outside each edge, near both ends of
    every edge and at its middle: a point, a segment along the edge, or a square lying
    away from the edge (outwards when outside, inwards when inside)."""
    west, south, east, north = box
    found = []
    for fraction in (STEP, 0.5, 1 - STEP):
        x = west + fraction * (east - west)
        y = south + fraction * (north - south)
        for d in (-margin, margin):  # inside, then outside
            for (px, py), (ax, ay), (nx, ny) in (
                ((west - d, y), (0, 1), (-1, 0)),
                ((east + d, y), (0, 1), (1, 0)),
                ((x, south - d), (1, 0), (0, -1)),
                ((x, north + d), (1, 0), (0, 1)),
            ):
                start = (px - ax * size / 2, py - ay * size / 2)
                end = (px + ax * size / 2, py + ay * size / 2)
                side = size if d > 0 else -size
                far = [
                    (end[0] + nx * side, end[1] + ny * side),
                    (start[0] + nx * side, start[1] + ny * side),
                ]
                found.append(
                    {
                        "Point": shapely.Point(px, py),
                        "LineString": shapely.LineString([start, end]),
                        "Polygon": shapely.Polygon([start, end, *far]),
                    }
                )
    return found


def probe_frame(kind: str) -> gpd.GeoDataFrame:
    """The probes of one geometry kind in WGS84: around the Lambert-93 box, then around
    the CRS84 box."""
    to_wgs84 = Transformer.from_crs(2154, 4326, always_xy=True)
    shapes = [
        shapely.ops.transform(to_wgs84.transform, probe[kind])
        for probe in _edge_probes(PROBE_LAMBERT, MARGIN, 4.0)
    ]
    shapes += [probe[kind] for probe in _edge_probes(PROBE_LONLAT, MARGIN_DEGREES, 4e-5)]
    return gpd.GeoDataFrame(
        {"numero": list(range(1, len(shapes) + 1))}, geometry=shapes, crs="EPSG:4326"
    )


# --- the deployments and what their clients read -------------------------------------------


def publish_layers(deployed: Deployment) -> None:
    for folder in SAMPLE_FOLDERS.values():
        deployed.publish_sample(SAMPLES / "inbox" / folder)
    for slug, kind in PROBES.items():
        name = slug.removeprefix("ecully-")
        data = write_submission(
            deployed.root / "submissions" / name,
            f"{name}.geojson",
            probe_frame(kind).to_json(drop_id=True),
        )
        deployed.publish(data)


def published(deployed: Deployment, layer: str) -> gpd.GeoDataFrame:
    release = deployed.store.current_release(layer)
    return gpd.read_parquet(deployed.store.release_path(release, "parquet"))


def lambert_box(layer: str) -> tuple[float, ...]:
    return PROBE_LAMBERT if layer in PROBES else LAMBERT[layer]


def lonlat_box(layer: str) -> tuple[float, ...]:
    return PROBE_LONLAT if layer in PROBES else LONLAT[layer]


def truth(deployed: Deployment, layer: str, epsg: int, box: tuple[float, ...]) -> list[Any]:
    """The keys of the published features meeting the box, in the box's CRS."""
    frame = published(deployed, layer).to_crs(epsg)
    return sorted(frame[frame.intersects(shapely.box(*box))][KEYS[layer]].tolist())


def keys(layer: str, features: list[dict[str, Any]]) -> list[Any]:
    return sorted(feature["properties"][KEYS[layer]] for feature in features)


def wfs_keys(
    wfs: WebFeatureService, layer: str, bbox: tuple[Any, ...], srsname: str = "EPSG::2154"
) -> list[Any]:
    """The features of a GetFeature with this BBOX, returned in `srsname`."""
    response = wfs.getfeature(
        typename=[f"ms:{layer}"],
        bbox=bbox,
        srsname=f"urn:ogc:def:crs:{srsname}",
        outputFormat=GEOJSON,
    )
    return keys(layer, json.loads(response.read())["features"])


def ogr_keys(source: str, layer: str, box: tuple[float, ...], folder: Path) -> list[Any]:
    """ogr2ogr's copy of `layer` (its `ms:` name on WFS) with a spatial filter in EPSG:2154."""
    name = layer if source.startswith("OAPIF:") else f"ms:{layer}"
    target = folder / f"{layer}.geojson"
    target.unlink(missing_ok=True)
    done = subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", str(target), source, name,
         "-spat", *map(str, box), "-spat_srs", "EPSG:2154"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return keys(layer, json.loads(target.read_text())["features"])


def observe(deployed: Deployment, folder: Path) -> dict[tuple[str, str], list[Any]]:
    """(client and box, layer) -> the keys of the features returned."""
    seen: dict[tuple[str, str], list[Any]] = {}
    with running_catalog(deployed.store) as base:
        wfs = WebFeatureService(f"{base}/wfs", version="2.0.0", timeout=60)
        api = Features(f"{base}/ogc")
        for layer in [*SAMPLE_FOLDERS, *PROBES]:
            lambert, (west, south, east, north) = lambert_box(layer), lonlat_box(layer)
            in_lambert = (*lambert, "urn:ogc:def:crs:EPSG::2154")
            seen["wfs 2154", layer] = wfs_keys(wfs, layer, in_lambert)
            # the features returned in another CRS (EPSG:4326 is WFS's default)
            seen["wfs 2154 to 4326", layer] = wfs_keys(wfs, layer, in_lambert, "EPSG::4326")
            seen["wfs 2154 to 3857", layer] = wfs_keys(wfs, layer, in_lambert, "EPSG::3857")
            # OWSLib writes an EPSG:4326 urn's box latitude first, as WFS 2.0 reads it
            seen["wfs 4326", layer] = wfs_keys(
                wfs, layer, (west, south, east, north, "urn:ogc:def:crs:EPSG::4326")
            )
            seen["wfs crs84", layer] = wfs_keys(
                wfs, layer, (west, south, east, north, "urn:ogc:def:crs:OGC:1.3:CRS84")
            )
            seen["gdal wfs 2154", layer] = ogr_keys(f"WFS:{base}/wfs", layer, lambert, folder)
            found = api.collection_items(
                layer, bbox=list(lambert), **{"bbox-crs": EPSG.format(2154)}, limit=10_000
            )
            seen["ogc api 2154", layer] = keys(layer, found["features"])
            found = api.collection_items(layer, bbox=[west, south, east, north], limit=10_000)
            seen["ogc api crs84", layer] = keys(layer, found["features"])
            seen["gdal oapif 2154", layer] = ogr_keys(f"OAPIF:{base}/ogc", layer, lambert, folder)
    return seen


@pytest.fixture(scope="module")
def observed(
    tmp_path_factory: pytest.TempPathFactory, postgis_database: str
) -> Iterator[dict[str, tuple[Deployment, dict[tuple[str, str], list[Any]]]]]:
    """Per backend: its deployment and what its clients read."""
    found = {}
    for backend, url in (("sqlite", None), ("postgis", postgis_database)):
        patch = pytest.MonkeyPatch()
        if url:
            patch.setenv("OPENDATA_STORE_URL", url)
        else:
            patch.delenv("OPENDATA_STORE_URL", raising=False)
        root = tmp_path_factory.mktemp(f"exact-{backend}")
        deployed = Deployment(root)
        try:
            publish_layers(deployed)
            found[backend] = (deployed, observe(deployed, root))
        finally:
            deployed.close()
            patch.undo()
    yield found
    for deployed, _ in found.values():
        deployed.store.close()
    from backends import empty_postgis  # a pytest plugin here: imported once registered

    empty_postgis(postgis_database)


BACKENDS = ("sqlite", "postgis")
LAYERS = [*SAMPLE_FOLDERS, *PROBES]


def differences(
    seen: dict[tuple[str, str], list[Any]],
    client: str,
    deployed: Deployment,
    epsg: int,
    box_of: Callable[[str], tuple[float, ...]],
) -> dict[str, dict[str, list[Any]]]:
    """Per layer, the features returned that do not meet the box and those missing."""
    wrong = {}
    for layer in LAYERS:
        expected = truth(deployed, layer, epsg, box_of(layer))
        assert expected, layer
        got = set(seen[client, layer])
        if sorted(got) != expected:
            wrong[layer] = {
                "extra": sorted(got - set(expected)),
                "missing": sorted(set(expected) - got),
            }
    return wrong


def mismatches(
    deployed: Any, seen: dict[Any, Any], client: str, epsg: int, box_of: Any
) -> dict[str, dict[str, list[Any]]]:
    """Per layer, the features `client` returned outside the truth and those it missed."""
    wrong = {}
    for layer in LAYERS:
        expected = truth(deployed, layer, epsg, box_of(layer))
        assert expected, layer
        if seen[client, layer] != expected:
            got = set(seen[client, layer])
            wrong[layer] = {
                "extra": sorted(got - set(expected)),
                "missing": sorted(set(expected) - got),
            }
    return wrong


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "client",
    [
        "wfs 2154",
        "wfs 2154 to 4326",
        "wfs 2154 to 3857",
        "gdal wfs 2154",
        "ogc api 2154",
        "gdal oapif 2154",
    ],
)
def test_a_lambert_93_box_selects_exactly_the_features_it_meets(
    observed: dict[str, Any], backend: str, client: str
) -> None:
    deployed, seen = observed[backend]
    assert not mismatches(deployed, seen, client, 2154, lambert_box)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("client", ["wfs 4326", "wfs crs84", "ogc api crs84"])
def test_a_longitude_latitude_box_selects_exactly_the_features_it_meets(
    observed: dict[str, Any], backend: str, client: str
) -> None:
    deployed, seen = observed[backend]
    assert not mismatches(deployed, seen, client, 4326, lonlat_box)


def test_only_a_bbox_in_another_crs_than_the_output_becomes_a_filter() -> None:
    """MapServer is exact on its own when the BBOX is in the output CRS: left as asked."""
    base = [("SERVICE", "WFS"), ("VERSION", "2.0.0"), ("REQUEST", "GetFeature")]
    lambert = ("BBOX", "836500,6518000,839500,6520000,urn:ogc:def:crs:EPSG::2154")
    same = [*base, ("TYPENAMES", "ms:a"), lambert, ("SRSNAME", "EPSG:2154")]
    assert mapserver.bbox_as_filter(same) == same
    with_filter = [*base, ("TYPENAMES", "ms:a"), lambert, ("FILTER", "<fes:Filter/>")]
    assert mapserver.bbox_as_filter(with_filter) == with_filter
    rewritten = dict(mapserver.bbox_as_filter([*base, ("TYPENAMES", "ms:a,ms:b"), lambert]))
    assert "BBOX" not in rewritten
    assert rewritten["FILTER"].startswith("(<fes:Filter") and rewritten["FILTER"].count("(") == 2
    assert 'srsName="urn:ogc:def:crs:EPSG::2154"' in rewritten["FILTER"]
    latitude_first = ("BBOX", "45.7,4.7,45.8,4.8,urn:ogc:def:crs:EPSG::4326")
    crs84 = dict(mapserver.bbox_as_filter([*base, ("TYPENAMES", "ms:a"), latitude_first,
                                           ("SRSNAME", "EPSG:2154")]))  # fmt: skip
    assert 'srsName="urn:ogc:def:crs:OGC:1.3:CRS84"' in crs84["FILTER"]
    assert "<gml:posList>4.7 45.7 " in crs84["FILTER"]
