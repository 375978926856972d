"""The daily governance job: the lifecycle rules that depend on time alone, as
`core.lifecycle` decides them (one module per rule), applied here to the store.

- An old structure diffused in parallel is retired once its notice is 30 days old and
  the parallel diffusion has lasted 30 days: its URLs then answer 410 Gone.
- A dataset not updated for 3 years is depublished (410 Gone, DCAT "withdrawn"); its
  producer is warned at the first missed update, 90 and 30 days before, and never
  depublished before the last warning was delivered (its mail left, or the data team
  acknowledged on the health page that the commune was told otherwise). Files and
  history are kept. A new submission (or a confirmation) republishes it.

What counts is the date of the data's last update, the one reference of `core.dates`: the
date the producer declares in its metadata with a deposit (new content, or the same content
declared exact on a new date), never later than that deposit; for data pulled from the
commune's server, the day new content was found there. Publishing or re-depositing
unchanged data with the same date does not count: republishing is not updating.

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
from datetime import datetime, timedelta
from pathlib import Path

from catalog.store import CatalogStore
from core import clock
from core.lifecycle import RULES, lateness, mail_key, staleness, structure_change
from core.lifecycle.rule import Action, DatasetState, Depublish, Heading, RetireStructure, Wait
from core.records import Event
from pipelines import retention

LEFTOVER_AGE = timedelta(days=1)  # older than any publication in progress
RECENT_EVENTS = 500  # a dataset's events read back to find its past warnings


@dataclass
class GovernanceReport:
    decided: dict[Heading, list[str]] = field(default_factory=dict)  # by the rules' headings
    swept: list[str] = field(default_factory=list)  # leftover folders, relative to files
    purged: list[str] = field(default_factory=list)  # raw personal submissions, past retention

    @property
    def retired(self) -> list[str]:  # "slug v1"
        return self.decided.get(structure_change.RETIRED, [])

    @property
    def late(self) -> list[str]:
        return self.decided.get(lateness.LATE, [])

    @property
    def warned(self) -> list[str]:  # "slug (90 j)"
        return self.decided.get(staleness.WARNED, [])

    @property
    def held(self) -> list[str]:  # depublications waiting for their warning's mail
        return self.decided.get(staleness.HELD, [])

    @property
    def depublished(self) -> list[str]:
        return self.decided.get(staleness.DEPUBLISHED, [])

    def add(self, heading: Heading, text: str) -> None:
        self.decided.setdefault(heading, []).append(text)

    def to_text(self) -> str:
        headings = [h for rule in RULES.values() for h in rule.headings]
        headings += [h for h in self.decided if h not in headings]
        lines = [f"{h.title} : {', '.join(self.decided.get(h, [])) or h.none}" for h in headings]
        lines += [
            f"Dossiers abandonnés supprimés : {len(self.swept)}",
            f"Dépôts bruts à données personnelles supprimés (fin de conservation) : "
            f"{len(self.purged)}",
        ]
        return "\n".join(lines)


def run(
    store: CatalogStore, moment: datetime | None = None, archive_dir: Path | None = None
) -> GovernanceReport:
    """Apply every lifecycle rule (`core.lifecycle.RULES`, in order) to every dataset; with
    `archive_dir`, also delete raw personal submissions whose retention has run out
    (pipelines.retention)."""
    moment = moment or clock.now()
    report = GovernanceReport()
    for dataset in store.list_datasets():
        state = DatasetState(
            dataset,
            store.notices(dataset.slug),
            lambda slug=dataset.slug: store.events(slug, limit=RECENT_EVENTS),
            moment,
            lambda event: store.mail_sent_at(mail_key(event)),
            lambda event: acknowledged_at(store, event),
        )
        for rule in RULES.values():
            for action in rule.decide(state):
                apply(store, dataset.slug, action, moment, report)
    report.swept = sweep_leftovers(store)
    if archive_dir is not None:
        report.purged = retention.purge_expired(archive_dir, moment)
    return report


def acknowledged_at(store: CatalogStore, event: Event) -> datetime | None:
    """When the data team acknowledged that `event` reached its producer otherwise."""
    acknowledgement = store.mail_acknowledgement(mail_key(event))
    return acknowledgement.acknowledged_at if acknowledgement else None


def apply(
    store: CatalogStore, slug: str, action: Action, moment: datetime, report: GovernanceReport
) -> None:
    """One decision, data first: a failure in between is retried by the next run (every
    step is idempotent)."""
    if isinstance(action, RetireStructure):
        if store.spatial is not None:
            store.spatial.drop_version_data(slug, action.version)
        store.mark_notice(action.notice_id, retired_at=moment)
        _report(report, action.report)
    elif isinstance(action, Depublish):
        if store.spatial is not None:
            store.spatial.drop_dataset_data(slug)
        store.set_status(slug, "depublie")
        _report(report, action.report)
    elif isinstance(action, Wait) or store.record_event(
        slug, action.kind, action.title, action.details, action.key
    ):
        _report(report, action.report)


def _report(report: GovernanceReport, line: tuple[Heading, str] | None) -> None:
    if line is not None:
        report.add(*line)


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
