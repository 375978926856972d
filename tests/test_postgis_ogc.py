"""The OGC services on the PostGIS store, and PostGIS following the lifecycle (issue #8).

Two deployments publish the three geographic samples: one on the embedded SQLite store,
one on a throwaway PostGIS database. On PostGIS, MapServer reads each layer's structure
version table directly (`CONNECTIONTYPE POSTGIS`), and pygeoapi reads it through
`PostgisProvider`; what WFS, WMS and OGC API – Features return must equal what the SQLite
deployment (GeoPackages) returns. Then the lifecycle runs on
the PostGIS deployment with the clock moved forward: a retired structure version's table
goes, a depublished dataset's tables and view go while its files stay, and its layers
leave the services; a confirmation republishes it and reloads its data.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import requests
import shapely
import sqlalchemy as sa
from lxml import etree
from mail_relay import relay_up
from owslib.wfs import WebFeatureService
from owslib.wms import WebMapService
from PIL import Image
from pyproj import Transformer
from starlette.requests import Request

from catalog import rows
from catalog.ogc import providers
from catalog.ogc.api import OgcApi, _layer_resource
from catalog.ogc.layers import served_layers
from catalog.ogc.mapserver import MapServerService, render_mapfile
from catalog.store import CatalogStore, postgis
from catalog.web.views import published_schema
from core.settings import Settings, load_settings
from opendata.cli import main as cli
from pipelines import governance, notify
from pipelines.submission import Submission, open_settings_store, run_submission

from conftest import SAMPLES, running_catalog

if TYPE_CHECKING:
    from pytest import MonkeyPatch, TempPathFactory

pytest_plugins = ["backends"]  # the session's throwaway PostGIS database

SAMPLE_LAYERS = {
    "ecully-bancs-publics": "ecully/bancs-publics",
    "vaulx-en-velin-pistes-cyclables": "vaulx-en-velin/pistes-cyclables",
    "lyon-signalements-espace-public": "lyon/signalements-espace-public",
}
BANCS = "ecully-bancs-publics"
GEOJSON = "application/json; subtype=geojson"
PUBLISHED_AT = "2027-01-04T09:00:00Z"
EPSG_2154 = "http://www.opengis.net/def/crs/EPSG/0/2154"
# part of each layer's extent (lon, lat): lines cross its edges
BOXES = {
    "ecully-bancs-publics": (4.770, 45.772, 4.780, 45.780),
    "vaulx-en-velin-pistes-cyclables": (4.915, 45.772, 4.935, 45.782),
    "lyon-signalements-espace-public": (4.820, 45.750, 4.850, 45.770),
}
BOX = ",".join(map(str, BOXES["ecully-bancs-publics"]))
BOX_2154 = ",".join(
    str(round(v))
    for v in Transformer.from_crs(4326, 2154, always_xy=True).transform_bounds(
        *BOXES["ecully-bancs-publics"]
    )
)
# West Lyon to Vaulx-en-Velin, where all three samples lie, in EPSG:2154 (x, y)
MAP_BOX = Transformer.from_crs(4326, 2154, always_xy=True).transform_bounds(
    4.75, 45.75, 4.96, 45.80
)


PISTES, SIGNALEMENTS = "vaulx-en-velin-pistes-cyclables", "lyon-signalements-espace-public"
ALL = {"limit": "1000"}
# OGC API – Features requests asked of both deployments: name -> (path, query)
OGC: dict[str, tuple[str, dict[str, str]]] = {
    **{f"{layer} all": (f"{layer}/items", ALL) for layer in SAMPLE_LAYERS},
    **{f"{layer} 2154": (f"{layer}/items", ALL | {"crs": EPSG_2154}) for layer in SAMPLE_LAYERS},
    **{f"{layer} first page": (f"{layer}/items", {}) for layer in SAMPLE_LAYERS},
    **{
        f"{layer} bbox": (f"{layer}/items", ALL | {"bbox": ",".join(map(str, box))})
        for layer, box in BOXES.items()
    },
    "bancs bbox 2154": (
        f"{BANCS}/items",
        ALL | {"bbox": BOX_2154, "bbox-crs": EPSG_2154, "crs": EPSG_2154},
    ),
    "bancs materiau": (f"{BANCS}/items", ALL | {"materiau": "métal"}),
    "bancs materiau bbox": (f"{BANCS}/items", ALL | {"materiau": "bois", "bbox": BOX}),
    "bancs id_banc": (f"{BANCS}/items", {"id_banc": "12"}),
    "bancs id_banc word": (f"{BANCS}/items", {"id_banc": "douze"}),
    "bancs date_pose": (f"{BANCS}/items", ALL | {"date_pose": "2017-09-02"}),
    "bancs datetime": (f"{BANCS}/items", ALL | {"datetime": "2015-01-01/2018-12-31"}),
    "bancs datetime open": (f"{BANCS}/items", ALL | {"datetime": "2019-01-01/.."}),
    "bancs datetime day": (f"{BANCS}/items", ALL | {"datetime": "2017-09-02"}),
    "bancs sortby": (f"{BANCS}/items", ALL | {"sortby": "-materiau,date_pose"}),
    "bancs sortby page": (
        f"{BANCS}/items",
        {"sortby": "etat,-id_banc", "offset": "7", "limit": "9"},
    ),
    "bancs page": (f"{BANCS}/items", {"offset": "25", "limit": "10"}),
    "bancs beyond": (f"{BANCS}/items", {"offset": "500", "limit": "10"}),
    "bancs properties": (
        f"{BANCS}/items",
        {"properties": "materiau", "skipGeometry": "true", "limit": "20"},
    ),
    "bancs item": (f"{BANCS}/items/3", {}),
    "bancs item 2154": (f"{BANCS}/items/3", {"crs": EPSG_2154}),
    "bancs missing item": (f"{BANCS}/items/100000", {}),
    "bancs word item": (f"{BANCS}/items/abc", {}),
    "bancs unknown sort": (f"{BANCS}/items", {"sortby": "inconnue"}),
    "pistes sortby": (f"{PISTES}/items", ALL | {"sortby": "-longueur_m"}),
    "pistes type": (f"{PISTES}/items", ALL | {"type_amgt": "piste", "sortby": "nom_voie"}),
    "pistes annee": (f"{PISTES}/items", ALL | {"annee": "2016"}),
    "pistes longueur": (f"{PISTES}/items", ALL | {"longueur_m": "531.7"}),
    "pistes longueur nan": (f"{PISTES}/items", ALL | {"longueur_m": "nan"}),
    "pistes item": (f"{PISTES}/items/2", {"crs": EPSG_2154}),
    "signalements datetime": (
        f"{SIGNALEMENTS}/items",
        ALL | {"datetime": "2026-06-01T00:00:00Z/..", "sortby": "-date_signalement"},
    ),
    "signalements filter page": (
        f"{SIGNALEMENTS}/items",
        {"categorie": "voirie", "sortby": "arrondissement,-id_signalement", "offset": "2"},
    ),
}


# `/rows` requests asked of both deployments: name -> (slug, query); `suivant` is followed
ROWS: dict[str, tuple[str, dict[str, str]]] = {
    "bancs": (BANCS, {}),
    "bancs date": (BANCS, {"_tri": "date_pose", "_taille": "7"}),
    "bancs materiau desc": (BANCS, {"_tri": "-materiau", "_taille": "6"}),
    "bancs etat": (BANCS, {"_tri": "etat", "_taille": "9", "_total": "1"}),
    "bancs filter": (BANCS, {"materiau": "métal", "_total": "1", "_taille": "4"}),
    "bancs range": (BANCS, {"date_pose__gte": "2017-01-01", "_tri": "-date_pose", "_taille": "5"}),
    "bancs in": (BANCS, {"id_banc__in": "1,5,9,40", "_colonnes": "id_banc,etat"}),
    "bancs ne": (BANCS, {"etat__ne": "moyen", "id_banc__lt": "50", "_taille": "8"}),
    "bancs contains": (BANCS, {"materiau__contains": "METAL", "_taille": "10"}),
    "bancs offset": (BANCS, {"_decalage": "10", "_taille": "5", "_tri": "-id_banc"}),
    "bancs geojson": (BANCS, {"_format": "geojson", "_taille": "15", "_tri": "materiau"}),
    "bancs csv": (BANCS, {"_format": "csv", "_tri": "-date_pose"}),
    "bancs bad value": (BANCS, {"id_banc": "douze"}),
    "bancs bad cursor": (BANCS, {"_apres": "pas-un-curseur"}),
    "bancs bad column": (BANCS, {"inconnue": "1"}),
    "pistes length": (PISTES, {"_tri": "-longueur_m", "_taille": "4"}),
    "pistes short": (PISTES, {"longueur_m__lt": "300", "_format": "geojson"}),
    "pistes year": (PISTES, {"annee__gte": "2018", "_tri": "annee", "_taille": "3"}),
    "pistes voie": (PISTES, {"_tri": "nom_voie", "_taille": "6"}),
    "pistes nan": (PISTES, {"longueur_m__lt": "nan"}),
    "pistes year text": (PISTES, {"annee__in": "2016,2019", "_tri": "-annee"}),
    "signalements": (SIGNALEMENTS, {"_tri": "arrondissement", "_taille": "40"}),
    "signalements date": (SIGNALEMENTS, {"_tri": "-date_signalement", "_taille": "50"}),
    "signalements text": (SIGNALEMENTS, {"_tri": "declarant", "_taille": "60"}),
    "signalements filter": (SIGNALEMENTS, {"categorie": "voirie", "_total": "1", "_taille": "30"}),
}


@dataclass
class Deployed:
    """One deployment: its settings (data folder, store URL) and its store."""

    name: str
    settings: Settings
    store: CatalogStore
    env: dict[str, str]
    seen: dict[str, Any] = field(default_factory=dict)

    @property
    def engine(self) -> sa.Engine:
        assert self.store.spatial is not None, "a PostGIS deployment"
        return self.store.spatial.engine


def deploy(patch: MonkeyPatch, root: Path, name: str, store_url: str | None) -> Deployed:
    env = {"OPENDATA_DATA_DIR": str(root / "data"), "OPENDATA_INBOX_DIR": str(root / "inbox")}
    use(patch, env, store_url)
    settings = load_settings()
    store = open_settings_store(settings)
    if store_url:
        env["OPENDATA_STORE_URL"] = store_url
    deployed = Deployed(name, settings, store, env)
    for producer_and_dataset in SAMPLE_LAYERS.values():
        publish(deployed, SAMPLES / "inbox" / producer_and_dataset)
    return deployed


def use(patch: MonkeyPatch, env: dict[str, str], store_url: str | None = None) -> None:
    for key, value in env.items():
        patch.setenv(key, value)
    if store_url or "OPENDATA_STORE_URL" in env:
        patch.setenv("OPENDATA_STORE_URL", store_url or env["OPENDATA_STORE_URL"])
    else:
        patch.delenv("OPENDATA_STORE_URL", raising=False)


def publish(deployed: Deployed, folder: Path, expect: str = "publiee") -> None:
    data = next(p for p in folder.iterdir() if p.name not in {"metadata.yaml", "schema.json"})
    producer = folder.parent.name
    submission = Submission.new(producer, data, folder / "metadata.yaml", "test")
    outcome = run_submission(submission, deployed.settings, deployed.store)
    assert outcome.status == expect, outcome.summary()


def observe(patch: MonkeyPatch, deployed: Deployed) -> dict[str, Any]:
    """What reusers read from this deployment's running catalog: WFS (GeoJSON, GML
    counts), ogrinfo's listing, a WMS map of every layer, and the map file."""
    use(patch, deployed.env)
    seen: dict[str, Any] = {}
    with running_catalog(deployed.store) as base:
        wfs = WebFeatureService(f"{base}/wfs", version="2.0.0", timeout=60)
        seen["wfs_layers"] = sorted(wfs.contents)
        for layer in SAMPLE_LAYERS:
            response = wfs.getfeature(
                typename=[f"ms:{layer}"],
                outputFormat=GEOJSON,
                srsname="urn:ogc:def:crs:EPSG::2154",
            )
            seen[layer] = json.loads(response.read())
            gml = wfs.getfeature(typename=[f"ms:{layer}"], maxfeatures=10, startindex=5).read()
            seen[f"{layer}.gml"] = gml
            listing = ogr("ogrinfo", "-ro", "-so", "-al", f"WFS:{base}/wfs", f"ms:{layer}")
            seen[f"{layer}.ogr"] = next(
                line for line in listing.splitlines() if line.startswith("Feature Count")
            )
        wms = WebMapService(f"{base}/wms", version="1.3.0", timeout=60)
        seen["wms_layers"] = sorted(wms.contents)
        picture = wms.getmap(
            layers=list(SAMPLE_LAYERS),
            styles=[""] * len(SAMPLE_LAYERS),
            srs="EPSG:2154",
            bbox=MAP_BOX,
            size=(800, 300),
            format="image/png",
        )
        seen["map"] = np.asarray(Image.open(io.BytesIO(picture.read())).convert("RGBA"))
        features = requests.get(
            f"{base}/ogc/collections/{BANCS}/items", params={"f": "json"}, timeout=60
        ).json()
        seen["ogc_api_matched"] = features["numberMatched"]
        seen["ogc"] = {key: ogc_answer(base, path, params) for key, (path, params) in OGC.items()}
        seen["rows"] = {key: rows_pages(base, slug, params) for key, (slug, params) in ROWS.items()}
    seen["mapfile"] = (deployed.settings.services_dir / "mapserver" / "catalogue.map").read_text()
    return seen


