"""CSW 2.0.2, served by pycsw from the catalogue entries.

pycsw pins an old OWSLib, so it lives in a virtual environment of its own
(`var/pycsw-venv`, made by `scripts/bootstrap.sh` from `requirements-pycsw.lock`) and the
catalog talks to it through processes running `pycsw_app.py`:

- `update` writes one ISO 19139 record (`gmd:MD_Metadata`, `catalog.iso19139`) per public
  dataset (pycsw serves each record as written for the ISO output schema, and its Dublin
  Core view of it for csw:Record). The first time (or when what the repository holds is
  unknown) pycsw builds a new SQLite repository from them, swapped in with `os.replace`;
  afterwards only the changed records are written into it (upserted by identifier) and
  the withdrawn ones removed, in one pycsw transaction: a request sees the old records or
  the new ones, and a dataset that left the catalogue (depublished, restricted) leaves
  the repository with it. `csw-etat.json` beside the repository says what it holds (each
  record's print), so a restarted catalog does not rebuild it;
- `/csw` (GET and POST) is passed on to a resident gunicorn serving `pycsw_app.resident()`
  (`OPENDATA_OGC_PROCESSES` workers) on a Unix socket only the catalog reaches, started on
  the first request and again if it dies (gunicorn itself replaces a dead or stuck worker);
  with `OPENDATA_OGC_RESIDENT` set to "0", pycsw runs as a CGI program for each request.
  pycsw opens the repository for every request (its SQLAlchemy engine holds no connection
  to an SQLite file), so the resident server answers from the swapped-in file at once.

The configuration (`pycsw.cfg`) and the repository (`csw.db`) sit side by side under the
services folder, so a WSGI server running `pycsw_app:application` in pycsw's own container
can serve the same files (with `OPENDATA_CSW_CONFIG` naming the configuration).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import logging
import os
import select
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from catalog import iso19139
from catalog.bodies import BodyTooLarge, read_bounded
from catalog.description import Description
from catalog.ogc.layers import Entry, Layer
from catalog.ogc.pycsw_app import (
    CONFIG_VARIABLE,
    PUBLIC_URL_HEADER,
    PUBLIC_URL_VARIABLE,
)
from catalog.ogc.resident import ResidentServer, start_process
from catalog.site import cgi_server, public_url
from catalog.store import downloads
from core.settings import PROJECT_ROOT, resident_processes, resident_services

LOGGER = logging.getLogger(__name__)
RUNNER = Path(__file__).with_name("pycsw_app.py")
VENV_VARIABLE = "OPENDATA_PYCSW_VENV"
REQUEST_TIMEOUT = 30.0
BUILD_TIMEOUT = 300.0
BUILD_SECONDS_PER_RECORD = 0.1  # more time for a larger catalogue (10,000 records: 1,300 s)
MAX_BODY = 1_000_000  # bytes of a POST request
MAX_CONCURRENT = 4  # pycsw processes at once
CONFIG = """\
[server]
url=http://localhost/csw
encoding=UTF-8
language=fr-FR
maxrecords=100
pretty_print=false
domainquerytype=list
profiles=apiso

[manager]
transactions=false
allowed_ips=127.0.0.1

[metadata:main]
identification_title=Catalogue des données ouvertes des communes de la Métropole de Lyon
identification_abstract=Les jeux de données ouverts des communes partenaires de la Métropole de Lyon
identification_keywords=données ouvertes,open data,Métropole de Lyon,communes,catalogue
identification_keywords_type=theme
identification_fees=Aucun
identification_accessconstraints=Aucune : licences ouvertes (Licence Ouverte 2.0, ODbL)
provider_name=Métropole de Lyon et communes partenaires
provider_url=http://localhost/
contact_name=Administration du catalogue des données ouvertes
contact_position=Administrateur du catalogue
contact_address=
contact_city=Lyon
contact_stateorprovince=Auvergne-Rhône-Alpes
contact_postalcode=
contact_country=France
contact_phone=
contact_fax=
contact_email=
contact_url=http://localhost/
contact_hours=
contact_instructions=
contact_role=pointOfContact

[repository]
database=sqlite:///csw.db
table=records

