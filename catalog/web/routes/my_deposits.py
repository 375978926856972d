"""« Mes dépôts »: a commune's deposits in the browser, for its agents and the data team.

- `GET /communes/<commune>/depots`: the commune's last publication, its deposits (those
  waiting in the inbox, then the processed ones, newest first, whatever their channel:
  this form or the API, the drop folder, the command line, the pull of its sources) with
  their status, and the upload form;
- `POST /communes/<commune>/depots` (multipart, from that form): `metadonnees`
  (metadata.yaml), `fichier` (the data file), optionally `schema` (schema.json) and `jeu`
  (the identifier, when metadata.yaml has none), with the session's `csrf`. It goes
  through the upload API's own entry point (`uploads.receive_deposit`): the same checks,
  the same drop folder, the same audit log. Accepted: 303 to the deposit's page; refused:
  the page again, with the French reason and the API's status code (400, 409, 413, 415),
  or 422 with the French report when the content's checks refuse it (an exception of the
  upload path that carries a `core.problems.Report`);
- `GET /communes/<commune>/depots/<id>`: one deposit: its status, its dataset's links once
  served, and its report in French (the problems by stage and rule, with their lines, and
  the repairs the platform made).

Who: a signed-in agent of the commune, or of the data team (`catalog.roles`); a browser
without a session is sent to the sign-in, another commune's agent gets a French 403
(`catalog.web.people`). Machines use the API (`catalog.web.routes.uploads`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData, UploadFile

from catalog.csrf import FIELD as CSRF_FIELD
from catalog.login import portal_context
from catalog.site import public_url
from catalog.store import CatalogStore
from catalog.web import people
from catalog.web.context import Web
from catalog.web.pages import install_date_filters
from catalog.web.routes.uploads import (
    STATUS_LABELS,
    Limits,
    deposit_state,
    read_form,
    receive_deposit,
)
from core.inbox import upload_marker
from core.input_formats import FORMAT_BY_SUFFIX
from core.problems import STAGE_LABELS, Problem, Report, column_word
from core.producers import Producer
from core.records import SubmissionRecord
from core.settings import Settings

TEMPLATES = Jinja2Templates(
    directory=Path(__file__).parents[2] / "templates", context_processors=[portal_context]
)
install_date_filters(TEMPLATES.env)
LISTED = 100  # processed deposits listed, newest first
PROBLEMS_PER_RULE = 20  # as the text report (rapport.txt)
READ = "de consulter les dépôts"
UPLOAD = "de déposer des données"
SHORT_LABELS = {
    "en-attente": "En attente de traitement",
    "publiee": "Publié",
    "confirmee": "Confirmé (contenu inchangé)",
    "refusee": "Refusé",
}
CHANNELS = {
    "api": "Formulaire ou API",
    "depot": "Dossier de dépôt",
    "ligne-de-commande": "Ligne de commande",
    "moissonnage": "Moissonnage de la source",
}


def deposits_path(commune: str, deposit_id: str | None = None) -> str:
    return f"/communes/{commune}/depots" + (f"/{deposit_id}" if deposit_id else "")


def pending(settings: Settings, commune: str) -> list[dict[str, Any]]:
    """The commune's deposits waiting in its inbox (the upload's marker is still there)."""
    folder = settings.inbox_dir / commune
    rows = []
    for dataset in sorted(folder.glob("*/")) if folder.is_dir() else []:
        marker = upload_marker(dataset)
        if marker is not None:
            rows.append(
                {
                    "depot": marker["id"],
                    "jeu_de_donnees": f"{commune}-{dataset.name}",
                    "recu_le": marker["recu_le"],
                    "canal": CHANNELS["api"],
                    "statut": "en-attente",
                    "libelle": SHORT_LABELS["en-attente"],
                    "lien": deposits_path(commune, marker["id"]),
                }
            )
    return sorted(rows, key=lambda r: r["recu_le"], reverse=True)


def processed(record: SubmissionRecord) -> dict[str, Any]:
    return {
        "depot": record.id,
        "jeu_de_donnees": record.dataset,
        "recu_le": record.received_at.isoformat(),
        "canal": CHANNELS.get(record.channel, record.channel),
        "statut": record.status,
        "libelle": SHORT_LABELS.get(record.status, record.status),
        "lien": deposits_path(record.producer, record.id),
    }


def last_publication(store: CatalogStore, records: list[SubmissionRecord]) -> dict[str, Any] | None:
    """The commune's latest deposit that published a new version."""
    published = [r for r in records if r.status == "publiee" and r.dataset]
    if not published:
        return None
    record = max(published, key=lambda r: r.received_at)
    dataset = store.get_dataset(str(record.dataset))
    served = dataset is not None and dataset.status == "publie"
    return {
        **processed(record),
        "titre": dataset.metadata.get("title") if dataset else None,
        "page": f"/jeux-de-donnees/{record.dataset}" if served else None,
    }


def listing(
    store: CatalogStore, settings: Settings, producer: Producer, error: str | None = None
) -> dict[str, Any]:
    records = store.submissions(producer.slug)
    newest = sorted(records, key=lambda r: r.received_at, reverse=True)
    return {
        "commune": producer,
        "derniere_publication": last_publication(store, records),
        "en_attente": pending(settings, producer.slug),
        "depots": [processed(r) for r in newest[:LISTED]],
        "plus_anciens": max(len(newest) - LISTED, 0),
        "formats": ", ".join(sorted(FORMAT_BY_SUFFIX)),
        "erreur": error,
    }


