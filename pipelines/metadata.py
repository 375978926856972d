"""Check metadata: parse a producer's YAML metadata file into a DCAT-shaped record.

Producers write French keys (English ones are accepted too). The checks themselves live in
`core.metadata_checks`, shared with the upload API, which answers them at once: the same
rules and words whichever way a submission comes. This stage reads the file and builds the
record. The record's field names follow DCAT / DCAT-AP terms, listed in `DCAT_TERMS`, so
the DCAT export is a view of the record rather than a translation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from core.metadata_checks import (  # noqa: F401  (the stage's words, read from here too)
    ACCEPTED_CRS,
    KEY_ALIASES,
    REQUIRED_FIELDS,
    STAGE,
    Contact,
    accepted_crs_list,
    check_fields,
    check_metadata,
    crs_code,
    mapping_or_rejection,
    unreadable,
)
from core.problems import SubmissionRejected, reject
from core.safe_yaml import UnsafeYaml, read_producer_yaml
from core.sources import check_source  # noqa: F401
from core.vocabularies import Frequency, find_frequency

# Internal field -> DCAT term it carries.
DCAT_TERMS = {
    "identifier": "dct:identifier",
    "title": "dct:title",
    "description": "dct:description",
    "publisher": "dct:publisher",
    "licence": "dct:license",
    "accrual_periodicity": "dct:accrualPeriodicity",
    "delivery": "dct:provenance",
    "modified": "dct:modified",
    "keywords": "dcat:keyword",
    "themes": "dcat:theme",
    "contact": "dcat:contactPoint",
    "crs": "dct:conformsTo",
    "spatial": "dct:spatial",
    "language": "dct:language",
}


@dataclass
class Metadata:
    identifier: str
    title: str
    description: str
    publisher: str
    licence: Any  # as written by the producer; resolved by the licence stage
    accrual_periodicity: str  # EU frequency code
    delivery: str
    modified: date
    keywords: list[str]
    themes: list[str]
    contact: Contact
    crs: int | None = None
    spatial: str | None = None
    # A Table Schema file, relative to the metadata file; or the national schema followed
    # (issue #15): {nom, version, titre, url, url_schema}, its version pinned at this stage.
    schema: str | dict[str, str] | None = None
    language: str = "fr"
    access: str = "public"  # public | restreint (signed-in users) | agents (public agents)
    personal: dict[str, dict[str, Any]] = field(default_factory=dict)  # column -> treatment
    k_anonymity: dict[str, Any] | None = None
    source: dict[str, str] | None = None  # declared source for pull delivery (issue #7)
    geometry_columns: dict[str, str] | None = None  # {x, y} or {geometrie}: a table's positions

    @property
    def frequency(self) -> Frequency:
        frequency = find_frequency(self.accrual_periodicity)
        assert frequency is not None
        return frequency

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["modified"] = self.modified.isoformat()
        for optional in ("source", "geometry_columns"):
            if record[optional] is None:
                del record[optional]  # records of datasets without them stay as they were
        return record

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Metadata:
        values = dict(record)
        values["modified"] = date.fromisoformat(values["modified"])
        values["contact"] = Contact(**values["contact"])
        return cls(**values)

    def to_dcat(self) -> dict[str, Any]:
        """The record keyed by DCAT terms."""
        record = self.to_dict()
        return {term: record[name] for name, term in DCAT_TERMS.items()}


def read_metadata_file(path: Path, producer: str, default_identifier: str) -> Metadata:
    """Parse and check a metadata file; raise SubmissionRejected listing every problem."""
    try:
        document = read_producer_yaml(path)
    except FileNotFoundError as error:
        raise reject(
            STAGE, "fichier-absent", f"Fichier de métadonnées introuvable : {path.name}"
        ) from error
    except (UnsafeYaml, yaml.YAMLError, UnicodeDecodeError) as error:
        raise unreadable(error, path.name) from error
    return parse_metadata(mapping_or_rejection(document), producer, default_identifier)


def partial_metadata(path: Path) -> dict[str, Any]:
    """The fields of a refused metadata file that are valid, under their internal names
    (and the licence as written): the later stages' checks can still run on the data, so
    that one report tells the producer everything."""
    try:
        document = read_producer_yaml(path)
    except (OSError, ValueError, yaml.YAMLError):  # UnsafeYaml and UnicodeDecodeError included
        return {}
    if not isinstance(document, dict):
        return {}
    checked = check_fields(document)
    return {**checked.record, "licence": checked.values.get("licence")}


def parse_metadata(document: dict[str, Any], producer: str, default_identifier: str) -> Metadata:
    checked = check_metadata(document, producer, default_identifier)
    if not checked.report.valid:
        raise SubmissionRejected(checked.report)
    values, record = checked.values, checked.record
    return Metadata(
        identifier=record["identifier"],
        title=record["title"],
        description=record["description"],
        publisher=producer,
        licence=values["licence"],
        accrual_periodicity=record["accrual_periodicity"],
        delivery=record["delivery"],
        modified=record["modified"],
        keywords=record["keywords"],
        themes=record.get("themes", []),
        contact=record["contact"],
        crs=record.get("crs"),
        spatial=record.get("spatial"),
        schema=record.get("schema"),
        language=record.get("language", "fr"),
        access=record.get("access", "public"),
        personal=record.get("personal", {}),
        k_anonymity=record.get("k_anonymity"),
        source=checked.source,
        geometry_columns=record.get("geometry_columns"),
    )
