"""French dates everywhere, French error pages (issue #19).

Over HTTP, against the samples published through the pipeline: no page of the portal
shows an ISO 8601 date or a timestamp (the JSON APIs keep ISO 8601); a browser that asks
for a page that does not exist, with a wrong method, or meets an unexpected error gets a
French page in the portal's look, while the APIs keep answering JSON.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from test_dates import VisibleText

from catalog import accounts
from catalog.web.app import create_app
from core import clock
from core.settings import PROJECT_ROOT

from conftest import Deployment, deployment

SAMPLES = PROJECT_ROOT / "samples" / "inbox"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
# An ISO 8601 date or instant, a clock time, or a Unix timestamp, as a reader would see them.
RAW_DATES = re.compile(r"\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2}(:\d{2})?(?!\d)|\b1[5-9]\d{8}\b")
SHOWN_ATTRIBUTES = ("title", "alt", "aria-label", "placeholder", "value")


class ShownAttributes(VisibleText):
    """The attributes a reader sees or hears (titles, alternatives, labels, values)."""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts += [v for k, v in attrs if k in SHOWN_ATTRIBUTES and v]

    def handle_endtag(self, tag: str) -> None:
        pass

    def handle_data(self, data: str) -> None:
        pass  # the text is VisibleText's


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployment(tmp_path_factory, "dates-francaises") as deployed:
        for folder in sorted(p for p in SAMPLES.glob("*/*") if p.is_dir()):
            deployed.publish_sample(folder)
        yield deployed


@pytest.fixture(scope="module")
def http(samples: Deployment) -> Iterator[TestClient]:
    with TestClient(create_app(samples.store, services=[])) as client:
        yield client


def portal_pages(http: TestClient, samples: Deployment) -> dict[str, str]:
    """Every page of the portal for the published samples, the data team's included."""
    store = samples.store
    communes = sorted({d.producer for d in store.list_datasets()})
    paths = ["/", "/communes", "/?q=fontaines", "/nulle-part", "/jeux-de-donnees/inconnu"]
    paths += [f"/communes/{c}" for c in communes] + [f"/integration/{c}" for c in communes]
    paths += [f"/jeux-de-donnees/{d.slug}" for d in store.list_datasets()]
    team = accounts.create_token(store, "equipe-data", "data@grandlyon.com").token
    pages = {p: http.get(p, headers=BROWSER).text for p in paths}
    sante = http.get("/equipe-data/sante", headers={**BROWSER, "Authorization": f"Bearer {team}"})
    assert sante.status_code == 200, sante.text
    pages["/equipe-data/sante"] = sante.text
    return pages


