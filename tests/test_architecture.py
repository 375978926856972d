"""The house's shape (issue #17), checked where import-linter's contracts cannot reach.

`lint-imports` (run by scripts/test.sh) enforces the contracts of pyproject.toml; these
tests keep those contracts honest: the list of catalog modules the pipeline may not import
names every one of them but the store, and no contract silently stops matching anything.
"""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import tomllib
from pathlib import Path

import catalog

ROOT = Path(__file__).resolve().parents[1]


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return {c["name"]: c for c in config["tool"]["importlinter"]["contracts"]}


def catalog_children() -> set[str]:
    return {f"catalog.{m.name}" for m in pkgutil.iter_modules(catalog.__path__)}


def test_the_pipeline_may_reach_no_catalog_module_but_the_store():
    (contract,) = [c for name, c in contracts().items() if name.startswith("The pipeline enters")]
    assert contract["source_modules"] == ["pipelines"]
    forbidden = set(contract["forbidden_modules"])
    missing = catalog_children() - forbidden - {"catalog.store"}
    assert not missing, f"add to the contract's forbidden_modules: {sorted(missing)}"
    assert "catalog.store" not in forbidden
    assert not forbidden - catalog_children(), "a forbidden module no longer exists"


def test_the_layers_name_every_package_of_the_project():
    (contract,) = [c for c in contracts().values() if c["type"] == "layers"]
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert set(contract["layers"]) == packages
    assert contract["layers"][-1] == "core"


def test_the_readme_names_every_module_as_the_tree_has_it():
    spec = importlib.util.spec_from_file_location("plan", ROOT / "scripts" / "plan.py")
    assert spec is not None and spec.loader is not None
    plan = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plan)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "À DÉCRIRE" not in plan.section(), "describe the new package in scripts/plan.py"
    assert readme == plan.rewritten(readme), "run: python scripts/plan.py"


def test_the_dags_wire_the_pipeline_and_nothing_else_of_the_project():
    """dags/ is Airflow's folder, not a package import-linter sees: checked here."""
    for dag in (ROOT / "dags").glob("*.py"):
        for node in ast.walk(ast.parse(dag.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top not in {"catalog", "opendata"}, f"{dag.name} imports {name}"
