"""An update later than the frequency its producer committed to (`accrual_periodicity`):
told and mailed once per expected date; the staleness rule decides what follows."""

from __future__ import annotations

from core.dates import dates_of
from core.lifecycle.rule import (
    Action,
    DatasetState,
    EventKind,
    Heading,
    Mail,
    RecordEvent,
    announced_depublication,
    detail_date,
)
from core.lifecycle.staleness import CONFIRM_UNCHANGED, WHY
from core.records import Event
from core.wording import french_date, short_date


def _late(event: Event, title: str) -> Mail:
    deadline = announced_depublication(event)
    expected = detail_date(event, "attendue_le", "date_attendue")
    last = detail_date(event, "derniere_mise_a_jour")
    before = f" avant le {french_date(deadline)}" if deadline else ""
    return Mail(
        subject=f"Mise à jour en retard : {title}",
        what=f"Le jeu de données « {title} » n'a pas été mis à jour à la date prévue par sa "
        "fréquence de mise à jour"
        + (f" (mise à jour attendue le {french_date(expected)})" if expected else "")
        + (f" : ses données datent du {french_date(last)}" if last else "")
        + ".",
        why=WHY,
        todo=f"déposez une mise à jour des données{before} ; {CONFIRM_UNCHANGED}",
    )


LATE = Heading("Jeux en retard signalés")


class Lateness:
    name = "retard"
    headings = (LATE,)
    kinds = (EventKind("retard", "Mise à jour en retard", mail=_late),)

    def decide(self, state: DatasetState) -> list[Action]:
        dataset = state.dataset
        if dataset.status != "publie":
            return []
        dates = dates_of(dataset)
        expected, deadline = dates.next_expected, dates.depublication
        if expected is None or deadline is None or not dates.late(state.today):
            return []
        return [
            RecordEvent(
                "retard",
                f"Mise à jour attendue le {short_date(expected)} non reçue",
                {
                    "attendue_le": expected.isoformat(),
                    "derniere_mise_a_jour": dates.data_updated.isoformat(),
                    "depublication_le": deadline.isoformat(),
                },
                f"retard:{dataset.slug}:{expected.isoformat()}",
                (LATE, dataset.slug),
            )
        ]


RULE = Lateness()
