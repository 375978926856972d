"""The portal's Jinja2 templates (`catalog/templates/`) and the French labels they show.

The templates get, on every page, whether sign-in is offered and who is signed in
(`catalog.login.portal_context`), a `contraintes` filter that writes a Table Schema
field's constraints as a French phrase, and the French date filters every template uses
(`install_date_filters`): no page shows an ISO 8601 date or a timestamp, the JSON APIs keep
ISO 8601. Dates in a sentence are long (« 1er octobre 2026 »), dates in a table short
(« 01/10/2026 »); instants add « à 14 h 05 (UTC) » (`core.wording`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from jinja2 import Environment

from catalog.login import portal_context
from catalog.store import downloads
from core.wording import as_moment, french_date, french_moment, short_date, short_moment

TEMPLATES = Jinja2Templates(
    directory=Path(__file__).parent.parent / "templates", context_processors=[portal_context]
)
CONSTRAINT_LABELS = {
    "required": lambda v: "obligatoire" if v else "",
    "unique": lambda v: "valeurs uniques" if v else "",
    "minimum": lambda v: f"minimum {v}",
    "maximum": lambda v: f"maximum {v}",
    "minLength": lambda v: f"au moins {v} caractères",
    "maxLength": lambda v: f"au plus {v} caractères",
    "pattern": lambda v: f"motif {v}",
    "enum": lambda v: "valeurs : " + ", ".join(map(str, v)),
}


def format_labels() -> dict[str, str]:
    """The download formats of the registry, with the French labels the portal shows."""
    return {name: spec.label for name, spec in downloads.FORMATS.items()}


def describe_constraints(field: dict[str, Any]) -> str:
    """A field's Table Schema constraints, as a French phrase for the portal."""
    parts = [
        CONSTRAINT_LABELS[k](v)
        for k, v in field.get("constraints", {}).items()
        if k in CONSTRAINT_LABELS
    ]
    return " ; ".join(p for p in parts if p)


DateValue = date | datetime | str | None


def _date_filter(write: Callable[[date], str]) -> Callable[[DateValue], str]:
    def written(value: DateValue) -> str:
        if not value:
            return ""
        moment = as_moment(value)
        return write(moment.date() if isinstance(moment, datetime) else moment)

    return written


def _moment_filter(
    write: Callable[[datetime], str], day: Callable[[date], str]
) -> Callable[[DateValue], str]:
    def written(value: DateValue) -> str:
        if not value:
            return ""
        moment = as_moment(value)
        return write(moment) if isinstance(moment, datetime) else day(moment)

    return written


DATE_FILTERS = {
    "date_longue": _date_filter(french_date),  # « 1er octobre 2026 »: in a sentence
    "date_courte": _date_filter(short_date),  # « 01/10/2026 »: in a table
    "moment_long": _moment_filter(french_moment, french_date),
    "moment_court": _moment_filter(short_moment, short_date),
}
DATE_FILTERS["date_fr"] = DATE_FILTERS["date_courte"]  # the health page's former names
DATE_FILTERS["date_heure_fr"] = DATE_FILTERS["moment_court"]


def install_date_filters(env: Environment) -> None:
    """The French date filters, in every template environment of the catalog."""
    env.filters.update(DATE_FILTERS)


TEMPLATES.env.filters["contraintes"] = describe_constraints
install_date_filters(TEMPLATES.env)
