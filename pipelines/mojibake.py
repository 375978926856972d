"""Mojibake: text encoded twice (UTF-8 read as Windows-1252, then saved again as UTF-8).

`MÃ©rieux` for `Mérieux`, `Lyon 4 Ã¨me` for `Lyon 4 ème`: a file that went through a
spreadsheet or an export twice. Such values are published as they are nowhere else: a
search for `Mérieux` would not find them. ftfy (a well-kept library that reverses exactly
these encode/decode mistakes) repairs them; each repair is counted per column in the
report. A value ftfy recognises as broken but cannot restore is refused, with its row.

Only cells holding the byte patterns of mojibake are handed to ftfy, once per distinct
value: a file without any costs one vectorised scan per text column.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core.problems import MAX_LISTED_PROBLEMS, Problem, Repair, Report

STAGE = "lecture"
# UTF-8 lead bytes of accented letters (Ã, Â, â) read as Windows-1252, then a continuation
# byte read the same way: the fingerprint of every French mojibake.
SUSPECT = (
    r"[ÃÂâÅÆ][\x{80}-\x{bf}\x{152}\x{153}\x{160}\x{161}\x{178}\x{17d}\x{17e}\x{192}"
    r"\x{2c6}\x{2dc}\x{2013}-\x{2026}\x{2030}\x{2039}\x{203a}\x{20ac}\x{2122}]"
)

# A lead byte whose continuation was lost (the value was cut mid-character): not restorable.
CUT = re.compile(r"[ÃÂ](\s|$)")


def repair_mojibake(
    table: pa.Table, report: Report, row_number: Callable[[np.ndarray], np.ndarray]
) -> pa.Table:
    """The table with its doubly encoded values restored; repairs and refusals in `report`."""
    for position, name in enumerate(table.column_names):
        column = table.column(name)
        if not _may_hold_mojibake(column):
            continue
        suspect = pc.fill_null(pc.match_substring_regex(column, SUSPECT), False)
        if not pc.any(suspect).as_py():
            continue
        fixes, broken = _fixes(pc.unique(pc.filter(column, suspect)).to_pylist())
        if fixes:
            table = table.set_column(position, name, _replaced(column, fixes))
            count = int(pc.sum(pc.is_in(column, value_set=pa.array(list(fixes)))).as_py())
            report.repairs.append(_repair(name, count, fixes))
        if broken:
            _refuse(column, broken, name, report, row_number)
    return table


# UTF-8 of Ã, Â, â, Å, Æ: C3 then one of these bytes. Any mojibake holds one of them.
LEAD_SECOND_BYTES = np.array([0x82, 0x83, 0xA2, 0x85, 0x86], dtype=np.uint8)


def _may_hold_mojibake(column: pa.ChunkedArray) -> bool:
    """A look at the column's bytes (no copy): most columns are let go here, in
    milliseconds, before any pattern runs on their values."""
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        return False
    for chunk in column.chunks:
        data = chunk.buffers()[2]
        if data is None:
            continue
        text = np.frombuffer(data, dtype=np.uint8)
        leads = np.flatnonzero(text[:-1] == 0xC3)
        if leads.size and np.isin(text[leads + 1], LEAD_SECOND_BYTES).any():
            return True
    return False


def _fixes(values: list[str]) -> tuple[dict[str, str], set[str]]:
    """Repairable values with their repair, and values ftfy finds broken but cannot mend."""
    import ftfy  # only for files holding suspect bytes

    fixes, broken = {}, set()
    for value in values:
        if not ftfy.badness.is_bad(value):
            continue  # legitimate text that only looks suspicious ("SÃO PAULO")
        fixed = ftfy.fix_encoding(value)
        if fixed != value and not ftfy.badness.is_bad(fixed) and not CUT.search(fixed):
            fixes[value] = fixed
        else:
            broken.add(value)
    return fixes, broken


def _replaced(column: pa.ChunkedArray, fixes: dict[str, str]) -> pa.Array:
    before = pa.array(list(fixes), type=pa.string())
    after = pa.array(list(fixes.values()), type=pa.string())
    index = pc.index_in(column, value_set=before)
    return pc.if_else(pc.is_valid(index), pc.take(after, index), column)


def _repair(name: str, count: int, fixes: dict[str, str]) -> Repair:
    before, after = next(iter(fixes.items()))
    return Repair(
        STAGE,
        "encodage-double-repare",
        name,
        count,
        f"{count} valeur(s) encodée(s) deux fois (UTF-8 relu en Windows-1252) rétablie(s), "
        f"par exemple « {before[:60]} » → « {after[:60]} ». Enregistrez le fichier en UTF-8 "
        "une seule fois pour éviter cette réparation.",
    )


def _refuse(
    column: pa.ChunkedArray,
    broken: set[str],
    name: str,
    report: Report,
    row_number: Callable[[np.ndarray], np.ndarray],
) -> None:
    where = pc.is_in(column, value_set=pa.array(sorted(broken), type=pa.string()))
    indexes = np.flatnonzero(pc.fill_null(where, False).to_numpy(zero_copy_only=False))
    listed = indexes[:MAX_LISTED_PROBLEMS]
    problems = [
        Problem(
            STAGE,
            "encodage-casse",
            f"« {column[int(index)].as_py()[:60]} » : caractères mal encodés que la plateforme "
            "ne peut pas rétablir sans risque. Réenregistrez le fichier en UTF-8 depuis le "
            "logiciel d'origine.",
            row=int(row),
            column=name,
        )
        for index, row in zip(listed, row_number(listed), strict=True)
    ]
    report.add_many(problems, total=int(indexes.size))
