"""docker-compose.yml stays consistent with what the code reads and the tests run."""

import re

import yaml

from pipelines.config import PROJECT_ROOT

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_every_opendata_variable_is_one_the_code_reads() -> None:
    code = (PROJECT_ROOT / "pipelines" / "config.py").read_text(encoding="utf-8")
    read = set(re.findall(r'"(OPENDATA_[A-Z_]+)"', code))
    for name, service in COMPOSE["services"].items():
        declared = {k for k in service["environment"] if k.startswith("OPENDATA_")}
        assert declared <= read, f"{name}: {declared - read} not read by pipelines/config.py"
        assert {"OPENDATA_DATA_DIR", "OPENDATA_INBOX_DIR"} <= declared


def test_services_run_the_commands_the_readme_and_tests_use() -> None:
    catalog = COMPOSE["services"]["catalog"]
    assert "opendata serve" in catalog["command"] and "scripts/bootstrap.sh" in catalog["command"]
    airflow = COMPOSE["services"]["airflow"]
    assert airflow["environment"]["AIRFLOW__CORE__DAGS_FOLDER"].endswith("/dags")
    assert "airflow db migrate" in airflow["command"]
    for service in COMPOSE["services"].values():
        assert "healthcheck" in service
