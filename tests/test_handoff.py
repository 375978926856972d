"""What a dataset's page gives a reuser to take the data elsewhere (issue #19), and the OGC
API's HTML pages in the portal's look and in French.

The addresses the page shows are followed: WMS and WFS capabilities list the layer named,
the OGC API collection and the ISO record answer, the curl commands run as copied. The
schema.org JSON-LD is read back as RDF without any network access. Chromium checks the
copy button and that the /ogc pages load nothing from another host.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import rdflib
import requests
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from catalog import accounts
from catalog.web.app import create_app
from catalog.web.handoff import french_size

from conftest import SAMPLES, Deployment, deployment, running_catalog, write_submission

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
BANCS = "ecully-bancs-publics"
SUBVENTIONS = "vaulx-en-velin-subventions-associations"
RESTRICTED = "ecully-interventions"
HOSTILE = "ecully-piege"
HOSTILE_TITLE = "Bancs </script><script>alert('jsonld')</script> & <!-- « piège »"
SCHEMA = rdflib.Namespace("http://schema.org/")
WMS_NS = "{http://www.opengis.net/wms}"
WFS_NS = "{http://www.opengis.net/wfs/2.0}"


class Page(HTMLParser):
    """What the dataset page holds: its fields' values, its blocks' text, its JSON-LD."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.values: dict[str, str] = {}
        self.blocks: dict[str, str] = {}
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self.text: list[str] = []
        self._open: tuple[str, dict[str, str | None], list[str]] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "input" and attributes.get("id"):
            self.values[str(attributes["id"])] = attributes.get("value") or ""
        if tag in ("script", "pre"):
            self._open = (tag, attributes, [])

    def handle_endtag(self, tag: str) -> None:
        if self._open is not None and tag == self._open[0]:
            kind, attributes, parts = self._open
            if kind == "script":
                self.scripts.append((attributes, "".join(parts)))
            elif attributes.get("id"):
                self.blocks[str(attributes["id"])] = "".join(parts)
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[2].append(data)
        self.text.append(data)

    @property
    def jsonld(self) -> list[str]:
        return [body for attrs, body in self.scripts if attrs.get("type") == "application/ld+json"]

    @property
    def words(self) -> str:
        return " ".join(" ".join(self.text).split())


def restricted_submission(root: Path) -> Path:
    return write_submission(
        root / "submissions" / "interventions",
        "interventions.csv",
        "numero;longitude;latitude;objet\r\n1;4.775;45.776;Réparation\r\n",
        extra_metadata="acces: restreint\n",
    )


def hostile_submission(root: Path) -> Path:
    data = write_submission(root / "submissions" / "piege", "piege.csv", "id;nom\r\n1;a\r\n")
    metadata = data.parent / "metadata.yaml"
    title = HOSTILE_TITLE.replace("'", "''")
    text = metadata.read_text(encoding="utf-8")
    metadata.write_text(text.replace("titre: Arbres d'alignement", f"titre: '{title}'"), "utf-8")
    return data


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Deployment]]:
    with deployment(tmp_path_factory, "passage") as deployed:
        deployed.publish_sample(SAMPLES / "inbox" / "ecully" / "bancs-publics")
        deployed.publish_sample(SAMPLES / "inbox" / "vaulx-en-velin" / "subventions-associations")
        deployed.publish(restricted_submission(deployed.root))
        deployed.publish(hostile_submission(deployed.root))
        with running_catalog(deployed.store) as base:
            yield base, deployed