def ogc_answer(base: str, path: str, params: dict[str, str]) -> dict[str, Any]:
    """An OGC API answer without its links (absolute, so they name each server's port)."""
    answer = requests.get(
        f"{base}/ogc/collections/{path}", params={"f": "json", **params}, timeout=60
    )
    body = answer.json()
    body.pop("links", None)
    body.pop("timeStamp", None)
    for feature in body.get("features", []):
        feature.pop("links", None)
    return {"status": answer.status_code, "crs": answer.headers.get("Content-Crs"), "body": body}


def rows_pages(base: str, slug: str, params: dict[str, str]) -> list[dict[str, Any]]:
    """Every page of a `/rows` answer, following its `suivant` links (at most 60)."""
    pages: list[dict[str, Any]] = []
    url: str | None = f"{base}/api/datasets/{slug}/rows"
    arguments: dict[str, str] | None = params
    while url and len(pages) < 60:
        answer = requests.get(url, params=arguments, timeout=60)
        body: Any = answer.text
        if "json" in answer.headers.get("content-type", ""):
            body = answer.json()
        pages.append({"status": answer.status_code, "body": body})
        following = answer.links.get("next", {}).get("url")
        url, arguments = following, None
        if isinstance(body, dict):
            for key in ("suivant", "links"):
                body.pop(key, None)  # absolute, so they name each server's port
    return pages


