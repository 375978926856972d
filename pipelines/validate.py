"""Check structure: apply a Table Schema to every row, vectorised with Arrow compute.

Semantics follow the Table Schema specification as frictionless implements it
(types, then constraints on the cells that have a valid type, unique values
after their first occurrence, blank rows skipped), so the same file yields the
same errors; the engine works on whole columns instead of cell by cell.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.problems import MAX_LISTED_PROBLEMS, Problem, Report
from core.structure import label_problems
from pipelines import structured_types as structured
from pipelines.read.table import SourceTable

STAGE = "structure"

# Our rule codes -> frictionless error types, for comparisons with the reference validator.
FRICTIONLESS_TYPES = {
    "type": "type-error",
    "obligatoire": "constraint-error",
    "enum": "constraint-error",
    "motif": "constraint-error",
    "minimum": "constraint-error",
    "maximum": "constraint-error",
    "longueur-min": "constraint-error",
    "longueur-max": "constraint-error",
    "unicite": "unique-error",
    "cle-primaire": "primary-key",
    "ligne-vide": "blank-row",
    "cellules-en-trop": "extra-cell",
    "cellules-manquantes": "missing-cell",
    "colonne-manquante": "missing-label",
    "colonne-en-trop": "extra-label",
    "colonne-mal-placee": "incorrect-label",
    "aucune-colonne-du-schema": "missing-label",
    "cle-etrangere": "foreign-key",
}

TYPE_LABELS = {
    "integer": "un nombre entier",
    "number": "un nombre",
    "boolean": "un booléen",
    "date": "une date",
    "datetime": "une date et heure (AAAA-MM-JJTHH:MM:SS)",
    "time": "une heure (HH:MM:SS)",
    "year": "une année (AAAA)",
    "yearmonth": "une année et un mois (AAAA-MM)",
    "duration": "une durée ISO 8601 (par exemple P1Y2M, PT30M)",
    "geojson": "un objet GeoJSON",
    "array": "un tableau JSON (par exemple [1, 2])",
    "object": "un objet JSON (par exemple {\"cle\": \"valeur\"})",
}
GEOPOINT_LABELS = {
    "default": "un point « longitude, latitude » (par exemple « 4.83, 45.76 »)",
    "array": "un point [longitude, latitude] (par exemple [4.83, 45.76])",
    "object": 'un point {"lon": longitude, "lat": latitude}',
}

DEFAULT_TRUE = ["true", "True", "TRUE", "1"]
DEFAULT_FALSE = ["false", "False", "FALSE", "0"]
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
ISO_DATETIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$"
NUMBER_PATTERN = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"


@dataclass
class ValidationResult:
    report: Report
    typed: pa.Table  # cast values; invalid cells are null


@dataclass
class _Cast:
    values: pa.Array  # typed values, null where the text was empty or invalid
    invalid: np.ndarray  # bool mask: text present but not of the type


def validate(source: SourceTable, schema: dict[str, Any]) -> ValidationResult:
    """Check every row of `source` against `schema`; never raises on bad data."""
    report = Report(rows_checked=source.table.num_rows)
    report.extend(source.problems)
    table = _apply_missing_values(source.table, schema.get("missingValues", [""]))
    _check_labels(table, schema, report)
    blank = _blank_rows(table)
    if blank.any():
        _record(report, source, blank, "ligne-vide", None, None, lambda _v: "Ligne vide.")
    typed_columns = {}
    primary_key = _primary_key(schema)
    decimal_comma = source.dialect is not None and source.dialect.decimal_comma
    for declared in schema.get("fields", []):
        name = declared["name"]
        if name not in table.column_names:
            continue
        column = table.column(name).combine_chunks()
        spec = _with_file_dialect(declared, decimal_comma, column)
        cast = _cast(column, spec)
        active = ~blank
        _check_cell_rules(report, source, column, cast, spec, name in primary_key, active)
        typed_columns[name] = cast.values
    if primary_key and all(name in typed_columns for name in primary_key):
        _check_primary_key(report, source, typed_columns, primary_key, ~blank)
    for foreign_key in _self_references(schema):
        if all(name in typed_columns for name in foreign_key[0] + foreign_key[1]):
            _check_foreign_key(report, source, typed_columns, foreign_key, ~blank)
    typed = pa.table(typed_columns) if typed_columns else pa.table({})
    return ValidationResult(report=report, typed=typed)


def _with_file_dialect(spec: dict[str, Any], decimal_comma: bool, text: pa.Array) -> dict[str, Any]:
    """A number field without an explicit decimal mark takes the one most of its cells use,
    in a file whose dialect has decimal commas (French spreadsheets): the few cells written
    the other way are then the ones reported."""
    if decimal_comma and spec.get("type") == "number" and "decimalChar" not in spec:
        commas = pc.sum(pc.match_substring_regex(text, r"^[+-]?\d*,\d+$")).as_py() or 0
        points = pc.sum(pc.match_substring_regex(text, r"^[+-]?\d*\.\d+$")).as_py() or 0
        if commas > points:
            return {**spec, "decimalChar": ","}
    return spec


# --- table-level rules -----------------------------------------------------------------------


def _apply_missing_values(table: pa.Table, missing: list[str]) -> pa.Table:
    extra = [value for value in missing if value != ""]
    if not extra:
        return table
    marker = pa.array(extra, type=pa.string())
    columns = [
        pc.if_else(pc.is_in(col, value_set=marker), pa.scalar(None, pa.string()), col)
        for col in table.columns
    ]
    return pa.Table.from_arrays(columns, names=table.column_names)


def _check_labels(table: pa.Table, schema: dict[str, Any], report: Report) -> None:
    """The file's columns against the schema's (`core.structure.label_problems`)."""
    for problem in label_problems(table.column_names, schema):
        report.add(problem)


def _blank_rows(table: pa.Table) -> np.ndarray:
    if table.num_columns == 0:
        return np.zeros(table.num_rows, dtype=bool)
    blank = np.ones(table.num_rows, dtype=bool)
    for column in table.columns:
        blank &= column.is_null().to_numpy(zero_copy_only=False)
    return blank


def _primary_key(schema: dict[str, Any]) -> list[str]:
    key = schema.get("primaryKey") or []
    return [key] if isinstance(key, str) else list(key)


def _check_primary_key(
    report: Report,
    source: SourceTable,
    columns: dict[str, pa.Array],
    key: list[str],
    active: np.ndarray,
) -> None:
    frame = pd.DataFrame({name: columns[name].to_pandas() for name in key})
    complete = frame.notna().all(axis=1).to_numpy() & active
    duplicated = frame.duplicated(keep="first").to_numpy() & complete
    # As frictionless: a key all of whose cells are empty is an error; a partly empty one
    # is not (its empty cells are only wrong if the fields say "required").
    empty = np.ones(len(frame), dtype=bool)
    for name in key:
        empty &= source.table.column(name).is_null().to_numpy(zero_copy_only=False)
    incomplete = empty & active
    label = ", ".join(key)
    _record(
        report,
        source,
        incomplete,
        "cle-primaire",
        label,
        None,
        None,
        message_at=lambda _i: f"La clé primaire ({label}) est vide.",
    )
    if not duplicated.any():
        return
    texts = [source.table.column(name) for name in key]

    def message(index: int) -> str:
        values = ", ".join(str(t[index].as_py()) for t in texts)
        return f"La clé primaire ({label}) = ({values}) est déjà utilisée plus haut."

    _record(report, source, duplicated, "cle-primaire", label, None, None, message_at=message)


def _as_list(names: str | list[str]) -> list[str]:
    return [names] if isinstance(names, str) else list(names)


def _self_references(schema: dict[str, Any]) -> list[tuple[list[str], list[str]]]:
    """Foreign keys to the resource itself (`"resource": ""`): the only ones one file can
    honour; a reference to another resource is the data package's business."""
    keys = []
    for key in schema.get("foreignKeys", []):
        reference = key.get("reference", {})
        if reference.get("resource", "") == "":
            keys.append((_as_list(key["fields"]), _as_list(reference["fields"])))
    return keys


