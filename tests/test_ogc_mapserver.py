"""WMS 1.3.0 and WFS 2.0 by Debian's MapServer, behind the real catalog on loopback.

One deployment for the module: the three geographic samples, a small dataset of trees that
the last test republishes, changes and withdraws, and a restricted dataset. The services are
consumed as reusers do: OWSLib (WMS and WFS), GDAL's ogrinfo and ogr2ogr (WFS driver), and
the PNG maps decoded with Pillow. What comes back is compared with the release's GeoParquet.
"""

from __future__ import annotations

import asyncio
import io
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import geopandas as gpd
import numpy as np
import ogc_schemas
import pandas as pd
import pytest
import requests
import shapely
from fastapi import FastAPI
from lxml import etree
from owslib.util import ServiceException
from owslib.wfs import WebFeatureService
from owslib.wms import WebMapService
from PIL import Image
from shapely.geometry import Point

from catalog.ogc import mapserver
from catalog.ogc.mapserver import MapServerService
from catalog.ogc.resident import FastCgiPool
from catalog.web.app import create_app
from pipelines.publish import CheckedData
from pipelines.schema import infer_schema, structure_of
from pipelines.submission import (
    Submission,
    stage_anonymise,
    stage_licence,
    stage_metadata,
    stage_publish,
    stage_read,
)
from pipelines.validate import validate

from conftest import SAMPLES, Deployment, deployment, serving, write_submission

CRS = ("EPSG:4326", "EPSG:2154", "EPSG:3946", "EPSG:3857")
GEOJSON = "application/json; subtype=geojson"
STYLE = (0, 102, 204)
WHITE = (255, 255, 255, 255)
WFS_NS = "http://www.opengis.net/wfs/2.0"
GML_NS = "http://www.opengis.net/gml/3.2"
TREES_TITLE = 'Arbres "remarquables" d\'alignement'  # quotes: the map file must escape them
SECRET_TITLE = "Registre confidentiel des interventions"
SAMPLE_LAYERS = {
    "ecully-bancs-publics": ("ecully/bancs-publics", "Bancs publics"),
    "vaulx-en-velin-pistes-cyclables": (
        "vaulx-en-velin/pistes-cyclables",
        "Aménagements cyclables",
    ),
    "lyon-signalements-espace-public": (
        "lyon/signalements-espace-public",
        "Signalements sur l'espace public",
    ),
}
PUBLIC_LAYERS = {name: title for name, (_, title) in SAMPLE_LAYERS.items()} | {
    "ecully-arbres": TREES_TITLE
}
TREES = [  # lon, lat, species, height: about 300 m apart in Écully
    (4.7702, 45.7752, "Platane", 12.5),
    (4.7745, 45.7781, "Tilleul", 8.0),
    (4.7790, 45.7730, "Érable", 10.25),
    (4.7660, 45.7795, "Chêne", 15.0),
]


@dataclass
class Services:
    """The running catalog; its OWSLib clients read the capabilities again after a refresh."""

    base: str
    app: FastAPI
    deployment: Deployment
    clients: dict[str, Any] = field(default_factory=dict)

    @property
    def store(self) -> Any:
        return self.deployment.store

    def wms(self) -> WebMapService:
        if "wms" not in self.clients:
            self.clients["wms"] = WebMapService(f"{self.base}/wms", version="1.3.0", timeout=30)
        return self.clients["wms"]

    def wfs(self) -> WebFeatureService:
        if "wfs" not in self.clients:
            url = f"{self.base}/wfs"
            self.clients["wfs"] = WebFeatureService(url, version="2.0.0", timeout=30)
        return self.clients["wfs"]

    def refresh(self) -> None:
        self.app.state.refresher.refresh()
        self.clients.clear()


# --- the deployment --------------------------------------------------------------------------


def trees_submission(root: Path, rows: list[tuple[Any, ...]], species: str = "espece") -> Path:
    frame = gpd.GeoDataFrame(
        {
            "numero": list(range(1, len(rows) + 1)),
            species: [row[2] for row in rows],
            "hauteur": [row[3] for row in rows],
        },
        geometry=[Point(row[0], row[1]) for row in rows],
        crs="EPSG:4326",
    )
    data = write_submission(
        root / "submissions" / "arbres", "arbres.geojson", frame.to_json(drop_id=True)
    )
    retitle(data.parent / "metadata.yaml", "'Arbres \"remarquables\" d''alignement'")
    return data


def restricted_submission(root: Path) -> Path:
    frame = gpd.GeoDataFrame({"numero": [1]}, geometry=[Point(4.775, 45.776)], crs="EPSG:4326")
    data = write_submission(
        root / "submissions" / "interventions",
        "interventions.geojson",
        frame.to_json(drop_id=True),
        extra_metadata="acces: restreint\n",
    )
    retitle(data.parent / "metadata.yaml", SECRET_TITLE)
    return data