def ogr(*arguments: str) -> str:
    done = subprocess.run(arguments, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def data_relations(deployed: Deployed) -> list[str]:
    with deployed.engine.connect() as conn:
        return sorted(
            conn.execute(
                sa.text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'donnees'"
                )
            ).scalars()
        )


def released_files(store: CatalogStore, slug: str) -> list[Path]:
    return [
        store.release_path(release, distribution.format)
        for release in store.releases(slug)
        for distribution in release.distributions
    ]


# every test of the module waits for the two deployments below (a minute or so): all slow
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployments(
    tmp_path_factory: TempPathFactory, postgis_database: str
) -> Iterator[tuple[Deployed, Deployed]]:
    patch = pytest.MonkeyPatch()
    patch.setenv("OPENDATA_NOW", PUBLISHED_AT)
    # the same pseudonyms in both deployments (Lyon's sample holds personal data)
    patch.setenv("OPENDATA_PSEUDONYM_KEY_LYON", "cle-de-test-identique-sur-les-deux-magasins")
    created: list[Deployed] = []
    try:
        created.append(deploy(patch, tmp_path_factory.mktemp("sqlite"), "sqlite", None))
        created.append(
            deploy(patch, tmp_path_factory.mktemp("postgis"), "postgis", postgis_database)
        )
        sqlite, pg = created
        sqlite.seen = observe(patch, sqlite)
        pg.seen = observe(patch, pg)
        use(patch, pg.env)
        yield sqlite, pg
    finally:
        patch.undo()
        for deployed in created:
            deployed.store.close()
        from backends import empty_postgis  # a pytest plugin here: imported once registered

        empty_postgis(postgis_database)


