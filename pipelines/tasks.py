"""The stages as units of work for an orchestrator: JSON in, JSON out, files in between.

Each function is one Airflow task of a commune's DAG (see dags/communes.py). A
rejected submission is recorded in the catalog, its report left in the drop
folder, and `SubmissionRejected` is raised for the orchestrator to fail the task
without retrying. `apply_lifecycle_rules` and `notify` are the tasks of the daily
governance DAG (dags/governance.py).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from core.problems import SubmissionRejected
from core.producers import load_producers
from core.settings import load_settings
from pipelines import governance
from pipelines import notify as notifications
from pipelines.harvest.pull import pull
from pipelines.harvest.schedule import due_folders
from pipelines.submission import (
    Outcome,
    Submission,
    archive_submission,
    load_checked,
    open_settings_store,
    ready_submissions,
    record_rejection,
    save_checked,
    stage_anonymise,
    stage_licence,
    stage_metadata,
    stage_publish,
    stage_read,
    stage_structure,
    with_later_findings,
    work_folder,
    write_report_files,
)

T = TypeVar("T")


def find_submissions(producer: str) -> list[dict[str, str]]:
    settings = load_settings()
    return [s.to_dict() for s in ready_submissions(settings.inbox_dir, producer)]


def check_metadata(submission: dict[str, str]) -> dict[str, Any]:
    sub = Submission(**submission)
    return _guarded(sub, None, lambda: stage_metadata(sub, load_settings()))


def check_licence(submission: dict[str, str], metadata: dict[str, Any]) -> dict[str, Any]:
    sub = Submission(**submission)
    return _guarded(sub, metadata, lambda: stage_licence(metadata, load_settings()))


def check_structure(submission: dict[str, str], metadata: dict[str, Any]) -> dict[str, Any]:
    sub = Submission(**submission)

    def run() -> dict[str, Any]:
        settings = load_settings()
        store = open_settings_store(settings)
        source = stage_read(sub, metadata)
        checked, structure, version = stage_structure(sub, metadata, source, store)
        save_checked(work_folder(settings, sub), checked, structure, version)
        return {"lignes": checked.typed.num_rows, "version_structure": version}

    return _guarded(sub, metadata, run)


def anonymise(submission: dict[str, str], metadata: dict[str, Any]) -> dict[str, Any]:
    sub = Submission(**submission)

    def run() -> dict[str, Any]:
        settings = load_settings()
        folder = work_folder(settings, sub)
        checked, structure, version = load_checked(folder)
        treated, structure, anonymisation = stage_anonymise(
            sub, metadata, checked, structure, settings
        )
        save_checked(folder, treated, structure, version)
        return anonymisation

    return _guarded(sub, metadata, run)


def publish(
    submission: dict[str, str],
    metadata: dict[str, Any],
    licence: dict[str, Any],
    anonymisation: dict[str, Any],
) -> dict[str, Any]:
    sub = Submission(**submission)
    settings = load_settings()
    store = open_settings_store(settings)
    folder = work_folder(settings, sub)
    checked, structure, version = load_checked(folder)
    outcome = _guarded(
        sub,
        metadata,
        lambda: stage_publish(
            sub, metadata, licence, checked, structure, version, store, anonymisation, settings
        ),
    )
    archive_submission(sub, outcome, settings, store)  # and mails the depositor, if any
    _clean(folder)
    return {
        "statut": outcome.status,
        "jeu_de_donnees": outcome.dataset,
        "version": outcome.release,
        "resume": outcome.summary(),
    }


def find_sources(producer: str) -> list[str]:
    """The commune's declared sources due for a fetch (issue #7)."""
    settings = load_settings()
    store = open_settings_store(settings)
    return [str(folder) for folder in due_folders(store, settings, producer)]


def pull_source(producer: str, folder: str) -> dict[str, Any]:
    """Fetch one declared source through the pipeline; its report is left in the folder."""
    settings = load_settings()
    outcome = pull(open_settings_store(settings), settings, producer, Path(folder))
    write_report_files(Path(folder), outcome)
    if outcome.status == "refusee":
        raise SubmissionRejected(outcome.report)
    return {
        "statut": outcome.status,
        "jeu_de_donnees": outcome.dataset,
        "version": outcome.release,
        "resume": outcome.summary(),
    }


