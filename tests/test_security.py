"""Hostile input at the edge: security headers, output escaping, rate limits (issue #9).

A dataset whose metadata, column names and values are XSS payloads is published through
the real pipeline; every page, feed and export that shows it is read back (parsed as a
browser or a harvester would) and opened in Debian's Chromium, where no injected script
may run and our own pages may raise no Content-Security-Policy violation. The rate limiter
is exercised against the real catalog application, in memory and in the machine's Redis.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.server
import json
import logging
import shutil
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import rdflib
import redis
import requests
from fastapi import FastAPI
from fastapi.routing import APIRoute
from oidc_provider import OidcProvider

from catalog import clients, security
from catalog.store import CatalogStore
from catalog.web.app import create_app
from catalog.web.registry import limited_prefixes
from core.settings import PROJECT_ROOT

from conftest import Deployment, deployment, redis_database, serving

SAMPLES = PROJECT_ROOT / "samples" / "inbox"
SLUG = "ecully-piege"
TITLE = "Piège <script>alert('titre')</script>"
DESCRIPTION = "\"><img src=x onerror=alert('description')> voir javascript:alert('lien')"
KEYWORDS = ["<script>alert('mot')</script>", "javascript:alert('mot-lien')"]
CONTACT_NAME = "<script>alert('contact')</script>"
CONTACT_EMAIL = "\"><img/src=x/onerror=alert('courriel')>@exemple.fr"
COLUMN = "<script>alert('colonne')</script>"
VALUES = [
    "<img src=x onerror=alert('cellule')>",
    "</script><script>alert('sortie')</script>",
    "\"><svg onload=alert('svg')>",
]
LINK_VALUE = "javascript:alert('url')"
MARKER = "alert("  # in every payload: no script may carry it, no page may run it
# a database per xdist worker: the tests empty it of the limiter's keys after them
REDIS_URL = f"redis://127.0.0.1:6379/{redis_database(0)}"


def hostile_metadata() -> str:
    """YAML of the hostile dataset's metadata (JSON is YAML: every payload quoted)."""
    fields = {
        "titre": TITLE,
        "description": DESCRIPTION,
        "licence": "etalab-2.0",
        "frequence": "annuelle",
        "modalites_livraison": "<script>alert('livraison')</script>",
        "date_mise_a_jour": "2026-10-01",
        "mots_cles": KEYWORDS,
        "theme": "ENVI",
        "contact": {"nom": CONTACT_NAME, "email": CONTACT_EMAIL},
        "systeme_coordonnees": "EPSG:4326",
    }
    return "\n".join(
        f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in fields.items()
    )


def publish_hostile(deployed: Deployment) -> None:
    folder = deployed.root / "piege" / "ecully" / "piege"
    folder.mkdir(parents=True)
    features = [
        {
            "type": "Feature",
            "properties": {"id": number, COLUMN: value, "lien": LINK_VALUE},
            "geometry": {"type": "Point", "coordinates": [4.77 + number / 200, 45.77]},
        }
        for number, value in enumerate(VALUES, start=1)
    ]
    data = folder / "piege.geojson"
    data.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")
    (folder / "metadata.yaml").write_text(hostile_metadata() + "\n", encoding="utf-8")
    deployed.publish(data, producer="ecully")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with deployment(tmp_path_factory, "securite") as deployed:
        deployed.publish_sample(SAMPLES / "ecully" / "bancs-publics")
        deployed.publish_sample(SAMPLES / "lyon" / "fontaines-eau-potable")
        publish_hostile(deployed)
        yield deployed


@pytest.fixture(scope="module")
def served(published: Deployment) -> Iterator[tuple[str, FastAPI]]:
    """The catalog (every OGC service too), with the environment's default security."""
    app = create_app(published.store)
    with serving(app) as base:
        wait_for_layer(base, SLUG)
        yield base, app