# --- MapServer reads PostGIS ---------------------------------------------------------------


def test_layers_name_their_postgis_table_and_the_map_file_reads_it(
    deployments: tuple[Deployed, Deployed],
) -> None:
    sqlite, pg = deployments
    layers = {layer.name: layer for layer in served_layers(pg.store)}
    assert sorted(layers) == sorted(SAMPLE_LAYERS)
    for name, layer in layers.items():
        assert layer.postgis_table == f"donnees.{name}__v1"
        assert layer.postgis_geometry == "geometry" and layer.postgis_srid
        assert "dbname=" in (layer.postgis_dsn or "") and "password" not in layer.postgis_dsn
    assert layers[BANCS].postgis_srid == 3946
    assert all(layer.postgis_table is None for layer in served_layers(sqlite.store))
    mapfile = pg.seen["mapfile"]
    assert mapfile.count("CONNECTIONTYPE POSTGIS") == 3 and "CONNECTIONTYPE OGR" not in mapfile
    assert "password" not in mapfile.lower()
    assert (
        'geometry from (SELECT ogc_fid AS ms_fid, \\"geometry\\"' in mapfile
        and f'FROM \\"donnees\\".\\"{BANCS}__v1\\" ORDER BY ogc_fid) as t '
        "using unique ms_fid using srid=3946"
        in mapfile
    )
    assert 'PROJECTION "init=epsg:3946" END' in mapfile
    sqlite_map = sqlite.seen["mapfile"]
    assert sqlite_map.count("CONNECTIONTYPE OGR") == 3 and "POSTGIS" not in sqlite_map


def test_the_password_reaches_mapserv_by_its_environment_only(
    deployments: tuple[Deployed, Deployed], tmp_path: Path
) -> None:
    _, pg = deployments
    layers = [replace(layer, postgis_password="s3cret") for layer in served_layers(pg.store)]
    assert "s3cret" not in render_mapfile(layers) and "s3cret" not in repr(layers)
    service = MapServerService(tmp_path)
    service.update(layers, [])
    assert "s3cret" not in service.map_path.read_text()
    request = Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/wms",
            "query_string": b"SERVICE=WMS",
            "headers": [(b"host", b"127.0.0.1:8000")],
            "scheme": "http",
            "server": ("127.0.0.1", 8000),
        }
    )
    assert service.cgi_environ(request, "WMS", b"")["PGPASSWORD"] == "s3cret"