def apply_lifecycle_rules() -> str:
    """The lifecycle rules that depend on time alone (pipelines.governance); French report."""
    settings = load_settings()
    store = open_settings_store(settings)
    return governance.run(store, archive_dir=settings.archive_dir).to_text()


def notify() -> dict[str, Any]:
    """Mail producers and the data team about new events, deliver the due webhooks."""
    settings = load_settings()
    return notifications.notify_pending(open_settings_store(settings), settings)


def _guarded(sub: Submission, metadata: dict[str, Any] | None, stage: Callable[[], T]) -> T:
    try:
        return stage()
    except SubmissionRejected as error:
        settings = load_settings()
        whole = SubmissionRejected(with_later_findings(sub, error.report, metadata, settings))
        store = open_settings_store(settings)
        outcome: Outcome = record_rejection(sub, whole, store, metadata)
        archive_submission(sub, outcome, settings, store)  # and mails the depositor, if any
        raise


def _clean(folder: Any) -> None:
    shutil.rmtree(folder, ignore_errors=True)


# --- Airflow at scale (issue #8) --------------------------------------------------------


def commune_pool(producer: str) -> str:
    """The Airflow pool of a commune's heavy tasks: one huge file cannot starve the others."""
    return f"commune_{producer.replace('-', '_')}"


def commune_pools(slots: int | None = None) -> dict[str, dict[str, Any]]:
    """Every commune's pool, in the format of `airflow pools import`."""
    if slots is None:
        slots = int(os.environ.get("OPENDATA_POOL_SLOTS", "2"))
    return {
        commune_pool(slug): {
            "slots": slots,
            "description": f"Tâches lourdes de {producer.name} (lecture, contrôle, publication)",
            "include_deferred": False,
        }
        for slug, producer in load_producers(load_settings().producers_file).items()
    }


def write_pools_file(path: Any, slots: int | None = None) -> Any:
    """Write the pools for `airflow pools import <path>` (run by every setup); returns path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(commune_pools(slots), ensure_ascii=False, indent=2), "utf-8")
    return target


def late_run_alert(context: dict[str, Any]) -> None:
    """`on_failure_callback` of a commune DAG: a French alert in the log; a late run is also
    e-mailed, once, to the data team (`OPENDATA_DATA_TEAM_EMAIL`, through `OPENDATA_SMTP_*`).
    A failed task alone is not mailed: a refused submission is the producer's report."""
    dag_run = context.get("dag_run")
    dag_id = getattr(dag_run, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    run_id = str(getattr(dag_run, "run_id", "") or "")
    reason = str(context.get("reason") or "")
    late = "timed_out" in reason or "timeout" in reason
    subject, body = late_run_message(dag_id, run_id, late)
    logging.getLogger("opendata.alertes").warning("%s", body.splitlines()[0])
    if not late:
        return
    config = notifications.MailConfig.from_env()
    settings = load_settings()
    notifications.send_mail(
        open_settings_store(settings),
        f"alerte-dag:{dag_id}:{run_id}",
        [config.data_team],
        subject,
        body,
        config,
    )


def late_run_message(dag_id: str, run_id: str, late: bool) -> tuple[str, str]:
    """The alert's subject and body, in French, with the run's page in Airflow if known."""
    if late:
        subject = f"Exécution en retard : {dag_id}"
        first = (
            f"Exécution en retard : le DAG {dag_id} (exécution {run_id}) n'a pas fini dans le "
            "délai prévu ; elle est arrêtée. L'équipe data doit vérifier les journaux des "
            "tâches et la file d'attente."
        )
    else:
        subject = f"Exécution en échec : {dag_id}"
        first = (
            f"Exécution en échec : le DAG {dag_id} (exécution {run_id}) a une tâche en échec ; "
            "le rapport est dans le dossier de dépôt et les journaux des tâches."
        )
    lines = [first]
    airflow_url = os.environ.get("OPENDATA_AIRFLOW_URL", "").rstrip("/")
    if airflow_url and run_id:
        lines += ["", f"Journaux des tâches : {airflow_url}/dags/{dag_id}/runs/{run_id}"]
    return subject, "\n".join(lines) + "\n"
