"""Pull delivery (issue #7): datasets fetched from the communes' own servers.

Every server is real and on loopback: a plain HTTP server (http.server in a thread) with
ETag / Last-Modified support and injectable faults, a tiny CKAN-like API on it, and a
second deployment of the platform itself as the commune's GIS (MapServer's WFS,
pygeoapi's OGC API – Features) and DCAT catalog. Pulled datasets go through the whole
pipeline into the test's own store.
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import geopandas as gpd
import pytest
import yaml
from attacker import PUBLIC_ADDRESS, attacker_server, fake_resolver

from catalog.store import CatalogStore
from core.lifecycle import label
from core.problems import SubmissionRejected
from core.records import SourceState
from core.settings import Settings
from core.sources import SOURCE_KINDS, SourceKind, source_endpoint
from core.sources import Source as PullSource
from pipelines.harvest.changes import keep
from pipelines.harvest.contract import Fetching, FetchResult
from pipelines.harvest.errors import SourceError
from pipelines.harvest.folders import source_folders
from pipelines.harvest.http import USER_AGENT, HttpClient, RetryPolicy
from pipelines.harvest.paging import all_pages
from pipelines.harvest.pull import pull
from pipelines.harvest.registry import fetch, source_type
from pipelines.harvest.wfs import WfsLayer, fetch_wfs, wfs_hits
from pipelines.metadata import parse_metadata

from conftest import METADATA_TEMPLATE, SAMPLES, Deployment, deployment, running_catalog

FAST = RetryPolicy(
    attempts=3,
    base_delay=0.05,
    max_delay=0.2,
    retry_after_cap=2.0,
    connect_timeout=1.0,
    read_timeout=10.0,  # generous: the real WFS/OGC servers answer slowly on a loaded machine
)
IMPATIENT = replace(FAST, read_timeout=0.5)  # for the timeout fault alone
TREES = "numero,espece,hauteur\n1,Platane,12.5\n2,Tilleul,8\n3,Érable,10.25\n"
MORE_TREES = TREES + "4,Chêne,15\n"
RENAMED = TREES.replace("espece", "essence")  # a breaking change: a column renamed
BANCS = "ecully-bancs-publics"
BANCS_COUNT = 60  # features of samples/inbox/ecully/bancs-publics
SPORTS = "ecully-equipements-sportifs"
HTML_PAGE = b"<!DOCTYPE html><html><body><h1>Maintenance</h1></body></html>"
EXCEPTION_REPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1" version="2.0.0">
  <ows:Exception exceptionCode="NoApplicableCode">
    <ows:ExceptionText>Base de donnees du SIG indisponible</ows:ExceptionText>
  </ows:Exception>
</ows:ExceptionReport>"""


# --- the commune's plain HTTP server --------------------------------------------------------


@dataclass
class Route:
    """A file served with validators; `faults` are used one per request, then `fault`."""

    content: bytes
    content_type: str = "text/csv; charset=utf-8"
    validators: bool = True
    conditional: bool = True  # answers If-None-Match with 304
    faults: list[str] = field(default_factory=list)
    fault: str | None = None

    @property
    def etag(self) -> str:
        return f'"{hashlib.sha256(self.content).hexdigest()[:16]}"'

    @property
    def last_modified(self) -> str:
        return formatdate(1_700_000_000 + len(self.content), usegmt=True)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    status: int


class CommuneServer:
    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.json: dict[str, Any] = {}  # path -> JSON document (CKAN, OGC API pages)
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.stop = threading.Event()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def requests_to(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


def _handler(server: CommuneServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.counted = True
            with server.lock:
                server.active += 1
                server.max_active = max(server.max_active, server.active)
            try:
                self.answer()
            finally:
                self.uncount()

        def uncount(self) -> None:
            # A request is in flight from its arrival to its answer's first line: the
            # client frees its slot only after the whole answer, so counting until then
            # cannot overlap the next request of the same client (no race with the body).
            if getattr(self, "counted", False):
                self.counted = False
                with server.lock:
                    server.active -= 1

        def send_response(self, code: int, message: str | None = None) -> None:
            # recorded before the body goes out: the client may be done right after
            headers = {k.lower(): v for k, v in self.headers.items()}
            server.seen.append(Seen(urlsplit(self.path).path, headers, code))
            self.uncount()
            super().send_response(code, message)

        def answer(self) -> int:
            path = urlsplit(self.path).path
            if path in server.json:
                document = server.json[path]
                if callable(document):
                    document = document(parse_qs(urlsplit(self.path).query))
                status, document = document if isinstance(document, tuple) else (200, document)
                return self.send(status, json.dumps(document).encode(), "application/json")
            route = server.routes.get(path)
            if route is None:
                return self.send(404, b"introuvable", "text/plain")
            fault = route.faults.pop(0) if route.faults else route.fault
            return self.faulty(route, fault) if fault else self.serve(route)

        def serve(self, route: Route) -> int:
            headers = {}
            if route.validators:
                headers = {"ETag": route.etag, "Last-Modified": route.last_modified}
                if route.conditional and self.headers.get("If-None-Match") == route.etag:
                    return self.send(304, b"", None, headers)
            return self.send(200, route.content, route.content_type, headers)

        def faulty(self, route: Route, fault: str) -> int:
            kind, _, value = fault.partition(":")
            if kind == "statut":
                return self.send(int(value), b"erreur", "text/plain")
            if kind == "retry-after":
                return self.send(503, b"", "text/plain", {"Retry-After": value})
            if kind == "retry-date":
                when = formatdate(time.time() + float(value), usegmt=True)
                return self.send(503, b"", "text/plain", {"Retry-After": when})
            if kind == "html":
                return self.send(200, HTML_PAGE, "text/html; charset=utf-8")
            if kind == "redirection":
                return self.send(302, b"", "text/plain", {"Location": value})
            if kind == "wfs-exception":
                return self.send(200, EXCEPTION_REPORT, "text/xml")
            if kind == "pause":
                server.stop.wait(float(value))
                return self.serve(route)
            if kind == "tronque":
                self.send_response(200)
                self.send_header("Content-Length", str(len(route.content) + 1000))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(route.content)
                return 200
            if kind == "chunk-incomplet":
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(route.content), route.content))
                return 200  # no terminating chunk: the connection closes mid-body
            raise AssertionError(fault)

        def send(
            self,
            status: int,
            body: bytes,
            content_type: str | None,
            headers: dict[str, str] | None = None,
        ) -> int:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if content_type:
                self.send_header("Content-Type", content_type)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if status != 304:
                self.wfile.write(body)
            return status

    return Handler


