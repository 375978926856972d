"""A submission's journey through the stages, in process or one Airflow task per stage.

Each `stage_*` function takes and returns plain, JSON-serialisable values (or
files in the submission's work folder) so that an Airflow task can run it on any
worker; `run_submission` chains the same functions in one process for the
command line.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import clock
from core.inbox import (
    REPORT_JSON,
    REPORT_TEXT,
    REPORTS,
    data_files,
    metadata_file,
    new_submission_id,
    upload_marker,
)
from core.licences import Licence, check_licence
from core.problems import Repair, Report, SubmissionRejected, reject
from core.producers import load_producers
from core.records import Dataset, NewRelease, SubmissionRecord
from core.settings import Settings
from core.structure import Structure, normalised_schema
from pipelines.metadata import Metadata, partial_metadata, read_metadata_file

if TYPE_CHECKING:
    from catalog.store import CatalogStore, Publications
    from pipelines.coordinates import GeometryColumns
    from pipelines.publish import CheckedData
    from pipelines.read.table import SourceTable

# The stages import their engines (Arrow, GeoPandas, the detectors, the store's formats)
# when they run: `opendata soumettre` starts, and a refusal at the metadata stage ends,
# without loading what reading and publishing a file need (issue #20).
ANONYMISATION_STAGE = "anonymisation"  # pipelines.anonymise.STAGE

@dataclass(frozen=True)
class Submission:
    id: str
    producer: str
    data_path: str
    metadata_path: str
    channel: str  # ligne-de-commande | depot
    received_at: str

    @classmethod
    def new(cls, producer: str, data: Path, metadata: Path, channel: str) -> Submission:
        return cls(
            id=new_submission_id(),
            producer=producer,
            data_path=str(data.resolve()),
            metadata_path=str(metadata.resolve()),
            channel=channel,
            received_at=clock.now().isoformat(),
        )

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Outcome:
    submission: str
    status: str  # publiee | confirmee | refusee
    dataset: str | None = None
    release: str | None = None
    structure_version: int | None = None
    report: Report = field(default_factory=Report)
    personal: bool = False  # the raw files hold personal data (treated, or refused for it)

    def summary(self) -> str:
        if self.status == "publiee":
            return (
                f"Jeu de données « {self.dataset} » publié (structure v{self.structure_version},"
                f" version {self.release})."
            )
        if self.status == "confirmee":
            return (
                f"Contenu identique à la version diffusée de « {self.dataset} » : aucune "
                f"nouvelle version. {SAME_CONTENT_DATE}"
            )
        return self.report.to_text()


# core.dates: the date of the data's last update is the one the metadata declare; the same
# content deposited again with the same date is not an update.
SAME_CONTENT_DATE = (
    "La date de mise à jour des données reste celle de vos métadonnées (« date_mise_a_jour ») : "
    "si vous confirmez qu'elles sont toujours exactes, indiquez-y la date du jour."
)


def dataset_slug(producer: str, identifier: str) -> str:
    return f"{producer}-{identifier}"


def open_settings_store(settings: Settings) -> CatalogStore:
    from catalog.store import open_store

    return open_store(settings.store_url, settings.files_dir)


# --- stages ----------------------------------------------------------------------------------


def stage_metadata(submission: Submission, settings: Settings) -> dict[str, Any]:
    producers = load_producers(settings.producers_file)
    if submission.producer not in producers:
        raise reject(
            "metadonnees",
            "producteur-inconnu",
            f"Commune « {submission.producer} » inconnue. Communes partenaires : "
            f"{', '.join(sorted(producers))}.",
        )
    metadata_path = Path(submission.metadata_path)
    default_identifier = metadata_path.parent.name
    metadata = read_metadata_file(metadata_path, submission.producer, default_identifier)
    return metadata.to_dict()


def stage_licence(metadata: dict[str, Any], settings: Settings) -> dict[str, Any]:
    return check_licence(metadata["licence"], settings.licenses_dir).to_dict()


def stage_read(submission: Submission, metadata: dict[str, Any]) -> SourceTable:
    from pipelines.read.stage import read_source

    return read_source(Path(submission.data_path), metadata.get("crs"))


def stage_structure(
    submission: Submission, metadata: dict[str, Any], source: SourceTable, store: Publications
) -> tuple[CheckedData, Structure, int]:
    """Validate against the dataset's kept structure (or the declared/inferred one at first).

    A compatible change (a column added…) updates the structure in place; a breaking one
    needs a change notice in force and makes the next structure version."""
    from pipelines.anonymise import mask_personal_values, personal_problems
    from pipelines.coordinates import locate_geometry
    from pipelines.publish import CheckedData
    from pipelines.schema import infer_schema, structure_of
    from pipelines.validate import validate

    slug = dataset_slug(submission.producer, metadata["identifier"])
    declared = _declared_schema(submission, metadata)
    existing = store.get_dataset(slug)
    kept = _kept_structure(store, slug, existing.current_version) if existing else None
    source, positions = locate_geometry(
        source,
        declared or (kept.schema if kept else None),
        metadata.get("geometry_columns"),
        metadata.get("crs"),
        Path(submission.data_path).name,
    )
    geometry_columns = positions.to_dict() if positions else None
    if existing is None:
        structure = structure_of(source, declared or infer_schema(source), geometry_columns)
        structure = dataclasses.replace(structure, endpoint=_endpoint(metadata))
        version = 1
    else:
        if existing.producer != submission.producer:
            raise reject(
                "structure",
                "jeu-d-un-autre-producteur",
                f"Le jeu de données « {slug} » appartient à une autre commune.",
            )
        assert kept is not None  # a published dataset always has its current structure
        structure, version = _incoming_structure(
            store, existing, kept, declared, source, _endpoint(metadata), geometry_columns
        )
    result = validate(source, structure.schema)
    if not result.report.valid:
        report = mask_personal_values(result.report, source.table, metadata)
        # One pass: the personal data this file would be refused for, with its structure.
        for problem in personal_problems(source.table, _own_geometry(source, positions), metadata):
            report.add(problem)
        raise SubmissionRejected(report)
    checked = CheckedData(
        result.typed, source.geometry, source.crs, geometry_columns, tuple(result.report.repairs)
    )
    return checked, structure, version


def _endpoint(metadata: dict[str, Any]) -> str | None:
    """Where a pulled dataset comes from (a change of it follows the 30-day rule)."""
    if not metadata.get("source"):
        return None
    from core.sources import Source, source_endpoint

    return source_endpoint(Source.from_dict(metadata["source"]))


def _declared_schema(submission: Submission, metadata: dict[str, Any]) -> dict[str, Any] | None:
    declared = metadata.get("schema")
    if not declared:
        return None
    from core.national_registry import checked_descriptor
    from pipelines.schema import load_schema_file

    if isinstance(declared, dict):
        # A national schema (issue #15), its version pinned by the metadata stage.
        return checked_descriptor(declared)
    return load_schema_file(Path(submission.metadata_path).parent / declared)


def _incoming_structure(
    store: Publications,
    dataset: Dataset,
    kept: Structure,
    declared: dict[str, Any] | None,
    source: SourceTable,
    endpoint: str | None,
    geometry_columns: dict[str, str] | None,
) -> tuple[Structure, int]:
    from core import changes
    from pipelines.schema import structure_of

    version = dataset.current_version
    notice = changes.active_notice(store.notices(dataset.slug), version)
    if declared is not None:
        schema = declared
    elif (
        notice is not None
        and clock.today() >= notice.effective_date
        and _columns(source) == _names(notice.structure["schema"])
    ):
        schema = notice.structure["schema"]
    else:
        schema = _contract_for(kept.schema, source)
    incoming = structure_of(source, schema, geometry_columns)
    incoming = dataclasses.replace(incoming, endpoint=endpoint)
    change = changes.classify(kept, incoming)
    if change.kind == "aucun":
        return dataclasses.replace(
            kept,
            source_format=source.source_format,
            endpoint=endpoint,
            geometry_columns=geometry_columns,
        ), version
    if change.kind == "compatible":
        return incoming, version
    if dataset.status == "depublie":
        # Nobody is served a depublished dataset: it comes back in its new structure at once
        # (the old one is retired on publication, see lifecycle.after_publication).
        return incoming, version + 1
    if notice is None or clock.today() < notice.effective_date:
        raise changes.refuse_breaking_change(change, notice)
    announced = Structure.from_dict(notice.structure)
    mismatch = changes.classify(announced, incoming)
    if mismatch.breaking:
        raise reject(
            "structure",
            "structure-differente-de-l-avis",
            "Les données ne suivent pas la structure annoncée par l'avis de changement du "
            f"{notice.announced_at:%d/%m/%Y} : {' ; '.join(mismatch.breaking)}.",
        )
    return incoming, version + 1


def _columns(source: SourceTable) -> set[str]:
    return set(source.table.column_names)


def _names(schema: dict[str, Any]) -> set[str]:
    return {f["name"] for f in schema.get("fields", [])}


def _contract_for(kept: dict[str, Any], source: SourceTable) -> dict[str, Any]:
    """The published contract for the columns the file keeps, inferred types for new ones:
    a kept column's bad values are then reported cell by cell, not as a new type."""
    from pipelines.schema import infer_schema

    kept_fields = {f["name"]: f for f in kept.get("fields", [])}
    inferred = {f["name"]: f for f in infer_schema(source)["fields"]}
    fields = [kept_fields.get(name) or inferred[name] for name in source.table.column_names]
    return {**{k: v for k, v in kept.items() if k != "fields"}, "fields": fields}


