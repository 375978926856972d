"""The portal in a real headless Chromium (Debian's), driven by Playwright."""

import contextlib
import http.server
import re
import shutil
import struct
import threading
import zlib
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from playwright.sync_api import expect

from catalog.web.app import create_app
from core.settings import PROJECT_ROOT

from conftest import deployment, running_catalog, serving, write_submission

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
def deployed(tmp_path_factory):
    with deployment(tmp_path_factory, "portail") as deployed:
        deployed.publish_sample(SAMPLES / "lyon" / "fontaines-eau-potable")
        deployed.publish_sample(SAMPLES / "ecully" / "bancs-publics")
        hostile = write_submission(
            deployed.root / "xss", "xss.csv", 'id;nom\r\n1;"<img src=x onerror=alert(1)>"\r\n'
        )
        deployed.publish(hostile)
        yield deployed


@pytest.fixture(scope="module")
def catalog(deployed):
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
    page.get_by_role("button", name="Arrondissement", exact=True).click()
    page.get_by_role("button", name="Arrondissement", exact=True).click()  # descending
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


# --- the data tab: pages, total, sort state (issue #19) -------------------------------------


def test_a_reuser_pages_through_the_rows_and_reads_the_total(catalog, page):
    page.goto(f"{catalog}/jeux-de-donnees/lyon-fontaines-eau-potable")
    page.get_by_role("tab", name="Données").click()
    rows = page.locator("#table-donnees tbody tr")
    status = page.locator("#etat-donnees")
    expect(status).to_have_text("1 à 50 sur 80 lignes.")
    expect(rows.first.locator("td").first).to_have_text("F0001")
    previous = page.get_by_role("button", name="Page précédente")
    following = page.get_by_role("button", name="Page suivante")
    expect(previous).to_be_disabled()
    following.click()
    expect(status).to_have_text("51 à 80 sur 80 lignes.")
    assert rows.count() == 30
    expect(rows.first.locator("td").first).to_have_text("F0051")
    expect(rows.last.locator("td").first).to_have_text("F0080")
    expect(following).to_be_disabled()
    expect(previous).to_be_focused()  # the key pressed is gone: the other one has the focus
    page.keyboard.press("Enter")
    expect(status).to_have_text("1 à 50 sur 80 lignes.")
    expect(rows.first.locator("td").first).to_have_text("F0001")


def test_headers_show_the_schema_titles_and_the_sort_state(catalog, page):
    page.goto(f"{catalog}/jeux-de-donnees/lyon-fontaines-eau-potable")
    page.get_by_role("tab", name="Données").click()
    page.locator("#table-donnees tbody tr").first.wait_for()
    header = page.get_by_role("columnheader", name="Identifiant de la fontaine")
    assert header.locator("code").inner_text() == "id_fontaine"  # the technical name
    district = page.get_by_role("columnheader", name="Arrondissement")
    assert district.get_attribute("aria-sort") is None
    page.get_by_role("button", name="Arrondissement", exact=True).click()
    expect(district).to_have_attribute("aria-sort", "ascending")
    first = page.locator("#table-donnees tbody tr").first
    expect(first.locator("td:nth-child(3)")).to_have_text("1")
    page.get_by_role("button", name="Arrondissement", exact=True).click()
    expect(district).to_have_attribute("aria-sort", "descending")
    page.get_by_role("button", name="Nom", exact=True).click()
    expect(page.get_by_role("columnheader", name="Nom")).to_have_attribute("aria-sort", "ascending")
    assert district.get_attribute("aria-sort") is None
    assert page.locator("#table-donnees th[aria-sort]").count() == 1
    expect(page.locator("#etat-donnees")).to_have_text("1 à 50 sur 80 lignes.")
    assert page.get_by_label("Filtrer la colonne").locator("option").first.inner_text() == (
        "Identifiant de la fontaine"
    )


# --- the map: background, outlines, scale, keyboard (issue #19) ------------------------------


def feature_place(page) -> tuple[float, float]:
    """Where the first feature is drawn in the map's frame, once the map stopped moving
    (its views are animated)."""
    last = None
    for _ in range(50):
        feature = page.locator("#carte path[role=button]").first.bounding_box()
        frame = page.locator("#carte").bounding_box()
        place = (round(feature["x"] - frame["x"]), round(feature["y"] - frame["y"]))
        if place == last:
            return place
        last = place
        page.wait_for_timeout(150)
    raise AssertionError("la carte ne s'arrête pas")


