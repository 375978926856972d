"""Backups and restore of one instance (`opendata sauvegarder`, `opendata restaurer`).

A backup is a single tar file, written atomically (temporary file, fsync, rename) and
readable by the operator only (mode 0600: it holds the pseudonymisation keys). It holds:

- `catalogue/catalog.sqlite`: the SQLite catalog, copied with SQLite's online backup API
  (a consistent snapshot while the catalog serves), or `catalogue/catalog.pgdump`: a
  `pg_dump --format=custom` of the PostgreSQL catalog (a snapshot too);
- `donnees/files/…`: every release's distributions (the published files, immutable),
  without the `derived/` folders (other formats and CRS, the rows' SQLite copies, the OGC
  GeoPackages: rebuilt on demand from the release's Parquet) nor `.staging/`;
- `donnees/archive/…`: the processed drop folders (what each commune sent, with its report);
- `secrets/pseudonymes.yaml`: the pseudonymisation keys, when the secrets file exists;
  without them the next version of a pseudonymised dataset would get new pseudonyms;
- `manifest.json` (last member): format version, date (`core.clock.now()`), backend,
  and every member with its size and SHA-256.

Left out: `services/` (the OGC services' generated files, rebuilt by the refresher at
start-up), `work/` (scratch space of in-flight submissions), the inbox (pending drops
belong to the communes, which drop them again) and keys given by environment variables.

The catalog is snapshotted first, then the files: a release's files are moved into place
before its database switch, so every release in the snapshot has its files in the archive
(a release published meanwhile only adds unreferenced files).

Restore goes into an empty instance only (or with `force`), checks the manifest and every
checksum before touching anything, stages the files beside their destination, restores
the catalog (PostgreSQL: `pg_restore --single-transaction`), then moves each part into
place; on any failure what was moved is put back and the staging folder removed.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import sqlalchemy as sa

from core import clock
from core.inbox import file_sha256
from core.settings import Settings

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "catalogue/catalog.sqlite"
PGDUMP_MEMBER = "catalogue/catalog.pgdump"
FILES_PREFIX = "donnees/files"
ARCHIVE_PREFIX = "donnees/archive"
SECRETS_MEMBER = "secrets/pseudonymes.yaml"
SKIPPED_DIRS = {"derived", ".staging"}  # rebuilt on demand / unfinished publications
CHUNK = 1 << 20
# Bookkeeping present in an empty instance: PostGIS's own tables and schemas, the schema
# migrations' version, the search index's version and the inner tables of its SQLite FTS5
# index (`catalog.store.search_index`). They do not make a target non-empty.
PG_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "topology", "tiger", "tiger_data")
SEARCH_TEXT_SHADOWS = tuple(
    f"search_text_{part}" for part in ("data", "idx", "content", "docsize", "config")
)
BOOKKEEPING_TABLES = (
    "spatial_ref_sys",
    "alembic_version",
    "search_state",
    "catalog_generation",
    *SEARCH_TEXT_SHADOWS,
)


class BackupError(Exception):
    """A backup or restore that cannot be done; the message is French, for the operator."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    files: int
    size: int
    backend: str


@dataclass(frozen=True)
class RestoreResult:
    files: int
    backend: str
    created_at: str


# --- backend ---------------------------------------------------------------------------------


def backend_of(store_url: str) -> str:
    name = sa.engine.make_url(store_url).get_backend_name()
    if name in ("sqlite", "postgresql"):
        return name
    raise BackupError(f"Base de catalogue non prise en charge pour la sauvegarde : {name}.")


def sqlite_path(store_url: str) -> Path:
    database = sa.engine.make_url(store_url).database
    if not database or database == ":memory:":
        raise BackupError("Le catalogue SQLite en mémoire ne peut pas être sauvegardé.")
    return Path(database)


def pg_environment(store_url: str) -> dict[str, str]:
    """libpq's variables for the client tools (the password never on a command line)."""
    url = sa.engine.make_url(store_url)
    env = dict(os.environ)
    for variable, value in (
        ("PGHOST", url.host),
        ("PGPORT", str(url.port) if url.port else None),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
    ):
        if value:
            env[variable] = str(value)
    return env


