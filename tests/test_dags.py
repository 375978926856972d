"""The commune DAGs on real Airflow (SQLite metadata database), run with dag.test()."""

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from core.producers import schedule
from core.settings import PROJECT_ROOT, Settings
from pipelines.submission import open_settings_store

from backends import on_both_backends
from conftest import personal_sample

pytest_plugins = ["backends"]  # the `backend` fixture: sqlite, postgis
settings, store = on_both_backends()  # every test here runs on both backends

SAMPLES = PROJECT_ROOT / "samples"
AIRFLOW = str(Path(sys.executable).parent / "airflow")

RUN_DAG = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
run = bag.get_dag(sys.argv[2]).test()
states = {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances()}
print("RESULT " + json.dumps({"state": str(run.state), "tasks": states}))
"""

LIST_DAGS = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print("RESULT " + json.dumps({"dags": sorted(bag.dag_ids),
      "errors": {k: str(v) for k, v in bag.import_errors.items()}}))
"""


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow")
    done = subprocess.run(
        [AIRFLOW, "db", "migrate"],
        env=_airflow_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return home


def _airflow_env(home: Path, settings: Settings | None = None, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        **extra,
    }
    if settings is not None:
        env["OPENDATA_DATA_DIR"] = str(settings.data_dir)
        env["OPENDATA_INBOX_DIR"] = str(settings.inbox_dir)
        env["OPENDATA_STORE_URL"] = settings.store_url
    return env


def _python(script: str, env: dict[str, str], *args: str) -> dict:
    """Run `script` in a fresh interpreter: its RESULT line, and everything it logged."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=600
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[-1].removeprefix("RESULT "))
    return {**result, "output": done.stdout + done.stderr}


def test_dag_folder_imports_and_has_one_dag_per_commune(airflow_home: Path) -> None:
    listing = _python(LIST_DAGS, _airflow_env(airflow_home), str(PROJECT_ROOT / "dags"))
    assert listing["errors"] == {}
    assert listing["dags"] == [
        "commune_ecully",
        "commune_lyon",
        "commune_vaulx_en_velin",
        "gouvernance",
    ]


def test_adding_a_commune_to_the_configuration_adds_its_dag(airflow_home, tmp_path) -> None:
    producers = tmp_path / "producers.yaml"
    producers.write_text(
        (PROJECT_ROOT / "config" / "producers.yaml").read_text(encoding="utf-8")
        + '  - slug: bron\n    nom: Bron\n    insee: "69029"\n    planification: "@daily"\n',
        encoding="utf-8",
    )
    env = _airflow_env(airflow_home, OPENDATA_PRODUCERS_FILE=str(producers))
    listing = _python(LIST_DAGS, env, str(PROJECT_ROOT / "dags"))
    assert "commune_bron" in listing["dags"] and listing["errors"] == {}


SCHEDULES = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print("RESULT " + json.dumps({dag_id: [type(dag.timetable).__name__, str(dag.schedule)]
      for dag_id, dag in bag.dags.items()} | {"errors": list(bag.import_errors.values())}))
"""


def test_one_variable_makes_every_commune_look_at_its_inbox_every_few_seconds(
    airflow_home: Path,
) -> None:
    """The demo's OPENDATA_PLANIFICATION (below the minute, which cron cannot say); the
    communes' own schedules otherwise."""
    dags = str(PROJECT_ROOT / "dags")
    own = _python(SCHEDULES, _airflow_env(airflow_home), dags)
    assert own["commune_lyon"] == ["CronTriggerTimetable", "*/5 * * * *"]
    assert own["commune_ecully"] == ["CronTriggerTimetable", "*/10 * * * *"]
    short = _python(SCHEDULES, _airflow_env(airflow_home, OPENDATA_PLANIFICATION="20s"), dags)
    for dag_id in ("commune_ecully", "commune_lyon", "commune_vaulx_en_velin"):
        assert short[dag_id] == ["DeltaTriggerTimetable", "0:00:20"]
    assert short["gouvernance"] == own["gouvernance"] == ["CronTriggerTimetable", "@daily"]


def test_a_schedule_is_cron_or_a_number_of_seconds() -> None:
    assert schedule("*/5 * * * *") == "*/5 * * * *" and schedule(None) is None
    assert schedule(" 45 s ") == timedelta(seconds=45)
    with pytest.raises(ValueError, match=r"durée positive \(lu : 0s\)"):
        schedule("0s")


def _drop(source: Path, inbox: Path) -> Path:
    target = inbox / source.parent.name / source.name
    shutil.copytree(source, target, dirs_exist_ok=True)
    return target


@pytest.mark.slow
def test_commune_dag_publishes_then_refuses_an_invalid_update(airflow_home, settings) -> None:
    env = _airflow_env(airflow_home, settings)
    folder = _drop(SAMPLES / "inbox" / "lyon" / "fontaines-eau-potable", settings.inbox_dir)

    first = _python(RUN_DAG, env, str(PROJECT_ROOT / "dags"), "commune_lyon")
    assert first["state"] == "success", first
    pulls = {k: v for k, v in first["tasks"].items() if k.startswith("pull_source")}
    assert set(pulls.values()) == {"skipped"}  # no declared source in this inbox
    assert {v for k, v in first["tasks"].items() if k not in pulls} == {"success"}
    assert "process.check_structure[0]" in first["tasks"]
    store = open_settings_store(settings)
    served = store.current_release("lyon-fontaines-eau-potable")
    assert served is not None and served.row_count > 0
    served_csv = store.release_path(served, "csv").read_bytes()
    assert "publiee" in (folder / "rapport.txt").read_text(encoding="utf-8")
    assert not (folder / "metadata.yaml").exists()  # moved to the archive

    _drop(SAMPLES / "invalid" / "lyon" / "fontaines-eau-potable", settings.inbox_dir)
    second = _python(RUN_DAG, env, str(PROJECT_ROOT / "dags"), "commune_lyon")
    assert second["state"] == "failed", second
    assert second["tasks"]["process.check_structure[0]"] == "failed"
    assert second["tasks"]["process.publish[0]"] == "upstream_failed"
    report = (folder / "rapport.txt").read_text(encoding="utf-8")
    assert "refusee" in report and "ligne" in report and "colonne" in report
    assert "la version précédente reste diffusée" in report
    still = store.current_release("lyon-fontaines-eau-potable")
    assert still == served and store.release_path(still, "csv").read_bytes() == served_csv
    assert [s.status for s in store.submissions("lyon")] == ["publiee", "refusee"]


@pytest.mark.slow
def test_empty_inbox_is_a_successful_run(airflow_home, settings) -> None:
    result = _python(
        RUN_DAG, _airflow_env(airflow_home, settings), str(PROJECT_ROOT / "dags"), "commune_ecully"
    )
    assert result["state"] == "success"
    assert result["tasks"]["find_submissions[-1]"] == "success"


@pytest.mark.slow
def test_personal_sample_is_published_anonymised_and_logs_hold_no_personal_value(
    airflow_home, settings
) -> None:
    sample = SAMPLES / "inbox" / "lyon" / "signalements-espace-public"
    features = json.loads((sample / "signalements-espace-public.geojson").read_text())["features"]
    fields = personal_sample.PERSONAL_FIELDS
    personal = {str(f["properties"][name]) for f in features for name in fields}
    _drop(sample, settings.inbox_dir)
    result = _python(
        RUN_DAG, _airflow_env(airflow_home, settings), str(PROJECT_ROOT / "dags"), "commune_lyon"
    )
    assert result["state"] == "success", result
    assert result["tasks"]["process.anonymise[0]"] == "success"
    store = open_settings_store(settings)
    release = store.current_release("lyon-signalements-espace-public")
    assert release.metadata["anonymisation"]["pseudonymise"] is True
    published = store.release_path(release, "csv").read_text(encoding="utf-8")
    files = [p for p in (airflow_home / "logs").rglob("*") if p.is_file()]
    logs = result["output"] + "\n".join(p.read_text(errors="replace") for p in files)
    assert "process.anonymise" in logs  # the task logs are there, and read
    leaks = sorted(v for v in personal if v in published or v in logs)
    assert leaks == []
