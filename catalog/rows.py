"""Query a release's rows without downloading it: filters, columns, sort, keyset pages.

Each release gets, on first use, a SQLite copy of its rows beside its files (immutable,
like the release; built under a temporary name, then renamed). Pages are keyset pages
(`WHERE (sort key, rowid) > cursor ... LIMIT n`), so a page deep in the table costs what
the first one does; an index is added to a column the first time rows are sorted by it.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from catalog.formats import build_once, exclusive
from pipelines.vocabularies import normalise_label

OPERATORS = {"eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
TEXT_OPERATORS = ("in", "contains")
OPERATOR_NAMES = {*OPERATORS, *TEXT_OPERATORS}
SQLITE_INTEGER = 2**63 - 1
TRUE_WORDS, FALSE_WORDS = {"true", "1", "oui", "vrai"}, {"false", "0", "non", "faux"}
MAX_PAGE = 1000
GEOMETRY = "__geojson"


class QueryError(ValueError):
    """A query a reuser can correct (French message)."""


@dataclass
class RowQuery:
    filters: list[tuple[str, str]] = field(default_factory=list)  # "colonne__op", value
    columns: list[str] | None = None
    sort: str | None = None  # column, "-column" for descending
    size: int = 100
    cursor: str | None = None
    offset: int | None = None
    total: bool = False


@dataclass
class Page:
    columns: list[str]
    rows: list[dict[str, Any]]
    geometries: list[str | None] | None
    next_cursor: str | None
    total: int | None


def rows_database(parquet: Path, schema: dict[str, Any]) -> Path:
    """The SQLite copy of a release's rows, made once."""
    target = parquet.parent / "derived" / f"{parquet.stem}-lignes.sqlite"
    dates = {f["name"] for f in schema.get("fields", []) if f.get("type") == "date"}
    return build_once(target, lambda path: _load(parquet, path, dates))


def _load(parquet: Path, database: Path, dates: set[str]) -> None:
    geographic = b"geo" in (pq.read_schema(parquet).metadata or {})
    if geographic:
        frame = gpd.read_parquet(parquet)
        geometry = frame.geometry.to_crs(4326)
        table = pa.Table.from_pandas(frame.drop(columns=frame.geometry.name), preserve_index=False)
        table = table.append_column(GEOMETRY, pa.array(shapely.to_geojson(geometry.values)))
    else:
        table = pq.read_table(parquet)
    for name in dates & set(table.column_names):  # map formats store dates as timestamps
        position = table.column_names.index(name)
        table = table.set_column(position, name, pc.cast(table.column(name), pa.date32()))
    names = table.column_names
    with sqlite3.connect(database) as conn:
        columns = ", ".join(
            f"{_quote(n)} {_sqlite_type(table.schema.field(n).type)}" for n in names
        )
        conn.execute(f"CREATE TABLE lignes ({columns})")
        placeholders = ", ".join("?" for _ in names)
        for batch in table.to_batches(max_chunksize=50_000):
            values = [batch.column(i).to_pylist() for i in range(len(names))]
            conn.executemany(
                f"INSERT INTO lignes VALUES ({placeholders})",
                zip(*[[_sqlite_value(v) for v in col] for col in values], strict=True),
            )


def _sqlite_type(kind: pa.DataType) -> str:
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind):
        return "INTEGER"
    if pa.types.is_floating(kind):
        return "REAL"
    return "TEXT"


def _sqlite_value(value: Any) -> Any:
    if value is None or isinstance(value, int | float | str):
        return value
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def run(database: Path, schema: dict[str, Any], query: RowQuery) -> Page:
    types = {f["name"]: f.get("type", "string") for f in schema.get("fields", [])}
    chosen = query.columns or list(types)
    filters = [_filter(name, value, types) for name, value in query.filters]
    unknown = [c for c in chosen + [c for c, _, _ in filters] if c not in types]
    sort_column = (query.sort or "").lstrip("-") or None
    if sort_column and sort_column not in types:
        unknown.append(sort_column)
    if unknown:
        raise QueryError(
            f"Colonne(s) inconnue(s) : {', '.join(sorted(set(unknown)))}. "
            f"Colonnes : {', '.join(types)}."
        )
    if not 1 <= query.size <= MAX_PAGE:
        raise QueryError(f"« _taille » va de 1 à {MAX_PAGE}.")
    where, parameters = _where(filters, types)
    descending = bool(query.sort and query.sort.startswith("-"))
    if sort_column:
        _ensure_index(database, sort_column)  # before reading, from a connection that writes
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as conn:
        conn.create_function("sans_accents", 1, _plain_text, deterministic=True)
        geographic = GEOMETRY in {r[1] for r in conn.execute("PRAGMA table_info(lignes)")}
        total = None
        if query.total:
            total = conn.execute(
                f"SELECT count(*) FROM lignes{_clause(where)}", parameters
            ).fetchone()[0]
        keyset, key_parameters = _after(query.cursor, sort_column, descending)
        order = _order(sort_column, descending)
        selected = ", ".join(_quote(c) for c in chosen)
        extra = f", {GEOMETRY}" if geographic else ""
        sql = (
            f"SELECT rowid, {_quote(sort_column) + ', ' if sort_column else ''}{selected}"
            f"{extra} FROM lignes{_clause(where + keyset)} ORDER BY {order} LIMIT ?"
        )
        arguments = parameters + key_parameters + [query.size + 1]
        if query.offset:
            sql += " OFFSET ?"
            arguments.append(query.offset)
        fetched = conn.execute(sql, arguments).fetchall()
    more = len(fetched) > query.size
    fetched = fetched[: query.size]
    skip = 2 if sort_column else 1
    rows = [dict(zip(chosen, row[skip : skip + len(chosen)], strict=True)) for row in fetched]
    for row in rows:
        for name in row:
            if types[name] == "boolean" and row[name] is not None:
                row[name] = bool(row[name])
    geometries = [row[-1] for row in fetched] if geographic else None
    next_cursor = None
    if more and fetched and not query.offset:
        last = fetched[-1]
        next_cursor = _encode([last[1] if sort_column else None, last[0]])
    return Page(chosen, rows, geometries, next_cursor, total)


