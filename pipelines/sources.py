"""Pull delivery (issue #7): fetch a dataset from the commune's own server.

A dataset's metadata may declare a `source` instead of a file (see
`pipelines.metadata.check_source`): a file at an http(s) URL, a WFS layer, an OGC API –
Features collection, or a resource of a CKAN or DCAT catalog. `fetch` brings it to a
local file in an accepted format, or says the source has not changed; `pull` runs one
declared-source folder of a commune's inbox through the same pipeline as an upload
(channel « moissonnage »).

Change detection: a conditional GET (If-None-Match / If-Modified-Since) where the server
gives validators, then the SHA-256 of the content, compared with the content last taken
into the catalog. A HEAD request is not made: a conditional GET already carries the
validators, and an equal length never proves equal content.

Faults (timeouts, refused connections, 5xx, 429, truncated bodies) are retried with
exponential backoff, honouring `Retry-After`; definitive answers (404, 400, 401/403, an
HTML page, a WFS exception report, a broken paging) are not. Either way the result is a
`SourceError` in French and no file: a partial download is never handed on.

Respect for the commune's server: a User-Agent naming the platform and its contact, at
most `RetryPolicy.per_host` requests at a time per host in this process, timeouts.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import geopandas as gpd
import pandas as pd
import pyogrio
import requests
import yaml
from lxml import etree
from owslib.wfs import WebFeatureService
from rdflib import Graph, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF
from urllib3.exceptions import ReadTimeoutError

from catalog.store import CatalogStore
from core import clock
from core.netguard import GuardedSession, Refused, sources_policy
from core.problems import Problem, Report, SubmissionRejected, reject
from core.records import SourceState, SubmissionRecord
from core.safe_yaml import read_producer_yaml
from core.settings import Settings
from core.vocabularies import find_frequency
from core.sources import SOURCE_FORMATS, check_source_url
from pipelines.publish import file_sha256
from pipelines.read import FORMATS
from pipelines.safety import UnsafeInput, check_xml_bytes
from pipelines.submission import (
    METADATA_NAMES,
    NOT_DATA,
    Outcome,
    Submission,
    dataset_slug,
    record_rejection,
    run_submission,
    stage_metadata,
)

USER_AGENT = (
    "PlateformeDonneesOuvertes-MetropoleLyon/1.0 "
    "(+https://donnees.example.org; contact donnees-ouvertes@example.org)"
)
CHANNEL = "moissonnage"
STAGE = "source"
EVENT_KIND = "source-en-echec"
RETRY_DELAY_VARIABLE = "OPENDATA_SOURCES_RETRY_DELAY"  # seconds; the default policy's base delay
DEFAULT_PAGE_SIZE = 1000
MAX_PAGES = 10_000
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # one capabilities document, JSON page, catalog
CHUNK_BYTES = 1024 * 1024
RETRYABLE_STATUS = {408: "delai-depasse", 425: "trop-de-requetes", 429: "trop-de-requetes"}
EXTENSIONS = {
    "csv": ".csv",
    "xlsx": ".xlsx",
    "geojson": ".geojson",
    "shapefile": ".zip",
    "gpkg": ".gpkg",
    "kml": ".kml",
    "gml": ".gml",
}
CONTENT_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "application/geo+json": "geojson",
    "application/vnd.geo+json": "geojson",
    "application/json": "geojson",
    "application/zip": "shapefile",
    "application/x-zip-compressed": "shapefile",
    "application/geopackage+sqlite3": "gpkg",
}
# How catalogs name each format (DCAT file-type codes, media types, CKAN formats).
FORMAT_LABELS = {
    "csv": {"csv", "text/csv"},
    "xlsx": {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
    "geojson": {"geojson", "application/geo+json", "application/vnd.geo+json"},
    "shapefile": {"shp", "shapefile", "zip", "application/zip"},
    "gpkg": {"gpkg", "geopackage", "application/geopackage+sqlite3"},
}
MAGIC = {
    "xlsx": (b"PK\x03\x04",),
    "shapefile": (b"PK\x03\x04",),
    "gpkg": (b"SQLite format 3\x00",),
    "geojson": (b"{",),
}
RDF_FORMATS = {
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
    "application/n-triples": "nt",
}
HYDRA_NEXT = URIRef("http://www.w3.org/ns/hydra/core#next")
XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
TYPE_LABELS = {
    "fichier": "fichier",
    "wfs": "service WFS",
    "ogcapi": "service OGC API – Features",
    "ckan": "catalogue CKAN",
    "dcat": "catalogue DCAT",
}


# --- what a source is, what fetching it gives ------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A declared source, as `pipelines.metadata.check_source` normalised it."""

    type: str
    url: str
    format: str | None = None
    couche: str | None = None
    version: str | None = None
    collection: str | None = None
    jeu: str | None = None
    ressource: str | None = None

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Source:
        names = cls.__dataclass_fields__
        return cls(**{k: str(v) for k, v in record.items() if k in names and v is not None})

    @property
    def label(self) -> str:
        return TYPE_LABELS.get(self.type, self.type)


class SourceError(Exception):
    """The source could not be fetched: what happened, at which URL, under which rule."""

    def __init__(self, rule: str, message: str, url: str) -> None:
        self.rule = rule
        self.message = message
        self.url = url
        super().__init__(f"{message} — adresse : {_short(url)} (règle « {rule} »)")


