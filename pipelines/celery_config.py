"""The Celery settings of Airflow's workers (`AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS`).

Airflow's defaults, plus the pipeline imported once by each worker when it starts: every
task runs in a process forked from the worker, which so inherits pyarrow, the readers and
the store instead of importing them again for each task (1 to 5 s per task on a loaded
2-core machine, bench/WORKERS_RESULTS.md). Only Airflow processes import this module.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

CELERY_CONFIG: dict[str, Any] = {**DEFAULT_CELERY_CONFIG, "imports": ("pipelines.tasks",)}