@pytest.mark.parametrize("layer", sorted(SAMPLE_LAYERS))
def test_wfs_on_postgis_returns_what_the_sqlite_deployment_returns(
    deployments: tuple[Deployed, Deployed], layer: str
) -> None:
    sqlite, pg = deployments
    mine, theirs = pg.seen[layer], sqlite.seen[layer]
    assert mine["numberMatched"] == theirs["numberMatched"] == len(theirs["features"]) > 0
    rows = pg.store.current_release(layer).row_count
    assert mine["numberMatched"] == rows
    assert [f["properties"] for f in mine["features"]] == [
        f["properties"] for f in theirs["features"]
    ]
    for got, want in zip(mine["features"], theirs["features"], strict=True):
        a = shapely.get_coordinates(shapely.geometry.shape(got["geometry"]))
        b = shapely.get_coordinates(shapely.geometry.shape(want["geometry"]))
        assert a.shape == b.shape and float(np.abs(a - b).max()) <= 0.01  # 1 cm
    # paged GML (startIndex=5, count=10): the same feature ids and values
    assert pg.seen[f"{layer}.gml"].count(b"<wfs:member>") == 10
    assert gml_members(pg.seen[f"{layer}.gml"]) == gml_members(sqlite.seen[f"{layer}.gml"])
    assert pg.seen[f"{layer}.ogr"] == sqlite.seen[f"{layer}.ogr"] == f"Feature Count: {rows}"


def drawn_pixels(picture: np.ndarray) -> np.ndarray:
    """Neither transparent nor white: where a feature was drawn."""
    return (picture[..., 3] > 0) & (picture[..., :3] < 250).any(axis=-1)


def gml_members(content: bytes) -> list[tuple[str | None, dict[str, str | None]]]:
    """Each GML member's gml:id and property values (geometries are compared above)."""
    root = etree.fromstring(content)
    found = []
    for member in root.iter("{http://www.opengis.net/wfs/2.0}member"):
        feature = member[0]
        values = {
            etree.QName(child).localname: child.text
            for child in feature
            if etree.QName(child).localname not in {"geometrie", "boundedBy"}
        }
        found.append((feature.get("{http://www.opengis.net/gml/3.2}id"), values))
    return found


def test_capabilities_and_getmap_on_postgis(deployments: tuple[Deployed, Deployed]) -> None:
    sqlite, pg = deployments
    assert pg.seen["wms_layers"] == sqlite.seen["wms_layers"] == sorted(SAMPLE_LAYERS)
    assert pg.seen["wfs_layers"] == sqlite.seen["wfs_layers"]
    picture, reference = pg.seen["map"], sqlite.seen["map"]
    drawn = drawn_pixels(picture)
    assert drawn.sum() > 500  # points, lines and polygons were drawn
    assert drawn_pixels(reference).sum() > 500
    # the same map as from the GeoPackages, to anti-aliasing differences
    differing = np.abs(picture.astype(int) - reference.astype(int)).max(axis=-1) > 64
    assert differing.sum() <= 0.01 * drawn.sum()
    # the OGC API reads PostGIS on one, the GeoPackage on the other: the same answer
    assert pg.seen["ogc_api_matched"] == sqlite.seen["ogc_api_matched"] == 60


# --- OGC API – Features reads PostGIS ------------------------------------------------------


def test_the_ogc_api_providers_follow_the_backend(deployments: tuple[Deployed, Deployed]) -> None:
    sqlite, pg = deployments
    for layer in served_layers(pg.store):
        (provider,) = _layer_resource(layer, "http://x")["providers"]
        assert provider["name"] == "catalog.ogc.providers.PostgisProvider"
        assert (provider["table"], provider["srid"]) == (layer.postgis_table, layer.postgis_srid)
        assert "password" not in json.dumps(provider).lower()
    for layer in served_layers(sqlite.store):
        (provider,) = _layer_resource(layer, "http://x")["providers"]
        assert provider["name"] == "catalog.ogc.providers.GeoPackageProvider"


def test_the_postgis_provider_borrows_pooled_connections(
    deployments: tuple[Deployed, Deployed],
) -> None:
    _, pg = deployments
    layer = next(iter(served_layers(pg.store)))
    (definition,) = _layer_resource(layer, "http://x")["providers"]
    provider = providers.PostgisProvider(definition)
    database = sa.engine.make_url(pg.settings.store_url).database

    def backends() -> set[int]:
        with pg.engine.connect() as conn:
            found = conn.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = :name "
                    "AND datname = :database"
                ),
                {"name": providers.POOL_NAME, "database": database},
            )
            return {pid for (pid,) in found}

    assert provider.query(limit=3)["features"]
    before = backends()
    for offset in range(30):
        assert provider.query(offset=offset, limit=2)["numberReturned"] >= 1
    after = backends()
    assert 1 <= len(after) <= 10 and before <= after  # the same backends, not 30 new ones


def test_the_ogc_api_keeps_the_password_out_of_pygeoapi(
    deployments: tuple[Deployed, Deployed], tmp_path: Path
) -> None:
    _, pg = deployments
    layers = [replace(layer, postgis_password="s3cret") for layer in served_layers(pg.store)]
    dsn = layers[0].postgis_dsn
    assert dsn
    before = providers._PASSWORDS.get(dsn)
    service = OgcApi(tmp_path)
    service.update(layers, [])
    config = service.api_for("http://127.0.0.1:8000").config
    assert "s3cret" not in json.dumps(config, default=str)
    assert providers._PASSWORDS[dsn] == "s3cret"
    providers._PASSWORDS.pop(dsn)
    if before is not None:
        providers._PASSWORDS[dsn] = before


