"""The daily governance job: the lifecycle rules that depend on time alone.

- An old structure diffused in parallel is retired once its notice is 30 days old and
  the parallel diffusion has lasted 30 days: its URLs then answer 410 Gone.
- A dataset not updated for 3 years is depublished (410 Gone, DCAT "withdrawn"); its
  producer is warned at the first missed update, 90 and 30 days before. Files and
  history are kept. A new submission (or a confirmation) republishes it.

What counts as an update: a new release, or a re-submission of identical content, which
confirms the data are current (`last_confirmed_at`). Editing the metadata's date alone
does not count.

When the store keeps the data in PostGIS (`catalog/store/postgis.py`), what leaves the services
leaves the database too: a retired structure version's table, a depublished dataset's
tables and view (files and history stay: the archive; republishing reloads them).

Every step is idempotent (events are keyed): running the job twice in a day, or after a
failure, tells each thing once.

It also sweeps what an interrupted publication leaves in the file store (a staged folder,
a release folder whose switch never committed): never served, removed once a day old.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from catalog.store import CatalogStore
from core import changes, clock
from core.records import Dataset
from core.rules import WARNING_DAYS, depublication_date, freshness
from pipelines import retention

LEFTOVER_AGE = timedelta(days=1)  # older than any publication in progress


@dataclass
class GovernanceReport:
    retired: list[str] = field(default_factory=list)  # "slug v1"
    late: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)  # "slug (90 j)"
    depublished: list[str] = field(default_factory=list)
    swept: list[str] = field(default_factory=list)  # leftover folders, relative to files
    purged: list[str] = field(default_factory=list)  # raw personal submissions, past retention

    def to_text(self) -> str:
        lines = [
            f"Structures retirées : {', '.join(self.retired) or 'aucune'}",
            f"Jeux en retard signalés : {', '.join(self.late) or 'aucun'}",
            f"Avertissements de dépublication : {', '.join(self.warned) or 'aucun'}",
            f"Jeux dépubliés : {', '.join(self.depublished) or 'aucun'}",
            f"Dossiers abandonnés supprimés : {len(self.swept)}",
            f"Dépôts bruts à données personnelles supprimés (fin de conservation) : "
            f"{len(self.purged)}",
        ]
        return "\n".join(lines)


def run(
    store: CatalogStore, moment: datetime | None = None, archive_dir: Path | None = None
) -> GovernanceReport:
    """Apply the rules; with `archive_dir`, also delete raw personal submissions whose
    retention has run out (pipelines.retention)."""
    moment = moment or clock.now()
    report = GovernanceReport()
    for dataset in store.list_datasets():
        report.retired += retire_structures(store, dataset, moment)
        if dataset.status == "publie":
            _apply_staleness(store, dataset, moment.date(), report)
    report.swept = sweep_leftovers(store)
    if archive_dir is not None:
        report.purged = retention.purge_expired(archive_dir, moment)
    return report


def sweep_leftovers(store: CatalogStore) -> list[str]:
    """Remove the folders interrupted publications left behind, a day old or more (by the
    files' real age: the publication's own clock may be replayed)."""
    root = store.files_dir
    if not root.is_dir():
        return []
    oldest = time.time() - LEFTOVER_AGE.total_seconds()
    candidates = list((root / ".staging").glob("*"))
    for folder in root.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        known = {release.id for release in store.releases(folder.name)}
        candidates += [child for child in folder.iterdir() if child.name not in known]
    swept = []
    for path in candidates:
        if path.is_dir() and path.stat().st_mtime < oldest:
            shutil.rmtree(path, ignore_errors=True)
            swept.append(str(path.relative_to(root)))
    return sorted(swept)


def retire_structures(store: CatalogStore, dataset: Dataset, moment: datetime) -> list[str]:
    retired = []
    for notice in store.notices(dataset.slug):
        if not changes.due_for_retirement(notice, moment):
            continue
        # the data first: a failure in between is retried by the next run (both idempotent)
        if store.spatial is not None:
            store.spatial.drop_version_data(dataset.slug, notice.from_version)
        store.mark_notice(notice.id, retired_at=moment)
        store.record_event(
            dataset.slug,
            "retrait-structure",
            f"La structure v{notice.from_version} n'est plus diffusée : utilisez la "
            f"v{notice.to_version}",
            {
                "ancienne_structure": notice.from_version,
                "nouvelle_structure": notice.to_version,
                "successeur": f"/api/datasets/{dataset.slug}/v{notice.to_version}/download/csv",
            },
            f"retrait:{notice.id}",
        )
        retired.append(f"{dataset.slug} v{notice.from_version}")
    return retired


def _apply_staleness(
    store: CatalogStore, dataset: Dataset, today: date, report: GovernanceReport
) -> None:
    slug = dataset.slug
    deadline = depublication_date(dataset.last_confirmed_at.date())
    last = dataset.last_confirmed_at.date()
    fresh = freshness(dataset, today)
    if fresh["statut"] == "en-retard":
        event = store.record_event(
            slug,
            "retard",
            f"Mise à jour attendue le {date.fromisoformat(fresh['prochaine']):%d/%m/%Y} non reçue",
            {"attendue_le": fresh["prochaine"], "depublication_le": deadline.isoformat()},
            f"retard:{slug}:{fresh['prochaine']}",
        )
        if event:
            report.late.append(slug)
    for days in WARNING_DAYS:
        if deadline - timedelta(days=days) <= today < deadline:
            event = store.record_event(
                slug,
                "avertissement-depublication",
                f"Sans mise à jour, dépublication le {deadline:%d/%m/%Y}",
                {
                    "jours_restants": (deadline - today).days,
                    "depublication_le": deadline.isoformat(),
                    "derniere_mise_a_jour": last.isoformat(),
                },
                f"avertissement:{slug}:{deadline}:{days}",
            )
            if event:
                report.warned.append(f"{slug} ({days} j)")
    if today >= deadline:
        _depublish_once_warned(store, dataset, deadline, last, today, report)


def _depublish_once_warned(
    store: CatalogStore,
    dataset: Dataset,
    deadline: date,
    last: date,
    today: date,
    report: GovernanceReport,
) -> None:
    """Depublish, unless the producer was not warned at least 30 days ago (the job was
    down, or the rule arrived late): then warn now and depublish 30 days later."""
    slug = dataset.slug
    warned = [
        e.at.date()
        for e in store.events(slug, limit=500)
        if e.kind == "avertissement-depublication"
        and e.details.get("depublication_le") == deadline.isoformat()
    ]
    if not warned or today < min(warned) + timedelta(days=min(WARNING_DAYS)):
        postponed = (min(warned) if warned else today) + timedelta(days=min(WARNING_DAYS))
        event = store.record_event(
            slug,
            "avertissement-depublication",
            f"Sans mise à jour, dépublication le {postponed:%d/%m/%Y}",
            {
                "jours_restants": (postponed - today).days,
                "depublication_le": deadline.isoformat(),
                "depublication_effective_le": postponed.isoformat(),
                "derniere_mise_a_jour": last.isoformat(),
            },
            f"avertissement:{slug}:{deadline}:{min(WARNING_DAYS)}",
        )
        if event:
            report.warned.append(f"{slug} ({(postponed - today).days} j)")
        return
    if store.spatial is not None:
        store.spatial.drop_dataset_data(slug)
    store.set_status(slug, "depublie")
    store.record_event(
        slug,
        "depublication",
        f"Jeu de données dépublié : aucune mise à jour depuis le {last:%d/%m/%Y}",
        {"depuis": today.isoformat(), "derniere_mise_a_jour": last.isoformat()},
        f"depublication:{slug}:{deadline}",
    )
    report.depublished.append(slug)
