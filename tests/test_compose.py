"""docker-compose.yml stays consistent with what the code reads and the tests run."""

import importlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from catalog.ogc import mapserver as mapserver_module
from core.settings import PROJECT_ROOT, Settings

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_every_opendata_variable_is_one_the_code_reads() -> None:
    sources = [
        *(PROJECT_ROOT / "core").rglob("*.py"),
        *(PROJECT_ROOT / "pipelines").rglob("*.py"),
        *(PROJECT_ROOT / "catalog").rglob("*.py"),
    ]
    read = {v for f in sources for v in re.findall(r'"(OPENDATA_[A-Z_]+)"', f.read_text("utf-8"))}
    for name, service in COMPOSE["services"].items():
        declared = {k for k in service.get("environment", {}) if k.startswith("OPENDATA_")}
        assert declared <= read, f"{name}: {declared - read} not read by the code"
    for name in ("airflow", "catalog"):
        assert {"OPENDATA_DATA_DIR", "OPENDATA_INBOX_DIR"} <= set(
            COMPOSE["services"][name]["environment"]
        )


def test_services_run_the_commands_the_readme_and_tests_use() -> None:
    catalog = COMPOSE["services"]["catalog"]
    assert "opendata servir" in catalog["command"] and "scripts/bootstrap.sh" in catalog["command"]
    airflow = COMPOSE["services"]["airflow"]
    assert airflow["environment"]["AIRFLOW__CORE__DAGS_FOLDER"].endswith("/dags")
    assert "airflow db migrate" in airflow["command"]
    for service in COMPOSE["services"].values():
        assert "healthcheck" in service


def _services_dir() -> Path:
    """Where the catalog container writes the OGC services' files."""
    data_dir = Path(COMPOSE["services"]["catalog"]["environment"]["OPENDATA_DATA_DIR"])
    return Settings(data_dir, data_dir, data_dir, data_dir, "", data_dir).services_dir


def test_production_ogc_servers_read_the_files_the_catalog_writes() -> None:
    services = COMPOSE["services"]
    mapserver = services["mapserver"]["environment"]
    folder = _services_dir() / "mapserver"
    assert mapserver["MAPSERVER_CONFIG_FILE"] == str(folder / mapserver_module.CONFIG_FILE)
    assert mapserver["MS_MAPFILE"] == str(folder / mapserver_module.MAP_FILE)
    # the map file names GeoPackages by absolute path: same mount point as the catalog
    catalog_mounts = {v.split(":")[1] for v in services["catalog"]["volumes"]}
    assert {v.split(":")[1] for v in services["mapserver"]["volumes"]} <= catalog_mounts
    pycsw = services["pycsw"]
    assert pycsw["environment"]["OPENDATA_CSW_CONFIG"] == str(_services_dir() / "csw" / "pycsw.cfg")
    assert "pycsw_app:application" in pycsw["command"]
    assert "application" in vars(importlib.import_module("catalog.ogc.pycsw_app"))
    for name in ("mapserver", "pycsw", "web"):
        assert services[name]["profiles"] == ["production"] and "healthcheck" in services[name]


