"""The portal's Jinja2 templates (`catalog/templates/`) and the French labels they show.

The templates get, on every page, whether sign-in is offered and who is signed in
(`catalog.login.portal_context`), and a `contraintes` filter that writes a Table Schema
field's constraints as a French phrase.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates

from catalog.login import portal_context
from catalog.store import downloads

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


TEMPLATES.env.filters["contraintes"] = describe_constraints