def stage_anonymise(
    submission: Submission,
    metadata: dict[str, Any],
    checked: CheckedData,
    structure: Structure,
    settings: Settings,
) -> tuple[CheckedData, Structure, dict[str, Any]]:
    """Treat personal columns as declared; the report goes with the release."""
    from pipelines.anonymise import anonymise, pseudonym_key, treatments_of, with_published_schema

    producer = load_producers(settings.producers_file).get(submission.producer)
    key = pseudonym_key(submission.producer, settings.secrets_file)
    treated, report = anonymise(checked, metadata, key, producer.centre if producer else None)
    published = with_published_schema(structure.schema, treatments_of(metadata))
    structure = dataclasses.replace(
        structure, published_schema=published if published != structure.schema else None
    )
    if checked.geometry is not None and treated.geometry is None:
        # The treatment removed the positions the map was drawn from: a table again.
        structure = dataclasses.replace(structure, geometry_type=None, crs=None)
    return treated, structure, {"rapport": report.to_dict(), "public": report.public_summary()}


def stage_publish(
    submission: Submission,
    metadata: dict[str, Any],
    licence: dict[str, Any],
    checked: CheckedData,
    structure: Structure,
    version: int,
    store: Publications,
    anonymisation: dict[str, Any],
    settings: Settings,
) -> Outcome:
    from pipelines import lifecycle
    from pipelines.anonymise import holds_personal_data
    from pipelines.publish import publish

    slug = dataset_slug(submission.producer, metadata["identifier"])
    _refuse_published_structure_change(store, slug, version, structure)
    producers = load_producers(settings.producers_file)
    producer = producers.get(submission.producer)
    metadata = {
        **metadata,
        "publisher_name": producer.name if producer else submission.producer,
        "crs": checked.crs,  # the file's own CRS when the metadata did not declare it
        "anonymisation": anonymisation["public"],
    }
    draft = NewRelease(
        dataset=slug,
        producer=submission.producer,
        content_hash="",
        row_count=0,
        distributions=[],
        metadata=metadata,
        licence=licence,
        structure=structure.to_dict(),
        structure_version=version,
        anonymisation=anonymisation["rapport"],
    )
    before = store.get_dataset(slug)
    kept = _kept_structure(store, slug, version)
    done = Report(rows_checked=checked.typed.num_rows, repairs=list(checked.repairs))
    record = _record(submission, slug, done)
    result = publish(store, checked, draft, record)
    lifecycle.after_publication(store, before, kept, structure, result, submission.id)
    if result.status == "publiee":
        lifecycle.feed_old_structure(store, slug, version, checked, draft, record)
    return Outcome(
        submission=submission.id,
        status=result.status,
        dataset=slug,
        release=result.release.id,
        structure_version=version,
        report=done,
        personal=holds_personal_data(anonymisation["rapport"]),
    )