def page_of(base: str, slug: str, **headers: str) -> Page:
    response = requests.get(f"{base}/jeux-de-donnees/{slug}", headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return Page(response.text)


# --- « Utiliser dans un SIG » ------------------------------------------------------------------


def test_a_layer_page_gives_service_addresses_that_serve_the_layer_named(catalog) -> None:
    base, _ = catalog
    page = page_of(base, BANCS)
    values = page.values
    assert values["sig-couche"] == BANCS
    assert values["sig-wms"] == f"{base}/wms" and values["sig-wfs"] == f"{base}/wfs"
    assert values["sig-ogc-api"] == f"{base}/ogc"
    assert values["sig-collection"] == f"{base}/ogc/collections/{BANCS}"
    assert "Ajouter une couche WMS/WMTS" in page.words and "Nouveau" in page.words

    wms = requests.get(values["sig-wms-capacites"], timeout=60)
    assert wms.status_code == 200, wms.text
    layers = {e.text for e in ET.fromstring(wms.content).iter(f"{WMS_NS}Name")}
    assert BANCS in layers

    wfs = requests.get(values["sig-wfs-capacites"], timeout=60)
    assert wfs.status_code == 200, wfs.text
    types = {e.text for e in ET.fromstring(wfs.content).iter(f"{WFS_NS}Name")}
    assert BANCS in {name.split(":")[-1] for name in types if name}

    collection = requests.get(values["sig-collection"], params={"f": "json"}, timeout=60)
    assert collection.status_code == 200 and collection.json()["id"] == BANCS
    record = requests.get(values["sig-fiche-iso"], timeout=60)
    assert record.status_code == 200 and BANCS in record.text
    assert "MD_Metadata" in record.text


def test_a_table_without_geometry_is_said_to_be_no_layer(catalog) -> None:
    base, _ = catalog
    page = page_of(base, SUBVENTIONS)
    assert "n'a pas de géométrie" in page.words
    assert not {"sig-wms", "sig-wfs", "sig-collection", "sig-couche"} & set(page.values)
    record = requests.get(page.values["sig-fiche-iso"], timeout=60)
    assert record.status_code == 200 and SUBVENTIONS in record.text
    collection = requests.get(f"{base}/ogc/collections/{SUBVENTIONS}?f=json", timeout=30)
    assert collection.status_code == 404


def test_a_restricted_dataset_page_advertises_no_public_service(catalog) -> None:
    base, deployed = catalog
    assert requests.get(f"{base}/jeux-de-donnees/{RESTRICTED}", timeout=30).status_code == 404
    token = accounts.create_token(deployed.store, "equipe-data", "data@grandlyon.com").token
    page = page_of(base, RESTRICTED, Authorization=f"Bearer {token}")
    assert "diffusion restreinte" in page.words
    assert not [name for name in page.values if name.startswith("sig-")]
    assert page.jsonld == []  # no search engine is told of it
    commands = [text for name, text in page.blocks.items() if name.startswith("exemple-api")]
    assert commands and all('-H "Authorization: Bearer $JETON"' in c for c in commands)
    assert not any("/ogc/" in c for c in commands)
    rows = run(commands[0], JETON=token)
    assert [line["objet"] for line in json.loads(rows)["lignes"]] == ["Réparation"]


# --- « Utiliser l'API » ------------------------------------------------------------------------


def run(command: str, cwd: Path | None = None, **environment: str) -> str:
    """A command from the page, run by the shell as a reuser pastes it."""
    assert command.startswith("curl ")
    finished = subprocess.run(
        ["bash", "-c", command.replace("curl ", "curl -sS --fail ", 1)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={"PATH": os.environ["PATH"], **environment},
    )
    assert finished.returncode == 0, finished.stderr
    return finished.stdout


def test_the_api_examples_run_as_copied(catalog, tmp_path: Path) -> None:
    base, deployed = catalog
    page = page_of(base, BANCS)
    rows, csv, items = (page.blocks[f"exemple-api-{n}"] for n in (1, 2, 3))
    assert all(base in command for command in (rows, csv, items))

    answer = json.loads(run(rows))
    assert answer["lignes"] and {line["materiau"] for line in answer["lignes"]} == {"métal"}
    assert len(answer["lignes"]) <= 10 and "_decalage=0" in rows

    run(csv, cwd=tmp_path)
    (downloaded,) = tmp_path.iterdir()
    assert downloaded.name == f"{BANCS}-v1.csv"
    assert downloaded.read_text(encoding="utf-8").startswith('"id_banc"')

    collection = json.loads(run(items))
    west, south, east, north = (float(v) for v in items.split("bbox=")[1].split()[0].split(","))
    points = [f["geometry"]["coordinates"] for f in collection["features"]]
    assert points and all(west <= x <= east and south <= y <= north for x, y in points)
    assert len(points) < 60  # a box inside the extent, not every bench


def test_downloads_show_sizes_in_french_and_dates(catalog) -> None:
    base, deployed = catalog
    page = page_of(base, BANCS)
    release = deployed.store.current_release(BANCS)
    csv_size = deployed.store.release_path(release, "csv").stat().st_size
    words = page.words
    assert f"CSV ({french_size(csv_size)}, version du {release.published_at:%d/%m/%Y})" in words
    assert "KML (préparé au premier téléchargement" in words  # derived on first download only
    assert requests.get(f"{base}/api/datasets/{BANCS}/download/kml", timeout=60).ok
    assert "KML (préparé" not in page_of(base, BANCS).words  # its size, once made


def test_french_sizes() -> None:
    assert french_size(1) == "1 octet"
    assert french_size(850) == "850 octets"
    assert french_size(3_565) == "3,6 ko"
    assert french_size(1_234_567) == "1,2 Mo"
    assert french_size(2_000_000) == "2 Mo"
    assert french_size(123_456_789) == "123 Mo"
    assert french_size(5_300_000_000) == "5,3 Go"


def test_addresses_start_with_the_public_url_whatever_the_host(catalog) -> None:
    _, deployed = catalog
    app = create_app(deployed.store, services=[], public_url="https://donnees.exemple.fr")
    with TestClient(app) as client:
        response = client.get(f"/jeux-de-donnees/{BANCS}", headers={"Host": "intrus.example"})
    page = Page(response.text)
    public = "https://donnees.exemple.fr"
    assert page.values["sig-wms"] == f"{public}/wms"
    assert all(block.split()[-1].startswith(f"{public}/") for block in page.blocks.values())
    assert json.loads(page.jsonld[0])["url"] == f"{public}/jeux-de-donnees/{BANCS}"


# --- schema.org JSON-LD ------------------------------------------------------------------------


class NoNetwork:
    """Every connection or name lookup attempted in the block is refused and noted."""

    def __init__(self) -> None:
        self.attempts: list[Any] = []

    @contextlib.contextmanager
    def guard(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        def refuse(*args: Any, **_kwargs: Any) -> Any:
            self.attempts.append(args)
            raise OSError("réseau interdit pendant le test")

        with monkeypatch.context() as patch:
            patch.setattr(socket, "getaddrinfo", refuse)
            patch.setattr(socket, "create_connection", refuse)
            patch.setattr(socket.socket, "connect", refuse)
            yield


def as_rdf(document: dict[str, Any]) -> rdflib.Graph:
    """The JSON-LD as RDF, schema.org's context given inline: its terms are schema.org's
    vocabulary (`@vocab`, as the published context says), nothing is fetched."""
    local = {**document, "@context": {"@vocab": str(SCHEMA)}}
    return rdflib.Graph().parse(data=json.dumps(local), format="json-ld")


def test_jsonld_is_a_schema_org_dataset_read_without_network(catalog, monkeypatch) -> None:
    base, _ = catalog
    (block,) = page_of(base, BANCS).jsonld
    document = json.loads(block)
    assert document["@context"] == "https://schema.org/" and document["@type"] == "Dataset"
    required = {"name", "description", "url", "license", "creator", "publisher", "dateModified"}
    assert required <= set(document)
    assert {"spatialCoverage", "distribution", "keywords", "temporalCoverage"} <= set(document)
    assert document["url"] == f"{base}/jeux-de-donnees/{BANCS}"
    assert document["temporalCoverage"] == "1995-10-18/2026-03-20"  # the dates of date_pose
    south, west, north, east = map(float, document["spatialCoverage"]["geo"]["box"].split())
    assert 45.7 < south < north < 45.8 and 4.7 < west < east < 4.8
    for distribution in document["distribution"]:
        answer = requests.head(distribution["contentUrl"], timeout=60)
        assert answer.status_code == 200, distribution
        assert answer.headers["content-type"].split(";")[0] == distribution["encodingFormat"]

    network = NoNetwork()
    with network.guard(monkeypatch):
        graph = as_rdf(document)
    assert network.attempts == []
    dataset = next(graph.subjects(rdflib.RDF.type, SCHEMA.Dataset))
    assert str(graph.value(dataset, SCHEMA.name)) == "Bancs publics"
    distributions = graph.objects(dataset, SCHEMA.distribution)
    downloads = {str(graph.value(d, SCHEMA.contentUrl)) for d in distributions}
    assert f"{base}/api/datasets/{BANCS}/download/csv" in downloads
    creator = graph.value(dataset, SCHEMA.creator)
    assert str(graph.value(creator, SCHEMA.name)) == "Écully"

    # as published, with the context's URL, rdflib would fetch it: the guard refuses that
    with network.guard(monkeypatch), pytest.raises(Exception):  # noqa: B017 - any failure
        rdflib.Graph().parse(data=block, format="json-ld")
    assert network.attempts, "rdflib reads a remote @context from the network"


def test_a_title_holding_a_script_end_tag_stays_inside_the_jsonld(catalog) -> None:
    base, _ = catalog
    response = requests.get(f"{base}/jeux-de-donnees/{HOSTILE}", timeout=60)
    page = Page(response.text)
    (block,) = page.jsonld
    assert json.loads(block)["name"] == HOSTILE_TITLE
    assert "</script>" not in block and "<" not in block
    others = [attrs for attrs, _ in page.scripts if attrs.get("type") != "application/ld+json"]
    assert all(str(attrs.get("src")).startswith("/static/") for attrs in others)


# --- in Chromium ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "Debian's chromium is installed by scripts/bootstrap.sh"
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def watched(browser, catalog):
    """A page that may reach only the catalog; requests elsewhere are aborted and noted,
    as are CSP violations and script errors."""
    base, _ = catalog
    context = browser.new_context(locale="fr-FR", permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.elsewhere, page.problems = [], []

    def only_the_catalog(route):
        if route.request.url.startswith(base + "/"):
            route.continue_()
        else:
            page.elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_the_catalog)
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: page.problems.append(str(error)))
    yield page
    context.close()


def test_the_copy_button_copies_the_address(catalog, watched) -> None:
    base, _ = catalog
    page = watched
    page.goto(f"{base}/jeux-de-donnees/{BANCS}")
    page.get_by_role("tab", name="Utiliser dans un SIG").click()
    page.get_by_role("button", name="Copier : Service WMS (cartes) : adresse de connexion").click()
    expect(page.locator("#sig-wms ~ .copie-etat")).to_have_text("Copié.")
    assert page.evaluate("navigator.clipboard.readText()") == f"{base}/wms"
    assert page.evaluate("document.activeElement.id") == "sig-wms"  # selected, for Ctrl+C
    page.get_by_role("tab", name="API").click()
    page.get_by_role("button", name="Copier la commande : Télécharger le fichier CSV").click()
    command = page.evaluate("navigator.clipboard.readText()")
    assert command == f"curl -OJ {base}/api/datasets/{BANCS}/download/csv"
    assert page.elsewhere == [] and page.problems == []


OGC_PAGES = {
    "/ogc": "Définition de l'API",
    "/ogc/collections": "Couches de données",
    f"/ogc/collections/{BANCS}": "Systèmes de coordonnées",
    f"/ogc/collections/{BANCS}/items": "Objets par page",
    f"/ogc/collections/{BANCS}/items/1": "Propriétés",
    f"/ogc/collections/{BANCS}/queryables": "propriétés interrogeables",
    f"/ogc/collections/{BANCS}/schema": "Propriétés des objets",
    "/ogc/conformance": "Classes de conformité",
    "/ogc/collections/catalogue/items": "Objets par page",
}
ENGLISH = ("Powered by", "Browse", "Items in this collection", "Limit", "Collections in this")


def test_ogc_pages_stay_french_for_a_browser_asking_for_english(catalog) -> None:
    base, _ = catalog
    headers = {"Accept": "text/html", "Accept-Language": "en-US,en;q=0.9"}
    page = requests.get(f"{base}/ogc", headers=headers, timeout=60)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.content.decode("utf-8")  # pygeoapi names no charset: the page's meta does
    assert "Données ouvertes des communes de la Métropole de Lyon" in text
    assert "Open data of" not in text and "Geographic datasets" not in text


@pytest.mark.parametrize("path", list(OGC_PAGES))
def test_ogc_pages_are_french_in_the_portal_look_and_load_nothing_elsewhere(
    catalog, watched, path: str
) -> None:
    base, _ = catalog
    page = watched
    response = page.goto(base + path)
    assert response.status == 200
    assert page.locator("html").get_attribute("lang") == "fr"
    expect(page.get_by_text(OGC_PAGES[path]).first).to_be_visible()
    sheets = page.evaluate("Array.from(document.styleSheets, s => s.href)")
    assert f"{base}/static/portail.css" in sheets
    colour = page.locator("header.bandeau").evaluate("e => getComputedStyle(e).backgroundColor")
    assert colour == "rgb(30, 58, 138)"  # the portal's banner
    home = page.get_by_role("link", name="Catalogue", exact=True)
    expect(home).to_have_attribute("href", f"{base}/")
    text = page.locator("body").inner_text()
    assert not [word for word in ENGLISH if word in text]
    if page.locator("#carte-ogc").count() and "/items" in path:
        expect(page.locator("#carte-ogc path.leaflet-interactive").first).to_be_attached()
    page.wait_for_load_state("networkidle")
    assert page.elsewhere == [] and page.problems == []


def test_the_ogc_items_map_draws_the_page_and_the_api_definition_opens(catalog, watched) -> None:
    base, _ = catalog
    page = watched
    page.goto(f"{base}/ogc/collections/{BANCS}/items?limit=100")
    expect(page.locator("#carte-ogc path.leaflet-interactive")).to_have_count(60)
    page.get_by_label("Objets par page").select_option("10")
    page.get_by_role("button", name="Afficher").click()
    expect(page.locator("#carte-ogc path.leaflet-interactive")).to_have_count(10)
    page.goto(f"{base}/ogc/openapi?f=html")
    expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
    assert page.elsewhere == [] and page.problems == []