@dataclass(frozen=True)
class FetchResult:
    """`inchange`: nothing to publish (why in `reason`); `nouveau`: `path` holds the content."""

    status: str  # inchange | nouveau
    reason: str  # 304 | etag | last-modified | somme-de-controle | premiere | modifie
    detail: str  # the reason in French
    url: str  # the address of the content (the file a catalog pointed to)
    path: Path | None = None
    sha256: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    length: int | None = None
    pages: int = 0  # requests of features (WFS, OGC API)

    @property
    def changed(self) -> bool:
        return self.status == "nouveau"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try, and how gently: exponential backoff, capped `Retry-After`."""

    attempts: int = 4
    base_delay: float = 2.0  # seconds before the 2nd attempt, doubled after each one
    max_delay: float = 60.0
    retry_after_cap: float = 300.0
    connect_timeout: float = 10.0
    read_timeout: float = 60.0  # between two bytes
    total_timeout: float = 1800.0  # one response, body included
    per_host: int = 2
    max_bytes: int = 2 * 1024**3

    def backoff(self, attempt: int) -> float:
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1))

    @classmethod
    def from_environment(cls) -> RetryPolicy:
        """The default policy, its base delay set by `OPENDATA_SOURCES_RETRY_DELAY` (seconds)
        when given: a faster backoff for tests, a gentler one for a fragile server."""
        value = os.environ.get(RETRY_DELAY_VARIABLE, "").strip()
        if not value:
            return cls()
        try:
            delay = float(value)
        except ValueError:
            delay = -1.0
        if not 0 <= delay <= cls.max_delay:
            raise ValueError(
                f"{RETRY_DELAY_VARIABLE} : un nombre de secondes entre 0 et {cls.max_delay:g} "
                f"est attendu, « {value} » reçu"
            )
        return cls(base_delay=delay)


def source_endpoint(source: Source | dict[str, Any]) -> str:
    """The canonical endpoint of a source: type, URL and what is taken there. A change of
    it is a change of the infrastructure of diffusion (annex §3.2: 30-day rule)."""
    source = _as_source(source)
    parts = [source.type, _canonical_url(source.url)]
    taken = {
        "wfs": ("couche",),
        "ogcapi": ("collection",),
        "ckan": ("jeu", "ressource"),
        "dcat": ("jeu", "format"),
    }.get(source.type, ())
    parts += [f"{key}={getattr(source, key)}" for key in taken]
    return " ".join(parts)


def _canonical_url(url: str) -> str:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    netloc = host if parts.port in (None, default) else f"{host}:{parts.port}"
    query = "&".join(sorted(p for p in parts.query.split("&") if p))
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", query, ""))


def _as_source(source: Source | dict[str, Any]) -> Source:
    return source if isinstance(source, Source) else Source.from_dict(source)


# --- HTTP, gently ---------------------------------------------------------------------------


class _Transient(Exception):
    """A fault worth another attempt."""

    def __init__(self, rule: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.retry_after = retry_after


@dataclass
class Answer:
    status: int
    url: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    content: bytes = b""
    length: int | None = None  # bytes written, for downloads to a file

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def media_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()


_SLOTS: dict[str, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


@contextmanager
def _host_slot(url: str, size: int) -> Iterator[None]:
    """At most `size` requests at a time to one host (per process)."""
    host = urlsplit(url).netloc.lower()
    with _SLOTS_LOCK:
        slot = _SLOTS.setdefault(host, threading.BoundedSemaphore(size))
    with slot:
        yield


class HttpClient:
    """requests with the platform's User-Agent, timeouts, retries and per-host slots."""

    def __init__(self, policy: RetryPolicy | None = None) -> None:
        self.policy = policy or RetryPolicy.from_environment()
        # every request, redirects included, through the SSRF guard (core.netguard)
        self.session = GuardedSession(sources_policy)
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.max_redirects = 5

    def get(
        self,
        url: str,
        what: str,
        *,
        params: dict[str, str] | None = None,
        accept: str | None = None,
        explain: Callable[[int, bytes], SourceError | None] | None = None,
    ) -> Answer:
        """A document held in memory (capabilities, a page of features, a catalog)."""
        headers = {"Accept": accept} if accept else {}

        def once() -> Answer:
            return self._once(url, what, params, headers, None, explain)

        return self._with_retries(url, what, once)

    def download(self, url: str, what: str, target: Path, headers: dict[str, str]) -> Answer:
        """A file written to `target` (absent after any failure); 304 writes nothing."""

        def once() -> Answer:
            try:
                return self._once(url, what, None, headers, target, None)
            except BaseException:
                target.unlink(missing_ok=True)
                raise

        return self._with_retries(url, what, once)

    def _with_retries(self, url: str, what: str, once: Callable[[], Answer]) -> Answer:
        attempts = max(1, self.policy.attempts)
        for attempt in range(1, attempts + 1):
            try:
                with _host_slot(url, self.policy.per_host):
                    return once()
            except _Transient as problem:
                if attempt == attempts:
                    raise SourceError(
                        problem.rule,
                        f"{what} : {problem.message}, après {attempts} tentative(s)",
                        url,
                    ) from problem
                time.sleep(self._delay(problem, attempt))
        raise AssertionError("unreachable")

    def _delay(self, problem: _Transient, attempt: int) -> float:
        if problem.retry_after is not None:
            return min(problem.retry_after, self.policy.retry_after_cap)
        return self.policy.backoff(attempt)

    def _once(
        self,
        url: str,
        what: str,
        params: dict[str, str] | None,
        headers: dict[str, str],
        target: Path | None,
        explain: Callable[[int, bytes], SourceError | None] | None,
    ) -> Answer:
        policy = self.policy
        try:
            raw = self.session.get(
                url,
                params=params,
                headers=headers,
                stream=True,
                timeout=(policy.connect_timeout, policy.read_timeout),
            )
        except Refused as refused:  # before RequestException: it is one, and never retried
            raise SourceError(refused.rule, refused.message, refused.url) from refused
        except requests.exceptions.Timeout as error:
            raise _Transient(
                "delai-depasse", f"pas de réponse du serveur en {policy.read_timeout:g} s"
            ) from error
        except requests.exceptions.SSLError as error:
            message = f"{what} : connexion TLS refusée ({error})"
            raise SourceError("tls-invalide", message, url) from error
        except requests.exceptions.ConnectionError as error:
            raise _Transient(
                "connexion-impossible", "connexion impossible (refusée, ou serveur injoignable)"
            ) from error
        except requests.exceptions.RequestException as error:
            message = f"{what} : requête impossible ({error})"
            raise SourceError("requete-impossible", message, url) from error
        with raw:
            response = Answer(
                status=raw.status_code,
                url=raw.url,
                headers={k.lower(): v for k, v in raw.headers.items()},
            )
            _check_status(raw, response, what, url, explain)
            if raw.status_code == 304:
                return response
            if target is None:
                response.content = self._read(raw, response, what, url, None)
            else:
                self._read(raw, response, what, url, target)
            return response

    def _read(
        self,
        raw: requests.Response,
        response: Answer,
        what: str,
        url: str,
        target: Path | None,
    ) -> bytes:
        """The body, whole: to `target`, or returned; a short body is a transient fault."""
        limit = self.policy.max_bytes if target is not None else MAX_DOCUMENT_BYTES
        deadline = time.monotonic() + self.policy.total_timeout
        chunks: list[bytes] = []
        size = 0
        sink = target.open("wb") if target is not None else None
        try:
            for chunk in raw.iter_content(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise SourceError(
                        "trop-volumineux", f"{what} : réponse de plus de {limit} octets", url
                    )
                if time.monotonic() > deadline:
                    raise _Transient(
                        "delai-depasse",
                        f"réponse non terminée après {self.policy.total_timeout:g} s",
                    )
                if sink is not None:
                    sink.write(chunk)
                else:
                    chunks.append(chunk)
        except requests.exceptions.RequestException as error:
            if any(isinstance(cause, ReadTimeoutError) for cause in error.args):
                message = f"le serveur a cessé d'envoyer pendant {self.policy.read_timeout:g} s"
                raise _Transient("delai-depasse", message) from error
            raise _Transient("corps-tronque", _interrupted(response)) from error
        finally:
            if sink is not None:
                sink.close()
        _check_length(response, size)
        response.length = size
        return b"".join(chunks)


def _check_status(
    raw: requests.Response,
    response: Answer,
    what: str,
    url: str,
    explain: Callable[[int, bytes], SourceError | None] | None,
) -> None:
    code = raw.status_code
    if code < 400:
        return
    if explain is not None:
        error = explain(code, _peek(raw))
        if error is not None:
            raise error
    answer = f"le serveur a répondu {code} {raw.reason or ''}".strip()
    if code in RETRYABLE_STATUS or code >= 500 and code not in (501, 505):
        rule = RETRYABLE_STATUS.get(code, "erreur-serveur")
        raise _Transient(rule, answer, _retry_after(response))
    if code in (404, 410):
        raise SourceError("introuvable", f"{what} introuvable : {answer}", url)
    if code in (401, 403):
        raise SourceError(
            "acces-refuse",
            f"{what} : accès refusé ({answer}) ; une source déclarée doit être publique",
            url,
        )
    raise SourceError("requete-refusee", f"{what} : requête refusée ({answer})", url)


def _peek(raw: requests.Response) -> bytes:
    """The start of an error's body (an OGC exception report says more than its status)."""
    try:
        return raw.raw.read(64 * 1024, decode_content=True) or b""
    except Exception:  # a broken error body explains nothing more than its status
        return b""


def _interrupted(response: Answer) -> str:
    declared = response.header("content-length")
    if declared is not None:
        return (
            "réponse tronquée : la connexion s'est fermée avant la fin du corps "
            f"({declared} octets annoncés par Content-Length)"
        )
    return "réponse interrompue avant la fin du corps (transfert par morceaux incomplet)"


def _check_length(response: Answer, size: int) -> None:
    declared = response.header("content-length")
    if declared is None or response.header("content-encoding"):
        return
    if declared.isdigit() and int(declared) != size:
        raise _Transient(
            "corps-tronque",
            f"réponse tronquée : {size} octets reçus sur {declared} annoncés (Content-Length)",
        )


def _retry_after(response: Answer) -> float | None:
    """`Retry-After` in seconds, given as seconds or as an HTTP date (against the server's
    own `Date`, so that clock skew does not matter)."""
    value = (response.header("retry-after") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    reference = _http_date(response.header("date") or "") or clock.now().replace(tzinfo=UTC)
    return max(0.0, (when - reference).total_seconds())


def _http_date(value: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- fetch ----------------------------------------------------------------------------------


def fetch(
    source: Source | dict[str, Any],
    state: SourceState | None,
    target_dir: Path,
    *,
    client: HttpClient | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    name: str = "donnees",
    crs: int | None = None,
) -> FetchResult:
    """Fetch `source` into `target_dir` (file `name` + extension), or tell it is unchanged
    since `state` (the content last taken into the catalog); raise SourceError."""
    source = _as_source(source)
    client = client or HttpClient()
    target_dir.mkdir(parents=True, exist_ok=True)
    if source.type == "fichier":
        return _fetch_file(client, source.url, source.format, state, target_dir, name)
    if source.type == "wfs":
        return _fetch_wfs(client, source, state, target_dir, name, page_size, crs)
    if source.type == "ogcapi":
        return _fetch_ogcapi(client, source, state, target_dir, name, page_size)
    if source.type == "ckan":
        url, fmt = _resolve_ckan(client, source)
        return _fetch_file(client, url, fmt, state, target_dir, name)
    if source.type == "dcat":
        url = _resolve_dcat(client, source)
        return _fetch_file(client, url, source.format, state, target_dir, name)
    raise SourceError("type-inconnu", f"Type de source « {source.type} » inconnu", source.url)


# --- a file at a URL ------------------------------------------------------------------------


def _fetch_file(
    client: HttpClient,
    url: str,
    declared_format: str | None,
    state: SourceState | None,
    target_dir: Path,
    name: str,
) -> FetchResult:
    what = "Téléchargement du fichier de la commune"
    part = target_dir / f".{name}.part"
    response = client.download(url, what, part, _conditional_headers(state))
    etag, modified = response.header("etag"), response.header("last-modified")
    if response.status == 304:
        assert state is not None
        return _unchanged("304", url, state, etag or state.etag, modified or state.last_modified)
    try:
        same = _same_validators(state, etag, modified)
        if same is not None:
            assert state is not None
            return _unchanged(same, url, state, etag, modified)
        fmt = declared_format or _format_of(response, url)
        _check_content(part, fmt, response, url)
        return _keep(part, target_dir / f"{name}{EXTENSIONS[fmt]}", state, url, etag, modified)
    finally:
        part.unlink(missing_ok=True)


def _conditional_headers(state: SourceState | None) -> dict[str, str]:
    headers = {}
    if state is not None and state.etag:
        headers["If-None-Match"] = state.etag
    if state is not None and state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def _same_validators(
    state: SourceState | None, etag: str | None, modified: str | None
) -> str | None:
    """A server that ignored the conditional request but sent the same validator."""
    if state is None or state.sha256 is None:
        return None
    if etag and state.etag and etag == state.etag and not etag.startswith("W/"):
        return "etag"
    if not etag and not state.etag and modified and modified == state.last_modified:
        return "last-modified"
    return None


def _format_of(response: Answer, url: str) -> str:
    """The format from the file name the server gives, else from the URL's extension, else
    from Content-Type (last: an XLSX is often served as application/zip)."""
    names = [urlsplit(response.url or url).path]
    disposition = response.header("content-disposition")
    if disposition:
        message = Message()
        message["content-disposition"] = disposition
        names.insert(0, message.get_filename() or "")
    for name in names:
        if Path(name).suffix.lower() in FORMATS:
            return FORMATS[Path(name).suffix.lower()]
    if response.media_type in CONTENT_TYPES:
        return CONTENT_TYPES[response.media_type]
    raise SourceError(
        "format-indetermine",
        f"Format du fichier indéterminé (type « {response.media_type or 'absent'} », sans "
        "extension connue) : précisez « format: » dans la source (csv, xlsx, geojson, "
        "shapefile, gpkg)",
        url,
    )


def _check_content(path: Path, fmt: str, response: Answer, url: str) -> None:
    """A complete body may still not be data: an HTML page, or another format."""
    with path.open("rb") as handle:
        head = handle.read(1024)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not text:
        raise SourceError("reponse-vide", "Le serveur a envoyé une réponse vide", url)
    if response.media_type in {"text/html", "application/xhtml+xml"} or text.startswith(
        (b"<!doctype html", b"<html")
    ):
        raise SourceError(
            "page-html",
            f"Le serveur a envoyé une page HTML au lieu de données au format {fmt.upper()} "
            "(page d'erreur, de connexion ou de maintenance ?)",
            url,
        )
    expected = MAGIC.get(fmt)
    if expected and not (head if fmt != "geojson" else text).startswith(expected):
        raise SourceError(
            "contenu-inattendu",
            f"Le contenu reçu n'est pas un fichier {fmt.upper()} (début : {head[:40]!r})",
            url,
        )


def _keep(
    part: Path,
    final: Path,
    state: SourceState | None,
    url: str,
    etag: str | None,
    modified: str | None,
    pages: int = 0,
) -> FetchResult:
    """The complete content: unchanged when its checksum is the last accepted one."""
    digest = file_sha256(part)
    length = part.stat().st_size
    if state is not None and state.sha256 == digest:
        return _unchanged("somme-de-controle", url, state, etag, modified, length, pages)
    part.replace(final)
    first = state is None or state.sha256 is None
    return FetchResult(
        status="nouveau",
        reason="premiere" if first else "modifie",
        detail="première récupération" if first else "contenu modifié depuis la dernière fois",
        url=url,
        path=final,
        sha256=digest,
        etag=etag,
        last_modified=modified,
        length=length,
        pages=pages,
    )


UNCHANGED_DETAILS = {
    "304": "le serveur indique que la ressource n'a pas changé (304 Not Modified)",
    "etag": "même ETag que le contenu diffusé",
    "last-modified": "même date Last-Modified que le contenu diffusé",
    "somme-de-controle": "contenu identique au contenu diffusé (même longueur, même SHA-256)",
}


def _unchanged(
    reason: str,
    url: str,
    state: SourceState,
    etag: str | None,
    modified: str | None,
    length: int | None = None,
    pages: int = 0,
) -> FetchResult:
    return FetchResult(
        status="inchange",
        reason=reason,
        detail=UNCHANGED_DETAILS[reason],
        url=url,
        sha256=state.sha256,
        etag=etag,
        last_modified=modified,
        length=length if length is not None else state.length,
        pages=pages,
    )


# --- WFS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _WfsLayer:
    typename: str
    srs: str  # as the capabilities list it
    epsg: int
    geojson: str | None  # the GeoJSON output format, when offered


def _fetch_wfs(
    client: HttpClient,
    source: Source,
    state: SourceState | None,
    target_dir: Path,
    name: str,
    page_size: int,
    crs: int | None,
    allow_geojson: bool = True,
) -> FetchResult:
    version = source.version or "2.0.0"
    layer = _wfs_layer(client, source, version, crs)
    if not allow_geojson:
        layer = replace(layer, geojson=None)
    total = _wfs_hits(client, source, version, layer)
    part = target_dir / f".{name}.part"
    try:
        if layer.geojson:
            pages = _wfs_geojson_pages(client, source, version, layer, total, page_size, part)
        else:
            pages = _wfs_gml_pages(client, source, version, layer, total, page_size, part)
        return _keep(part, target_dir / f"{name}.geojson", state, source.url, None, None, pages)
    finally:
        part.unlink(missing_ok=True)


def _wfs_layer(client: HttpClient, source: Source, version: str, crs: int | None) -> _WfsLayer:
    what = "Capacités du service WFS"
    params = {"SERVICE": "WFS", "REQUEST": "GetCapabilities", "VERSION": version}
    response = client.get(source.url, what, params=params, explain=_wfs_explain(source.url))
    _raise_exception_report(response.content, source.url)
    try:
        service = WebFeatureService(source.url, version=version, xml=response.content)
    except Exception as error:  # OWSLib raises whatever its XML parsing meets
        raise SourceError(
            "wfs-capacites-illisibles", f"{what} illisibles ({error})", source.url
        ) from error
    typename = _find_layer(list(service.contents), source.couche or "", source.url)
    content = service.contents[typename]
    formats = _output_formats(service, content)
    geojson = next((f for f in formats if "json" in f.lower()), None)
    srs, epsg = _choose_crs(content.crsOptions, crs)
    return _WfsLayer(typename=typename, srs=srs, epsg=epsg, geojson=geojson)


def _find_layer(offered: list[str], wanted: str, url: str) -> str:
    """The layer as declared, with or without its namespace prefix."""

    def local(name: str) -> str:
        return name.split(":")[-1]

    for name in offered:
        if name == wanted or local(name) == local(wanted):
            return name
    raise SourceError(
        "wfs-couche-inconnue",
        f"Couche « {wanted} » absente du service WFS (couches offertes : "
        f"{', '.join(offered[:30]) or 'aucune'})",
        url,
    )


def _output_formats(service: Any, content: Any) -> list[str]:
    formats = list(getattr(content, "outputFormats", None) or [])
    try:
        operation = service.getOperationByName("GetFeature")
        values = operation.parameters.get("outputFormat", {}).get("values", [])
    except (KeyError, AttributeError):
        values = []
    return formats + [v for v in values if v not in formats]


def _choose_crs(options: list[Any], declared: int | None) -> tuple[str, int]:
    """The declared CRS when offered, else a projected accepted one (no axis order
    ambiguity), else WGS 84 (longitude first in GeoJSON, RFC 7946)."""
    codes = {getattr(o, "code", None): o for o in options}
    for code in (declared, 2154, 3946, 4326, 4171):
        if code is not None and code in codes:
            return codes[code].getcodeurn(), code
    return "urn:ogc:def:crs:EPSG::4326", 4326


def _wfs_params(version: str, layer: _WfsLayer, **extra: str) -> dict[str, str]:
    params = {"SERVICE": "WFS", "REQUEST": "GetFeature", "VERSION": version}
    params["TYPENAMES" if version.startswith("2") else "TYPENAME"] = layer.typename
    params.update(extra)
    return params


def _wfs_hits(client: HttpClient, source: Source, version: str, layer: _WfsLayer) -> int | None:
    """How many features the layer holds, when the server says (RESULTTYPE=hits)."""
    params = _wfs_params(version, layer, RESULTTYPE="hits")
    what = "Nombre d'objets de la couche WFS"
    response = client.get(source.url, what, params=params, explain=_wfs_explain(source.url))
    _raise_exception_report(response.content, source.url)
    try:
        root = etree.fromstring(response.content, parser=XML_PARSER)
    except etree.XMLSyntaxError:
        return None
    value = root.get("numberMatched") or root.get("numberOfFeatures")
    return int(value) if value and value.isdigit() else None


def _wfs_page(
    client: HttpClient,
    source: Source,
    version: str,
    layer: _WfsLayer,
    start: int,
    count: int,
    output: str | None,
) -> bytes:
    size = "COUNT" if version.startswith("2") else "MAXFEATURES"
    extra = {size: str(count), "STARTINDEX": str(start), "SRSNAME": layer.srs}
    if output:
        extra["OUTPUTFORMAT"] = output
    params = _wfs_params(version, layer, **extra)
    what = f"Objets {start + 1} à {start + count} de la couche WFS « {layer.typename} »"
    response = client.get(source.url, what, params=params, explain=_wfs_explain(source.url))
    _raise_exception_report(response.content, source.url)
    return response.content


def _wfs_geojson_pages(
    client: HttpClient,
    source: Source,
    version: str,
    layer: _WfsLayer,
    total: int | None,
    page_size: int,
    part: Path,
) -> int:
    features: list[dict[str, Any]] = []

    def page(start: int) -> int:
        content = _wfs_page(client, source, version, layer, start, page_size, layer.geojson)
        got = _json_features(content, source.url)
        features.extend(got)
        return len(got)

    pages = _all_pages(page, total, source.url)
    _write_geojson(features, layer.epsg, part, source.url)
    return pages


def _wfs_gml_pages(
    client: HttpClient,
    source: Source,
    version: str,
    layer: _WfsLayer,
    total: int | None,
    page_size: int,
    part: Path,
) -> int:
    frames: list[gpd.GeoDataFrame] = []

    def page(start: int) -> int:
        content = _wfs_page(client, source, version, layer, start, page_size, None)
        frame = _gml_frame(content, part.parent / f".page-{start}.gml", source.url)
        frames.append(frame)
        return len(frame)

    pages = _all_pages(page, total, source.url)
    frames = [f for f in frames if len(f)]
    if not frames:
        raise SourceError("reponse-vide", "La couche WFS ne contient aucun objet", source.url)
    merged = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    merged = merged.drop(columns=[c for c in ("gml_id",) if c in merged.columns])
    pyogrio.write_dataframe(merged, part, driver="GeoJSON")
    return pages


def _all_pages(page: Callable[[int], int], total: int | None, url: str) -> int:
    """Ask page after page (`page(start)` keeps the features, says how many), until `total`
    features (when known) or an empty page; the number of pages asked."""
    received = pages = 0
    while True:
        if pages == MAX_PAGES:
            raise SourceError("pagination-sans-fin", f"Plus de {MAX_PAGES} pages", url)
        got = page(received)
        received += got
        pages += 1
        if not got or (total is not None and received >= total):
            break
    if total is not None and received != total:
        raise _paging_error(received, total, url)
    return pages


def _paging_error(received: int, total: int, url: str) -> SourceError:
    return SourceError(
        "pagination-interrompue",
        f"Le serveur s'est arrêté en cours de pagination : {received} objet(s) reçu(s) sur "
        f"{total} annoncé(s) ; rien n'est publié à partir d'une récupération partielle",
        url,
    )


def _gml_frame(content: bytes, path: Path, url: str) -> gpd.GeoDataFrame:
    """One GML page as a GeoDataFrame (GDAL turns the axis order of the CRS right)."""
    try:
        root = etree.fromstring(content, parser=XML_PARSER)
    except etree.XMLSyntaxError as error:
        raise SourceError("contenu-inattendu", f"Page GML illisible ({error})", url) from error
    if (root.get("numberReturned") or root.get("numberOfFeatures")) == "0":
        return gpd.GeoDataFrame()
    path.write_bytes(content)
    try:
        return pyogrio.read_dataframe(path, DOWNLOAD_SCHEMA="NO")
    except Exception as error:  # GDAL errors come in several types
        raise SourceError("contenu-inattendu", f"Page GML illisible ({error})", url) from error
    finally:
        for leftover in path.parent.glob(f"{path.stem}.*"):
            leftover.unlink(missing_ok=True)


def _wfs_explain(url: str) -> Callable[[int, bytes], SourceError | None]:
    def explain(_code: int, body: bytes) -> SourceError | None:
        _refuse_unsafe_xml(body, url)
        text = _exception_text(body)
        return None if text is None else _exception_error(text, url)

    return explain


def _refuse_unsafe_xml(content: bytes, url: str) -> None:
    """Refuse a DTD declaring entities (billion laughs, external entities) before lxml,
    OWSLib, rdflib or GDAL parse the document: defusedxml reads its prolog, where any
    entity must be declared (pipelines.safety)."""
    try:
        check_xml_bytes(content, "reçu")
    except UnsafeInput as error:
        if error.rule != "xml-illisible":  # not XML at all (JSON…): for the caller to say
            # (an encoding expat cannot read is refused: lxml might read it, entities too)
            raise SourceError(error.rule, error.message, url) from error


def _raise_exception_report(content: bytes, url: str) -> None:
    _refuse_unsafe_xml(content, url)  # every WFS answer comes here before it is parsed
    text = _exception_text(content)
    if text is not None:
        raise _exception_error(text, url)


def _root_name(content: bytes) -> str | None:
    """The local name of an XML document's root, read without parsing the rest."""
    if content.lstrip()[:1] != b"<":
        return None
    events = etree.iterparse(
        io.BytesIO(content), events=("start",), resolve_entities=False, no_network=True
    )
    try:
        for _, element in events:
            return etree.QName(element).localname
    except etree.XMLSyntaxError:
        return None
    return None


def _exception_error(text: str, url: str) -> SourceError:
    return SourceError(
        "wfs-exception", f"Le service WFS a répondu par un rapport d'exception : « {text} »", url
    )


def _exception_text(content: bytes) -> str | None:
    """The text of an OGC exception report (whatever the HTTP status), else None."""
    if _root_name(content) not in {"ExceptionReport", "ServiceExceptionReport"}:
        return None
    root = etree.fromstring(content, parser=XML_PARSER)
    texts = " ".join(t.strip() for t in root.itertext() if t.strip())
    return texts[:500] or "(sans message)"


# --- OGC API – Features ---------------------------------------------------------------------


def _fetch_ogcapi(
    client: HttpClient,
    source: Source,
    state: SourceState | None,
    target_dir: Path,
    name: str,
    page_size: int,
) -> FetchResult:
    items = f"{source.url.rstrip('/')}/collections/{quote(source.collection or '')}/items"
    part = target_dir / f".{name}.part"
    try:
        features, pages = _ogcapi_features(client, items, page_size, source.collection or "")
        _write_geojson(features, 4326, part, source.url)
        return _keep(part, target_dir / f"{name}.geojson", state, source.url, None, None, pages)
    finally:
        part.unlink(missing_ok=True)


def _ogcapi_features(
    client: HttpClient, items: str, page_size: int, collection: str
) -> tuple[list[dict[str, Any]], int]:
    """Every feature, following `next` links; the count checked against numberMatched."""
    url: str | None = f"{items}?limit={page_size}"
    features: list[dict[str, Any]] = []
    matched: int | None = None
    seen: set[str] = set()
    pages = 0
    while url is not None and pages < MAX_PAGES:
        seen.add(url)
        document = _ogcapi_page(client, url, pages, len(features), collection)
        pages += 1
        if pages == 1 and isinstance(document.get("numberMatched"), int):
            matched = document["numberMatched"]
        got = document.get("features")
        if not isinstance(got, list):
            raise SourceError("contenu-inattendu", "Page sans « features » (GeoJSON)", url)
        features.extend(got)
        url = _next_link(document, url) if got else None
        if url in seen:
            raise SourceError("pagination-sans-fin", "Le lien « next » tourne en rond", url)
    if matched is not None and len(features) != matched:
        raise _paging_error(len(features), matched, items)
    return features, pages


def _ogcapi_page(
    client: HttpClient, url: str, index: int, received: int, collection: str
) -> dict[str, Any]:
    what = f"Page {index + 1} de la collection OGC API « {collection} »"
    accept = "application/geo+json, application/json;q=0.9"
    try:
        response = client.get(url, what, accept=accept)
    except SourceError as error:
        if index == 0:
            raise
        raise SourceError(
            "pagination-interrompue",
            f"Le lien vers la page suivante est cassé après {received} objet(s) : "
            f"{error.message} ; rien n'est publié à partir d'une récupération partielle",
            url,
        ) from error
    return _json_document(response.content, url)


def _next_link(document: dict[str, Any], url: str) -> str | None:
    for link in document.get("links") or []:
        kind = (link.get("type") or "application/geo+json").lower()
        if link.get("rel") == "next" and "json" in kind and link.get("href"):
            target = urljoin(url, link["href"])
            if urlsplit(target).scheme in {"http", "https"}:
                return target
    return None


def _json_document(content: bytes, url: str) -> dict[str, Any]:
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError) as error:
        head = content.lstrip()[:15].lower()
        if head.startswith((b"<!doctype html", b"<html")):
            raise SourceError(
                "page-html", "Le serveur a envoyé une page HTML au lieu de JSON", url
            ) from error
        raise SourceError("contenu-inattendu", f"Réponse JSON illisible ({error})", url) from error
    if not isinstance(document, dict):
        raise SourceError("contenu-inattendu", "Réponse JSON inattendue (pas un objet)", url)
    return document


def _json_features(content: bytes, url: str) -> list[dict[str, Any]]:
    features = _json_document(content, url).get("features")
    if not isinstance(features, list):
        raise SourceError("contenu-inattendu", "Réponse GeoJSON sans « features »", url)
    return features


def _write_geojson(features: list[dict[str, Any]], epsg: int, path: Path, url: str) -> None:
    """One FeatureCollection, written the same way for the same features (checksum)."""
    if not features:
        raise SourceError("reponse-vide", "La source ne contient aucun objet", url)
    collection: dict[str, Any] = {"type": "FeatureCollection"}
    if epsg != 4326:
        collection["crs"] = {
            "type": "name",
            "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"},
        }
    collection["features"] = [
        {k: f[k] for k in ("type", "id", "properties", "geometry") if k in f} for f in features
    ]
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")


# --- CKAN -----------------------------------------------------------------------------------


def _resolve_ckan(client: HttpClient, source: Source) -> tuple[str, str | None]:
    """The URL (and format) of the declared resource of a CKAN dataset."""
    api = urljoin(source.url.rstrip("/") + "/", "api/3/action/package_show")
    what = f"Jeu « {source.jeu} » du catalogue CKAN"

    def explain(code: int, _body: bytes) -> SourceError | None:
        if code == 404:
            return SourceError("ckan-jeu-introuvable", f"{what} introuvable", source.url)
        return None

    response = client.get(api, what, params={"id": source.jeu or ""}, explain=explain)
    document = _json_document(response.content, api)
    result = document.get("result")
    if not document.get("success") or not isinstance(result, dict):
        raise SourceError("ckan-jeu-introuvable", f"{what} introuvable", source.url)
    resource = _ckan_resource(result.get("resources") or [], source.ressource or "", source.url)
    fmt = SOURCE_FORMATS.get(str(resource.get("format") or "").strip().lower())
    return _public_url(resource.get("url"), source.url), fmt


def _ckan_resource(resources: list[dict[str, Any]], wanted: str, url: str) -> dict[str, Any]:
    key = wanted.strip().casefold()
    by_name = [
        r for r in resources if key in {str(r.get(k) or "").casefold() for k in ("name", "id")}
    ]
    if by_name:
        return by_name[0]
    by_format = [r for r in resources if str(r.get("format") or "").strip().casefold() == key]
    if len(by_format) == 1:
        return by_format[0]
    offered = ", ".join(f"{r.get('name')} ({r.get('format')})" for r in resources) or "aucune"
    if by_format:
        raise SourceError(
            "ckan-ressource-ambigue",
            f"Plusieurs ressources au format « {wanted} » : donnez le nom de la ressource "
            f"(ressources : {offered})",
            url,
        )
    raise SourceError(
        "ckan-ressource-introuvable",
        f"Aucune ressource nommée ou au format « {wanted} » (ressources : {offered})",
        url,
    )


def _public_url(value: Any, url: str) -> str:
    try:
        return check_source_url(value or "")
    except ValueError as error:
        raise SourceError("adresse-invalide", str(error), url) from error


# --- DCAT -----------------------------------------------------------------------------------


def _resolve_dcat(client: HttpClient, source: Source) -> str:
    """The download URL of the wanted distribution of a dataset of a DCAT catalog, looking
    through the catalog's Hydra pages."""
    url: str | None = source.url
    seen: set[str] = set()
    while url is not None and url not in seen and len(seen) < MAX_PAGES:
        seen.add(url)
        graph = _dcat_graph(client, url)
        dataset = _dcat_dataset(graph, source.jeu or "")
        if dataset is not None:
            return _dcat_download(graph, dataset, source)
        url = _hydra_next(graph)
    raise SourceError(
        "dcat-jeu-introuvable", f"Jeu « {source.jeu} » absent du catalogue DCAT", source.url
    )


def _hydra_next(graph: Graph) -> str | None:
    for _, _, target in graph.triples((None, HYDRA_NEXT, None)):
        return str(target)
    return None


def _dcat_graph(client: HttpClient, url: str) -> Graph:
    accept = "text/turtle, application/ld+json;q=0.9, application/rdf+xml;q=0.8"
    response = client.get(url, "Catalogue DCAT", accept=accept)
    syntax = RDF_FORMATS.get(response.media_type) or _rdf_format_of(url)
    data: bytes | dict[str, Any] = response.content
    if syntax == "xml":
        _refuse_unsafe_xml(response.content, url)
    if syntax == "json-ld":
        data = _local_json_ld(response.content, url)
    graph = Graph()
    try:
        graph.parse(data=data, format=syntax, publicID=url)
    except Exception as error:  # rdflib raises per-syntax error types
        raise SourceError(
            "dcat-illisible", f"Catalogue DCAT illisible en {syntax} ({error})", url
        ) from error
    return graph


def _local_json_ld(content: bytes, url: str) -> dict[str, Any]:
    """The JSON-LD document, refused if it names a context by its address: rdflib would
    fetch it itself (`rdflib.plugins.shared.jsonld.context.Context._fetch_context`, with
    urllib), past the SSRF guard and at any address, `file:` included. rdflib is handed
    the parsed document, so that it reads nothing else."""
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise SourceError(
            "dcat-illisible", f"Catalogue DCAT illisible en json-ld ({error})", url
        ) from error
    if not isinstance(document, dict | list):
        raise SourceError("dcat-illisible", "Catalogue DCAT JSON-LD : objet attendu", url)
    remote = _remote_context(document)
    if remote is not None:
        raise SourceError(
            "dcat-contexte-distant",
            f"Catalogue DCAT JSON-LD avec un contexte distant (« {remote[:200]} ») : la "
            "plateforme ne télécharge aucun contexte JSON-LD ; intégrez le contexte au "
            "document (« @context » : { … }) ou publiez le catalogue en Turtle ou RDF/XML",
            url,
        )
    # rdflib takes a parsed document as a dict only: a top-level array is its @graph
    return document if isinstance(document, dict) else {"@graph": document}


def _remote_context(node: Any) -> str | None:
    """The first context named by address (`"@context": "https://…"`, in a list, or an
    `@import`) anywhere in a JSON-LD document: embedded and scoped contexts included."""
    stack = [node]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            named = _named_context(value.get("@context"))
            if named is not None:
                return named
            if "@import" in value:
                return str(value["@import"])
            stack.extend(value.values())
    return None


def _named_context(context: Any) -> str | None:
    """A context given by address: the value itself, or an item of (nested) arrays, which
    rdflib reads the same way."""
    pending = [context]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            return item
        if isinstance(item, list):
            pending.extend(item)
    return None


def _rdf_format_of(url: str) -> str:
    suffix = Path(urlsplit(url).path).suffix.lower()
    return {".jsonld": "json-ld", ".rdf": "xml", ".xml": "xml", ".nt": "nt"}.get(suffix, "turtle")


def _dcat_dataset(graph: Graph, wanted: str) -> URIRef | None:
    """The dataset whose URI or dct:identifier is `wanted`."""
    for dataset in graph.subjects(RDF.type, DCAT.Dataset):
        identifiers = {str(i) for i in graph.objects(dataset, DCTERMS.identifier)}
        if isinstance(dataset, URIRef) and wanted in identifiers | {str(dataset)}:
            return dataset
    return None


def _dcat_download(graph: Graph, dataset: URIRef, source: Source) -> str:
    wanted = source.format or ""
    offered = []
    for distribution in graph.objects(dataset, DCAT.distribution):
        labels = set()
        for term in (DCTERMS.format, DCAT.mediaType):
            for value in graph.objects(distribution, term):
                labels |= _labels(value)
        offered.append("/".join(sorted(labels)) or "?")
        if labels & FORMAT_LABELS.get(wanted, {wanted}):
            download = graph.value(distribution, DCAT.downloadURL)
            if download is None:
                raise SourceError(
                    "dcat-sans-telechargement",
                    f"La distribution {wanted.upper()} du jeu n'a pas d'adresse de "
                    "téléchargement (dcat:downloadURL)",
                    source.url,
                )
            return _public_url(str(download), source.url)
    raise SourceError(
        "dcat-distribution-introuvable",
        f"Aucune distribution au format {wanted.upper()} pour ce jeu (distributions : "
        f"{', '.join(offered) or 'aucune'})",
        source.url,
    )


def _labels(value: Any) -> set[str]:
    """`…/file-type/CSV` → csv; `…/media-types/text/csv` → text/csv; a literal as written."""
    text = str(value).strip().lower()
    if not isinstance(value, URIRef):
        return {text}
    labels = {text.rstrip("/").rsplit("/", 1)[-1]}
    if "media-types/" in text:
        labels.add(text.split("media-types/", 1)[1])
    return labels


# --- pull: one declared-source folder through the pipeline ----------------------------------


def source_folders(inbox: Path, producer: str) -> list[Path]:
    """Folders inbox/<producer>/<dataset>/ whose metadata declares a source and that hold
    no data file (a dropped file is an upload: `ready_submissions` takes it)."""
    folders = []
    for folder in sorted((inbox / producer).glob("*/")):
        metadata = next((folder / n for n in METADATA_NAMES if (folder / n).is_file()), None)
        has_data = any(
            p.suffix.lower() in FORMATS and p.name not in NOT_DATA and p.is_file()
            for p in folder.iterdir()
        )
        if metadata is not None and not has_data and _declares_source(metadata):
            folders.append(folder)
    return folders


def _declares_source(metadata: Path) -> bool:
    try:
        document = read_producer_yaml(metadata)
    except (OSError, ValueError, yaml.YAMLError):  # UnsafeYaml and UnicodeDecodeError included
        return False  # the pipeline reports unreadable metadata when a file comes with it
    return isinstance(document, dict) and isinstance(document.get("source"), dict)


def pull(
    store: CatalogStore,
    settings: Settings,
    producer: str,
    folder: Path,
    *,
    client: HttpClient | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Outcome:
    """Fetch the source declared in `folder`'s metadata and run it through the pipeline:
    unchanged → a confirmation (the dataset counts as current); new → the checks and
    publication of an upload; unreachable → a French refusal, and the data team told."""
    metadata_path = next((folder / n for n in METADATA_NAMES if (folder / n).is_file()), None)
    submission = Submission.new(
        producer, folder, metadata_path or folder / METADATA_NAMES[0], CHANNEL
    )
    try:
        metadata = stage_metadata(submission)
        if not metadata.get("source"):
            raise reject(
                "metadonnees",
                "source-absente",
                "Ce dossier ne contient ni fichier de données ni source déclarée "
                "(« source: {type: …, url: …} » dans les métadonnées).",
            )
    except SubmissionRejected as error:
        return record_rejection(submission, error, store)
    source = Source.from_dict(metadata["source"])
    slug = dataset_slug(producer, metadata["identifier"])
    previous = store.source_state(slug)
    known = previous if _can_skip(store, slug, previous, source, metadata) else None
    target = settings.work_dir / CHANNEL / submission.id
    name, crs = metadata["identifier"], metadata.get("crs")
    try:
        try:
            result = fetch(
                source, known, target, client=client, page_size=page_size, name=name, crs=crs
            )
        except SourceError as error:
            return _record_failure(store, submission, slug, metadata, source, previous, error)
        if not result.changed:
            return _confirm_unchanged(store, submission, slug, previous, result)
        return _run_fetched(store, settings, submission, slug, source, previous, result)
    finally:
        shutil.rmtree(target, ignore_errors=True)  # the fetched file is in the release now


def _can_skip(
    store: CatalogStore,
    slug: str,
    state: SourceState | None,
    source: Source,
    metadata: dict[str, Any],
) -> bool:
    """Whether validators and checksum of the last accepted content may skip the pipeline:
    same endpoint, a published current release, metadata unchanged (else the content
    is fetched in full and goes through every check, as an upload would)."""
    if state is None or state.sha256 is None or state.endpoint != source_endpoint(source):
        return False
    dataset = store.get_dataset(slug)
    if dataset is None or dataset.status != "publie" or store.current_release(slug) is None:
        return False
    return _same_metadata(dataset.metadata, metadata)


def _same_metadata(stored: dict[str, Any], submitted: dict[str, Any]) -> bool:
    def canonical(value: Any) -> str:
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)

    return all(
        canonical(stored.get(key)) == canonical(value)
        for key, value in submitted.items()
        if not (key == "crs" and value is None)  # the stored CRS is the file's own
    )


def _confirm_unchanged(
    store: CatalogStore,
    submission: Submission,
    slug: str,
    previous: SourceState | None,
    result: FetchResult,
) -> Outcome:
    """The published content is still the source's: the dataset counts as current."""
    dataset = store.get_dataset(slug)
    release = store.current_release(slug)
    assert dataset is not None and release is not None and previous is not None
    report = Report(rows_checked=release.row_count)
    record = SubmissionRecord(
        id=submission.id,
        producer=submission.producer,
        dataset=slug,
        channel=CHANNEL,
        received_at=datetime.fromisoformat(submission.received_at),
        status="",
        release=release.id,
        report={**report.to_dict(), "source": {"inchange": result.reason, "detail": result.detail}},
    )
    store.confirm(slug, record, dataset.metadata, dataset.licence)
    store.record_source_check(slug, _succeeded(previous, result, accepted=True))
    return Outcome(
        submission=submission.id,
        status="confirmee",
        dataset=slug,
        release=release.id,
        structure_version=dataset.current_version,
        report=report,
    )


def _run_fetched(
    store: CatalogStore,
    settings: Settings,
    submission: Submission,
    slug: str,
    source: Source,
    previous: SourceState | None,
    result: FetchResult,
) -> Outcome:
    """The fetched file through the checks and publication of an upload."""
    assert result.path is not None
    fetched = replace(submission, data_path=str(result.path.resolve()))
    outcome = run_submission(fetched, settings, store)
    base = previous or SourceState(dataset=slug, endpoint=source_endpoint(source))
    accepted = outcome.status in {"publiee", "confirmee"}
    if accepted:
        base = replace(base, endpoint=source_endpoint(source))
    store.record_source_check(slug, _succeeded(base, result, accepted=accepted))
    return outcome


def _succeeded(state: SourceState, result: FetchResult, *, accepted: bool) -> SourceState:
    """The source answered; its validators are kept only for content the catalog took
    (refused content is fetched and checked again next time)."""
    moment = clock.now()
    state = replace(
        state,
        last_checked_at=moment,
        last_success_at=moment,
        consecutive_failures=0,
        last_error=None,
        failing_since=None,
    )
    if not accepted:
        return state
    return replace(
        state,
        etag=result.etag,
        last_modified=result.last_modified,
        length=result.length,
        sha256=result.sha256,
    )


def _record_failure(
    store: CatalogStore,
    submission: Submission,
    slug: str,
    metadata: dict[str, Any],
    source: Source,
    previous: SourceState | None,
    error: SourceError,
) -> Outcome:
    """Count the failure, tell the data team once per failure streak, refuse in French."""
    moment = clock.now()
    base = previous or SourceState(dataset=slug, endpoint=source_endpoint(source))
    since = base.failing_since or moment
    state = replace(
        base,
        last_checked_at=moment,
        consecutive_failures=base.consecutive_failures + 1,
        last_error=str(error),
        failing_since=since,
    )
    store.record_source_check(slug, state)
    store.record_event(
        slug,
        EVENT_KIND,
        f"La source de « {metadata['title']} » ({source.label}) est injoignable depuis le "
        f"{since:%d/%m/%Y à %H:%M} (UTC)",
        {
            "source": source_endpoint(source),
            "regle": error.rule,
            "erreur": str(error),
            "depuis": since.isoformat(),
        },
        key=f"{EVENT_KIND}:{slug}:{since.isoformat()}",
    )
    report = Report()
    report.add(
        Problem(
            stage=STAGE,
            rule=error.rule,
            message=f"Récupération de la source ({source.label}) impossible : {error}. "
            f"Échecs consécutifs : {state.consecutive_failures}.",
        )
    )
    return record_rejection(submission, SubmissionRejected(report), store, metadata)


def _short(url: str) -> str:
    return url if len(url) <= 300 else url[:297] + "…"


# --- schedule ---------------------------------------------------------------------------

RETRY_AFTER_FAILURE = timedelta(hours=1)  # doubled at each consecutive failure…
MAX_RETRY_DELAY = timedelta(days=1)  # …up to a day, and never beyond the periodicity


def is_due(state: SourceState | None, frequency_days: float | None, moment: datetime) -> bool:
    """Whether a source is to be fetched now, on its declared periodicity: never fetched;
    its period elapsed since the last success; or failing, after a growing delay."""
    if state is None or state.last_checked_at is None:
        return True
    period = timedelta(days=frequency_days) if frequency_days else timedelta(days=1)
    if state.consecutive_failures:
        delay = min(
            RETRY_AFTER_FAILURE * 2 ** (state.consecutive_failures - 1), MAX_RETRY_DELAY, period
        )
        return moment - state.last_checked_at >= delay
    last = state.last_success_at or state.last_checked_at
    return moment - last >= period


def due_folders(store: CatalogStore, settings: Settings, producer: str) -> list[Path]:
    """The commune's declared-source folders whose fetch is due now."""
    due = []
    for folder in source_folders(settings.inbox_dir, producer):
        metadata_path = next(folder / n for n in METADATA_NAMES if (folder / n).is_file())
        try:
            document = read_producer_yaml(metadata_path)
        except (OSError, ValueError, yaml.YAMLError):  # unsafe or unreadable
            due.append(folder)  # the pull reports the unreadable metadata
            continue
        identifier = str(document.get("identifiant") or folder.name)
        frequency = find_frequency(str(document.get("frequence", "")))
        state = store.source_state(dataset_slug(producer, identifier))
        if is_due(state, frequency.days if frequency else None, clock.now()):
            due.append(folder)
    return due
