"""The portal in a real headless Chromium (Debian's), driven by Playwright."""

import http.server
import re
import shutil
import threading
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core.settings import PROJECT_ROOT

from conftest import deployment, running_catalog, write_submission

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SAMPLES = PROJECT_ROOT / "samples" / "inbox"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    with deployment(tmp_path_factory, "portail") as deployed:
        deployed.publish_sample(SAMPLES / "lyon" / "fontaines-eau-potable")
        deployed.publish_sample(SAMPLES / "ecully" / "bancs-publics")
        hostile = write_submission(
            deployed.root / "xss", "xss.csv", 'id;nom\r\n1;"<img src=x onerror=alert(1)>"\r\n'
        )
        deployed.publish(hostile)
        with running_catalog(deployed.store) as base:
            yield base


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "Debian's chromium is installed by scripts/bootstrap.sh"
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True, locale="fr-FR")
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == []


def test_search_then_open_a_dataset_and_read_its_table(catalog, page):
    page.goto(catalog)
    page.get_by_label("Rechercher un jeu de données").fill("fontaines")
    page.get_by_role("button", name="Rechercher").click()
    page.get_by_role("link", name="Fontaines d'eau potable").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Fontaines d'eau potable"
    page.get_by_role("tab", name="Données").click()
    rows = page.locator("#table-donnees tbody tr")
    rows.first.wait_for()
    assert rows.count() == 50
    page.get_by_role("button", name="arrondissement", exact=True).click()
    page.get_by_role("button", name="arrondissement", exact=True).click()  # descending
    # locator assertions wait in the page without evaluating strings (the CSP forbids eval)
    expect(rows.first.locator("td:nth-child(3)")).to_have_text("9")
    page.get_by_label("Filtrer la colonne").select_option("nom")
    page.get_by_label("contenant").fill("wallace")
    page.get_by_role("button", name="Filtrer").click()
    wallace = re.compile("wallace", re.IGNORECASE)
    expect(rows.locator("td:nth-child(2)", has_not_text=wallace)).to_have_count(0)
    expect(rows.locator("td:nth-child(2)", has_text=wallace).first).to_be_visible()
    assert 0 < rows.count() < 50


def test_map_shows_every_feature(catalog, page):
    page.goto(f"{catalog}/jeux-de-donnees/ecully-bancs-publics")
    page.get_by_role("tab", name="Carte").click()
    status = page.locator("#etat-carte")
    status.filter(has_text="objet").wait_for()
    assert status.inner_text() == "60 objet(s) sur la carte."
    assert page.locator("#carte path.leaflet-interactive").count() == 60


def test_download_a_file_from_the_page(catalog, page, tmp_path):
    page.goto(f"{catalog}/jeux-de-donnees/lyon-fontaines-eau-potable")
    page.get_by_role("tab", name="Téléchargements").click()
    with page.expect_download() as caught:
        page.get_by_role("link", name="CSV").click()
    path = tmp_path / "fontaines.csv"
    caught.value.save_as(path)
    assert path.read_text(encoding="utf-8").startswith('"id_fontaine","nom","arrondissement"')


def test_tabs_work_with_the_keyboard(catalog, page):
    page.goto(f"{catalog}/jeux-de-donnees/ecully-bancs-publics")
    page.get_by_role("tab", name="Informations").focus()
    page.keyboard.press("ArrowRight")
    assert page.get_by_role("tab", name="Données").get_attribute("aria-selected") == "true"
    page.keyboard.press("End")
    assert page.get_by_role("tab", name="API").get_attribute("aria-selected") == "true"
    assert page.locator("#panneau-api").is_visible()
    assert not page.locator("#panneau-infos").is_visible()


def test_data_cannot_inject_html(catalog, page):
    page.goto(f"{catalog}/jeux-de-donnees/ecully-xss")
    page.get_by_role("tab", name="Données").click()
    cell = page.locator("#table-donnees tbody td").nth(1)
    cell.wait_for()
    assert cell.inner_text() == "<img src=x onerror=alert(1)>"
    assert page.locator("#table-donnees img").count() == 0


def test_commune_page_and_embedded_component_in_another_site(catalog, page, tmp_path):
    page.goto(f"{catalog}/communes/ecully")
    assert page.get_by_role("heading", level=1).inner_text() == "Écully"
    snippet = page.locator("#extrait").inner_text()
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(
        f"<!doctype html><html lang='fr'><body><h1>Mairie d'Écully</h1>{snippet}</body></html>",
        encoding="utf-8",
    )
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(site))  # noqa
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        frame = page.frame_locator("iframe")
        frame.get_by_role("link", name="Bancs publics").wait_for()
        titles = frame.locator("li a").all_inner_texts()
        assert sorted(titles) == ["Arbres d'alignement", "Bancs publics"]
    finally:
        server.shutdown()


def test_pages_are_labelled_for_assistive_technologies(catalog, page):
    for path in ("/", "/communes", "/communes/lyon", "/jeux-de-donnees/lyon-fontaines-eau-potable"):
        page.goto(catalog + path)
        assert page.locator("html").get_attribute("lang") == "fr"
        assert page.locator("main").count() == 1 and page.locator("h1").count() == 1
        unlabelled = page.evaluate(
            "Array.from(document.querySelectorAll('input, select')).filter(e => "
            "!e.labels || e.labels.length === 0).length"
        )
        assert unlabelled == 0, path
        images_without_alt = page.locator("img:not([alt])").count()
        assert images_without_alt == 0, path
    page.screenshot(path=str(Path("/tmp") / "portail-jeu.png"), full_page=True)


def test_api_documentation_works_offline(catalog, page):
    """/docs shows every operation of the API from the catalog's own files: with every other
    host unreachable (as on a machine offline), the page is complete, and asked nothing else."""
    elsewhere: list[str] = []

    def only_the_catalog(route):
        if route.request.url.startswith(catalog):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_catalog)
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    page.goto(f"{catalog}/docs")
    expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
    assert page.locator(".opblock").count() >= 20  # the search, rows, downloads… operations
    expect(page.get_by_text("/api/datasets/{slug}/rows").first).to_be_visible()
    assert elsewhere == [] and violations == []
    page.goto(f"{catalog}/redoc")
    assert page.url == f"{catalog}/docs"