def _kept_structure(store: Publications, slug: str, version: int) -> Structure | None:
    kept = next((v for v in store.structure_versions(slug) if v.version == version), None)
    return Structure.from_dict(kept.structure) if kept else None


def _refuse_published_structure_change(
    store: Publications, slug: str, version: int, structure: Structure
) -> None:
    """A change of treatment (a column now kept, dropped or pseudonymised) changes what
    reusers receive: the same 30-day rule as any change of structure applies."""
    kept = next((v for v in store.structure_versions(slug) if v.version == version), None)
    if kept is None:
        return
    before = Structure.from_dict(kept.structure)
    if _treatment_changed(
        before.published_schema or before.schema, structure.published_schema or structure.schema
    ):
        raise reject(
            "anonymisation",
            "changement-de-structure-publiee",
            "Les traitements déclarés changent les colonnes publiées (colonne ajoutée, "
            "supprimée ou transformée autrement). C'est un changement de structure pour les "
            "réutilisateurs : il doit être annoncé au moins 30 jours à l'avance (annexe "
            "data.grandlyon.com, §3.2). Gardez les traitements de la version diffusée.",
        )


def _treatment_changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """A published column that is no longer published, or published otherwise (type,
    treatment note…); added columns and constraints are compatible changes."""
    old = {f["name"]: f for f in json.loads(normalised_schema(before))["fields"]}
    new = {f["name"]: f for f in json.loads(normalised_schema(after))["fields"]}
    if old.keys() - new.keys():
        return True
    ignored = {"constraints", "format"}
    return any(
        {k: v for k, v in old[n].items() if k not in ignored}
        != {k: v for k, v in new[n].items() if k not in ignored}
        for n in old
    )


