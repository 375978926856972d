"""What a deposit over HTTP is checked for at once, before anything is written (issue #19).

The upload API (`catalog.web.routes.uploads`) answers `422` with every problem found here,
in one French report, and writes nothing; only a deposit that passes goes to the inbox
(`202`). The checks are the pipeline's own, from the modules both share, so the upload's
report and the pipeline's say the same words:

- metadata.yaml: readable YAML, the keys, the required fields, every value
  (`core.metadata_checks`), with « vouliez-vous dire … ? » for a misspelt key;
- the licence (`core.licences`), with the same kind of suggestion;
- the dataset's identifier (metadata.yaml's, or the form's `jeu`), and the schema it
  declares: attached and readable (`core.structure`), or a national schema the platform's
  registry holds (`core.national_registry`);
- the data file's head, for a CSV: text, encoding, delimiter, column names
  (`core.csv_head`, `core.column_names`), and the header against the declared schema's
  fields (`core.structure.label_problems`).

What needs the whole file (every row against the schema, geometries, personal data) or
the catalog's history (a change of structure) is left to the pipeline, which reports it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.csv_head import SNIFF_BYTES, refuse_empty, sample_utf8, sniff
from core.inbox import SCHEMA_NAME as SCHEMA_FILE  # where an attached schema is saved
from core.input_formats import FORMAT_BY_SUFFIX
from core.licences import check_licence
from core.metadata_checks import CheckedMetadata, check_metadata, load_metadata
from core.national_registry import checked_descriptor
from core.problems import Problem, Report, SubmissionRejected
from core.structure import label_problems, read_json_schema

HEAD_BYTES = SNIFF_BYTES  # what the read stage sniffs too


@dataclass(frozen=True)
class Received:
    """What a deposit request brought, before any of it is written."""

    commune: str
    metadata: bytes
    schema: bytes | None  # an attached Table Schema (JSON)
    data_name: str
    data_head: bytes  # the data file's first HEAD_BYTES bytes (all of it when smaller)
    data_size: int
    form_identifier: str | None  # the form's `jeu`


@dataclass
class Verdict:
    report: Report
    identifier: str | None  # the dataset's identifier, when it is a valid one


def check_deposit(received: Received, licenses_dir: Path) -> Verdict:
    """Every check a deposit can have at once; `report.valid` when it may be queued."""
    report = Report()
    checked = _metadata(received, report)
    identifier = checked.record.get("identifier") if checked else None
    if checked is not None and "licence" in checked.values:
        _add_refusal(report, lambda: check_licence(checked.values["licence"], licenses_dir))
    schema = _declared_schema(received, checked, report)
    _add_refusal(report, lambda: _data_head(received, schema, report))
    return Verdict(report, identifier if report.valid else None)


def _metadata(received: Received, report: Report) -> CheckedMetadata | None:
    try:
        document = load_metadata(received.metadata, "metadata.yaml")
    except SubmissionRejected as error:
        report.extend(error.report)
        return None
    form = (received.form_identifier or "").strip() or None
    declared = document.get("identifiant", document.get("identifier"))
    if declared is not None and form and str(declared).strip() != form:
        report.add(
            _problem(
                "metadonnees",
                "identifiant-contradictoire",
                f"Identifiant du jeu contradictoire : « {form} » dans le formulaire, "
                f"« {declared} » dans metadata.yaml.",
                column="identifiant",
            )
        )
    if declared is None and form is None:
        report.add(
            _problem(
                "metadonnees",
                "champ-obligatoire",
                "Identifiant du jeu absent : clé « identifiant » de metadata.yaml ou champ "
                "« jeu » du formulaire (ex. equipements-sportifs).",
                column="identifiant",
            )
        )
    # The form's identifier stands for the drop folder's name, as in the pipeline.
    checked = check_metadata(document, received.commune, form if declared is None else None)
    report.extend(checked.report)
    return checked


def _declared_schema(
    received: Received, checked: CheckedMetadata | None, report: Report
) -> dict[str, Any] | None:
    """The Table Schema the metadata declare, attached or national, when it is readable."""
    declared = checked.record.get("schema") if checked else None
    if isinstance(declared, dict):  # a national schema, its version pinned (issue #15)
        if received.schema is not None:
            report.add(
                _problem(
                    "structure",
                    "schema-en-double",
                    "metadata.yaml désigne un schéma national (« schema: {nom: …} ») : "
                    "ne joignez pas de fichier de schéma.",
                    column="schema",
                )
            )
        return _refusal_or(report, lambda: checked_descriptor(declared))
    if received.schema is not None:
        if checked is not None and declared != SCHEMA_FILE:
            report.add(
                _problem(
                    "structure",
                    "schema-non-declare",
                    f"Le schéma joint est enregistré sous « {SCHEMA_FILE} » : indiquez "
                    f"« schema: {SCHEMA_FILE} » dans metadata.yaml.",
                    column="schema",
                )
            )
        return _refusal_or(report, lambda: read_json_schema(received.schema or b"", SCHEMA_FILE))
    if declared:
        report.add(
            _problem(
                "structure",
                "schema-absent",
                f"metadata.yaml déclare le schéma « {declared} » : joignez-le (champ « schema » "
                "du formulaire).",
                column="schema",
            )
        )
    return None


def _data_head(received: Received, schema: dict[str, Any] | None, report: Report) -> None:
    """A CSV's head as the read stage reads it, and its header against the schema."""
    refuse_empty(received.data_size, received.data_name)
    suffix = Path(received.data_name).suffix.lower()
    if FORMAT_BY_SUFFIX.get(suffix) != "csv":
        return  # read whole by the pipeline (archives, workbooks, geographic formats)
    complete = received.data_size <= len(received.data_head)
    utf8, line, byte = sample_utf8(received.data_head, complete)
    head = sniff(received.data_head, utf8, received.data_name, line, byte)
    if schema is not None:
        for problem in label_problems(head.header, schema):
            report.add(problem)


def _problem(stage: str, rule: str, message: str, **where: Any) -> Problem:
    return Problem(stage=stage, rule=rule, message=message, **where)


def _add_refusal(report: Report, check: Callable[[], Any]) -> None:
    try:
        check()
    except SubmissionRejected as error:
        report.extend(error.report)


def _refusal_or(report: Report, check: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    try:
        return check()
    except SubmissionRejected as error:
        report.extend(error.report)
        return None