[metadata:inspire]
enabled=false
"""


def pycsw_venv() -> Path:
    return Path(os.environ.get(VENV_VARIABLE, PROJECT_ROOT / "var" / "pycsw-venv"))


MAX_CACHED_CAPABILITIES = 16


class CswError(RuntimeError):
    """pycsw could not build the repository or answer (message for the logs)."""


class CswService:
    """pycsw's CSW 2.0.2 at `/csw`, over a repository rebuilt whenever the catalogue changes."""

    def __init__(
        self,
        services_dir: Path,
        venv: Path | None = None,
        timeout: float = REQUEST_TIMEOUT,
        resident: bool | None = None,
    ) -> None:
        self.folder = services_dir / "csw"
        self.config = self.folder / "pycsw.cfg"
        self.repository = self.folder / "csw.db"
        self.state_path = self.folder / "csw-etat.json"  # what the repository holds
        self.python = (venv or pycsw_venv()) / "bin" / "python"
        self.timeout = timeout
        self.resident = resident_services() if resident is None else resident
        self.server: ResidentServer | None = None  # started on the first request
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        # GetCapabilities answers by (query, public URL), until the next change
        self._capabilities: dict[tuple[str, str], tuple[int, str, bytes]] = {}
        self._select: Callable[[Request], CswService] = lambda _request: self
        self.folder.mkdir(parents=True, exist_ok=True)
        _write_if_changed(self.config, CONFIG)
        self.updater = Updater(self.python)

    # --- OgcService --------------------------------------------------------------------------

    def update(self, layers: list[Layer], entries: list[Entry]) -> None:
        """Write the new and changed entries' records into the repository and remove the
        withdrawn ones (the whole repository is built only the first time, or when its
        state is unknown)."""
        if not self.python.exists():
            LOGGER.warning("CSW non mis à jour : environnement pycsw absent (%s)", self.python)
            return
        known = self._known_records()
        self._capabilities.clear()
        self.state_path.unlink(missing_ok=True)  # unknown while the repository changes
        try:
            if known is None:
                count = self.build([record_document(entry) for entry in entries])
                action = "reconstruit"
            else:
                count = self._apply(known, entries)
                action = "mis à jour"
            self._save_state({entry.slug: _record_state(entry) for entry in entries})
            self._capabilities.clear()  # one kept meanwhile may be the old repository's
            self.updater.start()  # pycsw loaded now, ready for the next change
        except (CswError, OSError, subprocess.TimeoutExpired):
            # Fail closed: the previous repository may list a dataset since restricted or
            # depublished. The service answers 503 until the next refresh rebuilds it.
            self.repository.unlink(missing_ok=True)
            self.state_path.unlink(missing_ok=True)
            LOGGER.exception("Échec de la mise à jour du catalogue CSW")
            raise
        LOGGER.info("Catalogue CSW %s : %d fiches écrites", action, count)

    def _apply(self, known: dict[str, list[str]], entries: list[Entry]) -> int:
        """Upsert the entries whose record changed, remove those gone: one pycsw run."""
        changed = [e for e in entries if known.get(e.slug, [""])[0] != _record_state(e)[0]]
        present = {entry.slug for entry in entries}
        removed = [state[1] for slug, state in known.items() if slug not in present]
        if not changed and not removed:
            return 0
        change = {
            "target": str(self.repository),
            "records": [record_document(e) for e in changed],
            "removed": removed,
        }
        return self.updater.write(change)

    def _known_records(self) -> dict[str, list[str]] | None:
        """What the repository holds (slug -> [record print, identifier]), from the state
        file written with it; None when unknown (no repository, no or broken state)."""
        if not self.repository.exists():
            return None
        try:
            known = json.loads(self.state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return known if isinstance(known, dict) else None

    def _save_state(self, state: dict[str, list[str]]) -> None:
        _write_if_changed(self.state_path, json.dumps(state, sort_keys=True))

    def mount(self, app: FastAPI, select: Callable[[Request], CswService] | None = None) -> None:
        """The routes; `select` gives the instance answering each request (the caller's
        audience's, see `services.TieredService`), this one by default."""
        self._select = select or (lambda _request: self)
        for method in ("GET", "POST"):
            app.add_api_route(
                "/csw",
                self.route,
                methods=[method],
                operation_id=f"csw_{method.lower()}",
                summary="Catalogue CSW 2.0.2 (pycsw)",
                description="Le catalogue en CSW 2.0.2 (OGC) pour les moissonneurs : "
                "GetCapabilities, GetRecords, GetRecordById, DescribeRecord, GetDomain "
                "(GET : paires clé-valeur ; POST : requête XML).",
                response_class=Response,
                tags=["OGC"],
            )

    # --- repository --------------------------------------------------------------------------

    def build(self, documents: list[dict[str, object]]) -> int:
        """Have pycsw build a repository from these records in a new file, then swap it in."""
        _remove_abandoned(self.folder.glob(".csw-*.db"))
        staging = self.folder / f".csw-{uuid.uuid4().hex}.db"
        try:
            done = subprocess.run(
                [str(self.python), "-I", str(RUNNER), "build", str(staging)],
                input=json.dumps(documents).encode("utf-8"),
                capture_output=True,
                timeout=BUILD_TIMEOUT + BUILD_SECONDS_PER_RECORD * len(documents),
                env=_base_environment(),
                check=False,
            )
            if done.returncode != 0:
                raise CswError(done.stderr.decode("utf-8", "replace")[-4000:])
            os.replace(staging, self.repository)
        finally:
            staging.unlink(missing_ok=True)
        return int(json.loads(done.stdout)["records"])

    # --- requests ----------------------------------------------------------------------------

    async def route(self, request: Request) -> Response:
        chosen = await run_in_threadpool(self._select, request)
        return await chosen.handle(request)

    async def handle(self, request: Request) -> Response:
        """Run pycsw on this request (GET key-value pairs or POST XML)."""
        body = await _read_body(request)
        if not self.python.exists():
            raise HTTPException(
                503,
                detail="Le service CSW est indisponible : l'environnement de pycsw "
                f"({self.python.parent.parent}) est absent ; lancez scripts/bootstrap.sh.",
            )
        if not self.repository.exists():
            raise HTTPException(
                503, detail="Le catalogue CSW est en cours de préparation ; réessayez plus tard."
            )
        key = _capabilities_key(request)
        cached = self._capabilities.get(key) if key else None
        if cached is not None:
            return Response(cached[2], status_code=cached[0], media_type=cached[1])
        try:
            if self.resident:
                answer = await run_in_threadpool(self.run_resident, request, body)
                if key and answer.status_code == 200:
                    self._keep_capabilities(key, answer)
                return answer
            environ = self.cgi_environment(request, len(body))
            output = await run_in_threadpool(self.run_cgi, environ, body)
        except (subprocess.TimeoutExpired, TimeoutError):
            raise HTTPException(
                504, detail=f"Le service CSW n'a pas répondu en {self.timeout:g} secondes."
            ) from None
        except CswError:
            LOGGER.exception("Échec de pycsw")
            raise HTTPException(
                502, detail="Le service CSW a échoué ; réessayez plus tard."
            ) from None
        return cgi_response(output)

    def _keep_capabilities(self, key: tuple[str, str], answer: Response) -> None:
        """The capabilities answer, served again until the repository changes (`update`)."""
        while len(self._capabilities) >= MAX_CACHED_CAPABILITIES:
            self._capabilities.pop(next(iter(self._capabilities)))
        media_type = answer.headers.get("content-type", "application/xml")
        self._capabilities[key] = (answer.status_code, media_type, bytes(answer.body))

    def run_resident(self, request: Request, body: bytes) -> Response:
        """The request passed on to the resident pycsw: its query, body and content type,
        and the public URL (no other header of the caller, not its Host)."""
        target = "/csw" + (f"?{request.url.query}" if request.url.query else "")
        headers = {"Host": "localhost", PUBLIC_URL_HEADER: public_url(request)}
        if request.method == "POST":
            headers["Content-Type"] = request.headers.get("content-type", "")
        with self._slots:
            for attempt in range(2):
                connection = UnixHTTPConnection(self._server().address(), self.timeout)
                try:
                    connection.request(request.method, target, body or None, headers)
                    answer = connection.getresponse()
                    content = answer.read()
                except (ConnectionRefusedError, FileNotFoundError) as refused:
                    if attempt:  # the server was started again, and still does not listen
                        raise CswError(f"pycsw résident injoignable : {refused}") from None
                    continue  # it died while nobody was asking: started again on the retry
                except (http.client.HTTPException, ConnectionError) as failed:
                    raise CswError(f"pycsw résident : {failed!r}") from None
                finally:
                    connection.close()
                media_type = answer.getheader("Content-Type") or "application/xml"
                return Response(content, status_code=answer.status, media_type=media_type)
        raise AssertionError("unreachable")

    def _server(self) -> ResidentServer:
        if self.server is None:
            self.server = ResidentServer(
                self._gunicorn,
                {**_base_environment(), CONFIG_VARIABLE: str(self.config)},
                label="pycsw",
                cwd=self.folder,
            )
        return self.server

    def _gunicorn(self, fd: int) -> list[str]:
        """gunicorn in pycsw's environment, on the socket `fd`: a worker stuck past the
        catalog's time limit is killed and replaced, one renewed every thousand requests."""
        return [
            *(str(self.python), "-I", "-m", "gunicorn", "--bind", f"fd://{fd}"),
            *("--workers", str(resident_processes()), "--timeout", str(int(self.timeout) + 5)),
            *("--graceful-timeout", "2", "--max-requests", "1000", "--max-requests-jitter", "100"),
            *("--no-control-socket", "--log-level", "warning", "--error-logfile", "-"),
            *("--preload", "--chdir", str(RUNNER.parent), "pycsw_app:resident()"),
        ]

    def close(self) -> None:
        """Stop the resident pycsw and the updater (the application stops)."""
        if self.server is not None:
            self.server.close()
        self.updater.close()

    def cgi_environment(self, request: Request, length: int) -> dict[str, str]:
        """The CGI variables of the request; the catalog's own environment is not passed on,
        nor the request's Host: pycsw's links start with the application's public URL."""
        base = public_url(request)
        return {
            **_base_environment(),
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": request.url.query,
            "CONTENT_TYPE": request.headers.get("content-type", ""),
            "CONTENT_LENGTH": str(length),
            "SCRIPT_NAME": "/csw",
            "PATH_INFO": "",
            **cgi_server(base),
            "SERVER_PROTOCOL": "HTTP/1.1",
            PUBLIC_URL_VARIABLE: base,
            CONFIG_VARIABLE: str(self.config),
        }

    def run_cgi(self, environ: dict[str, str], body: bytes) -> bytes:
        with self._slots:
            done = subprocess.run(
                [str(self.python), "-I", str(RUNNER), "cgi"],
                input=body,
                capture_output=True,
                timeout=self.timeout,
                env=environ,
                cwd=self.folder,
                check=False,
            )
        if done.returncode != 0 or b"\r\n\r\n" not in done.stdout:
            raise CswError(done.stderr.decode("utf-8", "replace")[-4000:])
        return done.stdout


class Updater:
    """A pycsw process kept to write the changes into the repository
    (``pycsw_app.py updates``): one JSON line each way per change, no pycsw start."""

    def __init__(self, python: Path) -> None:
        self.python = python
        self.process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def write(self, change: dict[str, object]) -> int:
        """The change written (the number of records written); CswError if it failed."""
        line = json.dumps(change).encode("utf-8") + b"\n"
        with self._lock:
            for attempt in range(2):
                try:
                    answer = self._exchange(line)
                except (OSError, TimeoutError, ValueError) as failed:
                    self._stop()
                    if attempt:
                        raise CswError(f"pycsw (mises à jour) : {failed!r}") from None
                    continue  # it died meanwhile: a new one
                if "error" in answer:
                    raise CswError(str(answer["error"]))
                return int(answer["records"])
        raise AssertionError("unreachable")

    def _exchange(self, line: bytes) -> dict[str, object]:
        process = self._process()
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(line)
        process.stdin.flush()
        ready, _, _ = select.select([process.stdout], [], [], BUILD_TIMEOUT)
        if not ready:
            raise TimeoutError(f"pas de réponse en {BUILD_TIMEOUT} s")
        answer = process.stdout.readline()
        if not answer:
            raise BrokenPipeError("processus arrêté")
        found = json.loads(answer)
        if not isinstance(found, dict):
            raise ValueError("réponse illisible")
        return found

    def _process(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            self.process = start_process(
                [str(self.python), "-I", str(RUNNER), "updates"],
                "KILL",
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=_base_environment(),
                close_fds=True,
            )
        return self.process

    def _stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            self.process = None

    def start(self) -> None:
        """Have the process load pycsw now, before the first change needs it."""
        with self._lock:
            self._process()

    def close(self) -> None:
        with self._lock:
            self._stop()


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix socket (the resident pycsw's)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


async def _read_body(request: Request) -> bytes:
    """The request's body, refused beyond MAX_BODY without reading it all."""
    try:
        return await read_bounded(request, MAX_BODY)
    except BodyTooLarge:
        raise HTTPException(413, detail="Requête CSW trop volumineuse (1 Mo au plus).") from None


def cgi_response(output: bytes) -> Response:
    """A Response from a CGI program's output (a Status header, other headers, the body)."""
    head, _, body = output.partition(b"\r\n\r\n")
    status, content_type = 200, "application/xml"
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = int(value.split()[0])
        elif name.strip().lower() == "content-type":
            content_type = value.strip()
    return Response(content=body, status_code=status, media_type=content_type)


# --- records ---------------------------------------------------------------------------------


def record_document(entry: Entry) -> dict[str, object]:
    """What the builder needs for one entry: its ISO 19139 record, its named links (pycsw
    keeps a link's name and description where Dublin Core has no room), and the columns
    pycsw would otherwise derive less well from the record: the exact extent (pycsw rounds
    it to 0.01°), the text a word search reads (not the links), the dates and rights its
    Dublin Core view shows."""
    description = entry.about
    keywords = [*description.keywords, *description.themes.values()]
    return {
        "xml": iso19139.record_xml(description),
        "links": [
            [link.name, link.description, link.protocol, link.url] for link in description.links
        ],
        "columns": {
            "pycsw:BoundingBox": wkt_polygon(description.extent.bbox),
            "pycsw:AnyText": " ".join(searchable_text(description)),
            "pycsw:Keywords": ",".join(keyword.replace(",", " ") for keyword in keywords),
            "pycsw:Modified": description.revised.isoformat(),
            "pycsw:Date": description.revised.isoformat(),
            "pycsw:Creator": description.contact.organisation,
            "pycsw:Publisher": description.contact.organisation,
            "pycsw:AccessConstraints": description.licence.name,
            "pycsw:Format": ",".join(media_types(entry)),
        },
    }


def _capabilities_key(request: Request) -> tuple[str, str] | None:
    """The cache key of a GetCapabilities GET (None for any other request)."""
    if request.method != "GET":
        return None
    asked = {k.lower(): v.lower() for k, v in request.query_params.items()}
    if asked.get("request") != "getcapabilities":
        return None
    return request.url.query, public_url(request)


def _record_state(entry: Entry) -> list[str]:
    """The entry's record print and identifier, as the state file keeps them."""
    return [entry.state or _print_of(entry), entry.about.identifier]


def _print_of(entry: Entry) -> str:
    return hashlib.sha256(json.dumps(record_document(entry), sort_keys=True).encode()).hexdigest()


def searchable_text(description: Description) -> list[str]:
    """What a full-text search matches: every word of the description but its links (a
    word search must not match every URL)."""
    return [
        description.title,
        description.abstract,
        *description.keywords,
        *description.themes.values(),
        description.contact.organisation,
        description.contact.service,
        description.lineage,
        description.licence.name,
    ]


def media_types(entry: Entry) -> list[str]:
    offered = downloads.offered(entry.bbox is not None)
    return list(dict.fromkeys(downloads.FORMATS[fmt].media_type for fmt in offered))


def wkt_polygon(bbox: tuple[float, float, float, float] | None) -> str | None:
    """The extent as pycsw stores it (WGS84, longitude first), exact; a point's box is
    widened by a hair so that it stays a polygon."""
    if bbox is None:
        return None
    west, south, east, north = bbox
    pad = 1e-6
    if east - west < pad:
        west, east = west - pad, east + pad
    if north - south < pad:
        south, north = south - pad, north + pad
    corners = [(west, south), (west, north), (east, north), (east, south), (west, south)]
    return "POLYGON((" + ", ".join(f"{x!r} {y!r}" for x, y in corners) + "))"


def _base_environment() -> dict[str, str]:
    return {"PATH": os.defpath, "LANG": "C.UTF-8"}


def _remove_abandoned(stagings: Iterable[Path]) -> None:
    """Repositories left half-built by a build that was killed (older than any build)."""
    for staging in stagings:
        with contextlib.suppress(OSError):
            if time.time() - staging.stat().st_mtime > 2 * BUILD_TIMEOUT:
                staging.unlink()


def _write_if_changed(path: Path, content: str) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == content:
        return
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    staging.write_text(content, encoding="utf-8")
    os.replace(staging, path)