def record_rejection(
    submission: Submission,
    error: SubmissionRejected,
    store: Publications,
    metadata: dict[str, Any] | None = None,
) -> Outcome:
    slug = dataset_slug(submission.producer, metadata["identifier"]) if metadata else None
    store.record_rejection(_record(submission, slug, error.report))
    personal = any(p.stage == ANONYMISATION_STAGE for p in error.report.problems)
    return Outcome(
        submission=submission.id,
        status="refusee",
        dataset=slug,
        report=error.report,
        personal=personal,
    )


def _record(submission: Submission, slug: str | None, report: Report) -> SubmissionRecord:
    return SubmissionRecord(
        id=submission.id,
        producer=submission.producer,
        dataset=slug,
        channel=submission.channel,
        received_at=datetime.fromisoformat(submission.received_at),
        status="",
        release=None,
        report=report.to_dict(),
    )


# --- whole chain, in process -----------------------------------------------------------------


def run_submission(submission: Submission, settings: Settings, store: Publications) -> Outcome:
    metadata: dict[str, Any] | None = None
    try:
        metadata = stage_metadata(submission, settings)
        licence = stage_licence(metadata, settings)
        source = stage_read(submission, metadata)
        checked, structure, version = stage_structure(submission, metadata, source, store)
        # the file's text, no longer needed once typed: let it go before the later stages
        # (issue #20: 10M rows peaked at 5.2 Go with it kept)
        del source
        checked, structure, anonymisation = stage_anonymise(
            submission, metadata, checked, structure, settings
        )
        return stage_publish(
            submission,
            metadata,
            licence,
            checked,
            structure,
            version,
            store,
            anonymisation,
            settings,
        )
    except SubmissionRejected as error:
        report = with_later_findings(submission, error.report, metadata, settings)
        return record_rejection(submission, SubmissionRejected(report), store, metadata)


EARLY_STAGES = frozenset({"metadonnees", "licence"})


def with_later_findings(
    submission: Submission,
    report: Report,
    metadata: dict[str, Any] | None,
    settings: Settings,
) -> Report:
    """A refusal at the metadata or licence stage, completed with what the later checks find
    in the data file (reading, structure, positions, personal data) as far as the metadata
    allow: the producer learns everything in one report, not one stage per attempt."""
    stages = {p.stage for p in report.problems}
    if not stages or not stages <= EARLY_STAGES or not submission.data_path:
        return report
    known = metadata or partial_metadata(Path(submission.metadata_path))
    whole = Report(rows_checked=report.rows_checked)
    whole.extend(report)
    if "licence" not in stages and metadata is None and known.get("licence"):
        _add_refusal(whole, lambda: check_licence(known["licence"], settings.licenses_dir))
    _add_refusal(whole, lambda: _data_findings(submission, known, whole))
    return whole


def _data_findings(submission: Submission, metadata: dict[str, Any], whole: Report) -> None:
    from pipelines.anonymise import mask_personal_values, personal_problems
    from pipelines.coordinates import locate_geometry
    from pipelines.read.stage import read_source
    from pipelines.schema import infer_schema
    from pipelines.validate import validate

    source = read_source(Path(submission.data_path), metadata.get("crs"))
    schema = _declared_schema(submission, metadata) or infer_schema(source)
    source, positions = locate_geometry(
        source,
        schema,
        metadata.get("geometry_columns"),
        metadata.get("crs"),
        Path(submission.data_path).name,
    )
    whole.rows_checked = source.table.num_rows
    whole.extend(mask_personal_values(validate(source, schema).report, source.table, metadata))
    for problem in personal_problems(source.table, _own_geometry(source, positions), metadata):
        whole.add(problem)


