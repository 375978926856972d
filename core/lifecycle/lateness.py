"""An update later than the frequency its producer committed to (`accrual_periodicity`):
told and mailed once per expected date; the staleness rule decides what follows."""

from __future__ import annotations

from datetime import date

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
from core.lifecycle.staleness import WHY
from core.records import Event
from core.rules import depublication_date, freshness
from core.wording import french_date


def _late(event: Event, title: str) -> Mail:
    deadline = announced_depublication(event)
    expected = detail_date(event, "attendue_le", "date_attendue")
    before = f" avant le {french_date(deadline)}" if deadline else ""
    return Mail(
        subject=f"Mise à jour en retard : {title}",
        what=f"Le jeu de données « {title} » n'a pas été mis à jour à la date prévue par sa "
        "fréquence de mise à jour"
        + (f" (mise à jour attendue le {french_date(expected)})" if expected else "")
        + ".",
        why=WHY,
        todo=f"déposez une mise à jour des données{before} ; si elles n'ont pas changé, "
        "déposez-les à nouveau : le dépôt confirme qu'elles sont toujours exactes.",
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
        fresh = freshness(dataset, state.today)
        if fresh["statut"] != "en-retard":
            return []
        deadline = depublication_date(dataset.last_confirmed_at.date())
        return [
            RecordEvent(
                "retard",
                f"Mise à jour attendue le {date.fromisoformat(fresh['prochaine']):%d/%m/%Y} "
                "non reçue",
                {"attendue_le": fresh["prochaine"], "depublication_le": deadline.isoformat()},
                f"retard:{dataset.slug}:{fresh['prochaine']}",
                (LATE, dataset.slug),
            )
        ]


RULE = Lateness()
