"""Backups and restore (issue #8): a round trip into an empty instance gives the same
published files and the same API answers; a corrupted archive or a non-empty target is
refused in French and leaves the target as it was."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rdflib import Graph
from rdflib.compare import to_isomorphic

from catalog.store import CatalogStore
from catalog.store.notices import announce_change
from catalog.web.app import create_app
from core import clock
from core.settings import Settings
from opendata.cli import main as cli
from pipelines import backup
from pipelines.submission import (
    archive_submission,
    open_settings_store,
    ready_submissions,
    run_submission,
)

from conftest import SAMPLES, Deployment, deployment

NOW = "2026-11-02T10:00:00Z"
BANCS = "ecully-bancs-publics"


@dataclasses.dataclass
class Source:
    deployment: Deployment
    archive: Path


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Source]:
    """Every sample commune published through its drop folder (so the archive holds the
    processed folders), a change notice and an event; then backed up."""
    clock_patch = pytest.MonkeyPatch()
    clock_patch.setenv("OPENDATA_NOW", NOW)
    with deployment(tmp_path_factory, "source") as deployed:
        settings = dataclasses.replace(deployed.settings, inbox_dir=deployed.root / "inbox")
        shutil.copytree(SAMPLES / "inbox", settings.inbox_dir)
        for producer in sorted(p.name for p in settings.inbox_dir.iterdir()):
            for submission in ready_submissions(settings.inbox_dir, producer):
                outcome = run_submission(submission, settings, deployed.store)
                assert outcome.status == "publiee", outcome.summary()
                archive_submission(submission, outcome, settings)
        structure = deployed.store.structure_versions(BANCS)[-1].structure
        schema = json.loads(json.dumps(structure.get("schema", structure)))
        schema["fields"] = [f for f in schema["fields"] if f["name"] != "etat"] + [
            {"name": "etat_constate", "type": "string"}
        ]
        announce_change(
            deployed.store,
            BANCS,
            schema,
            clock.today() + timedelta(days=45),
            "La colonne etat devient etat_constate.",
            {"etat": {"colonne": "etat_constate"}},
        )
        deployed.store.record_event(
            BANCS,
            "retard",
            "Mise à jour attendue le 01/11/2026 non reçue",
            {"prochaine": "2026-11-01"},
            key=f"retard-{uuid.uuid4()}",
        )
        target = deployed.root / "sauvegardes"
        target.mkdir()
        assert cli(["backup", str(target)]) == 0
        (archive,) = target.glob("opendata-sauvegarde-*.tar")
        yield Source(deployed, archive)
    clock_patch.undo()


def _target(root: Path) -> Settings:
    """An empty instance: its own data folder and secrets file, same kind of store."""
    data = root / "data"
    return Settings(
        data_dir=data,
        inbox_dir=root / "inbox",
        licenses_dir=Path("licenses"),
        producers_file=Path("config/producers.yaml"),
        store_url=f"sqlite:///{data / 'catalog.db'}",
        secrets_file=root / "secrets" / "pseudonymes.yaml",
    )


def _published_files(store: CatalogStore) -> dict[str, str]:
    """Every release's every distribution (the whole history), with its SHA-256."""
    checksums = {}
    for dataset in store.list_datasets():
        for release in store.releases(dataset.slug):
            for distribution in release.distributions:
                path = store.release_path(release, distribution.format)
                assert path is not None and path.is_file(), path
                key = f"{release.id}/{distribution.filename}"
                checksums[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return checksums


def _api_answers(store: CatalogStore, datasets: int = 6) -> dict[str, Any]:
    """The catalog's answers, status and body, for every public endpoint we compare."""
    answers: dict[str, Any] = {}
    with TestClient(create_app(store, services=[])) as http:

        def get(url: str) -> None:
            response = http.get(url)
            body = response.content
            if response.headers.get("content-type", "").startswith("application/json"):
                body = response.json()
            answers[url] = (response.status_code, body, response.headers.get("etag"))

        get("/api/datasets?taille=100")
        slugs = [d["slug"] for d in answers["/api/datasets?taille=100"][1]["jeux_de_donnees"]]
        assert len(slugs) == datasets, answers["/api/datasets?taille=100"]
        for url in ("/dcat/catalogue.ttl", "/dcat/catalogue.jsonld", "/changements.atom"):
            get(url)
        for slug in slugs:
            base = f"/api/datasets/{slug}"
            for url in (
                base,
                f"{base}/rows?_taille=1000&_total=1",
                f"{base}/download/csv",
                f"{base}/download/parquet",
                f"{base}/dcat.ttl",
                f"{base}/changements.atom",
                f"/jeux-de-donnees/{slug}",
            ):
                get(url)
    return answers


def _graph(body: bytes, url: str) -> Any:
    fmt = "json-ld" if url.endswith(".jsonld") else "turtle"
    return to_isomorphic(Graph().parse(data=body, format=fmt))


def test_round_trip_into_an_empty_instance_gives_the_same_files_and_answers(
    source: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENDATA_NOW", NOW)
    original = source.deployment
    target = _target(tmp_path)
    # An instance whose store was opened once (empty tables, empty files folder) is empty.
    open_settings_store(target).close()

    result = backup.restore(target, source.archive)

    restored = open_settings_store(target)
    with tarfile.open(source.archive) as tar:
        names = tar.getnames()
        manifest = json.loads(tar.extractfile(backup.MANIFEST).read())  # type: ignore[union-attr]
    assert names[-1] == backup.MANIFEST and manifest["backend"] == "sqlite"
    assert manifest["date"] == "2026-11-02T10:00:00" and result.files == len(names) - 1
    assert backup.SQLITE_MEMBER in names and backup.SECRETS_MEMBER in names
    assert any(n.startswith(backup.ARCHIVE_PREFIX + "/ecully/") for n in names)
    assert not any("/derived/" in n or "/.staging/" in n for n in names)

    files = _published_files(original.store)
    assert len(files) >= 6 and _published_files(restored) == files
    assert target.secrets_file.read_bytes() == original.settings.secrets_file.read_bytes()
    assert target.secrets_file.stat().st_mode & 0o777 == 0o600
    archived = sorted(
        p.relative_to(original.settings.data_dir / "archive").as_posix()
        for p in (original.settings.data_dir / "archive").rglob("*")
        if p.is_file()
    )
    assert archived == sorted(
        p.relative_to(target.data_dir / "archive").as_posix()
        for p in (target.data_dir / "archive").rglob("*")
        if p.is_file()
    )
    assert [n.id for n in restored.notices(BANCS)] == [n.id for n in original.store.notices(BANCS)]
    assert restored.events(limit=1000) == original.store.events(limit=1000)
    assert restored.submissions() == original.store.submissions()

    before, after = _api_answers(original.store), _api_answers(restored)
    assert before.keys() == after.keys()
    for url in before:
        if "dcat" in url:  # same graph; rdflib's serialisation order may differ
            assert after[url][0] == before[url][0] == 200, url
            assert _graph(after[url][1], url) == _graph(before[url][1], url), url
        else:
            assert after[url] == before[url], url
    detail = json.dumps(before[f"/api/datasets/{BANCS}"][1], ensure_ascii=False)
    assert "etat_constate" in detail and "Mise à jour attendue le 01/11/2026" in detail
    assert not list(target.data_dir.glob(".restauration-*"))


def test_a_corrupted_archive_is_refused_and_the_target_stays_empty(
    source: Source, tmp_path: Path
) -> None:
    corrupted = tmp_path / "corrompue.tar"
    data = bytearray(source.archive.read_bytes())
    with tarfile.open(source.archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.startswith(backup.FILES_PREFIX))
    data[member.offset_data + member.size // 2] ^= 0x01  # one bit of a published file
    corrupted.write_bytes(bytes(data))
    target = _target(tmp_path / "cible")

    with pytest.raises(backup.BackupError) as refused:
        backup.restore(target, corrupted)

    assert "corrompue" in str(refused.value) and "Rien n'a été restauré" in str(refused.value)
    assert member.name in str(refused.value)
    assert not target.data_dir.exists() and not target.secrets_file.exists()


def test_restore_into_a_non_empty_instance_is_refused_unless_forced(
    source: Source, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    target = _target(tmp_path)
    backup.restore(target, source.archive)
    before = sorted(str(p) for p in target.data_dir.rglob("*"))

    monkeypatch.setenv("OPENDATA_DATA_DIR", str(target.data_dir))
    monkeypatch.setenv("OPENDATA_SECRETS_FILE", str(target.secrets_file))
    assert cli(["restore", str(source.archive)]) == 1
    message = capsys.readouterr().err
    assert "Restauration refusée : l'instance cible n'est pas vide" in message
    assert "--force" in message
    assert sorted(str(p) for p in target.data_dir.rglob("*")) == before

    assert cli(["restore", "--force", str(source.archive)]) == 0
    assert "restaurée" in capsys.readouterr().out
    restored = open_settings_store(target)
    assert _published_files(restored) == _published_files(source.deployment.store)


def test_the_backup_is_written_atomically_and_never_over_an_existing_file(
    source: Source, tmp_path: Path
) -> None:
    existing = tmp_path / "existante.tar"
    existing.write_bytes(b"ne pas toucher")
    with pytest.raises(backup.BackupError, match="existe déjà"):
        backup.backup(source.deployment.settings, existing)
    assert existing.read_bytes() == b"ne pas toucher"
    assert source.archive.stat().st_mode & 0o777 == 0o600
    assert not list(source.archive.parent.glob(".*.partiel"))


def _pg_available() -> bool:
    if not shutil.which("pg_dump") or not shutil.which("psql"):
        return False
    probe = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "select 1", "postgres"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


def _psql(database: str, sql: str) -> str:
    command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAq", "-v", "ON_ERROR_STOP=1"]
    done = subprocess.run(
        [*command, "-c", sql, database], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.skipif(not _pg_available(), reason="PostgreSQL is not reachable on 127.0.0.1:5432")
def test_a_postgresql_catalog_goes_through_pg_dump_and_pg_restore(tmp_path: Path) -> None:
    """The PostgreSQL path with the client tools only (no Python driver needed)."""
    names = [f"opendata_sauvegarde_{uuid.uuid4().hex[:8]}_{n}" for n in ("src", "dst")]
    for name in names:
        _psql("postgres", f"CREATE DATABASE {name}")
    try:
        _psql(
            names[0],
            "CREATE TABLE datasets (slug text PRIMARY KEY, metadata jsonb);"
            "INSERT INTO datasets VALUES ('ecully-bancs', '{\"titre\": \"Bancs\"}'),"
            "('lyon-fontaines', '{\"titre\": \"Fontaines\"}')",
        )
        _psql(names[1], "CREATE TABLE datasets (slug text PRIMARY KEY, metadata jsonb)")
        (tmp_path / "src" / "files" / "ecully-bancs" / "r1").mkdir(parents=True)
        (tmp_path / "src" / "files" / "ecully-bancs" / "r1" / "bancs.csv").write_text("id\n1\n")

        def settings(root: Path, database: str) -> Settings:
            return dataclasses.replace(
                _target(root),
                data_dir=root,
                store_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}",
            )

        source_settings = settings(tmp_path / "src", names[0])
        target_settings = settings(tmp_path / "dst", names[1])
        written = backup.backup(source_settings, tmp_path / "pg.tar")
        with tarfile.open(written.path) as tar:
            assert backup.PGDUMP_MEMBER in tar.getnames()

        with pytest.raises(backup.BackupError, match="n'est pas vide"):
            backup.restore(source_settings, written.path)
        backup.restore(target_settings, written.path)  # empty tables count as empty

        assert _psql(names[1], "SELECT string_agg(slug, ',' ORDER BY slug) FROM datasets") == (
            "ecully-bancs,lyon-fontaines"
        )
        assert (tmp_path / "dst" / "files" / "ecully-bancs" / "r1" / "bancs.csv").read_text() == (
            "id\n1\n"
        )
    finally:
        for name in names:
            _psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _psycopg_available() -> bool:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return False
    return _pg_available()


@pytest.mark.skipif(not _psycopg_available(), reason="no psycopg driver or no PostgreSQL")
def test_a_round_trip_of_the_sql_store_on_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The current SqlCatalogStore on PostgreSQL: published, backed up, restored into an
    empty database and data folder, same files and same API answers."""
    monkeypatch.setenv("OPENDATA_NOW", NOW)
    names = [f"opendata_sauvegarde_{uuid.uuid4().hex[:8]}_{n}" for n in ("src", "dst")]
    for name in names:
        _psql("postgres", f"CREATE DATABASE {name}")
    stores: list[CatalogStore] = []
    try:
        settings = [
            dataclasses.replace(
                _target(tmp_path / name),
                store_url=f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
            )
            for name in names
        ]
        monkeypatch.setenv("OPENDATA_DATA_DIR", str(settings[0].data_dir))
        monkeypatch.setenv("OPENDATA_SECRETS_FILE", str(settings[0].secrets_file))
        original = open_settings_store(settings[0])
        stores.append(original)
        inbox = tmp_path / "inbox"
        shutil.copytree(SAMPLES / "inbox" / "ecully", inbox / "ecully")
        for submission in ready_submissions(inbox, "ecully"):
            outcome = run_submission(submission, settings[0], original)
            assert outcome.status == "publiee", outcome.summary()
            archive_submission(submission, outcome, settings[0])
        written = backup.backup(settings[0], tmp_path / "pg.tar")
        empty = open_settings_store(settings[1])  # its tables exist, empty: still empty
        stores.append(empty)
        empty.close()

        backup.restore(settings[1], written.path)

        restored = open_settings_store(settings[1])
        stores.append(restored)
        assert _published_files(restored) == _published_files(original)
        before, after = _api_answers(original, 2), _api_answers(restored, 2)
        assert before.keys() == after.keys() and len(before) > 10
        for url in before:
            if "dcat" in url:
                assert _graph(after[url][1], url) == _graph(before[url][1], url), url
            else:
                assert after[url] == before[url], url
        with pytest.raises(backup.BackupError, match="base PostgreSQL .* n'est pas vide"):
            backup.restore(settings[1], written.path)
    finally:
        for store in stores:
            store.close()
        for name in names:
            _psql("postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
