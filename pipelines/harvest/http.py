"""HTTP, gently: the platform's User-Agent, timeouts, retries, and per-host slots.

Faults (timeouts, refused connections, 5xx, 429, truncated bodies) are retried with
exponential backoff, honouring `Retry-After`; definitive answers (404, 400, 401/403) are
not. Either way the result is a `SourceError` in French; a download is written to its
target only when whole (absent after any failure).

Respect for the commune's server: a User-Agent naming the platform and its contact, at
most `RetryPolicy.per_host` requests at a time per host in this process, timeouts. Every
request, redirects included, goes through the SSRF guard (`core.netguard`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import ReadTimeoutError

from core import clock
from core.netguard import GuardedSession, Refused, sources_policy
from pipelines.harvest.errors import SourceError

USER_AGENT = (
    "PlateformeDonneesOuvertes-MetropoleLyon/1.0 "
    "(+https://donnees.example.org; contact donnees-ouvertes@example.org)"
)
RETRY_DELAY_VARIABLE = "OPENDATA_SOURCES_RETRY_DELAY"  # seconds; the default policy's base delay
MAX_DOCUMENT_BYTES = 256 * 1024 * 1024  # one capabilities document, JSON page, catalog
CHUNK_BYTES = 1024 * 1024
RETRYABLE_STATUS = {408: "delai-depasse", 425: "trop-de-requetes", 429: "trop-de-requetes"}


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
