"""The platform's French wording of its events: dates spelled out, event details labelled,
for feeds, webhooks and e-mails — shared by the catalog's feeds and
the pipeline's notifications."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from core.records import Dataset

MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
DETAIL_LABELS = {  # keys written by pipelines.lifecycle and pipelines.governance
    "description": "Changement",
    "changements": "Modifications",
    "date_effet": "Date d'effet",
    "avis": "Référence de l'avis",
    "ancienne_structure": "Ancienne version de structure",
    "nouvelle_structure": "Nouvelle version de structure",
    "ancienne_structure_alimentee": "Ancienne structure alimentée en parallèle",
    "retrait_au_plus_tot": "Ancienne structure diffusée au moins jusqu'au",
    "successeur": "Lien stable de la nouvelle structure",
    "version": "Version publiée",
    "structure": "Version de structure",
    "lignes": "Nombre de lignes",
    "attendue_le": "Mise à jour attendue le",
    "date_attendue": "Mise à jour attendue le",
    "derniere_mise_a_jour": "Dernière mise à jour",
    "depublication_le": "Dépublication le",
    "date_depublication": "Dépublication le",
    "jours_restants": "Jours restants avant la dépublication",
    "depuis": "Depuis le",
    "motif": "Motif",
    "url": "Lien",
}
# Never told to reusers, even when the rules engine puts them in an event's details.
PRIVATE_DETAILS = frozenset({"contact", "courriel", "email", "destinataires"})
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]00:?00)?")


def french_date(day: date) -> str:
    """`1er mars 2027`, `15 octobre 2026`: a date in a sentence."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{number} {MONTHS[day.month - 1]} {day.year}"


def short_date(day: date) -> str:
    """`01/03/2027`: a date in a table or a short label."""
    return f"{day:%d/%m/%Y}"


def _time(moment: datetime) -> str:
    """`à 10 h 05 (UTC)`: the platform keeps and tells instants in UTC, everywhere (pages,
    mails, feeds), so that a time read on a page matches the one in a mail or a log."""
    return f"à {moment.hour} h {moment:%M} (UTC)"


def french_moment(moment: datetime) -> str:
    """`2 novembre 2026 à 10 h 05 (UTC)`, from a naive UTC instant."""
    return f"{french_date(moment.date())} {_time(moment)}"


def short_moment(moment: datetime) -> str:
    """`02/11/2026 à 10 h 05 (UTC)`, from a naive UTC instant: in a table."""
    return f"{short_date(moment.date())} {_time(moment)}"


def as_moment(value: date | datetime | str) -> date | datetime:
    """A date or an instant (ISO 8601 text too, as the APIs give them) as a `date`, or a
    naive UTC `datetime` when it has a time."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if ISO_DATE.fullmatch(text):
        return date.fromisoformat(text)
    return as_moment(datetime.fromisoformat(text.replace("Z", "+00:00")))


def rfc3339(moment: datetime) -> str:
    """A naive UTC instant (as the store keeps it) in RFC 3339: `2026-11-02T10:05:00Z`."""
    return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def describe_value(value: Any, base: str) -> str:
    """A detail's value in French: dates spelled out, site paths made absolute."""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, list):
        return " ; ".join(describe_value(v, base) for v in value)
    if isinstance(value, dict):
        return " ; ".join(f"{k} : {describe_value(v, base)}" for k, v in value.items())
    text = str(value)
    if ISO_DATE.fullmatch(text):
        return french_date(date.fromisoformat(text))
    if ISO_DATETIME.fullmatch(text):
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return french_moment(
            moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
        )
    if text.startswith("/"):
        return base + text
    return text


def public_details(details: dict[str, Any]) -> dict[str, Any]:
    """An event's details reusers may read (feeds, webhooks): no internal or private key."""
    return {k: v for k, v in details.items() if k not in PRIVATE_DETAILS and not k.startswith("_")}


def describe_details(details: dict[str, Any], base: str) -> list[str]:
    """`Libellé : valeur` lines of an event's details, for feeds and e-mails."""
    lines = []
    for key, value in public_details(details).items():
        if value in (None, "", [], {}):
            continue
        label = DETAIL_LABELS.get(key, key.replace("_", " ").capitalize())
        lines.append(f"{label} : {describe_value(value, base)}")
    return lines


def dataset_title(dataset: Dataset | None, slug: str) -> str:
    return dataset.metadata.get("title", slug) if dataset else slug


def of_place(name: str) -> str:
    """« de Lyon », « d'Écully » (elision before a vowel or a mute h)."""
    return f"d'{name}" if name[:1].lower() in "aeiouyàâéèêîôh" else f"de {name}"
