"""Column names, whatever the format: present, named, printable, each name once.

The first row of a CSV or a sheet, a GIS layer's fields: every reader of the read stage
(`pipelines.read`) checks them here, and so does the upload API on a CSV's first line
(`core.csv_head`), so the same French problems name the same faults (an empty name, an
invisible character, a name given twice or differing only by case, too many columns).
"""

from __future__ import annotations

import unicodedata
from typing import Any

from core.problems import Problem, Report, SubmissionRejected, reject

STAGE = "lecture"  # the read stage's name in reports

MAX_COLUMNS = 1000
MAX_COLUMN_NAME = 255


# Zero-width (non-)joiners are written in some national schemas' own field names (CNIG).
JOINERS = {"\u200c", "\u200d"}


def check_header(first: list[Any], filename: str, trim: bool = True) -> list[str]:
    """Column names of a first row: present, named, printable, and each name once (whatever
    the case: databases and GIS formats do not tell « Nom » from « nom »)."""
    names = ["" if name is None or _is_nan(name) else str(name).strip() for name in first]
    while trim and names and not names[-1]:
        names.pop()  # trailing empty cells of a spreadsheet's first row
    if not names:
        raise reject(STAGE, "entete-absent", f"Le fichier {filename} n'a pas de ligne d'en-tête.")
    if len(names) > MAX_COLUMNS:
        raise reject(
            STAGE,
            "trop-de-colonnes",
            f"Le fichier {filename} a {len(names)} colonnes (maximum {MAX_COLUMNS}).",
            row=1,
        )
    report = Report()
    seen: dict[str, str] = {}
    for position, name in enumerate(names, start=1):
        problem = _header_problem(position, name, seen)
        if problem is not None:
            report.add(problem)
        seen.setdefault(name.casefold(), name)
    if not report.valid:
        raise SubmissionRejected(report)
    return names


def _header_problem(position: int, name: str, seen: dict[str, str]) -> Problem | None:
    if not name:
        return Problem(STAGE, "entete-vide", f"La colonne n° {position} n'a pas de nom.", row=1)
    shown = name if len(name) <= 60 else name[:60] + "…"
    if len(name) > MAX_COLUMN_NAME:
        return Problem(
            STAGE,
            "entete-trop-long",
            f"Le nom de la colonne n° {position} fait {len(name)} caractères "
            f"(maximum {MAX_COLUMN_NAME}).",
            row=1,
            column=shown,
        )
    hidden = [ch for ch in name if not ch.isprintable() and ch not in JOINERS]
    if hidden:
        return Problem(
            STAGE,
            "entete-caractere-interdit",
            f"Le nom de la colonne n° {position} contient un caractère invisible ou de "
            f"contrôle ({_character_name(hidden[0])}) : retirez-le.",
            row=1,
            column=_visible(shown),
        )
    earlier = seen.get(name.casefold())
    if earlier is None:
        return None
    message = (
        f"Le nom de colonne « {name} » est utilisé plusieurs fois."
        if earlier == name
        else f"Les noms de colonne « {earlier} » et « {name} » ne diffèrent que par la casse."
    )
    return Problem(STAGE, "entete-duplique", message, row=1, column=name)


CONTROL_NAMES = {"\n": "retour à la ligne", "\r": "retour chariot", "\t": "tabulation"}


def _character_name(character: str) -> str:
    name = CONTROL_NAMES.get(character) or unicodedata.name(character, "caractère de contrôle")
    return f"U+{ord(character):04X}, {name}"


def _visible(name: str) -> str:
    """The name with its invisible characters written as escapes, its accents as they are."""
    return "".join(
        ch if ch.isprintable() or ch in JOINERS else ch.encode("unicode_escape").decode("ascii")
        for ch in name
    )


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value
