"""The data team's view of every dataset's and every commune's health (annex
data.grandlyon.com, §3.2; issue #19).

- `GET /api/equipe-data/sante`: JSON;
- `GET /equipe-data/sante`: the same as a French HTML page, filtered and sorted by query
  parameters (`catalog.web.health_filters`: commune, status, late only, failing only),
  without JavaScript;
- `GET /equipe-data/sante/depots/<id>`: a deposit's report, in French;
- `POST /equipe-data/sante/communes/<commune>/relancer` (and `/api/…`): re-run the commune's
  DAG through Airflow's REST API;
- `POST /equipe-data/sante/jeux/<slug>/avertissement` (and `/api/…`): « Avertissement
  transmis autrement », the data team's acknowledgement that an undelivered depublication
  warning reached the commune (`catalog.web.health_actions`).

Every dataset is listed, restricted and depublished ones too: its commune, status, the
date of its data's last update (the reference of `core.dates`) and of its publication, next
expected update and whether it is late, a pending structure change with its
dates, old structures still diffused in parallel with their earliest retirement, and the
date it would be depublished without update (« bientôt » within 90 days). For a dataset
pulled from the commune's own server (issue #7): its delivery endpoint, last check, last
success, consecutive failures and last error, flagged « source en échec » while failing;
and, on top, every failing source, those never published yet included, and every mail to a
producer that has not left yet (a depublication waits for its warning's mail, or for the
data team's acknowledgement).

Every commune: its deposits over the last 30 days (received, published, refused), its last
refusal with its report, an alert when refusals repeat (`catalog.deposits`), and its DAG's
last and next runs read from Airflow (`catalog.airflow_api`; when Airflow is not configured
or cannot be reached, the page says so and shows the rest).

Reserved to the data team. The JSON APIs: a data-team API token (`catalog.accounts`; 401
without a valid token, 403 for a producer's). The pages and their forms: a member of the
data team signed in on the portal (`catalog.web.people`; a browser without a session is
sent to the sign-in; a form posted by session carries its CSRF token), or the same token.
Every read and every action is written to the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from catalog import accounts, deposits
from catalog.airflow_api import AirflowApi, AirflowConfig, AirflowError, DagState
from catalog.lifecycle import depublication, lifecycle_of
from catalog.login import portal_context
from catalog.store import CatalogStore
from catalog.web import health_actions, people
from catalog.web.context import Web
from catalog.web.health_filters import HealthFilters, alphabetical
from catalog.web.pages import install_date_filters
from core import clock
from core.access import Principal
from core.dates import WARNING_DAYS, dates_of
from core.inbox import SUBMISSION_ID
from core.lifecycle import is_mailed, label, mail_key
from core.lifecycle.rule import announced_depublication
from core.lifecycle.staleness import WARNING, holding_warning, told_otherwise_until
from core.problems import Report
from core.producers import Producer, dag_id
from core.records import Dataset, SourceState
from core.sources import SOURCE_FAILURE_KIND
from core.wording import of_place

SOON_DAYS = max(WARNING_DAYS)  # the first warning: 90 days before depublication
TEMPLATES = Jinja2Templates(
    directory=Path(__file__).parents[2] / "templates", context_processors=[portal_context]
)
STATUS_LABELS = {"publie": "publié", "depublie": "dépublié"}
FAILURE_EVENTS_SCANNED = 1000  # recent events searched for sources never published
MAIL_EVENTS_SCANNED = 500  # recent events whose mail may still wait (the mailer's window)
RECENT_EVENTS = health_actions.RECENT_EVENTS  # a dataset's events searched for its warning
PAGE = "/equipe-data/sante"


RERUN = "de relancer le traitement d'une commune"
ACKNOWLEDGE = "d'acquitter un avertissement"
install_date_filters(TEMPLATES.env)
TEMPLATES.env.filters["de_lieu"] = of_place  # « d'Écully », « de Lyon »


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
    first: a warning that did not leave holds its dataset's depublication, unless the data
    team acknowledged that the commune was told otherwise."""
    waiting = []
    for event in store.events(limit=MAIL_EVENTS_SCANNED):
        if not is_mailed(event.kind) or store.mail_sent_at(mail_key(event)) is not None:
            continue
        acknowledged = (
            store.mail_acknowledgement(mail_key(event)) if event.kind == WARNING else None
        )
        waiting.append(
            {
                "slug": event.dataset,
                "titre": titles.get(event.dataset),
                "evenement": label(event.kind),
                "le": event.at.isoformat(),
                "suspend_la_depublication": event.kind == WARNING and acknowledged is None,
                "transmis_autrement_le": (
                    acknowledged.acknowledged_at.isoformat() if acknowledged else None
                ),
            }
        )
    return waiting[::-1]


