"""Host header and forwarded headers (issue #16).

A real catalog (the three OGC services, pycsw and MapServer included) configured with
`OPENDATA_PUBLIC_URL` is asked for every document that holds absolute links with a
forged `Host` (and `X-Forwarded-Host`/`-Port`/`-Proto`): none of them may hold the forged
name, nor the address the request was really sent to; their links start with the public
URL. `opendata servir` itself is started to check that a changing `X-Forwarded-For` does
not get a client past the rate limit by default, and that its links follow its own
address when no public URL is configured.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedparser
import pytest
import rdflib
import requests
from owslib.wfs import WebFeatureService
from owslib.wms import WebMapService

from catalog.ogc import pycsw_app
from catalog.ogc.csw import pycsw_venv
from catalog.web.app import create_app
from core.settings import PROJECT_ROOT, configured_public_url

from conftest import SAMPLES, Deployment, deployment, serving

PUBLIC = "https://donnees.example.org/portail"
FORGED = "evil.example"
SLUG = "ecully-bancs-publics"
LAYER = SLUG  # its layer in every OGC service
COMMUNE = "ecully"
XLINK = "{http://www.w3.org/1999/xlink}href"
OWS = "{http://www.opengis.net/ows}"
OWS11 = "{http://www.opengis.net/ows/1.1}"
DCT_REFERENCES = "{http://purl.org/dc/terms/}references"
NGINX = PROJECT_ROOT / "deploy" / "nginx.conf"


@dataclass
class Served:
    base: str  # where the test really sends its requests
    published: Deployment

    @property
    def address(self) -> str:
        return self.base.removeprefix("http://")

    def get(self, path: str, **params: str) -> requests.Response:
        """A GET with a forged Host and forged forwarded headers."""
        forged = {
            "Host": FORGED,
            "X-Forwarded-Host": FORGED,
            "X-Forwarded-Port": "666",
            "X-Forwarded-Proto": "http",
        }
        response = requests.get(f"{self.base}{path}", params=params, headers=forged, timeout=60)
        assert response.status_code == 200, (path, response.status_code, response.text[:500])
        return response

    def clean(self, document: str | bytes) -> str:
        """The document as text, once checked to hold neither the forged host nor the
        address it was really asked at."""
        text = document if isinstance(document, str) else document.decode("utf-8")
        assert FORGED not in text
        assert self.address not in text and "127.0.0.1" not in text
        return text


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    assert (pycsw_venv() / "bin" / "python").exists(), "no pycsw: run scripts/bootstrap.sh"
    with deployment(tmp_path_factory, "adresse-publique") as published:
        published.publish_sample(SAMPLES / "inbox" / "ecully" / "bancs-publics")
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("OPENDATA_PUBLIC_URL", PUBLIC + "/")  # the trailing slash is dropped
            app = create_app(published.store)  # every OGC service, as deployed
            with serving(app) as base:
                yield Served(base, published)


def hrefs(root: ET.Element) -> list[str]:
    return [element.get(XLINK, "") for element in root.iter() if element.get(XLINK)]


def ours(links: list[str]) -> list[str]:
    """The links that point into the catalog (licences and vocabularies are elsewhere)."""
    return [link for link in links if not link.startswith(EXTERNAL)]


EXTERNAL = (
    "https://www.etalab.gouv.fr",
    "https://opendatacommons.org",
    "http://www.opengis.net/",
    "https://www.opengis.net/",
    "http://publications.europa.eu/",
    "http://inspire.ec.europa.eu/",
    "https://tile.openstreetmap.org",
    "https://www.openstreetmap.org",
    "https://github.com",
    "https://pygeoapi.io",
    "https://schemas.opengis.net",
    "http://schemas.opengis.net",
    "https://creativecommons.org",
)


# --- documents --------------------------------------------------------------------------------


def test_wms_capabilities_link_to_the_public_url(served: Served) -> None:
    response = served.get("/wms", SERVICE="WMS", VERSION="1.3.0", REQUEST="GetCapabilities")
    text = served.clean(response.text)
    links = ours(hrefs(ET.fromstring(response.content)))
    assert f"{PUBLIC}/wms?" in links
    # the service's own links, and each layer's MetadataURL: its ISO record, from the CSW
    assert any(link.startswith(f"{PUBLIC}/csw?") for link in links), links
    assert all(link.startswith((f"{PUBLIC}/wms?", f"{PUBLIC}/csw?")) for link in links), links
    wms = WebMapService(f"{PUBLIC}/wms", version="1.3.0", xml=text.encode())
    assert LAYER in wms.contents
    for operation in ("GetCapabilities", "GetMap", "GetFeatureInfo"):
        urls = [m["url"] for m in wms.getOperationByName(operation).methods]
        assert urls and all(url.startswith(f"{PUBLIC}/wms?") for url in urls), urls


def test_wfs_capabilities_link_to_the_public_url(served: Served) -> None:
    response = served.get("/wfs", SERVICE="WFS", VERSION="2.0.0", REQUEST="GetCapabilities")
    text = served.clean(response.text)
    links = ours(hrefs(ET.fromstring(response.content)))
    assert any(link.startswith(f"{PUBLIC}/csw?") for link in links), links
    assert all(link.startswith((f"{PUBLIC}/wfs?", f"{PUBLIC}/csw?")) for link in links), links
    wfs = WebFeatureService(f"{PUBLIC}/wfs", version="2.0.0", xml=text.encode())
    assert f"ms:{LAYER}" in wfs.contents
    urls = [m["url"] for m in wfs.getOperationByName("GetFeature").methods]
    assert urls and all(url.startswith(f"{PUBLIC}/wfs?") for url in urls), urls


def test_csw_capabilities_and_records_link_to_the_public_url(served: Served) -> None:
    response = served.get("/csw", service="CSW", version="2.0.2", request="GetCapabilities")
    served.clean(response.text)
    root = ET.fromstring(response.content)
    operations = [
        element.get(XLINK, "")
        for element in root.iter()
        if element.tag in (f"{OWS}Get", f"{OWS}Post")
    ]
    assert operations and all(url == f"{PUBLIC}/csw" for url in operations), operations
    records = served.get(
        "/csw",
        service="CSW",
        version="2.0.2",
        request="GetRecords",
        typeNames="csw:Record",
        elementSetName="full",
        resultType="results",
    )
    served.clean(records.text)
    references = [e.text or "" for e in ET.fromstring(records.content).iter(DCT_REFERENCES)]
    assert references and all(reference.startswith(PUBLIC + "/") for reference in references)


def test_ogc_api_links_point_to_the_public_url(served: Served) -> None:
    landing = served.get("/ogc", f="json")
    served.clean(landing.text)
    links = [link["href"] for link in landing.json()["links"]]
    assert f"{PUBLIC}/ogc/collections?f=json" in links or f"{PUBLIC}/ogc/collections" in links
    assert all(link.startswith(PUBLIC + "/") for link in ours(links)), links
    collections = served.get("/ogc/collections", f="json")
    served.clean(collections.text)
    listed = collections.json()
    links = [link["href"] for link in listed["links"]]
    links += [link["href"] for c in listed["collections"] for link in c["links"]]
    assert f"{PUBLIC}/jeux-de-donnees/{SLUG}" in links
    assert all(link.startswith(PUBLIC + "/") for link in ours(links)), ours(links)
    items = served.get(f"/ogc/collections/{LAYER}/items", f="json", limit="1")
    served.clean(items.text)
    item_links = [link["href"] for link in items.json()["links"]]
    assert any(link.startswith(f"{PUBLIC}/ogc/collections/{LAYER}/items") for link in item_links)
    assert all(link.startswith(PUBLIC + "/") for link in ours(item_links)), item_links
    records = served.get("/ogc/collections/catalogue/items", f="json")
    served.clean(records.text)
    record_links = [link["href"] for f in records.json()["features"] for link in f["links"]]
    assert f"{PUBLIC}/jeux-de-donnees/{SLUG}" in record_links


def test_atom_feeds_link_to_the_public_url(served: Served) -> None:
    for path in ("/changements.atom", f"/api/datasets/{SLUG}/changements.atom"):
        response = served.get(path)
        served.clean(response.text)
        feed = feedparser.parse(response.content)
        assert not feed.bozo, feed.bozo_exception
        assert {link.rel: link.href for link in feed.feed.links}["self"] == PUBLIC + path
        assert feed.entries
        for entry in feed.entries:
            assert entry.link == f"{PUBLIC}/jeux-de-donnees/{SLUG}"


def test_portal_pages_and_embed_snippet_use_the_public_url(served: Served) -> None:
    commune = served.clean(served.get(f"/communes/{COMMUNE}").text)
    assert f"&lt;iframe src=&#34;{PUBLIC}/integration/{COMMUNE}&#34;" in commune  # the snippet
    embedded = served.clean(served.get(f"/integration/{COMMUNE}").text)
    assert f'href="{PUBLIC}/jeux-de-donnees/{SLUG}"' in embedded
    assert f'href="{PUBLIC}/communes/{COMMUNE}"' in embedded
    page = served.clean(served.get(f"/jeux-de-donnees/{SLUG}").text)
    assert f"<code>{PUBLIC}/api/datasets/{SLUG}/dcat.ttl</code>" in page


def test_dcat_exports_use_the_public_url(served: Served) -> None:
    for path in ("/dcat/catalogue.ttl", f"/api/datasets/{SLUG}/dcat.ttl"):
        response = served.get(path)
        served.clean(response.text)
        graph = rdflib.Graph().parse(data=response.text, format="turtle")
        ours_ = [str(node) for node in graph.all_nodes() if isinstance(node, rdflib.URIRef)]
        assert any(uri.startswith(f"{PUBLIC}/api/datasets/{SLUG}") for uri in ours_)
        local = [uri for uri in ours_ if "donnees.example.org" in uri]
        assert local and all(uri.startswith(PUBLIC + "/") for uri in local)


def test_rows_next_link_uses_the_public_url(served: Served) -> None:
    response = served.get(f"/api/datasets/{SLUG}/rows", _taille="1")
    served.clean(response.text)
    following = response.json()["suivant"]
    assert following.startswith(f"{PUBLIC}/api/datasets/{SLUG}/rows?")
    assert "_taille=1" in following and "_apres=" in following
    assert response.headers["link"] == f'<{following}>; rel="next"'


def test_redirects_lead_to_the_public_url(served: Served) -> None:
    """Starlette's trailing-slash redirects are built from the Host: moved onto the public
    URL (behind nginx, which sends its upstream's name as Host, they would name it)."""
    for path in ("/api/datasets/", "/communes/"):
        response = requests.get(
            f"{served.base}{path}", headers={"Host": FORGED}, allow_redirects=False, timeout=30
        )
        assert response.status_code == 307
        assert response.headers["location"] == PUBLIC + path.rstrip("/")


# --- configuration ----------------------------------------------------------------------------


def test_a_public_url_must_be_an_http_base_url() -> None:
    assert configured_public_url({}) == "http://127.0.0.1:8000"
    assert configured_public_url({"OPENDATA_PUBLIC_URL": "https://d.example.fr/"}) == (
        "https://d.example.fr"
    )
    for wrong in (
        "d.example.fr",
        "javascript:alert(1)",
        "https://user:secret@d.example.fr",
        "https://d.example.fr/?q=1",
        "https://d.example.fr/#x",
        "https://d.example.fr/<script>",
    ):
        with pytest.raises(ValueError, match="OPENDATA_PUBLIC_URL"):
            configured_public_url({"OPENDATA_PUBLIC_URL": wrong})


def test_production_pycsw_never_takes_the_request_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """pycsw under gunicorn (production) reads the public URL from its own environment."""
    monkeypatch.delenv("OPENDATA_PUBLIC_URL", raising=False)
    asked = {"HTTP_HOST": FORGED, "SERVER_NAME": FORGED, "wsgi.url_scheme": "https"}
    assert pycsw_app.public_base_url(asked) == "http://127.0.0.1:8000"
    monkeypatch.setenv("OPENDATA_PUBLIC_URL", PUBLIC)
    assert pycsw_app.public_base_url(asked) == PUBLIC


def test_nginx_neither_passes_nor_caches_by_the_client_host() -> None:
    nginx = NGINX.read_text(encoding="utf-8")
    settings = [line.split("#")[0].strip() for line in nginx.splitlines()]
    assert "proxy_set_header Host $proxy_host;" in settings
    assert not any("$http_host" in line or "$host" in line for line in settings)
    assert 'proxy_set_header X-Forwarded-Host "";' in settings
    assert 'proxy_set_header X-Forwarded-Port "";' in settings
    wms = re.search(r"location = /wms \{(.*?)\n    \}", nginx, re.S)
    assert wms and "proxy_cache wms;" in wms.group(1)
    key = re.search(r"proxy_cache_key ([^;]+);", wms.group(1))
    assert key and key.group(1) == "$proxy_host$request_uri"
    # one level of proxy_set_header only: a location's own would drop the server's
    assert all(
        "proxy_set_header" not in block
        for block in re.findall(r"location [^{]+\{(.*?)\n    \}", nginx, re.S)
    )


# --- opendata servir ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def opendata_serve(tmp_path: Path) -> Iterator[Any]:
    """Start `opendata servir` with extra environment variables; stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(**environment: str) -> str:
        port = free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("OPENDATA_", "FORWARDED_ALLOW_IPS"))
        }
        env |= {
            "OPENDATA_DATA_DIR": str(tmp_path / "data"),
            "OPENDATA_INBOX_DIR": str(tmp_path / "inbox"),
            **environment,
        }
        command = [sys.executable, "-m", "opendata", "servir", "--port", str(port)]
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                requests.get(f"{base}/communes", timeout=5)
                return base
            except requests.ConnectionError:
                time.sleep(0.2)
        raise AssertionError("opendata servir did not start")

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_serve_keeps_the_rate_limit_whatever_x_forwarded_for_says(opendata_serve: Any) -> None:
    base = opendata_serve(OPENDATA_RATE_LIMIT="5/minute", OPENDATA_RATE_LIMIT_EXEMPT="")
    statuses = [
        requests.get(
            f"{base}/api/datasets", headers={"X-Forwarded-For": f"198.51.100.{n}"}, timeout=30
        ).status_code
        for n in range(20)
    ]
    assert statuses == [200] * 5 + [429] * 15


def test_serve_links_follow_its_own_address_without_a_public_url(opendata_serve: Any) -> None:
    base = opendata_serve()
    response = requests.get(f"{base}/changements.atom", headers={"Host": FORGED}, timeout=30)
    assert response.status_code == 200 and FORGED not in response.text
    feed = feedparser.parse(response.content)
    assert {link.rel: link.href for link in feed.feed.links}["self"] == f"{base}/changements.atom"
