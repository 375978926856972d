"""Structure changes and their notices (annex data.grandlyon.com, §3.2).

A submission's structure is compared with the published one:
- compatible: columns added, constraints changed, columns reordered, a reading format
  changed; published as usual, in the same structure version, and in the changelog;
- breaking: a column removed or renamed, a type changed, the geometry type or the CRS
  changed, the file format changed. Only a change notice, at least 30 days old on its
  effective date, lets it through; it then becomes a new structure version and the old
  one stays served in parallel for at least 30 days, fed through the notice's mapping
  (`correspondance`) when there is one, frozen otherwise.
"""

from __future__ import annotations

import ast
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from core import clock
from core.problems import SubmissionRejected, reject
from core.records import ChangeNotice
from core.structure import Structure, check_schema_descriptor

NOTICE_DAYS = 30  # a notice precedes its effective date by at least this
PARALLEL_DAYS = 30  # old and new structures are both served at least this long
STAGE = "structure"
RULE = (
    "Un changement de structure cassant doit être annoncé au moins 30 jours avant sa date "
    "d'effet ; l'ancienne et la nouvelle structure sont ensuite diffusées en parallèle "
    "pendant au moins 30 jours (annexe data.grandlyon.com, §3.2)."
)


@dataclass
class StructureChange:
    breaking: list[str] = field(default_factory=list)  # French, one line each
    compatible: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.breaking:
            return "cassant"
        return "compatible" if self.compatible else "aucun"


def classify(kept: Structure, incoming: Structure) -> StructureChange:
    change = StructureChange()
    old = {f["name"]: f for f in kept.schema.get("fields", [])}
    new = {f["name"]: f for f in incoming.schema.get("fields", [])}
    for name in old.keys() - new.keys():
        change.breaking.append(f"colonne « {name} » supprimée ou renommée")
    for name in sorted(new.keys() - old.keys()):
        change.compatible.append(f"colonne « {name} » ajoutée")
    for name in sorted(old.keys() & new.keys()):
        before, after = old[name], new[name]
        if before.get("type", "string") != after.get("type", "string"):
            change.breaking.append(
                f"colonne « {name} » : type {before.get('type', 'string')} devenu "
                f"{after.get('type', 'string')}"
            )
        if before.get("constraints", {}) != after.get("constraints", {}):
            change.compatible.append(f"colonne « {name} » : contraintes modifiées")
        if before.get("format") != after.get("format"):
            change.compatible.append(f"colonne « {name} » : format de lecture modifié")
    shared_old = [n for n in old if n in new]
    if not change.breaking and shared_old != [n for n in new if n in old]:
        change.compatible.append("ordre des colonnes modifié")
    if kept.geometry_type is None and incoming.geometry_type and incoming.geometry_columns:
        # A table's positions become a map: every column and download stays; more are added.
        change.compatible.append(
            f"positions des colonnes {', '.join(_position_columns(incoming))} "
            "publiées comme carte"
        )
    elif kept.geometry_type != incoming.geometry_type:
        change.breaking.append(
            f"type de géométrie {kept.geometry_type or 'aucun'} devenu "
            f"{incoming.geometry_type or 'aucun'}"
        )
    if kept.crs != incoming.crs and kept.geometry_type:
        change.breaking.append(f"système de coordonnées EPSG:{kept.crs} devenu EPSG:{incoming.crs}")
    if (
        kept.source_format
        and incoming.source_format
        and kept.source_format != incoming.source_format
    ):
        change.breaking.append(
            f"format de fichier {kept.source_format} devenu {incoming.source_format}"
        )
    if kept.endpoint and incoming.endpoint and kept.endpoint != incoming.endpoint:
        change.breaking.append(
            f"point de livraison « {kept.endpoint} » devenu « {incoming.endpoint} »"
        )
    return change


def _position_columns(structure: Structure) -> list[str]:
    columns = structure.geometry_columns or {}
    return [columns[role] for role in ("x", "y", "shape") if role in columns]


def earliest_effective_date(today: date | None = None) -> date:
    return (today or clock.today()) + timedelta(days=NOTICE_DAYS)


def refuse_breaking_change(
    change: StructureChange, notice: ChangeNotice | None
) -> SubmissionRejected:
    """The French refusal of a breaking submission, with the earliest date it could apply."""
    listed = " ; ".join(change.breaking)
    if notice is None:
        return reject(
            STAGE,
            "changement-cassant-sans-avis",
            f"Changement de structure cassant ({listed}) sans avis de changement. {RULE} "
            f"Déposez un avis de changement : la nouvelle structure pourrait s'appliquer au "
            f"plus tôt le {earliest_effective_date():%d/%m/%Y}. D'ici là, soumettez les "
            "données dans la structure actuelle.",
        )
    return reject(
        STAGE,
        "changement-cassant-avant-date",
        f"Changement de structure cassant ({listed}) soumis avant la date d'effet de son avis "
        f"({notice.effective_date:%d/%m/%Y}). {RULE} Soumettez les données dans la "
        f"structure actuelle jusqu'au {notice.effective_date - timedelta(days=1):%d/%m/%Y}.",
    )


# --- notices -------------------------------------------------------------------------------


