"""The catalog HTTP service: portal pages, a JSON API and downloads of every release.

`/api/datasets/<slug>/download/<format>` always serves the current release;
`/api/datasets/<slug>/v<N>/download/<format>` serves structure version N, so a
link a reuser keeps never changes meaning silently.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from catalog import (
    accounts,
    dcat,
    feeds,
    health,
    lifecycle,
    notices_api,
    refusals,
    rows,
    search,
    site,
    uploads,
    usage,
)
from catalog.conditional import none_match
from catalog.login import install as install_login
from catalog.login import portal_context
from catalog.ogc.services import OgcService, ServicesRefresher, default_services
from catalog.oidc import OidcVerifier
from catalog.security import install as install_security
from catalog.store import CatalogStore, downloads, open_store
from catalog.store.downloads.tables import neutralise_cell
from catalog.visibility import CALLER, PrivateWhenAuthenticated, may_see_or_refuse
from core import clock
from core.access import Principal, may_see
from core.licences import fill_notice
from core.producers import Producer, load_producers
from core.records import ChangeNotice, Dataset, Release
from core.rules import freshness
from core.settings import load_settings
from core.vocabularies import THEMES, find_frequency

URL_SAFE = ":/?#[]@!$&'()*+,;=%~"  # kept as they are when a URL goes into a header
TEMPLATES = Jinja2Templates(
    directory=Path(__file__).parent / "templates", context_processors=[portal_context]
)
CONSTRAINT_LABELS = {
    "required": lambda v: "obligatoire" if v else "",
    "unique": lambda v: "valeurs uniques" if v else "",
    "minimum": lambda v: f"minimum {v}",
    "maximum": lambda v: f"maximum {v}",
    "minLength": lambda v: f"au moins {v} caractères",
    "maxLength": lambda v: f"au plus {v} caractères",
    "pattern": lambda v: f"motif {v}",
    "enum": lambda v: "valeurs : " + ", ".join(map(str, v)),
}


def describe_constraints(field: dict[str, Any]) -> str:
    """A field's Table Schema constraints, as a French phrase for the portal."""
    parts = [
        CONSTRAINT_LABELS[k](v)
        for k, v in field.get("constraints", {}).items()
        if k in CONSTRAINT_LABELS
    ]
    return " ; ".join(p for p in parts if p)


TEMPLATES.env.filters["contraintes"] = describe_constraints
FORMAT_LABELS = {
    "csv": "CSV",
    "json": "JSON",
    "xlsx": "Excel (XLSX)",
    "parquet": "Parquet",
    "geoparquet": "GeoParquet",
    "geojson": "GeoJSON",
    "gpkg": "GeoPackage",
    "shp": "Shapefile (zip)",
    "kml": "KML",
}


