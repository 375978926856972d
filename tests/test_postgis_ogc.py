"""The OGC services on the PostGIS store, and PostGIS following the lifecycle (issue #8).

Two deployments publish the three geographic samples: one on the embedded SQLite store,
one on a throwaway PostGIS database. On PostGIS, MapServer reads each layer's structure
version table directly (`CONNECTIONTYPE POSTGIS`); what WFS and WMS return must equal
what the SQLite deployment (GeoPackages through OGR) returns. Then the lifecycle runs on
the PostGIS deployment with the clock moved forward: a retired structure version's table
goes, a depublished dataset's tables and view go while its files stay, and its layers
leave the services; a confirmation republishes it and reloads its data.
"""

from __future__ import annotations

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
from owslib.wfs import WebFeatureService
from owslib.wms import WebMapService
from PIL import Image
from pyproj import Transformer
from starlette.requests import Request

from catalog import postgis
from catalog.ogc.layers import served_layers
from catalog.ogc.mapserver import MapServerService, render_mapfile
from catalog.store import CatalogStore
from pipelines import governance
from pipelines.cli import main as cli
from pipelines.config import Settings, load_settings
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
# West Lyon to Vaulx-en-Velin, where all three samples lie, in EPSG:2154 (x, y)
MAP_BOX = Transformer.from_crs(4326, 2154, always_xy=True).transform_bounds(
    4.75, 45.75, 4.96, 45.80
)


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
        return self.store.engine  # type: ignore[attr-defined]


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
    seen["mapfile"] = (deployed.settings.services_dir / "mapserver" / "catalogue.map").read_text()
    return seen


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
            deployed.engine.dispose()
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
    # the OGC API keeps the GeoPackage provider: same answer on both stores
    assert pg.seen["ogc_api_matched"] == sqlite.seen["ogc_api_matched"] == 60


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
    warned = governance.run(pg.store)
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