@pytest.mark.parametrize("request_name", sorted(OGC))
def test_ogc_api_items_on_postgis_equal_the_geopackage_answers(
    deployments: tuple[Deployed, Deployed], request_name: str
) -> None:
    sqlite, pg = deployments
    mine, theirs = pg.seen["ogc"][request_name], sqlite.seen["ogc"][request_name]
    assert mine["status"] == theirs["status"], (mine, theirs)
    assert mine["crs"] == theirs["crs"]
    if theirs["status"] != 200:
        return
    tolerance = 0.01 if "2154" in request_name or "pistes item" in request_name else 1e-7
    a, b = mine["body"], theirs["body"]
    if b.get("type") == "Feature":
        assert_same_features([a], [b], tolerance)
        return
    assert a["numberMatched"] == b["numberMatched"]
    assert a["numberReturned"] == b["numberReturned"]
    assert_same_features(a["features"], b["features"], tolerance)


def test_the_compared_ogc_requests_select_something(deployments: tuple[Deployed, Deployed]) -> None:
    """The comparisons above are not between empty answers."""
    _, pg = deployments
    answers = {name: seen["body"] for name, seen in pg.seen["ogc"].items()}
    total = answers[f"{BANCS} all"]["numberMatched"]
    for name in ("bancs materiau", "bancs datetime", "bancs datetime day", "bancs date_pose"):
        assert 0 < answers[name]["numberMatched"] < total, name
    for layer in SAMPLE_LAYERS:
        assert (
            0 < answers[f"{layer} bbox"]["numberMatched"] < answers[f"{layer} all"]["numberMatched"]
        ), layer
    assert answers["bancs bbox 2154"]["numberMatched"] > 0
    assert answers["bancs id_banc"]["numberMatched"] == 1
    assert answers["bancs id_banc word"]["numberMatched"] == 0
    assert answers["bancs page"]["numberReturned"] == 10
    assert [f["id"] for f in answers["bancs page"]["features"]] == list(range(26, 36))
    assert answers["bancs item"]["id"] == 3
    assert answers["signalements datetime"]["numberMatched"] > 0
    assert answers["pistes type"]["numberMatched"] > 0
    assert answers["pistes longueur"]["numberMatched"] >= 1
    assert answers["pistes longueur nan"]["numberMatched"] == 0
    assert pg.seen["ogc"]["bancs missing item"]["status"] == 404
    assert pg.seen["ogc"]["bancs unknown sort"]["status"] == 400


def as_feature(geojson: str | None) -> dict[str, Any]:
    geometry = json.loads(geojson) if geojson else None
    return {"id": None, "properties": {}, "geometry": geometry}


def assert_same_features(
    mine: list[dict[str, Any]], theirs: list[dict[str, Any]], tolerance: float
) -> None:
    assert [f["id"] for f in mine] == [f["id"] for f in theirs]
    assert [f["properties"] for f in mine] == [f["properties"] for f in theirs]
    for got, want in zip(mine, theirs, strict=True):
        if want["geometry"] is None:
            assert got["geometry"] is None
            continue
        a = shapely.get_coordinates(shapely.geometry.shape(got["geometry"]))
        b = shapely.get_coordinates(shapely.geometry.shape(want["geometry"]))
        assert got["geometry"]["type"] == want["geometry"]["type"]
        assert a.shape == b.shape and float(np.abs(a - b).max()) <= tolerance


# --- the rows API reads PostGIS ------------------------------------------------------------


ONE_PAGE = {"bancs filter", "bancs in", "bancs offset"}
# queries the PostGIS table answers itself (the copy answers `contains` only)
POSTGIS_ROWS = [
    (BANCS, rows.RowQuery(filters=[("materiau", "métal")], sort="etat", total=True)),
    (BANCS, rows.RowQuery(filters=[("id_banc__in", "1,5,9")], columns=["etat"])),
    (BANCS, rows.RowQuery(filters=[("date_pose__lt", "2017-09-02")], sort="-materiau")),
    (BANCS, rows.RowQuery(sort="-id_banc", offset=12, size=5)),
    (PISTES, rows.RowQuery(filters=[("longueur_m__gte", "300")], sort="-longueur_m")),
    (PISTES, rows.RowQuery(filters=[("annee__ne", "2016")], sort="nom_voie")),
    (SIGNALEMENTS, rows.RowQuery(filters=[("arrondissement__lte", "5")], sort="declarant")),
    (SIGNALEMENTS, rows.RowQuery(sort="-date_signalement", size=1000, total=True)),
    # a generalised birth year: a `year` the file holds as text, compared as text
    (
        SIGNALEMENTS,
        rows.RowQuery(filters=[("date_naissance__gte", "1970")], sort="-date_naissance"),
    ),
]


