"""Quasi-identifiers: columns that single a person out in combination (age, sex, place).

Rows about persons that carry such a combination are refused undeclared when the
smallest group of identical combinations is below k = 11, the threshold the platform
applies (the CNIL's advice on statistical publications); the report gives the measured k
and the first generalisation that reaches it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.personal.identifiers import matching_share
from pipelines.personal.words import column_tokens, hinted, plain

K_THRESHOLD = 11
SEX_VALUES = frozenset(
    {"h", "f", "m", "homme", "femme", "hommes", "femmes", "masculin", "feminin", "garcon", "fille"}
)
ROLE_HINTS = {
    "sexe": ("sexe", "sex", "genre", "gender"),
    "age": ("age", "ages", "tranche_age", "classe_age"),
    "naissance": ("annee_naissance", "naissance", "annee_de_naissance", "ddn", "date_naissance"),
    "code_postal": ("code_postal", "cp", "codepostal", "postal", "zip"),
    "code_insee": ("code_insee", "insee", "code_commune", "codgeo", "com"),
    "iris": ("iris", "code_iris", "carreau", "idcar", "section", "ilot"),
}
CODE_PATTERN = r"^\s*(\d{5}|2[AB]\d{3})\s*$"
NEUTRAL_HEADER = re.compile(r"[a-z]{0,3}_?\d{0,3}")  # c01, v3, col, x


@dataclass(frozen=True)
class QuasiIdentifiers:
    roles: dict[str, str]  # column -> role
    k: int
    plan: dict[str, str] | None  # column -> the declaration that reaches k = 11

    @property
    def generalisation(self) -> str | None:
        if not self.plan:
            return None
        return ", ".join(f"{column}: {treatment}" for column, treatment in self.plan.items())

    def message(self) -> str:
        columns = ", ".join(f"« {c} »" for c in self.roles)
        proposal = (
            f" Pour atteindre k = {K_THRESHOLD}, déclarez dans « donnees_personnelles » : "
            f"{self.generalisation}."
            if self.generalisation
            else " Supprimez l'une de ces colonnes, ou déclarez « k_anonymat »."
        )
        return (
            f"Les lignes décrivent des personnes et la combinaison {columns} en isole "
            f"certaines : k mesuré = {self.k} (des combinaisons n'apparaissent que {self.k} "
            f"fois, le minimum est {K_THRESHOLD}).{proposal}"
        )


def roles_of(table: pa.Table, known: dict[str, str | None] | None = None) -> dict[str, str]:
    """Each quasi-identifier column's role; `known` gives the roles already read per column."""
    roles: dict[str, str] = {}
    for name in table.column_names:
        role = known[name] if known and name in known else column_role(name, table.column(name))
        if role:
            roles[name] = role
    if list(roles.values()).count("sexe") == 1:
        # Beside one sex, in a column whose header says nothing (c01…), small whole numbers
        # are ages and four-digit ones birth years. A header that means something else
        # ("annee", "voix") is believed.
        for name in table.column_names:
            if name not in roles and NEUTRAL_HEADER.fullmatch(column_tokens(name)):
                role = _demographic_by_value(table.column(name).combine_chunks())
                if role:
                    roles[name] = role
    return roles


def _demographic_by_value(column: pa.Array) -> str | None:
    if not pa.types.is_integer(column.type):
        return None
    values = pc.drop_null(column)
    if len(values) < 2 or len(pc.unique(values)) < 5:
        return None
    low, high = pc.min(values).as_py(), pc.max(values).as_py()
    if low >= 0 and high <= 110:
        return "age"
    if low >= 1900 and high <= 2030:
        return "naissance"
    return None


def column_role(name: str, chunked: pa.ChunkedArray) -> str | None:
    """A column's quasi-identifier role from its header, or from its values (a sex, codes)."""
    tokens = column_tokens(name)
    for role in ("naissance", "sexe", "age", "iris", "code_postal", "code_insee"):
        if hinted(tokens, ROLE_HINTS[role]):
            return role
    column = chunked.combine_chunks()
    if not pa.types.is_string(column.type):
        return None
    values = pc.drop_null(column)
    if len(values) == 0:
        return None
    head = values.slice(0, 1000)  # a sample decides; the whole column confirms
    if _sexes(head) and _sexes(values):
        return "sexe"
    if _codes_share(head) >= 0.9 and _codes_share(values) >= 0.9:
        return "code_postal"
    return None