def undelivered_warnings(
    store: CatalogStore, datasets: list[Dataset], today: date
) -> list[dict[str, Any]]:
    """For each published dataset, the depublication warning its depublication waits for
    (`core.lifecycle.staleness.holding_warning`) while its mail has not left: with the data
    team's acknowledgement when there is one, else the form to give it."""
    listed = []
    for dataset in datasets:
        warning = holding_warning(dataset, store.events(dataset.slug, limit=RECENT_EVENTS))
        if warning is None or store.mail_sent_at(mail_key(warning)) is not None:
            continue
        acknowledged = store.mail_acknowledgement(mail_key(warning))
        deadline = dates_of(dataset).depublication
        announced = announced_depublication(warning) or deadline
        listed.append(
            {
                "slug": dataset.slug,
                "titre": dataset.metadata["title"],
                "commune": dataset.producer,
                "avertissement": warning.id,
                "decide_le": warning.at.isoformat(),
                "depublication_annoncee_le": announced.isoformat(),
                "suspend_la_depublication": acknowledged is None and today >= deadline,
                # the date the data team gives the commune when it tells it (now), or gave
                "depublication_au_plus_tot_le": told_otherwise_until(
                    announced, acknowledged.acknowledged_at if acknowledged else clock.now()
                ).isoformat(),
                "transmis_autrement": (
                    health_actions.acknowledgement_json(acknowledged, warning)
                    if acknowledged
                    else None
                ),
                "formulaire": f"{PAGE}/jeux/{dataset.slug}/avertissement",
            }
        )
    return listed


def airflow_states(
    airflow: AirflowApi | None, communes: Collection[str]
) -> tuple[dict[str, Any], dict[str, DagState]]:
    """Whether Airflow answered (with a French message when it did not), and each
    commune's DAG as it knows it."""
    if airflow is None:
        message = (
            "Airflow n'est pas configuré (OPENDATA_AIRFLOW_URL) : les exécutions des "
            "traitements ne sont pas affichées."
        )
        return {"configure": False, "joignable": False, "message": message}, {}
    status = {"configure": True, "interface": airflow.config.ui_url}
    try:
        states = airflow.dag_states(dag_id(c) for c in communes)
    except AirflowError as error:
        message = (
            f"Airflow ne répond pas : les exécutions des traitements ne sont pas affichées, "
            f"le reste de la page est à jour. {error}"
        )
        return {**status, "joignable": False, "message": message}, {}
    return {**status, "joignable": True, "message": None}, {
        commune: states[dag_id(commune)] for commune in communes
    }


def _dag_json(airflow: AirflowApi, state: DagState) -> dict[str, Any]:
    run = state.last_run
    return {
        "dag": state.dag_id,
        "connu": state.known,
        "suspendu": state.paused,
        "lien": airflow.config.dag_url(state.dag_id),
        "prochaine_execution": state.next_run.isoformat() if state.next_run else None,
        "derniere_execution": None
        if run is None
        else {
            "id": run.run_id,
            "etat": run.state,
            "etat_libelle": run.state_label,
            "type": run.run_type,
            "demandee_le": run.run_after.isoformat() if run.run_after else None,
            "debut": run.start_date.isoformat() if run.start_date else None,
            "fin": run.end_date.isoformat() if run.end_date else None,
            "lien": run.url,
        },
    }