@pytest.mark.parametrize("request_name", sorted(ROWS))
def test_rows_on_postgis_equal_the_sqlite_copy_answers(
    deployments: tuple[Deployed, Deployed], request_name: str
) -> None:
    sqlite, pg = deployments
    mine, theirs = pg.seen["rows"][request_name], sqlite.seen["rows"][request_name]
    assert [p["status"] for p in mine] == [p["status"] for p in theirs]
    paged = "_taille" in ROWS[request_name][1] and request_name not in ONE_PAGE
    assert len(mine) >= (2 if paged else 1)  # the cursors were followed
    for got, want in zip(mine, theirs, strict=True):
        a, b = got["body"], want["body"]
        if isinstance(b, dict) and b.get("type") == "FeatureCollection":
            assert_same_features(
                [{"id": None, **f} for f in a["features"]],
                [{"id": None, **f} for f in b["features"]],
                1e-7,
            )
        else:
            assert a == b


def test_rows_come_from_postgis_when_its_table_holds_the_release(
    deployments: tuple[Deployed, Deployed],
) -> None:
    _, pg = deployments
    release = pg.store.current_release(BANCS)
    schema = published_schema(pg.store, release)
    database = rows.rows_database(pg.store.release_path(release, "parquet"), schema)
    cursor: str | None = None
    seen: list[Any] = []
    while True:  # every page, sorted on dates (the table's timestamps, as the copy's text)
        query = rows.RowQuery(sort="-date_pose", size=7, cursor=cursor)
        page = rows.run_postgis(pg.engine, release, schema, query)
        assert page is not None
        reference = rows.run(database, schema, query)
        assert (page.rows, page.next_cursor) == (reference.rows, reference.next_cursor)
        seen += page.rows
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == release.row_count
    for slug, query in POSTGIS_ROWS:
        current = pg.store.current_release(slug)
        own = published_schema(pg.store, current)
        page = rows.run_postgis(pg.engine, current, own, query)
        reference = rows.run(
            rows.rows_database(pg.store.release_path(current, "parquet"), own), own, query
        )
        assert page is not None and page.rows, (slug, query)
        assert (page.columns, page.rows, page.next_cursor, page.total) == (
            reference.columns,
            reference.rows,
            reference.next_cursor,
            reference.total,
        ), (slug, query)
        assert_same_features(
            [as_feature(g) for g in page.geometries or []],
            [as_feature(g) for g in reference.geometries or []],
            1e-7,
        )
    # the copy answers what PostGIS cannot answer as it does
    text_search = rows.RowQuery(filters=[("materiau__contains", "metal")])
    assert rows.run_postgis(pg.engine, release, schema, text_search) is None
    other = replace(release, id="une-autre-version")
    assert rows.run_postgis(pg.engine, other, schema, rows.RowQuery()) is None
    with pytest.raises(rows.QueryError):
        rows.run_postgis(pg.engine, release, schema, rows.RowQuery(filters=[("id_banc", "x")]))


def test_sorted_pages_read_an_index_created_on_the_first_sort(
    deployments: tuple[Deployed, Deployed],
) -> None:
    _, pg = deployments
    release = pg.store.current_release(BANCS)
    schema = published_schema(pg.store, release)
    table = postgis.table_name(BANCS, release.structure_version)
    database = rows.rows_database(pg.store.release_path(release, "parquet"), schema)
    # Sorting in memory forbidden: the page must come from an index that gives its order.
    unsorted = sa.create_engine(
        pg.settings.store_url,
        connect_args={"options": "-c enable_sort=off -c enable_seqscan=off"},
        poolclass=sa.pool.NullPool,
    )
    for sort in ("materiau", "-materiau", "id_banc"):
        cursor, pages = None, 0
        while True:
            query = rows.RowQuery(sort=sort, size=8, cursor=cursor)
            page = rows.run_postgis(unsorted, release, schema, query)
            reference = rows.run(database, schema, query)
            assert page is not None
            assert (page.rows, page.next_cursor) == (reference.rows, reference.next_cursor), sort
            cursor, pages = page.next_cursor, pages + 1
            if cursor is None:
                break
        assert pages > 2
    with pg.engine.connect() as conn:
        used = dict(
            conn.execute(
                sa.text(
                    "SELECT indexrelname, idx_scan FROM pg_stat_user_indexes "
                    "WHERE schemaname = :schema AND relname = :table AND indexrelname LIKE '%tri%'"
                ),
                {"schema": postgis.DATA_SCHEMA, "table": table},
            ).all()
        )
    for column in ("materiau", "id_banc"):  # one index per sorted column, read by the pages
        index = f"{table}__tri_{hashlib.sha1(column.encode()).hexdigest()[:10]}"
        assert used.get(index, 0) > 0, (column, used)


# --- PostGIS follows the lifecycle ---------------------------------------------------------


