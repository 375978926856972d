"""The data team's view of every dataset's health (annex data.grandlyon.com, §3.2).

- `GET /api/equipe-data/sante`: JSON;
- `GET /equipe-data/sante`: the same as a French HTML page.

Every dataset is listed, restricted and depublished ones too: its commune, status, last
update, next expected update and whether it is late, a pending structure change with its
dates, old structures still diffused in parallel with their earliest retirement, and the
date it would be depublished without update (« bientôt » within 90 days).

Protected by a bearer token from the environment, `OPENDATA_DATA_TEAM_TOKEN` (401 without
it; 503 when the variable is unset). Data-team accounts come with issue #9.
"""

from __future__ import annotations

import hmac
import os
from datetime import date
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from catalog.lifecycle import depublication, lifecycle_of
from catalog.records import Dataset
from catalog.search import freshness
from catalog.store import CatalogStore
from pipelines import clock
from pipelines.governance import WARNING_DAYS, depublication_date

TOKEN_VARIABLE = "OPENDATA_DATA_TEAM_TOKEN"
SOON_DAYS = max(WARNING_DAYS)  # the first warning: 90 days before depublication
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
STATUS_LABELS = {"publie": "publié", "depublie": "dépublié"}


def french_date(value: str | date | None) -> str:
    """`AAAA-MM-JJ` (or an ISO instant) as JJ/MM/AAAA; empty for None."""
    if not value:
        return ""
    day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    return f"{day:%d/%m/%Y}"


TEMPLATES.env.filters["date_fr"] = french_date


def check_data_team(request: Request) -> None:
    expected = os.environ.get(TOKEN_VARIABLE)
    if not expected:
        raise HTTPException(
            503,
            detail=f"Vue santé de l'équipe data non configurée : définissez {TOKEN_VARIABLE}.",
        )
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    given = token.strip() if scheme.lower() == "bearer" else ""
    if not given or not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        raise HTTPException(
            401,
            detail="Réservé à l'équipe data : en-tête « Authorization: Bearer <jeton> ».",
            headers={"WWW-Authenticate": "Bearer"},
        )


def dataset_health(store: CatalogStore, dataset: Dataset, today: date) -> dict[str, Any]:
    fresh = freshness(dataset, today)
    cycle = lifecycle_of(store, dataset)
    published = dataset.status == "publie"
    deadline = depublication_date(dataset)
    gone = None if published else depublication(store, dataset.slug)
    return {
        "slug": dataset.slug,
        "titre": dataset.metadata["title"],
        "commune": dataset.producer,
        "acces": dataset.metadata.get("access", "public"),
        "statut": dataset.status,
        "statut_libelle": STATUS_LABELS.get(dataset.status, dataset.status),
        "structure_courante": dataset.current_version,
        "derniere_mise_a_jour": fresh["derniere"],
        "prochaine_mise_a_jour": fresh["prochaine"],
        "en_retard": published and fresh["statut"] == "en-retard",
        "avis_en_cours": cycle["avis_en_cours"],
        "diffusion_parallele": cycle["diffusion_parallele"],
        "depublication_prevue_le": deadline.isoformat() if published else None,
        "depublication_bientot": published and (deadline - today).days <= SOON_DAYS,
        "depublie_le": gone.at.date().isoformat() if gone else None,
    }


def health_report(store: CatalogStore, today: date | None = None) -> dict[str, Any]:
    today = today or clock.today()
    rows = [dataset_health(store, d, today) for d in store.list_datasets()]
    rows.sort(key=lambda r: (r["commune"], r["slug"]))
    return {
        "date": today.isoformat(),
        "resume": {
            "jeux_de_donnees": len(rows),
            "en_retard": sum(r["en_retard"] for r in rows),
            "avis_en_cours": sum(r["avis_en_cours"] is not None for r in rows),
            "diffusion_parallele": sum(bool(r["diffusion_parallele"]) for r in rows),
            "depublication_bientot": sum(r["depublication_bientot"] for r in rows),
            "depublies": sum(r["statut"] == "depublie" for r in rows),
        },
        "jeux_de_donnees": rows,
    }


def router(store: CatalogStore) -> APIRouter:
    api = APIRouter()

    @api.get(
        "/api/equipe-data/sante",
        summary="Santé de tous les jeux de données (équipe data, jeton requis)",
    )
    def health_json(request: Request) -> dict[str, Any]:
        check_data_team(request)
        return health_report(store)

    @api.get("/equipe-data/sante", response_class=HTMLResponse, include_in_schema=False)
    def health_page(request: Request) -> HTMLResponse:
        check_data_team(request)
        return TEMPLATES.TemplateResponse(request, "sante.html", {"r": health_report(store)})

    return api
