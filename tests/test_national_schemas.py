"""The national schemas of schema.data.gouv.fr (issue #15): our verdict is frictionless's.

The corpus (tests/data/national_schemas/, provenance in its SOURCES.md) holds the Table
Schemas published on schema.data.gouv.fr and the example files of their producers; its
catalog.json is a miniature of the site's catalog. bench/national_schemas.py compares the
error lists and times both validators; here only the verdicts are compared.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import frictionless
import pytest

from core.problems import SubmissionRejected
from core.structure import check_schema_descriptor
from pipelines.read.stage import read_source
from pipelines.validate import validate

CORPUS = Path(__file__).parent / "data" / "national_schemas"
CATALOG = json.loads((CORPUS / "catalog.json").read_text(encoding="utf-8"))


def _versions() -> list[tuple[str, str, Path]]:
    return [
        (schema["name"], version["version_name"], CORPUS / version["schema_url"])
        for schema in CATALOG["schemas"]
        for version in schema["versions"]
    ]


def _examples() -> list[tuple[str, Path, Path]]:
    """(test id, example file, its schema), for every example listed by the catalog."""
    examples = []
    for name, version, schema_path in _versions():
        folder = schema_path.parent
        schema = next(s for s in CATALOG["schemas"] if s["name"] == name)
        for example in schema["examples"]:
            path = CORPUS / example["path"]
            if path.parent == folder:
                examples.append((f"{name}@{version}/{path.name}", path, schema_path))
    return examples


VERSIONS = _versions()
EXAMPLES = _examples()


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither validator may reach the network for these files."""

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise OSError("no network in the national schemas tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _descriptor(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def test_catalog_lists_every_file_of_the_corpus() -> None:
    listed = {path for _name, _version, path in VERSIONS} | {p for _id, p, _s in EXAMPLES}
    on_disk = {p for p in CORPUS.glob("*/*/*") if p.is_file()}
    assert listed == on_disk
    assert len(VERSIONS) >= 15
    assert any(p.name.startswith("exemple-invalide") for p in on_disk)


@pytest.mark.parametrize(
    "schema_path", [path for *_rest, path in VERSIONS], ids=[f"{n}@{v}" for n, v, _p in VERSIONS]
)
def test_frictionless_accepts_the_schema(schema_path: Path) -> None:
    frictionless.Schema.from_descriptor(_descriptor(schema_path))


def frictionless_verdict(path: Path, schema_path: Path) -> str:
    resource = frictionless.Resource(
        path=path.name,
        basepath=str(path.parent),
        schema=frictionless.Schema.from_descriptor(_descriptor(schema_path)),
    )
    return "valide" if resource.validate(limit_errors=1).valid else "invalide"


def our_verdict(path: Path, schema_path: Path) -> str:
    try:
        schema = check_schema_descriptor(_descriptor(schema_path), schema_path.name)
    except SubmissionRejected as rejected:
        return f"schéma refusé : {rejected.report.to_text()}"
    try:
        source = read_source(path)
    except SubmissionRejected:
        return "invalide"  # a file we cannot read is refused
    return "valide" if validate(source, schema).report.valid else "invalide"


@pytest.mark.parametrize(
    ("path", "schema_path"),
    [(path, schema_path) for _id, path, schema_path in EXAMPLES],
    ids=[test_id for test_id, _p, _s in EXAMPLES],
)
def test_same_verdict_as_frictionless(path: Path, schema_path: Path) -> None:
    assert our_verdict(path, schema_path) == frictionless_verdict(path, schema_path)
