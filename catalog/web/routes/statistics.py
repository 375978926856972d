"""Usage statistics of a commune's datasets: downloads, API calls and page views per day.

- `GET /api/communes/<commune>/statistiques?jours=30`: the commune's agents and the data
  team only (API token; 401, 403); every read is written to the audit log.

The commune's page (`catalog.web.routes.portal`) shows the same counts to them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from catalog import accounts
from catalog.visibility import CALLER
from catalog.web.context import Web
from core import clock
from core.access import Principal

COUNT_NAMES = {"telechargement": "telechargements", "api": "appels_api", "page": "consultations"}


def router(web: Web) -> APIRouter:
    api = APIRouter()

    @api.get(
        "/api/communes/{commune}/statistiques",
        summary="Usage des jeux de données d'une commune, par jour",
    )
    def commune_statistics(
        request: Request, commune: str, jours: int = 30, principal: Principal = CALLER
    ) -> dict[str, Any]:
        web.commune_or_404(commune)
        accounts.require_authenticated(request, principal)  # the commune or the data team
        accounts.require_commune(web.store, principal, commune, "de consulter les statistiques")
        if not 1 <= jours <= 366:
            raise HTTPException(400, detail="« jours » va de 1 à 366.")
        return {
            "commune": commune,
            "jours": jours,
            "jeux_de_donnees": statistics_for(web, commune, jours, principal),
        }

    return api


def statistics_for(
    web: Web, commune: str, days: int, principal: Principal
) -> list[dict[str, Any]] | None:
    """The usage counts, for the commune's agents and the data team only (audited)."""
    if not principal.acts_for(commune):
        return None
    accounts.audit(
        web.store, principal, "statistiques-consultees", commune=commune, details={"jours": days}
    )
    return commune_usage(web, commune, days, principal)


def commune_usage(web: Web, commune: str, days: int, principal: Principal) -> list[dict[str, Any]]:
    """Counts of the commune's public datasets (restricted ones once authenticated)."""
    web.counter.flush()
    cards = {c["slug"]: c for c in web.commune_cards(commune, principal)}
    since = clock.today() - timedelta(days=days - 1)
    per_dataset: dict[str, dict[str, Any]] = {
        slug: {
            "slug": slug,
            "titre": card["titre"],
            **dict.fromkeys(COUNT_NAMES.values(), 0),
            "par_jour": {},
        }
        for slug, card in cards.items()
    }
    for slug, day, kind, count in web.store.usage(list(cards), since):
        entry = per_dataset[slug]
        entry[COUNT_NAMES[kind]] += count
        entry["par_jour"].setdefault(day.isoformat(), {})[COUNT_NAMES[kind]] = count
    return list(per_dataset.values())
