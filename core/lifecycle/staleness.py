"""A dataset not updated for 3 years is depublished (annex data.grandlyon.com, §3.2): its
producer is warned 90 and 30 days before (`avertissement-depublication`), and never
depublished less than 30 days after a warning; a new submission republishes it
(`republication`, recorded by the publication stage). Files and history are kept."""

from __future__ import annotations

from datetime import date, timedelta

from core.lifecycle.rule import (
    Action,
    DatasetState,
    Depublish,
    EventKind,
    Heading,
    Mail,
    RecordEvent,
    announced_depublication,
)
from core.records import Event
from core.rules import WARNING_DAYS, depublication_date
from core.wording import french_date

WHY = (
    "un jeu de données qui n'est pas mis à jour pendant 3 ans est dépublié ; son producteur "
    "est averti dès la première mise à jour manquée, puis 90 jours et 30 jours avant la "
    "dépublication (annexe data.grandlyon.com, §3.2)."
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
        todo=f"déposez une mise à jour des données {by} (ou déposez-les à nouveau si elles "
        "n'ont pas changé) : il restera publié.",
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


WARNED = Heading("Avertissements de dépublication")
DEPUBLISHED = Heading("Jeux dépubliés")


class Staleness:
    name = "obsolescence"
    headings = (WARNED, DEPUBLISHED)
    kinds = (
        EventKind("avertissement-depublication", "Dépublication prochaine", mail=_warning),
        EventKind("depublication", "Jeu de données dépublié", mail=_depublished),
        EventKind("republication", "Jeu de données republié", mail=_republished),
    )

    def decide(self, state: DatasetState) -> list[Action]:
        dataset = state.dataset
        if dataset.status != "publie":
            return []
        last = dataset.last_confirmed_at.date()
        deadline = depublication_date(last)
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


def _depublish_once_warned(state: DatasetState, deadline: date, last: date) -> list[Action]:
    """Depublish, unless the producer was not warned at least 30 days ago (the job was
    down, or the rule arrived late): then warn now and depublish 30 days later."""
    slug, today, notice_days = state.dataset.slug, state.today, min(WARNING_DAYS)
    warned = [
        e.at.date()
        for e in state.recent_events()
        if e.kind == "avertissement-depublication"
        and e.details.get("depublication_le") == deadline.isoformat()
    ]
    if not warned or today < min(warned) + timedelta(days=notice_days):
        postponed = (min(warned) if warned else today) + timedelta(days=notice_days)
        return [
            RecordEvent(
                "avertissement-depublication",
                f"Sans mise à jour, dépublication le {postponed:%d/%m/%Y}",
                {
                    "jours_restants": (postponed - today).days,
                    "depublication_le": deadline.isoformat(),
                    "depublication_effective_le": postponed.isoformat(),
                    "derniere_mise_a_jour": last.isoformat(),
                },
                f"avertissement:{slug}:{deadline}:{notice_days}",
                (WARNED, f"{slug} ({(postponed - today).days} j)"),
            )
        ]
    return [
        Depublish((DEPUBLISHED, slug)),
        RecordEvent(
            "depublication",
            f"Jeu de données dépublié : aucune mise à jour depuis le {last:%d/%m/%Y}",
            {"depuis": today.isoformat(), "derniere_mise_a_jour": last.isoformat()},
            f"depublication:{slug}:{deadline}",
        ),
    ]


RULE = Staleness()