def _sexes(values: pa.Array) -> bool:
    distinct = pc.unique(values).slice(0, 4).to_pylist()
    return len(distinct) <= 3 and {plain(str(v)).strip() for v in distinct} <= SEX_VALUES


def _codes_share(values: pa.Array) -> float:
    return matching_share(values, CODE_PATTERN)


def is_about_persons(roles: dict[str, str]) -> bool:
    """One sex beside an age or a birth date: the rows are people (several sexes are those of
    several people per row: candidates of a polling station's results)."""
    found = list(roles.values())
    return found.count("sexe") == 1 and bool(set(found) & {"age", "naissance"})


def measure(table: pa.Table, roles: dict[str, str]) -> QuasiIdentifiers | None:
    """The k of the combination of quasi-identifiers (None when no row is at risk)."""
    demographic = set(roles.values()) & {"sexe", "age", "naissance"}
    if len(roles) < 2 or not demographic or table.num_rows == 0:
        return None  # places alone (postcode, INSEE code) single no one out
    columns = {c: _Coded.of(table.column(c)) for c in roles}
    k = _smallest_group(list(columns.values()))
    if k >= K_THRESHOLD:
        return None
    return QuasiIdentifiers(roles, k, _generalisation(columns, roles))


@dataclass(frozen=True)
class _Coded:
    """A column as integer codes into its distinct values (as text): every coarser version
    is computed on the distinct values only, then mapped back through the codes."""

    codes: np.ndarray
    values: pd.Series

    @classmethod
    def of(cls, column: pa.ChunkedArray) -> _Coded:
        encoded = column.combine_chunks().dictionary_encode()
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        values = pd.Series([str(v) for v in encoded.dictionary.to_pylist()] + ["None"])
        return cls(np.where(codes < 0, len(values) - 1, codes), values)

    def mapped(self, coarser: pd.Series) -> _Coded:
        new_codes, uniques = pd.factorize(coarser)
        return _Coded(new_codes[self.codes], pd.Series(uniques))


def _smallest_group(columns: list[_Coded]) -> int:
    key = np.zeros(len(columns[0].codes), dtype=np.int64)
    for column in columns:
        key = pd.factorize(key * (len(column.values) + 1) + column.codes)[0].astype(np.int64)
    return int(np.bincount(key).min())


def _generalisation(columns: dict[str, _Coded], roles: dict[str, str]) -> dict[str, str] | None:
    """The first plan that reaches k = 11: coarser bands and codes for every column, then
    also one column left out (the one with the most distinct values first)."""
    for level in (1, 2, 3):
        coarser, plan = _coarser_plan(columns, roles, level)
        if plan and _smallest_group(list(coarser.values())) >= K_THRESHOLD:
            return plan
    for dropped in sorted(roles, key=lambda c: -len(columns[c].values)):
        kept = {c: r for c, r in roles.items() if c != dropped}
        coarser, plan = _coarser_plan({c: columns[c] for c in kept}, kept, 3)
        if _smallest_group(list(coarser.values())) >= K_THRESHOLD:
            return {dropped: "{traitement: supprimer}", **plan}
    return None


def _coarser_plan(
    columns: dict[str, _Coded], roles: dict[str, str], level: int
) -> tuple[dict[str, _Coded], dict[str, str]]:
    coarser, plan = dict(columns), {}
    for column, role in roles.items():
        values, treatment = _coarser(columns[column].values, role, level)
        if treatment:
            coarser[column] = columns[column].mapped(values)
            plan[column] = treatment
    return coarser, plan


def _coarser(values: pd.Series, role: str, level: int) -> tuple[pd.Series, str | None]:
    """Distinct values one level coarser, and the declaration (`generaliser`) that does it."""
    if role in {"age", "naissance"}:
        width = {1: 5, 2: 10, 3: 20}[level]
        years = pd.to_numeric(values.str.extract(r"(\d{1,4})")[0], errors="coerce")
        bands = (years // width * width).astype(str)
        return bands, f"{{traitement: generaliser, tranches: {width}}}"
    if role in {"code_postal", "code_insee"} and level >= 2:
        codes = values.str.strip()
        department = codes.str[:2].where(~codes.str.startswith("97"), codes.str[:3])
        return department, "{traitement: generaliser, niveau: departement}"
    if role == "iris":
        return values.str[:5], "{traitement: generaliser, niveau: commune}"
    return values, None
