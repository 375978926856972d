"""The datasets' search and metadata, as JSON.

- `GET /api/datasets?q=…`: full-text search (French stems, accents and case ignored) with
  filters, facets, sorts and pages (`catalog.search`);
- `GET /api/datasets/<slug>`: everything known of a dataset (`catalog.web.views.detail`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from catalog import search
from catalog.visibility import CALLER
from catalog.web.context import Web
from catalog.web.views import detail, summary
from core.access import Principal


def router(web: Web) -> APIRouter:
    api = APIRouter()

    @api.get("/api/datasets", summary="Rechercher les jeux de données publiés")
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
        result = search.search(web.store, principal, search.Query(q, filters, tri, page, taille))
        hits = result.pop("hits")
        return {**result, "jeux_de_donnees": [summary(h.dataset, h.release) for h in hits]}

    @api.get("/api/datasets/{slug}", summary="Métadonnées d'un jeu de données")
    def get_dataset(slug: str, principal: Principal = CALLER) -> dict[str, Any]:
        dataset = web.dataset_or_404(slug, principal)
        described = detail(dataset, web.release_or_404(slug, None), web.store)
        web.counter.count(slug, "api")
        return described

    return api
