"""The same data reads the same in every service (issue #18): what the OGC API advertises
of a collection's data, and an API definition an offline client can read whole.

One deployment publishes the fidelity submissions made from the samples (points, lines,
polygons, see `fidelity_samples`); pygeoapi is read over HTTP as reusers read it."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import jsonschema
import ogc_schemas
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import requests
from fastapi import FastAPI
from fidelity_samples import CRLF_TEXT, KINDS, sample_frame, submission
from lxml import etree

from catalog.ogc.layers import Layer, served_layers
from catalog.ogc.mapserver import MapServerService
from catalog.ogc.providers import GeoPackageProvider
from catalog.store import downloads
from core.settings import DEFAULT_PUBLIC_URL

from conftest import Deployment, deployment, running_catalog, serving

pytest_plugins = ["backends"]  # the session's throwaway PostGIS database
OPENAPI_SCHEMA = (
    Path(jsonschema.__file__).parents[1] / "pygeoapi" / "schemas" / "openapi" / "openapi-3.0.x.json"
)


@pytest.fixture(scope="module", params=["sqlite", "postgis"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Deployment]]:
    """The fidelity submissions published on each store backend, served by the catalog."""
    patch = pytest.MonkeyPatch()
    url = request.getfixturevalue("postgis_database") if request.param == "postgis" else None
    if url:
        patch.setenv("OPENDATA_STORE_URL", url)
    else:
        patch.delenv("OPENDATA_STORE_URL", raising=False)
    try:
        with deployment(tmp_path_factory, f"fidelite-{request.param}") as published:
            for name in KINDS:
                published.publish(submission(published.root, name))
            with running_catalog(published.store) as base:
                yield base, published
            published.store.close()
    finally:
        patch.undo()
        if url:
            from backends import empty_postgis  # a pytest plugin here: imported once registered

            empty_postgis(url)


def release_frame(published: Deployment, slug: str) -> gpd.GeoDataFrame:
    release = published.store.current_release(slug)
    return gpd.read_parquet(published.store.release_path(release, "parquet"))


def test_collections_advertise_the_temporal_extent_of_their_data(served) -> None:
    """A date field's first and last days, a datetime field's first and last instants (the
    time field `datetime` filters on), in every collection's description and in the list."""
    base, published = served
    listed = requests.get(f"{base}/ogc/collections", params={"f": "json"}, timeout=30).json()
    by_id = {c["id"]: c for c in listed["collections"]}
    points = release_frame(published, "ecully-fidelite-points")["date_pose"].dropna()
    lines = release_frame(published, "ecully-fidelite-lignes")["releve"].dropna()
    wanted = {
        "ecully-fidelite-points": [
            f"{min(points).isoformat()}T00:00:00Z",
            f"{max(points).isoformat()}T23:59:59Z",
        ],
        "ecully-fidelite-lignes": [
            f"{lines.min().isoformat()}Z",
            f"{lines.max().isoformat()}Z",
        ],
    }
    assert wanted["ecully-fidelite-lignes"] == ["2026-10-01T07:15:30Z", "2026-10-12T18:15:30Z"]
    for slug, interval in wanted.items():
        single = requests.get(f"{base}/ogc/collections/{slug}", params={"f": "json"}, timeout=30)
        for collection in (by_id[slug], single.json()):
            assert collection["extent"]["temporal"]["interval"] == [interval]
            assert collection["extent"]["spatial"]["bbox"]  # kept beside it
    assert "temporal" not in by_id["catalogue"]["extent"]
    # a `datetime` outside the extent is an empty page, not a refusal
    after = requests.get(
        f"{base}/ogc/collections/ecully-fidelite-lignes/items",
        params={"f": "json", "datetime": "2030-01-01T00:00:00Z/.."},
        timeout=30,
    )
    assert after.status_code == 200 and after.json()["numberMatched"] == 0


def remote_references(document: object) -> list[str]:
    found: list[str] = []
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "$ref" and isinstance(value, str) and not value.startswith("#"):
                found.append(value)
            else:
                found += remote_references(value)
    elif isinstance(document, list):
        for value in document:
            found += remote_references(value)
    return found


