"""The README's « Démarrer » in a real browser: what a newcomer opens after the demo.

Every sample of `samples/inbox/` is published, as `scripts/demo.sh` publishes them, then
each page the README's guides send a user to is opened in Debian's Chromium and checked for
what the README says it shows. With OPENDATA_CAPTURES set (`scripts/captures.sh`), each
page is also saved as the screenshot the README shows (`docs/captures/`).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import requests
from captures import VIEWPORT, capture
from playwright.sync_api import expect

from catalog import accounts
from core.settings import PROJECT_ROOT

from conftest import deployment, running_catalog

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
SAMPLES = sorted(p for p in (PROJECT_ROOT / "samples" / "inbox").glob("*/*") if p.is_dir())


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """The demo's catalog: every sample published; its base URL and a data-team token."""
    with deployment(tmp_path_factory, "visite") as deployed:
        for folder in SAMPLES:
            deployed.publish_sample(folder)
        team = accounts.create_token(deployed.store, "equipe-data", "data@grandlyon.example")
        with running_catalog(deployed.store) as base:
            yield base, team.token


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "Debian's chromium is installed by scripts/bootstrap.sh"
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def open_page(browser, headers: dict[str, str] | None = None):
    context = browser.new_context(viewport=VIEWPORT, locale="fr-FR", extra_http_headers=headers)
    return context, context.new_page()


@pytest.fixture
def page(browser):
    context, opened = open_page(browser)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == []


def test_the_home_page_lists_every_sample_and_its_commune(catalog, page):
    base, _ = catalog
    page.goto(base)
    expect(page.get_by_role("heading", name=f"{len(SAMPLES)} jeu(x) de données")).to_be_visible()
    communes = page.get_by_role("complementary", name="Affiner")
    for name in ("Écully", "Lyon", "Vaulx-en-Velin"):
        expect(communes.get_by_role("link", name=name)).to_be_visible()
    expect(page.get_by_role("link", name="Fontaines d'eau potable")).to_be_visible()
    capture(page, "accueil")


def test_a_dataset_page_shows_its_table(catalog, page):
    base, _ = catalog
    page.goto(f"{base}/jeux-de-donnees/lyon-fontaines-eau-potable")
    page.get_by_role("tab", name="Données").click()
    rows = page.locator("#table-donnees tbody tr")
    rows.first.wait_for()
    assert rows.count() == 50
    capture(page, "jeu-donnees")


def test_a_map_dataset_shows_its_features(catalog, page):
    base, _ = catalog
    page.goto(f"{base}/jeux-de-donnees/ecully-bancs-publics")
    page.get_by_role("tab", name="Carte").click()
    status = page.locator("#etat-carte")
    status.filter(has_text="objet").wait_for()
    assert status.inner_text() == "60 objet(s) sur la carte."
    capture(page, "jeu-carte")


def test_a_map_dataset_tells_a_gis_user_its_layer_and_addresses(catalog, page):
    base, _ = catalog
    page.goto(f"{base}/jeux-de-donnees/ecully-bancs-publics")
    page.get_by_role("tab", name="Utiliser dans un SIG").click()
    panel = page.locator("#panneau-sig")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("ecully-bancs-publics")
    expect(panel.get_by_role("button", name=re.compile("Copier")).first).to_be_visible()
    capture(page, "jeu-sig")


def test_the_api_documentation_lists_the_operations(catalog, page):
    base, _ = catalog
    page.goto(f"{base}/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
    expect(page.get_by_text("/api/communes/{commune}/depots").first).to_be_visible()
    capture(page, "api-docs")


def test_the_commune_page_shows_its_datasets(catalog, page):
    base, _ = catalog
    page.goto(f"{base}/communes/ecully")
    assert page.get_by_role("heading", level=1).inner_text() == "Écully"
    for title in ("Bancs publics", "Équipements sportifs"):
        expect(page.get_by_role("link", name=title).first).to_be_visible()
    capture(page, "commune")


def test_the_health_page_is_the_data_team_s_only(catalog, browser):
    base, team = catalog
    assert requests.get(f"{base}/equipe-data/sante", timeout=30).status_code == 401
    context, page = open_page(browser, {"Authorization": f"Bearer {team}"})
    try:
        page.goto(f"{base}/equipe-data/sante")
        expect(page.get_by_role("heading", level=1)).to_have_text("Santé des jeux de données")
        expect(page.get_by_text(f"{len(SAMPLES)} jeu(x) de données")).to_be_visible()
        capture(page, "sante")
    finally:
        context.close()