def test_a_reuser_pans_the_map_with_the_keyboard(catalog, page):
    page.goto(f"{catalog}/jeux-de-donnees/lyon-fontaines-eau-potable")
    page.get_by_role("tab", name="Informations").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")  # Carte, after Informations and Données
    expect(page.get_by_role("tab", name="Carte")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#etat-carte")).to_have_text("80 objet(s) sur la carte.")
    page.keyboard.press("Tab")
    expect(page.get_by_role("region", name="Carte des données")).to_be_focused()
    before = feature_place(page)
    page.keyboard.press("ArrowRight")  # the view goes east: the features go left
    after = feature_place(page)
    assert after[0] < before[0] - 40 and after[1] == before[1]
    scale = page.locator(".leaflet-control-scale-line")
    shown = scale.inner_text()
    assert re.fullmatch(r"\d+ k?m", shown)
    page.keyboard.press("-")
    expect(scale).not_to_have_text(shown)
    page.keyboard.press("Tab")  # the first feature
    feature = page.locator("#carte path[role=button]").first
    expect(feature).to_be_focused()
    assert feature.get_attribute("aria-label").startswith("Objet 1 : Borne-fontaine Bayard")
    page.keyboard.press("Enter")
    card = page.locator(".leaflet-popup-content")
    expect(card).to_be_focused()
    terms = card.locator("dt").all_inner_texts()
    assert terms[:2] == ["Identifiant de la fontaine", "Nom"] and "id_fontaine" not in terms
    values = card.locator("dd").all_inner_texts()
    assert values[:2] == ["F0001", "Borne-fontaine Bayard, quai de Saône"]
    assert values[terms.index("En service")] == "oui"  # French values
    page.keyboard.press("Escape")
    expect(card).to_have_count(0)
    expect(feature).to_be_focused()
    before = feature_place(page)
    page.keyboard.press("ArrowDown")  # from a feature too: the view goes south
    assert feature_place(page)[1] < before[1] - 40
    page.keyboard.press("Tab")
    expect(page.locator("#carte path[role=button]").nth(1)).to_be_focused()


COMMUNES = 58  # the Métropole de Lyon since Oullins-Pierre-Bénite (2024)


def test_the_communes_outlines_are_drawn_when_no_background_is_configured(catalog, page):
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    response = page.goto(f"{catalog}/jeux-de-donnees/ecully-bancs-publics")
    assert "http:" not in response.headers["content-security-policy"]  # no tile server
    page.get_by_role("tab", name="Carte").click()
    outlines = page.locator("#carte .leaflet-contours-pane path")
    expect(outlines).to_have_count(COMMUNES)
    assert page.locator("#carte .leaflet-contours-pane path.leaflet-interactive").count() == 0
    expect(page.locator(".leaflet-control-attribution")).to_contain_text("IGN, ADMIN EXPRESS")
    assert page.locator(".leaflet-tile").count() == 0
    assert [u for u in asked if not u.startswith(catalog)] == []  # nothing from elsewhere
    expect(page.locator("#etat-fond")).to_have_text("")


def png_tile() -> bytes:
    """A real 256×256 PNG, light green: what a tile server answers."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0)  # 8-bit RGB
    pixels = b"".join(b"\x00" + b"\xd9\xf2\xd0" * 256 for _ in range(256))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(pixels))
        + chunk(b"IEND", b"")
    )


class TileServer:
    """A tile server on a loopback port: /tuiles/{z}/{x}/{y}.png and WMS GetMap requests
    (any path), or 503 when switched off."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.available = True
        tile, server = png_tile(), self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.asked.append(self.path)
                ok = server.available and (
                    re.fullmatch(r"/tuiles/\d+/\d+/\d+\.png", self.path)
                    or "request=GetMap" in self.path
                )
                self.send_response(200 if ok else 503)
                self.send_header("Content-Type", "image/png" if ok else "text/plain")
                body = tile if ok else b"indisponible"
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(ConnectionError):  # the page moved on meanwhile
                    self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def tiles():
    server = TileServer()
    yield server
    server.httpd.shutdown()


@pytest.fixture(scope="module")
def catalog_with_background(deployed, tiles):
    """The same catalog, its map's background configured to the local tile server."""
    with pytest.MonkeyPatch.context() as env:  # read when the application is made
        env.setenv("OPENDATA_MAP_BACKGROUND", tiles.origin + "/tuiles/{z}/{x}/{y}.png")
        env.setenv("OPENDATA_MAP_BACKGROUND_ATTRIBUTION", "Plan : <b>Métropole</b> de Lyon")
        app = create_app(deployed.store, services=[])
    with serving(app) as base:
        yield base


@pytest.fixture(scope="module")
def catalog_with_wms(deployed, tiles):
    """The same catalog, its map's background a WMS layer of the local server."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OPENDATA_MAP_BACKGROUND", tiles.origin + "/wms/grandlyon")
        env.setenv("OPENDATA_MAP_BACKGROUND_LAYER", "plan_guide")
        app = create_app(deployed.store, services=[])
    with serving(app) as base:
        yield base


def test_a_wms_background_is_asked_for_its_layer_in_the_map_s_projection(
    catalog_with_wms, tiles, page
):
    tiles.available, tiles.asked[:] = True, []
    page.goto(f"{catalog_with_wms}/jeux-de-donnees/ecully-bancs-publics")
    page.get_by_role("tab", name="Carte").click()
    expect(page.locator("#carte img.leaflet-tile-loaded").first).to_be_visible()
    asked = [parse_qs(urlsplit(path).query) for path in tiles.asked]
    assert asked and all(urlsplit(p).path == "/wms/grandlyon" for p in tiles.asked)
    assert {(q["request"][0], q["layers"][0], q["crs"][0]) for q in asked} == {
        ("GetMap", "plan_guide", "EPSG:3857")
    }
    assert page.locator("#carte .leaflet-contours-pane path").count() == 0


def test_a_configured_background_is_drawn_from_its_tile_server(
    catalog_with_background, tiles, page
):
    tiles.available, tiles.asked[:] = True, []
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    response = page.goto(f"{catalog_with_background}/jeux-de-donnees/ecully-bancs-publics")
    assert tiles.origin in response.headers["content-security-policy"]  # img-src, when set
    page.get_by_role("tab", name="Carte").click()
    loaded = page.locator("#carte img.leaflet-tile-loaded")
    expect(loaded.first).to_be_visible()
    assert all(re.fullmatch(r"/tuiles/1[0-9]/\d+/\d+\.png", p) for p in tiles.asked), tiles.asked
    attribution = page.locator(".leaflet-control-attribution")
    expect(attribution).to_contain_text("Plan : <b>Métropole</b> de Lyon")  # text, not markup
    assert attribution.locator("b").count() == 0
    expect(page.locator("#etat-carte")).to_have_text("60 objet(s) sur la carte.")
    assert page.locator("#carte .leaflet-contours-pane path").count() == 0
    expect(page.locator("#etat-fond")).to_have_text("")
    assert violations == []


def test_an_unreachable_background_falls_back_to_the_outlines(catalog_with_background, tiles, page):
    tiles.available = False
    try:
        page.goto(f"{catalog_with_background}/jeux-de-donnees/ecully-bancs-publics")
        page.get_by_role("tab", name="Carte").click()
        expect(page.locator("#etat-fond")).to_have_text(
            "Le fond de plan ne répond pas : les contours des communes sont affichés à la place."
        )
        expect(page.locator("#carte .leaflet-contours-pane path")).to_have_count(COMMUNES)
        assert page.locator("#carte img.leaflet-tile").count() == 0
        expect(page.locator("#etat-carte")).to_have_text("60 objet(s) sur la carte.")
    finally:
        tiles.available = True


def test_the_catalog_refuses_a_background_it_could_not_use(monkeypatch, deployed):
    monkeypatch.setenv("OPENDATA_MAP_BACKGROUND", "https://tuiles.exemple.fr/plan")
    with pytest.raises(ValueError, match=r"\{z\}, \{x\} et \{y\}"):
        create_app(deployed.store, services=[])


def test_no_page_asks_for_a_file_the_catalog_does_not_have(catalog, page):
    """Every request a page makes (stylesheets, scripts, icon, data) answers: no 404 in the
    console of a reuser's browser."""
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    for path in ("/", "/jeux-de-donnees/ecully-bancs-publics", "/ogc", "/ogc/collections"):
        page.goto(catalog + path)
        page.wait_for_load_state("networkidle")
        icon = page.locator('link[rel="icon"]').get_attribute("href")
        assert icon and page.request.get(urljoin(page.url, icon)).status == 200, path
    assert failed == []


def test_a_tab_opened_while_its_script_still_loads_shows_its_content(catalog, page):
    """On a slow connection a reuser may open « Données » or « Carte » before the table's
    or the map's script has arrived: the content still loads once it arrives."""

    def slowly(route):
        page.wait_for_timeout(1500)
        route.continue_()

    # One script held back per visit: a handler still holding the other script when the
    # test leaves the page would answer for a page that is gone, and Playwright's handlers
    # run one at a time, so the next page's script would never be let through.
    table, map_ = re.compile(r"/static/tableau\.js$"), re.compile(r"/static/carte\.js$")
    page.route(table, slowly)
    page.goto(f"{catalog}/jeux-de-donnees/ecully-bancs-publics", wait_until="commit")
    page.get_by_role("tab", name="Données").click()
    expect(page.locator("#table-donnees tbody tr").first).to_be_visible(timeout=20_000)
    page.unroute(table)
    page.route(map_, slowly)
    page.goto(f"{catalog}/jeux-de-donnees/ecully-bancs-publics", wait_until="commit")
    page.get_by_role("tab", name="Carte").click()
    # the script arrives 1.5 s late, then the map loads its features: margin for a loaded
    # machine
    expect(page.locator("#etat-carte")).to_have_text("60 objet(s) sur la carte.", timeout=20_000)