def _filter(name: str, value: str, types: dict[str, str]) -> tuple[str, str, str]:
    """`colonne=valeur` or `colonne__op=valeur`; a column whose own name holds "__" keeps
    it."""
    if name in types:
        return name, "eq", value
    column, _, operator = name.rpartition("__")
    return (column, operator, value) if column else (name, "eq", value)


def _where(filters: list[tuple[str, str, str]], types: dict[str, str]) -> tuple[list, list]:
    clauses, parameters = [], []
    for column, operator, raw in filters:
        if operator == "in":
            values = [_typed(v, types[column]) for v in raw.split(",")]
            clauses.append(f"{_quote(column)} IN ({', '.join('?' for _ in values)})")
            parameters.extend(values)
        elif operator == "contains":
            clauses.append(f"instr(sans_accents({_quote(column)}), ?) > 0")
            parameters.append(normalise_label(raw))
        elif operator in OPERATORS:
            clauses.append(f"{_quote(column)} {OPERATORS[operator]} ?")
            parameters.append(_typed(raw, types[column]))
        else:
            raise QueryError(
                f"Opérateur « {operator} » inconnu. Opérateurs : "
                f"{', '.join([*OPERATORS, *TEXT_OPERATORS])}."
            )
    return clauses, parameters


def bounded_int(raw: str) -> int:
    """An integer SQLite can hold, or a QueryError."""
    try:
        value = int(raw)
    except ValueError as error:
        raise QueryError(f"« {raw} » n'est pas un nombre entier.") from error
    if abs(value) > SQLITE_INTEGER:
        raise QueryError(f"« {raw} » est un nombre trop grand.")
    return value


def _typed(raw: str, kind: str) -> Any:
    try:
        if kind in {"integer", "year"}:
            return bounded_int(raw)
        if kind == "number":
            return float(raw.replace(",", "."))
    except (ValueError, QueryError) as error:
        raise QueryError(f"« {raw} » n'est pas une valeur de type {kind}.") from error
    if kind == "boolean":
        if raw.lower() in TRUE_WORDS | FALSE_WORDS:
            return 1 if raw.lower() in TRUE_WORDS else 0
        raise QueryError(f"« {raw} » n'est pas une valeur de type boolean (true ou false).")
    return raw


def _plain_text(value: Any) -> str | None:
    """SQLite's lower() knows only ASCII: text search is accent- and case-insensitive."""
    return None if value is None else normalise_label(str(value))


def _clause(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def _order(column: str | None, descending: bool) -> str:
    if not column:
        return "rowid"
    direction = "DESC" if descending else "ASC"
    # NULLs sort as the smallest values; rowid breaks ties, so the keyset is total.
    return f"{_quote(column)} {direction}, rowid {direction}"


def _after(cursor: str | None, column: str | None, descending: bool) -> tuple[list, list]:
    if not cursor:
        return [], []
    try:
        value, rowid = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        valid = (
            isinstance(rowid, int)
            and 0 <= rowid <= SQLITE_INTEGER
            and (
                value is None
                or isinstance(value, str | float)
                or (isinstance(value, int) and abs(value) <= SQLITE_INTEGER)
            )
        )
    except (ValueError, TypeError) as error:
        valid = False
        cause: Exception | None = error
    else:
        cause = None
    if not valid:
        raise QueryError("Curseur « _apres » invalide : reprenez le lien « suivant ».") from cause
    if not column:
        return ["rowid > ?"], [rowid]
    sign = "<" if descending else ">"
    quoted = _quote(column)
    if value is None:
        if descending:  # after the NULLs, which come last in descending order: nothing
            return [f"{quoted} IS NULL AND rowid < ?"], [rowid]
        return [f"(({quoted} IS NULL AND rowid > ?) OR {quoted} IS NOT NULL)"], [rowid]
    tie = f"({quoted} = ? AND rowid {sign} ?)"
    beyond = f"{quoted} {sign} ?"
    if descending:
        return [f"({beyond} OR {tie} OR {quoted} IS NULL)"], [value, value, rowid]
    return [f"({beyond} OR {tie})"], [value, value, rowid]


def _encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _ensure_index(database: Path, column: str) -> None:
    name = _quote(f"tri_{column}")
    with exclusive(database), sqlite3.connect(database, timeout=30) as conn:
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON lignes ({_quote(column)})")
