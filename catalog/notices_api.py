"""Change notices over HTTP (annex data.grandlyon.com, §3.2).

- `POST /api/datasets/<slug>/avis-changement`: the producing commune announces a breaking
  structure change, at least 30 days ahead (`catalog.store.notices.announce_change`);
- `GET /api/datasets/<slug>/avis-changement`: the dataset's notices, for everyone (public
  datasets only).

Producers authenticate with their API token (`catalog.accounts`): an agent of the producing
commune, or the data team. A missing, unknown, expired or revoked token answers 401, another
commune's token 403 (404 for a restricted dataset of another commune: its existence is not
told). Every notice announced is written to the audit log.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from catalog import accounts, lifecycle, refusals
from catalog.store import Publications
from catalog.store.notices import announce_change
from catalog.visibility import CALLER, may_see_or_refuse
from core import changes
from core.access import Principal, dataset_access
from core.problems import SubmissionRejected
from core.records import ChangeNotice, Dataset
from core.urls import download

CONFLICTS = {"avis-deja-en-cours", "jeu-inconnu"}  # the dataset's state forbids it: 409
BODY_HELP = (
    'Corps JSON attendu : {"schema": {…Table Schema…}, "date_effet": "AAAA-MM-JJ", '
    '"description": "…", "correspondance": {…} ou null, "type_geometrie": …, "crs": …, '
    '"format": …}.'
)
OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["schema", "date_effet", "description"],
                    "properties": {
                        "schema": {"type": "object", "description": "nouvelle Table Schema"},
                        "date_effet": {"type": "string", "format": "date"},
                        "description": {"type": "string"},
                        "correspondance": {"type": ["object", "null"]},
                        "type_geometrie": {"type": ["string", "null"]},
                        "crs": {"type": ["integer", "null"]},
                        "format": {"type": ["string", "null"]},
                    },
                }
            }
        },
    }
}


def notice_json(notice: ChangeNotice) -> dict[str, Any]:
    structure = notice.structure
    retirement = changes.retirement_date(notice)
    return {
        "id": notice.id,
        "jeu_de_donnees": notice.dataset,
        "statut": _state(notice),
        "ancienne_structure": notice.from_version,
        "nouvelle_structure": notice.to_version,
        "date_effet": notice.effective_date.isoformat(),
        "annonce_le": notice.announced_at.isoformat(),
        "description": notice.description,
        "schema": structure["schema"],
        "type_geometrie": structure.get("geometry_type"),
        "crs": structure.get("crs"),
        "format": structure.get("source_format"),
        "correspondance": notice.mapping,
        "ancienne_structure_alimentee": bool(notice.mapping),
        "en_vigueur_le": notice.switched_at.isoformat() if notice.switched_at else None,
        "retrait_au_plus_tot": retirement.isoformat() if retirement else None,
        "retiree_le": notice.retired_at.isoformat() if notice.retired_at else None,
        "url_nouvelle_structure": download("", notice.dataset, "csv", notice.to_version),
    }


def _state(notice: ChangeNotice) -> str:
    if notice.retired_at:
        return "ancienne-structure-retiree"
    return "diffusion-parallele" if notice.switched_at else "annonce"


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise HTTPException(400, detail=BODY_HELP) from error
    if not isinstance(payload, dict):
        raise HTTPException(400, detail=BODY_HELP)
    if not isinstance(payload.get("schema"), dict):
        raise HTTPException(400, detail="« schema » : la nouvelle structure (Table Schema).")
    if not isinstance(payload.get("description"), str):
        raise HTTPException(400, detail="« description » : le changement, en français.")
    mapping = payload.get("correspondance")
    if mapping is not None and not isinstance(mapping, dict):
        raise HTTPException(
            400, detail="« correspondance » : une règle par colonne de l'ancienne structure."
        )
    crs = payload.get("crs")
    if crs is not None and (not isinstance(crs, int) or isinstance(crs, bool)):
        raise HTTPException(400, detail="« crs » : un code EPSG entier (ex. 2154).")
    for name in ("type_geometrie", "format"):
        if payload.get(name) is not None and not isinstance(payload[name], str):
            raise HTTPException(400, detail=f"« {name} » : du texte, ou null.")
    return {**payload, "date_effet": _effective_date(payload.get("date_effet"))}


def _effective_date(value: Any) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError) as error:
        raise HTTPException(
            400, detail="« date_effet » : la date d'effet, au format AAAA-MM-JJ."
        ) from error


def _refusal(error: SubmissionRejected) -> JSONResponse:
    """The French refusal: 409 when the dataset's state forbids a notice, 400 otherwise."""
    problems = error.report.problems
    status = 409 if any(p.rule in CONFLICTS for p in problems) else 400
    return JSONResponse(
        {"detail": " ".join(p.message for p in problems), "regles": [p.rule for p in problems]},
        status_code=status,
    )