def _run_pg(command: list[str], store_url: str, what: str) -> str:
    try:
        done = subprocess.run(
            command, env=pg_environment(store_url), capture_output=True, text=True, check=False
        )
    except OSError as error:
        raise BackupError(f"{what} impossible : {command[0]} introuvable ({error}).") from error
    if done.returncode != 0:
        raise BackupError(f"{what} en échec ({command[0]}) : {done.stderr.strip()}")
    return done.stdout


# --- backup ----------------------------------------------------------------------------------


class _HashingReader(io.RawIOBase):
    """Reads a file for tarfile while hashing exactly the bytes that go into the archive."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.digest.update(data)
        return data


def _walk(root: Path) -> Iterator[Path]:
    """Regular files under root, sorted, outside the skipped folders; symlinks ignored."""
    if not root.is_dir():
        return
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path


def _add(tar: tarfile.TarFile, path: Path, member: str, entries: list[dict[str, Any]]) -> None:
    with path.open("rb") as handle:
        info = tar.gettarinfo(fileobj=handle, arcname=member)
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mode = 0o600 if member == SECRETS_MEMBER else 0o644
        reader = _HashingReader(handle)
        tar.addfile(info, reader)  # reads exactly info.size bytes
    entries.append({"chemin": member, "taille": info.size, "sha256": reader.digest.hexdigest()})


def _snapshot_catalog(settings: Settings, backend: str, folder: Path) -> tuple[Path, str]:
    if backend == "sqlite":
        source = sqlite_path(settings.store_url)
        if not source.is_file():
            raise BackupError(f"Catalogue introuvable : {source}.")
        target = folder / "catalog.sqlite"
        # The online backup API: a consistent copy while the catalog reads and writes.
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(target)
        try:
            with dst:
                src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no WAL
        finally:
            dst.close()
            src.close()
        return target, SQLITE_MEMBER
    target = folder / "catalog.pgdump"
    _run_pg(
        ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={target}"],
        settings.store_url,
        "Sauvegarde du catalogue PostgreSQL",
    )
    return target, PGDUMP_MEMBER


def default_name() -> str:
    return f"opendata-sauvegarde-{clock.now():%Y%m%dT%H%M%S}.tar"


def backup(settings: Settings, destination: Path) -> BackupResult:
    """Write the instance's backup to `destination` (a file, or a folder to put it in)."""
    backend = backend_of(settings.store_url)
    if destination.is_dir():
        destination = destination / default_name()
    if destination.exists():
        raise BackupError(f"{destination} existe déjà : choisissez un autre nom.")
    if not destination.parent.is_dir():
        raise BackupError(f"Dossier de destination introuvable : {destination.parent}.")
    created_at = clock.now()
    descriptor, temporary_name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=".partiel"
    )
    temporary = Path(temporary_name)
    entries: list[dict[str, Any]] = []
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "wb") as raw, tempfile.TemporaryDirectory() as scratch:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                snapshot, member = _snapshot_catalog(settings, backend, Path(scratch))
                _add(tar, snapshot, member, entries)
                snapshot.unlink()
                for root, prefix in (
                    (settings.files_dir, FILES_PREFIX),
                    (settings.data_dir / "archive", ARCHIVE_PREFIX),
                ):
                    for path in _walk(root):
                        relative = path.relative_to(root).as_posix()
                        _add(tar, path, f"{prefix}/{relative}", entries)
                if settings.secrets_file.is_file():
                    _add(tar, settings.secrets_file, SECRETS_MEMBER, entries)
                manifest = json.dumps(
                    {
                        "version": FORMAT_VERSION,
                        "date": created_at.isoformat(),
                        "backend": backend,
                        "fichiers": entries,
                    },
                    ensure_ascii=False,
                    indent=1,
                ).encode("utf-8")
                info = tarfile.TarInfo(MANIFEST)
                info.size = len(manifest)
                info.mtime = int(created_at.timestamp())
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(manifest))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temporary, destination)
        _fsync_dir(destination.parent)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return BackupResult(destination, len(entries), destination.stat().st_size, backend)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- verification ----------------------------------------------------------------------------