@pytest.fixture(autouse=True)
def loopback_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The communes' servers of these tests listen on 127.0.0.1: the operator allows it
    (and only it, by that literal address), as the SSRF guard requires."""
    monkeypatch.setenv("OPENDATA_SOURCES_ALLOW", "127.0.0.1")


@pytest.fixture
def commune() -> Iterator[CommuneServer]:
    server = CommuneServer()
    thread = threading.Thread(target=server.httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def gis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Deployment]]:
    """Another deployment of the platform as the commune's GIS and catalog."""
    with deployment(tmp_path_factory, "sig-commune") as published:
        published.publish_sample(SAMPLES / "inbox" / "ecully" / "bancs-publics")
        published.publish_sample(SAMPLES / "inbox" / "ecully" / "equipements-sportifs")
        with running_catalog(published.store) as base:
            yield base, published


@pytest.fixture
def client() -> HttpClient:
    return HttpClient(FAST)


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/arbres.csv"


def declare(settings: Settings, name: str, source: dict[str, Any], extra: str = "") -> Path:
    """A declared-source folder of Écully's inbox: metadata.yaml only."""
    folder = settings.inbox_dir / "ecully" / name
    folder.mkdir(parents=True, exist_ok=True)
    metadata = METADATA_TEMPLATE.format(licence="etalab-2.0") + extra
    metadata += f"source: {json.dumps(source)}\n"
    (folder / "metadata.yaml").write_text(metadata, encoding="utf-8")
    return folder


def at(monkeypatch: pytest.MonkeyPatch, moment: str) -> None:
    monkeypatch.setenv("OPENDATA_NOW", moment)


def last_submission(store: CatalogStore) -> Any:
    return store.submissions("ecully")[-1]


# --- the metadata's `source` ----------------------------------------------------------------


def metadata_with(source: Any) -> dict[str, Any]:
    document = yaml.safe_load(METADATA_TEMPLATE.format(licence="etalab-2.0"))
    return {**document, "source": source}


@pytest.mark.parametrize(
    ("declared", "expected"),
    [
        (
            {"type": "fichier", "url": "https://ville.example/bancs.geojson"},
            {"type": "fichier", "url": "https://ville.example/bancs.geojson"},
        ),
        (
            {"type": "fichier", "url": "http://ville.example/x", "format": "SHP"},
            {"type": "fichier", "url": "http://ville.example/x", "format": "shapefile"},
        ),
        (
            {"type": "wfs", "url": "https://sig.example/wfs", "couche": "ns:bancs"},
            {
                "type": "wfs",
                "url": "https://sig.example/wfs",
                "couche": "ns:bancs",
                "version": "2.0.0",
            },
        ),
        (
            {"type": "WFS", "url": "https://sig.example/wfs", "couche": "b", "version": 1.1},
            {"type": "wfs", "url": "https://sig.example/wfs", "couche": "b", "version": "1.1.0"},
        ),
        (
            {"type": "ogcapi", "url": "https://sig.example/ogc", "collection": "bancs"},
            {"type": "ogcapi", "url": "https://sig.example/ogc", "collection": "bancs"},
        ),
        (
            {"type": "ckan", "url": "https://cat.example", "jeu": "bancs", "ressource": "CSV"},
            {"type": "ckan", "url": "https://cat.example", "jeu": "bancs", "ressource": "CSV"},
        ),
        (
            {"type": "dcat", "url": "https://cat.example/c.ttl", "jeu": "bancs", "format": "csv"},
            {"type": "dcat", "url": "https://cat.example/c.ttl", "jeu": "bancs", "format": "csv"},
        ),
    ],
)
def test_declared_sources_are_normalised(declared: dict, expected: dict) -> None:
    metadata = parse_metadata(metadata_with(declared), "ecully", "bancs")
    assert metadata.source == expected
    assert metadata.to_dict()["source"] == expected


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"type": "ftp", "url": "https://x.example/a.csv"}, "Type de source « ftp »"),
        ({"url": "https://x.example/a.csv"}, "Type de source absent"),
        ({"type": "fichier", "url": "ftp://x.example/a.csv"}, "seules les adresses http"),
        ({"type": "fichier", "url": "https://agent:secret@x.example/a.csv"}, "mot de passe"),
        ({"type": "fichier", "url": "https://x.example/a.csv?apikey=123"}, "« apikey »"),
        ({"type": "fichier", "url": "https://x.example/a.pdf", "format": "pdf"}, "« pdf »"),
        ({"type": "wfs", "url": "https://x.example/wfs"}, "demande la clé « couche »"),
        (
            {"type": "wfs", "url": "https://x.example/wfs", "couche": "a", "version": "1.0.0"},
            "1.0.0",
        ),
        (
            {"type": "ogcapi", "url": "https://x.example", "collection": "a", "couche": "b"},
            "« couche » inconnue",
        ),
        (
            {"type": "dcat", "url": "https://x.example/c.ttl", "jeu": "a"},
            "demande la clé « format »",
        ),
    ],
)
def test_invalid_sources_are_refused_in_french(declared: dict, message: str) -> None:
    with pytest.raises(SubmissionRejected) as refused:
        parse_metadata(metadata_with(declared), "ecully", "bancs")
    problems = refused.value.report.problems
    assert [p.rule for p in problems] == ["source-invalide"] and problems[0].column == "source"
    assert message in problems[0].message


