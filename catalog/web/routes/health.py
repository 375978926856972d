"""The data team's view of every dataset's health (annex data.grandlyon.com, §3.2).

- `GET /api/equipe-data/sante`: JSON;
- `GET /equipe-data/sante`: the same as a French HTML page.

Every dataset is listed, restricted and depublished ones too: its commune, status, the
date of its data's last update (the reference of `core.dates`) and of its publication, next
expected update and whether it is late, a pending structure change with its
dates, old structures still diffused in parallel with their earliest retirement, and the
date it would be depublished without update (« bientôt » within 90 days). For a dataset
pulled from the commune's own server (issue #7): its delivery endpoint, last check, last
success, consecutive failures and last error, flagged « source en échec » while failing;
and, on top, every failing source, those never published yet included, and every mail to a
producer that has not left yet (a depublication waits for its warning's mail).

Reserved to the data team: a data-team API token (`catalog.accounts`; 401 without a valid
token, 403 for a producer's). Every read is written to the audit log.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from catalog import accounts
from catalog.lifecycle import depublication, lifecycle_of
from catalog.store import CatalogStore
from catalog.web.context import Web
from catalog.web.pages import install_date_filters
from core import clock
from core.dates import WARNING_DAYS, dates_of
from core.lifecycle import is_mailed, label, mail_key
from core.records import Dataset, SourceState
from core.sources import SOURCE_FAILURE_KIND

SOON_DAYS = max(WARNING_DAYS)  # the first warning: 90 days before depublication
TEMPLATES = Jinja2Templates(directory=Path(__file__).parents[2] / "templates")
STATUS_LABELS = {"publie": "publié", "depublie": "dépublié"}
FAILURE_EVENTS_SCANNED = 1000  # recent events searched for sources never published
MAIL_EVENTS_SCANNED = 500  # recent events whose mail may still wait (the mailer's window)


install_date_filters(TEMPLATES.env)


def check_data_team(request: Request, store: CatalogStore) -> None:
    """Data team only (401, 403); the read goes to the audit log."""
    principal = accounts.data_team(request, store, "de consulter la vue santé")
    accounts.audit(store, principal, "sante-consultee")


def dataset_health(store: CatalogStore, dataset: Dataset, today: date) -> dict[str, Any]:
    dates = dates_of(dataset)  # the one reference date (core.dates)
    expected, deadline = dates.next_expected, dates.depublication
    cycle = lifecycle_of(store, dataset)
    published = dataset.status == "publie"
    gone = None if published else depublication(store, dataset.slug)
    return {
        "slug": dataset.slug,
        "titre": dataset.metadata["title"],
        "commune": dataset.producer,
        "acces": dataset.metadata.get("access", "public"),
        "statut": dataset.status,
        "statut_libelle": STATUS_LABELS.get(dataset.status, dataset.status),
        "structure_courante": dataset.current_version,
        "derniere_mise_a_jour": dates.data_updated.isoformat(),
        "mise_a_jour_trouvee_a_la_source": dates.found_at_source,
        "publiee_le": dates.published.isoformat(),
        "prochaine_mise_a_jour": expected.isoformat() if expected else None,
        "en_retard": published and dates.late(today),
        "avis_en_cours": cycle["avis_en_cours"],
        "diffusion_parallele": cycle["diffusion_parallele"],
        "depublication_prevue_le": deadline.isoformat() if published and deadline else None,
        "depublication_bientot": bool(
            published and deadline and (deadline - today).days <= SOON_DAYS
        ),
        "depublie_le": gone.at.date().isoformat() if gone else None,
        "source": source_health(store.source_state(dataset.slug)),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def source_health(state: SourceState | None) -> dict[str, Any] | None:
    """The last checks of a pulled dataset's source; None for a dataset uploaded by hand."""
    if state is None:
        return None
    failing = state.consecutive_failures > 0
    return {
        "point_de_livraison": state.endpoint,
        "derniere_verification": _iso(state.last_checked_at),
        "dernier_succes": _iso(state.last_success_at),
        "echecs_consecutifs": state.consecutive_failures,
        "derniere_erreur": state.last_error,
        "en_echec_depuis": _iso(state.failing_since),
        "en_echec": failing,
        "etat": "source en échec" if failing else "source joignable",
    }


