"""A dataset's structure: its Frictionless Table Schema plus, for maps, geometry type,
CRS and where its positions are. The words both wings share about it: the structure
record kept with every version, the schema types the platform reads, and the check of a
Table Schema descriptor (a producer's file, a national schema, a change notice's)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from core.problems import Problem, Report, SubmissionRejected, reject

STAGE = "structure"

SUPPORTED_TYPES = {
    "string",
    "integer",
    "number",
    "boolean",
    "date",
    "datetime",
    "time",
    "year",
    "yearmonth",
    "duration",
    "geopoint",
    "geojson",
    "array",
    "object",
    "any",
}

FIELDS_MATCH = ("exact", "equal", "subset", "superset", "partial")  # Table Schema v2
DEFAULT_FIELDS_MATCH = "equal"

@dataclass
class Structure:
    """What reusers rely on: columns and their rules, and the geometry of map data."""

    schema: dict[str, Any]
    geometry_type: str | None = None
    crs: int | None = None
    published_schema: dict[str, Any] | None = None  # after anonymisation, when it differs
    source_format: str | None = None  # the submitted file's format (csv, xlsx, geojson…)
    endpoint: str | None = None  # where the platform pulls it from (issue #7), if it does
    geometry_columns: dict[str, str] | None = None  # a table's positions: {x, y} or {shape}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Structure:
        return cls(**record)

    @property
    def field_names(self) -> list[str]:
        return [f["name"] for f in self.schema.get("fields", [])]


def normalised_schema(schema: dict[str, Any]) -> str:
    """Canonical text of a schema, ignoring titles and descriptions."""
    ignored = {"title", "description", "example"}
    fields = [{k: v for k, v in f.items() if k not in ignored} for f in schema.get("fields", [])]
    core = {k: v for k, v in schema.items() if k not in ignored | {"fields"}}
    return json.dumps({"fields": fields, **core}, sort_keys=True, ensure_ascii=False)


# json's words for the usual mistakes, in French.
JSON_REASONS = {
    "Expecting value": "valeur attendue",
    "Expecting ',' delimiter": "virgule attendue",
    "Expecting ':' delimiter": "« : » attendu",
    "Expecting property name enclosed in double quotes": (
        "nom de propriété entre guillemets doubles attendu"
    ),
    "Unterminated string starting at": "chaîne jamais refermée",
    "Extra data": "contenu en trop après l'objet JSON",
    "Invalid control character at": "caractère de contrôle dans une chaîne",
}


def read_json_schema(content: bytes, name: str) -> dict[str, Any]:
    """A Table Schema file in JSON, read and checked (`check_schema_descriptor`); what is
    wrong with it said in French, with its line and column."""
    try:
        descriptor = json.loads(content.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise reject(
            STAGE,
            "schema-illisible",
            f"Le schéma {name} est illisible : il n'est pas encodé en UTF-8 (octet "
            f"0x{content[error.start]:02X}).",
        ) from error
    except json.JSONDecodeError as error:
        reason = JSON_REASONS.get(error.msg, error.msg)
        if error.doc[: error.pos].rstrip().endswith(","):
            reason = "virgule en trop après le dernier élément"
        raise reject(
            STAGE,
            "schema-illisible",
            f"Le schéma {name} est illisible : JSON invalide ligne {error.lineno}, colonne "
            f"{error.colno} ({reason}).",
            row=error.lineno,
        ) from error
    return check_schema_descriptor(descriptor, name)


def check_schema_descriptor(descriptor: Any, name: str) -> dict[str, Any]:
    if not isinstance(descriptor, dict):
        raise reject(STAGE, "schema-invalide", f"Le schéma {name} doit être un objet Table Schema.")
    import frictionless  # loaded when a schema is checked, not by every user of Structure

    try:
        frictionless.Schema.from_descriptor(descriptor)
    except frictionless.FrictionlessException as error:
        raise reject(
            STAGE,
            "schema-invalide",
            f"Le schéma {name} n'est pas un Table Schema valide : {error.error.message}",
        ) from error
    report = Report()
    match = descriptor.get("fieldsMatch", "equal")
    if match not in FIELDS_MATCH:
        report.add(
            Problem(
                STAGE,
                "schema-invalide",
                f"« fieldsMatch: {match} » inconnu dans le schéma {name}. Valeurs possibles : "
                f"{', '.join(FIELDS_MATCH)}.",
            )
        )
    for spec in descriptor.get("fields", []):
        if spec.get("type", "string") not in SUPPORTED_TYPES:
            report.add(
                Problem(
                    STAGE,
                    "type-non-supporte",
                    f"Type « {spec.get('type')} » non "
                    f"supporté. Types acceptés : {', '.join(sorted(SUPPORTED_TYPES))}.",
                    column=spec.get("name"),
                )
            )
    if not report.valid:
        raise SubmissionRejected(report)
    return descriptor


def label_problems(present: list[str], schema: dict[str, Any]) -> list[Problem]:
    """The file's columns (its header) against the schema's, as its `fieldsMatch` says
    (Table Schema v2): the structure check of the pipeline, and the upload API's at once.

    Our default is "equal" (same names, any order), not v2's "exact": a commune's
    spreadsheet may move a column, and reusers rely on the names, never on the positions."""
    report = Report()
    expected = [f["name"] for f in schema.get("fields", [])]
    match = schema.get("fieldsMatch", DEFAULT_FIELDS_MATCH)
    if match in ("exact", "equal", "subset"):
        for name in expected:
            if name not in present:
                report.add(_missing_column(name))
    if match in ("exact", "equal", "superset"):
        for name in present:
            if name not in expected:
                report.add(_extra_column(name, expected))
    if match == "partial" and not set(expected) & set(present):
        report.add(
            Problem(
                STAGE,
                "aucune-colonne-du-schema",
                "Aucune colonne du fichier n'est prévue par le schéma (colonnes prévues : "
                f"{', '.join(expected)}).",
                row=1,
            )
        )
    if match == "exact" and sorted(present) == sorted(expected) and present != expected:
        _check_order(present, expected, report)
    return report.problems


def _missing_column(name: str) -> Problem:
    return Problem(
        STAGE,
        "colonne-manquante",
        f"La colonne « {name} » prévue par le schéma est absente du fichier.",
        row=1,
        column=name,
    )


def _extra_column(name: str, expected: list[str]) -> Problem:
    return Problem(
        STAGE,
        "colonne-en-trop",
        f"La colonne « {name} » n'est pas prévue par le schéma (colonnes prévues : "
        f"{', '.join(expected)}).",
        row=1,
        column=name,
    )


def _check_order(present: list[str], expected: list[str], report: Report) -> None:
    for position, (found, wanted) in enumerate(zip(present, expected, strict=True), start=1):
        if found != wanted:
            report.add(
                Problem(
                    STAGE,
                    "colonne-mal-placee",
                    f"La colonne n° {position} est « {found} » ; le schéma, qui impose l'ordre "
                    f"des colonnes (fieldsMatch: exact), y attend « {wanted} ».",
                    row=1,
                    column=found,
                )
            )
