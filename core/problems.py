"""Problems found in a submission, as JSON for machines and French text for people.

Modelled on frictionless reports: each problem names its stage, its rule (a
stable machine code aligned with frictionless error types where one exists),
and, for data problems, the row (line number in the file, header = 1), the
column and the offending value.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# How many problems a report lists one by one; the counts stay exact beyond that.
MAX_LISTED_PROBLEMS = 10_000
MAX_LISTED_IN_TEXT_PER_RULE = 20

KEY_STAGES = {"metadonnees", "licence"}  # their problems name a metadata key, not a column


def column_word(stage: str | None) -> str:
    """What a problem's `column` names, in French: a metadata key or a column of data."""
    return "clé" if stage in KEY_STAGES else "colonne"


STAGE_LABELS = {
    "lecture": "Lecture du fichier",
    "metadonnees": "Métadonnées",
    "licence": "Licence",
    "structure": "Structure (Table Schema)",
    "anonymisation": "Données personnelles",
    "publication": "Publication",
    "source": "Source de la commune",
    "avis": "Avis de changement",
}


@dataclass(frozen=True)
class Problem:
    stage: str
    rule: str
    message: str
    row: int | None = None
    column: str | None = None
    value: str | None = None
    feature: str | None = None  # in a geographic file: "objet n° 3 (id_banc 12)"
    suggestion: str | None = None  # what the producer probably meant (a key, a licence…)

    def to_dict(self) -> dict[str, Any]:
        """French keys, as every other key of the report (reports are read by producers)."""
        record = {
            "etape": self.stage,
            "regle": self.rule,
            "message": self.message,
            "ligne": self.row,
            "colonne": self.column,
            "valeur": self.value,
            "objet": self.feature,
        }
        if self.suggestion is not None:  # the message says it too
            record["suggestion"] = self.suggestion
        return record

    def location(self) -> str:
        parts = []
        if self.feature is not None:
            parts.append(self.feature)
        elif self.row is not None:
            parts.append(f"ligne {self.row}")
        if self.column is not None:
            parts.append(f"{column_word(self.stage)} « {self.column} »")
        return ", ".join(parts)


@dataclass(frozen=True)
class Repair:
    """A fix the platform made to the data as received, and says so (never silently)."""

    stage: str
    rule: str
    column: str
    count: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "etape": self.stage,
            "regle": self.rule,
            "colonne": self.column,
            "nombre": self.count,
            "message": self.message,
        }


@dataclass
class Report:
    """Outcome of the checks of one submission."""

    problems: list[Problem] = field(default_factory=list)
    counts: Counter[tuple[str, str, str | None]] = field(default_factory=Counter)
    rows_checked: int | None = None
    repairs: list[Repair] = field(default_factory=list)  # never make a report invalid

    @property
    def valid(self) -> bool:
        return not self.counts

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, problem: Problem) -> None:
        self.add_many([problem], total=1)

    def add_many(self, problems: list[Problem], total: int) -> None:
        """Record `total` occurrences of one kind of problem, listing the first ones."""
        if total == 0:
            return
        first = problems[0]
        self.counts[(first.stage, first.rule, first.column)] += total
        room = MAX_LISTED_PROBLEMS - len(self.problems)
        self.problems.extend(problems[: max(room, 0)])

    def extend(self, other: Report) -> None:
        self.repairs.extend(r for r in other.repairs if r not in self.repairs)
        self.counts.update(other.counts)
        room = MAX_LISTED_PROBLEMS - len(self.problems)
        self.problems.extend(other.problems[: max(room, 0)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "valide": self.valid,
            "nombre_problemes": self.total,
            "lignes_verifiees": self.rows_checked,
            "resume": [
                {"etape": stage, "regle": rule, "colonne": column, "nombre": n}
                for (stage, rule, column), n in sorted(self.counts.items(), key=_count_key)
            ],
            "problemes": [p.to_dict() for p in self.problems],
            "liste_tronquee": len(self.problems) < self.total,
            "reparations": [r.to_dict() for r in self.repairs],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """A report read back from `to_dict` (as the store keeps a submission's), so that
        its French text can be written again."""
        report = cls(rows_checked=data.get("lignes_verifiees"))
        for line in data.get("resume") or []:
            key = (line["etape"], line["regle"], line.get("colonne"))
            report.counts[key] += int(line["nombre"])
        report.problems = [
            Problem(
                stage=p["etape"],
                rule=p["regle"],
                message=p["message"],
                row=p.get("ligne"),
                column=p.get("colonne"),
                value=p.get("valeur"),
                feature=p.get("objet"),
            )
            for p in data.get("problemes") or []
        ]
        report.repairs = [
            Repair(r["etape"], r["regle"], r["colonne"], int(r["nombre"]), r["message"])
            for r in data.get("reparations") or []
        ]
        return report

    def _text_order(self, item: tuple[tuple[str, str, str | None], int]) -> tuple:
        """Stages in pipeline order, then groups by the first line they concern."""
        (stage, rule, column), _ = item
        rows = [p.row or 0 for p in self.problems if (p.stage, p.rule, p.column) == item[0]]
        return (_count_key(item)[0], min(rows, default=0), column or "", rule)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)

    def to_text(self) -> str:
        repaired = [f"Réparé — colonne « {r.column} » : {r.message}" for r in self.repairs]
        if self.valid:
            checked = f" ({self.rows_checked} lignes vérifiées)" if self.rows_checked else ""
            return "\n".join([f"Aucun problème détecté{checked}.", *repaired])
        lines = [
            f"La soumission est refusée : {self.total} problème(s) détecté(s). "
            "Rien n'a été publié ; la version précédente reste diffusée.",
        ]
        for (stage, rule, column), n in sorted(self.counts.items(), key=self._text_order):
            lines.append("")
            where = f", {column_word(stage)} « {column} »" if column else ""
            lines.append(f"[{STAGE_LABELS.get(stage, stage)}] règle « {rule} »{where} : {n} cas")
            listed = [
                p for p in self.problems if (p.stage, p.rule, p.column) == (stage, rule, column)
            ]
            for p in listed[:MAX_LISTED_IN_TEXT_PER_RULE]:
                loc = p.location()
                lines.append(f"  - {loc + ' : ' if loc else ''}{p.message}")
            if n > min(len(listed), MAX_LISTED_IN_TEXT_PER_RULE):
                lines.append(f"  … et {n - min(len(listed), MAX_LISTED_IN_TEXT_PER_RULE)} autre(s)")
        return "\n".join([*lines, *([""] if repaired else []), *repaired])


def _count_key(item: tuple[tuple[str, str, str | None], int]) -> tuple[int, str, str]:
    (stage, rule, column), _ = item
    order = list(STAGE_LABELS).index(stage) if stage in STAGE_LABELS else 99
    return (order, column or "", rule)


class SubmissionRejected(Exception):
    """A submission failed a check: nothing is published."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.to_text())
        self.report = report


def reject(stage: str, rule: str, message: str, **where: Any) -> SubmissionRejected:
    """Shortcut for a rejection carrying one problem."""
    report = Report()
    report.add(Problem(stage=stage, rule=rule, message=message, **where))
    return SubmissionRejected(report)