def create_app(
    store: CatalogStore,
    producers: dict[str, Producer] | None = None,
    services: list[OgcService] | None = None,
    public_url: str | None = None,
) -> FastAPI:
    """The catalog application; `services` are the OGC services kept in step with the
    store (by default all of them, with their files under the settings' services folder).
    Absolute links start with `public_url` (by default the settings', OPENDATA_PUBLIC_URL),
    never with the request's Host (`catalog.site`)."""
    counter = usage.UsageCounter(store)
    settings = load_settings()
    if services is None:
        services = default_services(settings.services_dir)
    refresher = ServicesRefresher(store, services)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        counter.start()
        await run_in_threadpool(refresher.start)
        yield
        refresher.stop()
        counter.stop()
        await run_in_threadpool(refusals.flush, _app)  # refusals still queued for the log

    app = FastAPI(
        lifespan=lifespan,
        title="Catalogue des données ouvertes des communes de la Métropole de Lyon",
        description="Jeux de données publiés par les communes partenaires, avec leur licence, "
        "leur source et leurs téléchargements.",
        version="0.1.0",
    )
    if producers is None:
        producers = load_producers(settings.producers_file)
    site.install(app, public_url or settings.public_url)
    app.add_middleware(site.PublicRedirects)  # Starlette's redirects on the public URL too
    app.state.refresher = refresher
    app.state.store = store  # for catalog.principal.identify (API tokens)
    app.state.oidc = OidcVerifier.from_env()  # None: no OIDC provider configured
    install_login(app, app.state.oidc)  # the portal's sign-in, when configured
    app.add_middleware(PrivateWhenAuthenticated)
    install_security(app, store)  # security headers (CSP…) and per-client rate limits
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(feeds.router(store))
    app.include_router(notices_api.router(store))
    app.include_router(health.router(store))
    app.include_router(accounts.router(store))  # the caller's account, the audit log
    app.include_router(uploads.router(store))  # producers' uploads into the inbox
    for service in services:
        service.mount(app)

    @app.exception_handler(Gone)
    async def gone(request: Request, error: Gone) -> Response:
        if request.url.path.startswith("/jeux-de-donnees/"):
            return TEMPLATES.TemplateResponse(
                request,
                "retire.html",
                {"message": error.detail},
                status_code=410,
                headers=error.headers,
            )
        return JSONResponse({"detail": error.detail}, status_code=410, headers=error.headers)

    def dataset_or_404(slug: str, principal: Principal) -> Dataset:
        dataset = store.get_dataset(slug)
        if not may_see_or_refuse(store, principal, dataset):
            # A restricted dataset gets the same answer as a missing one: not even its
            # existence is told to a caller who may not read it (the refusal is audited).
            raise HTTPException(404, detail=f"Jeu de données « {slug} » introuvable.")
        if dataset.status == "depublie":
            raise _gone_dataset(store, dataset)
        if dataset.status != "publie":
            raise HTTPException(404, detail=f"Jeu de données « {slug} » introuvable.")
        return dataset

    def readable_datasets(principal: Principal) -> list[Dataset]:
        return [d for d in store.list_datasets() if d.status == "publie" and may_see(principal, d)]

    def public_entries(principal: Principal) -> list[tuple[Dataset, Release]]:
        """The published datasets `principal` may read (public ones for anonymous callers)."""
        releases = store.current_releases()
        return [(d, releases[d.slug]) for d in readable_datasets(principal) if d.slug in releases]

    def commune_or_404(slug: str) -> Producer:
        if slug not in producers:
            raise HTTPException(404, detail=f"Commune « {slug} » introuvable.")
        return producers[slug]

    def commune_cards(slug: str, principal: Principal) -> list[dict[str, Any]]:
        return [_summary(d, r) for d, r in public_entries(principal) if d.producer == slug]

    def release_or_404(slug: str, version: int | None) -> Release:
        too_large = version is not None and not 0 < version < 2**31
        retired_by = (
            None if too_large or version is None else lifecycle.retired(store, slug, version)
        )
        if retired_by is not None:
            raise _gone_structure(slug, retired_by)
        release = None if too_large else store.current_release(slug, version)
        if release is None:
            raise HTTPException(404, detail=f"Version v{version} de « {slug} » introuvable.")
        return release

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(
        request: Request,
        q: str = "",
        theme: str | None = None,
        commune: str | None = None,
        principal: Principal = CALLER,
    ) -> HTMLResponse:
        filters = {k: v for k, v in {"theme": theme, "commune": commune}.items() if v}
        result = search.search(public_entries(principal), search.Query(q, filters, size=100))
        context = {
            "q": q,
            "total": result["total"],
            "facettes": result["facettes"],
            "datasets": [_summary(h.dataset, h.release) for h in result["hits"]],
            "themes": THEMES,
            "communes": producers,
        }
        return TEMPLATES.TemplateResponse(request, "home.html", context)

    @app.get("/communes", response_class=HTMLResponse, include_in_schema=False)
    def communes_page(request: Request) -> HTMLResponse:
        context = {"communes": list(producers.values())}
        return TEMPLATES.TemplateResponse(request, "communes.html", context)

    @app.get("/communes/{commune}", response_class=HTMLResponse, include_in_schema=False)
    def commune_page(request: Request, commune: str, principal: Principal = CALLER) -> HTMLResponse:
        producer = commune_or_404(commune)
        snippet = (
            f'<iframe src="{_base(request)}/integration/{producer.slug}" '
            f'title="Données ouvertes de {producer.name}" width="100%" height="420" '
            'style="border:0"></iframe>'
        )
        context = {
            "commune": producer,
            "datasets": commune_cards(producer.slug, principal),
            "snippet": snippet,
            "statistiques": commune_statistics_for(producer.slug, 30, principal),
        }
        return TEMPLATES.TemplateResponse(request, "commune.html", context)

    @app.get(
        "/api/communes/{commune}/statistiques",
        summary="Usage des jeux de données d'une commune, par jour",
    )
    def commune_statistics(
        request: Request, commune: str, jours: int = 30, principal: Principal = CALLER
    ) -> dict[str, Any]:
        commune_or_404(commune)
        accounts.require_authenticated(request, principal)  # the commune or the data team
        accounts.require_commune(store, principal, commune, "de consulter les statistiques")
        if not 1 <= jours <= 366:
            raise HTTPException(400, detail="« jours » va de 1 à 366.")
        return {
            "commune": commune,
            "jours": jours,
            "jeux_de_donnees": commune_statistics_for(commune, jours, principal),
        }

    def commune_statistics_for(
        commune: str, days: int, principal: Principal
    ) -> list[dict[str, Any]] | None:
        """The usage counts, for the commune's agents and the data team only (audited)."""
        if not principal.acts_for(commune):
            return None
        accounts.audit(
            store, principal, "statistiques-consultees", commune=commune, details={"jours": days}
        )
        return commune_usage(commune, days, principal)

    def commune_usage(commune: str, days: int, principal: Principal) -> list[dict[str, Any]]:
        """Counts of the commune's public datasets (restricted ones once authenticated)."""
        counter.flush()
        cards = {c["slug"]: c for c in commune_cards(commune, principal)}
        since = clock.today() - timedelta(days=days - 1)
        names = {"telechargement": "telechargements", "api": "appels_api", "page": "consultations"}
        per_dataset: dict[str, dict[str, Any]] = {
            slug: {
                "slug": slug,
                "titre": card["titre"],
                **dict.fromkeys(names.values(), 0),
                "par_jour": {},
            }
            for slug, card in cards.items()
        }
        for slug, day, kind, count in store.usage(list(cards), since):
            entry = per_dataset[slug]
            entry[names[kind]] += count
            entry["par_jour"].setdefault(day.isoformat(), {})[names[kind]] = count
        return list(per_dataset.values())

    @app.get("/integration/{commune}", response_class=HTMLResponse, include_in_schema=False)
    def embedded_list(
        request: Request, commune: str, principal: Principal = CALLER
    ) -> HTMLResponse:
        """What a commune's own website shows in the iframe of its snippet."""
        producer = commune_or_404(commune)
        context = {
            "commune": producer,
            "datasets": commune_cards(producer.slug, principal),
            "base": _base(request),
        }
        return TEMPLATES.TemplateResponse(request, "integration.html", context)

    @app.get("/jeux-de-donnees/{slug}", response_class=HTMLResponse, include_in_schema=False)
    def dataset_page(request: Request, slug: str, principal: Principal = CALLER) -> HTMLResponse:
        dataset = dataset_or_404(slug, principal)
        release = release_or_404(slug, None)
        context = {
            "d": _detail(dataset, release, store),
            "formats": FORMAT_LABELS,
            "base": _base(request),
        }
        counter.count(slug, "page")
        return TEMPLATES.TemplateResponse(request, "dataset.html", context)

    @app.get("/api/datasets", summary="Rechercher les jeux de données publiés")
    def list_datasets(
        q: str = "",
        commune: str | None = None,
        theme: str | None = None,
        licence: str | None = None,
        format: str | None = None,  # noqa: A002 - the reusers' word
        geographique: str | None = None,
        statut: str | None = None,
        tri: str = "pertinence",
        page: int = 1,
        taille: int = 20,
        principal: Principal = CALLER,
    ) -> dict[str, Any]:
        if tri not in search.SORTS:
            raise HTTPException(400, detail=f"Tri « {tri} » inconnu : {', '.join(search.SORTS)}.")
        if page < 1 or not 1 <= taille <= 100:
            raise HTTPException(400, detail="« page » commence à 1 ; « taille » va de 1 à 100.")
        filters = {
            name: value
            for name, value in {
                "commune": commune,
                "theme": theme,
                "licence": licence,
                "format": format,
                "geographique": geographique,
                "statut": statut,
            }.items()
            if value
        }
        result = search.search(
            public_entries(principal), search.Query(q, filters, tri, page, taille)
        )
        hits = result.pop("hits")
        return {**result, "jeux_de_donnees": [_summary(h.dataset, h.release) for h in hits]}

    @app.get("/api/datasets/{slug}", summary="Métadonnées d'un jeu de données")
    def get_dataset(slug: str, principal: Principal = CALLER) -> dict[str, Any]:
        dataset = dataset_or_404(slug, principal)
        detail = _detail(dataset, release_or_404(slug, None), store)
        counter.count(slug, "api")
        return detail

    # The alias (current structure) and the stable versioned URL share one handler each;
    # without {version} in the path, `version` stays None: the current structure.
    @app.get("/api/datasets/{slug}/download/{fmt}", summary="Télécharger la version courante")
    @app.get(
        "/api/datasets/{slug}/v{version}/download/{fmt}",
        summary="Télécharger une version de structure précise",
    )
    @app.head("/api/datasets/{slug}/download/{fmt}", include_in_schema=False)
    @app.head("/api/datasets/{slug}/v{version}/download/{fmt}", include_in_schema=False)
    def download(
        request: Request,
        slug: str,
        fmt: str,
        version: int | None = None,
        crs: int | None = None,
        principal: Principal = CALLER,
    ) -> Response:
        dataset = dataset_or_404(slug, principal)
        release = release_or_404(slug, version)
        response = _download(request, store, dataset, release, fmt, crs)
        _add_headers(
            response,
            lifecycle.version_headers(store, dataset, release.structure_version, f"download/{fmt}"),
        )
        counter.count(slug, "telechargement")
        return response

    @app.get(
        "/api/datasets/{slug}/rows", summary="Lignes de la version courante (filtres, tri, pages)"
    )
    @app.get("/api/datasets/{slug}/v{version}/rows", summary="Lignes d'une version de structure")
    def rows_of(
        request: Request,
        slug: str,
        version: int | None = None,
        principal: Principal = CALLER,
    ) -> Response:
        dataset = dataset_or_404(slug, principal)
        release = release_or_404(slug, version)
        response = _rows(request, store, release, dataset)
        _add_headers(
            response, lifecycle.version_headers(store, dataset, release.structure_version, "rows")
        )
        counter.count(slug, "api")
        return response

    @app.get("/dcat/catalogue.{extension}", summary="Catalogue DCAT-AP 3 (paginé)")
    def dcat_catalogue(
        request: Request,
        extension: str,
        page: int = 1,
        taille: int = dcat.PAGE_SIZE,
        principal: Principal = CALLER,
    ) -> Response:
        serialisation = _serialisation_or_404(extension)
        if page < 1 or not 1 <= taille <= 500:
            raise HTTPException(400, detail="« page » commence à 1 ; « taille » va de 1 à 500.")
        published = dcat.harvested_datasets(store, principal)  # depublished: WITHDRAWN
        chosen = published[(page - 1) * taille : page * taille]
        entries = [(d, store.current_release(d.slug)) for d in chosen]
        graph = dcat.catalog_graph(
            _base(request), entries, page, len(published), taille, serialisation, store
        )
        return _rdf_response(graph, serialisation)

    @app.get("/api/datasets/{slug}/dcat.{extension}", summary="Jeu de données en DCAT-AP 3")
    def dcat_dataset(
        request: Request, slug: str, extension: str, principal: Principal = CALLER
    ) -> Response:
        serialisation = _serialisation_or_404(extension)
        dataset = dataset_or_404(slug, principal)
        graph = dcat.dataset_graph(_base(request), dataset, release_or_404(slug, None), store)
        counter.count(slug, "api")
        return _rdf_response(graph, serialisation)

    return app


