"""Structure changes (annex data.grandlyon.com, §3.2): a breaking change is announced at
least 30 days ahead (`avis-changement`), applies on its date (`bascule`), and the old
structure, served in parallel for at least 30 days, is then retired (`retrait-structure`,
decided here). Compatible changes are only told (`changement-compatible`)."""

from __future__ import annotations

from datetime import timedelta

from core.changes import due_for_retirement
from core.lifecycle.rule import (
    Action,
    DatasetState,
    EventKind,
    Heading,
    Mail,
    RecordEvent,
    RetireStructure,
    detail_date,
)
from core.records import Event
from core.urls import download
from core.wording import french_date

WHY = (
    "un changement de structure cassant est annoncé au moins 30 jours avant sa date d'effet ; "
    "l'ancienne et la nouvelle structure sont ensuite diffusées en parallèle pendant au moins "
    "30 jours (annexe data.grandlyon.com, §3.2)."
)


def _announced(event: Event, title: str) -> Mail:
    effective = detail_date(event, "date_effet")
    until = (
        f"jusqu'au {french_date(effective - timedelta(days=1))}, continuez à déposer les données "
        f"dans la structure actuelle ; à partir du {french_date(effective)}, déposez-les dans "
        "la nouvelle"
        if effective
        else "à la date d'effet de l'avis, déposez les données dans la nouvelle structure"
    )
    return Mail(
        subject=f"Avis de changement de structure enregistré : {title}",
        what=f"Votre avis de changement de structure pour « {title} » est enregistré"
        + (f" ; il prend effet le {french_date(effective)}" if effective else "")
        + ". Les réutilisateurs en sont informés dès maintenant (bandeau sur la page du jeu de "
        "données, fils des changements, webhooks).",
        why=WHY,
        todo=f"{until}. L'ancienne structure restera diffusée en parallèle pendant au moins "
        "30 jours.",
    )


def _switched(event: Event, title: str) -> Mail:
    until = detail_date(event, "retrait_au_plus_tot")
    return Mail(
        subject=f"Nouvelle structure en vigueur : {title}",
        what=f"La nouvelle structure du jeu de données « {title} » est en vigueur depuis le "
        f"{french_date(event.at.date())}. L'ancienne structure reste diffusée en parallèle "
        + (f"au moins jusqu'au {french_date(until)}." if until else "pendant au moins 30 jours."),
        why=WHY,
        todo="déposez désormais les données dans la nouvelle structure.",
    )


def _retired(event: Event, title: str) -> Mail:
    return Mail(
        subject=f"Ancienne structure retirée : {title}",
        what=f"L'ancienne structure du jeu de données « {title} » n'est plus diffusée depuis le "
        f"{french_date(event.at.date())} : ses liens stables répondent désormais qu'elle a été "
        "retirée.",
        why=WHY,
        todo="rien à faire.",
    )


RETIRED = Heading("Structures retirées", "aucune")


class StructureChange:
    name = "changement-de-structure"
    headings = (RETIRED,)
    kinds = (
        EventKind("changement-compatible", "Changement de structure compatible"),
        EventKind("avis-changement", "Changement de structure annoncé", mail=_announced),
        EventKind("bascule", "Nouvelle structure en vigueur", mail=_switched),
        EventKind("retrait-structure", "Ancienne structure retirée", mail=_retired),
    )

    def decide(self, state: DatasetState) -> list[Action]:
        """Retire each old structure whose notice and parallel diffusion are 30 days old."""
        slug = state.dataset.slug
        actions: list[Action] = []
        for notice in state.notices:
            if not due_for_retirement(notice, state.moment):
                continue
            actions.append(
                RetireStructure(
                    notice.id, notice.from_version, (RETIRED, f"{slug} v{notice.from_version}")
                )
            )
            actions.append(
                RecordEvent(
                    "retrait-structure",
                    f"La structure v{notice.from_version} n'est plus diffusée : utilisez la "
                    f"v{notice.to_version}",
                    {
                        "ancienne_structure": notice.from_version,
                        "nouvelle_structure": notice.to_version,
                        "successeur": download("", slug, "csv", notice.to_version),
                    },
                    f"retrait:{notice.id}",
                )
            )
        return actions


RULE = StructureChange()