def _safe_member(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and name == path.as_posix()


def verify(archive: Path) -> dict[str, Any]:
    """The archive's manifest, once every member has been read and matched its SHA-256."""
    if not archive.is_file():
        raise BackupError(f"Sauvegarde introuvable : {archive}.")
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
            names = [member.name for member in members]
            if names.count(MANIFEST) != 1:
                raise BackupError(f"{archive.name} n'est pas une sauvegarde : manifeste absent.")
            manifest_file = tar.extractfile(tar.getmember(MANIFEST))
            assert manifest_file is not None
            try:
                manifest = json.loads(manifest_file.read().decode("utf-8"))
                expected = {e["chemin"]: e for e in manifest["fichiers"]}
            except (ValueError, KeyError, TypeError) as error:
                raise BackupError(f"Manifeste de {archive.name} illisible : {error}.") from error
            if manifest.get("version") != FORMAT_VERSION:
                raise BackupError(
                    f"Version de sauvegarde {manifest.get('version')} non prise en charge "
                    f"(attendue : {FORMAT_VERSION})."
                )
            present = [m for m in members if m.name != MANIFEST]
            if len({m.name for m in present}) != len(present) or set(expected) != {
                m.name for m in present
            }:
                raise BackupError(
                    f"Sauvegarde {archive.name} incomplète ou altérée : ses fichiers ne "
                    "correspondent pas à son manifeste."
                )
            for member in present:
                if not member.isfile() or not _safe_member(member.name):
                    raise BackupError(f"Entrée refusée dans la sauvegarde : {member.name}.")
                digest = hashlib.sha256()
                handle = tar.extractfile(member)
                assert handle is not None
                while chunk := handle.read(CHUNK):
                    digest.update(chunk)
                entry = expected[member.name]
                if digest.hexdigest() != entry["sha256"] or member.size != entry["taille"]:
                    raise BackupError(
                        f"Sauvegarde {archive.name} corrompue : l'empreinte SHA-256 de "
                        f"{member.name} ne correspond pas au manifeste. Rien n'a été restauré."
                    )
    except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as error:
        raise BackupError(
            f"Sauvegarde {archive.name} illisible ou corrompue ({error}). Rien n'a été restauré."
        ) from error
    return manifest


# --- emptiness -------------------------------------------------------------------------------


def _sqlite_rows(path: Path) -> int:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        tables = [
            row[0]
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return sum(
            connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            for table in tables
            if table not in BOOKKEEPING_TABLES
        )
    finally:
        connection.close()


def _pg_rows(store_url: str) -> int:
    schemas = ", ".join(f"'{s}'" for s in PG_SYSTEM_SCHEMAS)
    tables = ", ".join(f"'{t}'" for t in BOOKKEEPING_TABLES)
    query = (
        "SELECT coalesce(sum((xpath('/row/c/text()', query_to_xml(format("
        "'SELECT count(*) AS c FROM %I.%I', schemaname, tablename), false, true, '')))[1]"
        f"::text::bigint), 0) FROM pg_tables WHERE schemaname NOT IN ({schemas}) "
        f"AND tablename NOT IN ({tables})"
    )
    output = _run_pg(
        ["psql", "--no-psqlrc", "--tuples-only", "--no-align", "--command", query],
        store_url,
        "Lecture de la base cible",
    )
    return int(output.strip() or 0)


def occupied(settings: Settings, backend: str, manifest: dict[str, Any]) -> list[str]:
    """What makes the target instance non-empty (French), or nothing."""
    reasons = []
    for folder in (settings.files_dir, settings.data_dir / "archive"):
        if next(_walk(folder), None) is not None:
            reasons.append(f"le dossier {folder} contient des fichiers")
    if backend == "sqlite":
        database = sqlite_path(settings.store_url)
        if database.is_file() and _sqlite_rows(database):
            reasons.append(f"le catalogue {database} n'est pas vide")
    elif _pg_rows(settings.store_url):
        url = sa.engine.make_url(settings.store_url)
        reasons.append(f"la base PostgreSQL « {url.database} » n'est pas vide")
    secrets = next((e for e in manifest["fichiers"] if e["chemin"] == SECRETS_MEMBER), None)
    if (
        secrets is not None
        and settings.secrets_file.is_file()
        and file_sha256(settings.secrets_file) != secrets["sha256"]
    ):
        reasons.append(f"le fichier de secrets {settings.secrets_file} contient d'autres clés")
    return reasons


# --- restore ---------------------------------------------------------------------------------


@dataclass
class _Step:
    source: Path  # staged, on the target's filesystem
    target: Path
    companions: tuple[Path, ...] = ()  # moved aside with the target (SQLite's -wal, -shm)


def restore(settings: Settings, archive: Path, *, force: bool = False) -> RestoreResult:
    """Restore `archive` into the instance that `settings` describes (empty unless `force`)."""
    backend = backend_of(settings.store_url)
    manifest = verify(archive)  # reads everything, writes nothing
    if manifest["backend"] != backend:
        raise BackupError(
            f"Cette sauvegarde vient d'un catalogue {manifest['backend']} ; l'instance cible "
            f"utilise {backend}. Restaurez-la dans une instance du même type."
        )
    reasons = occupied(settings, backend, manifest)
    if reasons and not force:
        raise BackupError(
            "Restauration refusée : l'instance cible n'est pas vide ("
            + " ; ".join(reasons)
            + "). Restaurez dans une instance vide, ou ajoutez --force pour remplacer son "
            "contenu."
        )
    created_data_dir = not settings.data_dir.exists()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    staging = settings.data_dir / f".restauration-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    moved: list[tuple[Path, Path]] = []  # (original place, where it was put aside)
    placed: list[Path] = []
    staged_outside: list[Path] = []
    try:
        _extract(archive, staging, manifest)
        steps = [
            _Step(staging / FILES_PREFIX, settings.files_dir),
            _Step(staging / ARCHIVE_PREFIX, settings.data_dir / "archive"),
        ]
        secrets = staging / SECRETS_MEMBER
        if secrets.is_file():
            settings.secrets_file.parent.mkdir(parents=True, exist_ok=True)
            kept = settings.secrets_file.with_name(f".{settings.secrets_file.name}.restauration")
            staged_outside.append(kept)
            shutil.copyfile(secrets, kept)  # beside the target: the final rename is atomic
            os.chmod(kept, 0o600)
            steps.append(_Step(kept, settings.secrets_file))
        if backend == "sqlite":
            database = sqlite_path(settings.store_url)
            database.parent.mkdir(parents=True, exist_ok=True)
            staged_db = database.with_name(f".{database.name}.restauration")
            staged_outside.append(staged_db)
            shutil.copyfile(staging / SQLITE_MEMBER, staged_db)
            wal = database.with_name(database.name + "-wal")
            shm = database.with_name(database.name + "-shm")
            # An old WAL left beside the new file would be replayed into it: moved aside too.
            steps.append(_Step(staged_db, database, (wal, shm)))
        else:
            # One transaction: on failure the database is left as it was.
            _run_pg(
                [
                    "pg_restore",
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--no-privileges",
                    "--single-transaction",
                    "--exit-on-error",
                    f"--dbname={pg_environment(settings.store_url).get('PGDATABASE', '')}",
                    str(staging / PGDUMP_MEMBER),
                ],
                settings.store_url,
                "Restauration du catalogue PostgreSQL",
            )
        aside = staging / "ancien"
        aside.mkdir()
        for number, step in enumerate(steps):
            for old in (step.target, *step.companions):
                if old.exists():
                    put = aside / f"{number}-{old.name}"
                    os.replace(old, put)
                    moved.append((old, put))
            step.target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(step.source, step.target)
            placed.append(step.target)
    except BaseException:
        for target in reversed(placed):
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)
        for old, put in reversed(moved):
            os.replace(put, old)
        for path in staged_outside:
            path.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        if created_data_dir:
            shutil.rmtree(settings.data_dir, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)  # with what --force replaced
    return RestoreResult(len(manifest["fichiers"]), backend, manifest["date"])


def _extract(archive: Path, staging: Path, manifest: dict[str, Any]) -> None:
    """Extract the members under staging, checking each path and checksum again (the
    archive could have changed since it was verified)."""
    expected = {entry["chemin"]: entry["sha256"] for entry in manifest["fichiers"]}
    with tarfile.open(archive, mode="r:*") as tar:
        for member in tar.getmembers():
            if member.name == MANIFEST:
                continue
            if not member.isfile() or not _safe_member(member.name):
                raise BackupError(f"Entrée refusée dans la sauvegarde : {member.name}.")
            target = staging / member.name
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            assert source is not None
            digest = hashlib.sha256()
            with target.open("wb") as handle:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    handle.write(chunk)
            if digest.hexdigest() != expected.get(member.name):
                raise BackupError(
                    f"Sauvegarde {archive.name} modifiée pendant la restauration "
                    f"({member.name}). Rien n'a été restauré."
                )
            os.utime(target, (member.mtime, member.mtime))
    for folder in (FILES_PREFIX, ARCHIVE_PREFIX):
        (staging / folder).mkdir(parents=True, exist_ok=True)