def test_the_web_front_routes_each_ogc_path_to_its_server() -> None:
    nginx = (PROJECT_ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    routes = dict(re.findall(r"location =? ?(\S+) \{[^}]*?proxy_pass http://(\w+)", nginx))
    assert routes["/wms"] == routes["/wfs"] == "mapserver"
    assert routes["/csw"] == "pycsw"
    assert routes["/"] == "catalog"  # portal, API, downloads and the OGC API under /ogc
    assert set(mapserver_module.ROUTES) == {"/wms", "/wfs"}  # the embedded paths, the same
    web = COMPOSE["services"]["web"]
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in web["volumes"]
    servers = dict(re.findall(r"upstream (\w+) \{ server ([\w-]+):\d+; \}", nginx))
    # the production catalog (PostGIS store, several workers) behind the front
    assert servers == {"catalog": "catalog-production", "mapserver": "mapserver", "pycsw": "pycsw"}
    for service in servers.values():
        assert service in COMPOSE["services"] and service in web["depends_on"]


def _airflow_celery() -> object:
    spec = importlib.util.spec_from_file_location(
        "airflow_celery", PROJECT_ROOT / "scripts" / "airflow_celery.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_production_airflow_runs_what_the_celery_test_starts() -> None:
    """Each Airflow service: the command and the variables tests/test_celery.py starts."""
    deployment = _airflow_celery()
    services = COMPOSE["services"]
    celery_test = (PROJECT_ROOT / "tests" / "test_celery.py").read_text(encoding="utf-8")
    assert "deployment.SERVICES.items()" in celery_test  # the test starts every one of them
    assert "deployment.environment(" in celery_test
    reference = deployment.environment(
        home="/h", database_url="postgresql+psycopg://u@h:5432/airflow", broker_url="redis://r/0"
    )
    for name, command in deployment.SERVICES.items():
        service = services[name]
        assert service["profiles"] == ["production"] and "healthcheck" in service
        assert service["command"].endswith(f'exec .venv/bin/airflow {" ".join(command)}"'), name
        env = service["environment"]
        assert set(deployment.VARIABLES) - {"AIRFLOW_HOME", "AIRFLOW__CORE__DAGS_FOLDER"} <= set(
            env
        ), name
        assert {"OPENDATA_DATA_DIR", "OPENDATA_INBOX_DIR", "OPENDATA_STORE_URL"} <= set(env)
        assert env["AIRFLOW_HOME"] == "/srv/opendata/var/airflow"
        assert env["AIRFLOW__CORE__DAGS_FOLDER"] == "/srv/opendata/dags"
        for fixed in ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CORE__LOAD_EXAMPLES"):
            assert env[fixed] == reference[fixed], (name, fixed)
        conn = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert conn.startswith("postgresql+psycopg://") and "@postgis:5432/" in conn
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] == conn
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + conn
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:6379/")
        api = f"http://airflow-api-server:{env['AIRFLOW__API__PORT']}/execution/"
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == api
        assert env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"].startswith("/srv/opendata/var/")
        assert services[name]["depends_on"]["airflow-init"] == {
            "condition": "service_completed_successfully"
        }
    init = services["airflow-init"]["command"]
    for command in deployment.SETUP_COMMANDS:
        assert ".venv/bin/airflow " + " ".join(command) in init
    assert "write_pools_file" in init and "airflow pools import" in init
    assert services["airflow-worker"]["deploy"]["replicas"] >= 2
    assert services["postgis"]["image"].startswith("postgis/postgis:")
    assert services["redis"]["image"].startswith("redis:")
    # the catalog on PostGIS, several workers; data, archives and logs on named volumes
    catalog = services["catalog-production"]
    assert re.search(r"opendata servir .*--workers [2-9]", catalog["command"])
    assert catalog["environment"]["OPENDATA_STORE_URL"].startswith("postgresql+psycopg://")
    for name in (*deployment.SERVICES, "catalog-production"):
        assert any(
            v.startswith("opendata-var:/srv/opendata/var") for v in services[name]["volumes"]
        )
    assert {"opendata-var", "postgis-data", "redis-data"} <= set(COMPOSE["volumes"])


def test_every_service_and_reference_is_well_formed() -> None:
    """Yaml-level structure checks, beside the Compose validator's (below)."""
    services = COMPOSE["services"]
    for name, service in services.items():
        assert ("image" in service) != ("build" in service), name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith(".") or source in COMPOSE["volumes"], (name, volume)
        assert set(service) <= {
            "image",
            "working_dir",
            "volumes",
            "environment",
            "command",
            "ports",
            "healthcheck",
            "profiles",
            "depends_on",
            "deploy",
        }, name


def compose_config(path: Path, *profiles: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config`: Debian's Compose (1.29) validates the file against the
    Compose specification's schema and resolves it, with no Docker engine."""
    command = shutil.which("docker-compose")
    if command is None:
        pytest.skip("docker-compose absent (scripts/bootstrap.sh l'installe depuis Debian)")
    options = [f"--profile={profile}" for profile in profiles]
    return subprocess.run(
        [command, "-f", str(path), *options, "config"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=path.parent,
    )


def with_defaults(value: object) -> str:
    """A variable's value as Compose resolves it when nothing is set: `${X:-d}` gives d."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))


@pytest.mark.parametrize("profiles", [(), ("production",)], ids=["embarque", "production"])
def test_compose_validates_the_file_and_resolves_every_service(profiles: tuple[str, ...]) -> None:
    done = compose_config(PROJECT_ROOT / "docker-compose.yml", *profiles)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)["services"]
    assert set(resolved) == set(COMPOSE["services"])  # Compose 1.29 lists every profile
    for name, service in COMPOSE["services"].items():
        declared = {k: with_defaults(v) for k, v in service.get("environment", {}).items()}
        assert resolved[name].get("environment", {}) == declared, name
        assert resolved[name].get("profiles", []) == service.get("profiles", []), name


def test_compose_refuses_a_misspelt_option(tmp_path: Path) -> None:
    broken = dict(COMPOSE)
    broken["services"] = {
        **COMPOSE["services"],
        "catalog": {
            **COMPOSE["services"]["catalog"],
            "helthcheck": COMPOSE["services"]["catalog"].get(
                "healthcheck", {"test": ["CMD", "true"]}
            ),
        },
    }
    (tmp_path / "docker-compose.yml").write_text(yaml.safe_dump(broken), encoding="utf-8")
    done = compose_config(tmp_path / "docker-compose.yml")
    assert done.returncode != 0 and "helthcheck" in done.stderr


def test_nginx_lets_uploads_through_up_to_the_catalogs_own_limit() -> None:
    from catalog.web.routes import uploads
    from pipelines import upload_client

    nginx = (PROJECT_ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    server_wide = re.search(r"^    client_max_body_size (\d+)m;", nginx, re.M)
    assert server_wide
    for prefix in ("/api/communes/", "/api/producteurs/"):  # the new paths, the former ones
        block = re.search(rf"location {prefix} \{{(.*?)\}}", nginx, re.S)
        assert block, prefix
        allowed = int(re.search(r"client_max_body_size (\d+)m;", block.group(1)).group(1)) * 2**20
        assert allowed >= uploads.DEFAULT_REQUEST_MAX >= upload_client.DEFAULT_CHUNK
        assert "proxy_request_buffering off;" in block.group(1)  # streamed, not spooled whole
    assert int(server_wide.group(1)) * 2**20 < upload_client.DEFAULT_CHUNK  # elsewhere: small