def _check_foreign_key(
    report: Report,
    source: SourceTable,
    columns: dict[str, pa.Array],
    foreign_key: tuple[list[str], list[str]],
    active: np.ndarray,
) -> None:
    fields, targets = foreign_key
    values = pd.DataFrame({name: columns[name].to_pandas() for name in fields})
    known = pd.DataFrame({name: columns[name].to_pandas() for name in targets})
    complete = values.notna().all(axis=1).to_numpy() & active
    found = pd.MultiIndex.from_frame(values).isin(pd.MultiIndex.from_frame(known))
    dangling = complete & ~np.asarray(found)
    label, target = ", ".join(fields), ", ".join(targets)
    texts = [source.table.column(name) for name in fields]

    def message(index: int) -> str:
        shown = ", ".join(str(t[index].as_py()) for t in texts)
        return (
            f"La valeur ({shown}) de ({label}) ne se retrouve dans aucune ligne du fichier en "
            f"({target}), comme le veut la clé étrangère du schéma."
        )

    _record(report, source, dangling, "cle-etrangere", label, None, None, message_at=message)


# --- cell-level rules ------------------------------------------------------------------------


def _check_cell_rules(
    report: Report,
    source: SourceTable,
    text: pa.Array,
    cast: _Cast,
    spec: dict[str, Any],
    in_primary_key: bool,
    active: np.ndarray,
) -> None:
    name = spec["name"]
    constraints = spec.get("constraints", {})
    present = text.is_valid().to_numpy(zero_copy_only=False) & active
    invalid = cast.invalid & active
    if invalid.any():
        label = _type_label(spec)
        _record(
            report, source, invalid, "type", name, text, lambda v: f"« {v} » n'est pas {label}."
        )
    if constraints.get("required"):
        missing = ~present & active
        _record(
            report,
            source,
            missing,
            "obligatoire",
            name,
            text,
            lambda _v: "Valeur manquante : cette colonne est obligatoire.",
        )
    valid = present & ~invalid
    for rule, check in _CONSTRAINT_CHECKS.items():
        if rule in constraints:
            failing, describe = check(text, cast.values, constraints[rule], spec)
            _record(report, source, failing & valid, _RULE_NAMES[rule], name, text, describe)
    if constraints.get("unique"):
        duplicated = _duplicated(cast.values, valid)
        _record(
            report,
            source,
            duplicated,
            "unicite",
            name,
            text,
            lambda v: f"« {v} » apparaît déjà plus haut : les valeurs doivent être uniques.",
        )