def test_a_plain_text_source_still_names_the_producer() -> None:
    metadata = parse_metadata(metadata_with("ecully"), "ecully", "bancs")
    assert metadata.source is None and "source" not in metadata.to_dict()


def test_endpoint_names_type_url_and_what_is_taken() -> None:
    wfs = {
        "type": "wfs",
        "url": "HTTPS://SIG.example:443/wfs",
        "couche": "ns:b",
        "version": "1.1.0",
    }
    assert source_endpoint(wfs) == "wfs https://sig.example/wfs couche=ns:b"
    assert source_endpoint({**wfs, "version": "2.0.0"}) == source_endpoint(wfs)
    assert source_endpoint({**wfs, "couche": "ns:c"}) != source_endpoint(wfs)
    assert source_endpoint(PullSource(type="fichier", url="http://v.example/a.csv?b=1&a=2")) == (
        "fichier http://v.example/a.csv?a=2&b=1"
    )


def test_declared_source_folders_are_those_without_a_data_file(settings: Settings) -> None:
    pulled = declare(settings, "arbres", {"type": "fichier", "url": "https://v.example/a.csv"})
    uploaded = declare(settings, "bancs", {"type": "fichier", "url": "https://v.example/b.csv"})
    (uploaded / "bancs.csv").write_text(TREES, encoding="utf-8")
    plain = settings.inbox_dir / "ecully" / "parcs"
    plain.mkdir()
    (plain / "metadata.yaml").write_text(METADATA_TEMPLATE.format(licence="etalab-2.0"), "utf-8")
    assert source_folders(settings.inbox_dir, "ecully") == [pulled]
    assert source_folders(settings.inbox_dir, "lyon") == []


# --- the source types' registry ------------------------------------------------------------


def test_every_described_source_type_is_fetched_by_its_own_implementation(tmp_path: Path) -> None:
    assert list(SOURCE_KINDS) == ["fichier", "wfs", "ogcapi", "ckan", "dcat"]
    for name in SOURCE_KINDS:
        assert source_type(name).name == name
    with pytest.raises(SourceError) as unknown:
        fetch({"type": "ftp", "url": "https://x.example/a.csv"}, None, tmp_path)
    assert unknown.value.rule == "type-inconnu"


class TreesSource:
    """A source type defined here as its own module would define it (docs/source-types.md):
    the CSV file `<couche>.csv` under `url`."""

    name = "essai"

    def fetch(self, source: PullSource, state: SourceState | None, fetching: Fetching) -> Any:
        url = f"{source.url.rstrip('/')}/{source.couche}.csv"
        part = fetching.target_dir / f".{fetching.name}.part"
        try:
            fetching.client.download(url, "Fichier d'essai", part, {})
            return keep(part, fetching.target_dir / f"{fetching.name}.csv", state, url, None, None)
        finally:
            part.unlink(missing_ok=True)


