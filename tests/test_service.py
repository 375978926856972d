"""The catalog service, run by uvicorn on loopback and read with an HTTP client."""

import io
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import requests
from shapely.geometry import Point

from conftest import running_catalog

CSV = "id;espece;hauteur\r\n1;Platane;12,5\r\n2;Tilleul;8\r\n"


@pytest.fixture
def catalog(submit, dataset_folder, store, tmp_path: Path) -> Iterator[str]:
    data = dataset_folder("arbres.csv", CSV, encoding="cp1252")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    frame = gpd.GeoDataFrame(
        {"id_banc": [1, 2]}, geometry=[Point(4.777, 45.776), Point(4.78, 45.778)], crs="EPSG:4326"
    ).to_crs("EPSG:2154")
    source = tmp_path / "bancs.gpkg"
    frame.to_file(source, driver="GPKG")
    data = dataset_folder("bancs.gpkg", source.read_bytes(), name="bancs", licence="odbl-1.0")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"

    with running_catalog(store) as base:
        yield base


def test_listing_shows_source_licence_and_formats(catalog: str) -> None:
    listing = requests.get(f"{catalog}/api/datasets", timeout=5).json()
    assert listing["total"] == 2
    trees = next(d for d in listing["jeux_de_donnees"] if d["slug"] == "ecully-arbres")
    assert trees["source"] == "Écully" and trees["licence"] == "Licence Ouverte 2.0"
    assert trees["frequence"] == "annuelle" and trees["date_mise_a_jour"] == "2026-10-01"
    assert trees["formats"] == ["csv", "json", "xlsx", "parquet"]


def test_dataset_metadata_carries_licence_obligations_and_structure(catalog: str) -> None:
    detail = requests.get(f"{catalog}/api/datasets/ecully-bancs", timeout=5).json()
    assert detail["licence"]["id"] == "odbl-1.0"
    assert detail["licence"]["obligations"]["partage_a_l_identique"] is True
    assert "Écully" in detail["licence"]["mention"]
    assert detail["systeme_coordonnees"] == "EPSG:2154"
    assert detail["structure"]["geometry_type"] == "Point"
    assert {d["format"] for d in detail["distributions"]} == {"csv", "parquet", "geojson", "gpkg"}


@pytest.mark.parametrize("fmt", ["csv", "parquet", "geojson", "gpkg"])
def test_every_format_downloads_with_licence_and_source(catalog: str, fmt: str) -> None:
    response = requests.get(f"{catalog}/api/datasets/ecully-bancs/download/{fmt}", timeout=5)
    assert response.status_code == 200
    assert response.headers["X-Licence"] == "odbl-1.0"
    assert 'rel="license"' in response.headers["Link"]
    assert response.headers["X-Source"] == "%C3%89cully"
    assert f'filename="ecully-bancs-v1.{fmt}"' in response.headers["content-disposition"]
    if fmt == "csv":
        frame = pd.read_csv(io.BytesIO(response.content))
        assert frame["id_banc"].tolist() == [1, 2]
    elif fmt == "geojson":
        features = response.json()["features"]
        assert [round(f["geometry"]["coordinates"][0], 3) for f in features] == [4.777, 4.78]
    else:
        assert len(response.content) > 100


def test_versioned_url_serves_the_same_release(catalog: str) -> None:
    alias = requests.get(f"{catalog}/api/datasets/ecully-arbres/download/csv", timeout=5)
    pinned = requests.get(f"{catalog}/api/datasets/ecully-arbres/v1/download/csv", timeout=5)
    assert alias.content == pinned.content
    assert alias.text.splitlines()[1] == '1,"Platane",12.5'


def test_unknown_things_get_french_404(catalog: str) -> None:
    missing = requests.get(f"{catalog}/api/datasets/inconnu", timeout=5)
    assert missing.status_code == 404 and "introuvable" in missing.json()["detail"]
    wrong = requests.get(f"{catalog}/api/datasets/ecully-arbres/download/gpkg", timeout=5)
    assert wrong.status_code == 404
    assert "Formats disponibles : csv, json, xlsx, parquet." in wrong.json()["detail"]
    old = requests.get(f"{catalog}/api/datasets/ecully-arbres/v7/download/csv", timeout=5)
    assert old.status_code == 404


def test_portal_pages_in_french(catalog: str) -> None:
    home = requests.get(catalog, timeout=5).text
    assert "Arbres d&#39;alignement" in home or "Arbres d'alignement" in home
    assert 'Source : <span class="source">Écully</span>' in home
    page = requests.get(f"{catalog}/jeux-de-donnees/ecully-bancs", timeout=5).text
    assert "Open Database License" in page and "GeoPackage" in page
    assert "Mention obligatoire" in page
    trees = requests.get(f"{catalog}/jeux-de-donnees/ecully-arbres", timeout=5).text
    assert "<td>hauteur</td><td>number</td>" in trees.replace("\n", "")


def test_head_request_gives_size_and_licence_without_the_body(catalog: str) -> None:
    url = f"{catalog}/api/datasets/ecully-bancs/download/gpkg"
    head = requests.head(url, timeout=5)
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(requests.get(url, timeout=5).content)
    assert head.headers["X-Licence"] == "odbl-1.0"


def test_constraints_are_described_in_french() -> None:
    from catalog.web.pages import describe_constraints

    field = {"constraints": {"required": True, "minimum": 1, "enum": ["Bayard", "Wallace"]}}
    assert describe_constraints(field) == "obligatoire ; minimum 1 ; valeurs : Bayard, Wallace"


def test_change_feed_answers_304_to_a_weak_etag(catalog: str) -> None:
    feed = requests.get(f"{catalog}/changements.atom", timeout=10)
    assert feed.status_code == 200 and "<feed" in feed.text
    etag = feed.headers["etag"]
    for header in (etag, f"W/{etag}", f'W/"autre", W/{etag}', "*"):
        again = requests.get(
            f"{catalog}/changements.atom", headers={"If-None-Match": header}, timeout=10
        )
        assert again.status_code == 304 and again.content == b"", header
    changed = requests.get(
        f"{catalog}/changements.atom", headers={"If-None-Match": 'W/"autre"'}, timeout=10
    )
    assert changed.status_code == 200 and changed.content == feed.content


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/api/datasets",
        "/api/datasets/ecully-arbres",
        "/jeux-de-donnees/ecully-arbres",
        "/api/datasets/ecully-arbres/rows",
        "/api/datasets/ecully-arbres/changements.atom",
        "/dcat/catalogue.ttl",
        "/wms?SERVICE=WMS&REQUEST=GetCapabilities",
        "/ogc/collections?f=json",
    ],
)
def test_head_answers_wherever_get_does_with_its_headers_and_no_body(
    catalog: str, path: str
) -> None:
    get = requests.get(f"{catalog}{path}", timeout=30)
    head = requests.head(f"{catalog}{path}", timeout=30)
    assert get.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    if "content-length" in get.headers:
        assert head.headers["content-length"] == get.headers["content-length"]

