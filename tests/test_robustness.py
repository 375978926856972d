"""Odd but plausible requests and submissions get a clear answer, never a 500 or a leak."""

import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import geopandas as gpd
import openpyxl
import pytest
import requests
from shapely.geometry import Point

from conftest import running_catalog

SECTOR = (
    'licence: {type: sectorielle, nom: "Licence {source.__class__} du SIG", '
    'url: "https://exemple.fr/licence"}\n'
)


def publish(submit, dataset_folder, name, content, metadata="", filename=None, **options):
    data = dataset_folder(
        filename or f"{name}.csv", content, name=name, extra_metadata=metadata, **options
    )
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status in {"publiee", "confirmee"}, outcome.summary()
    return outcome


def test_restricting_an_unchanged_dataset_hides_it_at_once(submit, dataset_folder, store):
    publish(submit, dataset_folder, "devient", "id\r\n1\r\n")
    outcome = publish(submit, dataset_folder, "devient", "id\r\n1\r\n", "acces: restreint\n")
    assert outcome.status == "confirmee"
    with running_catalog(store) as base:
        for path in ("", "/rows", "/download/csv", "/dcat.ttl"):
            response = requests.get(f"{base}/api/datasets/ecully-devient{path}", timeout=5)
            assert response.status_code == 404, path


def test_braces_in_a_declared_licence_are_shown_as_written(submit, dataset_folder, store):
    data = dataset_folder("a.csv", "id\r\n1\r\n", name="accolades")
    metadata = data.parent / "metadata.yaml"
    metadata.write_text(
        metadata.read_text(encoding="utf-8").replace("licence: etalab-2.0\n", SECTOR),
        encoding="utf-8",
    )
    assert submit(data, metadata).status == "publiee"
    with running_catalog(store) as base:
        detail = requests.get(f"{base}/api/datasets/ecully-accolades", timeout=5)
        assert detail.status_code == 200
        assert "Licence {source.__class__} du SIG" in detail.json()["licence"]["mention"]
        for path in (
            "/jeux-de-donnees/ecully-accolades",
            "/dcat/catalogue.ttl",
            "/api/datasets/ecully-accolades/download/csv",
        ):
            assert requests.get(base + path, timeout=5).status_code == 200, path


@pytest.mark.parametrize(
    "url", ['https://exemple.fr/l>"<x', "https://exemple.fr/licence-des-œuvres"]
)
def test_licence_urls_that_would_break_headers_or_rdf_are_refused(submit, dataset_folder, url):
    data = dataset_folder("a.csv", "id\r\n1\r\n", name="url")
    metadata = data.parent / "metadata.yaml"
    metadata.write_text(
        metadata.read_text(encoding="utf-8").replace(
            "licence: etalab-2.0\n",
            f"licence: {{type: sectorielle, nom: Licence du SIG, url: '{url}'}}\n",
        ),
        encoding="utf-8",
    )
    outcome = submit(data, metadata)
    assert (
        outcome.status == "refusee" and "licence-sectorielle-incomplete" in outcome.report.to_json()
    )


@pytest.fixture
def catalog(submit, dataset_folder, store, tmp_path: Path):
    publish(
        submit,
        dataset_folder,
        "mesures",
        "id;code__insee;actif;note\r\n1;69081;true;a\x01b\r\n2;69123;false;c\r\n",
    )
    frame = gpd.GeoDataFrame(
        {
            "id": [1, 2, 3],
            "remarque": [None, None, "trois"],
            "pose": ["2017-09-02", "2018-01-01", "2019-05-05"],
        },
        geometry=[Point(4.77, 45.77), Point(4.78, 45.78), Point(4.79, 45.79)],
        crs=4326,
    )
    source = tmp_path / "points.geojson"
    frame.to_file(source, driver="GeoJSON")
    publish(submit, dataset_folder, "points", source.read_bytes(), filename="points.geojson")
    with running_catalog(store) as base:
        yield base


@pytest.mark.parametrize(
    "query",
    [
        "id=99999999999999999999999",
        "id__in=1,99999999999999999999999",
        "_decalage=99999999999999999999999",
        "actif=yes",
        "_tri=id&_apres=W3t9LDFd",
        "_tri=id&_apres=WzEsOTk5OTk5OTk5OTk5OTk5OTk5OTk5OTld",
    ],
)
def test_out_of_range_or_malformed_row_queries_get_a_400(catalog, query):
    response = requests.get(f"{catalog}/api/datasets/ecully-mesures/rows?{query}", timeout=5)
    assert response.status_code == 400, response.text
    assert (
        requests.get(
            f"{catalog}/api/datasets/ecully-mesures/v99999999999999999999/rows", timeout=5
        ).status_code
        == 404
    )


def test_a_column_named_with_double_underscores_can_be_filtered(catalog):
    rows = requests.get(
        f"{catalog}/api/datasets/ecully-mesures/rows?code__insee=69081", timeout=5
    ).json()["lignes"]
    assert [r["id"] for r in rows] == [1]


def test_control_characters_do_not_break_the_spreadsheet(catalog):
    response = requests.get(f"{catalog}/api/datasets/ecully-mesures/download/xlsx", timeout=10)
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert [c.value for c in book["donnees"][2]][3] == "ab"


def test_map_exports_keep_dates_and_empty_first_chunks(catalog, monkeypatch):
    from catalog.store.downloads import tables

    monkeypatch.setattr(tables, "CHUNK_ROWS", 1)
    rows = requests.get(f"{catalog}/api/datasets/ecully-points/download/json", timeout=10).json()
    assert rows[0]["pose"] == "2017-09-02"
    text = requests.get(
        f"{catalog}/api/datasets/ecully-points/download/csv?crs=2154", timeout=10
    ).text
    assert text.count("POINT") == 3 and "trois" in text and "2019-05-05" in text


def test_if_modified_since_without_a_zone_is_read_as_utc(catalog):
    url = f"{catalog}/api/datasets/ecully-points/download/csv"
    modified = requests.get(url, timeout=5).headers["last-modified"]
    zoneless = modified.replace("GMT", "-0000")
    assert requests.get(url, headers={"If-Modified-Since": zoneless}, timeout=5).status_code == 304


def test_concurrent_first_requests_build_once_and_all_succeed(catalog):
    urls = [
        f"{catalog}/api/datasets/ecully-points/rows?_tri={s}"
        for s in ("id", "-id", "remarque", "pose", "-pose", "id")
    ]
    urls += [f"{catalog}/api/datasets/ecully-points/download/gpkg?crs=3857"] * 4
    with ThreadPoolExecutor(10) as pool:
        codes = list(pool.map(lambda u: requests.get(u, timeout=60).status_code, urls))
    assert codes == [200] * len(urls)


def test_hydra_links_keep_the_requested_serialisation(catalog):
    graph = requests.get(f"{catalog}/dcat/catalogue.jsonld?taille=1", timeout=5).text
    links = [
        v["@id"]
        for node in json.loads(graph)
        for key, values in node.items()
        if key.startswith("http://www.w3.org/ns/hydra/core#") and isinstance(values, list)
        for v in values
        if isinstance(v, dict) and "@id" in v
    ]
    assert links and all("catalogue.jsonld" in link for link in links)