def report_view(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """A submission's report (`Report.to_dict`) as the page shows it, in French: its
    problems grouped by stage and rule (the first ones of each, with where), its repairs."""
    if not report:
        return None
    problems = [p for p in report.get("problemes", []) if isinstance(p, dict)]
    groups = []
    for item in report.get("resume", []):
        key = (item.get("etape"), item.get("regle"), item.get("colonne"))
        listed = [p for p in problems if (p.get("etape"), p.get("regle"), p.get("colonne")) == key]
        shown = listed[:PROBLEMS_PER_RULE]
        groups.append(
            {
                "etape": STAGE_LABELS.get(str(key[0]), str(key[0])),
                "regle": key[1],
                "colonne": key[2],
                "mot_colonne": column_word(key[0]),
                "nombre": item.get("nombre", len(listed)),
                "problemes": [{"ou": _location(p), "message": p.get("message")} for p in shown],
                "autres": max(int(item.get("nombre") or 0) - len(shown), 0),
            }
        )
    return {
        "valide": bool(report.get("valide", not groups)),
        "nombre_problemes": report.get("nombre_problemes", 0),
        "lignes_verifiees": report.get("lignes_verifiees"),
        "groupes": groups,
        "reparations": report.get("reparations", []),
    }


def _location(problem: dict[str, Any]) -> str:
    return Problem(
        stage=str(problem.get("etape")),
        rule=str(problem.get("regle")),
        message=str(problem.get("message")),
        row=problem.get("ligne"),
        column=problem.get("colonne"),
        feature=problem.get("objet"),
    ).location()


def refusal_report(error: Exception) -> Report | None:
    """The French report of a deposit refused by its checks before anything is written
    (the upload path's exceptions that carry one), for the form's page."""
    report = getattr(error, "report", None)
    return report if isinstance(report, Report) else None


def upload_fields(form: FormData) -> FormData:
    """The form as the upload API reads it: without the CSRF token, nor the optional
    inputs left empty (a browser sends an empty file input as a file without a name)."""
    kept = [
        (name, value)
        for name, value in form.multi_items()
        if name != CSRF_FIELD
        and not (isinstance(value, UploadFile) and not value.filename)
        and not (isinstance(value, str) and not value.strip())
    ]
    return FormData(kept)


def router(web: Web) -> APIRouter:
    pages = APIRouter(include_in_schema=False)
    store, settings = web.store, web.settings

    def page(request: Request, context: dict[str, Any], status: int = 200) -> HTMLResponse:
        headers = {"Cache-Control": "no-store"}
        return TEMPLATES.TemplateResponse(
            request, "depots.html", context, status_code=status, headers=headers
        )

    @pages.get(deposits_path("{commune}"), response_class=HTMLResponse)
    def deposits_page(request: Request, commune: str) -> HTMLResponse:
        producer = web.commune_or_404(commune)
        people.page_principal(request, store, READ, commune=commune)
        return page(request, listing(store, settings, producer))

    @pages.post(deposits_path("{commune}"), response_class=HTMLResponse)
    async def upload(request: Request, commune: str) -> Response:
        producer = web.commune_or_404(commune)
        # who first: a stranger's body is not read
        principal = people.authorised(request, store, UPLOAD, commune=commune)
        try:
            form = await read_form(request, Limits.from_env().request)
        except HTTPException as refused:
            context = await run_in_threadpool(listing, store, settings, producer, refused.detail)
            return page(request, context, refused.status_code)
        try:
            people.check_csrf(request, store, principal, UPLOAD, form, commune)
            result = await receive_deposit(store, settings, upload_fields(form), commune, principal)
        except HTTPException as refused:
            context = await run_in_threadpool(listing, store, settings, producer, refused.detail)
            return page(request, context, refused.status_code)
        except Exception as refused:
            report = refusal_report(refused)
            if report is None:
                raise
            message = f"{report.total} problème(s) à corriger ; rien n'a été enregistré."
            context = await run_in_threadpool(listing, store, settings, producer, message)
            context["rapport"] = report_view(report.to_dict())
            return page(request, context, 422)
        finally:
            await form.close()
        return RedirectResponse(deposits_path(commune, result["depot"]), status_code=303)

    @pages.get(deposits_path("{commune}", "{depot}"), response_class=HTMLResponse)
    def deposit_page(request: Request, commune: str, depot: str) -> HTMLResponse:
        producer = web.commune_or_404(commune)
        people.page_principal(request, store, READ, commune=commune)
        try:
            state = deposit_state(store, settings, commune, depot, public_url(request))
        except HTTPException as missing:
            context = {"commune": producer, "introuvable": missing.detail}
            return TEMPLATES.TemplateResponse(request, "depot.html", context, status_code=404)
        context = {
            "commune": producer,
            "d": state,
            "etat": STATUS_LABELS.get(state["statut"], state["statut"]),
            "court": SHORT_LABELS.get(state["statut"], state["statut"]),
            "rapport": report_view(state["rapport"]),
        }
        return TEMPLATES.TemplateResponse(
            request, "depot.html", context, headers={"Cache-Control": "no-store"}
        )

    return pages
