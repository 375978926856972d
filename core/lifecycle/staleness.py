"""A dataset not updated for 3 years is depublished (annex data.grandlyon.com, §3.2),
counted from the date of its data's last update (`core.dates`): its producer is warned 90
and 30 days before (`avertissement-depublication`), and never depublished less than 30 days
after a warning; a new submission republishes it (`republication`, recorded by the
publication stage). Files and history are kept."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from core.dates import WARNING_DAYS, dates_of
from core.lifecycle.rule import (
    Action,
    DatasetState,
    Depublish,
    EventKind,
    Heading,
    Mail,
    RecordEvent,
    Wait,
    announced_depublication,
)
from core.records import Dataset, Event
from core.wording import french_date

WHY = (
    "un jeu de données dont les données ne sont pas mises à jour pendant 3 ans (comptés depuis "
    "la date de mise à jour déclarée dans ses métadonnées) est dépublié ; son producteur est "
    "averti dès la première mise à jour manquée, puis 90 jours et 30 jours avant la "
    "dépublication (annexe data.grandlyon.com, §3.2)."
)
# What a producer whose data have not changed does (core.dates: re-depositing with the same
# date is not an update).
CONFIRM_UNCHANGED = (
    "si elles n'ont pas changé, déposez-les à nouveau en indiquant la date du jour comme date "
    "de mise à jour (« date_mise_a_jour ») : vous confirmez ainsi qu'elles sont toujours exactes."
)


def _warning(event: Event, title: str) -> Mail:
    deadline = announced_depublication(event)
    days = event.details.get("jours_restants")
    when = f"le {french_date(deadline)}" if deadline else "prochainement"
    by = f"avant le {french_date(deadline)}" if deadline else "au plus vite"
    return Mail(
        subject=f"Dépublication dans {days} jours : {title}"
        if days is not None
        else f"Dépublication prochaine : {title}",
        what=f"Faute de mise à jour, le jeu de données « {title} » sera dépublié {when}"
        + (f", dans {days} jours" if days is not None else "")
        + ".",
        why=WHY,
        todo=f"déposez une mise à jour des données {by} : il restera publié ; " + CONFIRM_UNCHANGED,
    )


def _depublished(event: Event, title: str) -> Mail:
    return Mail(
        subject=f"Jeu de données dépublié : {title}",
        what=f"Le jeu de données « {title} » a été dépublié le {french_date(event.at.date())} : "
        "il n'est plus listé dans le catalogue ni téléchargeable ; ses fichiers et son "
        "historique sont conservés. Les réutilisateurs en sont informés (fils des changements, "
        "webhooks).",
        why=WHY,
        todo="pour le republier, déposez une version à jour des données ; pour toute question, "
        "répondez à ce courriel.",
    )


def _republished(event: Event, title: str) -> Mail:
    return Mail(
        subject=f"Jeu de données republié : {title}",
        what=f"Le jeu de données « {title} » est de nouveau publié depuis le "
        f"{french_date(event.at.date())}.",
        why=WHY,
        todo="rien à faire ; pensez à le mettre à jour selon sa fréquence.",
    )


WARNING = "avertissement-depublication"
WARNED = Heading("Avertissements de dépublication")
DEPUBLISHED = Heading("Jeux dépubliés")
HELD = Heading("Dépublications suspendues (dernier avertissement pas encore remis)")


class Staleness:
    name = "obsolescence"
    headings = (WARNED, HELD, DEPUBLISHED)
    kinds = (
        EventKind("avertissement-depublication", "Dépublication prochaine", mail=_warning),
        EventKind("depublication", "Jeu de données dépublié", mail=_depublished),
        EventKind("republication", "Jeu de données republié", mail=_republished),
    )

    def decide(self, state: DatasetState) -> list[Action]:
        dataset = state.dataset
        if dataset.status != "publie":
            return []
        dates = dates_of(dataset)
        last = dates.data_updated if dates.periodic else dates.deposited  # see core.dates
        deadline = dates.depublication
        today = state.today
        actions: list[Action] = []
        for days in WARNING_DAYS:
            if deadline - timedelta(days=days) <= today < deadline:
                actions.append(
                    RecordEvent(
                        "avertissement-depublication",
                        f"Sans mise à jour, dépublication le {deadline:%d/%m/%Y}",
                        {
                            "jours_restants": (deadline - today).days,
                            "depublication_le": deadline.isoformat(),
                            "derniere_mise_a_jour": last.isoformat(),
                        },
                        f"avertissement:{dataset.slug}:{deadline}:{days}",
                        (WARNED, f"{dataset.slug} ({days} j)"),
                    )
                )
        if today >= deadline:
            actions += _depublish_once_warned(state, deadline, last)
        return actions


def latest_warning(events: list[Event], deadline: date) -> Event | None:
    """The latest warning announcing depublication for `deadline` (`events` newest first):
    the one whose delivery depublication waits for."""
    return next(
        (
            e
            for e in events
            if e.kind == WARNING and e.details.get("depublication_le") == deadline.isoformat()
        ),
        None,
    )


def holding_warning(dataset: Dataset, events: list[Event]) -> Event | None:
    """The warning a published dataset's depublication will wait for (or waits for) until
    it is delivered: the latest one announcing its current depublication date."""
    deadline = dates_of(dataset).depublication
    if dataset.status != "publie" or deadline is None:
        return None
    return latest_warning(events, deadline)


def told_otherwise_until(announced: date, acknowledged: datetime) -> date:
    """The earliest depublication once the data team acknowledged, at `acknowledged`, that
    the producer was told otherwise: the announced date, and never less than 30 days after
    the producer was told (the data team gives the producer that date)."""
    return max(announced, acknowledged.date() + timedelta(days=min(WARNING_DAYS)))


def _depublish_once_warned(state: DatasetState, deadline: date, last: date) -> list[Action]:
    """Depublish once the producer has received a warning announcing this date at least 30
    days before it. A warning is received when its mail has left: while the last one waits
    (mail relay down), depublication waits with it. Not warned at all (the job was down, or
    the rule arrived late), or warned too late (the mail left late): warn now, with a new
    date 30 days on.

    Or the data team acknowledged, on its health page, that the producer was told otherwise
    (telephone, letter) before the mail left: depublication then waits 30 days from that
    acknowledgement at least, and no new mail is needed (the data team gave the date)."""
    slug, today = state.dataset.slug, state.today
    latest = latest_warning(state.recent_events(), deadline)
    if latest is None:
        return [_postponed_warning(state, deadline, last, str(min(WARNING_DAYS)))]
    delivered = state.delivered_at(latest)
    if delivered is None:
        return [Wait((HELD, slug))]
    announced = announced_depublication(latest) or deadline
    if state.mailed_at(latest) == delivered:
        if delivered.date() + timedelta(days=min(WARNING_DAYS)) > announced:
            return [_postponed_warning(state, deadline, last, f"remis-le-{delivered.date()}")]
    else:  # told otherwise first, as the data team acknowledged
        announced = told_otherwise_until(announced, delivered)
    if today < announced:
        return []
    return [
        Depublish((DEPUBLISHED, slug)),
        RecordEvent(
            "depublication",
            f"Jeu de données dépublié : aucune mise à jour depuis le {last:%d/%m/%Y}",
            {"depuis": today.isoformat(), "derniere_mise_a_jour": last.isoformat()},
            f"depublication:{slug}:{deadline}",
        ),
    ]


def _postponed_warning(state: DatasetState, deadline: date, last: date, why: str) -> RecordEvent:
    """A warning that depublication happens 30 days from today, not earlier."""
    slug, today, notice_days = state.dataset.slug, state.today, min(WARNING_DAYS)
    postponed = today + timedelta(days=notice_days)
    return RecordEvent(
        "avertissement-depublication",
        f"Sans mise à jour, dépublication le {postponed:%d/%m/%Y}",
        {
            "jours_restants": notice_days,
            "depublication_le": deadline.isoformat(),
            "depublication_effective_le": postponed.isoformat(),
            "derniere_mise_a_jour": last.isoformat(),
        },
        f"avertissement:{slug}:{deadline}:{why}",
        (WARNED, f"{slug} ({notice_days} j)"),
    )


RULE = Staleness()