def failing_sources(
    store: CatalogStore, rows: list[dict[str, Any]], communes: Collection[str]
) -> list[dict[str, Any]]:
    """Every failing source: those of the listed datasets, then those whose dataset was never
    published (their first fetches failed), found through their recent failure events."""
    failing = [_failing_row(r["slug"], r["titre"], r["commune"], r["source"]) for r in rows]
    listed = {r["slug"] for r in rows}
    unpublished = {
        event.dataset
        for event in store.events(limit=FAILURE_EVENTS_SCANNED)
        if event.kind == SOURCE_FAILURE_KIND and event.dataset not in listed
    }
    for slug in sorted(unpublished):
        source = source_health(store.source_state(slug))
        failing.append(_failing_row(slug, None, _commune_of(slug, communes), source))
    return [row for row in failing if row is not None]


def _failing_row(
    slug: str, title: str | None, commune: str | None, source: dict[str, Any] | None
) -> dict[str, Any] | None:
    if source is None or not source["en_echec"]:
        return None
    return {
        "slug": slug,
        "titre": title,
        "commune": commune,
        "au_catalogue": title is not None,
        **source,
    }


def _commune_of(slug: str, communes: Collection[str]) -> str | None:
    """The commune of a dataset never published (slug `<commune>-<identifiant>`)."""
    matches = [c for c in communes if slug.startswith(f"{c}-")]
    return max(matches, key=len) if matches else None


def waiting_mails(store: CatalogStore, titles: dict[str, str]) -> list[dict[str, Any]]:
    """The mails the rules decided that have not left yet (relay down, no address), oldest
    first: a warning that did not leave holds its dataset's depublication."""
    waiting = [
        {
            "slug": event.dataset,
            "titre": titles.get(event.dataset),
            "evenement": label(event.kind),
            "le": event.at.isoformat(),
            "suspend_la_depublication": event.kind == "avertissement-depublication",
        }
        for event in store.events(limit=MAIL_EVENTS_SCANNED)
        if is_mailed(event.kind) and store.mail_sent_at(mail_key(event)) is None
    ]
    return waiting[::-1]


def health_report(
    store: CatalogStore, communes: Collection[str], today: date | None = None
) -> dict[str, Any]:
    today = today or clock.today()
    rows = [dataset_health(store, d, today) for d in store.list_datasets()]
    rows.sort(key=lambda r: (r["commune"], r["slug"]))
    failing = failing_sources(store, rows, communes)
    mails = waiting_mails(store, {r["slug"]: r["titre"] for r in rows})
    return {
        "date": today.isoformat(),
        "resume": {
            "jeux_de_donnees": len(rows),
            "en_retard": sum(r["en_retard"] for r in rows),
            "avis_en_cours": sum(r["avis_en_cours"] is not None for r in rows),
            "diffusion_parallele": sum(bool(r["diffusion_parallele"]) for r in rows),
            "depublication_bientot": sum(r["depublication_bientot"] for r in rows),
            "depublies": sum(r["statut"] == "depublie" for r in rows),
            "sources_en_echec": len(failing),
            "courriels_en_attente": len(mails),
        },
        "sources_en_echec": failing,
        "courriels_en_attente": mails,
        "jeux_de_donnees": rows,
    }


def router(web: Web) -> APIRouter:
    api = APIRouter()
    store = web.store

    @api.get(
        "/api/equipe-data/sante",
        summary="Santé de tous les jeux de données (équipe data, jeton requis)",
    )
    def health_json(request: Request) -> dict[str, Any]:
        check_data_team(request, store)
        return health_report(store, web.producers)

    @api.get("/equipe-data/sante", response_class=HTMLResponse, include_in_schema=False)
    def health_page(request: Request) -> HTMLResponse:
        check_data_team(request, store)
        return TEMPLATES.TemplateResponse(
            request, "sante.html", {"r": health_report(store, web.producers)}
        )

    return api