def announce_change(http: TestClient, samples: Deployment) -> None:
    """A pending structure change on the benches: its dates show on their page."""
    token = accounts.create_token(samples.store, "producteur", "a@ecully.fr", "ecully").token
    slug = "ecully-bancs-publics"
    schema = samples.store.structure_versions(slug)[0].structure["schema"]
    renamed = [
        {**f, "name": "etat_constate"} if f["name"] == "etat" else f for f in schema["fields"]
    ]
    body: dict[str, Any] = {
        "schema": {**schema, "fields": renamed},
        "date_effet": (clock.today() + timedelta(days=40)).isoformat(),
        "description": "La colonne « etat » devient « etat_constate ».",
        "correspondance": {"etat": {"colonne": "etat_constate"}},
    }
    answer = http.post(
        f"/api/datasets/{slug}/avis-changement",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 201, answer.text


def test_no_page_of_the_portal_shows_an_iso_date_or_a_timestamp(http, samples) -> None:
    announce_change(http, samples)
    pages = portal_pages(http, samples)
    assert len(pages) >= 15
    for path, html in pages.items():
        shown = VisibleText.of(html) + " " + ShownAttributes.of(html)
        raw = [m.group(0) for m in RAW_DATES.finditer(shown)]
        assert raw == [], (
            f"{path} montre des dates brutes : {raw} ; "
            + shown[max(0, shown.find(raw[0]) - 200) :][:300]
        )
    # the same dates are in French words, and the APIs keep ISO 8601
    fountains = VisibleText.of(pages["/jeux-de-donnees/lyon-fontaines-eau-potable"])
    assert "Données mises à jour par le producteur le 1er octobre 2026" in fountains
    assert "Changement de structure le" in VisibleText.of(
        pages["/jeux-de-donnees/ecully-bancs-publics"]
    )
    detail = http.get("/api/datasets/lyon-fontaines-eau-potable").json()
    assert detail["date_mise_a_jour"] == "2026-10-01"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", detail["derniere_publication"])


def test_the_sample_of_the_issue_monthly_data_of_1_october_is_late(http) -> None:
    """Lyon's fountains (monthly, data updated on 1 October 2026), published after
    1 November 2026: late, on their page and in the API."""
    detail = http.get("/api/datasets/lyon-fontaines-eau-potable").json()
    if date.fromisoformat(detail["dates"]["publiees_sur_la_plateforme_le"]) <= date(2026, 11, 1):
        pytest.skip("published before 1 November 2026: not yet late")
    assert detail["prochaine_mise_a_jour"] == "2026-11-01"
    assert detail["statut_mise_a_jour"] == "en-retard"
    page = VisibleText.of(http.get("/jeux-de-donnees/lyon-fontaines-eau-potable").text)
    assert "au plus tard le 1er novembre 2026 (mensuelle" in page and "(en retard)" in page


def test_a_browser_gets_french_error_pages_and_the_apis_keep_json(http) -> None:
    missing = http.get("/nulle-part", headers=BROWSER)
    dataset = http.get("/jeux-de-donnees/inconnu", headers=BROWSER)
    wrong_method = http.post("/communes", headers=BROWSER)
    api = http.get("/api/datasets/inconnu", headers=BROWSER)  # an API, even for a browser
    api_route = http.get("/api/nulle-part")
    client = http.get("/nulle-part")  # an HTTP client (Accept: */*)
    for page in (missing, dataset, wrong_method):
        assert page.headers["content-type"].startswith("text/html"), page.text
        assert '<html lang="fr">' in page.text and 'href="/static/portail.css"' in page.text
        assert "Rechercher dans le catalogue" in page.text
    assert missing.status_code == 404 and "Page introuvable" in missing.text
    assert "L'adresse « /nulle-part » ne correspond à aucune page" in VisibleText.of(missing.text)
    assert dataset.status_code == 404
    assert "Jeu de données « inconnu » introuvable." in VisibleText.of(dataset.text)
    assert wrong_method.status_code == 405 and "GET" in wrong_method.headers["allow"]
    assert "ne répond pas à la méthode POST" in VisibleText.of(wrong_method.text)
    assert api.status_code == 404
    assert api.json() == {"detail": "Jeu de données « inconnu » introuvable."}
    assert (
        api_route.status_code == 404 and "ne correspond à aucune page" in api_route.json()["detail"]
    )
    assert client.status_code == 404 and client.headers["content-type"] == "application/json"


def test_an_unexpected_error_is_a_french_page_for_a_browser_and_json_for_an_api(
    tmp_path_factory,
) -> None:
    """A real failure: the store's tables are gone under the running catalog."""
    with deployment(tmp_path_factory, "erreur-interne") as deployed:
        deployed.publish_sample(SAMPLES / "lyon" / "fontaines-eau-potable")
        app = create_app(deployed.store, services=[])
        with TestClient(app, raise_server_exceptions=False) as client:
            with deployed.store.engine.begin() as conn:
                conn.execute(sa.text("DROP TABLE releases"))
            page = client.get("/", headers=BROWSER)
            api = client.get("/api/datasets")
    assert page.status_code == 500 and page.headers["content-type"].startswith("text/html")
    assert "Erreur interne" in page.text and '<html lang="fr">' in page.text
    assert api.status_code == 500 and "Réessayez" in api.json()["detail"]
