"""What the data team does from the health page (issue #19), each written to the audit log:

- re-run a commune's DAG (`rerun`): a manual run through Airflow's REST API;
- acknowledge that a depublication warning whose mail could not leave reached the commune
  otherwise (`acknowledge`, « Avertissement transmis autrement »): for the lifecycle rule
  (`core.lifecycle.staleness`), the warning is delivered from then on.

Bad input is a French 4xx and changes nothing; a commune is checked against the
configured ones before Airflow is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException

from catalog import accounts
from catalog.airflow_api import AirflowApi, AirflowError
from catalog.store import CatalogStore
from core import clock
from core.access import Principal
from core.lifecycle import mail_key
from core.lifecycle.staleness import holding_warning
from core.producers import Producer, dag_id
from core.records import Event, MailAcknowledgement
from core.wording import of_place

REASON_MAX = 1000  # characters of an acknowledgement's reason
RECENT_EVENTS = 500  # a dataset's events read back to find its warning (as the daily job)


def rerun(
    store: CatalogStore,
    airflow: AirflowApi | None,
    producers: Mapping[str, Producer],
    principal: Principal,
    commune: str,
) -> dict[str, Any]:
    """Trigger the commune's DAG now; the run as JSON. 404 for an unknown commune, 503
    without Airflow, 502 when Airflow refuses or cannot be reached."""
    producer = producers.get(commune)
    if producer is None:
        raise HTTPException(404, detail=f"Commune « {commune} » inconnue.")
    if airflow is None:
        raise HTTPException(
            503,
            detail="Airflow n'est pas configuré (OPENDATA_AIRFLOW_URL) : relance impossible.",
        )
    dag = dag_id(commune)
    try:
        run = airflow.trigger(dag, note=f"Relancé depuis la vue santé par {principal.label}")
    except AirflowError as error:
        raise HTTPException(
            502, detail=f"Relance du traitement {of_place(producer.name)} impossible : {error}"
        ) from error
    accounts.audit(
        store,
        principal,
        "traitement-relance",
        commune=commune,
        target=dag,
        details={"execution": run.run_id},
    )
    return {
        "commune": commune,
        "dag": dag,
        "execution": run.run_id,
        "etat": run.state,
        "etat_libelle": run.state_label,
        "lien": run.url,
    }


def acknowledge(
    store: CatalogStore, principal: Principal, slug: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """Record that the dataset's undelivered warning reached its commune otherwise.

    `fields`: `motif` (how the commune was told, required) and `avertissement` (the id of
    the warning the page showed: if another one was recorded since, 409)."""
    reason = str(fields.get("motif") or "").strip()
    if not reason:
        raise HTTPException(
            400, detail="Indiquez comment la commune a été prévenue (motif obligatoire)."
        )
    if len(reason) > REASON_MAX:
        raise HTTPException(400, detail=f"Motif trop long : {REASON_MAX} caractères au plus.")
    dataset = store.get_dataset(slug)
    if dataset is None:
        raise HTTPException(404, detail=f"Jeu de données « {slug} » introuvable.")
    warning = holding_warning(dataset, store.events(slug, limit=RECENT_EVENTS))
    if warning is None or store.mail_sent_at(mail_key(warning)) is not None:
        raise HTTPException(
            409, detail=f"Aucun avertissement de dépublication non remis pour « {slug} »."
        )
    shown = str(fields.get("avertissement") or "")
    if shown and shown != str(warning.id):
        raise HTTPException(
            409,
            detail="Un autre avertissement a été décidé depuis l'affichage de la page : "
            "rechargez-la.",
        )
    acknowledgement = MailAcknowledgement(
        key=mail_key(warning),
        dataset=slug,
        acknowledged_at=clock.now(),
        actor=principal.label,
        reason=reason,
    )
    if not store.acknowledge_mail(acknowledgement):
        raise HTTPException(409, detail=f"L'avertissement de « {slug} » est déjà acquitté.")
    accounts.audit(
        store,
        principal,
        "avertissement-acquitte",
        commune=dataset.producer,
        target=slug,
        details={"avertissement": warning.id, "motif": reason},
    )
    return acknowledgement_json(acknowledgement, warning)


def acknowledgement_json(acknowledgement: MailAcknowledgement, warning: Event) -> dict[str, Any]:
    return {
        "jeu_de_donnees": acknowledgement.dataset,
        "avertissement": warning.id,
        "le": acknowledgement.acknowledged_at.isoformat(),
        "par": acknowledgement.actor,
        "motif": acknowledgement.reason,
    }
