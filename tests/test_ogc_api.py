"""OGC API – Features and Records, served by pygeoapi from the catalog, read by real clients.

Each requirement of the official test suite (ETS) listed in
`../shared/standards/ogcapi-features-ets-requirements.txt` is named in the docstring of
the test that checks it; `test_every_ets_requirement_has_a_test` keeps that list whole.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import requests
import shapely
from owslib.ogcapi.features import Features
from owslib.ogcapi.records import Records

from core.settings import PROJECT_ROOT

from conftest import SAMPLES, Deployment, deployment, running_catalog

ETS_REQUIREMENTS = (
    PROJECT_ROOT.parent / "shared" / "standards" / ("ogcapi-features-ets-requirements.txt")
)
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/{}"
BANCS = "ecully-bancs-publics"
PISTES = "vaulx-en-velin-pistes-cyclables"
SPORTS = "ecully-equipements-sportifs"  # a CSV with latitude and longitude columns
GEOGRAPHIC = {
    SPORTS: SAMPLES / "inbox" / "ecully" / "equipements-sportifs",
    BANCS: SAMPLES / "inbox" / "ecully" / "bancs-publics",
    PISTES: SAMPLES / "inbox" / "vaulx-en-velin" / "pistes-cyclables",
    "lyon-signalements-espace-public": SAMPLES / "inbox" / "lyon" / "signalements-espace-public",
}
TABULAR = SAMPLES / "inbox" / "vaulx-en-velin" / "subventions-associations"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Deployment]]:
    with deployment(tmp_path_factory, "ogcapi") as published:
        for folder in [*GEOGRAPHIC.values(), TABULAR]:
            published.publish_sample(folder)
        with running_catalog(published.store) as base:
            yield f"{base}/ogc", published


def get(url: str, **params: str) -> requests.Response:
    return requests.get(url, params=params, timeout=30)


def items(root: str, collection: str, **params: str) -> dict:
    response = get(f"{root}/collections/{collection}/items", f="json", **params)
    assert response.status_code == 200, response.text
    return response.json()


def all_items(root: str, collection: str, **params: str) -> list[dict]:
    return items(root, collection, limit="10000", **params)["features"]


def published_frame(published: Deployment, slug: str, crs: int) -> gpd.GeoDataFrame:
    release = published.store.current_release(slug)
    return gpd.read_parquet(published.store.release_path(release, "parquet")).to_crs(crs)


# --- landing page, API definition, conformance --------------------------------------------


def test_landing_page_links_the_api_definition_conformance_and_data(served) -> None:
    """ETS: A.2.1.1 HTTP, Abstract Test 1 (/req/core/http); A.2.2 Landing Page, Abstract
    Tests 3 and 4 (/req/core/root-op, /req/core/root-success)."""
    root, _ = served
    response = get(root + "/", f="json")
    assert response.status_code == 200
    assert response.raw.version == 11  # HTTP/1.1
    rels = {link["rel"]: link["href"] for link in response.json()["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert response.json()["title"] == "Données ouvertes des communes de la Métropole de Lyon"
    assert not any("processes" in href or "jobs" in href for href in rels.values())


def test_api_definition_is_an_openapi_3_document_of_the_items_paths(served) -> None:
    """ETS: A.2.3 API Definition Path, Abstract Tests 5 and 6 (/req/core/api-definition-op,
    /req/core/api-definition-success); A.2.7 Limit, Abstract Test 16
    (/req/core/fc-limit-definition); Abstract Test 14 (/req/core/fc-bbox-definition);
    Abstract Test 18 (/req/core/fc-time-definition)."""
    root, _ = served
    landing = get(root + "/", f="json").json()
    service_desc = next(link["href"] for link in landing["links"] if link["rel"] == "service-desc")
    response = get(service_desc, f="json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.0")
    items_path = document["paths"][f"/collections/{BANCS}/items"]["get"]
    parameters = {
        p.get("$ref", "").rsplit("/", 1)[-1] or p.get("name"): p for p in items_path["parameters"]
    }
    assert {"bbox", "limit", "datetime", "offset"} <= set(parameters)
    limit = parameters["limit"]["schema"]
    assert limit["minimum"] == 1 and limit["maximum"] == 10_000 and limit["default"] == 10
    bbox = document["components"]["parameters"]["bbox"]
    assert bbox["schema"]["type"] == "array" and bbox["style"] == "form"


def test_conformance_declares_core_geojson_html_openapi_crs_and_records(served) -> None:
    """ETS: A.2.4 Conformance Path, Abstract Tests 7 and 8 (/req/core/conformance-op,
    /req/core/conformance-success); Precondition: the conformance class
    http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs must be implemented."""
    root, _ = served
    conforms = set(get(root + "/conformance", f="json").json()["conformsTo"])
    base = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/"
    assert {base + c for c in ("core", "geojson", "html", "oas30")} <= conforms
    assert "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs" in conforms
    assert "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/core" in conforms
    assert not any("ogcapi-features-4" in c for c in conforms)  # read-only service


# --- collections ----------------------------------------------------------------------------


def test_collections_are_the_public_layers_with_crs84_extents_and_crs_lists(served) -> None:
    """ETS: A.2.5 Feature Collections, Abstract Test 9 (/req/core/fc-md-op); Abstract Test
    10, Test Methods 1-4 (/req/core/fc-md-success, /req/core/crs84); Part 2 A.1 Discovery,
    Abstract Test 1 (/req/crs/crs-uri, /req/crs/fc-md-crs-list A, /req/crs/fc-md-storageCrs,
    /req/crs/fc-md-crs-list-global), Abstract Test 2 (/req/crs/fc-md-crs-list B,
    /req/crs/fc-md-storageCrs-valid-value), Abstract Test 3."""
    root, _ = served
    document = get(root + "/collections", f="json").json()
    by_id = {c["id"]: c for c in document["collections"]}
    assert set(by_id) == {*GEOGRAPHIC, "catalogue"}
    for slug in GEOGRAPHIC:
        collection = by_id[slug]
        assert any(link["rel"] == "items" for link in collection["links"])
        spatial = collection["extent"]["spatial"]
        assert spatial["crs"] == CRS84
        west, south, east, north = spatial["bbox"][0]
        assert 4.7 < west < east < 5.0 and 45.7 < south < north < 45.9  # the Lyon area
        assert set(collection["crs"]) >= {CRS84, *(EPSG.format(c) for c in (2154, 3946, 3857))}
        assert collection["storageCrs"] in collection["crs"]
    assert by_id[BANCS]["title"] == "Bancs publics"


def test_collections_are_paged_with_next_and_prev_links(served) -> None:
    """`/collections` is paged (OGC API – Common Part 2: `limit`, rel `next`/`prev`): the
    pages, followed by their `next` links, list every collection once."""
    root, _ = served
    everything = [c["id"] for c in get(root + "/collections", f="json").json()["collections"]]
    seen: list[str] = []
    page = get(root + "/collections", f="json", limit="2").json()
    assert page["numberMatched"] == len(everything) and page["numberReturned"] == 2
    assert not any(link["rel"] == "prev" for link in page["links"])
    while True:
        seen += [c["id"] for c in page["collections"]]
        following = [link["href"] for link in page["links"] if link["rel"] == "next"]
        if not following:
            break
        page = requests.get(following[0], timeout=30).json()
        assert any(link["rel"] == "prev" for link in page["links"])
    assert seen == everything
    for bad in ("0", "-1", "x", "100000"):
        refused = get(root + "/collections", f="json", limit=bad)
        assert refused.status_code == 400 and "limit" in refused.json()["description"]
    html_page = get(root + "/collections", f="html", limit="1")
    assert html_page.status_code == 200 and 'rel="next"' in html_page.text


def test_one_collection_matches_its_entry_in_the_list(served) -> None:
    """ETS: A.2.6 Feature Collection, Abstract Tests 11 and 12 (/req/core/sfc-md-op,
    /req/core/sfc-md-success)."""
    root, _ = served
    listed = next(
        c for c in get(root + "/collections", f="json").json()["collections"] if c["id"] == BANCS
    )
    single = get(f"{root}/collections/{BANCS}", f="json")
    assert single.status_code == 200
    assert single.json()["id"] == BANCS
    assert single.json()["extent"] == listed["extent"]
    assert single.json()["crs"] == listed["crs"]
    assert get(f"{root}/collections/inconnue", f="json").status_code == 404


# --- items ------------------------------------------------------------------------------


def test_items_are_a_geojson_collection_with_counts_links_and_timestamp(served) -> None:
    """ETS: A.2.7 Features, Abstract Test 13 (/req/core/fc-op); Abstract Test 22, Test
    Methods 1, 2 (/req/core/fc-response); Test Method 4 / Abstract Test 23
    (/req/core/fc-links, /req/core/fc-rel-type); Test Method 5 / Abstract Test 24
    (/req/core/fc-timeStamp); Test Method 6 / Abstract Test 25 (/req/core/fc-numberMatched);
    Test Method 7 / Abstract Test 26 (/req/core/fc-numberReturned); Abstract Test 2, Test
    Method 2 (/req/core/crs84)."""
    root, published = served
    response = get(f"{root}/collections/{BANCS}/items", f="json", limit="7")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    page = response.json()
    assert page["type"] == "FeatureCollection"
    assert page["numberReturned"] == len(page["features"]) == 7
    assert page["numberMatched"] == published.store.current_release(BANCS).row_count
    datetime.fromisoformat(page["timeStamp"].replace("Z", "+00:00"))
    rels = {link["rel"] for link in page["links"]}
    assert {"self", "alternate", "next"} <= rels
    next_page = requests.get(
        next(link["href"] for link in page["links"] if link["rel"] == "next"), timeout=30
    ).json()
    first_ids = {f["id"] for f in page["features"]}
    assert first_ids.isdisjoint(f["id"] for f in next_page["features"])
    lon, lat = page["features"][0]["geometry"]["coordinates"]
    assert 4.7 < lon < 4.9 and 45.7 < lat < 45.8  # CRS84: longitude first


def test_limit_bounds_the_page_and_bad_values_are_refused(served) -> None:
    """ETS: A.2.7 Limit, Abstract Test 13 (/req/core/fc-op), Abstract Test 17
    (/req/core/fc-limit-response); Limit, Abstract Test 22 Test Methods 1-7 and Abstract
    Test 2 Test Method 2; Error Conditions, Abstract Test 13/20
    (/req/core/query-param-invalid)."""
    root, _ = served
    for limit in ("1", "5", "60"):
        page = items(root, BANCS, limit=limit)
        assert page["numberReturned"] == len(page["features"]) <= int(limit)
        assert page["numberMatched"] == 60
    for bad in ({"limit": "-1"}, {"limit": "abc"}, {"bbox": "1,2,3"}, {"datetime": "hier"}):
        response = get(f"{root}/collections/{BANCS}/items", f="json", **bad)
        assert response.status_code == 400, bad


def test_unknown_query_parameters_are_refused(served) -> None:
    """ETS: A.2.7 Error Conditions, Abstract Test 13/21 (/req/core/query-param-unknown)."""
    root, _ = served
    response = get(f"{root}/collections/{BANCS}/items", f="json", couleur="rouge")
    assert response.status_code == 400
    assert "couleur" in response.json()["description"]


def test_bbox_returns_exactly_the_features_in_the_box(served) -> None:
    """ETS: A.2.7 BoundingBox, Abstract Test 13 (/req/core/fc-op), Abstract Test 15
    (/req/core/fc-bbox-response), Abstract Test 22 Test Methods 1-7, Abstract Test 2 Test
    Method 2 (/req/core/crs84); Part 2 A.2.2 bbox-crs, Abstract Test 10
    (/req/crs/fc-bbox-crs-default-value)."""
    root, published = served
    box = (4.775, 45.772, 4.782, 45.779)
    for slug in (BANCS, PISTES):
        frame = published_frame(published, slug, 4326)
        expected = int(frame.intersects(shapely.box(*box)).sum())
        page = items(root, slug, bbox=",".join(map(str, box)), limit="1000")
        assert 0 < page["numberMatched"] == expected == page["numberReturned"] or (
            slug == PISTES and page["numberMatched"] == expected
        )
        for feature in page["features"]:
            assert shapely.geometry.shape(feature["geometry"]).intersects(shapely.box(*box))


def test_datetime_selects_the_features_of_the_interval(served) -> None:
    """ETS: A.2.7 Datetime, Abstract Test 13 (/req/core/fc-op), Abstract Test 19
    (/req/core/fc-time-response), Abstract Test 22 Test Methods 1-7."""
    root, published = served
    frame = published_frame(published, BANCS, 4326)
    dates = pd.to_datetime(frame["date_pose"]).dt.strftime("%Y-%m-%d")
    expected = int(((dates >= "2019-01-01") & (dates <= "2021-12-31")).sum())
    page = items(root, BANCS, datetime="2019-01-01/2021-12-31", limit="1000")
    assert 0 < page["numberMatched"] == expected
    assert all("2019" <= f["properties"]["date_pose"] <= "2021-12-31" for f in page["features"])
    open_ended = items(root, BANCS, datetime="2022-01-01T00:00:00Z/..")
    assert open_ended["numberMatched"] == int((dates >= "2022-01-01").sum())


def test_one_feature_with_its_links(served) -> None:
    """ETS: A.2.8 Feature, Abstract Test 27 (/req/core/f-op), Abstract Tests 28 and 29
    (/req/core/f-success, /req/core/f-links)."""
    root, _ = served
    first = items(root, BANCS, limit="1")["features"][0]
    response = get(f"{root}/collections/{BANCS}/items/{first['id']}", f="json")
    assert response.status_code == 200
    feature = response.json()
    assert feature["type"] == "Feature" and feature["properties"] == first["properties"]
    rels = {link["rel"] for link in feature["links"]}
    assert {"self", "collection", "alternate"} <= rels
    assert get(f"{root}/collections/{BANCS}/items/999999", f="json").status_code == 404


# --- Part 2: coordinate reference systems ------------------------------------------------


@pytest.mark.parametrize("code", [2154, 3946, 3857, 4326])
def test_features_in_each_crs_equal_the_published_geometries(served, code: int) -> None:
    """ETS Part 2: A.2.1 Parameter crs, Abstract Test 1 (/req/crs/fc-crs-definition,
    /req/crs/fc-crs-valid-value B, /req/crs/ogc-crs-header, /req/crs/ogc-crs-header-value,
    /req/crs/geojson), Abstract Test 4, Abstract Test 7 (/req/crs/crs-action)."""
    root, published = served
    response = get(
        f"{root}/collections/{PISTES}/items", f="json", crs=EPSG.format(code), limit="1000"
    )
    assert response.status_code == 200
    assert response.headers["content-crs"] == f"<{EPSG.format(code)}>"
    features = response.json()["features"]
    expected = published_frame(published, PISTES, code)
    assert len(features) == len(expected)
    served_shapes = [shapely.geometry.shape(f["geometry"]) for f in features]
    if code == 4326:  # EPSG:4326 is latitude first: swap to compare with (lon, lat) data
        served_shapes = [shapely.ops.transform(lambda x, y: (y, x), s) for s in served_shapes]
    tolerance = 1e-7 if code == 4326 else 0.01  # 1 cm
    for shape, published_shape in zip(served_shapes, expected.geometry, strict=True):
        assert shape.equals_exact(published_shape, tolerance)


def test_default_crs_is_crs84_and_unknown_crs_is_refused(served) -> None:
    """ETS Part 2: A.2.1 Parameter crs, Abstract Test 6 (/req/crs/fc-crs-default-value,
    /req/crs/ogc-crs-header, /req/crs/ogc-crs-header-value), Abstract Tests 1 and 5
    (/req/crs/fc-crs-valid-value)."""
    root, _ = served
    response = get(f"{root}/collections/{BANCS}/items", f="json", limit="1")
    assert response.headers["content-crs"] == f"<{CRS84}>"
    refused = get(f"{root}/collections/{BANCS}/items", f="json", crs=EPSG.format(27572))
    assert refused.status_code == 400
    one = get(f"{root}/collections/{BANCS}/items/1", f="json", crs=EPSG.format(2154))
    assert one.headers["content-crs"] == f"<{EPSG.format(2154)}>"
    x, y = one.json()["geometry"]["coordinates"]
    assert 800_000 < x < 900_000 and 6_400_000 < y < 6_600_000  # Lambert-93 around Lyon


def test_bbox_in_another_crs_selects_the_same_features(served) -> None:
    """ETS Part 2: A.2.2 Parameter bbox-crs, Abstract Test 8 (/req/crs/fc-bbox-crs-definition,
    /req/crs/bbox-crs-action), Abstract Test 9 (/conf/crs/bbox-crs-parameter-invalid)."""
    root, _ = served
    box = shapely.box(4.775, 45.772, 4.782, 45.779)
    lambert = gpd.GeoSeries([box], crs=4326).to_crs(2154).total_bounds
    in_crs84 = items(root, BANCS, bbox="4.775,45.772,4.782,45.779", limit="1000")
    in_lambert = items(
        root,
        BANCS,
        bbox=",".join(map(str, lambert)),
        **{"bbox-crs": EPSG.format(2154)},
        limit="1000",
    )
    # The Lambert box is the envelope of the reprojected box: it holds at least as much.
    assert {f["id"] for f in in_crs84["features"]} <= {f["id"] for f in in_lambert["features"]}
    assert in_lambert["numberMatched"] - in_crs84["numberMatched"] <= 2
    refused = get(
        f"{root}/collections/{BANCS}/items",
        f="json",
        bbox="1,2,3,4",
        **{"bbox-crs": "http://www.opengis.net/def/crs/EPSG/0/99999"},
    )
    assert refused.status_code == 400


# --- clients --------------------------------------------------------------------------------


def test_owslib_reads_every_feature_with_the_published_attributes(served) -> None:
    root, published = served
    client = Features(root)
    assert {c["id"] for c in client.collections()["collections"]} >= set(GEOGRAPHIC)
    for slug in GEOGRAPHIC:
        collection = client.collection_items(slug, limit=10_000)
        expected = published_frame(published, slug, 4326)
        assert collection["numberMatched"] == len(expected) == len(collection["features"])
        attributes = [f["properties"] for f in collection["features"]]
        columns = [c for c in expected.columns if c != expected.geometry.name]
        assert [sorted(a) for a in attributes[:1]] == [sorted(columns)]
        for served_row, (_, row) in zip(attributes, expected.iterrows(), strict=True):
            for column in columns:
                assert _same(served_row[column], row[column]), (slug, column)


def _same(served_value: object, published_value: object) -> bool:
    if hasattr(published_value, "strftime"):
        return str(served_value) == published_value.strftime("%Y-%m-%d")
    if published_value is None or published_value != published_value:  # None or NaN
        return served_value is None
    if isinstance(published_value, float):
        return abs(float(served_value) - published_value) < 1e-9
    return served_value == published_value


def test_gdal_reads_the_layers_through_the_oapif_driver(served, tmp_path: Path) -> None:
    root, published = served
    listing = subprocess.run(
        ["ogrinfo", "-ro", "-q", f"OAPIF:{root}"], capture_output=True, text=True, timeout=120
    )
    assert listing.returncode == 0, listing.stderr
    for slug in GEOGRAPHIC:
        assert slug in listing.stdout
    copy = tmp_path / "pistes.gpkg"
    converted = subprocess.run(
        ["ogr2ogr", "-t_srs", "EPSG:2154", str(copy), f"OAPIF:{root}", PISTES],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert converted.returncode == 0, converted.stderr
    read_back = gpd.read_file(copy).sort_values("id_troncon").reset_index(drop=True)
    expected = published_frame(published, PISTES, 2154)
    expected = expected.sort_values("id_troncon").reset_index(drop=True)
    assert len(read_back) == len(expected)
    assert list(read_back["nom_voie"]) == list(expected["nom_voie"])
    assert read_back.geometry.geom_equals_exact(expected.geometry, 0.01).all()  # within 1 cm


def test_records_describe_every_public_dataset_and_search_them(served) -> None:
    root, published = served
    client = Records(root)
    everything = client.collection_items("catalogue", limit=100)
    slugs = {record["id"] for record in everything["features"]}
    assert slugs == {d.slug for d in published.store.list_datasets()}
    found = client.collection_items("catalogue", q="bancs")
    assert [r["id"] for r in found["features"]] == [BANCS]
    record = client.collection_item("catalogue", BANCS)
    assert record["properties"]["title"] == "Bancs publics"
    assert record["properties"]["license"] == published.store.get_dataset(BANCS).licence["name"]
    links = {(link["rel"], link["href"].split("/", 3)[-1]) for link in record["links"]}
    assert ("alternate", f"jeux-de-donnees/{BANCS}") in links
    assert ("item", f"ogc/collections/{BANCS}/items") in links
    assert ("enclosure", f"api/datasets/{BANCS}/download/csv") in links
    in_vaulx = client.collection_items("catalogue", bbox=[4.9, 45.76, 4.95, 45.79])
    assert [r["id"] for r in in_vaulx["features"]] == [PISTES]
    not_a_map = client.collection_item("catalogue", "vaulx-en-velin-subventions-associations")
    assert not_a_map["geometry"] is None


def test_a_table_with_coordinate_columns_is_a_layer_whose_points_are_its_columns(served) -> None:
    root, published = served
    features = Features(root).collection_items(SPORTS, limit=1000)["features"]
    rows = published.store.release_path(published.store.current_release(SPORTS), "csv")
    table = pd.read_csv(rows)
    assert len(features) == len(table) > 0
    for feature, (_, row) in zip(features, table.iterrows(), strict=True):
        assert feature["geometry"]["type"] == "Point"
        assert feature["geometry"]["coordinates"] == pytest.approx(
            [row["longitude"], row["latitude"]], abs=1e-7
        )  # 1e-7 degree: about 1 cm
        assert feature["properties"]["latitude"] == pytest.approx(row["latitude"])
    assert "geometry" not in table.columns  # the CSV keeps the producer's columns only


def test_html_pages_are_served_in_french(served) -> None:
    root, _ = served
    page = get(f"{root}/collections/{BANCS}/items", f="html")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'lang="fr"' in page.text and "Bancs publics" in page.text


def test_every_ets_requirement_has_a_test() -> None:
    requirements = set(re.findall(r"/(?:req|conf)/[\w/-]+", ETS_REQUIREMENTS.read_text()))
    documented = set(re.findall(r"/(?:req|conf)/[\w/-]+", Path(__file__).read_text()))
    assert requirements, "the ETS requirement list is empty"
    assert requirements <= documented, sorted(requirements - documented)


# --- lifecycle ------------------------------------------------------------------------------


@pytest.mark.slow
def test_services_follow_new_releases_structure_versions_and_withdrawals(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with deployment(tmp_path_factory, "ogc-cycle") as published:
        published.publish_sample(GEOGRAPHIC[BANCS])
        with running_catalog(published.store) as base:
            root = f"{base}/ogc"
            assert items(root, BANCS)["numberMatched"] == 60
            assert get(f"{root}/collections/{BANCS}", f="html").status_code == 200
            refresher_changed = _publish_second_structure(published, base)
            assert refresher_changed
            # HTML pages follow the change too (pygeoapi would render the first configuration
            # it ever translated: see api.py, _NoConfigCache)
            page = get(f"{root}/collections/{BANCS}-v1", f="html")
            assert page.status_code == 200 and f"{BANCS}-v1" in page.text
            collections = {
                c["id"] for c in get(root + "/collections", f="json").json()["collections"]
            }
            assert {BANCS, f"{BANCS}-v1"} <= collections
            assert "etat_constate" in items(root, BANCS, limit="1")["features"][0]["properties"]
            assert "etat" in items(root, f"{BANCS}-v1", limit="1")["features"][0]["properties"]
            _withdraw(published, BANCS)
            _refresh(base)
            collections = {
                c["id"] for c in get(root + "/collections", f="json").json()["collections"]
            }
            assert collections == {"catalogue"}
            assert get(f"{root}/collections/{BANCS}/items", f="json").status_code == 404
            assert items(root, "catalogue")["numberMatched"] == 0


def _publish_second_structure(published: Deployment, base: str) -> bool:
    """A renamed column, published as structure v2 as an announced change would be (the
    notice itself is issue #6): v1 stays diffused in parallel."""
    from pipelines import submission as stages

    folder = published.root / "v2" / "bancs-publics"
    folder.mkdir(parents=True)
    source = json.loads((GEOGRAPHIC[BANCS] / "bancs-publics.geojson").read_text("utf-8"))
    for feature in source["features"]:
        feature["properties"]["etat_constate"] = feature["properties"].pop("etat")
    data = folder / "bancs-publics.geojson"
    data.write_text(json.dumps(source), "utf-8")
    metadata_file = folder / "metadata.yaml"
    metadata_file.write_text((GEOGRAPHIC[BANCS] / "metadata.yaml").read_text("utf-8"), "utf-8")
    sub = stages.Submission.new("ecully", data, metadata_file, "test")
    metadata = stages.stage_metadata(sub, published.settings)
    licence = stages.stage_licence(metadata, published.settings)
    source_table = stages.stage_read(sub, metadata)
    as_new = {**metadata, "identifier": "structure-v2-en-preparation"}
    checked, structure, _ = stages.stage_structure(sub, as_new, source_table, published.store)
    checked, structure, anonymisation = stages.stage_anonymise(
        sub, metadata, checked, structure, published.settings
    )
    outcome = stages.stage_publish(
        sub,
        metadata,
        licence,
        checked,
        structure,
        2,
        published.store,
        anonymisation,
        published.settings,
    )
    assert outcome.status == "publiee" and outcome.structure_version == 2
    return _refresh(base)


def _withdraw(published: Deployment, slug: str) -> None:
    """Depublication (issue #6 brings its rule) sets the dataset's status."""
    published.store.set_status(slug, "depublie")


def _refresh(base: str) -> bool:
    """The refresher checks the store's change log every 2 s: the change shows soon (within
    a minute on a loaded machine)."""
    from catalog.ogc.services import REFRESH_SECONDS

    assert REFRESH_SECONDS <= 60  # "within a minute"
    import time

    deadline = time.monotonic() + 60
    before = get(base + "/ogc/collections", f="json").json()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if get(base + "/ogc/collections", f="json").json() != before:
            return True
    return False


def test_many_host_headers_keep_a_bounded_number_of_apis_and_record_files(served) -> None:
    root, published = served
    for number in range(24):
        response = requests.get(
            f"{root}/collections",
            params={"f": "json"},
            headers={"Host": f"h{number}.example"},
            timeout=30,
        )
        assert response.status_code == 200
        # links start with the catalog's public URL, never with the Host asked (issue #16)
        assert f"h{number}.example" not in response.text
        assert f'"{root}/collections' in response.text
    records = list((published.settings.services_dir).rglob("fiches-*.json"))
    assert 0 < len(records) <= 2  # one per change of the catalogue, whatever the Host


def test_a_clients_error_is_one_warning_without_traceback(served, caplog) -> None:
    """A caller's mistake is not a server fault: one warning, no ERROR, no traceback."""
    root, _ = served
    with caplog.at_level(logging.INFO):
        refused = get(f"{root}/collections/{BANCS}/items", f="json", bbox="a,b,c")
        unknown = get(f"{root}/collections/inconnue/items", f="json")
    assert refused.status_code == 400 and unknown.status_code == 404
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info]
    warnings = [r.getMessage() for r in caplog.records if r.name == "catalog.ogc.api"]
    assert len(warnings) == 2 and all("requête refusée" in w for w in warnings)