def resolve(document: dict, reference: str) -> object:
    target: object = document
    for part in reference.removeprefix("#/").split("/"):
        assert isinstance(target, dict) and part in target, reference
        target = target[part]
    return target


def local_references(document: object) -> list[str]:
    if isinstance(document, dict):
        own = [document["$ref"]] if isinstance(document.get("$ref"), str) else []
        return own + [r for value in document.values() for r in local_references(value)]
    if isinstance(document, list):
        return [r for value in document for r in local_references(value)]
    return []


def test_the_api_definition_is_self_contained_and_valid_openapi_3(served) -> None:
    """Every `$ref` of the served OpenAPI document points inside it (an offline client
    resolves it all), and the document is valid against OpenAPI 3.0's own JSON Schema."""
    base, _ = served
    response = requests.get(f"{base}/ogc/openapi", params={"f": "json"}, timeout=30)
    assert response.status_code == 200
    document = response.json()
    assert remote_references(document) == []
    for reference in set(local_references(document)):
        resolve(document, reference)
    items = document["paths"]["/collections/ecully-fidelite-points/items"]["get"]
    assert resolve(document, items["responses"]["200"]["$ref"])  # the features response
    meta_schema = json.loads(OPENAPI_SCHEMA.read_text("utf-8"))
    validator = jsonschema.Draft4Validator(meta_schema)
    assert [error.message for error in validator.iter_errors(document)] == []


# --- WFS (MapServer) ---------------------------------------------------------------------

WFS_NS = "http://www.opengis.net/wfs/2.0"
MS_NS = "http://mapserver.gis.umn.edu/mapserver"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
GML32 = "application/gml+xml; version=3.2"


