"""The catalog application: `create_app` assembles the routers and the middleware.

The routes are in `catalog.web.routes` (one module per idea) and the catalog's modules
that expose `router(store)`; the web services' table (`catalog.web.registry`) lists them
with the OGC services and the prefixes the rate limiter counts. `create_app` adds, in
order: the public URL of absolute links (`catalog.site`), the portal's sign-in
(`catalog.login`) and the roles of signed-in people (`catalog.web.people`), private
caching for authenticated callers, the security headers and rate limits
(`catalog.security`), the static files, the French error pages (`catalog.web.errors`), the
routers, the OGC services, and starts the usage counter and the services' refresher for the
application's lifetime.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles

from catalog import refusals, site, usage
from catalog.login import install as install_login
from catalog.ogc.services import OgcService, ServicesRefresher
from catalog.oidc import OidcVerifier
from catalog.security import install as install_security
from catalog.store import CatalogStore, open_store
from catalog.visibility import PrivateWhenAuthenticated
from catalog.web.context import Gone, Web, gone_answer
from catalog.web.errors import install as install_error_pages
from catalog.web.head import HeadAsGet
from catalog.web.people import install as install_people
from catalog.web.registry import WEB_SERVICES, limited_prefixes, ogc_services
from core.producers import Producer, load_producers
from core.settings import Settings, load_settings, map_background

STATIC_DIR = Path(__file__).parent.parent / "static"


def create_app(
    store: CatalogStore,
    producers: dict[str, Producer] | None = None,
    services: list[OgcService] | None = None,
    public_url: str | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    """The catalog application; `services` are the OGC services kept in step with the
    store (by default all of them, with their files under the settings' services folder).
    Absolute links start with `public_url` (by default the settings', OPENDATA_PUBLIC_URL),
    never with the request's Host (`catalog.site`)."""
    counter = usage.UsageCounter(store)
    settings = settings or load_settings()
    if services is None:
        services = ogc_services(settings.services_dir)
    refresher = ServicesRefresher(store, services)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        counter.start()
        await run_in_threadpool(refresher.start)
        yield
        refresher.stop()
        for service in services:  # the resident MapServer and pycsw processes
            close = getattr(service, "close", None)
            if close is not None:
                await run_in_threadpool(close)
        counter.stop()
        await run_in_threadpool(refusals.flush, _app)  # refusals still queued for the log

    app = FastAPI(
        lifespan=lifespan,
        title="Catalogue des données ouvertes des communes de la Métropole de Lyon",
        description="Jeux de données publiés par les communes partenaires, avec leur licence, "
        "leur source et leurs téléchargements.",
        version="0.1.0",
        docs_url=None,  # served from packaged assets: catalog.web.routes.api_docs
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    if producers is None:
        producers = load_producers(settings.producers_file)
    site.install(app, public_url or settings.public_url)
    app.add_middleware(site.PublicRedirects)  # Starlette's redirects on the public URL too
    app.state.refresher = refresher
    app.state.store = store  # for catalog.accounts.identify (API tokens)
    app.state.oidc = OidcVerifier.from_env()  # None: no OIDC provider configured
    install_login(app, app.state.oidc)  # the portal's sign-in, when configured
    install_people(app, producers)  # who, signed in, acts for a commune or the data team
    app.add_middleware(PrivateWhenAuthenticated)
    # security headers (CSP…) and per-client rate limits on the table's prefixes
    install_security(app, store, limited=limited_prefixes())
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(Gone, gone_answer)
    install_error_pages(app, limited_prefixes())  # French pages for browsers, JSON for APIs
    web = Web(store, producers, counter, settings, map_background())
    for entry in WEB_SERVICES:
        if entry.router is not None:
            app.include_router(entry.router(web))
    for service in services:
        service.mount(app)
    app.add_middleware(HeadAsGet, router=app.router)  # outermost: HEAD wherever GET is
    return app


def create_app_from_env() -> FastAPI:
    """The application on the store the settings name (`opendata serve`, uvicorn)."""
    settings = load_settings()
    return create_app(open_store(settings.store_url, settings.files_dir), settings=settings)
