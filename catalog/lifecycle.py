"""What reusers are told about a dataset's lifecycle: pending structure changes, old
structures served in parallel or retired, depublication; and the HTTP headers of a
structure that is going away (RFC 9745 `Deprecation`, RFC 8594 `Sunset`, RFC 8288
`Link; rel="successor-version"`)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from email.utils import format_datetime
from typing import Any

from catalog.store import Publications
from core import changes, clock
from core.dates import dates_of
from core.lifecycle import label, told_to_reusers
from core.records import ChangeNotice, Dataset, Event
from core.structure import Structure
from core.urls import dataset_api, download
from core.wording import french_date


def lifecycle_of(store: Publications, dataset: Dataset) -> dict[str, Any]:
    notices = store.notices(dataset.slug)
    pending = changes.active_notice(notices, dataset.current_version)
    deadline = dates_of(dataset).depublication  # None: no periodic commitment (core.dates)
    return {
        "avis_en_cours": _pending(store, dataset.slug, pending) if pending else None,
        "diffusion_parallele": [
            _parallel(dataset.slug, n) for n in notices if n.switched_at and not n.retired_at
        ],
        "structures_retirees": [
            {
                "structure": n.from_version,
                "retiree_le": n.retired_at.date().isoformat(),
                "remplacee_par": n.to_version,
            }
            for n in notices
            if n.retired_at
        ],
        "depublication_prevue_le": deadline.isoformat() if deadline else None,
        "changements": [
            {
                "date": e.at.isoformat(),
                "type": e.kind,
                "libelle": label(e.kind),
                "titre": e.title,
            }
            for e in store.events(dataset.slug, limit=20)
            if told_to_reusers(e.kind)  # a failing source is the commune's and the team's
        ],
    }


def _pending(store: Publications, slug: str, notice: ChangeNotice) -> dict[str, Any]:
    kept = next(v for v in store.structure_versions(slug) if v.version == notice.from_version)
    change = changes.classify(
        Structure.from_dict(kept.structure), Structure.from_dict(notice.structure)
    )
    return {
        "date_effet": notice.effective_date.isoformat(),
        "annonce_le": notice.announced_at.date().isoformat(),
        "description": notice.description,
        "changements": change.breaking + change.compatible,  # French, one line each
        "nouvelle_structure": notice.to_version,
        "schema": notice.structure["schema"],
        "ancienne_structure_alimentee": bool(notice.mapping),
        "url_future": download("", slug, "csv", notice.to_version),
    }


def _parallel(slug: str, notice: ChangeNotice) -> dict[str, Any]:
    retirement = changes.retirement_date(notice)
    return {
        "structure": notice.from_version,
        "remplacee_par": notice.to_version,
        "depuis": notice.switched_at.date().isoformat() if notice.switched_at else None,
        "retrait_au_plus_tot": retirement.isoformat() if retirement else None,
        "alimentee": bool(notice.mapping),
        "url": download("", slug, "csv", notice.from_version),
    }


def retired(store: Publications, slug: str, version: int) -> ChangeNotice | None:
    """The notice that retired structure `version`, if it is retired."""
    return next(
        (n for n in store.notices(slug) if n.from_version == version and n.retired_at), None
    )


def depublication(store: Publications, slug: str) -> Event | None:
    return next((e for e in store.events(slug) if e.kind == "depublication"), None)


def depublication_message(store: Publications, dataset: Dataset) -> str:
    """Why and since when a dataset is no longer served (French), for every 410."""
    event = depublication(store, dataset.slug)
    since = date.fromisoformat(event.details["depuis"]) if event else clock.today()
    last = dates_of(dataset).data_updated
    return (
        f"Le jeu de données « {dataset.metadata['title']} » a été dépublié le "
        f"{french_date(since)} : ses données n'ont pas été mises à jour depuis le "
        f"{french_date(last)}, et un jeu de données sans mise à jour pendant 3 ans n'est plus "
        "diffusé (annexe "
        "data.grandlyon.com, §3.2). Ses fichiers et son historique sont archivés ; une "
        "nouvelle soumission de la commune le republiera."
    )


def version_headers(
    store: Publications, dataset: Dataset, served_version: int, suffix: str
) -> dict[str, str]:
    """Headers for a response of structure `served_version` (`suffix`: the path after the
    version, e.g. "download/csv"): set when that structure is going away."""
    notices = store.notices(dataset.slug)
    if served_version == dataset.current_version:
        notice = changes.active_notice(notices, served_version)
        if notice is None:
            return {}
        deprecated = _midnight(notice.effective_date)
        # at the earliest: the switch on the effective date, then 30 days in parallel
        switch = max(notice.effective_date, clock.today())  # no switch before new data
        sunset_date = _midnight(switch + timedelta(days=changes.PARALLEL_DAYS))
    else:
        notice = changes.parallel_notice(notices, served_version)
        if notice is None or notice.switched_at is None:
            return {}
        deprecated = notice.switched_at.replace(tzinfo=UTC)
        retirement = changes.retirement_date(notice)
        sunset_date = _midnight(retirement) if retirement else deprecated
    successor = f"{dataset_api('', dataset.slug, notice.to_version)}/{suffix}"
    return {
        "Deprecation": f"@{int(deprecated.timestamp())}",
        "Sunset": format_datetime(sunset_date, usegmt=True),
        "Link": f'<{successor}>; rel="successor-version"',
    }


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
