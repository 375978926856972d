"""docs/etendre.md's examples, run as a developer would add them: the module as the page
gives it, plus its one registry entry; nothing else is touched, and the product uses it."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import requests

from catalog.store import downloads
from core import lifecycle
from pipelines import governance, notify

from conftest import running_catalog

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "etendre.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)


def example(module_path: str, tmp_path: Path) -> tuple[ModuleType, str]:
    """The guide's module for `module_path` (e.g. catalog/store/downloads/tsv.py), imported
    under its dotted name, and the registry entry the guide gives for it."""
    dotted = module_path.removesuffix(".py").replace("/", ".")
    blocks = python_blocks()
    entry = next(b for b in blocks if f'"{dotted}:' in b)
    source = next(
        b
        for b in blocks
        if b.lstrip().startswith('"""') and b is not entry and _defines_what(entry, b)
    )
    file = tmp_path / Path(module_path).name
    file.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(dotted, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[dotted] = module
    spec.loader.exec_module(module)
    return module, entry


def _defines_what(entry: str, source: str) -> bool:
    attribute = entry.strip().split(":")[-1].rstrip('",')
    return any(
        isinstance(node, ast.Assign)
        and any(getattr(t, "id", "") == attribute for t in node.targets)
        for node in ast.parse(source).body
    )


def registered(entry: str) -> tuple[str, str]:
    """The registry entry line of the guide, as (name, "module:attribute")."""
    name, target = ast.literal_eval("{" + entry.strip().rstrip(",") + "}").popitem()
    return name, target


def test_a_download_format_is_one_module_and_one_entry(
    submit, dataset_folder, store, tmp_path, monkeypatch
):
    module, entry = example("catalog/store/downloads/tsv.py", tmp_path)
    name, target = registered(entry)
    assert target == "catalog.store.downloads.tsv:FORMAT"
    monkeypatch.setitem(downloads.REGISTRY, name, target)
    monkeypatch.setitem(downloads.FORMATS, name, module.FORMAT)  # as the import would load it
    data = dataset_folder("arbres.csv", "id;espece;plante\r\n1;Platane;2016-03-22\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    with running_catalog(store) as base:
        described = requests.get(f"{base}/api/datasets/ecully-arbres", timeout=10).json()
        assert "tsv" in described["formats"]
        found = requests.get(f"{base}/api/datasets?format=tsv", timeout=10).json()
        assert [d["slug"] for d in found["jeux_de_donnees"]] == ["ecully-arbres"]
        page = requests.get(f"{base}/jeux-de-donnees/ecully-arbres", timeout=10).text
        assert "/api/datasets/ecully-arbres/download/tsv" in page and ">TSV<" in page
        answer = requests.get(f"{base}/api/datasets/ecully-arbres/download/tsv", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/tab-separated-values")
    assert answer.text.splitlines()[:2] == ['"id"\t"espece"\t"plante"', '1\t"Platane"\t2016-03-22']


def test_a_lifecycle_rule_is_one_module_and_one_entry(
    submit, dataset_folder, store, tmp_path, monkeypatch
):
    module, entry = example("core/lifecycle/annual_reminder.py", tmp_path)
    name, target = registered(entry)
    assert target == "core.lifecycle.annual_reminder:RULE"
    monkeypatch.setitem(lifecycle.REGISTRY, name, target)
    monkeypatch.setitem(lifecycle.RULES, name, module.RULE)
    monkeypatch.setenv("OPENDATA_NOW", "2027-01-10T09:00:00")
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    monkeypatch.setenv("OPENDATA_NOW", "2028-01-09T06:00:00")
    governance.run(store)
    assert "rappel-annuel" not in [e.kind for e in store.events("ecully-arbres")]
    monkeypatch.setenv("OPENDATA_NOW", "2028-01-10T06:00:00")
    assert "Rappels annuels envoyés : ecully-arbres" in governance.run(store).to_text()
    again = governance.run(store).to_text()  # idempotent: one reminder a year
    assert "Rappels annuels envoyés : aucun" in again
    reminders = [e for e in store.events("ecully-arbres") if e.kind == "rappel-annuel"]
    assert len(reminders) == 1 and reminders[0].details == {"annees": 1}
    dataset = store.get_dataset("ecully-arbres")
    subject, body = notify.compose(reminders[0], dataset, "https://donnees.example.org")
    assert subject.startswith("[Données ouvertes] Rappel annuel : ")
    assert "Ce qu'il faut faire : vérifiez que les données" in body
    assert lifecycle.is_mailed("rappel-annuel")
    assert not lifecycle.is_told(dataset, reminders[0])  # reusers are not told
    assert lifecycle.label("rappel-annuel") == "Rappel annuel"
    with running_catalog(store) as base:  # nor shown in the dataset's public history
        described = requests.get(f"{base}/api/datasets/ecully-arbres", timeout=10).json()
        page = requests.get(f"{base}/jeux-de-donnees/ecully-arbres", timeout=10).text
    kinds = [c["type"] for c in described["cycle_de_vie"]["changements"]]
    assert "publication" in kinds and "rappel-annuel" not in kinds
    assert "Rappel annuel" not in page