def test_a_source_type_is_one_module_and_one_entry(
    commune: CommuneServer,
    settings: Settings,
    store: CatalogStore,
    client: HttpClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry = SourceKind(
        name="essai",
        label="source d'essai",
        fetcher="test_sources:TreesSource",
        required=("url", "couche"),
        endpoint=("couche",),
    )
    monkeypatch.setitem(SOURCE_KINDS, "essai", entry)
    commune.routes["/essai/arbres.csv"] = Route(TREES.encode())
    declared = {"type": "essai", "url": commune.url("/essai"), "couche": "arbres"}

    assert parse_metadata(metadata_with(declared), "ecully", "arbres").source == declared
    with pytest.raises(SubmissionRejected) as refused:
        parse_metadata(metadata_with({**declared, "couche": None}), "ecully", "arbres")
    assert "La source « essai » demande la clé « couche »" in refused.value.report.to_text()
    assert source_endpoint(declared) == f"essai {commune.url('/essai')} couche=arbres"

    folder = declare(settings, "arbres", declared)
    at(monkeypatch, "2026-11-02T08:00:00")
    first = pull(store, settings, "ecully", folder, client=client)
    assert first.status == "publiee", first.summary()
    assert [r.row_count for r in store.releases("ecully-arbres")] == [3]
    at(monkeypatch, "2026-11-03T08:00:00")
    again = pull(store, settings, "ecully", folder, client=client)
    assert again.status == "confirmee", again.summary()
    assert last_submission(store).report["source"]["inchange"] == "somme-de-controle"


# --- a file at a URL: first, unchanged, changed, checksum-only ------------------------------


def test_first_unchanged_changed_and_same_bytes_without_etag(
    commune: CommuneServer,
    settings: Settings,
    store: CatalogStore,
    client: HttpClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    route = commune.routes["/donnees/arbres.csv"] = Route(TREES.encode())
    folder = declare(
        settings, "arbres", {"type": "fichier", "url": commune.url("/donnees/arbres.csv")}
    )
    slug = "ecully-arbres"

    at(monkeypatch, "2026-11-02T08:00:00")
    first = pull(store, settings, "ecully", folder, client=client)
    assert first.status == "publiee", first.summary()
    state = store.source_state(slug)
    assert state.etag == route.etag and state.sha256 == hashlib.sha256(route.content).hexdigest()
    assert state.consecutive_failures == 0 and state.endpoint.startswith("fichier http://127.0.0.1")
    assert last_submission(store).channel == "moissonnage"
    assert store.get_dataset(slug).metadata["source"]["type"] == "fichier"

    at(monkeypatch, "2026-11-03T08:00:00")
    unchanged = pull(store, settings, "ecully", folder, client=client)
    assert unchanged.status == "confirmee", unchanged.summary()
    request = commune.requests_to("/donnees/arbres.csv")[-1]
    assert request.headers["if-none-match"] == route.etag and request.status == 304
    assert len(store.releases(slug)) == 1
    assert store.get_dataset(slug).last_confirmed_at.isoformat() == "2026-11-03T08:00:00"
    assert last_submission(store).report["source"]["inchange"] == "304"
    assert store.source_state(slug).last_success_at.isoformat() == "2026-11-03T08:00:00"

    route.content = MORE_TREES.encode()
    at(monkeypatch, "2026-11-04T08:00:00")
    changed = pull(store, settings, "ecully", folder, client=client)
    assert changed.status == "publiee", changed.summary()
    assert [r.row_count for r in store.releases(slug)] == [3, 4]
    assert store.source_state(slug).etag == route.etag

    route.validators = False  # the same bytes, but the server no longer sends an ETag
    at(monkeypatch, "2026-11-05T08:00:00")
    same = pull(store, settings, "ecully", folder, client=client)
    assert same.status == "confirmee", same.summary()
    assert commune.requests_to("/donnees/arbres.csv")[-1].status == 200
    assert last_submission(store).report["source"]["inchange"] == "somme-de-controle"
    assert len(store.releases(slug)) == 2
    assert store.get_dataset(slug).last_confirmed_at.isoformat() == "2026-11-05T08:00:00"


def test_a_structure_change_without_notice_is_refused_and_the_old_version_kept(
    commune: CommuneServer,
    settings: Settings,
    store: CatalogStore,
    client: HttpClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    route = commune.routes["/arbres.csv"] = Route(TREES.encode())
    folder = declare(settings, "arbres", {"type": "fichier", "url": commune.url("/arbres.csv")})
    at(monkeypatch, "2026-11-02T08:00:00")
    assert pull(store, settings, "ecully", folder, client=client).status == "publiee"
    served = store.current_release("ecully-arbres")
    accepted = store.source_state("ecully-arbres").sha256

    route.content = RENAMED.encode()
    for day in ("03", "04"):  # refused again next time: refused content is never "unchanged"
        at(monkeypatch, f"2026-11-{day}T08:00:00")
        refused = pull(store, settings, "ecully", folder, client=client)
        assert refused.status == "refusee"
        assert [p.rule for p in refused.report.problems] == ["changement-cassant-sans-avis"]
        assert "sans avis de changement" in refused.summary()
        assert store.current_release("ecully-arbres").id == served.id
        state = store.source_state("ecully-arbres")
        assert state.sha256 == accepted and state.consecutive_failures == 0


def test_changed_metadata_fetches_in_full_and_applies_to_the_same_content(
    commune: CommuneServer,
    settings: Settings,
    store: CatalogStore,
    client: HttpClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    commune.routes["/arbres.csv"] = Route(TREES.encode())
    folder = declare(settings, "arbres", {"type": "fichier", "url": commune.url("/arbres.csv")})
    at(monkeypatch, "2026-11-02T08:00:00")
    assert pull(store, settings, "ecully", folder, client=client).status == "publiee"
    metadata = folder / "metadata.yaml"
    text = metadata.read_text(encoding="utf-8")
    metadata.write_text(text.replace("Arbres plantés", "Arbres d'ornement plantés"), "utf-8")
    at(monkeypatch, "2026-11-03T08:00:00")
    outcome = pull(store, settings, "ecully", folder, client=client)
    assert outcome.status == "confirmee", outcome.summary()
    last = commune.requests_to("/arbres.csv")[-1]
    assert "if-none-match" not in last.headers and last.status == 200
    dataset = store.get_dataset("ecully-arbres")
    assert dataset.metadata["description"].startswith("Arbres d'ornement plantés")
    assert len(store.releases("ecully-arbres")) == 1


def test_a_server_ignoring_conditional_requests_is_judged_by_its_etag(
    commune: CommuneServer, client: HttpClient, tmp_path: Path
) -> None:
    route = commune.routes["/arbres.csv"] = Route(TREES.encode(), conditional=False)
    state = SourceState(
        dataset="ecully-arbres",
        endpoint="fichier",
        etag=route.etag,
        sha256=hashlib.sha256(route.content).hexdigest(),
    )
    source = {"type": "fichier", "url": commune.url("/arbres.csv")}
    result = fetch(source, state, tmp_path, client=client)
    assert (result.status, result.reason, result.path) == ("inchange", "etag", None)
    assert commune.seen[-1].status == 200 and list(tmp_path.iterdir()) == []
    route.content = MORE_TREES.encode()
    result = fetch(source, state, tmp_path, client=client)
    assert (result.status, result.reason) == ("nouveau", "modifie")
    assert result.path.read_text() == MORE_TREES and result.etag == route.etag


# --- faults ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "rule", "attempts", "words"),
    [
        ("statut:500", "erreur-serveur", 3, "500"),
        ("statut:404", "introuvable", 1, "404"),
        ("statut:400", "requete-refusee", 1, "400"),
        ("html", "page-html", 1, "page HTML"),
        ("tronque", "corps-tronque", 3, "annoncés"),
        ("chunk-incomplet", "corps-tronque", 3, "interrompue"),
        ("pause:1.5", "delai-depasse", 3, "pas de réponse"),
    ],
)
def test_faults_end_in_a_french_error_and_no_file(
    commune: CommuneServer,
    client: HttpClient,
    tmp_path: Path,
    fault: str,
    rule: str,
    attempts: int,
    words: str,
) -> None:
    commune.routes["/arbres.csv"] = Route(TREES.encode(), fault=fault)
    if fault.startswith("pause"):
        client = HttpClient(IMPATIENT)
    with pytest.raises(SourceError) as failed:
        fetch({"type": "fichier", "url": commune.url("/arbres.csv")}, None, tmp_path, client=client)
    error = failed.value
    assert error.rule == rule and words in str(error)
    assert commune.url("/arbres.csv") in str(error) and f"« {rule} »" in str(error)
    if attempts > 1:
        assert f"après {attempts} tentative(s)" in str(error)
    assert len(commune.requests_to("/arbres.csv")) == attempts or fault.startswith("pause")
    assert list(tmp_path.iterdir()) == []  # never a partial file


def test_a_source_bigger_than_the_bound_is_cut_off_and_leaves_no_file(
    commune: CommuneServer, tmp_path: Path
) -> None:
    big = TREES.encode() + b"".join(b"%d;Platane;12\r\n" % i for i in range(100, 20_000))
    commune.routes["/arbres.csv"] = Route(big)
    bounded = HttpClient(replace(FAST, max_bytes=64 * 1024))
    with pytest.raises(SourceError) as failed:
        fetch(
            {"type": "fichier", "url": commune.url("/arbres.csv")}, None, tmp_path, client=bounded
        )
    assert failed.value.rule == "trop-volumineux" and str(64 * 1024) in str(failed.value)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_connection_is_retried_then_reported(client: HttpClient, tmp_path: Path) -> None:
    url = closed_port_url()
    with pytest.raises(SourceError) as failed:
        fetch({"type": "fichier", "url": url}, None, tmp_path, client=client)
    assert failed.value.rule == "connexion-impossible"
    assert "connexion impossible" in str(failed.value) and "3 tentative(s)" in str(failed.value)


def test_retry_after_is_honoured_in_seconds_and_as_a_date_and_capped(
    commune: CommuneServer, client: HttpClient, tmp_path: Path
) -> None:
    source = {"type": "fichier", "url": commune.url("/arbres.csv")}
    for faults, least, most in (
        (["retry-after:1"], 0.9, 1.8),
        (["retry-date:2"], 0.9, 2.5),  # an HTTP date, read against the server's Date
        (["retry-after:3600"], 1.9, 3.0),  # capped at FAST.retry_after_cap (2 s)
    ):
        commune.routes["/arbres.csv"] = Route(TREES.encode(), faults=faults)
        started = time.monotonic()
        result = fetch(source, None, tmp_path / faults[0][:11], client=client)
        elapsed = time.monotonic() - started
        assert result.status == "nouveau" and result.path.read_text() == TREES
        assert least <= elapsed <= most, (faults, elapsed)
    assert [s.status for s in commune.seen] == [503, 200] * 3


def test_requests_name_the_platform_and_stay_two_at_a_time_per_host(
    commune: CommuneServer, tmp_path: Path
) -> None:
    commune.routes["/arbres.csv"] = Route(TREES.encode(), fault="pause:0.3")
    source = {"type": "fichier", "url": commune.url("/arbres.csv")}
    results: list[FetchResult] = []

    def one(index: int) -> None:
        results.append(fetch(source, None, tmp_path / str(index), client=HttpClient(FAST)))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(results) == 5 and all(r.status == "nouveau" for r in results)
    assert commune.max_active == 2
    assert {s.headers["user-agent"] for s in commune.seen} == {USER_AGENT}


def test_failures_are_counted_told_once_per_streak_and_the_version_kept(
    commune: CommuneServer,
    settings: Settings,
    store: CatalogStore,
    client: HttpClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    route = commune.routes["/arbres.csv"] = Route(TREES.encode())
    folder = declare(settings, "arbres", {"type": "fichier", "url": commune.url("/arbres.csv")})
    at(monkeypatch, "2026-11-02T08:00:00")
    published = pull(store, settings, "ecully", folder, client=client)
    slug = published.dataset

    route.fault = "statut:500"
    for count, day in ((1, "03"), (2, "04")):
        at(monkeypatch, f"2026-11-{day}T08:00:00")
        failed = pull(store, settings, "ecully", folder, client=client)
        assert failed.status == "refusee"
        text = failed.summary()
        assert "Récupération de la source (fichier) impossible" in text and "500" in text
        assert f"Échecs consécutifs : {count}" in text
        state = store.source_state(slug)
        assert state.consecutive_failures == count and "500" in state.last_error
        assert state.failing_since.isoformat() == "2026-11-03T08:00:00"
        assert store.current_release(slug).id == published.release
    events = [e for e in store.events(slug) if e.kind == "source-en-echec"]
    assert len(events) == 1 and "injoignable depuis le 03/11/2026" in events[0].title
    assert label("source-en-echec") == "Source de la commune injoignable"
    assert last_submission(store).status == "refusee"

    route.fault = None
    at(monkeypatch, "2026-11-05T08:00:00")
    assert pull(store, settings, "ecully", folder, client=client).status == "confirmee"
    state = store.source_state(slug)
    assert state.consecutive_failures == 0 and state.failing_since is None
    assert state.last_error is None

    route.fault = "statut:404"
    at(monkeypatch, "2026-11-06T08:00:00")
    assert pull(store, settings, "ecully", folder, client=client).status == "refusee"
    assert len([e for e in store.events(slug) if e.kind == "source-en-echec"]) == 2


# --- the commune's GIS: WFS and OGC API – Features ------------------------------------------


def published_frame(store: CatalogStore, slug: str) -> gpd.GeoDataFrame:
    release = store.current_release(slug)
    return gpd.read_parquet(store.release_path(release, "parquet")).to_crs(4326)


def assert_same_features(got: gpd.GeoDataFrame, expected: gpd.GeoDataFrame) -> None:
    got = got.to_crs(4326).sort_values("id_banc").reset_index(drop=True)
    expected = expected.sort_values("id_banc").reset_index(drop=True)
    assert [int(v) for v in got["id_banc"]] == [int(v) for v in expected["id_banc"]]
    assert list(got["materiau"]) == list(expected["materiau"])
    distances = got.geometry.to_crs(2154).distance(expected.geometry.to_crs(2154), align=False)
    assert distances.max() < 0.01  # metres


@pytest.mark.parametrize("version", ["2.0.0", "1.1.0"])
def test_a_wfs_layer_is_fetched_whole_page_by_page(
    gis: tuple[str, Deployment], client: HttpClient, tmp_path: Path, version: str
) -> None:
    base, commune = gis
    source = {"type": "wfs", "url": f"{base}/wfs", "couche": f"ms:{BANCS}", "version": version}
    result = fetch(source, None, tmp_path, client=client, page_size=7, name="bancs")
    assert result.status == "nouveau" and result.pages == math.ceil(BANCS_COUNT / 7)
    fetched = gpd.read_file(result.path)
    assert len(fetched) == BANCS_COUNT and fetched.crs.to_epsg() == 2154
    assert_same_features(fetched, published_frame(commune.store, BANCS))


def test_a_wfs_without_geojson_is_read_as_gml(
    gis: tuple[str, Deployment], client: HttpClient, tmp_path: Path
) -> None:
    base, commune = gis
    source = PullSource(type="wfs", url=f"{base}/wfs", couche=BANCS, version="2.0.0")
    result = fetch_wfs(client, source, None, tmp_path, "bancs", 25, None, allow_geojson=False)
    assert result.pages == 3
    fetched = gpd.read_file(result.path)
    assert len(fetched) == BANCS_COUNT
    assert_same_features(fetched, published_frame(commune.store, BANCS))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bancs.geojson"]


def test_a_wfs_layer_is_published_then_confirmed_by_its_checksum(
    gis: tuple[str, Deployment],
    settings: Settings,
    store: CatalogStore,
    client: HttpClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, commune = gis
    source = {"type": "wfs", "url": f"{base}/wfs", "couche": f"ms:{BANCS}"}
    folder = declare(settings, "bancs-sig", source)
    at(monkeypatch, "2026-11-02T08:00:00")
    outcome = pull(store, settings, "ecully", folder, client=client, page_size=20)
    assert outcome.status == "publiee", outcome.summary()
    assert store.current_release("ecully-bancs-sig").row_count == BANCS_COUNT
    assert_same_features(
        published_frame(store, "ecully-bancs-sig"), published_frame(commune.store, BANCS)
    )
    at(monkeypatch, "2026-11-03T08:00:00")
    again = pull(store, settings, "ecully", folder, client=client, page_size=20)
    assert again.status == "confirmee", again.summary()
    assert last_submission(store).report["source"]["inchange"] == "somme-de-controle"
    assert len(store.releases("ecully-bancs-sig")) == 1


def test_wfs_exception_reports_are_errors_even_with_http_200(
    gis: tuple[str, Deployment], commune: CommuneServer, client: HttpClient, tmp_path: Path
) -> None:
    base, _ = gis
    unknown = {"type": "wfs", "url": f"{base}/wfs", "couche": "ms:inconnue"}
    with pytest.raises(SourceError) as failed:
        fetch(unknown, None, tmp_path, client=client)
    assert failed.value.rule == "wfs-couche-inconnue" and f"ms:{BANCS}" in str(failed.value)

    layer = WfsLayer("ms:inconnue", "urn:ogc:def:crs:EPSG::2154", 2154, None)
    real = PullSource(type="wfs", url=f"{base}/wfs", couche="ms:inconnue")
    with pytest.raises(SourceError) as failed:  # MapServer: an exception report with a 400
        wfs_hits(client, real, "2.0.0", layer)
    assert failed.value.rule == "wfs-exception" and "inconnue" in str(failed.value)

    commune.routes["/wfs"] = Route(b"", fault="wfs-exception")
    broken = {"type": "wfs", "url": commune.url("/wfs"), "couche": "bancs"}
    with pytest.raises(SourceError) as failed:
        fetch(broken, None, tmp_path, client=client)
    assert failed.value.rule == "wfs-exception"
    assert "Base de donnees du SIG indisponible" in str(failed.value)
    assert [s.status for s in commune.seen] == [200]  # a definitive answer: not retried


def test_an_ogc_api_collection_is_followed_through_its_next_links(
    gis: tuple[str, Deployment],
    settings: Settings,
    store: CatalogStore,
    client: HttpClient,
    tmp_path: Path,
) -> None:
    base, commune = gis
    source = {"type": "ogcapi", "url": f"{base}/ogc", "collection": BANCS}
    result = fetch(source, None, tmp_path, client=client, page_size=7)
    assert result.pages >= math.ceil(BANCS_COUNT / 7)
    assert_same_features(gpd.read_file(result.path), published_frame(commune.store, BANCS))

    folder = declare(settings, "bancs-ogc", source)
    outcome = pull(store, settings, "ecully", folder, client=client, page_size=25)
    assert outcome.status == "publiee", outcome.summary()
    assert store.current_release("ecully-bancs-ogc").row_count == BANCS_COUNT


def test_a_server_that_stops_paging_halfway_is_an_error(
    commune: CommuneServer, client: HttpClient, tmp_path: Path
) -> None:
    def page(ids: range, matched: int, next_href: str | None) -> dict[str, Any]:
        features = [
            {
                "type": "Feature",
                "id": i,
                "properties": {"numero": i},
                "geometry": {"type": "Point", "coordinates": [4.77, 45.77]},
            }
            for i in ids
        ]
        links = [{"rel": "next", "href": next_href, "type": "application/geo+json"}]
        return {
            "type": "FeatureCollection",
            "numberMatched": matched,
            "features": features,
            "links": links if next_href else [],
        }

    commune.json["/court/collections/a/items"] = page(range(5), 10, None)
    commune.json["/casse/collections/a/items"] = page(range(5), 10, "/casse/page-2")
    for root, words in (("court", "5 objet(s) reçu(s) sur 10"), ("casse", "lien vers la page")):
        source = {"type": "ogcapi", "url": commune.url(f"/{root}"), "collection": "a"}
        with pytest.raises(SourceError) as failed:
            fetch(source, None, tmp_path, client=client, page_size=5)
        assert failed.value.rule == "pagination-interrompue" and words in str(failed.value)
        assert list(tmp_path.iterdir()) == []
    assert [s.status for s in commune.requests_to("/casse/page-2")] == [404]


def test_wfs_paging_stops_only_at_the_announced_count() -> None:
    def server(counts: list[int]) -> Any:
        starts: list[int] = []

        def page(start: int) -> int:
            starts.append(start)
            return counts[len(starts) - 1]

        page.starts = starts  # type: ignore[attr-defined]
        return page

    stopping = server([7, 7, 0])  # stops after 14 of the 20 features it announced
    with pytest.raises(SourceError) as failed:
        all_pages(stopping, 20, "http://sig.example/wfs")
    assert failed.value.rule == "pagination-interrompue"
    assert "14 objet(s) reçu(s) sur 20" in str(failed.value)
    whole = server([7, 7, 6])
    assert all_pages(whole, 20, "http://sig.example/wfs") == 3 and whole.starts == [0, 7, 14]
    unknown = server([5, 5, 0])  # no count announced: until an empty page
    assert all_pages(unknown, None, "http://sig.example/wfs") == 3


# --- catalogs: CKAN and DCAT ----------------------------------------------------------------


def test_a_ckan_resource_is_found_by_name_or_format_then_fetched(
    commune: CommuneServer,
    settings: Settings,
    store: CatalogStore,
    client: HttpClient,
    tmp_path: Path,
) -> None:
    commune.routes["/fichiers/arbres.csv"] = Route(TREES.encode())
    resources = [
        {"id": "r1", "name": "Notice", "format": "PDF", "url": commune.url("/notice.pdf")},
        {"id": "r2", "name": "Arbres", "format": "CSV", "url": commune.url("/fichiers/arbres.csv")},
    ]

    def package_show(query: dict[str, list[str]]) -> Any:
        if query.get("id") != ["arbres-alignement"]:
            return 404, {"success": False, "error": {"message": "Not found"}}
        return {"success": True, "result": {"name": "arbres-alignement", "resources": resources}}

    commune.json["/ckan/api/3/action/package_show"] = package_show
    ckan = {"type": "ckan", "url": commune.url("/ckan"), "jeu": "arbres-alignement"}
    for wanted in ("CSV", "arbres"):
        result = fetch({**ckan, "ressource": wanted}, None, tmp_path / wanted, client=client)
        assert result.url.endswith("/fichiers/arbres.csv") and result.path.suffix == ".csv"

    for changed, rule in (
        ({"jeu": "inconnu", "ressource": "CSV"}, "ckan-jeu-introuvable"),
        ({"ressource": "XLSX"}, "ckan-ressource-introuvable"),
    ):
        with pytest.raises(SourceError) as failed:
            fetch({**ckan, **changed}, None, tmp_path / "x", client=client)
        assert failed.value.rule == rule
    assert "Notice (PDF), Arbres (CSV)" in str(failed.value)

    folder = declare(settings, "arbres", {**ckan, "ressource": "CSV"})
    outcome = pull(store, settings, "ecully", folder, client=client)
    assert outcome.status == "publiee", outcome.summary()
    assert store.current_release("ecully-arbres").row_count == 3


def test_a_dcat_distribution_is_fetched_then_revalidated_with_its_etag(
    gis: tuple[str, Deployment],
    settings: Settings,
    store: CatalogStore,
    client: HttpClient,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    base, commune = gis
    catalogue = f"{base}/dcat/catalogue.ttl"
    source = {"type": "dcat", "url": catalogue, "jeu": SPORTS, "format": "CSV"}
    public_address = (
        "donnees_personnelles: {adresse: {traitement: non-personnel, "
        "justification: Adresse d'un équipement public.}}\n"
    )
    folder = declare(settings, "equipements", source, public_address)
    at(monkeypatch, "2026-11-02T08:00:00")
    outcome = pull(store, settings, "ecully", folder, client=client)
    assert outcome.status == "publiee", outcome.summary()
    expected = commune.store.current_release(SPORTS).row_count
    assert store.current_release("ecully-equipements").row_count == expected
    state = store.source_state("ecully-equipements")
    assert state.etag and state.endpoint == f"dcat {catalogue} jeu={SPORTS} format=csv"

    at(monkeypatch, "2026-11-03T08:00:00")
    again = pull(store, settings, "ecully", folder, client=client)
    assert again.status == "confirmee", again.summary()
    assert last_submission(store).report["source"]["inchange"] == "304"

    uri = f"{base}/jeux-de-donnees/{BANCS}#jeu"
    by_uri = fetch({**source, "jeu": uri, "format": "geojson"}, None, tmp_path, client=client)
    assert len(gpd.read_file(by_uri.path)) == BANCS_COUNT
    with pytest.raises(SourceError) as failed:
        fetch({**source, "format": "xlsx"}, None, tmp_path, client=client)
    assert failed.value.rule == "dcat-distribution-introuvable"
    assert "csv" in str(failed.value)
    with pytest.raises(SourceError) as failed:
        fetch({**source, "jeu": "inconnu"}, None, tmp_path, client=client)
    assert failed.value.rule == "dcat-jeu-introuvable"


def test_sources_cannot_reach_the_platforms_own_network(
    commune: CommuneServer, client: HttpClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commune.routes["/arbres.csv"] = Route(TREES.encode())
    port = commune.base.rsplit(":", 1)[1]
    commune.routes["/ailleurs.csv"] = Route(
        TREES.encode(), fault=f"redirection:http://localhost:{port}/arbres.csv"
    )
    # allowed host, redirected to a name the operator did not allow: refused before sending
    with pytest.raises(SourceError) as redirected:
        fetch(
            PullSource.from_dict({"type": "fichier", "url": commune.url("/ailleurs.csv")}),
            None,
            tmp_path / "a",
            client=client,
        )
    assert redirected.value.rule == "adresse-interne"
    assert not commune.requests_to("/arbres.csv")
    monkeypatch.delenv("OPENDATA_SOURCES_ALLOW")
    for url in (
        commune.url("/arbres.csv"),
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/x.csv",
    ):
        with pytest.raises(SourceError) as refused:
            fetch(
                PullSource.from_dict({"type": "fichier", "url": url}),
                None,
                tmp_path / "b",
                client=client,
            )
        assert refused.value.rule == "adresse-interne", url
        assert "réseau interne" in str(refused.value)
    assert not commune.requests_to("/arbres.csv")


# --- the egress guard (issue #16): what a declared source cannot make the platform do --------

ONCE = replace(FAST, attempts=1, connect_timeout=0.5)


def test_a_backslash_url_is_refused_before_any_parser_reads_it(
    commune: CommuneServer, tmp_path: Path
) -> None:
    # urlsplit reads the host as public.example (after the "@"), urllib3 as 127.0.0.1
    # (the backslash ends the authority): such a URL is refused, whoever reads it
    commune.routes["/arbres.csv"] = Route(TREES.encode())
    port = commune.base.rsplit(":", 1)[1]
    for url in (
        f"http://127.0.0.1:{port}\\@public.example/arbres.csv",
        f"http://127.0.0.1:{port}\\/arbres.csv",
    ):
        with pytest.raises(SourceError) as refused:
            HttpClient(ONCE).get(url, "Fichier")
        assert refused.value.rule == "adresse-invalide", url
        assert "barre oblique inverse" in refused.value.message
    assert commune.seen == []


def test_a_name_that_does_not_resolve_when_checked_is_refused(
    commune: CommuneServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # it would resolve (to the internal network) when the connection is made
    commune.routes["/arbres.csv"] = Route(TREES.encode())
    port = commune.base.rsplit(":", 1)[1]
    lookups = fake_resolver(monkeypatch, "sig.commune.example", [None, "127.0.0.1"])
    source = {"type": "fichier", "url": f"http://sig.commune.example:{port}/arbres.csv"}
    with pytest.raises(SourceError) as refused:
        fetch(source, None, tmp_path, client=HttpClient(ONCE))
    assert refused.value.rule == "hote-inconnu"
    assert "sig.commune.example" in refused.value.message
    assert lookups == ["sig.commune.example"] and commune.seen == []


def test_dns_rebinding_cannot_swap_the_checked_address(
    commune: CommuneServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # public when the guard asks, 127.0.0.1 (allowed only by that literal address) after
    commune.routes["/arbres.csv"] = Route(TREES.encode())
    port = commune.base.rsplit(":", 1)[1]
    lookups = fake_resolver(monkeypatch, "sig.commune.example", [PUBLIC_ADDRESS, "127.0.0.1"])
    source = {"type": "fichier", "url": f"http://sig.commune.example:{port}/arbres.csv"}
    with pytest.raises(SourceError) as failed:
        fetch(source, None, tmp_path, client=HttpClient(ONCE))
    assert failed.value.rule in {"connexion-impossible", "delai-depasse"}  # the public one
    assert lookups == ["sig.commune.example"]  # resolved once: by the guard
    assert commune.seen == []


@pytest.mark.parametrize(
    "where",
    ["document", "liste", "liste-imbriquee", "noeud", "import", "terme"],
)
def test_a_dcat_json_ld_catalog_never_makes_rdflib_fetch_a_context(
    where: str, commune: CommuneServer, tmp_path: Path
) -> None:
    with attacker_server() as attacker:
        remote = attacker.url("/contexte.jsonld")
        catalog = dcat_json_ld(commune)
        if where == "document":
            catalog["@context"] = remote
        elif where == "liste":
            catalog["@context"] = [remote, catalog["@context"]]
        elif where == "liste-imbriquee":  # not JSON-LD, but rdflib reads it all the same
            catalog["@context"] = [catalog["@context"], [[remote]]]
        elif where == "noeud":
            catalog["@graph"][0]["@context"] = remote
        elif where == "import":
            catalog["@context"]["@import"] = remote
        else:  # a scoped context, in a term's definition
            catalog["@context"]["distribution"] = {"@id": "dcat:distribution", "@context": remote}
        commune.routes["/catalogue.jsonld"] = Route(
            json.dumps(catalog).encode(), content_type="application/ld+json"
        )
        source = {"type": "dcat", "url": commune.url("/catalogue.jsonld"), "jeu": "arbres"}
        with pytest.raises(SourceError) as refused:
            fetch({**source, "format": "csv"}, None, tmp_path, client=HttpClient(ONCE))
        assert attacker.received == []
    assert refused.value.rule == "dcat-contexte-distant"
    assert remote in refused.value.message and "Turtle" in refused.value.message
    assert not commune.requests_to("/arbres.csv")


def test_a_dcat_json_ld_catalog_with_its_context_inline_is_read(
    commune: CommuneServer, tmp_path: Path
) -> None:
    commune.routes["/arbres.csv"] = Route(TREES.encode())
    document = dcat_json_ld(commune)
    for name, catalog in (("objet", document), ("tableau", document["@graph"])):
        if name == "tableau":  # a top-level array: the context in each node
            catalog = [{"@context": document["@context"], **node} for node in catalog]
        commune.routes[f"/{name}.jsonld"] = Route(
            json.dumps(catalog).encode(), content_type="application/ld+json"
        )
        source = {"type": "dcat", "url": commune.url(f"/{name}.jsonld"), "jeu": "arbres"}
        result = fetch({**source, "format": "csv"}, None, tmp_path / name, client=HttpClient(ONCE))
        assert result.status == "nouveau" and result.url == commune.url("/arbres.csv")


def dcat_json_ld(commune: CommuneServer) -> dict[str, Any]:
    """A one-dataset DCAT catalog in JSON-LD, its context written in the document."""
    return {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "distribution": {"@id": "dcat:distribution"},
            "downloadURL": {"@id": "dcat:downloadURL", "@type": "@id"},
            "format": {"@id": "dct:format"},
            "identifier": {"@id": "dct:identifier"},
        },
        "@graph": [
            {
                "@id": commune.url("/jeux/arbres"),
                "@type": "dcat:Dataset",
                "identifier": "arbres",
                "distribution": {
                    "@type": "dcat:Distribution",
                    "format": "CSV",
                    "downloadURL": commune.url("/arbres.csv"),
                },
            }
        ],
    }
