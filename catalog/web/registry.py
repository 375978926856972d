"""The catalog's web services in one table, in the pygeoapi shape: a small Protocol and
one list.

Each `WebService` of `WEB_SERVICES` is either

- a `router`: a function of the routes' shared state (`catalog.web.context.Web`)
  returning its routes (`catalog.web.routes.*`, and the catalog's modules that expose
  `router(store)`), or
- an `ogc` service (`catalog.ogc.services.OgcService`), built in the services' folder,
  one instance per audience (`TieredService`), kept in step with the store by the
  `ServicesRefresher`,

with the path prefixes the rate limiter counts (`limited`: the APIs and services, never
the portal's pages nor `/static`). `catalog.security.RateLimit` reads them here
(`limited_prefixes`); it keeps no list of its own. `create_app` includes the routers in
the table's order, then mounts the OGC services.

Adding a web service is one module exposing `router(web)` (or an OGC service class) and
one entry below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fastapi import APIRouter

from catalog import accounts, feeds, notices_api
from catalog.ogc import mapserver
from catalog.ogc.api import PREFIX as OGC_API_PREFIX
from catalog.ogc.api import OgcApi
from catalog.ogc.csw import CswService
from catalog.ogc.mapserver import MapServerService
from catalog.ogc.services import OgcService, RoutableService, TieredService
from catalog.store import CatalogStore
from catalog.web.context import Web
from catalog.web.routes import (
    api_docs,
    datasets,
    dcat,
    downloads,
    health,
    my_deposits,
    portal,
    rows,
    statistics,
    uploads,
)

API = "/api/"  # every JSON API of the catalog, the CSP reports included


class Router(Protocol):
    def __call__(self, web: Web) -> APIRouter:
        """The service's routes, sharing `web` (the store, the communes, the counter)."""


@dataclass(frozen=True)
class WebService:
    name: str
    limited: tuple[str, ...] = ()  # path prefixes the rate limiter counts
    router: Router | None = None
    ogc: Callable[[Path], RoutableService] | None = None


def of_store(router: Callable[[CatalogStore], APIRouter]) -> Router:
    """A `router(store)` of the catalog's other modules, as a `Router`."""

    def build(web: Web) -> APIRouter:
        return router(web.store)

    return build


WEB_SERVICES: tuple[WebService, ...] = (
    # first: routes are tried in order, and the rows API is the most requested (issue #20);
    # no other route matches its paths
    WebService("lignes", (API,), router=rows.router),
    WebService("flux", ("/changements.atom", API), router=of_store(feeds.router)),
    WebService("avis-de-changement", (API,), router=of_store(notices_api.router)),
    WebService("sante", (API,), router=health.router),  # its page too, not limited
    WebService("comptes", (API,), router=of_store(accounts.router)),
    WebService("depots", (API,), router=uploads.router),
    WebService("mes-depots", router=my_deposits.router),  # the page and form of the deposits
    WebService("portail", router=portal.router),
    WebService("documentation-api", router=api_docs.router),
    WebService("statistiques", (API,), router=statistics.router),
    WebService("jeux-de-donnees", (API,), router=datasets.router),
    WebService("telechargements", (API,), router=downloads.router),
    WebService("dcat", ("/dcat/", API), router=dcat.router),
    WebService("ogc-api", (OGC_API_PREFIX,), ogc=OgcApi),
    WebService("csw", ("/csw",), ogc=CswService),
    WebService("wms-wfs", tuple(mapserver.ROUTES), ogc=MapServerService),
)


def limited_prefixes(services: tuple[WebService, ...] = WEB_SERVICES) -> tuple[str, ...]:
    """Every prefix the rate limiter counts, once each."""
    return tuple(dict.fromkeys(prefix for service in services for prefix in service.limited))


def ogc_services(
    services_dir: Path, services: tuple[WebService, ...] = WEB_SERVICES
) -> list[OgcService]:
    """The OGC services of the table, one instance per audience, their files in
    `services_dir` (the public one's) and below."""
    services_dir.mkdir(parents=True, exist_ok=True)
    return [TieredService(s.ogc, services_dir) for s in services if s.ogc is not None]
