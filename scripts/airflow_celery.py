"""Airflow at scale: metadata on PostgreSQL, Celery executor with Redis as broker.

The one place that says which Airflow processes a distributed deployment runs and with
which variables: `tests/test_celery.py` starts exactly these processes, and
`tests/test_compose.py` checks that docker-compose.yml's services run the same commands
with the same variables.

As a script, it prints the variables as shell `export` lines (for a manual setup):

    eval "$(.venv/bin/python scripts/airflow_celery.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/airflow \\
        --broker-url redis://127.0.0.1:6379/0 --home var/airflow)"
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Airflow's Celery settings plus the pipeline imported once per worker (pipelines/celery_config.py)
CELERY_CONFIG = "pipelines.celery_config.CELERY_CONFIG"

# Run once, before the services: the metadata schema, then the per-commune pools
# (`airflow pools import <file written by pipelines.tasks.write_pools_file>`).
SETUP_COMMANDS: list[list[str]] = [["db", "migrate"]]

# Compose service -> `airflow` arguments. Airflow 3: the DAG files are parsed by the
# dag-processor, not by the scheduler; Celery workers run each task through the Execution
# API served by the api-server (AIRFLOW__CORE__EXECUTION_API_SERVER_URL).
SERVICES: dict[str, list[str]] = {
    "airflow-api-server": ["api-server"],
    "airflow-scheduler": ["scheduler"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer"],
    "airflow-worker": ["celery", "worker"],
}

# Every variable a process of the deployment needs, besides the OPENDATA_* ones.
VARIABLES: tuple[str, ...] = (
    "AIRFLOW_HOME",
    "AIRFLOW__CORE__EXECUTOR",
    "AIRFLOW__CORE__DAGS_FOLDER",
    "AIRFLOW__CORE__LOAD_EXAMPLES",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CELERY__WORKER_CONCURRENCY",
    "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS",
    "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL",
    "AIRFLOW__LOGGING__BASE_LOG_FOLDER",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__PORT",
    "AIRFLOW__API__WORKERS",
)


def environment(
    *,
    home: Path | str,
    database_url: str,
    broker_url: str,
    api_url: str = "http://127.0.0.1:8080",
    logs_dir: Path | str | None = None,
    dags_folder: Path | str = PROJECT_ROOT / "dags",
    jwt_secret: str = "change-me",
    worker_concurrency: int = 4,
    api_workers: int = 2,
) -> dict[str, str]:
    """The AIRFLOW_* variables of every process; `database_url` is postgresql+psycopg://…"""
    api_port = api_url.rsplit(":", 1)[-1].split("/")[0]
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url.rstrip('/')}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        # psycopg 3 is also an asyncio driver: no asyncpg needed
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": database_url,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database_url}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
        # the workers import the pipeline once; each task's forked process inherits it
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": CELERY_CONFIG,
        # Airflow 3.3's task supervisor can sleep up to this long after its task has ended,
        # holding the worker slot (default 5 s: most of a short task's slot time here)
        "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(logs_dir or Path(home) / "logs"),
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret,
        "AIRFLOW__API__PORT": api_port,
        "AIRFLOW__API__WORKERS": str(api_workers),
    }
    assert tuple(env) == VARIABLES
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--broker-url", required=True)
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--api-url", default="http://127.0.0.1:8080")
    args = parser.parse_args(argv)
    env = environment(
        home=args.home.resolve(),
        database_url=args.database_url,
        broker_url=args.broker_url,
        api_url=args.api_url,
    )
    for name, value in env.items():
        print(f"export {name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