def _duplicated(values: pa.Array, valid: np.ndarray) -> np.ndarray:
    series = values.to_pandas()
    duplicated = series.duplicated(keep="first").to_numpy()
    # Invalid or empty cells never count as duplicates, nor as first occurrences.
    first_valid = series.where(valid).duplicated(keep="first").to_numpy()
    return duplicated & first_valid & valid


def _record(
    report: Report,
    source: SourceTable,
    mask: np.ndarray,
    rule: str,
    column: str | None,
    text: pa.Array | None,
    describe: Callable[[Any], str] | None,
    message_at: Callable[[int], str] | None = None,
) -> None:
    indices = np.flatnonzero(mask)
    if len(indices) == 0:
        return
    listed = indices[:MAX_LISTED_PROBLEMS]
    rows = source.row_number(listed)
    values = text.take(pa.array(listed)).to_pylist() if text is not None else [None] * len(listed)
    problems = []
    for index, row, value in zip(listed, rows, values, strict=True):
        message = message_at(int(index)) if message_at else describe(value)  # type: ignore[misc]
        shown = None if value is None else str(value)[:200]
        feature = source.feature(int(index))
        problems.append(Problem(STAGE, rule, message, int(row), column, shown, feature))
    report.add_many(problems, total=len(indices))


def _type_label(spec: dict[str, Any]) -> str:
    kind = spec.get("type", "string")
    if kind == "date":
        fmt = spec.get("format", "default")
        shown = {"default": "AAAA-MM-JJ", "%d/%m/%Y": "JJ/MM/AAAA"}.get(fmt, fmt)
        return f"une date au format {shown}"
    if kind == "boolean":
        values = spec.get("trueValues", DEFAULT_TRUE) + spec.get("falseValues", DEFAULT_FALSE)
        return f"un booléen (valeurs acceptées : {', '.join(values)})"
    if kind == "number" and spec.get("decimalChar", ".") != ".":
        return f"un nombre (décimales avec « {spec['decimalChar']} »)"
    if kind == "string":
        return f"une chaîne au format {spec.get('format')}"
    if kind == "geopoint":
        return GEOPOINT_LABELS.get(spec.get("format", "default"), GEOPOINT_LABELS["default"])
    if kind in {"datetime", "time"} and spec.get("format", "default") not in ("default", "any"):
        return f"{TYPE_LABELS[kind].split(' (')[0]} au format {spec['format']}"
    return TYPE_LABELS.get(kind, kind)