def renamed_bancs(root: Path) -> Path:
    """The benches in the announced structure (`etat` renamed `etat_constate`)."""
    folder = root / "ecully" / "bancs-publics"
    folder.mkdir(parents=True)
    sample = SAMPLES / "inbox" / "ecully" / "bancs-publics"
    collection = json.loads((sample / "bancs-publics.geojson").read_text(encoding="utf-8"))
    for feature in collection["features"]:
        feature["properties"]["etat_constate"] = feature["properties"].pop("etat")
    text = json.dumps(collection, ensure_ascii=False)
    (folder / "bancs-publics.geojson").write_text(text, encoding="utf-8")
    shutil.copy(sample / "metadata.yaml", folder)
    return folder


def test_retired_and_depublished_data_leave_postgis_and_the_services(
    deployments: tuple[Deployed, Deployed],
    tmp_path: Path,
    monkeypatch: MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, pg = deployments
    at = lambda moment: monkeypatch.setenv("OPENDATA_NOW", moment)  # noqa: E731
    # A breaking change on the benches: notice, v2 on its date, v1 in parallel.
    at("2027-01-04T10:00:00Z")
    schema = pg.store.structure_versions(BANCS)[0].structure["schema"]
    renamed = [
        {**f, "name": "etat_constate"} if f["name"] == "etat" else f for f in schema["fields"]
    ]
    (tmp_path / "schema.json").write_text(json.dumps({**schema, "fields": renamed}))
    (tmp_path / "correspondance.yaml").write_text("etat: {colonne: etat_constate}\n")
    announced = cli(
        [
            "annoncer-changement",
            "--producteur=ecully",
            "--jeu=bancs-publics",
            f"--schema={tmp_path / 'schema.json'}",
            "--description=La colonne « etat » devient « etat_constate ».",
            f"--correspondance={tmp_path / 'correspondance.yaml'}",
            "--date=2027-02-03",
        ]
    )
    assert announced == 0, capsys.readouterr().err
    at("2027-02-03T08:00:00Z")
    publish(pg, renamed_bancs(tmp_path / "v2"))
    v1, v2 = f"{BANCS}__v1", f"{BANCS}__v2"
    assert {v1, v2, BANCS} <= set(data_relations(pg))
    layers = {layer.name: layer for layer in served_layers(pg.store)}
    assert layers[BANCS].postgis_table == f"donnees.{v2}"
    assert layers[f"{BANCS}-v1"].postgis_table == f"donnees.{v1}"

    # Retirement of v1: its table goes, the alias view (v2) stays.
    at("2027-03-05T07:00:00Z")
    assert governance.run(pg.store).retired == [f"{BANCS} v1"]
    assert v1 not in data_relations(pg) and {v2, BANCS} <= set(data_relations(pg))
    assert f"{BANCS}-v1" not in {layer.name for layer in served_layers(pg.store)}

    # Three years without update: warned less than 90 days before, then depublished.
    at("2029-11-15T06:00:00Z")
    with relay_up(monkeypatch):  # the warnings leave: depublication may follow
        warned = governance.run(pg.store)
        notify.notify_pending(pg.store, pg.settings)
    assert warned.depublished == [] and len(warned.warned) == 3
    at("2030-02-10T06:00:00Z")
    depublished = governance.run(pg.store).depublished
    assert sorted(depublished) == sorted(SAMPLE_LAYERS)
    assert data_relations(pg) == []  # every table and view of schema donnees is gone
    for slug in SAMPLE_LAYERS:
        files = released_files(pg.store, slug)
        assert files and all(path.is_file() for path in files)  # the archive stays
        assert pg.store.releases(slug) and pg.store.events(slug)
    assert served_layers(pg.store) == []
    use(monkeypatch, pg.env)
    with running_catalog(pg.store) as base:
        answer = requests.get(
            f"{base}/wfs", params={"SERVICE": "WFS", "REQUEST": "GetCapabilities"}, timeout=60
        )
        assert answer.status_code == 503  # no layer left to serve
        assert requests.get(f"{base}/api/datasets/{BANCS}", timeout=60).status_code == 410
    assert "POSTGIS" not in (pg.settings.services_dir / "mapserver" / "catalogue.map").read_text()

    # A confirmation (same content) republishes the benches: their data are reloaded.
    at("2030-02-11T06:00:00Z")
    publish(pg, renamed_bancs(tmp_path / "again"), expect="confirmee")
    assert pg.store.get_dataset(BANCS).status == "publie"
    assert data_relations(pg) == sorted([BANCS, v2])
    with pg.engine.connect() as conn:
        count = conn.execute(sa.text(f'SELECT count(*) FROM donnees."{BANCS}"')).scalar()
    assert count == pg.store.current_release(BANCS).row_count
    (layer,) = served_layers(pg.store)
    assert (layer.name, layer.postgis_table) == (BANCS, f"donnees.{v2}")
    assert list(postgis.data_tables(pg.engine)) == [v2]
