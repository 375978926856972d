"""The OGC services behind one interface, kept in step with the catalog store.

Each service (OGC API, MapServer's WMS/WFS, pycsw's CSW) receives the layers and catalogue
entries whenever they change and mounts its routes on the catalog application. The
services are listed, with the path prefixes they answer under, in the web services'
table (`catalog.web.registry`), which builds them (`ogc_services`). A
`ServicesRefresher` thread reads the store's change log every two seconds (one query): a
release published by Airflow (another process) appears in every service within seconds,
without a restart, and a depublished or restricted dataset leaves all of them at once.
Only the changed datasets' layers and entries are made again, and each service updates
only what changed in its files (a layer's map file, a record of the CSW repository).

Restricted datasets (`acces: restreint` or `agents`) are served by other instances of the
same services: a `TieredService` holds one instance per audience (`layers.TIERS`), each
with its own files (map file, pygeoapi configuration, pycsw repository) holding only what
its audience may read, and routes every request to the instance of the caller's audience
(`layers.tier_of`). The public instance never receives a restricted layer, so no request
to it, however crafted, can reach one. An audience whose view equals a narrower one's
(no restricted dataset published) is answered by that narrower instance, without building
anything. A plain service given to the refresher only ever receives the public view.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from fastapi import FastAPI, Request

from catalog.ogc.layers import (
    PUBLIC,
    TIERS,
    Entry,
    Layer,
    dataset_entry,
    dataset_layers,
    fingerprint,
    for_tier,
    is_served,
    published_datasets,
    tier_of,
)
from catalog.store import CatalogStore
from catalog.visibility import caller
from core.records import Dataset

LOGGER = logging.getLogger(__name__)
# The check is one query on the store's change log (`ServicesRefresher`): a new release
# reaches every service within a couple of seconds.
REFRESH_SECONDS = 2.0
# A change numbered below the highest one seen may still commit (PostgreSQL hands out
# numbers before the transactions commit): the last ones are read again at each check.
CHANGES_LOOKBACK = 256


class OgcService(Protocol):
    def update(self, layers: list[Layer], entries: list[Entry]) -> None:
        """Serve exactly these layers and entries from now on (atomically)."""

    def mount(self, app: FastAPI) -> None:
        """Add the service's routes to the catalog application."""


Selector = Callable[[Request], Any]  # the instance of a service that answers a request


class RoutableService(OgcService, Protocol):
    def mount(self, app: FastAPI, select: Selector | None = None) -> None:
        """Add the routes; each request is answered by the instance `select` gives
        (by default, this one)."""


class TieredService:
    """One instance of a service per audience; a request goes to its caller's audience's.

    The public instance works in `services_dir` itself (where a production MapServer or
    pycsw reads it), the others in `services_dir/audiences/<audience>`."""

    def __init__(self, make: Callable[[Path], RoutableService], services_dir: Path) -> None:
        self.instances: dict[str, RoutableService] = {}
        for tier in TIERS:
            folder = services_dir if tier == PUBLIC else services_dir / "audiences" / tier
            folder.mkdir(parents=True, exist_ok=True)
            self.instances[tier] = make(folder)
        self._answering = dict.fromkeys(TIERS, PUBLIC)  # audience -> instance answering it
        self._states: dict[str, str] = {}

    @property
    def public(self) -> RoutableService:
        return self.instances[PUBLIC]

    def __repr__(self) -> str:
        return type(self.public).__name__

    def update(self, layers: list[Layer], entries: list[Entry]) -> None:
        """Every published layer and entry: each instance gets its audience's share."""
        answering: dict[str, str] = {}
        built: dict[str, str] = {}  # a view's fingerprint -> the audience serving it
        for tier in TIERS:  # narrowest first
            view = for_tier(layers, entries, tier)
            state = fingerprint(*view)
            if state in built:
                answering[tier] = built[state]
                continue
            if self._states.get(tier) != state:
                self.instances[tier].update(*view)
                self._states[tier] = state
            built[state] = answering[tier] = tier
        self._answering = answering

    def mount(self, app: FastAPI) -> None:
        for instance in self.instances.values():  # links on the app's public URL (catalog.site)
            attach = getattr(instance, "attach", None)
            if attach is not None:
                attach(app)
        self.public.mount(app, select=self.select)

    def close(self) -> None:
        """Stop what the instances keep running (their resident processes)."""
        for instance in self.instances.values():
            close = getattr(instance, "close", None)
            if close is not None:
                close()

    def select(self, request: Request) -> RoutableService:
        """The instance for the caller (this may verify a token: run it in a thread)."""
        return self.instances[self._answering[tier_of(caller(request))]]


