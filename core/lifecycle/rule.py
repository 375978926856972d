"""What a lifecycle rule is: the events it records (each with its French label, whether
reusers are told, and the e-mail its producer gets), and what it decides, from a dataset's
state at a moment, as actions the daily governance job applies (`pipelines.governance`).

Rules decide and never act: they read plain records and return actions, so the catalog's
pages, feeds and mails, and the pipeline's job, read one description of each rule.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from core.records import ChangeNotice, Dataset, Event


@dataclass(frozen=True)
class Mail:
    """The notice a producer (and the data team, in copy) gets about an event, in French."""

    subject: str
    what: str
    why: str
    todo: str


@dataclass(frozen=True)
class EventKind:
    name: str  # as stored in events, e.g. "depublication"
    label: str  # French, for feeds, pages and mails
    told_to_reusers: bool = True  # feeds and webhooks; False: the commune and data team only
    mail: Callable[[Event, str], Mail] | None = None  # (event, dataset title) → the notice


@dataclass(frozen=True)
class DatasetState:
    """What a rule may read about a dataset at `moment`."""

    dataset: Dataset
    notices: list[ChangeNotice]
    recent_events: Callable[[], list[Event]]  # read only when a rule needs them
    moment: datetime
    # when the mail telling an event left for its producer; None while it has not
    mailed_at: Callable[[Event], datetime | None]
    # when the data team acknowledged that the producer was told otherwise; None if not
    acknowledged_at: Callable[[Event], datetime | None] = lambda _event: None

    @property
    def today(self) -> date:
        return self.moment.date()

    def delivered_at(self, event: Event) -> datetime | None:
        """When the producer was told of `event`: its mail left, or the data team
        acknowledged it was told otherwise (on the health page), whichever came first."""
        return delivered_at(self.mailed_at(event), self.acknowledged_at(event))


@dataclass(frozen=True)
class Heading:
    """A line of the daily job's report (French), e.g. « Jeux dépubliés : a, b » or, when
    nothing was decided, « Jeux dépubliés : aucun »."""

    title: str
    none: str = "aucun"


@dataclass(frozen=True)
class RecordEvent:
    """Record an event once (`key`); when it is new, `report` adds `text` under the
    rule's heading of the job's report: (Heading, text)."""

    kind: str
    title: str
    details: dict[str, Any]
    key: str
    report: tuple[Heading, str] | None = None


@dataclass(frozen=True)
class RetireStructure:
    """Stop serving an old structure version (its PostGIS table goes; files stay)."""

    notice_id: str
    version: int
    report: tuple[Heading, str]


@dataclass(frozen=True)
class Depublish:
    """Take the dataset out of the catalog (its PostGIS tables go; files and history stay)."""

    report: tuple[Heading, str]


@dataclass(frozen=True)
class Wait:
    """Nothing changes today: a line of the job's report says what waits, and why."""

    report: tuple[Heading, str]


Action = RecordEvent | RetireStructure | Depublish | Wait


class Rule(Protocol):
    name: str
    kinds: tuple[EventKind, ...]
    headings: tuple[Heading, ...]  # its lines in the daily job's report, in this order

    def decide(self, state: DatasetState) -> list[Action]:
        """The actions due for this dataset now; [] when none (or for rules whose events
        other stages record, such as a publication)."""
        ...


def delivered_at(mailed: datetime | None, acknowledged: datetime | None) -> datetime | None:
    """The first of the mail's departure and the data team's acknowledgement; None until
    either happened."""
    known = [moment for moment in (mailed, acknowledged) if moment is not None]
    return min(known) if known else None


def detail_date(event: Event, *keys: str) -> date | None:
    """The first of `keys` present in the event's details, as a date."""
    value = next((event.details[k] for k in keys if event.details.get(k)), None)
    return date.fromisoformat(str(value)[:10]) if value else None


def announced_depublication(event: Event) -> date | None:
    """The announced depublication date: `depublication_le`, else from `jours_restants`."""
    announced = detail_date(
        event, "depublication_effective_le", "depublication_le", "date_depublication"
    )
    if announced:
        return announced
    days = event.details.get("jours_restants")
    return (event.at + timedelta(days=int(days))).date() if days is not None else None
