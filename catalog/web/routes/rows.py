"""Rows of a release without downloading it, as JSON, GeoJSON or CSV.

- `GET /api/datasets/<slug>/rows` (current structure) and `/api/datasets/<slug>/v<N>/rows`:
  filters `colonne=valeur` or `colonne__op=valeur`, `_colonnes`, `_tri`, `_taille`,
  `_apres` (keyset cursor, the `suivant` link) or `_decalage`, `_total=1`, `_format`.

The query runs on the release's table in PostGIS when the store holds it, else on a
SQLite copy of the release made on first use (`catalog.rows`). The paging link is on the
public URL, whatever the request's Host.

A request reads the catalogue once (its generation, `catalog.web.lookups`): the dataset,
the release, its schema and notices are those kept since the catalogue last changed; who
may read the dataset, and whether it is still published, are decided on every request.
An unfiltered `_total` is the release's stored count of rows.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from urllib.parse import quote

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from catalog import lifecycle, rows
from catalog.store.downloads.tables import neutralise_cell
from catalog.visibility import caller_dependency
from catalog.web.context import Web, add_headers, base
from catalog.web.lookups import LookupView
from core.access import Principal, may_see
from core.records import Release

ROW_PARAMETERS = {"_colonnes", "_tri", "_taille", "_apres", "_decalage", "_format", "_total"}
ROW_FORMATS = {"json", "geojson", "csv"}


def _parameter(name: str, where: str, kind: str, description: str) -> dict:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": {"type": kind},
        "description": description,
    }


SLUG_PARAMETER = _parameter("slug", "path", "string", "Identifiant du jeu de données.")
VERSION_PARAMETER = _parameter("version", "path", "integer", "Version de structure.")
QUERY_PARAMETERS = [
    _parameter("_taille", "query", "integer", "Lignes par page (1 à 1000, 100 par défaut)."),
    _parameter("_apres", "query", "string", "Curseur de la page suivante (lien « suivant »)."),
    _parameter("_tri", "query", "string", "Colonne de tri (« -colonne » : décroissant)."),
    _parameter("_colonnes", "query", "string", "Colonnes à renvoyer, séparées par des virgules."),
    _parameter("_decalage", "query", "integer", "Lignes à sauter (préférez « _apres »)."),
    _parameter("_total", "query", "string", "« 1 » : le nombre de lignes qui répondent."),
    _parameter("_format", "query", "string", "json (par défaut), geojson ou csv."),
]


def router(web: Web) -> APIRouter:
    api = APIRouter()

    # The endpoint reads its path itself (FastAPI's validation of declared parameters cost
    # a quarter of a request): the parameters are documented in `openapi_extra`.
    @api.get(
        "/api/datasets/{slug}/rows",
        summary="Lignes de la version courante (filtres, tri, pages)",
        openapi_extra={"parameters": [SLUG_PARAMETER, *QUERY_PARAMETERS]},
    )
    @api.get(
        "/api/datasets/{slug}/v{version}/rows",
        summary="Lignes d'une version de structure",
        openapi_extra={"parameters": [SLUG_PARAMETER, VERSION_PARAMETER, *QUERY_PARAMETERS]},
    )
    async def rows_of(request: Request) -> Response:
        principal = await caller_dependency(request)
        slug, version = request.path_params["slug"], request.path_params.get("version")
        if version is not None and not version.isdecimal():
            raise HTTPException(404, detail=f"Version v{version} de « {slug} » introuvable.")
        number = None if version is None else int(version)
        return await run_in_threadpool(serve, request, slug, number, principal)

    def serve(request: Request, slug: str, version: int | None, principal: Principal) -> Response:
        # On PostGIS, the page's own statement checks that the catalogue is still at the
        # generation of the look-ups (one round trip less); elsewhere, read it first.
        view = web.lookups.view(checked=web.store.spatial is None)
        if not view.checked and not plainly_served(view, slug, principal):
            view = web.view()  # a refusal or a 410 is decided on the catalogue as of now
        try:
            response = answer(request, slug, version, principal, view)
        except (HTTPException, rows.StaleCatalogue):
            if view.checked:
                raise
            response = answer(request, slug, version, principal, web.view())
        web.counter.count(slug, "api")
        return response

    def answer(
        request: Request, slug: str, version: int | None, principal: Principal, view: LookupView
    ) -> Response:
        dataset = web.dataset_or_404(slug, principal, view)
        release = web.release_or_404(slug, version, view)
        response = rows_response(request, view, release)
        add_headers(
            response, lifecycle.version_headers(view, dataset, release.structure_version, "rows")
        )
        return response

    return api


def rows_response(request: Request, view: LookupView, release: Release) -> Response:
    """Rows as JSON, GeoJSON or CSV; filters are `colonne=valeur` or `colonne__op=valeur`."""
    params = request.query_params
    fmt = params.get("_format", "json")
    if fmt not in ROW_FORMATS:
        raise HTTPException(400, detail="« _format » vaut json, geojson ou csv.")
    try:
        query = rows.RowQuery(
            filters=[
                (name, value) for name, value in params.multi_items() if name not in ROW_PARAMETERS
            ],
            columns=params["_colonnes"].split(",") if params.get("_colonnes") else None,
            sort=params.get("_tri"),
            size=rows.bounded_int(params.get("_taille", "100")),
            cursor=params.get("_apres"),
            offset=rows.bounded_int(params["_decalage"]) if params.get("_decalage") else None,
            total=params.get("_total") in {"1", "true", "oui"},
        )
        schema = view.published_schema(release)
        page = None
        if view.spatial is not None:  # the release's table, when PostGIS holds it
            generation = None if view.checked else view.at_generation
            page = rows.run_postgis(view.spatial.engine, release, schema, query, generation)
        if page is None:
            if not view.checked and not view.is_current():
                raise rows.StaleCatalogue
            page = rows.run(_database(view, release, schema), schema, query, release.row_count)
    except ValueError as error:  # QueryError, or a non-numeric _taille/_decalage
        raise HTTPException(400, detail=str(error)) from error
    following = None
    if page.next_cursor:  # on the public URL, whatever the request's Host
        following = f"{base(request)}{following_path(request, page.next_cursor)}"
    headers = {"Link": f'<{following}>; rel="next"'} if following else {}
    headers["X-Licence"] = release.licence["id"]
    if fmt == "csv":
        return Response(rows_csv(page), media_type="text/csv", headers=headers)
    if fmt == "geojson":
        if page.geometries is None:
            raise HTTPException(400, detail="Ce jeu de données n'est pas géographique.")
        features = [
            {"type": "Feature", "properties": row, "geometry": orjson.Fragment(g) if g else None}
            for row, g in zip(page.rows, page.geometries, strict=True)
        ]
        body = {
            "type": "FeatureCollection",
            "features": features,
            "links": [{"rel": "next", "href": following}] if following else [],
        }
        return Response(_json(body), media_type="application/geo+json", headers=headers)
    body = {"colonnes": page.columns, "lignes": page.rows, "suivant": following}
    if page.total is not None:
        body["total"] = page.total
    return Response(_json(body), media_type="application/json", headers=headers)


def _database(view: LookupView, release: Release, schema: dict) -> Path:
    """The release's SQLite copy: once made, the same file for as long as the release."""
    return view.remember(
        ("lignes", release.id),
        lambda: rows.rows_database(view.release_path(release, "parquet"), schema),
    )


