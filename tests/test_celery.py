"""A commune DAG through Airflow at scale: metadata on PostgreSQL, Celery executor, Redis.

Real processes, as docker-compose.yml runs them (scripts/airflow_celery.py): api-server
(Celery workers run tasks through its Execution API), scheduler, dag-processor,
triggerer and a Celery worker; a throwaway PostgreSQL database for Airflow's metadata
and Celery's results, a Redis database as the broker. Not `dag.test()`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_lifecycle import TEAM_MAIL, Mailbox, mailbox  # noqa: F401 - mailbox: fixture

from core.settings import PROJECT_ROOT, Settings
from pipelines import tasks
from pipelines.submission import open_settings_store

AIRFLOW = str(Path(sys.executable).parent / "airflow")
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS = ("127.0.0.1", 6379)
DAG_ID = "commune_ecully"
SAMPLE = PROJECT_ROOT / "samples" / "inbox" / "ecully" / "bancs-publics"
LATE_DAG_ID = "commune_vaulx_en_velin"  # given a deadline of 3 s: its run is late
LATE_SAMPLE = PROJECT_ROOT / "samples" / "inbox" / "vaulx-en-velin" / "pistes-cyclables"
RUN_TIMEOUT = 150  # seconds, from the trigger to the run's end


def _load_deployment() -> Any:
    spec = importlib.util.spec_from_file_location(
        "airflow_celery", PROJECT_ROOT / "scripts" / "airflow_celery.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


deployment = _load_deployment()


def _reachable(address: tuple[str, int]) -> bool:
    try:
        socket.create_connection(address, timeout=2).close()
        return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def metadata_db() -> Iterator[str]:
    """A throwaway PostgreSQL database: its SQLAlchemy URL (psycopg 3), dropped after."""
    missing = [
        n
        for n, a in (("PostgreSQL", (PG["host"], PG["port"])), ("Redis", REDIS))
        if not _reachable(a)
    ]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} injoignable(s) : requis en CI")
        pytest.skip(f"{', '.join(missing)} injoignable(s)")
    import psycopg

    name = f"airflow_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def broker() -> Iterator[str]:
    """A Redis database for this run (emptied before and after)."""
    import redis

    number = 8 + os.getpid() % 8
    client = redis.Redis(*REDIS, db=number)
    client.flushdb()
    try:
        yield f"redis://{REDIS[0]}:{REDIS[1]}/{number}"
    finally:
        client.flushdb()
        client.close()


def _run(command: list[str], env: dict[str, str], timeout: int = 180) -> str:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{command}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done.stdout


def _query(database_url: str, sql: str, *params: Any) -> list[tuple]:
    import psycopg

    with psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql")) as conn:
        return conn.execute(sql, params).fetchall()


def _wait(what: str, check, timeout: float, processes: dict, logs: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                log = (logs / f"{name}.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"{name} s'est arrêté ({process.returncode}) : {log}")
        result = check()
        if result:
            return result
        time.sleep(2)
    tails = {n: (logs / f"{n}.log").read_text(errors="replace")[-1500:] for n in processes}
    pytest.fail(f"délai dépassé ({timeout} s) : {what}\n{tails}")


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.mark.slow
def test_commune_dag_runs_on_celery_workers_and_publishes(
    metadata_db: str,
    broker: str,
    settings: Settings,
    tmp_path: Path,
    mailbox: Mailbox,  # noqa: F811 - the imported fixture
) -> None:
    started = time.monotonic()
    home = tmp_path / "airflow"
    logs = tmp_path / "process-logs"
    logs.mkdir()
    api_port = _free_port()
    # the communes without a schedule: the only run is the one this test triggers
    config = yaml.safe_load((PROJECT_ROOT / "config" / "producers.yaml").read_text("utf-8"))
    for producer in config["producteurs"]:
        producer["planification"] = None
        if producer["slug"] == "vaulx-en-velin":
            producer["delai_execution_minutes"] = 0.05
    producers = tmp_path / "producers.yaml"
    producers.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    env = {
        **os.environ,
        **deployment.environment(
            home=home,
            database_url=metadata_db,
            broker_url=broker,
            api_url=f"http://127.0.0.1:{api_port}",
            logs_dir=tmp_path / "task-logs",
            jwt_secret=uuid.uuid4().hex,
            worker_concurrency=2,
            api_workers=1,
        ),
        "OPENDATA_DATA_DIR": str(settings.data_dir),
        "OPENDATA_INBOX_DIR": str(settings.inbox_dir),
        "OPENDATA_PRODUCERS_FILE": str(producers),
        "OPENDATA_TASK_RETRIES": "0",
        # this test's own ports: other Airflow instances may run on the machine
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "OPENDATA_AIRFLOW_URL": f"http://127.0.0.1:{api_port}",
        **mailbox.env(),
    }
    for command in deployment.SETUP_COMMANDS:
        _run([AIRFLOW, *command], env)
    pools = tasks.write_pools_file(tmp_path / "pools.json")  # same communes, same pools
    _run([AIRFLOW, "pools", "import", str(pools)], env)

    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in deployment.SERVICES.items():
            processes[name] = subprocess.Popen(
                [AIRFLOW, *command],
                env=env,
                stdout=(logs / f"{name}.log").open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped whole
            )
        _wait(
            f"{DAG_ID} analysé par le dag-processor",
            lambda: _query(metadata_db, "SELECT 1 FROM serialized_dag WHERE dag_id = %s", DAG_ID),
            90,
            processes,
            logs,
        )
        shutil.copytree(SAMPLE, settings.inbox_dir / "ecully" / SAMPLE.name)
        shutil.copytree(LATE_SAMPLE, settings.inbox_dir / "vaulx-en-velin" / LATE_SAMPLE.name)
        for dag_id in (DAG_ID, LATE_DAG_ID):
            _run([AIRFLOW, "dags", "unpause", dag_id], env)
            _run([AIRFLOW, "dags", "trigger", dag_id, "--run-id", "celery-test"], env)

        def finished(dag_id: str) -> str | None:
            rows = _query(
                metadata_db,
                "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = 'celery-test'",
                dag_id,
            )
            return rows[0][0] if rows and rows[0][0] in ("success", "failed") else None

        state = _wait(
            f"fin de l'exécution de {DAG_ID}",
            lambda: finished(DAG_ID),
            RUN_TIMEOUT,
            processes,
            logs,
        )
        late_state = _wait(
            f"fin de {LATE_DAG_ID}", lambda: finished(LATE_DAG_ID), RUN_TIMEOUT, processes, logs
        )
        alerts = _wait(
            "courriel d'alerte de l'exécution en retard",
            lambda: [m for m in mailbox.messages if LATE_DAG_ID in m["Subject"]],
            60,
            processes,
            logs,
        )
        instances = _query(
            metadata_db,
            "SELECT task_id, map_index, state, pool, executor, hostname, queue FROM task_instance"
            " WHERE dag_id = %s AND run_id = 'celery-test'",
            DAG_ID,
        )
        assert state == "success", instances
    finally:
        _stop(processes)

    # the late run is stopped, and the data team gets one e-mail naming it, with its logs
    assert late_state == "failed"
    assert [m["Subject"] for m in alerts] == [f"Exécution en retard : {LATE_DAG_ID}"]
    assert alerts[0]["To"] == TEAM_MAIL
    body = alerts[0].get_content()
    assert "n'a pas fini dans le délai prévu" in body
    assert f"http://127.0.0.1:{api_port}/dags/{LATE_DAG_ID}/runs/celery-test" in body

    by_task = {(t, i): rest for t, i, *rest in instances}
    assert ("process.publish", 0) in by_task, instances
    assert by_task[("process.publish", 0)][0] == "success"
    # heavy tasks in the commune's pool, the others in the default pool
    assert by_task[("process.publish", 0)][1] == tasks.commune_pool("ecully") == "commune_ecully"
    assert by_task[("process.check_structure", 0)][1] == "commune_ecully"
    assert by_task[("process.check_metadata", 0)][1] == "default_pool"
    # run by the Celery worker process, not in the scheduler
    assert all(rest[3] for rest in instances if rest[2] == "success")

    store = open_settings_store(settings)
    release = store.current_release("ecully-bancs-publics")
    assert release is not None and release.row_count > 0
    assert store.release_path(release, "csv").exists()
    assert "publiee" in (settings.inbox_dir / "ecully" / SAMPLE.name / "rapport.txt").read_text(
        encoding="utf-8"
    )

    # the task logs, where AIRFLOW__LOGGING__BASE_LOG_FOLDER says, readable as text
    task_logs = [p for p in (tmp_path / "task-logs").rglob("*.log") if "publish" in str(p)]
    assert task_logs, sorted((tmp_path / "task-logs").rglob("*"))
    assert "ecully-bancs-publics" in "".join(p.read_text(errors="replace") for p in task_logs)
    print(f"exécution Celery complète en {time.monotonic() - started:.0f} s")