def router(store: Publications) -> APIRouter:
    api = APIRouter()

    def producer_dataset_or_error(request: Request, slug: str) -> tuple[Dataset, Principal]:
        """The dataset and the caller, once proven to act for its producing commune."""
        principal = accounts.authenticated(request, store)
        dataset = store.get_dataset(slug)
        own = dataset is not None and principal.acts_for(dataset.producer)
        visible = dataset is not None and principal.may_read(
            dataset_access(dataset.metadata), dataset.producer
        )
        if dataset is None or not (own or visible):
            # a caller who may not read a restricted dataset does not learn that it exists
            if dataset is not None:
                refusals.read_refused(store, principal, dataset)
            raise HTTPException(404, detail=f"Jeu de données « {slug} » introuvable.")
        if not own:
            accounts.refuse(store, principal, "d'annoncer un changement", dataset.producer)
            raise HTTPException(
                403,
                detail=f"Ce jeton n'est pas celui de la commune productrice de « {slug} » "
                f"({dataset.producer}) ni celui de l'équipe data.",
            )
        return dataset, principal

    @api.post(
        "/api/datasets/{slug}/avis-changement",
        status_code=201,
        summary="Annoncer un changement de structure cassant (commune productrice)",
        openapi_extra=OPENAPI_BODY,
    )
    async def announce(request: Request, slug: str) -> JSONResponse:
        dataset, principal = producer_dataset_or_error(request, slug)
        body = _parse_body(await request.body())
        try:
            notice = await run_in_threadpool(
                announce_change,
                store,
                slug,
                body["schema"],
                body["date_effet"],
                body["description"],
                body.get("correspondance"),
                geometry_type=body.get("type_geometrie"),
                crs=body.get("crs"),
                source_format=body.get("format"),
            )
        except SubmissionRejected as error:
            return _refusal(error)
        details = {"avis": notice.id, "date_effet": notice.effective_date.isoformat()}
        accounts.audit(
            store, principal, "avis-annonce", commune=dataset.producer, target=slug, details=details
        )
        return JSONResponse(notice_json(notice), status_code=201)

    @api.get(
        "/api/datasets/{slug}/avis-changement",
        summary="Avis de changement de structure d'un jeu de données",
    )
    def list_notices(slug: str, principal: Principal = CALLER) -> dict[str, Any]:
        dataset = store.get_dataset(slug)
        if not may_see_or_refuse(store, principal, dataset):
            raise HTTPException(404, detail=f"Jeu de données « {slug} » introuvable.")
        if dataset.status != "publie":
            raise _gone(store, dataset)
        notices = store.notices(slug)
        pending = changes.active_notice(notices, dataset.current_version)
        return {
            "jeu_de_donnees": slug,
            "avis_en_cours": notice_json(pending) if pending else None,
            "avis": [notice_json(n) for n in reversed(notices)],  # newest first
        }

    return api


def _gone(store: Publications, dataset: Dataset) -> HTTPException:
    return HTTPException(410, detail=lifecycle.depublication_message(store, dataset))
