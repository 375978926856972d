"""The catalog as DCAT-AP 3 (`catalog.dcat`), harvestable by data.gouv.fr.

- `GET /dcat/catalogue.{ttl,jsonld,rdf}?page=N&taille=M`: the catalog, Hydra paging links;
- `GET /api/datasets/<slug>/dcat.{ttl,jsonld,rdf}`: one dataset.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from catalog import dcat
from catalog.visibility import CALLER
from catalog.web.context import Web, base
from core.access import Principal


def router(web: Web) -> APIRouter:
    api = APIRouter()

    @api.get("/dcat/catalogue.{extension}", summary="Catalogue DCAT-AP 3 (paginé)")
    def dcat_catalogue(
        request: Request,
        extension: str,
        page: int = 1,
        taille: int = dcat.PAGE_SIZE,
        principal: Principal = CALLER,
    ) -> Response:
        serialisation = serialisation_or_404(extension)
        if page < 1 or not 1 <= taille <= 500:
            raise HTTPException(400, detail="« page » commence à 1 ; « taille » va de 1 à 500.")
        published = dcat.harvested_datasets(web.store, principal)  # depublished: WITHDRAWN
        chosen = published[(page - 1) * taille : page * taille]
        entries = [(d, web.store.current_release(d.slug)) for d in chosen]
        graph = dcat.catalog_graph(
            base(request),
            entries,
            page,
            len(published),
            taille,
            serialisation,
            web.store,
            catalogued=published,
        )
        return rdf_response(graph, serialisation)

    @api.get("/api/datasets/{slug}/dcat.{extension}", summary="Jeu de données en DCAT-AP 3")
    def dcat_dataset(
        request: Request, slug: str, extension: str, principal: Principal = CALLER
    ) -> Response:
        serialisation = serialisation_or_404(extension)
        dataset = web.dataset_or_404(slug, principal)
        graph = dcat.dataset_graph(
            base(request), dataset, web.release_or_404(slug, None), web.store
        )
        web.counter.count(slug, "api")
        return rdf_response(graph, serialisation)

    return api


def serialisation_or_404(extension: str) -> str:
    if extension not in dcat.SERIALISATIONS:
        raise HTTPException(
            404, detail="Formats DCAT : ttl (Turtle), jsonld (JSON-LD), rdf (RDF/XML)."
        )
    return extension


def rdf_response(graph: Any, extension: str) -> Response:
    body, media_type = dcat.serialise(graph, extension)
    return Response(body, media_type=media_type)