def wfs_get_feature(base: str, layer: str, output_format: str) -> requests.Response:
    response = requests.get(
        f"{base}/wfs",
        params={
            "SERVICE": "WFS",
            "VERSION": "2.0.0",
            "REQUEST": "GetFeature",
            "TYPENAMES": f"ms:{layer}",
            "OUTPUTFORMAT": output_format,
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text[:300]
    return response


def wfs_gml(base: str, layer: str) -> bytes:
    return wfs_get_feature(base, layer, GML32).content


@pytest.mark.parametrize("name", sorted(KINDS))
def test_wfs_gml_blank_integers_are_nil_and_line_breaks_survive(served, name: str) -> None:
    """Null integers and texts are xsi:nil, as the layer's DescribeFeatureType allows: the GML is
    valid against it and WFS 2.0 (offline schemas); a published `\\r\\n` comes back whole."""
    base, published = served
    layer = f"ecully-{name}"
    gml = wfs_gml(base, layer)
    assert ogc_schemas.errors_by_its_own_hints(gml) == []
    _, integer, text = sample_frame(name)
    frame = release_frame(published, layer)
    members = [m[0] for m in etree.fromstring(gml).iter(f"{{{WFS_NS}}}member")]
    assert len(members) == len(frame)
    for member, (_, row) in zip(members, frame.iterrows(), strict=True):
        element = member.find(f"{{{MS_NS}}}{integer}")
        if pd.isna(row[integer]):
            assert element.get(XSI_NIL) == "true" and element.text is None
        else:
            assert int(element.text) == row[integer]
        element = member.find(f"{{{MS_NS}}}{text}")
        if pd.isna(row[text]):  # a null text is nil, never an empty text
            assert element.get(XSI_NIL) == "true" and element.text is None
        else:
            assert element.text == row[text] and element.get(XSI_NIL) is None
    assert CRLF_TEXT in frame[text].tolist()


def test_gdal_reads_wfs_blank_integers_as_null_and_keeps_line_breaks(
    served, tmp_path: Path
) -> None:
    """GDAL's WFS driver (ogr2ogr), as a GIS reads the layer: integers stay integers, a
    blank is null, the `\\r\\n` inside a text is kept."""
    base, published = served
    layer = "ecully-fidelite-points"
    target = tmp_path / "copie.geojson"
    done = subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", str(target), f"WFS:{base}/wfs", f"ms:{layer}"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    copied = [f["properties"] for f in json.loads(target.read_text("utf-8"))["features"]]
    frame = release_frame(published, layer)
    assert [p.get("id_banc") for p in copied] == [
        None if pd.isna(v) else int(v) for v in frame["id_banc"]
    ]
    assert all(isinstance(p.get("id_banc"), int | None) for p in copied)
    assert CRLF_TEXT in [p.get("materiau") for p in copied]


# --- one value, every service ---------------------------------------------------------------


def wfs_geojson(base: str, layer: str) -> list[dict]:
    response = wfs_get_feature(base, layer, "application/json; subtype=geojson")
    return [f["properties"] for f in response.json()["features"]]


def gml_values(gml: bytes, name: str) -> list[str | None]:
    members = [m[0] for m in etree.fromstring(gml).iter(f"{{{WFS_NS}}}member")]
    return [member.find(f"{{{MS_NS}}}{name}").text for member in members]


@pytest.mark.parametrize("name", sorted(KINDS))
def test_dates_and_integers_read_the_same_in_every_service(served, name: str) -> None:
    """A Table Schema `date` is YYYY-MM-DD, a `datetime` YYYY-MM-DDTHH:MM:SS, an integer a
    JSON integer (null when blank), in the OGC API, WFS (GeoJSON and GML), the rows API and
    the GeoJSON download alike; each OGC API feature's `id` is its item's path."""
    base, published = served
    layer = f"ecully-{name}"
    _, integer, _ = sample_frame(name)
    frame = release_frame(published, layer)
    dates = [None if pd.isna(v) else v.isoformat() for v in frame["jour"]]
    instants = [None if pd.isna(v) else v.isoformat() for v in frame["releve"]]
    integers = [None if pd.isna(v) else int(v) for v in frame[integer]]
    features = requests.get(
        f"{base}/ogc/collections/{layer}/items", params={"f": "json", "limit": "100"}, timeout=30
    ).json()["features"]
    rows = requests.get(
        f"{base}/api/datasets/{layer}/rows", params={"_taille": "100"}, timeout=30
    ).json()["lignes"]
    download = requests.get(
        f"{base}/api/datasets/{layer}/download/geojson", params={"crs": "2154"}, timeout=30
    ).json()["features"]
    answers = {
        "OGC API": [f["properties"] for f in features],
        "WFS GeoJSON": wfs_geojson(base, layer),
        "rows": rows,
        "GeoJSON download": [f["properties"] for f in download],
    }
    for service, properties in answers.items():
        assert [p.get("jour") for p in properties] == dates, service
        assert [p.get("releve") for p in properties] == instants, service
        assert [p.get(integer) for p in properties] == integers, service
        assert all(type(p.get(integer)) in (int, type(None)) for p in properties), service
    gml = wfs_gml(base, layer)
    assert gml_values(gml, "jour") == dates
    assert gml_values(gml, "releve") == instants
    for feature in features[:3]:
        item = requests.get(
            f"{base}/ogc/collections/{layer}/items/{feature['id']}",
            params={"f": "json"},
            timeout=30,
        ).json()
        assert item["id"] == feature["id"] and item["properties"] == feature["properties"]


# --- releases published before issue #15 -----------------------------------------------------


def older_layer(served, tmp_path: Path) -> Layer:
    """The points layer over a GeoPackage as releases published before issue #15 derived
    it: integers with blanks stored as reals (3.0), dates with a time of day."""
    base, published = served
    layer = next(x for x in served_layers(published.store) if x.name == "ecully-fidelite-points")
    frame = release_frame(published, layer.name).to_crs(4326)
    older = gpd.GeoDataFrame(
        {
            "id_banc": frame["id_banc"].astype("float64"),
            "date_pose": [f"{v.isoformat()}T00:00:00" for v in frame["date_pose"]],
        },
        geometry=frame.geometry,
        crs=4326,
    )
    gpkg = tmp_path / "ancienne.gpkg"
    older.to_file(gpkg, driver="GPKG", layer="ancienne")
    fields = [f for f in layer.fields if f["name"] in ("id_banc", "date_pose")]
    return replace(layer, gpkg=gpkg, table="ancienne", fields=fields, postgis_table=None)


def test_an_older_releases_integers_and_dates_keep_their_types(served, tmp_path: Path) -> None:
    """Such a layer reads as its schema says in the OGC API provider and in WFS (GeoJSON
    and GML valid against its DescribeFeatureType): 3, not 3.0; 2017-09-02, no time."""
    layer = older_layer(served, tmp_path)
    _, published = served
    frame = release_frame(published, layer.name)
    integers = [None if pd.isna(v) else int(v) for v in frame["id_banc"]]
    dates = [v.isoformat() for v in frame["date_pose"]]
    provider = GeoPackageProvider(
        {
            "name": "ancienne",
            "type": "feature",
            "data": str(layer.gpkg),
            "table": layer.table,
            "id_field": "fid",
            "field_types": {f["name"]: f["type"] for f in layer.fields},
        }
    )
    found = [f["properties"] for f in provider.query(limit=100)["features"]]
    assert [p["id_banc"] for p in found] == integers
    assert all(type(p["id_banc"]) in (int, type(None)) for p in found)
    assert [p["date_pose"] for p in found] == dates
    service = MapServerService(tmp_path / "services")
    app = FastAPI()
    app.state.public_url = DEFAULT_PUBLIC_URL  # `serving` puts the served address instead
    service.mount(app)
    with serving(app) as base:
        service.update([layer], [])
        properties = wfs_geojson(base, layer.name)
        gml = wfs_gml(base, layer.name)
        invalid = ogc_schemas.errors_by_its_own_hints(gml)  # its schema from the service
    assert [p.get("id_banc") for p in properties] == integers
    assert all(type(p.get("id_banc")) in (int, type(None)) for p in properties)
    assert invalid == []
    assert gml_values(gml, "date_pose") == dates


def as_published_before_issue_15(published: Deployment, slug: str) -> None:
    """Rewrite a release as map releases were before issue #15: dates stored as timestamps
    in its Parquet, and its GeoJSON and CSV written from them (2017-09-02T00:00:00)."""
    release = published.store.current_release(slug)
    parquet = published.store.release_path(release, "parquet")
    table = pq.read_table(parquet)
    for name in ("date_pose", "jour"):
        position = table.column_names.index(name)
        column = pc.cast(table.column(name), pa.timestamp("ms"))
        table = table.set_column(position, name, column)
    pq.write_table(table, parquet)
    for fmt in ("geojson", "csv"):
        target = published.store.release_path(release, fmt)
        target.unlink()
        downloads.FORMATS[fmt].write(parquet, target, None, "", frozenset())
    assert '"date_pose": "2017-09-02T00:00:00"' in target.with_suffix(".geojson").read_text()


def test_an_older_releases_downloads_write_dates_as_dates(served) -> None:
    """Its GeoJSON and CSV downloads give a date as YYYY-MM-DD, a datetime with its time."""
    base, published = served
    slug = "ecully-fidelite-ancienne"
    published.publish(submission(published.root, "fidelite-ancienne", like="fidelite-points"))
    as_published_before_issue_15(published, slug)
    url = f"{base}/api/datasets/{slug}/download"
    geojson = requests.get(f"{url}/geojson", timeout=30).json()["features"]
    assert geojson[0]["properties"]["date_pose"] == "2017-09-02"
    assert geojson[0]["properties"]["releve"] == "2026-10-01T07:15:30"
    assert [f["properties"]["jour"] for f in geojson][6:8] == ["2026-10-07", None]
    rows = list(csv.DictReader(io.StringIO(requests.get(f"{url}/csv", timeout=30).text)))
    assert rows[0]["date_pose"] == "2017-09-02" and rows[0]["releve"] == "2026-10-01T07:15:30"
