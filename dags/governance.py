"""The daily governance DAG: the lifecycle rules of annex data.grandlyon.com §3.2.

`appliquer_regles` retires the old structures whose parallel diffusion is over and applies
the staleness rule (late updates, warnings, depublication after 3 years); `notifier` then
mails the producers and the data team and delivers the reusers' webhooks. Both steps are
idempotent. The rules live in `pipelines`; this file only wires them.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import dag, task

from pipelines import tasks

LOGGER = logging.getLogger(__name__)
DEFAULT_ARGS = {
    "owner": "equipe-data",
    "retries": int(os.environ.get("OPENDATA_TASK_RETRIES", "2")),
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
}


@dag(
    dag_id="gouvernance",
    description="Règles de cycle de vie : retrait des anciennes structures, jeux en retard, "
    "dépublication après 3 ans sans mise à jour, notifications",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["gouvernance"],
)
def governance_dag():
    @task
    def appliquer_regles() -> str:
        report = tasks.apply_lifecycle_rules()
        LOGGER.info("Rapport de gouvernance :\n%s", report)
        return report

    @task
    def notifier() -> dict[str, Any]:
        sent = tasks.notify()
        LOGGER.info("Notifications : %s", sent)
        return sent

    appliquer_regles() >> notifier()  # then tell what the rules just recorded


gouvernance = governance_dag()
