"""One DAG per partner commune, generated from config/producers.yaml.

Each run looks at the commune's drop folder (inbox/<commune>/<dataset>/) and
sends every ready submission through the stages, one task per stage, and fetches
the sources declared in metadata (a file URL, WFS, OGC API, CKAN, DCAT) whose
periodicity has come. The stages live in `pipelines`; this file only wires them.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from typing import Any

from airflow.exceptions import AirflowFailException
from airflow.sdk import dag, get_parsing_context, task, task_group

from core.problems import SubmissionRejected
from core.producers import Producer, load_producers
from core.producers import dag_id as commune_dag_id
from core.settings import load_settings
from pipelines import tasks

DEFAULT_ARGS = {
    "owner": "equipe-data",
    "retries": int(os.environ.get("OPENDATA_TASK_RETRIES", "2")),
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
}
# A run still unfinished this long is late: it is failed, and a French alert is logged and
# e-mailed to the data team (pipelines.tasks.late_run_alert). Airflow 3.3's DeadlineAlert would only
# warn, but it breaks `dag.test()` (the embedded runs); the timeout works everywhere.
DEADLINE = timedelta(minutes=int(os.environ.get("OPENDATA_DAGRUN_DEADLINE_MINUTES", "120")))


def _fail_clearly(stage, *args: Any) -> Any:
    """Run a stage; a rejected submission fails the task at once, with its French report."""
    try:
        return stage(*args)
    except SubmissionRejected as error:
        raise AirflowFailException(error.report.to_text()) from error


def build_commune_dag(producer: Producer):
    # Heavy tasks (read, check, anonymise, publish, pull) share the commune's own pool:
    # one commune's huge file cannot take every worker slot (pools created at setup).
    heavy = {"pool": tasks.commune_pool(producer.slug)}
    dag_id = commune_dag_id(producer.slug)

    @dag(
        dag_id=dag_id,
        description=f"Publication des données de {producer.name}",
        schedule=producer.schedule,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["commune", producer.slug],
        dagrun_timeout=(
            timedelta(minutes=producer.deadline_minutes) if producer.deadline_minutes else DEADLINE
        ),
        on_failure_callback=tasks.late_run_alert,
    )
    def commune_dag():
        @task
        def find_submissions() -> list[dict[str, str]]:
            return tasks.find_submissions(producer.slug)

        @task
        def check_metadata(submission: dict[str, str]) -> dict[str, Any]:
            return _fail_clearly(tasks.check_metadata, submission)

        @task
        def check_licence(submission: dict[str, str], metadata: dict[str, Any]) -> dict[str, Any]:
            return _fail_clearly(tasks.check_licence, submission, metadata)

        @task(**heavy)
        def check_structure(submission: dict[str, str], metadata: dict[str, Any]) -> dict:
            return _fail_clearly(tasks.check_structure, submission, metadata)

        @task(**heavy)
        def anonymise(
            submission: dict[str, str], metadata: dict[str, Any], checked: dict[str, Any]
        ) -> dict[str, Any]:
            return _fail_clearly(tasks.anonymise, submission, metadata)

        @task(**heavy)
        def publish(
            submission: dict[str, str],
            metadata: dict[str, Any],
            licence: dict[str, Any],
            anonymisation: dict[str, Any],
        ) -> dict[str, Any]:
            return _fail_clearly(tasks.publish, submission, metadata, licence, anonymisation)

        @task_group
        def process(submission: dict[str, str]) -> None:
            metadata = check_metadata(submission)
            licence = check_licence(submission, metadata)
            checked = check_structure(submission, metadata)
            licence >> checked
            anonymisation = anonymise(submission, metadata, checked)
            publish(submission, metadata, licence, anonymisation)

        process.expand(submission=find_submissions())

        # Pull delivery: the sources declared in the commune's metadata, fetched on their
        # periodicity, two at a time at most (they are on the commune's own servers).
        @task
        def find_sources() -> list[str]:
            return tasks.find_sources(producer.slug)

        @task(max_active_tis_per_dagrun=2, **heavy)
        def pull_source(folder: str) -> dict[str, Any]:
            return _fail_clearly(tasks.pull_source, producer.slug, folder)

        pull_source.expand(folder=find_sources())

    return commune_dag()


# A worker running a task parses this file again just for that task's DAG: build only it
# (59 DAGs cost about 1 s per task on a loaded 2-core machine, bench/WORKERS_RESULTS.md).
_running = get_parsing_context().dag_id
for _producer in load_producers(load_settings().producers_file).values():
    if _running is None or _running == commune_dag_id(_producer.slug):
        globals()[f"commune_{_producer.slug.replace('-', '_')}"] = build_commune_dag(_producer)