def new_notice(
    dataset: str,
    kept: Structure,
    current_version: int,
    schema: dict[str, Any],
    effective_date: date,
    description: str,
    mapping: dict[str, Any] | None,
    geometry_type: str | None = None,
    crs: int | None = None,
    source_format: str | None = None,
    endpoint: str | None = None,
) -> ChangeNotice:
    """A checked notice; refused (SubmissionRejected, French) when it cannot apply."""
    check_schema_descriptor(schema, "de l'avis")
    if not description.strip():
        raise reject("avis", "avis-sans-description", "L'avis doit décrire le changement.")
    earliest = earliest_effective_date()
    if effective_date < earliest:
        raise reject(
            "avis",
            "avis-trop-proche",
            f"Date d'effet du {effective_date:%d/%m/%Y} trop proche : {RULE} Date d'effet la "
            f"plus proche possible : le {earliest:%d/%m/%Y}.",
        )
    incoming = Structure(
        schema=schema,
        geometry_type=geometry_type if geometry_type is not None else kept.geometry_type,
        crs=crs if crs is not None else kept.crs,
        source_format=source_format or kept.source_format,
        endpoint=endpoint or kept.endpoint,
    )
    change = classify(kept, incoming)
    if not change.breaking:
        raise reject(
            "avis",
            "avis-inutile",
            "Ce changement n'est pas cassant ("
            + (" ; ".join(change.compatible) or "structure identique")
            + ") : il n'a pas besoin d'avis, soumettez directement les données.",
        )
    if mapping:
        check_mapping(mapping, kept, incoming)
    return ChangeNotice(
        id=uuid.uuid4().hex,
        dataset=dataset,
        from_version=current_version,
        structure=incoming.to_dict(),
        effective_date=effective_date,
        description=description.strip(),
        mapping=mapping or None,
        announced_at=clock.now(),
    )


def active_notice(notices: list[ChangeNotice], current_version: int) -> ChangeNotice | None:
    """The notice announced for the current structure, not yet applied."""
    return next(
        (n for n in reversed(notices) if n.from_version == current_version and not n.switched_at),
        None,
    )


def parallel_notice(notices: list[ChangeNotice], version: int) -> ChangeNotice | None:
    """The applied notice whose old structure is `version`, still served in parallel."""
    return next(
        (n for n in notices if n.from_version == version and n.switched_at and not n.retired_at),
        None,
    )


def retirement_date(notice: ChangeNotice) -> date | None:
    """When the old structure may be retired: both 30-day conditions hold."""
    if notice.switched_at is None:
        return None
    return max(
        notice.announced_at.date() + timedelta(days=NOTICE_DAYS),
        notice.switched_at.date() + timedelta(days=PARALLEL_DAYS),
    )


def due_for_retirement(notice: ChangeNotice, moment: datetime) -> bool:
    due = retirement_date(notice)
    return due is not None and notice.retired_at is None and moment.date() >= due


# --- mapping: the old structure derived from the new data -----------------------------------

ALLOWED_OPERATORS = (ast.Add, ast.Sub, ast.Mult, ast.Div)  # + - * / between columns


def check_mapping(mapping: dict[str, Any], old: Structure, new: Structure) -> None:
    """Every old column must come from somewhere: a mapping rule or a same-named column."""
    new_names = set(new.field_names)
    for name in old.field_names:
        rule = mapping.get(name)
        if rule is None:
            if name not in new_names:
                raise reject(
                    "avis",
                    "correspondance-incomplete",
                    f"La correspondance ne dit pas comment obtenir la colonne « {name} » de "
                    "l'ancienne structure (colonne, formule ou valeur).",
                )
            continue
        _check_rule(name, rule, new_names)


def _check_rule(name: str, rule: Any, new_names: set[str]) -> None:
    if not isinstance(rule, dict) or len(rule) != 1:
        raise reject(
            "avis",
            "correspondance-invalide",
            f"Correspondance de « {name} » : une seule clé parmi colonne, formule, valeur.",
        )
    ((kind, value),) = rule.items()
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise reject(
            "avis",
            "correspondance-invalide",
            f"Correspondance de « {name} » : une valeur simple (texte ou nombre) est attendue.",
        )
    if kind == "colonne" and value not in new_names:
        raise reject(
            "avis",
            "correspondance-invalide",
            f"Correspondance de « {name} » : colonne « {value} » absente de la nouvelle structure.",
        )
    if kind == "formule":
        columns = _formula_columns(name, str(value))
        if not columns:
            raise reject(
                "avis",
                "correspondance-invalide",
                f"Formule de « {name} » sans colonne : utilisez « valeur » pour une constante.",
            )
        for column in columns:
            if column not in new_names:
                raise reject(
                    "avis",
                    "correspondance-invalide",
                    f"Formule de « {name} » : colonne « {column} » inconnue.",
                )
    if kind not in ("colonne", "formule", "valeur"):
        raise reject(
            "avis",
            "correspondance-invalide",
            f"Correspondance de « {name} » : « {kind} » inconnu (colonne, formule, valeur).",
        )


def _formula_columns(name: str, formula: str) -> list[str]:
    try:
        tree = ast.parse(formula, mode="eval").body
    except SyntaxError as error:
        raise reject(
            "avis", "correspondance-invalide", f"Formule de « {name} » illisible : {formula}"
        ) from error
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.append(node.id)
        elif (
            not isinstance(
                node, ast.BinOp | ast.Constant | ast.operator | ast.Load | ast.UnaryOp | ast.USub
            )
            or (isinstance(node, ast.UnaryOp) and not isinstance(node.op, ast.USub))
            or (isinstance(node, ast.BinOp) and not isinstance(node.op, ALLOWED_OPERATORS))
        ):
            raise reject(
                "avis",
                "correspondance-invalide",
                f"Formule de « {name} » : seules + - * / entre colonnes et nombres sont admises.",
            )
    return names
