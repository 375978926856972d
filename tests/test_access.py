"""A restricted dataset is never listed, described, downloaded or served anonymously.

The test walks every route of the application, so an endpoint added later is covered
too (or the test tells which route it cannot fill in).
"""

import re

import pytest
import requests
from fastapi.routing import APIRoute

from catalog.service import create_app

from conftest import running_catalog

SECRET_TITLE = "Registre confidentiel des interventions"
ROUTE_VALUES = {
    "version": "1",
    "fmt": "csv",
    "extension": "ttl",
    "commune": "ecully",
    "collection": "catalogue",  # OGC API Records: the dataset's record is an item
    "item": "{slug}",
}
# The data team's health view lists every dataset, restricted ones too: token only.
DATA_TEAM_ONLY = {"/api/equipe-data/sante", "/equipe-data/sante"}


@pytest.fixture
def catalog(submit, dataset_folder, store, monkeypatch):
    monkeypatch.setenv("OPENDATA_DATA_TEAM_TOKEN", "jeton-equipe-data")  # anonymous: 401
    public = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(public, public.parent / "metadata.yaml").status == "publiee"
    restricted = dataset_folder(
        "interventions.csv",
        "id;lieu\r\n1;Mairie\r\n",
        name="interventions",
        extra_metadata="acces: restreint\n",
    )
    metadata = restricted.parent / "metadata.yaml"
    metadata.write_text(
        metadata.read_text(encoding="utf-8").replace(
            "titre: Arbres d'alignement", f"titre: {SECRET_TITLE}"
        ),
        encoding="utf-8",
    )
    assert submit(restricted, metadata).status == "publiee"
    assert store.get_dataset("ecully-interventions").metadata["access"] == "restreint"
    with running_catalog(store) as base:
        yield base, store


def urls_for(slug: str, store) -> list[str]:
    urls = []
    for route in create_app(store).routes:
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        values = {**ROUTE_VALUES, "slug": slug, "item": slug}
        missing = set(re.findall(r"{(\w+)}", route.path)) - set(values)
        assert not missing, f"{route.path}: no test value for {missing}"
        urls.append(re.sub(r"{(\w+)}", lambda m, known=values: known[m.group(1)], route.path))
    return urls


def test_every_endpoint_hides_restricted_datasets_from_anonymous_callers(catalog):
    base, store = catalog
    checked = 0
    for path in urls_for("ecully-interventions", store):
        response = requests.get(base + path, timeout=10)
        body = response.text
        assert SECRET_TITLE not in body, path
        assert "ecully-interventions" not in body or response.status_code == 404, path
        if "{slug}" in path or "ecully-interventions" in path:
            assert response.status_code == 404, path
        checked += 1
    assert checked >= 13


def test_the_public_dataset_is_served_by_the_same_endpoints(catalog):
    base, store = catalog
    for path in urls_for("ecully-arbres", store):
        expected = 401 if path in DATA_TEAM_ONLY else 200
        assert requests.get(base + path, timeout=10).status_code == expected, path


def test_unknown_access_level_is_refused(submit, dataset_folder):
    data = dataset_folder("a.csv", "id\r\n1\r\n", name="a", extra_metadata="acces: secret\n")
    outcome = submit(data, data.parent / "metadata.yaml")
    assert "Accès « secret » inconnu" in outcome.summary()