class ServicesRefresher:
    """Keeps the services in step with the store, from its change log (`store.changes`):
    each check is one query; a change rebuilds only the changed datasets' layers and entry,
    and a service that needs nothing new is not called."""

    def __init__(
        self,
        store: CatalogStore,
        services: list[OgcService],
        interval: float = REFRESH_SECONDS,
    ) -> None:
        self.store = store
        self.services = services
        self.interval = interval
        self._state: str | None = None
        self._views: dict[str, tuple[list[Layer], Entry | None]] = {}  # by dataset
        self._seen: set[int] = set()  # change numbers applied, within the look-back
        self._high = 0  # the highest change number applied
        self._loaded = False
        self._retry = False  # a service failed its last update: try again at the next check
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Bring every service in step with the store; True when something changed."""
        with self._lock:
            if not self._read_changes() and not self._retry:
                return False
            layers = [layer for own, _ in self._views.values() for layer in own]
            entries = [entry for _, entry in self._views.values() if entry is not None]
            state = fingerprint(layers, entries)
            if state == self._state:
                return False
            self._retry = not self._update(layers, entries, state)
            return True

    def _read_changes(self) -> bool:
        """Read the change log; rebuild the changed datasets' views. False: nothing new."""
        rows = self.store.changes(max(0, self._high - CHANGES_LOOKBACK))
        fresh = [(number, slug) for number, slug in rows if number not in self._seen]
        if self._loaded and not fresh:
            return False
        self._seen = {number for number, _ in rows}
        self._high = max([self._high, *self._seen])
        if not self._loaded:  # the first time: every published dataset
            self._views = {d.slug: self._view(d) for d in published_datasets(self.store)}
            self._loaded = True
            return True
        for slug in sorted({slug for _, slug in fresh}):
            dataset = self.store.get_dataset(slug)
            if dataset is None or not is_served(dataset):
                self._views.pop(slug, None)
            else:
                self._views[slug] = self._view(dataset)
        self._views = dict(sorted(self._views.items()))
        return True

    def _view(self, dataset: Dataset) -> tuple[list[Layer], Entry | None]:
        own = dataset_layers(self.store, dataset)
        try:
            return own, dataset_entry(self.store, dataset, own)
        except Exception:  # one broken description must not freeze every service
            LOGGER.exception("Fiche de %s non servie", dataset.slug)
            return own, None

    def _update(self, layers: list[Layer], entries: list[Entry], state: str) -> bool:
        """Every service given the new view, all at once; False when one of them failed."""
        public_view = for_tier(layers, entries, PUBLIC)

        def update(service: OgcService) -> bool:
            started = time.perf_counter()
            try:
                if isinstance(service, TieredService):
                    service.update(layers, entries)
                else:  # a service of one instance: the public's only
                    service.update(*public_view)
            except Exception:  # the others still follow the store; this one is retried
                LOGGER.exception("Échec de la mise à jour du service %s", service)
                return False
            LOGGER.info("Service %s mis à jour en %.2f s", service, time.perf_counter() - started)
            return True

        with ThreadPoolExecutor(max(1, len(self.services))) as pool:
            succeeded = all(list(pool.map(update, self.services)))
        if not succeeded:
            return False
        self._state = state
        LOGGER.info(
            "Services OGC mis à jour : %d couches, %d fiches (%d et %d publiques)",
            len(layers),
            len(entries),
            len(public_view[0]),
            len(public_view[1]),
        )
        return True

    def start(self) -> None:
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="ogc-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # a failed refresh keeps the services as they were
                LOGGER.exception("Échec de la mise à jour des services OGC")