def retitle(metadata: Path, title: str) -> None:
    text = metadata.read_text(encoding="utf-8")
    metadata.write_text(text.replace("titre: Arbres d'alignement", f"titre: {title}"), "utf-8")


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    with deployment(tmp_path_factory, "mapserver") as deployed:
        for sample, _ in SAMPLE_LAYERS.values():
            deployed.publish_sample(SAMPLES / "inbox" / sample)
        deployed.publish(trees_submission(deployed.root, TREES[:3]))
        deployed.publish(restricted_submission(deployed.root))
        app = create_app(
            deployed.store, services=[MapServerService(deployed.settings.services_dir)]
        )
        app.state.refresher.interval = 0.5  # the background refresh, without waiting 15 s
        with serving(app) as base:
            yield Services(base, app, deployed)


# --- what was published ----------------------------------------------------------------------


def published(
    store: Any, slug: str, version: int | None = None
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
    """The release's GeoParquet and its published fields (geometry excepted)."""
    release = store.current_release(slug, version)
    frame = gpd.read_parquet(store.release_path(release, "parquet"))
    kept = next(v for v in store.structure_versions(slug) if v.version == release.structure_version)
    schema = kept.structure.get("published_schema") or kept.structure["schema"]
    fields = [f for f in schema["fields"] if f["name"] != "geometry" and f["type"] != "geojson"]
    return frame, fields


def canonical(value: Any, kind: str) -> Any:
    """One comparable value whatever the format carried (text, number, timestamp)."""
    if value is None or value is pd.NaT or value == "":
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if kind == "integer":
        return int(value)
    if kind == "number":
        return round(float(value), 6)
    if kind == "date":  # a service's text must be the date alone, as published
        return value if isinstance(value, str) else pd.Timestamp(value).date().isoformat()
    return str(value)


def records(rows: list[dict[str, Any]], fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{f["name"]: canonical(row.get(f["name"]), f["type"]) for f in fields} for row in rows]


def expected(
    store: Any, slug: str, epsg: int = 2154, version: int | None = None
) -> tuple[list[dict[str, Any]], list[np.ndarray], list[dict[str, Any]]]:
    frame, fields = published(store, slug, version)
    frame = frame.to_crs(epsg)
    rows = records(frame.drop(columns="geometry").to_dict("records"), fields)
    return rows, [shapely.get_coordinates(g) for g in frame.geometry], fields


def assert_same_geometries(got: list[np.ndarray], want: list[np.ndarray], tolerance: float) -> None:
    assert len(got) == len(want)
    for mine, theirs in zip(got, want, strict=True):
        assert mine.shape == theirs.shape
        assert float(np.abs(mine - theirs).max()) <= tolerance


# --- what the services return ----------------------------------------------------------------


def geojson_features(
    services: Services, layer: str, srs: str = "urn:ogc:def:crs:EPSG::2154", **query: Any
) -> dict[str, Any]:
    response = services.wfs().getfeature(
        typename=[f"ms:{layer}"], outputFormat=GEOJSON, srsname=srs, **query
    )
    return json.loads(response.read())


def gml_features(content: bytes) -> tuple[Any, list[tuple[str, dict[str, Any], np.ndarray]]]:
    """The GML 3.2 feature collection: each member's gml:id, properties and coordinates."""
    root = etree.fromstring(content)
    features = []
    for member in root.iter(f"{{{WFS_NS}}}member"):
        feature = member[0]
        properties: dict[str, Any] = {}
        coordinates = np.empty((0, 2))
        for child in feature:
            name = etree.QName(child).localname
            if name == "geometrie":
                positions = child.iter(f"{{{GML_NS}}}pos", f"{{{GML_NS}}}posList")
                numbers = [float(v) for element in positions for v in element.text.split()]
                coordinates = np.array(numbers).reshape(-1, 2)
            elif name != "boundedBy":
                properties[name] = child.text
        features.append((feature.get(f"{{{GML_NS}}}id"), properties, coordinates))
    return root, features


def capabilities(services: Services, service: str) -> str:
    version = "1.3.0" if service == "WMS" else "2.0.0"
    url = f"{services.base}/{service.lower()}?SERVICE={service}&VERSION={version}"
    response = requests.get(f"{url}&REQUEST=GetCapabilities", timeout=30)
    assert response.status_code == 200
    return response.text


def ogr(*arguments: str) -> str:
    done = subprocess.run(arguments, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


# --- capabilities ----------------------------------------------------------------------------


def test_capabilities_list_the_public_layers_in_french_in_four_crs(services: Services) -> None:
    wms = services.wms()
    assert wms.identification.title == "Données ouvertes des communes de la Métropole de Lyon"
    assert "communes partenaires" in wms.identification.abstract
    assert "Licence Ouverte" in wms.identification.accessconstraints
    assert "ODbL" in wms.identification.accessconstraints
    assert {name: layer.title for name, layer in wms.contents.items()} == PUBLIC_LAYERS
    for layer in wms.contents.values():
        assert set(CRS) <= set(layer.crsOptions)
        assert "GetLegendGraphic" in layer.styles["default"]["legend"]
        assert layer.attribution["url"].startswith("https://")
    wfs = services.wfs()
    assert wfs.identification.title == "Données ouvertes des communes de la Métropole de Lyon"
    assert {name: t.title for name, t in wfs.contents.items()} == {
        f"ms:{name}": title for name, title in PUBLIC_LAYERS.items()
    }
    for feature_type in wfs.contents.values():
        assert {c.code for c in feature_type.crsOptions} == {4326, 2154, 3946, 3857}
    listing = ogr("ogrinfo", "-ro", "-so", f"WFS:{services.base}/wfs")
    for name, title in PUBLIC_LAYERS.items():
        assert f"ms:{name} (title: {title})" in listing
    for document in (capabilities(services, "WMS"), capabilities(services, "WFS"), listing):
        assert "interventions" not in document and SECRET_TITLE not in document


WMS_XSD = "http://schemas.opengis.net/wms/1.3.0/capabilities_1_3_0.xsd"
WFS_XSD = "http://schemas.opengis.net/wfs/2.0/wfs.xsd"


def test_capabilities_are_valid_against_the_official_schemas(services: Services) -> None:
    wms = requests.get(
        f"{services.base}/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetCapabilities", timeout=30
    )
    assert ogc_schemas.errors(WMS_XSD, wms.content) == []
    wfs = requests.get(
        f"{services.base}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetCapabilities", timeout=30
    )
    assert ogc_schemas.errors(WFS_XSD, wfs.content) == []


@pytest.mark.parametrize("layer", sorted(PUBLIC_LAYERS))
def test_getfeature_gml_is_valid_against_wfs_and_the_layers_schema(
    services: Services, layer: str
) -> None:
    described = requests.get(
        f"{services.base}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=DescribeFeatureType"
        f"&TYPENAMES=ms:{layer}",
        timeout=30,
    )
    assert described.status_code == 200
    gml = requests.get(
        f"{services.base}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature"
        f"&TYPENAMES=ms:{layer}&OUTPUTFORMAT=application/gml%2Bxml;%20version=3.2",
        timeout=30,
    )
    assert gml.status_code == 200, gml.text[:500]
    assert ogc_schemas.errors_by_its_own_hints(gml.content) == []
    # the check bites: a feature whose geometry is not GML is refused by the layer's schema
    broken = re.sub(rb"(<gml:pos(?:List)?[^>]*>)[^<]*", rb"\1abc", gml.content, count=1)
    assert broken != gml.content and ogc_schemas.errors_by_its_own_hints(broken) != []


def test_cached_capabilities_are_mapservers_own_document_for_the_whole_map(
    services: Services,
) -> None:
    """The capabilities served (assembled from each layer's element, cached until the next
    change) are, byte for byte, what MapServer writes for the whole catalogue's map file."""
    service = services.app.state.refresher.services[0]
    names = list(service.layer_names)
    for kind, query in (
        ("WMS", "SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0"),
        ("WMS", "SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.1.1"),
        ("WFS", "SERVICE=WFS&REQUEST=GetCapabilities&VERSION=2.0.0"),
        ("WFS", "SERVICE=WFS&REQUEST=GetCapabilities&VERSION=1.1.0"),
    ):
        served = requests.get(f"{services.base}/{kind.lower()}?{query}", timeout=30)
        status, _, whole = service.run_capabilities(names, query, True)
        assert served.status_code == status == 200
        assert served.content == whole


def test_capabilities_advertise_the_catalogs_public_url(services: Services) -> None:
    text = capabilities(services, "WFS")
    assert f'xlink:href="{services.base}/wfs?"' in text
    assert f'xlink:href="{services.base}/wms?"' in capabilities(services, "WMS")


# --- WFS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", sorted(SAMPLE_LAYERS))
def test_wfs_geojson_returns_the_published_features(services: Services, layer: str) -> None:
    rows, geometries, fields = expected(services.store, layer)
    collection = geojson_features(services, layer)
    features = collection["features"]
    assert collection["numberMatched"] == len(rows)
    assert all(set(f["properties"]) == {f["name"] for f in fields} for f in features)
    assert records([f["properties"] for f in features], fields) == rows
    got = [shapely.get_coordinates(shapely.geometry.shape(f["geometry"])) for f in features]
    assert_same_geometries(got, geometries, tolerance=0.01)


@pytest.mark.parametrize("layer", sorted(SAMPLE_LAYERS))
def test_wfs_gml_returns_the_published_features(services: Services, layer: str) -> None:
    rows, geometries, fields = expected(services.store, layer)
    response = services.wfs().getfeature(
        typename=[f"ms:{layer}"], srsname="urn:ogc:def:crs:EPSG::2154"
    )
    root, features = gml_features(response.read())
    assert root.get("numberMatched") == str(len(rows)) == root.get("numberReturned")
    identifiers = [identifier for identifier, _, _ in features]
    assert len(set(identifiers)) == len(rows) and all(
        i.startswith(f"{layer}.") for i in identifiers
    )
    assert records([properties for _, properties, _ in features], fields) == rows
    assert_same_geometries([c for _, _, c in features], geometries, tolerance=0.01)


def test_wfs_pages_with_count_and_startindex(services: Services) -> None:
    layer = "lyon-signalements-espace-public"
    rows, _, _ = expected(services.store, layer)
    pages = [
        geojson_features(services, layer, maxfeatures=100, startindex=s) for s in (0, 100, 200)
    ]
    assert [len(p["features"]) for p in pages] == [100, 100, len(rows) - 200]
    assert all(p["numberMatched"] == len(rows) for p in pages)
    ids = [f["properties"]["id_signalement"] for p in pages for f in p["features"]]
    assert ids == [row["id_signalement"] for row in rows]
    second = services.wfs().getfeature(typename=[f"ms:{layer}"], maxfeatures=10, startindex=100)
    root, features = gml_features(second.read())
    assert [int(p["id_signalement"]) for _, p, _ in features] == ids[100:110]
    assert "STARTINDEX=110" in root.get("next") and "STARTINDEX=90" in root.get("previous")


def test_wfs_answers_xml_posts(services: Services) -> None:
    layer = "lyon-signalements-espace-public"
    rows, _, fields = expected(services.store, layer)
    response = services.wfs().getfeature(
        typename=[f"ms:{layer}"], maxfeatures=3, outputFormat=GEOJSON, method="Post"
    )
    collection = json.loads(response.read())
    assert collection["numberMatched"] == len(rows)
    assert records([f["properties"] for f in collection["features"]], fields) == rows[:3]


def test_wfs_answers_a_post_larger_than_a_fastcgi_record(services: Services) -> None:
    """A body over 64 KiB goes to mapserv in several FastCGI records, whole."""
    layer = "ecully-bancs-publics"
    rows, _, _ = expected(services.store, layer)
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<!-- {'remplissage ' * 8000} -->\n"
        '<wfs:GetFeature xmlns:wfs="http://www.opengis.net/wfs/2.0" service="WFS" '
        f'version="2.0.0" outputFormat="{GEOJSON}">'
        f'<wfs:Query typeNames="ms:{layer}"/></wfs:GetFeature>'
    ).encode()
    assert 65535 < len(body) < mapserver.MAX_POST_BYTES
    answer = requests.post(
        f"{services.base}/wfs", data=body, headers={"Content-Type": "text/xml"}, timeout=30
    )
    assert answer.status_code == 200, answer.text[:500]
    assert len(answer.json()["features"]) == len(rows)


def test_wfs_bbox_keeps_the_features_inside(services: Services) -> None:
    layer = "lyon-signalements-espace-public"
    frame, _ = published(services.store, layer)
    frame = frame.to_crs(2154)
    west, south, east, north = frame.total_bounds
    box = (west, south, (west + east) / 2, (south + north) / 2)
    inside = frame[frame.geometry.intersects(shapely.box(*box))]
    assert 0 < len(inside) < len(frame)
    collection = geojson_features(services, layer, bbox=(*box, "urn:ogc:def:crs:EPSG::2154"))
    got = sorted(f["properties"]["id_signalement"] for f in collection["features"])
    assert got == sorted(inside["id_signalement"].tolist())


@pytest.mark.parametrize("epsg", [4326, 3946, 3857])
def test_wfs_reprojects_to_the_requested_crs(services: Services, epsg: int) -> None:
    layer = "vaulx-en-velin-pistes-cyclables"
    rows, geometries, fields = expected(services.store, layer, epsg)
    collection = geojson_features(services, layer, srs=f"urn:ogc:def:crs:EPSG::{epsg}")
    assert records([f["properties"] for f in collection["features"]], fields) == rows
    got = [
        shapely.get_coordinates(shapely.geometry.shape(f["geometry"]))
        for f in collection["features"]
    ]
    # GeoJSON is longitude first even in EPSG:4326; 1e-7 degree is about a centimetre.
    assert_same_geometries(got, geometries, tolerance=1e-7 if epsg == 4326 else 0.01)


def test_ogr2ogr_copies_the_published_features(services: Services, tmp_path: Path) -> None:
    target = tmp_path / "copie.gpkg"
    names = [f"ms:{name}" for name in sorted(SAMPLE_LAYERS)]
    ogr(
        "ogr2ogr",
        "-f",
        "GPKG",
        "-t_srs",
        "EPSG:2154",
        str(target),
        f"WFS:{services.base}/wfs",
        *names,
    )
    for name in sorted(SAMPLE_LAYERS):
        rows, geometries, fields = expected(services.store, name)
        copy = gpd.read_file(target, layer=f"ms:{name}")
        assert copy.crs.to_epsg() == 2154
        assert records(copy.drop(columns="geometry").to_dict("records"), fields) == rows
        got = [shapely.get_coordinates(g) for g in copy.geometry]
        assert_same_geometries(got, geometries, tolerance=0.01)


def test_gdal_makes_each_wfs_layer_of_its_geometry_type(services: Services) -> None:
    # GML 3.2's curve: a line layer for GDAL (a compound curve) and for QGIS
    expected_types = {
        "ecully-bancs-publics": {"Geometry: Point"},
        "vaulx-en-velin-pistes-cyclables": {"Geometry: Compound Curve", "Geometry: Line String"},
    }
    for name, kinds in expected_types.items():
        summary = ogr("ogrinfo", "-so", "-ro", f"WFS:{services.base}/wfs", f"ms:{name}")
        geometry = next(line for line in summary.splitlines() if line.startswith("Geometry:"))
        assert geometry in kinds, (name, geometry)


# --- WMS -------------------------------------------------------------------------------------


def map_window(
    frame: gpd.GeoDataFrame, epsg: int, width: int = 400
) -> tuple[tuple[float, float, float, float], tuple[int, int]]:
    """The features' box with a 15 % margin on every side, and an image of square pixels."""
    west, south, east, north = frame.to_crs(epsg).total_bounds
    dx, dy = (east - west) * 0.15, (north - south) * 0.15
    box = (west - dx, south - dy, east + dx, north + dy)
    return box, (width, round(width * (box[3] - box[1]) / (box[2] - box[0])))


def pixel(box: tuple[float, ...], size: tuple[int, int], x: float, y: float) -> tuple[int, int]:
    column = (x - box[0]) / (box[2] - box[0]) * size[0]
    row = (box[3] - y) / (box[3] - box[1]) * size[1]
    return int(column), int(row)


def styled_near(image: Image.Image, where: tuple[int, int], radius: int = 2) -> bool:
    rgb = image.convert("RGB")
    for dx in range(-radius, radius + 1):
        for dy in range(-radius, radius + 1):
            colour = rgb.getpixel((where[0] + dx, where[1] + dy))
            if all(abs(a - b) <= 30 for a, b in zip(colour, STYLE, strict=True)):
                return True
    return False


def get_map(services: Services, layer: str, crs: str, box: tuple[float, ...], size: Any) -> Any:
    response = services.wms().getmap(
        layers=[layer], srs=crs, bbox=box, size=size, format="image/png"
    )
    assert response.info()["Content-Type"] == "image/png"
    return Image.open(io.BytesIO(response.read()))


@pytest.mark.parametrize("crs", CRS)
def test_getmap_draws_the_features_where_they_are(services: Services, crs: str) -> None:
    layer = "ecully-bancs-publics"
    frame, _ = published(services.store, layer)
    epsg = int(crs.split(":")[1])
    box, size = map_window(frame, epsg)
    image = get_map(services, layer, crs, box, size)
    assert image.size == size
    points = frame.to_crs(epsg).geometry
    assert all(styled_near(image, pixel(box, size, p.x, p.y)) for p in points)
    margin = image.convert("RGBA").crop((0, 0, size[0], size[1] // 20))  # no feature up there
    assert margin.getcolors() == [(margin.width * margin.height, WHITE)]
    elsewhere = (box[0] - 3 * (box[2] - box[0]), box[1], box[0] - 2 * (box[2] - box[0]), box[3])
    empty = get_map(services, layer, crs, elsewhere, size).convert("RGBA")
    assert empty.getcolors() == [(size[0] * size[1], WHITE)]


def test_getmap_draws_lines(services: Services) -> None:
    layer = "vaulx-en-velin-pistes-cyclables"
    frame, _ = published(services.store, layer)
    box, size = map_window(frame, 2154, width=600)
    image = get_map(services, layer, "EPSG:2154", box, size)
    for line in frame.to_crs(2154).geometry:
        middle = line.interpolate(0.5, normalized=True)
        assert styled_near(image, pixel(box, size, middle.x, middle.y))


def test_getfeatureinfo_returns_the_feature_under_the_pixel(services: Services) -> None:
    layer = "ecully-bancs-publics"
    frame, _ = published(services.store, layer)
    frame = frame.to_crs(2154)
    box, size = map_window(frame, 2154)
    # the bench farthest from the others, so that only it lies within the click tolerance
    distances = [frame.geometry.drop(i).distance(g).min() for i, g in frame.geometry.items()]
    chosen = frame.iloc[int(np.argmax(distances))]
    where = pixel(box, size, chosen.geometry.x, chosen.geometry.y)
    arguments = dict(
        layers=[layer], srs="EPSG:2154", bbox=box, size=size, format="image/png", xy=where
    )
    answer = services.wms().getfeatureinfo(info_format=GEOJSON, **arguments)
    features = json.loads(answer.read())["features"]
    assert [f["properties"]["id_banc"] for f in features] == [int(chosen["id_banc"])]
    assert features[0]["properties"]["materiau"] == chosen["materiau"]
    text = services.wms().getfeatureinfo(info_format="text/plain", **arguments).read().decode()
    assert f"id_banc = '{int(chosen['id_banc'])}'" in text
    gml = services.wms().getfeatureinfo(info_format="application/vnd.ogc.gml", **arguments)
    assert f"<id_banc>{int(chosen['id_banc'])}</id_banc>" in gml.read().decode()


def test_getfeatureinfo_in_a_format_not_advertised_is_refused_before_mapserv(
    services: Services,
) -> None:
    """mapserv 8.0 aborts (heap corruption) on INFO_FORMAT=application/json on a point layer:
    only the advertised formats reach it; the others get WMS's InvalidFormat."""
    offered = services.wms().getOperationByName("GetFeatureInfo").formatOptions
    assert set(offered) == set(mapserver.FEATURE_INFO_FORMATS)
    query = (
        "SERVICE=WMS&VERSION=1.3.0&REQUEST=GetFeatureInfo&LAYERS=ecully-bancs-publics"
        "&QUERY_LAYERS=ecully-bancs-publics&CRS=EPSG:4326&BBOX=45.7,4.7,45.8,4.8"
        "&WIDTH=100&HEIGHT=100&I=50&J=50&FORMAT=image/png&STYLES="
    )
    for _ in range(3):  # it used to crash one run in three
        refused = requests.get(
            f"{services.base}/wms?{query}&INFO_FORMAT=application/json", timeout=30
        )
        assert refused.status_code == 400
        assert 'code="InvalidFormat"' in refused.text and "non proposé" in refused.text
    answered = requests.get(f"{services.base}/wms?{query}&INFO_FORMAT={quote(GEOJSON)}", timeout=30)
    assert answered.status_code == 200 and "FeatureCollection" in answered.text


def test_a_mapserv_that_crashes_is_a_500_exception_never_an_empty_200(tmp_path: Path) -> None:
    crashing = tmp_path / "mapserv"
    crashing.write_text("#!/bin/sh\necho 'free(): invalid pointer' >&2\nkill -ABRT $$\n")
    crashing.chmod(0o755)
    finished = asyncio.run(mapserver.run_cgi(str(crashing), {"PATH": "/usr/bin:/bin"}, b"", 10))
    assert finished.returncode < 0
    answer = mapserver.mapserver_answer(finished)
    assert answer.status_code == 500
    assert (
        b"ows:ExceptionReport" in answer.body
        and "MapServer s&#x27;est arrêté".encode() in answer.body
    )


# A FastCGI application that misbehaves once it has accepted a request (Python stands in
# for a mapserv that crashes, answers garbage or hangs: those cannot be caused at will).
MISBEHAVING = """
import os, socket, sys, time
connection, _ = socket.socket(fileno=0).accept()
connection.recv(65536)
if sys.argv[1] == "crash":
    sys.stderr.write("free(): invalid pointer\\n")
    sys.stderr.flush()
    os.abort()
if sys.argv[1] == "garbage":
    connection.sendall(b"HTTP/1.0 200 OK\\r\\n\\r\\nbonjour")
time.sleep(60)
"""


def misbehaving_pool(tmp_path: Path, how: str) -> FastCgiPool:
    script = tmp_path / "misbehaving.py"
    script.write_text(MISBEHAVING)
    return FastCgiPool([sys.executable, str(script), how], {"PATH": "/usr/bin:/bin"}, size=1)


@pytest.mark.parametrize("how", ["crash", "garbage"])
def test_a_resident_process_that_crashes_or_answers_garbage_is_a_500_and_is_replaced(
    tmp_path: Path, how: str
) -> None:
    pool = misbehaving_pool(tmp_path, how)
    try:
        first = pool.processes()
        finished = asyncio.run(pool.run({"REQUEST_METHOD": "GET"}, b"", 10))
        assert not finished.complete
        answer = mapserver.mapserver_answer(finished)
        assert answer.status_code == 500 and b"ows:ExceptionReport" in answer.body
        if how == "crash":
            assert finished.returncode == -signal.SIGABRT
            assert b"free(): invalid pointer" in finished.errors
        assert first == [] and pool.processes() == []  # none kept: the next one is new
    finally:
        pool.close()


def test_a_resident_process_past_the_time_limit_is_killed(tmp_path: Path) -> None:
    pool = misbehaving_pool(tmp_path, "hang")
    try:

        async def hanging() -> list[int]:
            task = asyncio.ensure_future(pool.run({"REQUEST_METHOD": "GET"}, b"", 1.0))
            await asyncio.sleep(0.5)
            running = [p.pid for p in pool.processes()]
            with pytest.raises(TimeoutError):
                await task
            return running

        (pid,) = asyncio.run(hanging())
        assert pool.processes() == []
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # killed and reaped
    finally:
        pool.close()


ORPHAN = """
import asyncio, sys
from catalog.ogc.resident import FastCgiPool
environ = {"PATH": "/usr/bin:/bin", "MAPSERVER_CONFIG_FILE": sys.argv[1]}
pool = FastCgiPool(["/usr/bin/mapserv"], environ, size=1)
finished = asyncio.run(pool.run({"REQUEST_METHOD": "GET", "QUERY_STRING": "x"}, b"", 30))
print(*(p.pid for p in pool.processes()), flush=True)
sys.stdin.read()
"""


def alive(pid: int, name: bytes) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return False
    return f"({name.decode()})".encode() in stat and b") Z " not in stat


def test_resident_processes_do_not_outlive_a_killed_catalog(tmp_path: Path) -> None:
    config = tmp_path / "mapserver.conf"
    config.write_text(mapserver.render_config(tmp_path / "catalogue.map"))
    catalog = subprocess.Popen(
        [sys.executable, "-c", ORPHAN, str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=Path(mapserver.__file__).parents[2],
    )
    try:
        pid = int(catalog.stdout.readline())
        assert alive(pid, b"mapserv")
    finally:
        catalog.kill()  # no clean-up of its own: the kernel's parent-death signal
        catalog.wait()
    deadline = time.monotonic() + 10
    while alive(pid, b"mapserv"):
        assert time.monotonic() < deadline, "mapserv a survécu au catalogue"
        time.sleep(0.05)


def resident_pool(services: Services) -> FastCgiPool:
    (service,) = services.app.state.refresher.services
    assert service.pool is not None, "le chemin résident (FastCGI) est le défaut"
    return service.pool


GETMAP = (
    "/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=ecully-bancs-publics&STYLES="
    "&CRS=EPSG:4326&BBOX=45.76,4.76,45.79,4.79&WIDTH=256&HEIGHT=256&FORMAT=image/png"
)


def test_a_killed_resident_mapserv_is_replaced_and_the_next_request_succeeds(
    services: Services,
) -> None:
    assert requests.get(services.base + GETMAP, timeout=30).status_code == 200
    pool = resident_pool(services)
    killed = pool.processes()
    assert killed and all(Path(f"/proc/{p.pid}/exe").resolve().name == "mapserv" for p in killed)
    for process in killed:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    answer = requests.get(services.base + GETMAP, timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(answer.content)).size == (256, 256)
    assert {p.pid for p in pool.processes()}.isdisjoint(p.pid for p in killed)


def test_concurrent_requests_share_a_bounded_pool(services: Services) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as clients:
        answers = list(
            clients.map(lambda _: requests.get(services.base + GETMAP, timeout=60), range(24))
        )
    assert [a.status_code for a in answers] == [200] * 24
    assert 1 <= len(resident_pool(services).processes()) <= resident_pool(services).size == 2


def test_legends_are_pngs_of_the_default_style(services: Services) -> None:
    for name, layer in services.wms().contents.items():
        response = requests.get(layer.styles["default"]["legend"], timeout=30)
        assert response.headers["content-type"] == "image/png", name
        legend = Image.open(io.BytesIO(response.content))
        assert legend.width > 20 and legend.height > 10
        rgb = legend.convert("RGB")
        assert any(rgb.getpixel((x, y)) == STYLE for x in range(20) for y in range(legend.height))


# --- errors ----------------------------------------------------------------------------------


def test_unknown_layer_and_bad_crs_are_ogc_exceptions(services: Services) -> None:
    window = {"bbox": (0, 0, 1, 1), "size": (10, 10), "format": "image/png"}
    with pytest.raises(ServiceException, match="Invalid layer"):
        services.wms().getmap(layers=["inconnue"], srs="EPSG:2154", **window)
    with pytest.raises(ServiceException, match="Invalid CRS"):
        services.wms().getmap(layers=["ecully-bancs-publics"], srs="EPSG:27572", **window)
    wfs = f"{services.base}/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature"
    unknown = requests.get(f"{wfs}&TYPENAMES=ms:inconnue", timeout=30)
    assert unknown.status_code == 400 and "ows:ExceptionReport" in unknown.text
    assert 'locator="typename"' in unknown.text.lower()
    bad_crs = requests.get(
        f"{wfs}&TYPENAMES=ms:ecully-bancs-publics&SRSNAME=EPSG:27572", timeout=30
    )
    assert bad_crs.status_code == 400 and "ows:ExceptionReport" in bad_crs.text


def test_callers_cannot_choose_another_map_file(services: Services) -> None:
    response = requests.get(
        f"{services.base}/wms?map=/etc/passwd&SERVICE=WMS&REQUEST=GetCapabilities", timeout=30
    )
    assert response.status_code == 200 and "ecully-bancs-publics" in response.text
    assert "root:" not in response.text


def test_bare_service_urls_describe_the_service_in_french(services: Services) -> None:
    page = requests.get(f"{services.base}/wfs", timeout=30)
    assert page.status_code == 200 and 'lang="fr"' in page.text
    assert "REQUEST=GetCapabilities" in page.text and "EPSG:3946" in page.text


def test_before_any_layer_the_service_answers_503_in_french(tmp_path: Path) -> None:
    service = MapServerService(tmp_path / "services")
    app = FastAPI()
    service.mount(app)
    with serving(app) as base:
        before = requests.get(f"{base}/wms?SERVICE=WMS&REQUEST=GetCapabilities", timeout=30)
        service.update([], [])
        empty = requests.get(f"{base}/wfs?SERVICE=WFS&REQUEST=GetCapabilities", timeout=30)
    for response in (before, empty):
        assert response.status_code == 503
        assert "aucune couche publiée" in response.text and 'xml:lang="fr"' in response.text
    assert (tmp_path / "services" / "mapserver" / "catalogue.map").is_file()


# --- resident processes and the catalog's changes --------------------------------------------


def test_a_dataset_published_after_start_is_served_without_failing_requests_in_flight(
    services: Services,
) -> None:
    """Publishing renews the resident processes (the map file changed): requests arriving
    meanwhile are all answered, and the new layer is drawn and listed at once."""
    deployed, pool = services.deployment, resident_pool(services)
    assert requests.get(services.base + GETMAP, timeout=30).status_code == 200
    before = {p.pid for p in pool.processes()}
    gardens = gpd.GeoDataFrame(
        {"numero": [1, 2]},
        geometry=[
            shapely.box(4.770, 45.775, 4.772, 45.777),
            shapely.box(4.780, 45.770, 4.783, 45.772),
        ],
        crs="EPSG:4326",
    )
    data = write_submission(
        deployed.root / "submissions" / "jardins", "jardins.geojson", gardens.to_json(drop_id=True)
    )
    retitle(data.parent / "metadata.yaml", "Jardins partagés")
    folder = services.app.state.refresher.services[0].folder / "couches"
    written = {path.stem: path.stat().st_mtime_ns for path in folder.glob("*.map")}
    deployed.publish(data)
    statuses: list[int] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            statuses.append(requests.get(services.base + GETMAP, timeout=30).status_code)

    clients = [threading.Thread(target=keep_asking) for _ in range(3)]
    for client in clients:
        client.start()
    try:
        services.refresh()
        time.sleep(0.3)
    finally:
        stop.set()
        for client in clients:
            client.join()
    assert statuses and set(statuses) == {200}
    assert "ecully-jardins" in capabilities(services, "WMS")
    collection = geojson_features(services, "ecully-jardins", srs="urn:ogc:def:crs:EPSG::4326")
    assert sorted(f["properties"]["numero"] for f in collection["features"]) == [1, 2]
    box, size = (4.765, 45.765, 4.790, 45.780), (250, 150)
    image = get_map(services, "ecully-jardins", "CRS:84", box, size)
    assert styled_near(image, pixel(box, size, 4.780, 45.771))  # the outline, west side
    assert before.isdisjoint(p.pid for p in pool.processes())  # renewed, not restarted cold
    # only the new layer's map file was written
    after = {path.stem: path.stat().st_mtime_ns for path in folder.glob("*.map")}
    assert set(after) == {*written, "ecully-jardins"}
    assert all(after[name] == moment for name, moment in written.items())
    deployed.store.set_status("ecully-jardins", "depublie")  # out again: the next test counts
    services.refresh()
    assert "ecully-jardins" not in capabilities(services, "WMS")


# --- a dataset's life: new release, new structure, withdrawal --------------------------------


def publish_new_structure(deployed: Deployment, data: Path) -> None:
    """What publication does once a change of structure has been announced (there is no
    command for the notice yet): the data become structure version N + 1, and version N
    stays diffused in parallel."""
    submission = Submission.new("ecully", data, data.parent / "metadata.yaml", "test")
    metadata = stage_metadata(submission, deployed.settings)
    licence = stage_licence(metadata, deployed.settings)
    source = stage_read(submission, metadata)
    structure = structure_of(source, infer_schema(source))
    checked = CheckedData(
        typed=validate(source, structure.schema).typed, geometry=source.geometry, crs=source.crs
    )
    checked, structure, anonymisation = stage_anonymise(
        submission, metadata, checked, structure, deployed.settings
    )
    slug = "ecully-arbres"
    version = max(v.version for v in deployed.store.structure_versions(slug)) + 1
    outcome = stage_publish(
        submission,
        metadata,
        licence,
        checked,
        structure,
        version,
        deployed.store,
        anonymisation,
        deployed.settings,
    )
    assert outcome.status == "publiee" and outcome.structure_version == 2


def wfs_names(services: Services) -> set[str]:
    return set(services.wfs().contents)


def test_releases_structures_and_withdrawals_reach_every_service(services: Services) -> None:
    deployed = services.deployment
    # a new release is served without a restart, by the background refresh alone
    deployed.publish(trees_submission(deployed.root, TREES))
    deadline = time.monotonic() + 20
    while len(geojson_features(services, "ecully-arbres")["features"]) != len(TREES):
        assert time.monotonic() < deadline, "la nouvelle version n'est pas servie"
        time.sleep(0.2)
    frame, _ = published(services.store, "ecully-arbres")
    box, size = map_window(frame, 3857)
    image = get_map(services, "ecully-arbres", "EPSG:3857", box, size)
    newest = frame.to_crs(3857).geometry.iloc[-1]
    assert styled_near(image, pixel(box, size, newest.x, newest.y))

    # a change of structure: the older version stays served under its own name
    publish_new_structure(deployed, trees_submission(deployed.root, TREES, species="essence"))
    services.refresh()
    assert {"ms:ecully-arbres", "ms:ecully-arbres-v1"} <= wfs_names(services)
    wms_titles = {name: layer.title for name, layer in services.wms().contents.items()}
    assert wms_titles["ecully-arbres-v1"] == f"{TREES_TITLE} (structure v1)"
    for layer, version, column in (
        ("ecully-arbres", 2, "essence"),
        ("ecully-arbres-v1", 1, "espece"),
    ):
        rows, geometries, fields = expected(services.store, "ecully-arbres", version=version)
        features = geojson_features(services, layer)["features"]
        assert records([f["properties"] for f in features], fields) == rows
        assert column in features[0]["properties"] and len(features) == len(TREES)

    # withdrawn: gone from every service and capabilities document at once
    deployed.store.set_status("ecully-arbres", "depublie")
    services.refresh()
    assert wfs_names(services) == {f"ms:{name}" for name in SAMPLE_LAYERS}
    assert set(services.wms().contents) == set(SAMPLE_LAYERS)
    for document in (capabilities(services, "WMS"), capabilities(services, "WFS")):
        assert "ecully-arbres" not in document and "remarquables" not in document
    with pytest.raises(ServiceException, match="Invalid layer"):
        get_map(services, "ecully-arbres", "EPSG:3857", box, size)