def wait_for_layer(base: str, slug: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if requests.get(f"{base}/ogc/collections/{slug}?f=json", timeout=30).status_code == 200:
            return
        time.sleep(0.5)
    raise AssertionError(f"{slug} never became an OGC API collection")


# --- reading pages as a browser would ----------------------------------------------------------


class Markup(HTMLParser):
    """The elements a browser builds from a page: scripts, event handlers, URLs, text."""

    URL_ATTRIBUTES = frozenset({"href", "src", "action", "formaction", "data", "xlink:href"})

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.handlers: list[tuple[str, str, str]] = []
        self.urls: list[str] = []
        self.styles: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []
        self._script: tuple[dict[str, str | None], list[str]] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.elements.append((tag, attributes))
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append((tag, name, value or ""))
            if name in self.URL_ATTRIBUTES:
                self.urls.append((value or "").strip().lower())
            if name == "style":
                self.styles.append(value or "")
        if tag == "script":
            self._script = (attributes, [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            self.scripts.append((self._script[0], "".join(self._script[1])))
            self._script = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script[1].append(data)
        else:
            self.texts.append(data)

    @property
    def inline_scripts(self) -> list[str]:
        """The inline scripts a browser runs (a data block is never run)."""
        return [
            body
            for attributes, body in self.scripts
            if "src" not in attributes and not data_block(attributes)
        ]

    @property
    def data_blocks(self) -> list[str]:
        """Scripts of a data type (the schema.org JSON-LD of a dataset's page)."""
        return [body for attributes, body in self.scripts if data_block(attributes)]

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.texts).split())


def csp(response: requests.Response) -> dict[str, list[str]]:
    header = response.headers.get("content-security-policy", "")
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {parts[0]: parts[1:] for parts in directives}


def sha256_source(script: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"


# the types of a script browsers run; any other makes it a data block (HTML, §4.12.1)
RUNNABLE_TYPES = {"", "module", "text/javascript", "application/javascript", "text/ecmascript"}


def data_block(attributes: dict[str, str | None]) -> bool:
    return (attributes.get("type") or "").strip().lower() not in RUNNABLE_TYPES


def assert_inert(html: str, allowed_scripts: list[str]) -> Markup:
    """No payload became markup: no handler, no javascript: URL, no element from the data,
    and no script the policy lets run carries one."""
    page = Markup(html)
    assert [h for h in page.handlers if MARKER in h[2]] == []
    assert [u for u in page.urls if u.startswith("javascript:")] == []
    assert [e for e in page.elements if e[0] == "img" and e[1].get("src") == "x"] == []
    assert [e for e in page.elements if e[0] == "svg" and "onload" in e[1]] == []
    runnable = [s for s in page.inline_scripts if sha256_source(s) in allowed_scripts]
    assert [s for s in runnable if MARKER in s] == []
    return page


# --- headers -----------------------------------------------------------------------------------


PORTAL_PAGES = ["/", "/communes", "/communes/ecully", f"/jeux-de-donnees/{SLUG}"]


def test_portal_pages_have_a_strict_policy(served: tuple[str, FastAPI]) -> None:
    base, _app = served
    for path in PORTAL_PAGES:
        response = requests.get(base + path, timeout=30)
        assert response.status_code == 200, path
        policy = csp(response)
        assert policy["script-src"] == ["'self'"], path
        assert policy["style-src"] == ["'self'"], path
        assert policy["default-src"] == ["'none'"] and policy["object-src"] == ["'none'"]
        assert policy["base-uri"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "camera=()" in response.headers["permissions-policy"]
        assert "geolocation=()" in response.headers["permissions-policy"]
        page = Markup(response.text)
        assert page.inline_scripts == [] and page.styles == [] and page.handlers == [], path
        assert [b for b in page.data_blocks if "<" in b] == [], path  # nothing can end one


def test_the_embeddable_component_may_be_framed_by_any_site(served: tuple[str, FastAPI]) -> None:
    base, _app = served
    response = requests.get(f"{base}/integration/ecully", timeout=30)
    policy = csp(response)
    assert policy["frame-ancestors"] == ["*"]
    assert "x-frame-options" not in response.headers
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_apis_files_and_static_files_are_never_run_as_pages(served: tuple[str, FastAPI]) -> None:
    base, _app = served
    for path in (
        "/api/datasets",
        f"/api/datasets/{SLUG}/rows",
        f"/api/datasets/{SLUG}/download/geojson",
        "/static/portail.js",
        "/changements.atom",
        "/ogc/collections?f=json",
    ):
        response = requests.get(base + path, timeout=30)
        assert response.status_code == 200, path
        assert response.headers["x-content-type-options"] == "nosniff", path
        assert csp(response)["default-src"] == ["'none'"], path
        assert csp(response)["frame-ancestors"] == ["'none'"], path


def test_templates_hold_no_inline_script_style_or_handler() -> None:
    for template in (PROJECT_ROOT / "catalog" / "templates").glob("*.html"):
        page = Markup(template.read_text(encoding="utf-8"))
        assert page.inline_scripts == [], template.name
        assert page.styles == [] and page.handlers == [], template.name


def test_docs_page_runs_only_its_own_inline_script_and_files(served: tuple[str, FastAPI]) -> None:
    base, _app = served
    response = requests.get(f"{base}/docs", timeout=30)
    allowed = csp(response)["script-src"]
    scripts = Markup(response.text).inline_scripts
    assert scripts and all(sha256_source(s) in allowed for s in scripts)
    assert "'unsafe-inline'" not in allowed and "'unsafe-eval'" not in allowed
    assert "http" not in response.headers["content-security-policy"]  # no CDN, no other host
    assert "https://" not in response.text and "http://" not in response.text
    other = requests.get(f"{base}/docs/fichiers/__init__.py", timeout=30)  # beside them
    assert other.status_code == 404 and "Fichier inconnu" in other.json()["detail"]
    climbing = requests.get(f"{base}/docs/fichiers/..%2F..%2Fcore.py", timeout=30)
    assert climbing.status_code == 404


# --- escaping: every page, feed and export that shows the hostile dataset ---------------------


def test_portal_pages_show_the_payloads_as_text(served: tuple[str, FastAPI]) -> None:
    base, _app = served
    dataset_page = requests.get(f"{base}/jeux-de-donnees/{SLUG}", timeout=30)
    page = assert_inert(dataset_page.text, [])
    assert TITLE in page.text and CONTACT_NAME in page.text and CONTACT_EMAIL in page.text
    assert all(keyword in page.text for keyword in KEYWORDS) and COLUMN in page.text
    headers = [a for tag, a in page.elements if tag == "button" and "data-colonne" in a]
    assert COLUMN in [a["data-colonne"] for a in headers]  # the column's name, as an attribute
    for path in ("/", "/?q=piege", "/communes/ecully", "/integration/ecully"):
        listing = assert_inert(requests.get(base + path, timeout=30).text, [])
        assert TITLE in listing.text, path
    searched = requests.get(f"{base}/", params={"q": VALUES[1]}, timeout=30)
    assert VALUES[1] in assert_inert(searched.text, []).text


def test_rows_and_search_answer_json_never_html(served: tuple[str, FastAPI]) -> None:
    base, _app = served
    search = requests.get(f"{base}/api/datasets", params={"q": "piege"}, timeout=30)
    assert search.headers["content-type"].startswith("application/json")
    hit = search.json()["jeux_de_donnees"][0]
    assert (hit["titre"], hit["description"]) == (TITLE, DESCRIPTION)
    rows = requests.get(f"{base}/api/datasets/{SLUG}/rows", timeout=30)
    assert rows.headers["content-type"].startswith("application/json")
    assert [row[COLUMN] for row in rows.json()["lignes"]] == VALUES
    detail = requests.get(f"{base}/api/datasets/{SLUG}", timeout=30).json()
    assert detail["mots_cles"] == KEYWORDS and detail["contact"]["email"] == CONTACT_EMAIL


def test_atom_feeds_carry_the_payloads_as_text(served: tuple[str, FastAPI]) -> None:
    base, _app = served
    atom = "{http://www.w3.org/2005/Atom}"
    for path in ("/changements.atom", f"/api/datasets/{SLUG}/changements.atom"):
        feed = ET.fromstring(requests.get(base + path, timeout=30).content)
        assert [e for e in feed.iter() if e.tag.rsplit("}", 1)[-1] == "script"] == []
        entries = [e for e in feed.iter(f"{atom}entry") if TITLE in "".join(e.itertext())]
        assert entries, path
        for entry in entries:
            assert entry.find(f"{atom}content").get("type") == "text"
            assert entry.find(f"{atom}title").get("type", "text") == "text"


def test_dcat_exports_keep_the_payloads_as_literals(served: tuple[str, FastAPI]) -> None:
    base, _app = served
    title = rdflib.URIRef("http://purl.org/dc/terms/title")
    formats = {"ttl": "turtle", "jsonld": "json-ld", "rdf": "xml"}
    for extension, parser in formats.items():
        for path in (f"/api/datasets/{SLUG}/dcat.{extension}", f"/dcat/catalogue.{extension}"):
            response = requests.get(base + path, timeout=30)
            assert not response.headers["content-type"].startswith("text/html"), path
            graph = rdflib.Graph().parse(data=response.content, format=parser)
            assert TITLE in {str(o) for o in graph.objects(None, title)}, path
            keywords = {str(o) for o in graph.objects(None, rdflib.DCAT.keyword)}
            assert set(KEYWORDS) <= keywords, path
    document = ET.fromstring(requests.get(f"{base}/dcat/catalogue.rdf", timeout=30).content)
    assert [e for e in document.iter() if e.tag.rsplit("}", 1)[-1] == "script"] == []


def test_ogc_api_html_runs_no_injected_script(served: tuple[str, FastAPI]) -> None:
    """pygeoapi's pages, from the catalog's templates (`catalog/ogc/templates`): they escape
    HTML and carry no inline script (their maps read the page's GeoJSON from a static
    script), and the policy runs only the catalog's own files."""
    base, _app = served
    for path in (
        "/ogc/collections?f=html",
        f"/ogc/collections/{SLUG}?f=html",
        f"/ogc/collections/{SLUG}/items?f=html",
        f"/ogc/collections/{SLUG}/items/1?f=html",
        f"/ogc/collections/{SLUG}/queryables?f=html",
        "/ogc/collections/catalogue/items?f=html",
        f"/ogc/collections/catalogue/items/{SLUG}?f=html",
    ):
        response = requests.get(base + path, timeout=30)
        assert response.status_code == 200, path
        allowed = csp(response)["script-src"]
        assert "'unsafe-inline'" not in allowed and "'unsafe-eval'" not in allowed, path
        assert not [s for s in allowed if s.startswith("http") or s in {"https:", "*"}], path
        assert csp(response)["frame-ancestors"] == ["'none'"]
        page = assert_inert(response.content.decode("utf-8"), allowed)  # no charset given
        assert "Piège" in page.text or VALUES[0] in page.text, path  # shown (some tags stripped)
        assert page.inline_scripts == [], path  # not one, with or without data
        assert allowed == ["'self'"], path
    items = requests.get(f"{base}/ogc/collections/{SLUG}/items?f=html", timeout=30)
    assert VALUES[1] in Markup(items.content.decode("utf-8")).text  # the value, as text


def test_ogc_xml_services_escape_the_payloads(served: tuple[str, FastAPI]) -> None:
    base, _app = served
    for path in (
        "/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetCapabilities",
        "/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetCapabilities",
        "/csw?service=CSW&version=2.0.2&request=GetRecords&typenames=csw:Record"
        "&elementsetname=full&resulttype=results",
    ):
        response = requests.get(base + path, timeout=60)
        assert response.status_code == 200, path
        document = ET.fromstring(response.content)
        assert [e for e in document.iter() if e.tag.rsplit("}", 1)[-1] == "script"] == []
        assert any(TITLE in (e.text or "") for e in document.iter()), path
        assert csp(response)["default-src"] == ["'none'"], path


# --- in Chromium --------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
WATCH_VIOLATIONS = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    assert Path(CHROMIUM).exists(), "Debian's chromium is installed by scripts/bootstrap.sh"
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


class Watched:
    """A browser page that records dialogs (what the payloads would open), page errors and
    CSP violations (`securitypolicyviolation` events of every frame, and console messages)."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(locale="fr-FR")
        self.context.add_init_script(WATCH_VIOLATIONS)
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.console: list[str] = []
        self.recorded: list[str] = []
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", lambda message: self.console.append(message.text))

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def visit(self, url: str) -> None:
        """Open `url` (after collecting what the page before it recorded)."""
        self.collect()
        self.page.goto(url)
        self.page.wait_for_load_state("load")

    def collect(self) -> None:
        for frame in self.page.frames:
            self.recorded += frame.evaluate("window.__violations ? window.__violations : []")
            frame.evaluate("window.__violations = []")

    def violations(self) -> list[str]:
        self.collect()
        return self.recorded + [m for m in self.console if "Content Security Policy" in m]


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    page = Watched(browser)
    yield page
    page.context.close()


def test_no_injected_script_runs_and_our_pages_raise_no_violation(
    served: tuple[str, FastAPI], watched: Watched, tmp_path: Path
) -> None:
    base, app = served
    reports_before = app.state.csp_reports.count
    page = watched.page
    watched.visit(f"{base}/jeux-de-donnees/{SLUG}")
    assert page.get_by_role("heading", level=1).inner_text() == TITLE
    page.get_by_role("tab", name="Données").click()
    page.locator("#table-donnees tbody tr").nth(2).wait_for()
    cells = page.locator("#table-donnees tbody td").all_inner_texts()
    assert set(VALUES) <= set(cells) and LINK_VALUE in cells
    page.get_by_role("tab", name="Carte").click()
    page.locator("#etat-carte").filter(has_text="objet").wait_for()
    page.locator("#carte path.leaflet-interactive").first.click()
    popup = page.locator(".leaflet-popup-content").inner_text()
    assert any(value in popup for value in VALUES)
    for tab in ("Téléchargements", "API", "Informations"):
        page.get_by_role("tab", name=tab).click()
    for path in ("/", "/?q=piege", "/communes", "/integration/ecully"):
        watched.visit(base + path)
    watched.visit(f"{base}/?q=" + requests.utils.quote(VALUES[1]))
    watched.visit(f"{base}/jeux-de-donnees/lyon-fontaines-eau-potable")
    page.get_by_role("tab", name="Données").click()
    page.locator("#table-donnees tbody tr").first.wait_for()
    watched.visit(f"{base}/communes/ecully")
    colour = page.locator("header.bandeau").evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(29, 95, 167)"  # Écully's #1d5fa7, set by couleurs.js, not inline
    embed_in_another_site(watched, base, tmp_path)
    assert watched.dialogs == [] and watched.errors == []
    assert watched.violations() == []
    time.sleep(0.5)  # report-uri posts, if any, leave after the events
    assert app.state.csp_reports.count == reports_before


def embed_in_another_site(watched: Watched, base: str, tmp_path: Path) -> None:
    snippet = requests.get(f"{base}/communes/ecully", timeout=30).text
    iframe = next(t for t in Markup(snippet).texts if t.lstrip().startswith("<iframe"))
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(
        f"<!doctype html><html lang='fr'><body><h1>Mairie</h1>{iframe}</body></html>", "utf-8"
    )
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(site))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        watched.visit(f"http://127.0.0.1:{server.server_address[1]}/index.html")
        frame = watched.page.frame_locator("iframe")
        frame.get_by_role("link", name=TITLE).wait_for()
        border = frame.locator("body").evaluate("e => getComputedStyle(e).borderTopColor")
        assert border == "rgb(29, 95, 167)"
        watched.collect()
    finally:
        server.shutdown()


def test_ogc_api_pages_draw_their_maps_and_run_no_payload(
    served: tuple[str, FastAPI], watched: Watched
) -> None:
    base, _app = served
    watched.visit(f"{base}/ogc/collections/{SLUG}/items?f=html")
    page = watched.page
    assert page.locator("h1").first.inner_text().strip() == TITLE
    page.locator("#carte-ogc path.leaflet-interactive").first.wait_for()
    page.locator("#carte-ogc path.leaflet-interactive").first.click()
    assert page.locator(".leaflet-popup-content a").inner_text().startswith("Objet ")
    watched.visit(f"{base}/ogc/collections/{SLUG}/items/1?f=html")
    page.locator("#carte-ogc path.leaflet-interactive").first.wait_for()
    assert page.locator("img[src='x']").count() == 0
    assert watched.dialogs == [] and watched.errors == []
    assert watched.violations() == []


# --- rate limiting ------------------------------------------------------------------------------


def limited_app(
    store: CatalogStore, monkeypatch: pytest.MonkeyPatch, storage: str, limits: str
) -> FastAPI:
    """The catalog as `create_app` builds it, its security configured by the environment."""
    monkeypatch.setenv("OPENDATA_RATE_LIMIT", limits)
    monkeypatch.setenv("OPENDATA_RATE_LIMIT_AUTHENTICATED", "6/minute")
    monkeypatch.setenv("OPENDATA_RATE_LIMIT_STORAGE", storage)
    monkeypatch.setenv("OPENDATA_RATE_LIMIT_EXEMPT", "")
    monkeypatch.setenv("OPENDATA_TRUSTED_PROXIES", "10.0.0.0/8")
    return create_app(store, services=[])


def fetch(app: FastAPI, requests_: list[tuple[str, dict[str, str]]], peer: str) -> list[Any]:
    """Send requests to `app` from the address `peer`, as uvicorn would hand them over."""

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=(peer, 50_000))
        async with httpx.AsyncClient(transport=transport, base_url="http://catalogue") as client:
            return [await client.get(path, headers=headers) for path, headers in requests_]

    with ThreadPoolExecutor(1) as thread:  # its own event loop (Playwright may run one here)
        return thread.submit(asyncio.run, run()).result()


@pytest.fixture(params=["memory", "redis"])
def storage(request: pytest.FixtureRequest) -> Iterator[str]:
    """Counters in memory, or in the machine's Redis (a database flushed of our keys)."""
    if request.param == "memory":
        yield "memory://"
        return
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()
    yield REDIS_URL
    for key in client.scan_iter("opendata-limites*"):
        client.delete(key)


@pytest.fixture
def small_catalog(published: Deployment) -> CatalogStore:
    return published.store


def test_a_client_over_its_limit_gets_429_in_french(
    small_catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch, storage: str
) -> None:
    app = limited_app(small_catalog, monkeypatch, storage, "5/minute")
    peer = "192.0.2.50"
    answers = fetch(app, [("/api/datasets", {})] * 7, peer)
    assert [a.status_code for a in answers] == [200] * 5 + [429] * 2
    refused = answers[-1]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["content-type"].startswith("application/json")
    assert "Trop de requêtes" in refused.json()["detail"]
    assert "5 requêtes par minute" in refused.json()["detail"]
    assert refused.headers["x-content-type-options"] == "nosniff"
    # the portal's pages and static files are not counted; another client has its own count
    others = fetch(app, [("/", {}), ("/static/portail.js", {})], peer)
    assert [a.status_code for a in others] == [200, 200]
    assert fetch(app, [("/api/datasets", {})], "192.0.2.44")[0].status_code == 200


def test_every_api_and_service_is_counted(
    small_catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = limited_app(small_catalog, monkeypatch, "memory://", "2/minute")
    for number, path in enumerate(
        (
            f"/api/datasets/{SLUG}/rows",
            "/dcat/catalogue.ttl",
            "/changements.atom",
            "/ogc/collections",
            "/wms",
            "/wfs",
            "/csw",
        )
    ):
        peer = f"192.0.2.{number + 1}"
        statuses = [a.status_code for a in fetch(app, [(path, {})] * 3, peer)]
        assert statuses[2] == 429 and 429 not in statuses[:2], path
        assert fetch(app, [(path, {})], f"198.51.100.{number + 1}")[0].status_code != 429, path


def test_every_api_route_is_counted_and_no_portal_page_is(small_catalog: CatalogStore) -> None:
    """The limiter counts the prefixes of the web services' table (catalog/web/registry.py):
    an API route added there is counted without touching catalog/security.py."""
    app = create_app(small_catalog, services=[])
    limited = limited_prefixes()
    api_paths = [r.path for r in app.routes if isinstance(r, APIRoute) and r.include_in_schema]
    assert len(api_paths) > 20
    for path in api_paths:
        assert path.startswith(limited), path
    for page in ("/", "/communes/ecully", "/integration/ecully", f"/jeux-de-donnees/{SLUG}"):
        assert not page.startswith(limited), page
    assert not "/static/portail.js".startswith(limited)
    for service in ("/ogc", "/wms", "/wfs", "/csw"):  # mounted by the OGC services
        assert service.startswith(limited), service


def test_forwarded_for_is_read_only_from_trusted_proxies(
    small_catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = limited_app(small_catalog, monkeypatch, "memory://", "2/minute")
    spoofed = [("/api/datasets", {"X-Forwarded-For": f"198.51.100.{n}"}) for n in range(3)]
    # an untrusted peer cannot pose as other clients: it is counted by its own address
    assert [a.status_code for a in fetch(app, spoofed, "203.0.113.9")] == [200, 200, 429]
    # through the trusted proxy, each forwarded client has its own count
    assert [a.status_code for a in fetch(app, spoofed, "10.1.2.3")] == [200, 200, 200]
    # and the client cannot hide behind an address it puts first in the header itself
    chained = [
        ("/api/datasets", {"X-Forwarded-For": f"198.51.100.{n}, 192.0.2.7"}) for n in range(3)
    ]
    assert [a.status_code for a in fetch(app, chained, "10.1.2.3")] == [200, 200, 429]


def test_client_address_resolution() -> None:
    trusted = clients.parse_networks("10.0.0.0/8, ::1")

    def scope(peer: str, forwarded: str | None) -> dict[str, Any]:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return {"client": (peer, 1234), "headers": headers}

    assert clients.client_address(scope("192.0.2.1", "198.51.100.1"), trusted) == "192.0.2.1"
    assert clients.client_address(scope("10.0.0.2", "198.51.100.1"), trusted) == "198.51.100.1"
    chain = "198.51.100.1, 192.0.2.9, 10.0.0.3"
    assert clients.client_address(scope("10.0.0.2", chain), trusted) == "192.0.2.9"
    assert clients.client_address(scope("::1", None), trusted) == "::1"
    assert clients.client_address(scope("10.0.0.2", "10.0.0.4"), trusted) == "10.0.0.4"
    unix_socket = {"client": None, "headers": [(b"x-forwarded-for", b"198.51.100.3")]}
    assert clients.client_address(unix_socket, ()) == "198.51.100.3"
    assert clients.client_address({"client": None, "headers": []}, ()) == ""


def test_two_workers_share_their_counts_in_redis(
    small_catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    first = limited_app(small_catalog, monkeypatch, REDIS_URL, "4/minute")
    second = limited_app(small_catalog, monkeypatch, REDIS_URL, "4/minute")
    peer = f"192.0.2.{100 + int(uuid.uuid4().hex[:2], 16) % 100}"
    try:
        statuses = [a.status_code for a in fetch(first, [("/api/datasets", {})] * 2, peer)]
        statuses += [a.status_code for a in fetch(second, [("/api/datasets", {})] * 3, peer)]
        assert statuses == [200, 200, 200, 200, 429]
        assert any(client.scan_iter("opendata-limites*"))
    finally:
        for key in client.scan_iter("opendata-limites*"):
            client.delete(key)


def test_an_unreachable_redis_lets_requests_through_and_says_so(
    small_catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = limited_app(small_catalog, monkeypatch, "redis://127.0.0.1:9/0", "1/minute")
    with caplog.at_level(logging.ERROR, logger="catalog.security"):
        answers = fetch(app, [("/api/datasets", {})] * 3, "192.0.2.20")
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert "Limitation de débit inopérante" in caplog.text


def test_a_wrong_storage_is_refused_at_start(
    small_catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValueError, match="OPENDATA_RATE_LIMIT_STORAGE"):
        limited_app(small_catalog, monkeypatch, "memcached://127.0.0.1:11211", "1/minute")


def test_an_authenticated_caller_is_counted_as_themselves(
    small_catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OidcProvider().serving() as provider:
        monkeypatch.setenv("OPENDATA_OIDC_ISSUERS", provider.issuer)
        monkeypatch.setenv("OPENDATA_OIDC_AUDIENCE", provider.client_id)
        app = limited_app(small_catalog, monkeypatch, "memory://", "2/minute")
        alice = {"Authorization": f"Bearer {provider.token(sub='alice')}"}
        bob = {"Authorization": f"Bearer {provider.token(sub='bob')}"}
        forged = {"Authorization": f"Bearer {provider.forged(sub='alice')}"}
        peer = "192.0.2.30"  # one office, one address: its signed-in users are counted apart
        alices = [a.status_code for a in fetch(app, [("/api/datasets", alice)] * 7, peer)]
        assert alices == [200] * 6 + [429]  # the authenticated limit, 6/minute
        assert fetch(app, [("/api/datasets", bob)], peer)[0].status_code == 200
        anonymous = [a.status_code for a in fetch(app, [("/api/datasets", forged)] * 3, peer)]
        assert anonymous == [200, 200, 429]  # a forged token is anonymous: 2/minute per address


def test_browsers_reports_of_violations_are_kept_and_logged(
    small_catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = limited_app(small_catalog, monkeypatch, "memory://", "10/minute")
    report = {
        "csp-report": {
            "document-uri": "https://donnees.example.org/",
            "violated-directive": "script-src-elem",
            "blocked-uri": "inline",
        }
    }

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.60", 50_000))
        async with httpx.AsyncClient(transport=transport, base_url="https://catalogue") as client:
            return await client.post(
                security.CSP_REPORT_PATH,
                content=json.dumps(report),
                headers={"Content-Type": "application/csp-report"},
            )

    with (
        caplog.at_level(logging.WARNING, logger="catalog.security"),
        ThreadPoolExecutor(1) as thread,
    ):
        answer = thread.submit(asyncio.run, post()).result()
    assert answer.status_code == 204
    assert answer.headers["strict-transport-security"].startswith("max-age=")  # over https
    assert app.state.csp_reports.count == 1
    assert app.state.csp_reports.latest[0]["blocked-uri"] == "inline"
    assert "script-src-elem" in caplog.text


def test_an_undeclared_proxy_is_pointed_out_once(
    small_catalog: CatalogStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("OPENDATA_RATE_LIMIT_EXEMPT", raising=False)
    monkeypatch.delenv("OPENDATA_TRUSTED_PROXIES", raising=False)
    app = create_app(small_catalog, services=[])
    forwarded = [("/api/datasets", {"X-Forwarded-For": "198.51.100.8"})] * 3
    with caplog.at_level(logging.WARNING, logger="catalog.security"):
        answers = fetch(app, forwarded, "127.0.0.1")
    assert [a.status_code for a in answers] == [200, 200, 200]  # loopback: exempt by default
    assert caplog.text.count("OPENDATA_TRUSTED_PROXIES") == 1
