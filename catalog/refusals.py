"""Refused authentications and refused reads in the audit log, rate-limited per client.

What is recorded (actions of `catalog.accounts.AUDIT_ACTIONS`), each with the time, the
client's address, the method and path of the request, and the reason (`motif`):

- `authentification-refusee`: a bearer token that is malformed, unknown, expired or
  revoked (the token's id and commune when it names one), an OpenID Connect JWT the
  verifier refuses, a session cookie that cannot be read or whose session is over (signed
  out, expired). Whatever the endpoint: a reading endpoint answers such a caller as an
  anonymous one, an endpoint that needs credentials answers 401.
- `lecture-refusee`: a request for a dataset that exists but that the caller may not read
  (answered 404, as for a dataset that does not exist).
- `acces-refuse`: an authenticated caller refused with a 403 (another commune's agent, a
  producer where the data team only may act).

Rate limit, so that a flood cannot fill the disk: at most `PER_CLIENT` lines per
`WINDOW_SECONDS` for one client address and one action; the next refusal writes one
`refus-non-detailles` line, and the rest of that window is only counted (in the process's
log when the window ends). Every client together: at most `PER_WINDOW` detailed lines per
window, then one `refus-non-detailles` line for all; at most `MAX_CLIENTS` clients are
followed at once, those beyond count as "every client". A flood of any size therefore writes
at most `PER_WINDOW + PER_WINDOW / PER_CLIENT + 1` lines a minute per catalog process.

The lines are written by a background thread, off the request: refusing to read a
restricted dataset takes the time a missing dataset's 404 takes, so timing does not tell
that it exists. `flush` waits until they are written (the journal's endpoint calls it).

`RequestContext` (installed by `catalog.security.install`) tells the code below which
request it serves (client address, method, path) without handing the request around.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from catalog.clients import client_address
from core import clock
from core.access import Principal, dataset_access
from core.records import AuditEntry, Dataset

LOGGER = logging.getLogger(__name__)
WINDOW_SECONDS = 60.0
PER_CLIENT = 10  # detailed lines per client address and action, per window
PER_WINDOW = 300  # detailed lines per window, every client together
MAX_CLIENTS = 5000  # (client, action) pairs followed at once
QUEUE_SIZE = 2000  # lines waiting for the writer; beyond, dropped (and logged)
PATH_MAX = 300  # characters of the path kept
FLUSH_SECONDS = 10.0  # `flush` waits at most this long
IDLE_SECONDS = 30.0  # the writer thread stops after this long without a line
ALL_CLIENTS = "*"

AUTHENTICATION = "authentification-refusee"
READ = "lecture-refusee"
ACCESS = "acces-refuse"
SUMMARY = "refus-non-detailles"

Scope = MutableMapping[str, Any]


# --- the request being served -------------------------------------------------------------------


@dataclass(frozen=True)
class RequestInfo:
    client: str
    method: str
    path: str
    app: Any  # the application (its `state` holds the refusal log)


_CURRENT: ContextVar[RequestInfo | None] = ContextVar("opendata_request", default=None)


class RequestContext:
    """ASGI middleware: makes the request's client address, method and path known to the
    refusal log for the time of the request (and of the threads it starts)."""

    def __init__(self, app: Any, trusted_proxies: tuple[Any, ...] = ()) -> None:
        self.app = app
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        info = RequestInfo(
            client=client_address(scope, self.trusted_proxies) or "local",
            method=str(scope.get("method", "")),
            path=str(scope.get("path", ""))[:PATH_MAX],
            app=scope.get("app"),
        )
        token = _CURRENT.set(info)
        try:
            await self.app(scope, receive, send)
        finally:
            _CURRENT.reset(token)


def current_request(scope: Scope | None = None) -> RequestInfo | None:
    """The request being served; from `scope` when the middleware did not run."""
    info = _CURRENT.get()
    if info is not None or scope is None or scope.get("type") != "http":
        return info
    connection = scope.get("client")
    return RequestInfo(
        client=(connection[0] if connection else "") or "local",
        method=str(scope.get("method", "")),
        path=str(scope.get("path", ""))[:PATH_MAX],
        app=scope.get("app"),
    )


# --- what is recorded ---------------------------------------------------------------------------


def authentication_refused(
    store: Any,
    reason: str,
    *,
    token_id: str | None = None,
    commune: str | None = None,
    scope: Scope | None = None,
) -> None:
    """Credentials refused: `reason` is `jeton-mal-forme`, `jeton-inconnu`, `jeton-expire`,
    `jeton-revoque`, `jeton-oidc-invalide`, `session-illisible`, `session-terminee`…"""
    record(
        store,
        actor=("anonyme", "anonyme", ""),
        action=AUTHENTICATION,
        commune=commune,
        target=token_id,
        details={"motif": reason},
        scope=scope,
    )


def read_refused(store: Any, principal: Principal, dataset: Dataset) -> None:
    """A dataset the caller may not read was asked for (the caller got a 404)."""
    record(
        store,
        actor=(principal.label, principal.kind, principal.subject),
        action=READ,
        commune=dataset.producer,
        target=dataset.slug,
        details={"motif": f"acces-{dataset_access(dataset.metadata)}"},
    )


def access_refused(store: Any, principal: Principal, what: str, commune: str | None) -> None:
    """An authenticated caller refused (403); `what` names the action in French."""
    record(
        store,
        actor=(principal.label, principal.kind, principal.subject),
        action=ACCESS,
        commune=commune,
        details={"demande": what},
    )


def record(
    store: Any,
    *,
    actor: tuple[str, str, str],
    action: str,
    commune: str | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
    scope: Scope | None = None,
) -> None:
    """Record a refusal of the request being served, within the limits. Outside any
    request (a script), the line is written at once and unlimited."""
    if store is None:
        return
    info = current_request(scope)
    label, kind, actor_id = actor
    extra = {"client": info.client, "methode": info.method, "chemin": info.path} if info else {}
    entry = AuditEntry(
        at=clock.now(),
        actor=label,
        actor_kind=kind,
        actor_id=actor_id or (info.client if info else ""),
        action=action,
        commune=commune,
        target=target,
        details={**(details or {}), **extra},
    )
    if info is None or info.app is None:
        store.record_audit(entry)
        return
    log_of(info.app, store).record(entry, info.client)


# --- the limits and the writer ------------------------------------------------------------------


@dataclass
class _Window:
    start: float
    logged: int = 0
    suppressed: int = 0


class RefusalLog:
    """Refusals of one catalog process, counted per (client, action) in fixed windows and
    written to the store by a background thread."""

    def __init__(
        self,
        store: Any,
        *,
        per_client: int = PER_CLIENT,
        per_window: int = PER_WINDOW,
        window: float = WINDOW_SECONDS,
        max_clients: int = MAX_CLIENTS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.per_client = per_client
        self.per_window = per_window
        self.window = window
        self.max_clients = max_clients
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._windows: OrderedDict[tuple[str, str], _Window] = OrderedDict()
        self._all = _Window(monotonic())
        self._queue: queue.Queue[AuditEntry] = queue.Queue(maxsize=QUEUE_SIZE)
        self._writer: threading.Thread | None = None

    def record(self, entry: AuditEntry, client: str) -> bool:
        """Queue `entry` for writing unless over the limits; whether it was queued."""
        with self._lock:
            lines = self._admit(entry, client, self._monotonic())
            for line in lines:
                self._enqueue(line)
        return bool(lines) and lines[0] is entry

    def flush(self, timeout: float = FLUSH_SECONDS) -> bool:
        """Wait until every queued line is written (at most `timeout` seconds); whether
        they all were."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._queue.all_tasks_done.wait(left)
        return True

    def _admit(self, entry: AuditEntry, client: str, moment: float) -> list[AuditEntry]:
        self._expire(moment)
        key = (client, entry.action)
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= self.max_clients:
                return self._overflow(entry, moment)
            window = self._windows[key] = _Window(moment)
        if window.logged >= self.per_client:
            window.suppressed += 1
            if window.suppressed > 1:
                return []
            return [self._summary(entry, client, window.start, self.per_client)]
        if self._all.logged >= self.per_window:
            return self._overflow(entry, moment)
        window.logged += 1
        self._all.logged += 1
        return [entry]

    def _overflow(self, entry: AuditEntry, moment: float) -> list[AuditEntry]:
        """Over the limit of every client together: one line per window, then counts."""
        self._all.suppressed += 1
        if self._all.suppressed > 1:
            return []
        return [self._summary(entry, ALL_CLIENTS, self._all.start, self.per_window)]

    def _summary(self, entry: AuditEntry, client: str, start: float, limit: int) -> AuditEntry:
        remaining = max(0, round(start + self.window - self._monotonic()))
        return AuditEntry(
            at=entry.at,
            actor=entry.actor if client != ALL_CLIENTS else "plateforme:journal",
            actor_kind=entry.actor_kind if client != ALL_CLIENTS else "plateforme",
            actor_id=entry.actor_id if client != ALL_CLIENTS else "",
            action=SUMMARY,
            commune=None,
            target=None,
            details={
                "client": client,
                "refus": entry.action,
                "limite": limit,
                "fenetre_secondes": int(self.window),
                "non_detailles_pendant_secondes": remaining,
            },
        )

    def _expire(self, moment: float) -> None:
        """Forget the windows that are over (oldest first: they were opened in order)."""
        while self._windows:
            key, window = next(iter(self._windows.items()))
            if window.start + self.window > moment:
                break
            del self._windows[key]
            if window.suppressed:
                LOGGER.warning(
                    "Journal d'audit : %d refus (%s) du client %s non détaillés en %d s.",
                    window.suppressed,
                    key[1],
                    ascii(key[0]),
                    int(self.window),
                )
        if self._all.start + self.window <= moment:
            if self._all.suppressed:
                LOGGER.warning(
                    "Journal d'audit : %d refus non détaillés en %d s (tous clients).",
                    self._all.suppressed,
                    int(self.window),
                )
            self._all = _Window(moment)

    def _enqueue(self, entry: AuditEntry) -> None:
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(
                target=self._write, name="journal-des-refus", daemon=True
            )
            self._writer.start()
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            LOGGER.error("Journal d'audit : file d'écriture pleine, refus %s perdu.", entry.action)

    def _write(self) -> None:
        """Write what is queued; stop after `IDLE_SECONDS` without anything (`_enqueue`
        starts a writer again)."""
        while True:
            try:
                entry = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:  # `_enqueue` holds it: nothing is queued meanwhile
                    if self._queue.empty():
                        self._writer = None
                        return
                continue
            try:
                self.store.record_audit(entry)
            except Exception:  # the store is down: say so, keep the writer alive
                LOGGER.exception("Journal d'audit : refus %s non écrit.", entry.action)
            finally:
                self._queue.task_done()


_CREATION = threading.Lock()


def log_of(app: Any, store: Any) -> RefusalLog:
    """The application's refusal log (one per application, made on first use)."""
    log = getattr(app.state, "refusals", None)
    if log is None:
        with _CREATION:
            log = getattr(app.state, "refusals", None)
            if log is None:
                log = app.state.refusals = RefusalLog(store)
    return log


def flush(app: Any) -> None:
    """Wait until the application's refusals are written (before reading the journal)."""
    log = getattr(getattr(app, "state", None), "refusals", None)
    if log is not None:
        log.flush()
