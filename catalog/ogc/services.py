"""The OGC services behind one interface, kept in step with the catalog store.

Each service (OGC API, MapServer's WMS/WFS, pycsw's CSW) receives the layers and catalogue
entries whenever they change and mounts its routes on the catalog application. A
`ServicesRefresher` thread reads the store every few seconds: a release published by
Airflow (another process) appears in every service within a minute, without a restart,
and a depublished or restricted dataset leaves all of them at once.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol

from fastapi import FastAPI

from catalog.ogc.layers import Entry, Layer, catalogue_entries, fingerprint, served_layers
from catalog.store import CatalogStore

LOGGER = logging.getLogger(__name__)
REFRESH_SECONDS = 15.0


class OgcService(Protocol):
    def update(self, layers: list[Layer], entries: list[Entry]) -> None:
        """Serve exactly these layers and entries from now on (atomically)."""

    def mount(self, app: FastAPI) -> None:
        """Add the service's routes to the catalog application."""


def default_services(services_dir: Path) -> list[OgcService]:
    from catalog.ogc.api import OgcApi
    from catalog.ogc.csw import CswService
    from catalog.ogc.mapserver import MapServerService

    services_dir.mkdir(parents=True, exist_ok=True)
    return [OgcApi(services_dir), CswService(services_dir), MapServerService(services_dir)]


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
            for service in self.services:
                service.update(layers, entries)
            self._state = state
            LOGGER.info(
                "Services OGC mis à jour : %d couches, %d fiches", len(layers), len(entries)
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