def _own_geometry(source: SourceTable, positions: GeometryColumns | None) -> bool:
    """A geometry of the file's own; positions read from columns are judged in the columns
    (as the anonymisation stage judges them)."""
    return source.geometry is not None and positions is None


def _add_refusal(report: Report, check: Callable[[], Any]) -> None:
    try:
        check()
    except SubmissionRejected as error:
        report.extend(error.report)


# --- hand-over between Airflow tasks ---------------------------------------------------------


def work_folder(settings: Settings, submission: Submission) -> Path:
    return settings.work_dir / submission.id


def save_checked(folder: Path, checked: CheckedData, structure: Structure, version: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    table = checked.typed
    if checked.geometry is not None:
        table = table.append_column(
            "__geometry", pa.array(checked.geometry.to_wkb().tolist(), type=pa.binary())
        )
    pq.write_table(table, folder / "checked.parquet")
    info = {
        "structure": structure.to_dict(),
        "version": version,
        "crs": checked.crs,
        "geometry_columns": checked.geometry_columns,
        "repairs": [asdict(r) for r in checked.repairs],
    }
    (folder / "structure.json").write_text(json.dumps(info))


def load_checked(folder: Path) -> tuple[CheckedData, Structure, int]:
    import geopandas as gpd
    import pyarrow.parquet as pq

    from pipelines.publish import CheckedData

    table = pq.read_table(folder / "checked.parquet")
    info = json.loads((folder / "structure.json").read_text())
    geometry = None
    if "__geometry" in table.column_names:
        wkb = table.column("__geometry").to_pylist()
        geometry = gpd.GeoSeries.from_wkb(wkb, crs=f"EPSG:{info['crs']}")
        table = table.drop_columns(["__geometry"])
    repairs = tuple(Repair(**r) for r in info.get("repairs", []))
    checked = CheckedData(table, geometry, info["crs"], info.get("geometry_columns"), repairs)
    return checked, Structure.from_dict(info["structure"]), info["version"]


# --- drop folders ----------------------------------------------------------------------------


def ready_submissions(inbox: Path, producer: str) -> list[Submission]:
    """Folders inbox/<producer>/<dataset>/ holding a metadata file and one data file
    (`core.inbox`)."""
    submissions = []
    for folder in sorted((inbox / producer).glob("*/")):
        metadata = metadata_file(folder)
        data = data_files(folder)
        if metadata is not None and len(data) == 1:
            submissions.append(_dropped(producer, data[0], metadata))
    return submissions


def _dropped(producer: str, data: Path, metadata: Path) -> Submission:
    """A drop folder's submission; one filled by the upload API keeps the upload's id."""
    submission = Submission.new(producer, data, metadata, "depot")
    upload = upload_marker(metadata.parent)
    if upload is None:
        return submission
    return dataclasses.replace(
        submission, id=upload["id"], channel="api", received_at=upload["recu_le"]
    )


def archive_submission(
    submission: Submission,
    outcome: Outcome,
    settings: Settings,
    store: CatalogStore | None = None,
) -> Path:
    """Move a processed drop folder's files to the archive and leave the report in the inbox;
    the agent who deposited it over the upload API is mailed the outcome, with its report."""
    from pipelines import notify, retention

    folder = Path(submission.metadata_path).parent
    archive = settings.archive_dir / submission.producer / folder.name / submission.id
    archive.mkdir(parents=True, exist_ok=True)
    for path in list(folder.iterdir()):
        if path.name not in REPORTS:
            shutil.move(str(path), archive / path.name)
    write_report_files(folder, outcome)
    write_report_files(archive, outcome)
    if outcome.personal:
        retention.mark_personal(archive, settings.raw_personal_retention_days)
    if upload_marker(archive) is not None:  # deposited over the upload API
        notify.tell_depositor(store or open_settings_store(settings), archive)
    return archive


def write_report_files(folder: Path, outcome: Outcome) -> None:
    header = f"Soumission {outcome.submission} : {outcome.status}\n\n"
    (folder / REPORT_TEXT).write_text(header + outcome.summary() + "\n", encoding="utf-8")
    payload = {
        "soumission": outcome.submission,
        "statut": outcome.status,
        "jeu_de_donnees": outcome.dataset,
        "version": outcome.release,
        "rapport": outcome.report.to_dict(),
    }
    (folder / REPORT_JSON).write_text(
        json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8"
    )


def metadata_of(record: dict[str, Any]) -> Metadata:
    return Metadata.from_dict(record)


def licence_of(record: dict[str, Any]) -> Licence:
    return Licence.from_dict(record)