def is_public(dataset: Dataset) -> bool:
    """Published and open to anonymous callers (restricted data needs authentication)."""
    return dataset.status == "publie" and is_open(dataset)


def is_open(dataset: Dataset) -> bool:
    """Not restricted: anonymous callers may know it exists (or existed)."""
    return dataset.metadata.get("access", "public") == "public"


class Gone(HTTPException):
    """410 Gone, with a French explanation (an HTML page for the portal's pages)."""

    def __init__(self, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(410, detail=detail, headers=headers)


def _gone_dataset(store: CatalogStore, dataset: Dataset) -> Gone:
    return Gone(lifecycle.depublication_message(store, dataset))


def _add_headers(response: Response, headers: dict[str, str]) -> None:
    """Add headers; a `Link` joins the ones already set (licence, next page…)."""
    for name, value in headers.items():
        if name.lower() == "link" and "link" in response.headers:
            response.headers["link"] = f"{response.headers['link']}, {value}"
        else:
            response.headers[name] = value


def _gone_structure(slug: str, notice: ChangeNotice) -> Gone:
    successor = f"/api/datasets/{slug}/v{notice.to_version}"
    retired_on = notice.retired_at.date() if notice.retired_at else clock.today()
    return Gone(
        f"La structure v{notice.from_version} de « {slug} » n'est plus diffusée depuis le "
        f"{retired_on:%d/%m/%Y} (changement annoncé le {notice.announced_at:%d/%m/%Y}, "
        f"diffusion en parallèle terminée). Utilisez la structure v{notice.to_version} : "
        f"{successor}/…",
        headers={"Link": f'<{successor}/download/csv>; rel="successor-version"'},
    )


def _base(request: Request) -> str:
    return site.public_url(request)


def _serialisation_or_404(extension: str) -> str:
    if extension not in dcat.SERIALISATIONS:
        raise HTTPException(
            404, detail="Formats DCAT : ttl (Turtle), jsonld (JSON-LD), rdf (RDF/XML)."
        )
    return extension


def _rdf_response(graph: Any, extension: str) -> Response:
    body, media_type = dcat.serialise(graph, extension)
    return Response(body, media_type=media_type)


def create_app_from_env() -> FastAPI:
    settings = load_settings()
    return create_app(open_store(settings.store_url, settings.files_dir))


def _download(
    request: Request,
    store: CatalogStore,
    dataset: Dataset,
    release: Release,
    fmt: str,
    crs: int | None,
) -> Response:
    geographic = release.distribution("geojson") is not None
    try:
        spec = downloads.check_request(fmt, crs, geographic)
    except downloads.FormatError as error:
        raise HTTPException(error.status, detail=str(error)) from error
    source = release.metadata.get("publisher_name", dataset.producer)
    notice = fill_notice(release.licence["notice"], source, release.metadata["modified"])
    stored_format = "parquet" if fmt == "geoparquet" else fmt
    stored = release.distribution(stored_format)
    if stored is not None and crs in (None, stored.crs):
        path = store.release_path(release, stored_format)
    else:
        parquet = store.release_path(release, "parquet")
        dates = frozenset(
            f["name"] for f in published_schema(store, release)["fields"] if f.get("type") == "date"
        )
        crs_or_default = crs or (4326 if fmt == "csv" else None)
        path = downloads.derived_file(parquet, fmt, crs_or_default, notice, dates)
    etag = f'"{release.id}-{fmt}-{crs or "natif"}"'
    headers = {
        "etag": etag,
        "last-modified": format_datetime(release.published_at.replace(tzinfo=UTC), usegmt=True),
        "cache-control": f"{'public' if is_open(dataset) else 'private'}, max-age=300",
        "Link": f'<{quote(release.licence["url"], safe=URL_SAFE)}>; rel="license"',
        "X-Licence": release.licence["id"],
        "X-Licence-Mention": quote(notice),
        "X-Source": quote(source),
        "X-Date-Mise-A-Jour": release.metadata["modified"],
        "X-Version": release.id,
    }
    if _not_modified(request, etag, release.published_at):
        return Response(status_code=304, headers=headers)
    suffix = f"-epsg{crs}" if crs else ""
    filename = f"{dataset.slug}-v{release.structure_version}{suffix}.{spec.extension}"
    return FileResponse(path, media_type=spec.media_type, filename=filename, headers=headers)


ROW_PARAMETERS = {"_colonnes", "_tri", "_taille", "_apres", "_decalage", "_format", "_total"}


def _rows(request: Request, store: CatalogStore, release: Release, dataset: Dataset) -> Response:
    """Rows as JSON, GeoJSON or CSV; filters are `colonne=valeur` or `colonne__op=valeur`."""
    params = request.query_params
    fmt = params.get("_format", "json")
    if fmt not in {"json", "geojson", "csv"}:
        raise HTTPException(400, detail="« _format » vaut json, geojson ou csv.")
    try:
        query = rows.RowQuery(
            filters=[
                (name, value) for name, value in params.multi_items() if name not in ROW_PARAMETERS
            ],
            columns=params["_colonnes"].split(",") if params.get("_colonnes") else None,
            sort=params.get("_tri"),
            size=int(params.get("_taille", 100)),
            cursor=params.get("_apres"),
            offset=rows.bounded_int(params["_decalage"]) if params.get("_decalage") else None,
            total=params.get("_total") in {"1", "true", "oui"},
        )
        schema = published_schema(store, release)
        page = None
        if store.spatial is not None:  # the release's table, when PostGIS holds it
            page = rows.run_postgis(store.spatial.engine, release, schema, query)
        if page is None:
            database = rows.rows_database(store.release_path(release, "parquet"), schema)
            page = rows.run(database, schema, query)
    except ValueError as error:  # QueryError, or a non-numeric _taille/_decalage
        raise HTTPException(400, detail=str(error)) from error
    following = None
    if page.next_cursor:  # on the public URL, whatever the request's Host
        following_url = request.url.include_query_params(_apres=page.next_cursor)
        following = f"{_base(request)}{following_url.path}?{following_url.query}"
    headers = {"Link": f'<{following}>; rel="next"'} if following else {}
    headers["X-Licence"] = release.licence["id"]
    if fmt == "csv":
        return Response(_rows_csv(page), media_type="text/csv", headers=headers)
    if fmt == "geojson":
        if page.geometries is None:
            raise HTTPException(400, detail="Ce jeu de données n'est pas géographique.")
        features = [
            {"type": "Feature", "properties": row, "geometry": json.loads(g) if g else None}
            for row, g in zip(page.rows, page.geometries, strict=True)
        ]
        body = {
            "type": "FeatureCollection",
            "features": features,
            "links": [{"rel": "next", "href": following}] if following else [],
        }
        return Response(
            json.dumps(body, ensure_ascii=False, default=str),
            media_type="application/geo+json",
            headers=headers,
        )
    body = {"colonnes": page.columns, "lignes": page.rows, "suivant": following}
    if page.total is not None:
        body["total"] = page.total
    return Response(
        json.dumps(body, ensure_ascii=False, default=str),
        media_type="application/json",
        headers=headers,
    )


def published_schema(store: CatalogStore, release: Release) -> dict[str, Any]:
    """The Table Schema of what the release publishes (after anonymisation)."""
    structure = next(
        v
        for v in store.structure_versions(release.dataset)
        if v.version == release.structure_version
    ).structure
    return structure.get("published_schema") or structure["schema"]


def _rows_csv(page: rows.Page) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(page.columns)
    for row in page.rows:
        writer.writerow([neutralise_cell(row[c]) for c in page.columns])
    return buffer.getvalue()


def _not_modified(request: Request, etag: str, published_at: datetime) -> bool:
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return none_match(if_none_match, etag)
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:  # "-0000": UTC, without saying so
            since = since.replace(tzinfo=UTC)
        return published_at.replace(tzinfo=UTC) <= since
    return False


def _summary(dataset: Dataset, release: Release | None) -> dict[str, Any]:
    metadata = dataset.metadata
    frequency = find_frequency(metadata["accrual_periodicity"])
    fresh = freshness(dataset)
    return {
        "slug": dataset.slug,
        "titre": metadata["title"],
        "description": metadata["description"],
        "source": metadata.get("publisher_name", dataset.producer),
        "producteur": dataset.producer,
        "licence": dataset.licence["short_name"],
        "frequence": frequency.label if frequency else metadata["accrual_periodicity"],
        "date_mise_a_jour": metadata["modified"],
        "themes": list(metadata.get("themes", [])),
        "geographique": metadata.get("crs") is not None,
        "formats": downloads.offered(metadata.get("crs") is not None) if release else [],
        "prochaine_mise_a_jour": fresh["prochaine"],
        "statut_mise_a_jour": fresh["statut"],
        "url": f"/api/datasets/{dataset.slug}",
        "page": f"/jeux-de-donnees/{dataset.slug}",
    }


def national_schema(metadata: dict[str, Any]) -> dict[str, str] | None:
    """The national schema the dataset follows (issue #15): {nom, version, titre, url…}."""
    declared = metadata.get("schema")
    return declared if isinstance(declared, dict) else None


def _detail(dataset: Dataset, release: Release, store: CatalogStore) -> dict[str, Any]:
    versions = store.structure_versions(dataset.slug)
    current = next(v for v in versions if v.version == release.structure_version)
    licence = dataset.licence
    metadata = dataset.metadata
    return {
        **_summary(dataset, release),
        "mots_cles": metadata["keywords"],
        "themes": [{"code": t, "libelle": THEMES[t]} for t in metadata.get("themes", [])],
        "modalites_livraison": metadata["delivery"],
        "contact": metadata["contact"],
        "systeme_coordonnees": f"EPSG:{metadata['crs']}" if metadata.get("crs") else None,
        "couverture_spatiale": metadata.get("spatial"),
        "schema_national": national_schema(metadata),
        "donnees_personnelles": metadata.get("anonymisation"),
        "licence": {
            "id": licence["id"],
            "nom": licence["name"],
            "url": licence["url"],
            "homologuee": licence["homologated"],
            "sectorielle": licence["sector"],
            "obligations": licence["obligations"],
            "mention": fill_notice(
                licence["notice"],
                metadata.get("publisher_name", dataset.producer),
                metadata["modified"],
            ),
        },
        "premiere_publication": dataset.first_published_at.isoformat(),
        "derniere_publication": dataset.last_published_at.isoformat(),
        "derniere_confirmation": dataset.last_confirmed_at.isoformat(),
        "version_courante": {
            "id": release.id,
            "structure": release.structure_version,
            "lignes": release.row_count,
            "empreinte_sha256": release.content_hash,
            "publiee_le": release.published_at.isoformat(),
        },
        "structure": current.structure,
        "schema_publie": current.structure.get("published_schema") or current.structure["schema"],
        "versions_structure": [
            {
                "version": v.version,
                "actuelle": v.version == dataset.current_version,
                "retiree": lifecycle.retired(store, dataset.slug, v.version) is not None,
                "url": f"/api/datasets/{dataset.slug}/v{v.version}/download/csv",
            }
            for v in versions
        ],
        "cycle_de_vie": lifecycle.lifecycle_of(store, dataset),
        "historique": [
            {
                "version": r.id,
                "structure": r.structure_version,
                "lignes": r.row_count,
                "publiee_le": r.published_at.isoformat(),
            }
            for r in store.releases(dataset.slug)
        ],
        "distributions": [
            {
                **asdict(d),
                "media_type": d.media_type,
                "url": f"/api/datasets/{dataset.slug}/download/{d.format}",
                "url_version": f"/api/datasets/{dataset.slug}/v{release.structure_version}"
                f"/download/{d.format}",
            }
            for d in release.distributions
        ],
    }