def _json(body: dict) -> bytes:
    """UTF-8 JSON as `json.dumps(ensure_ascii=False, default=str)` writes it, ten times
    faster (orjson); NaN and infinities, which JSON cannot hold, as null."""
    return orjson.dumps(body, default=str)


def plainly_served(view: LookupView, slug: str, principal: Principal) -> bool:
    """Whether the dataset, as `view` has it, is published and readable by `principal`
    (no refusal to audit, no 410)."""
    dataset = view.get_dataset(slug)
    return dataset is not None and dataset.status == "publie" and may_see(principal, dataset)


def following_path(request: Request, cursor: str) -> str:
    """The request's path and query with `_apres=cursor` instead of its own (the other
    parameters as the client sent them)."""
    raw = request.scope["query_string"].decode("latin-1")
    kept = [p for p in raw.split("&") if p and p.split("=", 1)[0] != "_apres"]
    query = "&".join([*kept, f"_apres={quote(cursor, safe='')}"])
    path = request.scope["path"]  # as Starlette's request.url writes it
    path = path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    return f"{path}?{query}"


def rows_csv(page: rows.Page) -> str:
    """A page of rows as CSV; cells a spreadsheet would run as a formula are neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(page.columns)
    for row in page.rows:
        writer.writerow([neutralise_cell(row[c]) for c in page.columns])
    return buffer.getvalue()
