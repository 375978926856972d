"""The registry of national schemas, read offline (issue #15): which Table Schemas of
schema.data.gouv.fr the platform knows, and the descriptor of one version of one.

A producer may write `schema: {nom: etalab/schema-irve-statique, version: 2.3.1}` in its
metadata.yaml. The metadata check (`core.metadata_checks`), run by the pipeline and by the
upload API alike, resolves it here; the registry is filled by `pipelines.national_schemas`
(`opendata schemas rafraichir`), the only part that reaches the network:

    <registry>/index.json                          what the catalogue listed, and when
    <registry>/<owner>/<schema>/<version>/schema.json
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.problems import reject
from core.settings import load_settings
from core.structure import check_schema_descriptor

INDEX = "index.json"
SCHEMA_FILE = "schema.json"
REFRESH_COMMAND = "opendata schemas rafraichir"


class NationalSchemaError(ValueError):
    """A reference the registry cannot satisfy; the message, in French, says why."""


@dataclass(frozen=True)
class NationalSchema:
    name: str  # e.g. etalab/schema-irve-statique
    version: str
    title: str
    page: str  # its page on schema.data.gouv.fr
    schema_url: str  # where its schema.json was downloaded from
    descriptor: dict[str, Any]

    def reference(self) -> dict[str, str]:
        """What a dataset's metadata records of the national schema it follows."""
        return {
            "nom": self.name,
            "version": self.version,
            "titre": self.title,
            "url": self.page,
            "url_schema": self.schema_url,
        }


def registry_dir() -> Path:
    return load_settings().national_schemas_dir


def read_index(registry: Path) -> dict[str, Any]:
    """The registry's index; an empty one if the registry was never filled."""
    try:
        index = json.loads((registry / INDEX).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"schemas": {}}
    except (OSError, ValueError) as error:
        raise NationalSchemaError(
            f"Le registre des schémas nationaux est illisible ({error}) : l'équipe data doit "
            f"le reconstruire avec « {REFRESH_COMMAND} »."
        ) from error
    return index if isinstance(index.get("schemas"), dict) else {"schemas": {}}


def resolve(name: str, version: str | None = None, registry: Path | None = None) -> NationalSchema:
    """The national schema `name` at `version` (its latest version when omitted)."""
    registry = registry or registry_dir()
    schemas = read_index(registry)["schemas"]
    if not schemas:
        raise NationalSchemaError(
            f"Le schéma national « {name} » ne peut pas être lu : le registre des schémas "
            f"nationaux de la plateforme est vide. L'équipe data doit le remplir avec "
            f"« {REFRESH_COMMAND} »."
        )
    key = _schema_key(schemas, str(name).strip())
    entry = schemas[key]
    chosen = _version_key(key, entry, version)
    path = registry / key / chosen / SCHEMA_FILE
    try:
        descriptor = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise NationalSchemaError(
            f"Le schéma national « {key} » version {chosen} manque dans le registre ou y est "
            f"illisible : l'équipe data doit rafraîchir le registre (« {REFRESH_COMMAND} »)."
        ) from error
    details = entry["versions"][chosen]
    return NationalSchema(
        name=key,
        version=chosen,
        title=entry.get("titre") or key,
        page=details["page"],
        schema_url=details["url_schema"],
        descriptor=descriptor,
    )


def listing(registry: Path | None = None) -> list[dict[str, Any]]:
    """The registry's schemas, by name: title, versions (oldest first) and the latest."""
    schemas = read_index(registry or registry_dir())["schemas"]
    return [
        {
            "nom": name,
            "titre": entry.get("titre", ""),
            "versions": list(entry["versions"]),
            "derniere": entry["derniere"],
        }
        for name, entry in sorted(schemas.items(), key=lambda item: item[0].lower())
    ]


def _schema_key(schemas: dict[str, Any], name: str) -> str:
    if name in schemas:
        return name
    folded = {key.lower(): key for key in schemas}
    if name.lower() in folded:
        return folded[name.lower()]
    close = close_names(list(schemas), name)
    hint = (
        f"Noms proches : {', '.join(close)}."
        if close
        else "Aucun nom proche : vérifiez le nom complet (« propriétaire/schéma ») sur "
        "https://schema.data.gouv.fr."
    )
    raise NationalSchemaError(
        f"Schéma national « {name} » inconnu du registre des schémas nationaux "
        f"(schémas Table Schema de schema.data.gouv.fr). {hint}"
    )


def close_names(names: list[str], name: str, limit: int = 5) -> list[str]:
    """Names like `name`: spelt alike, or whose schema part matches (owner forgotten)."""
    wanted = name.lower()
    tail = wanted.rsplit("/", 1)[-1]
    by_lower = {n.lower(): n for n in names}
    alike = difflib.get_close_matches(wanted, list(by_lower), n=limit, cutoff=0.6)
    tails = [low for low in by_lower if tail and tail in low.rsplit("/", 1)[-1]]
    ordered = list(dict.fromkeys([*alike, *sorted(tails)]))
    return [by_lower[low] for low in ordered[:limit]]


def _version_key(name: str, entry: dict[str, Any], version: str | None) -> str:
    versions = entry["versions"]
    if version is None or not str(version).strip():
        return entry["derniere"]
    text = str(version).strip()
    for candidate in (text, text.lstrip("vV")):
        if candidate in versions:
            return candidate
    raise NationalSchemaError(
        f"Version « {text} » inconnue pour le schéma national « {name} ». Versions "
        f"disponibles : {', '.join(versions)} (la plus récente : {entry['derniere']}, "
        "prise si vous n'indiquez pas de version)."
    )


def version_order(version: str) -> tuple[Any, ...]:
    """Sort key of a version name: numerically, a pre-release (`-rc1`) before its release."""
    core, _, pre = version.lstrip("vV").partition("-")
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in core.split("."))
    return (parts, 0 if pre else 1, pre)


def checked_descriptor(reference: dict[str, str], registry: Path | None = None) -> dict[str, Any]:
    """The Table Schema of the national schema a metadata record follows (its version
    pinned by the metadata check), checked; SubmissionRejected when the registry lacks it."""
    try:
        national = resolve(reference["nom"], reference.get("version"), registry)
    except NationalSchemaError as error:
        raise reject("structure", "schema-national-introuvable", str(error)) from error
    label = f"national « {national.name} » version {national.version}"
    return check_schema_descriptor(national.descriptor, label)
