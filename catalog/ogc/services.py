"""The OGC services behind one interface, kept in step with the catalog store.

Each service (OGC API, MapServer's WMS/WFS, pycsw's CSW) receives the layers and catalogue
entries whenever they change and mounts its routes on the catalog application. The
services are listed, with the path prefixes they answer under, in the web services'
table (`catalog.web.registry`), which builds them (`ogc_services`). A
`ServicesRefresher` thread reads the store every few seconds: a release published by
Airflow (another process) appears in every service within a minute, without a restart,
and a depublished or restricted dataset leaves all of them at once.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from fastapi import FastAPI, Request

from catalog.ogc.layers import (
    PUBLIC,
    TIERS,
    Entry,
    Layer,
    catalogue_entries,
    fingerprint,
    for_tier,
    served_layers,
    tier_of,
)
from catalog.store import CatalogStore
from catalog.visibility import caller

LOGGER = logging.getLogger(__name__)
REFRESH_SECONDS = 15.0


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
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Bring every service in step with the store; True when something changed."""
        with self._lock:
            layers = served_layers(self.store)
            entries = catalogue_entries(self.store, layers)
            state = fingerprint(layers, entries)
            if state == self._state:
                return False
            public_view = for_tier(layers, entries, PUBLIC)
            failed = False
            for service in self.services:
                try:
                    if isinstance(service, TieredService):
                        service.update(layers, entries)
                    else:  # a service of one instance: the public's only
                        service.update(*public_view)
                except Exception:  # the others still follow the store; this one is retried
                    LOGGER.exception("Échec de la mise à jour du service %s", service)
                    failed = True
            if failed:
                return True
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