def commune_rows(
    store: CatalogStore,
    producers: Mapping[str, Producer],
    rows: list[dict[str, Any]],
    failing: list[dict[str, Any]],
    airflow: AirflowApi | None,
    dags: dict[str, DagState],
) -> list[dict[str, Any]]:
    stats = deposits.by_commune(store.submissions(), producers, clock.now())
    result = []
    for slug, producer in producers.items():
        dag = _dag_json(airflow, dags[slug]) if airflow is not None and slug in dags else None
        last_run = (dag or {}).get("derniere_execution") or {}
        failing_sources = sum(f["commune"] == slug for f in failing)
        result.append(
            {
                "slug": slug,
                "nom": producer.name,
                "jeux_de_donnees": sum(r["commune"] == slug for r in rows),
                "en_retard": sum(r["commune"] == slug and r["en_retard"] for r in rows),
                "sources_en_echec": failing_sources,
                "depots": stats[slug],
                "airflow": dag,
                "en_echec": last_run.get("etat") == "failed"
                or stats[slug]["alerte_refus"] is not None
                or failing_sources > 0,
                "relancer": f"{PAGE}/communes/{slug}/relancer",
            }
        )
    return result


def health_report(
    store: CatalogStore,
    producers: Mapping[str, Producer],
    today: date | None = None,
    filters: HealthFilters | None = None,
    airflow: AirflowApi | None = None,
) -> dict[str, Any]:
    today = today or clock.today()
    filters = filters or HealthFilters()
    datasets = store.list_datasets()
    every = [dataset_health(store, d, today) for d in datasets]
    every.sort(key=lambda r: (r["commune"], r["slug"]))
    failing = failing_sources(store, every, producers)
    titles = {r["slug"]: r["titre"] for r in every}
    communes_of = {r["slug"]: r["commune"] for r in every}
    mails = [
        m for m in waiting_mails(store, titles) if filters.keeps_commune(communes_of.get(m["slug"]))
    ]
    warnings = [
        w
        for w in undelivered_warnings(store, datasets, today)
        if filters.keeps_commune(w["commune"])
    ]
    airflow_status, dags = airflow_states(airflow, producers)
    communes = filters.communes(commune_rows(store, producers, every, failing, airflow, dags))
    rows = filters.datasets(every)
    failing = [f for f in failing if filters.keeps_commune(f["commune"])]
    return {
        "date": today.isoformat(),
        "filtres": filters.as_json(),
        "resume": {
            "jeux_de_donnees": len(rows),
            "en_retard": sum(r["en_retard"] for r in rows),
            "avis_en_cours": sum(r["avis_en_cours"] is not None for r in rows),
            "diffusion_parallele": sum(bool(r["diffusion_parallele"]) for r in rows),
            "depublication_bientot": sum(r["depublication_bientot"] for r in rows),
            "depublies": sum(r["statut"] == "depublie" for r in rows),
            "sources_en_echec": len(failing),
            "courriels_en_attente": len(mails),
            "avertissements_non_remis": sum(w["transmis_autrement"] is None for w in warnings),
            "communes_refus_repetes": sum(
                c["depots"]["alerte_refus"] is not None for c in communes
            ),
        },
        "airflow": airflow_status,
        "communes": communes,
        "avertissements_non_remis": warnings,
        "sources_en_echec": failing,
        "courriels_en_attente": mails,
        "jeux_de_donnees": rows,
    }


def deposit_report(store: CatalogStore, deposit: str) -> dict[str, Any]:
    """A processed deposit and its report's French text (as `rapport.txt` gave it)."""
    record = store.submission(deposit) if SUBMISSION_ID.fullmatch(deposit) else None
    if record is None:
        raise HTTPException(404, detail=f"Dépôt « {deposit} » introuvable.")
    report = Report.from_dict(record.report or {})
    return {
        "depot": record.id,
        "commune": record.producer,
        "jeu_de_donnees": record.dataset,
        "canal": record.channel,
        "recu_le": record.received_at.isoformat(),
        "statut": record.status,
        "texte": report.to_text(),
        "rapport": record.report,
    }


