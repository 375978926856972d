"""A restricted dataset is never listed, described, downloaded or served anonymously.

The test walks every route of the application, so an endpoint added later is covered
too (or the test tells which route it cannot fill in). A restricted dataset's answers are
those of a dataset that does not exist. `tests/test_oidc.py` walks the same routes with
expired, forged and otherwise invalid tokens, and with valid ones.
"""

import re

import pytest
import requests
from fastapi.routing import APIRoute

from catalog.web.app import create_app

from conftest import running_catalog

SECRET_TITLE = "Registre confidentiel des interventions"
AGENTS_TITLE = "Annuaire des astreintes des agents"
RESTRICTED = "ecully-interventions"
AGENTS_ONLY = "ecully-astreintes"
MISSING = "ecully-inexistant"
ROUTE_VALUES = {
    "version": "1",
    "fmt": "csv",
    "extension": "ttl",
    "commune": "ecully",
    "collection": "catalogue",  # OGC API Records: the dataset's record is an item
    "item": "{slug}",
    "depot": "depot-inconnu",
    "fournisseur": "proconnect",
    "fichier": "swagger-ui.css",  # the API documentation's packaged files
}
# Routes that answer 401 without credentials, whatever the dataset: the data team's views,
# accounts, the producers' APIs and usage statistics, the communes' deposits pages.
CREDENTIALS_ONLY = re.compile(
    r"^/(api/)?equipe-data/|^/api/compte$|^/api/producteurs/"
    r"|^/api/communes/[^/]+/(statistiques$|depots/)|^/communes/[^/]+/depots"
)
# Of those, the pages: once the portal's sign-in is configured, they send a browser without
# a session to it (303) rather than answer 401 (`catalog.web.people`).
SIGN_IN_PAGES = re.compile(r"^/equipe-data/|^/communes/[^/]+/depots")
TIMESTAMPS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")


def publish_small(submit, dataset_folder, name: str, title: str, access: str) -> None:
    data = dataset_folder(
        f"{name}.csv", "id;lieu\r\n1;Mairie\r\n", name=name, extra_metadata=f"acces: {access}\n"
    )
    metadata = data.parent / "metadata.yaml"
    metadata.write_text(
        metadata.read_text(encoding="utf-8").replace(
            "titre: Arbres d'alignement", f"titre: {title}"
        ),
        encoding="utf-8",
    )
    assert submit(data, metadata).status == "publiee"


@pytest.fixture
def catalog(submit, dataset_folder, store, monkeypatch):
    public = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(public, public.parent / "metadata.yaml").status == "publiee"
    publish_small(submit, dataset_folder, "interventions", SECRET_TITLE, "restreint")
    publish_small(submit, dataset_folder, "astreintes", AGENTS_TITLE, "agents")
    assert store.get_dataset(RESTRICTED).metadata["access"] == "restreint"
    assert store.get_dataset(AGENTS_ONLY).metadata["access"] == "agents"
    with running_catalog(store) as base:
        yield base, store


def urls_for(slug: str, store) -> list[str]:
    """Every GET route of the application, filled in for `slug`."""
    urls = []
    for route in create_app(store).routes:
        if not isinstance(route, APIRoute) or "GET" not in route.methods:
            continue
        values = {**ROUTE_VALUES, "slug": slug, "item": slug}
        missing = set(re.findall(r"{(\w+)}", route.path)) - set(values)
        assert not missing, f"{route.path}: no test value for {missing}"
        urls.append(re.sub(r"{(\w+)}", lambda m, known=values: known[m.group(1)], route.path))
    return urls


def normalised(response: requests.Response, slug: str = "") -> tuple[int, str]:
    """Status and body, with the slug (if any) and the instants of the answer taken out."""
    body = response.text.replace(slug, "<jeu>") if slug else response.text
    return response.status_code, TIMESTAMPS.sub("<instant>", body)


def answers(base: str, path: str, slug: str, headers: dict[str, str] | None = None):
    response = requests.get(base + path, headers=headers, timeout=30, allow_redirects=False)
    return normalised(response, slug)


def assert_hidden(base: str, store, headers: dict[str, str] | None = None) -> int:
    """Every route answers for the restricted datasets exactly what it answers for a
    dataset that does not exist, and names neither of them."""
    checked = 0
    for slug, title in ((RESTRICTED, SECRET_TITLE), (AGENTS_ONLY, AGENTS_TITLE)):
        for path, missing_path in zip(urls_for(slug, store), urls_for(MISSING, store), strict=True):
            response = requests.get(base + path, headers=headers, timeout=30, allow_redirects=False)
            assert title not in response.text, path
            assert slug not in response.text or response.status_code == 404, path
            if slug in path:
                assert response.status_code in (401, 404), path
                expected = answers(base, missing_path, MISSING, headers)
                assert normalised(response, slug) == expected, path
            checked += 1
    return checked


def test_every_endpoint_hides_restricted_datasets_from_anonymous_callers(catalog):
    base, store = catalog
    assert assert_hidden(base, store) >= 2 * 30


def test_the_public_dataset_is_served_by_the_same_endpoints(catalog):
    base, store = catalog
    for path in urls_for("ecully-arbres", store):
        expected = 401 if CREDENTIALS_ONLY.search(path) else 200
        assert requests.get(base + path, timeout=10).status_code == expected, path


def test_unknown_access_level_is_refused(submit, dataset_folder):
    data = dataset_folder("a.csv", "id\r\n1\r\n", name="a", extra_metadata="acces: secret\n")
    outcome = submit(data, data.parent / "metadata.yaml")
    assert "Accès « secret » inconnu" in outcome.summary()
    assert "« agents »" in outcome.summary()  # the accepted levels are listed