# --- types -----------------------------------------------------------------------------------


def _cast(text: pa.Array, spec: dict[str, Any]) -> _Cast:
    caster = _CASTERS.get(spec.get("type", "string"), _cast_string)
    values = caster(text, spec)
    present = text.is_valid().to_numpy(zero_copy_only=False)
    invalid = present & values.is_null().to_numpy(zero_copy_only=False)
    return _Cast(values=values, invalid=invalid)


def _where(matches: pa.Array, values: pa.Array) -> pa.Array:
    return pc.if_else(matches, values, pa.scalar(None, values.type))


def _cast_string(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    patterns = {
        "email": r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        "uri": r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$",
        "uuid": r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
    }
    pattern = patterns.get(spec.get("format", "default"))
    if pattern is None:
        return text
    return _where(pc.match_substring_regex(text, pattern), text)


def _numeric_text(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    group = spec.get("groupChar")
    if group:
        text = pc.replace_substring(text, group, "")
    decimal = spec.get("decimalChar", ".")
    if decimal != ".":
        # A point is then neither the decimal mark nor allowed: make such cells fail the pattern.
        text = pc.replace_substring(pc.replace_substring(text, ".", "#"), decimal, ".")
    return text


def _arrow_cast(text: pa.Array, target: pa.DataType) -> pa.Array | None:
    """Arrow's own cast of the whole column, when every cell takes it (the common case: a
    clean file costs one pass per column); None at the first cell that does not, for the
    caller's cell-by-cell path, which says which cells are wrong."""
    try:
        return pc.cast(text, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _any_x(text: pa.Array) -> bool:
    return bool(pc.any(pc.match_substring(text, "x", ignore_case=True)).as_py())


def _same_lengths(text: pa.Array, length: int) -> bool:
    lengths = pc.min_max(pc.utf8_length(text)).as_py()
    return lengths["min"] in (None, length) and lengths["max"] in (None, length)


def _cast_integer(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    # Arrow's cast where it reads what the pattern below accepts: up to 18 characters (the
    # pattern's 18 digits), no hexadecimal ("0x10", which Arrow reads too).
    short = (pc.max(pc.utf8_length(text)).as_py() or 0) <= 18
    if short and not spec.get("groupChar") and not _any_x(text):
        fast = _arrow_cast(text, pa.int64())
        if fast is not None:
            return fast
    text = _numeric_text(text, {"groupChar": spec.get("groupChar")})
    ok = pc.match_substring_regex(text, r"^[+-]?\d{1,18}$")
    unsigned = pc.replace_substring_regex(text, r"^\+", "")  # Arrow refuses "+5"
    return pc.cast(_where(ok, unsigned), pa.int64())


def _cast_number(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    if not spec.get("groupChar") and spec.get("decimalChar", ".") == ".":
        fast = _arrow_cast(text, pa.float64())
        # Arrow also reads "inf", "nan"…: those take the path that says which are allowed.
        if fast is not None and pc.all(pc.is_finite(fast)).as_py() is not False:
            return fast
    text = _numeric_text(text, spec)
    ok = pc.match_substring_regex(text, NUMBER_PATTERN)
    special = pc.is_in(text, value_set=pa.array(["NaN", "INF", "-INF"]))
    usable = pc.or_(ok, special)
    cleaned = pc.replace_substring(
        pc.replace_substring(_where(usable, text), "INF", "inf"), "NaN", "nan"
    )
    return pc.cast(cleaned, pa.float64())


def _cast_boolean(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    true_values = pa.array(spec.get("trueValues", DEFAULT_TRUE), type=pa.string())
    false_values = pa.array(spec.get("falseValues", DEFAULT_FALSE), type=pa.string())
    is_true = pc.is_in(text, value_set=true_values)
    is_false = pc.is_in(text, value_set=false_values)
    return _where(pc.or_(is_true, is_false), is_true)


def _strptime(text: pa.Array, fmt: str) -> pa.Array:
    """Parse dates strictly: Arrow rolls 2024-02-30 over to March, so check the round trip."""
    parsed = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
    if "%z" in fmt:
        return parsed
    same = pc.equal(_unpadded(pc.strftime(parsed, format=fmt)), _unpadded(text))
    return _where(pc.fill_null(same, False), parsed)


def _unpadded(text: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(text, r"(^|\D)0+(\d)", r"\1\2")


def _iso_cast(text: pa.Array, pattern: str, target: pa.DataType) -> pa.Array | None:
    """Arrow's own ISO 8601 cast of the cells shaped like `pattern` (fast, and strict about
    calendar days); None when one of them is no real date, for the caller's strict path."""
    try:
        return pc.cast(_where(pc.match_substring_regex(text, pattern), text), target)
    except pa.ArrowInvalid:
        return None


def _cast_date(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    fmt = spec.get("format", "default")
    if fmt not in ("default", "any"):
        return pc.cast(_strptime(text, fmt), pa.date32())
    # Arrow reads exactly AAAA-MM-JJ (checking the calendar) from ten characters.
    parsed = _arrow_cast(text, pa.date32()) if _same_lengths(text, 10) else None
    if parsed is None:
        parsed = _iso_cast(text, ISO_DATE, pa.date32())
    if parsed is None:
        iso = pc.match_substring_regex(text, ISO_DATE)
        parsed = pc.cast(_where(iso, _strptime(text, "%Y-%m-%d")), pa.date32())
    if fmt == "any":
        parsed = pc.coalesce(parsed, pc.cast(_strptime(text, "%d/%m/%Y"), pa.date32()))
    return parsed


def _cast_datetime(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    fmt = spec.get("format", "default")
    if fmt not in ("default", "any"):
        return _strptime(text, fmt)
    naive = _iso_cast(text, ISO_DATETIME, pa.timestamp("s"))
    if naive is None:
        naive = _strptime(text, "%Y-%m-%dT%H:%M:%S")
    if fmt == "any":
        naive = pc.coalesce(naive, _strptime(text, "%Y-%m-%d %H:%M:%S"))
    if not pc.any(pc.and_(text.is_valid(), naive.is_null())).as_py():
        return naive
    with_offset = pc.replace_substring_regex(text, r"Z$", "+0000")
    utc = pc.cast(_strptime(with_offset, "%Y-%m-%dT%H:%M:%S%z"), pa.timestamp("s"))
    return pc.coalesce(naive, utc)


def _cast_time(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    fmt = spec.get("format", "default")
    if fmt not in ("default", "any"):
        return _where(pc.is_valid(_strptime(text, fmt)), text)
    return _where(pc.match_substring_regex(text, r"^([01]\d|2[0-3]):[0-5]\d:[0-5]\d$"), text)


def _cast_year(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    return pc.cast(_where(pc.match_substring_regex(text, r"^\d{4}$"), text), pa.int64())


_CASTERS: dict[str, Callable[[pa.Array, dict[str, Any]], pa.Array]] = {
    "string": _cast_string,
    "any": lambda text, _spec: text,
    "integer": _cast_integer,
    "number": _cast_number,
    "boolean": _cast_boolean,
    "date": _cast_date,
    "datetime": _cast_datetime,
    "time": _cast_time,
    "year": _cast_year,
    "yearmonth": structured.cast_yearmonth,
    "duration": structured.cast_duration,
    "geopoint": structured.cast_geopoint,
    "geojson": structured.cast_geojson,
    "array": structured.cast_array,
    "object": structured.cast_object,
}


# --- constraints -----------------------------------------------------------------------------

ConstraintCheck = Callable[
    [pa.Array, pa.Array, Any, dict[str, Any]], tuple[np.ndarray, Callable[[Any], str]]
]


def _mask(array: pa.Array) -> np.ndarray:
    return pc.fill_null(array, False).to_numpy(zero_copy_only=False)


def _schema_values(written: list[Any], spec: dict[str, Any]) -> pa.Array:
    """Values written in the schema (JSON numbers, or text in the field's date format),
    typed like the column; the file's decimal and group marks do not apply to them."""
    in_schema = {k: v for k, v in spec.items() if k not in {"decimalChar", "groupChar"}}
    text = pa.array(
        ["true" if w is True else "false" if w is False else str(w) for w in written],
        type=pa.string(),
    )
    return _cast(text, in_schema).values


def _bound(values: pa.Array, limit: Any, spec: dict[str, Any]) -> pa.Scalar:
    bound = _schema_values([limit], spec)[0]
    if not bound.is_valid:
        return pa.scalar(limit).cast(values.type)
    return bound.cast(values.type)


def _check_minimum(text: pa.Array, values: pa.Array, limit: Any, spec: dict[str, Any]):
    failing = _mask(pc.less(values, _bound(values, limit, spec)))
    return failing, lambda v: f"« {v} » est inférieur au minimum autorisé ({limit})."


def _check_maximum(text: pa.Array, values: pa.Array, limit: Any, spec: dict[str, Any]):
    failing = _mask(pc.greater(values, _bound(values, limit, spec)))
    return failing, lambda v: f"« {v} » est supérieur au maximum autorisé ({limit})."


def _check_exclusive_minimum(text: pa.Array, values: pa.Array, limit: Any, spec: dict[str, Any]):
    failing = _mask(pc.less_equal(values, _bound(values, limit, spec)))
    return failing, lambda v: f"« {v} » doit être strictement supérieur à {limit}."


def _check_exclusive_maximum(text: pa.Array, values: pa.Array, limit: Any, spec: dict[str, Any]):
    failing = _mask(pc.greater_equal(values, _bound(values, limit, spec)))
    return failing, lambda v: f"« {v} » doit être strictement inférieur à {limit}."


def _check_min_length(text: pa.Array, values: pa.Array, limit: Any, spec: dict[str, Any]):
    failing = _mask(pc.less(pc.utf8_length(text), limit))
    return failing, lambda v: f"« {v} » est trop court (au moins {limit} caractères)."


def _check_max_length(text: pa.Array, values: pa.Array, limit: Any, spec: dict[str, Any]):
    failing = _mask(pc.greater(pc.utf8_length(text), limit))
    return failing, lambda v: f"« {str(v)[:40]}… » est trop long (au plus {limit} caractères)."


def _check_pattern(text: pa.Array, values: pa.Array, pattern: Any, spec: dict[str, Any]):
    anchored = f"^(?:{pattern})$"
    try:
        matches = pc.match_substring_regex(text, anchored)
    except pa.ArrowInvalid:
        # RE2 (Arrow) lacks what Python's `re`, frictionless's engine, has: backreferences,
        # escaped accented letters… Such patterns run in Python, once per distinct value.
        compiled = re.compile(anchored)
        matches = pc.is_valid(structured.keep_valid(text, lambda v: bool(compiled.match(v))))
    failing = _mask(pc.invert(matches))
    return failing, lambda v: f"« {v} » ne respecte pas le motif attendu « {pattern} »."


def _check_enum(text: pa.Array, values: pa.Array, allowed: Any, spec: dict[str, Any]):
    allowed_values = _schema_values(allowed, spec)
    failing = _mask(pc.invert(pc.is_in(values, value_set=allowed_values)))
    shown = ", ".join(str(a) for a in allowed)
    return failing, lambda v: f"« {v} » ne fait pas partie des valeurs autorisées : {shown}."


_CONSTRAINT_CHECKS: dict[str, ConstraintCheck] = {
    "minimum": _check_minimum,
    "maximum": _check_maximum,
    "exclusiveMinimum": _check_exclusive_minimum,
    "exclusiveMaximum": _check_exclusive_maximum,
    "minLength": _check_min_length,
    "maxLength": _check_max_length,
    "pattern": _check_pattern,
    "enum": _check_enum,
}

_RULE_NAMES = {
    "minimum": "minimum",
    "maximum": "maximum",
    "exclusiveMinimum": "minimum",
    "exclusiveMaximum": "maximum",
    "minLength": "longueur-min",
    "maxLength": "longueur-max",
    "pattern": "motif",
    "enum": "enum",
}