async def form_or_json(request: Request) -> dict[str, Any]:
    """A form's fields (the page) or a JSON object (the API)."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(await request.body())
        except ValueError as error:
            raise HTTPException(400, detail="Corps JSON illisible.") from error
        if not isinstance(body, dict):
            raise HTTPException(400, detail="Un objet JSON est attendu.")
        return body
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def router(web: Web) -> APIRouter:
    api = APIRouter()
    store = web.store
    config = AirflowConfig.from_env()
    airflow = AirflowApi(config) if config else None

    def filters_of(request: Request) -> HealthFilters:
        return HealthFilters.from_query(request.query_params, web.producers)

    @api.get(
        "/api/equipe-data/sante",
        summary="Santé de tous les jeux de données et des communes (équipe data, jeton requis)",
    )
    def health_json(request: Request) -> dict[str, Any]:
        check_data_team(request, store)
        return health_report(store, web.producers, filters=filters_of(request), airflow=airflow)

    def open_page(request: Request, what: str) -> None:
        principal = people.page_principal(request, store, what, data_team=True)
        accounts.audit(store, principal, "sante-consultee")

    async def posted_by(request: Request, what: str) -> Principal:
        """The data team member posting a page's form (by session: with its CSRF token)."""
        principal = await run_in_threadpool(people.authorised, request, store, what, data_team=True)
        people.check_csrf(request, store, principal, what, await request.form())
        return principal

    @api.get(PAGE, response_class=HTMLResponse, include_in_schema=False)
    def health_page(request: Request) -> HTMLResponse:
        open_page(request, "de consulter la vue santé")
        filters = filters_of(request)
        content = health_report(store, web.producers, filters=filters, airflow=airflow)
        rerun = request.query_params.get("relance")
        context = {
            "r": content,
            "communes": sorted(
                ((slug, p.name) for slug, p in web.producers.items()),
                key=lambda c: alphabetical(c[1]),
            ),
            "tri_jeux": filters.headers("jeux"),
            "tri_communes": filters.headers("communes"),
            "filtres_actifs": filters.active,
            "relance": of_place(web.producers[rerun].name) if rerun in web.producers else None,
            "noms_communes": {slug: p.name for slug, p in web.producers.items()},
            "acquitte": request.query_params.get("acquitte") in acknowledged(content),
        }
        return TEMPLATES.TemplateResponse(request, "sante.html", context)

    @api.get(f"{PAGE}/depots/{{depot}}", response_class=HTMLResponse, include_in_schema=False)
    def deposit_page(request: Request, depot: str) -> HTMLResponse:
        open_page(request, "de consulter le rapport d'un dépôt")
        content = deposit_report(store, depot)
        producer = web.producers.get(content["commune"])
        context = {"d": content, "commune": producer.name if producer else content["commune"]}
        return TEMPLATES.TemplateResponse(request, "sante_rapport.html", context)

    def rerun_commune(request: Request, commune: str) -> dict[str, Any]:
        principal = accounts.data_team(request, store, RERUN)
        return health_actions.rerun(store, airflow, web.producers, principal, commune)

    @api.post(f"{PAGE}/communes/{{commune}}/relancer", include_in_schema=False)
    async def rerun_page(request: Request, commune: str) -> RedirectResponse:
        principal = await posted_by(request, RERUN)
        await run_in_threadpool(
            health_actions.rerun, store, airflow, web.producers, principal, commune
        )
        return RedirectResponse(f"{PAGE}?relance={commune}#commune-{commune}", status_code=303)

    @api.post(
        f"/api{PAGE}/communes/{{commune}}/relancer",
        status_code=201,
        summary="Relancer le traitement d'une commune dans Airflow (équipe data)",
    )
    def rerun_api(request: Request, commune: str) -> dict[str, Any]:
        return rerun_commune(request, commune)

    async def acknowledge(request: Request, slug: str) -> dict[str, Any]:
        principal = await run_in_threadpool(accounts.data_team, request, store, ACKNOWLEDGE)
        fields = await form_or_json(request)
        return await run_in_threadpool(health_actions.acknowledge, store, principal, slug, fields)

    @api.post(f"{PAGE}/jeux/{{slug}}/avertissement", include_in_schema=False)
    async def acknowledge_page(request: Request, slug: str) -> RedirectResponse:
        principal = await posted_by(request, ACKNOWLEDGE)
        fields = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        await run_in_threadpool(health_actions.acknowledge, store, principal, slug, fields)
        return RedirectResponse(f"{PAGE}?acquitte={slug}#avertissements", status_code=303)

    @api.post(
        f"/api{PAGE}/jeux/{{slug}}/avertissement",
        status_code=201,
        summary="Avertissement de dépublication transmis autrement (équipe data, motif requis)",
    )
    async def acknowledge_api(request: Request, slug: str) -> JSONResponse:
        return JSONResponse(await acknowledge(request, slug), status_code=201)

    return api


def acknowledged(content: dict[str, Any]) -> set[str]:
    """The datasets whose undelivered warning the data team acknowledged."""
    return {w["slug"] for w in content["avertissements_non_remis"] if w["transmis_autrement"]}
