"""One table of the platform's environment variables (core/variables.py, docs/variables.md)
that agrees with the code that reads them and with docker-compose.yml."""

from __future__ import annotations

import re

import yaml

from core.settings import PROJECT_ROOT
from core.variables import VARIABLES, markdown

CODE = ("core", "pipelines", "catalog", "opendata", "dags")


def read_by_code() -> set[str]:
    files = [f for folder in CODE for f in (PROJECT_ROOT / folder).rglob("*.py")]
    files.remove(PROJECT_ROOT / "core" / "variables.py")
    found = (re.findall(r"[\"'](OPENDATA_[A-Z_]+)", f.read_text("utf-8")) for f in files)
    return {v for names in found for v in names}


def documented() -> set[str]:
    return {v.name.replace("<NOM>", "") for v in VARIABLES}


def test_the_generated_table_is_the_documentation():
    table = (PROJECT_ROOT / "docs" / "variables.md").read_text(encoding="utf-8")
    assert table == markdown(), "regenerate: python -m core.variables > docs/variables.md"


def test_every_variable_the_code_reads_is_documented_and_every_documented_one_is_read():
    read, known = read_by_code(), documented()
    undocumented = {v for v in read - known if not any(k.startswith(v) for k in known)}
    assert not undocumented, f"add to core/variables.py: {sorted(undocumented)}"
    # a family (OPENDATA_OIDC_CLIENT_ID_<NOM>) may be read through a prefix; others by name
    families = {v.name.replace("<NOM>", "") for v in VARIABLES if "<NOM>" in v.name}
    unread = {
        v
        for v in known
        if v not in read and not (v in families and any(v.startswith(r) for r in read))
    }
    assert not unread, f"documented but read nowhere: {sorted(unread)}"


def test_docker_compose_sets_only_documented_variables():
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    known = documented()
    for name, service in compose["services"].items():
        declared = {k for k in service.get("environment", {}) if k.startswith("OPENDATA_")}
        families = {d for d in declared if any(d.startswith(k) and k.endswith("_") for k in known)}
        assert declared - families <= known, f"{name}: {declared - families - known}"
