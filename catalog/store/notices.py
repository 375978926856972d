"""A producer's change notice, recorded with its event in the store (annex
data.grandlyon.com, §3.2): from the notices API, the command line and the pipeline alike.
The rules it checks are `core.changes`'."""

from __future__ import annotations

from datetime import date
from typing import Any

from catalog.store.concerns import Publications
from core import changes
from core.problems import reject
from core.records import ChangeNotice
from core.structure import Structure
from core.urls import download


def announce_change(
    store: Publications,
    slug: str,
    schema: dict[str, Any],
    effective_date: date,
    description: str,
    mapping: dict[str, Any] | None = None,
    geometry_type: str | None = None,
    crs: int | None = None,
    source_format: str | None = None,
    endpoint: str | None = None,
) -> ChangeNotice:
    """Record a producer's notice of a breaking change; refused (French) when it cannot
    apply: unknown dataset, a notice already pending, a date less than 30 days away…"""
    dataset = store.get_dataset(slug)
    if dataset is None or dataset.status != "publie":
        raise reject("avis", "jeu-inconnu", f"Jeu de données « {slug} » introuvable ou dépublié.")
    notices = store.notices(slug)
    pending = changes.active_notice(notices, dataset.current_version)
    if pending is not None:
        raise reject(
            "avis",
            "avis-deja-en-cours",
            f"Un avis de changement est déjà en cours pour ce jeu de données (effet le "
            f"{pending.effective_date:%d/%m/%Y}).",
        )
    kept_record = next(
        v for v in store.structure_versions(slug) if v.version == dataset.current_version
    )
    notice = changes.new_notice(
        slug,
        Structure.from_dict(kept_record.structure),
        dataset.current_version,
        schema,
        effective_date,
        description,
        mapping,
        geometry_type=geometry_type,
        crs=crs,
        source_format=source_format,
        endpoint=endpoint,
    )
    store.add_notice(notice)
    kept = Structure.from_dict(kept_record.structure)
    store.record_event(
        slug,
        "avis-changement",
        f"Changement de structure annoncé : la structure v{notice.to_version} s'appliquera "
        f"à partir du {effective_date:%d/%m/%Y}",
        {
            "avis": notice.id,
            "date_effet": effective_date.isoformat(),
            "description": notice.description,
            "changements": changes.classify(kept, Structure.from_dict(notice.structure)).breaking,
            "ancienne_structure_alimentee": bool(mapping),
            "successeur": download("", slug, "csv", notice.to_version),
        },
        f"avis:{notice.id}",
    )
    return notice
