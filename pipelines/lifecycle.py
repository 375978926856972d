"""What a publication means for the dataset's lifecycle: events for reusers and producers,
the switch to an announced structure, and the old structure fed in parallel.

Called by the publish stage after the new release is switched in; the governance job
(`pipelines/governance.py`) applies the rules that depend on time alone.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from catalog.store import Publications
from core import changes, clock
from core.records import ChangeNotice, Dataset, NewRelease, SubmissionRecord
from core.structure import Structure
from core.urls import download
from pipelines import old_structure
from pipelines.publish import CheckedData, PublishOutcome, publish

LOGGER = logging.getLogger(__name__)


def after_publication(
    store: Publications,
    before: Dataset | None,
    kept: Structure | None,
    structure: Structure,
    result: PublishOutcome,
    submission_id: str,
) -> None:
    release = result.release
    slug = release.dataset
    if before is not None and before.status == "depublie":
        store.record_event(
            slug,
            "republication",
            "Jeu de données republié après une nouvelle soumission",
            {"version": release.id},
            f"republication:{submission_id}",
        )
    if result.status == "confirmee":
        _complete_interrupted_publication(store, release)
        return
    if result.status != "publiee":
        return
    if before is None:
        store.record_event(
            slug, "publication", "Première publication", _release_details(release), _key(release)
        )
    elif kept is None and before.status == "depublie":
        _retire_at_republication(store, before, structure, release.structure_version)
    elif kept is None:
        _record_switch(store, slug, release.structure_version, release.id)
    else:
        change = changes.classify(kept, structure)
        if change.compatible and not change.breaking:
            store.record_event(
                slug,
                "changement-compatible",
                "Changement de structure compatible : " + " ; ".join(change.compatible),
                {**_release_details(release), "changements": change.compatible},
                _key(release),
            )
        else:
            _record_new_version(store, release)


def _key(release: Any) -> str:
    return f"publication:{release.id}"


def _release_details(release: Any) -> dict[str, Any]:
    return {
        "version": release.id,
        "structure": release.structure_version,
        "lignes": release.row_count,
    }


def _retire_at_republication(
    store: Publications, before: Dataset, structure: Structure, new_version: int
) -> None:
    """A depublished dataset republished in a new structure: its old structure, served to
    nobody, is retired at once (410 with a link to the new one), as a notice would end."""
    moment = clock.now()
    store.add_notice(
        ChangeNotice(
            id=uuid.uuid4().hex,
            dataset=before.slug,
            from_version=new_version - 1,
            structure=structure.to_dict(),
            effective_date=moment.date(),
            description="Republication dans une nouvelle structure après dépublication.",
            mapping=None,
            announced_at=moment,
            switched_at=moment,
            retired_at=moment,
        )
    )


def _complete_interrupted_publication(store: Publications, release: Any) -> None:
    """A run killed between the switch and its events left this release served, but its
    notice not applied and nobody told: the rerun, which only confirms it, does both."""
    slug, version = release.dataset, release.structure_version
    if version > 1 and changes.active_notice(store.notices(slug), version - 1):
        _record_switch(store, slug, version, release.id)
        return
    told = any(e.details.get("version") == release.id for e in store.events(slug, limit=200))
    if not told:
        _record_new_version(store, release)


def _record_new_version(store: Publications, release: Any) -> None:
    store.record_event(
        release.dataset,
        "publication",
        "Nouvelle version publiée",
        _release_details(release),
        _key(release),
    )


def _record_switch(store: Publications, slug: str, new_version: int, release_id: str) -> None:
    notice = changes.active_notice(store.notices(slug), new_version - 1)
    if notice is None:
        return
    moment = clock.now()
    store.mark_notice(notice.id, switched_at=moment)
    switched = replace(notice, switched_at=moment)
    retirement = changes.retirement_date(switched)
    fed = bool(notice.mapping)
    store.record_event(
        slug,
        "bascule",
        f"La structure v{new_version} est en vigueur ; la v{notice.from_version} reste diffusée "
        f"en parallèle au moins jusqu'au {retirement:%d/%m/%Y}",
        {
            "version": release_id,
            "avis": notice.id,
            "ancienne_structure": notice.from_version,
            "nouvelle_structure": new_version,
            "retrait_au_plus_tot": retirement.isoformat() if retirement else None,
            "ancienne_structure_alimentee": fed,
            "description": notice.description,
            "successeur": download("", slug, "csv", new_version),
        },
        f"bascule:{notice.id}",
    )


def feed_old_structure(
    store: Publications,
    slug: str,
    version: int,
    checked: CheckedData,
    draft: NewRelease,
    record: SubmissionRecord,
) -> None:
    """Publish the old structure's release derived through the notice's mapping, while the
    old structure is served in parallel. Never blocks the new structure's publication."""
    notice = changes.parallel_notice(store.notices(slug), version - 1)
    if notice is None or not notice.mapping:
        return
    old_record = next(v for v in store.structure_versions(slug) if v.version == version - 1)
    old = Structure.from_dict(old_record.structure)
    try:
        table, geometry = old_structure.derive_old(
            checked.typed, checked.geometry, notice.mapping, old
        )
        table = _cast_like_previous(store, slug, version - 1, table)
        derived_draft = replace(
            draft,
            structure=old.to_dict(),
            structure_version=version - 1,
            anonymisation=None,
        )
        derived_record = replace(record, id=f"{record.id}-v{version - 1}")
        publish(
            store,
            CheckedData(table, geometry, old.crs, old.geometry_columns),
            derived_draft,
            derived_record,
        )
    except Exception as error:  # the new structure is published: never undo or block it
        LOGGER.warning("Structure v%s de %s non alimentée : %s", version - 1, slug, error)


def _cast_like_previous(store: Publications, slug: str, version: int, table: pa.Table) -> pa.Table:
    """The derived columns in the Arrow types of the old structure's last release."""
    previous = store.current_release(slug, version)
    path = store.release_path(previous, "parquet") if previous else None
    if path is None:
        return table
    schema = pq.read_schema(path)
    geometry = (
        json.loads(schema.metadata[b"geo"])["primary_column"]
        if b"geo" in (schema.metadata or {})
        else None
    )
    columns = []
    for name in table.column_names:
        kind = schema.field(name).type if name != geometry and name in schema.names else None
        column = table.column(name)
        if kind is not None and pa.types.is_timestamp(kind) and pa.types.is_date(column.type):
            kind = pa.date32()  # map releases store dates as timestamps; the writer does it
        columns.append(pc.cast(column, kind) if kind is not None else column)
    return pa.table(dict(zip(table.column_names, columns, strict=True)))
