"""National schemas (issue #15): a local registry of schema.data.gouv.fr's Table Schemas.

A producer may write `schema: {nom: etalab/schema-irve-statique, version: 2.3.1}` in its
metadata.yaml instead of vendoring the schema file. The schema is then read from the
registry, a folder the operator refreshes with `opendata schemas rafraichir`:

    <registry>/index.json                          what the catalogue listed, and when
    <registry>/<owner>/<schema>/<version>/schema.json

Submissions only read the folder, through `core.national_registry` (which the upload API
uses too): they work offline. A refresh downloads the catalogue
(`https://schema.data.gouv.fr/schemas.json`) and every version of every `tableschema`
entry into a new snapshot beside the registry, then switches the registry (a symbolic
link) to it in one rename: a refresh that fails leaves the previous registry in place.
Every request goes to the catalogue's own host only, redirects included, with size and
time limits.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from core.national_registry import (  # noqa: F401  (the registry's readers, used here too)
    INDEX,
    REFRESH_COMMAND,
    SCHEMA_FILE,
    NationalSchema,
    NationalSchemaError,
    close_names,
    listing,
    read_index,
    registry_dir,
    resolve,
    version_order,
)
from core.netguard import GuardedSession, Policy, outside_allowed_hosts
from core.settings import NATIONAL_SCHEMAS_CATALOGUE

TABLESCHEMA = "tableschema"
MAX_CATALOGUE_BYTES = 8 * 2**20  # the real catalogue: ~125 kB
MAX_SCHEMA_BYTES = 4 * 2**20  # the largest real Table Schema: ~430 kB
MAX_TOTAL_BYTES = 512 * 2**20
MAX_VERSIONS = 5_000
MAX_REDIRECTS = 3
TIMEOUT = (10, 60)  # connect, read (seconds)
CHUNK_BYTES = 64 * 1024
USER_AGENT = "PlateformeDonneesOuvertes-MetropoleLyon/1.0 (schemas nationaux)"
# One segment of a schema's name (owner, schema) or a version: a safe folder name.
SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RefreshError(Exception):
    """A refresh that did not happen (the registry is unchanged); message in French."""


class _Skipped(Exception):
    """One schema version left out of a refresh (the others go on)."""


@dataclass
class Refreshed:
    """What a refresh put in the registry, and the versions it had to leave out."""

    registry: Path
    schemas: int = 0
    versions: int = 0
    warnings: list[str] = field(default_factory=list)


# --- refreshing it from the catalogue --------------------------------------------------------


def refresh(
    catalogue_url: str = NATIONAL_SCHEMAS_CATALOGUE, registry: Path | None = None
) -> Refreshed:
    """Download the catalogue and its Table Schemas into a new snapshot of the registry.

    Raises RefreshError, leaving the registry as it was, if the catalogue cannot be had
    or read, or the host fails; a version that cannot be had (404, not a Table Schema,
    too large, elsewhere than on the catalogue's host) is left out with a warning, its
    previous copy kept if the registry had one."""
    registry = registry or registry_dir()
    fetcher = _Fetcher(catalogue_url)
    registry.parent.mkdir(parents=True, exist_ok=True)
    with _refresh_lock(registry):
        catalogue = _parse_catalogue(fetcher.get(catalogue_url, MAX_CATALOGUE_BYTES))
        previous = _previous_index(registry)
        snapshot = Path(tempfile.mkdtemp(prefix=f".{registry.name}-", dir=registry.parent))
        try:
            snapshot.chmod(0o755)  # read by the catalog and the workers, not only by its maker
            result = Refreshed(registry)
            index = _fill(snapshot, catalogue, fetcher, registry, previous, result)
            index["catalogue"] = catalogue_url
            index["rafraichi_le"] = datetime.now(UTC).isoformat(timespec="seconds")
            _write_json(snapshot / INDEX, index)
            _switch(registry, snapshot)
        except BaseException:
            shutil.rmtree(snapshot, ignore_errors=True)
            raise
    return result


def _parse_catalogue(content: bytes) -> list[dict[str, Any]]:
    try:
        catalogue = json.loads(content)
    except ValueError as error:
        raise RefreshError(
            f"Le catalogue des schémas n'est pas un JSON lisible : {error}"
        ) from error
    entries = catalogue.get("schemas") if isinstance(catalogue, dict) else None
    if not isinstance(entries, list):
        raise RefreshError(
            "Le catalogue des schémas n'a pas la forme attendue (objet JSON avec une liste "
            "« schemas », comme https://schema.data.gouv.fr/schemas.json)."
        )
    return [e for e in entries if isinstance(e, dict) and e.get("schema_type") == TABLESCHEMA]


def _previous_index(registry: Path) -> dict[str, Any]:
    try:
        return read_index(registry)
    except NationalSchemaError:
        return {"schemas": {}}  # unreadable: nothing to carry over, the refresh rebuilds it


def _fill(
    snapshot: Path,
    entries: list[dict[str, Any]],
    fetcher: _Fetcher,
    registry: Path,
    previous: dict[str, Any],
    result: Refreshed,
) -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    total = count = 0
    for entry in entries:
        name = str(entry.get("name", ""))
        if not _safe_name(name):
            result.warnings.append(f"Schéma au nom inattendu « {name[:100]} » : ignoré.")
            continue
        versions: dict[str, dict[str, str]] = {}
        for version, url in _versions_of(entry, fetcher.catalogue_url):
            count += 1
            if count > MAX_VERSIONS:
                raise RefreshError(f"Le catalogue liste plus de {MAX_VERSIONS} versions.")
            target = snapshot / name / version / SCHEMA_FILE
            try:
                total += _store_version(fetcher, url, target)
            except _Skipped as skipped:
                kept = _carry_over(registry, previous, name, version, target)
                result.warnings.append(
                    f"{name} {version} : {skipped}"
                    + (" ; copie précédente conservée." if kept else " ; version ignorée.")
                )
                if not kept:
                    continue
                url = kept
            if total > MAX_TOTAL_BYTES:
                raise RefreshError(f"Les schémas du catalogue dépassent {MAX_TOTAL_BYTES} octets.")
            versions[version] = {"page": fetcher.page_of(name, version), "url_schema": url}
        if versions:
            ordered = sorted(versions, key=version_order)
            schemas[name] = {
                "titre": str(entry.get("title") or name),
                "description": str(entry.get("description") or ""),
                "versions": {v: versions[v] for v in ordered},
                "derniere": ordered[-1],
            }
    result.schemas = len(schemas)
    result.versions = sum(len(s["versions"]) for s in schemas.values())
    return {"schemas": schemas}


def _versions_of(entry: dict[str, Any], catalogue_url: str) -> Iterator[tuple[str, str]]:
    """(version, absolute schema URL) of each safe version an entry lists."""
    for item in entry.get("versions") or []:
        if not isinstance(item, dict):
            continue
        version = str(item.get("version_name", "")).strip()
        url = item.get("schema_url")
        if SEGMENT.fullmatch(version) and version not in {".", ".."} and isinstance(url, str):
            yield version, urljoin(catalogue_url, url)


def _safe_name(name: str) -> bool:
    parts = name.split("/")
    return 1 <= len(parts) <= 3 and all(
        SEGMENT.fullmatch(p) and p not in {".", ".."} for p in parts
    )


def _store_version(fetcher: _Fetcher, url: str, target: Path) -> int:
    content = fetcher.get(url, MAX_SCHEMA_BYTES, skip_on_content_errors=True)
    try:
        descriptor = json.loads(content)
    except ValueError as error:
        raise _Skipped("le fichier n'est pas un JSON lisible") from error
    fields = descriptor.get("fields") if isinstance(descriptor, dict) else None
    if not isinstance(fields, list) or not all(
        isinstance(f, dict) and isinstance(f.get("name"), str) for f in fields
    ):
        raise _Skipped("le fichier n'est pas un Table Schema (liste « fields » absente)")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return len(content)


def _carry_over(
    registry: Path, previous: dict[str, Any], name: str, version: str, target: Path
) -> str | None:
    """Copy the previous registry's copy of a version; the URL it came from, if any."""
    known = previous["schemas"].get(name, {}).get("versions", {}).get(version)
    source = registry / name / version / SCHEMA_FILE
    if not known or not source.is_file():
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return str(known.get("url_schema", ""))


def _write_json(path: Path, content: dict[str, Any]) -> None:
    path.write_text(json.dumps(content, ensure_ascii=False, indent=1), encoding="utf-8")


@contextmanager
def _refresh_lock(registry: Path) -> Iterator[None]:
    """One refresh at a time (each removes the snapshots no longer in use)."""
    with open(registry.parent / f".{registry.name}.verrou", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _switch(registry: Path, snapshot: Path) -> None:
    """Point the registry at `snapshot` in one rename; keep the previous snapshot (a
    submission may be reading it) and remove older ones."""
    previous = registry.resolve() if registry.is_symlink() else None
    link = registry.parent / f".{registry.name}-lien-{uuid.uuid4().hex[:8]}"
    os.symlink(snapshot.name, link)
    if registry.exists() and not registry.is_symlink():
        # A plain folder (made by hand, or restored): set aside, then replaced by the link.
        registry.rename(registry.parent / f".{registry.name}-ancien-{uuid.uuid4().hex[:8]}")
    os.replace(link, registry)
    in_use = {snapshot.resolve(), previous}
    for old in registry.parent.glob(f".{registry.name}-*"):
        if old.is_dir() and not old.is_symlink() and old.resolve() not in in_use:
            shutil.rmtree(old, ignore_errors=True)


class _Fetcher:
    """GET on the catalogue's host only (redirects followed by hand, each one checked),
    with time and size limits."""

    def __init__(self, catalogue_url: str) -> None:
        host = urlsplit(catalogue_url).hostname or ""
        if outside_allowed_hosts(catalogue_url, host):
            raise RefreshError(
                f"Adresse de catalogue « {catalogue_url[:200]} » invalide : une adresse "
                "http:// ou https:// complète est attendue."
            )
        self.catalogue_url = catalogue_url
        self.host = host
        # The egress guard: the catalogue's host only (the operator chose it), each address
        # checked and connected to as checked; no proxy or .netrc from the environment.
        self.session = GuardedSession(lambda: Policy(allowed=host))
        self.session.headers["User-Agent"] = USER_AGENT

    def page_of(self, name: str, version: str) -> str:
        """The version's page on the catalogue's site (schema.data.gouv.fr/<name>/<v>.html)."""
        parts = urlsplit(self.catalogue_url)
        return f"{parts.scheme}://{parts.netloc}/{name}/{version}.html"

    def get(self, url: str, limit: int, skip_on_content_errors: bool = False) -> bytes:
        """The body of `url`; RefreshError on a transport failure, _Skipped (when asked)
        for a missing, refused or oversized document."""
        refuse = _Skipped if skip_on_content_errors else RefreshError
        for _ in range(MAX_REDIRECTS + 1):
            if outside_allowed_hosts(url, self.host):
                raise refuse(
                    f"adresse {url[:200]} hors de l'hôte du catalogue ({self.host}) : refusée"
                )
            try:
                response = self.session.get(
                    url, stream=True, timeout=TIMEOUT, allow_redirects=False
                )
            except requests.RequestException as error:
                raise RefreshError(f"{url[:200]} : requête impossible ({error}).") from error
            with response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("location", ""))
                    continue
                if response.status_code in (404, 410):
                    raise refuse(f"{url[:200]} introuvable ({response.status_code})")
                if response.status_code >= 400:
                    raise RefreshError(
                        f"{url[:200]} : le serveur a répondu {response.status_code}."
                    )
                return self._read(response, url, limit, refuse)
        raise refuse(f"plus de {MAX_REDIRECTS} redirections depuis {url[:200]}")

    @staticmethod
    def _read(response: requests.Response, url: str, limit: int, refuse: type[Exception]) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise refuse(f"{url[:200]} : plus de {limit} octets")
        chunks, size = [], 0
        try:
            for chunk in response.iter_content(CHUNK_BYTES):
                size += len(chunk)
                if size > limit:
                    raise refuse(f"{url[:200]} : plus de {limit} octets")
                chunks.append(chunk)
        except requests.RequestException as error:
            raise RefreshError(f"{url[:200]} : réponse interrompue ({error}).") from error
        return b"".join(chunks)
