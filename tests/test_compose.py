"""docker-compose.yml stays consistent with what the code reads and the tests run."""

import importlib
import re
from pathlib import Path

import yaml

from catalog.ogc import mapserver as mapserver_module
from pipelines.config import PROJECT_ROOT, Settings

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_every_opendata_variable_is_one_the_code_reads() -> None:
    sources = [
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
    assert "opendata serve" in catalog["command"] and "scripts/bootstrap.sh" in catalog["command"]
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
    for upstream in ("catalog", "mapserver", "pycsw"):
        assert re.search(rf"server {upstream}:\d+;", nginx)
        assert upstream in COMPOSE["services"]
