"""Query a release's rows without downloading it: filters, columns, sort, keyset pages.

Each release has a SQLite copy of its rows beside its files (immutable, like the release;
written by the store at publication, `catalog.store.rows_copy`); on the PostGIS store, the
release's table there answers instead when it can (`run_postgis`). Pages are keyset pages
(`WHERE (sort key, rowid) > cursor ... LIMIT n`), so a page deep in the table costs what
the first one does; an index is added to a column the first time rows are sorted by it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import sqlite3
import threading
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql as psql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from catalog.store.downloads import exclusive
from catalog.store.postgis import DATA_SCHEMA, FID, libpq_dsn, table_name
from catalog.store.rows_copy import GEOMETRY, quote_name
from catalog.store.rows_copy import rows_database as rows_database  # the routes' entry
from core.records import Release
from core.vocabularies import normalise_label

OPERATORS = {"eq": "=", "ne": "!=", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
TEXT_OPERATORS = ("in", "contains")
OPERATOR_NAMES = {*OPERATORS, *TEXT_OPERATORS}
SQLITE_INTEGER = 2**63 - 1
TRUE_WORDS, FALSE_WORDS = {"true", "1", "oui", "vrai"}, {"false", "0", "non", "faux"}
MAX_PAGE = 1000


class QueryError(ValueError):
    """A query a reuser can correct (French message)."""


class StaleCatalogue(RuntimeError):  # noqa: N818 (a state, not a failure)
    """The catalogue changed since the generation the caller's look-ups were made at: the
    page was read in a snapshot where they may no longer hold."""


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


@dataclass
class _Checked:
    """A query once checked against the release's Table Schema."""

    types: dict[str, str]
    chosen: list[str]
    filters: list[tuple[str, str, str]]  # column, operator, raw value
    sort_column: str | None
    descending: bool


def _check(schema: dict[str, Any], query: RowQuery) -> _Checked:
    """The query's columns, filters and sort, or the QueryError a reuser can correct."""
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
    descending = bool(query.sort and query.sort.startswith("-"))
    return _Checked(types, chosen, filters, sort_column, descending)


def run(
    database: Path, schema: dict[str, Any], query: RowQuery, row_count: int | None = None
) -> Page:
    """The page from the release's SQLite copy; `row_count`, the release's stored count of
    rows, answers `_total` without filters (counting a million rows takes a while)."""
    checked = _check(schema, query)
    types, chosen, sort_column = checked.types, checked.chosen, checked.sort_column
    where, parameters = _where(checked.filters, types)
    descending = checked.descending
    if sort_column:
        _ensure_index(database, sort_column)  # before reading, from a connection that writes
    reader = _reader(database)
    conn, geographic = reader.connection, reader.geographic
    total = None
    if query.total:
        total = row_count if row_count is not None and not where else None
        if total is None:
            total = conn.execute(f"SELECT count(*) FROM lignes{_clause(where)}", parameters)
            total = total.fetchone()[0]
    keyset, key_parameters = _after(query.cursor, sort_column, descending)
    order = _order(sort_column, descending)
    selected = ", ".join(quote_name(c) for c in chosen)
    extra = f", {GEOMETRY}" if geographic else ""
    sql = (
        f"SELECT rowid, {quote_name(sort_column) + ', ' if sort_column else ''}{selected}"
        f"{extra} FROM lignes{_clause(where + keyset)} ORDER BY {order} LIMIT ?"
    )
    arguments = parameters + key_parameters + [query.size + 1]
    if query.offset:
        sql += " OFFSET ?"
        arguments.append(query.offset)
    fetched = conn.execute(sql, arguments).fetchall()
    return _page(fetched, checked, geographic, total, query)


@dataclass
class _Reader:
    """A read-only connection to a rows copy, kept by its thread (the copy never changes
    but for the indexes added to it, which SQLite sees at the next statement)."""

    connection: sqlite3.Connection
    geographic: bool


_READERS = threading.local()
_READERS_PER_THREAD = 16


def _reader(database: Path) -> _Reader:
    readers: dict[Path, _Reader] | None = getattr(_READERS, "open", None)
    if readers is None:
        readers = _READERS.open = {}
    reader = readers.get(database)
    if reader is None:
        conn = sqlite3.connect(
            f"file:{database}?mode=ro", uri=True, timeout=30, check_same_thread=False
        )
        conn.create_function("sans_accents", 1, _plain_text, deterministic=True)
        geographic = GEOMETRY in {r[1] for r in conn.execute("PRAGMA table_info(lignes)")}
        if len(readers) >= _READERS_PER_THREAD:
            readers.pop(next(iter(readers))).connection.close()
        reader = readers[database] = _Reader(conn, geographic)
    return reader


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
            clauses.append(f"{quote_name(column)} IN ({', '.join('?' for _ in values)})")
            parameters.extend(values)
        elif operator == "contains":
            clauses.append(f"instr(sans_accents({quote_name(column)}), ?) > 0")
            parameters.append(normalise_label(raw))
        elif operator in OPERATORS:
            clauses.append(f"{quote_name(column)} {OPERATORS[operator]} ?")
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
    return f"{quote_name(column)} {direction}, rowid {direction}"


def _after(cursor: str | None, column: str | None, descending: bool) -> tuple[list, list]:
    if not cursor:
        return [], []
    value, rowid = _decode(cursor)
    if not column:
        return ["rowid > ?"], [rowid]
    sign = "<" if descending else ">"
    quoted = quote_name(column)
    if value is None:
        if descending:  # after the NULLs, which come last in descending order: nothing
            return [f"{quoted} IS NULL AND rowid < ?"], [rowid]
        return [f"(({quoted} IS NULL AND rowid > ?) OR {quoted} IS NOT NULL)"], [rowid]
    # a row value: the column's index (which holds the rowid) answers it as a range
    beyond = f"({quoted}, rowid) {sign} (?, ?)"
    if descending:
        return [f"({beyond} OR {quoted} IS NULL)"], [value, rowid]
    return [beyond], [value, rowid]


def _decode(cursor: str) -> tuple[Any, int]:
    """The sort value and rowid of a `_apres` cursor, or a QueryError."""
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
    return value, rowid


def _encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


_INDEXED: set[tuple[Path, str]] = set()


def _ensure_index(database: Path, column: str) -> None:
    if (database, column) in _INDEXED:  # once per process: the index stays in the copy
        return
    name = quote_name(f"tri_{column}")
    with exclusive(database), closing(sqlite3.connect(database, timeout=30)) as conn, conn:
        conn.execute(f"CREATE INDEX IF NOT EXISTS {name} ON lignes ({quote_name(column)})")
    _INDEXED.add((database, column))


# --- PostGIS backend ---------------------------------------------------------------------
#
# On the PostGIS store, the current release of each structure version is already loaded in
# `donnees."<slug>__v<N>"` (`catalog/store/postgis.py`), its `ogc_fid` numbering the rows as the
# SQLite copy's rowid does. `run_postgis` answers from it when it can answer exactly as
# `run` would: the same values (dates as ISO text, booleans as 0/1), the same order (text
# by code point, NULLs smallest) and the same cursors. Otherwise (text search, which uses
# Python's accent folding; a column type the mapping below does not cover; another
# release in the table) it returns None and the SQLite copy answers.

PG_NUMBER_KINDS = {"integer", "year", "number"}
PG_NUMBER_TYPES = {"smallint", "integer", "bigint", "real", "double precision"}
PG_TEXT_TYPES = {"text", "character varying", "character"}
PG_TIME_TYPES = {"date", "timestamp without time zone", "timestamp with time zone"}


def run_postgis(
    engine: sa.Engine,
    release: Release,
    schema: dict[str, Any],
    query: RowQuery,
    generation: int | None = None,
) -> Page | None:
    """The page from the release's PostGIS table, or None when the SQLite copy must answer.
    Query errors are raised as `run` raises them. With `generation`, the catalogue's
    generation the caller's look-ups were made at, the page is read only in a snapshot of
    that generation (StaleCatalogue otherwise): the caller need not read it beforehand."""
    checked = _check(schema, query)
    _where(checked.filters, checked.types)  # the same operator and value errors
    cursor_key = _decode(query.cursor) if query.cursor else None
    if any(operator == "contains" for _, operator, _ in checked.filters):
        return None
    name = table_name(release.dataset, release.structure_version)
    table = psql.Identifier(DATA_SCHEMA, name)
    pool = _pool(engine)
    columns = _known_columns(pool, release, name)
    if columns is None:
        return None
    expressions = _pg_expressions(checked, columns[0])
    if expressions is None:
        return None
    keyset = _pg_after(cursor_key, checked, expressions)
    if keyset is None:
        return None
    if checked.sort_column:  # outside the reading snapshot, as the SQLite copy does
        _pg_ensure_index(pool, release, name, checked.sort_column, expressions[checked.sort_column])
    shape = _shape(name, columns[1], checked, cursor_key, query)
    text = _TEXTS.get(shape)
    if text is None:  # the statement's text, composed once per shape of query
        composed = _pg_statement(table, columns[1], checked, expressions, keyset, query, release)
        with pool.connection() as conn:
            text = _TEXTS[shape] = composed.as_bytes(conn)
        if len(_TEXTS) > _TEXTS_MAX:
            _TEXTS.pop(next(iter(_TEXTS)))
    statement = (text, _pg_arguments(checked, expressions, keyset[1], query, release))
    try:
        fetched = _pg_read(pool, release, statement, generation)
    except psycopg.OperationalError:  # a connection the server closed: once more, anew
        fetched = _pg_read(pool, release, statement, generation)
    if fetched is None:
        return None
    total, rows = fetched
    return _page(rows, checked, bool(columns[1]), total, query)


# Reading connections: a pool of its own, set once as the SQLite copy reads (UTC, ISO
# dates), kept open between requests. A page is one statement, so one snapshot and one
# round trip (prepared by psycopg after a few uses): the check that the version's table
# still holds the release, the count when asked with filters, and the page.
_POOLS: dict[str, ConnectionPool] = {}
_POOLS_LOCK = threading.Lock()
# custom plans always: a generic plan of the page (no LIMIT, no cursor known) sorts the table
_SESSION = (
    "-c TimeZone=UTC -c DateStyle=ISO,YMD -c statement_timeout=60s "
    "-c plan_cache_mode=force_custom_plan"
)
_SERVED = "SELECT current_release FROM structure_versions WHERE dataset = %s AND version = %s"


def _pool(engine: sa.Engine) -> ConnectionPool:
    key = engine.url.render_as_string(hide_password=False)
    pool = _POOLS.get(key)
    if pool is None:
        with _POOLS_LOCK:
            pool = _POOLS.get(key)
            if pool is None:
                conninfo = make_conninfo(
                    libpq_dsn(engine.url), password=engine.url.password, options=_SESSION
                )
                pool = ConnectionPool(
                    conninfo,
                    kwargs={"autocommit": True},
                    min_size=1,
                    max_size=8,
                    name="lignes",
                    open=True,
                )
                _POOLS[key] = pool
    return pool


def _pg_read(
    pool: ConnectionPool,
    release: Release,
    statement: tuple[bytes, list[Any]],
    generation: int | None,
) -> tuple[int | None, list[tuple]] | None:
    """(count or None, rows) from `_pg_statement`; None when the table no longer holds
    `release`; StaleCatalogue when the catalogue is no longer at `generation`."""
    with pool.connection() as conn:
        fetched = conn.execute(*statement).fetchall()
    if generation is not None and (not fetched or fetched[0][1] != generation):
        raise StaleCatalogue
    if not fetched or fetched[0][0] != release.id:
        return None
    total = fetched[0][2]
    if fetched[0][3] is None:  # the left join's one row: no row on this page
        return total, []
    return total, [row[3:] for row in fetched]


def _known_columns(
    pool: ConnectionPool, release: Release, name: str
) -> tuple[dict[str, str], str | None] | None:
    """The table's columns and geometry, read once per release; None when the table does
    not hold `release`."""
    known = _COLUMNS.get((name, release.id))
    if known is not None:
        return known
    with pool.connection() as conn, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        served = conn.execute(_SERVED, [release.dataset, release.structure_version])
        if served.fetchone() != (release.id,):
            return None
        found = _pg_columns(conn, name)
    if not found[0]:  # no table (yet): nothing to keep
        return None
    if len(_COLUMNS) >= _COLUMNS_MAX:
        _COLUMNS.pop(next(iter(_COLUMNS)))
    _COLUMNS[(name, release.id)] = found
    return found


_TEXTS: dict[tuple, bytes] = {}
_TEXTS_MAX = 4096


def _shape(
    name: str, geometry: str | None, checked: _Checked, key: tuple | None, query: RowQuery
) -> tuple:
    """What a page's statement text depends on (not the values, which are parameters)."""
    filters = tuple(
        (column, operator, raw.count(",") if operator == "in" else 0)
        for column, operator, raw in checked.filters
    )
    cursor = None if key is None else ("null" if key[0] is None else "value")
    return (
        name,
        geometry,
        tuple(checked.chosen),
        checked.sort_column,
        checked.descending,
        filters,
        cursor,
        query.total,
        bool(query.offset),
    )


_INDEXED_TABLES: set[tuple[str, str, str]] = set()


def _pg_ensure_index(
    pool: ConnectionPool, release: Release, name: str, column: str, expression: _Expression
) -> None:
    """An index on (sort expression, fid), created the first time the table's rows are
    sorted by `column`, so that a sorted page reads the index instead of sorting the table.
    Dropped with the table when a release replaces it; an expression PostgreSQL cannot
    index (a date cast to text depends on DateStyle) keeps sorting without one."""
    key = (name, release.id, column)
    if key in _INDEXED_TABLES:
        return
    digest = hashlib.sha1(column.encode("utf-8")).hexdigest()[:10]
    index = psql.Identifier(f"{name[:40]}__tri_{digest}")
    statement = psql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (({}) ASC NULLS FIRST, {})").format(
        index, psql.Identifier(DATA_SCHEMA, name), expression.sql, psql.Identifier(FID)
    )
    with pool.connection() as conn:
        try:
            conn.execute("SET lock_timeout = '5s'")  # a switch holds the table: sort unindexed
            conn.execute(statement)
            _INDEXED_TABLES.add(key)
        except psycopg.errors.LockNotAvailable:
            pass  # another request is creating it, or a switch holds the table: this page sorts
        except psycopg.Error:
            _INDEXED_TABLES.add(key)  # not indexable: sorted without an index
        finally:
            conn.execute("RESET lock_timeout")


_COLUMNS: dict[tuple[str, str], tuple[dict[str, str], str | None]] = {}
_COLUMNS_MAX = 1024


def _pg_columns(raw: Any, name: str) -> tuple[dict[str, str], str | None]:
    """The table's columns and types (none when it is absent), and its geometry column."""
    found = raw.execute(
        "SELECT column_name, data_type, udt_name FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s",
        [DATA_SCHEMA, name],
    ).fetchall()
    geometry = next((column for column, _, udt in found if udt == "geometry"), None)
    return {column: kind for column, kind, _ in found if column != geometry}, geometry


def _pg_expressions(checked: _Checked, columns: dict[str, str]) -> dict[str, _Expression] | None:
    """Each column used, as the SQLite copy holds it; None when one cannot be matched."""
    used = {*checked.chosen, *(c for c, _, _ in checked.filters)}
    if checked.sort_column:
        used.add(checked.sort_column)
    expressions = {}
    for name in used:
        expression = _pg_expression(name, checked.types[name], columns.get(name))
        if expression is None:
            return None
        expressions[name] = expression
    return expressions


@dataclass(frozen=True)
class _Expression:
    """A column as the SQLite copy holds it: a number (booleans as 0/1) or text."""

    sql: psql.Composable
    text: bool  # compared as text, by code point: SQLite gives integers to it as text


@functools.lru_cache(maxsize=4096)  # the same few columns, request after request
def _pg_expression(name: str, kind: str, pg_type: str | None) -> _Expression | None:
    column = psql.Identifier(name)
    if kind == "boolean" and pg_type == "boolean":
        return _Expression(psql.SQL("CAST({} AS integer)").format(column), text=False)
    if kind in PG_NUMBER_KINDS and pg_type in PG_NUMBER_TYPES:
        return _Expression(column, text=False)
    if kind == "date" and pg_type in PG_TIME_TYPES:  # the copy casts dates to date32
        day = psql.SQL('substr(CAST({} AS text), 1, 10) COLLATE "C"').format(column)
        return _Expression(day, text=True)
    if kind == "datetime" and pg_type == "timestamp without time zone":
        # the copy holds Python's isoformat(): microseconds only when there are some
        iso = psql.SQL(
            "(CASE WHEN CAST(date_part('microseconds', {c}) AS integer) %% 1000000 = 0 "
            "THEN to_char({c}, 'YYYY-MM-DD\"T\"HH24:MI:SS') "
            'ELSE to_char({c}, \'YYYY-MM-DD"T"HH24:MI:SS.US\') END) COLLATE "C"'
        ).format(c=column)
        return _Expression(iso, text=True)
    # text, and integers (a generalised year…) the file holds as text
    if kind not in {"boolean", "date", "datetime", "number"} and pg_type in PG_TEXT_TYPES:
        return _Expression(psql.SQL('{} COLLATE "C"').format(column), text=True)
    return None


def _pg_value(value: Any, expression: _Expression) -> Any:
    """A typed filter value as SQLite compares it with the column: integers as text with
    a TEXT column (its affinity), NaN as NULL (SQLite binds it so: nothing matches)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value) if expression.text and isinstance(value, int) else value


def _pg_where(
    checked: _Checked, expressions: dict[str, _Expression]
) -> tuple[list[psql.Composable], list[Any]]:
    clauses: list[psql.Composable] = []
    parameters: list[Any] = []
    for column, operator, raw in checked.filters:
        kind, expression = checked.types[column], expressions[column]
        if operator == "in":
            values = [_pg_value(_typed(v, kind), expression) for v in raw.split(",")]
            marks = psql.SQL(", ").join(psql.Placeholder() * len(values))
            clauses.append(psql.SQL("{} IN ({})").format(expression.sql, marks))
            parameters.extend(values)
        else:
            operation = psql.SQL(OPERATORS[operator])
            clauses.append(psql.SQL("{} {} %s").format(expression.sql, operation))
            parameters.append(_pg_value(_typed(raw, kind), expression))
    return clauses, parameters


def _pg_after(
    key: tuple[Any, int] | None, checked: _Checked, expressions: dict[str, _Expression]
) -> tuple[list[psql.Composable], list[Any]] | None:
    """`_after` in PostgreSQL; None when the cursor's value is not of the column's type
    (SQLite would compare across types: the copy answers)."""
    fid = psql.Identifier(FID)
    if key is None:
        return [], []
    value, rowid = key
    if not checked.sort_column:
        return [psql.SQL("{} > %s").format(fid)], [rowid]
    expression = expressions[checked.sort_column].sql
    if value is not None and not _same_kind(value, expressions[checked.sort_column]):
        return None
    sign = psql.SQL("<" if checked.descending else ">")
    if value is None:
        if checked.descending:
            return [psql.SQL("{} IS NULL AND {} < %s").format(expression, fid)], [rowid]
        clause = psql.SQL("(({e} IS NULL AND {f} > %s) OR {e} IS NOT NULL)")
        return [clause.format(e=expression, f=fid)], [rowid]
    # a row comparison, which an index on (expression, fid) answers as a range
    beyond = psql.SQL("({}, {}) {} (%s, %s)").format(expression, fid, sign)
    if checked.descending:
        null = psql.SQL("{} IS NULL").format(expression)
        return [psql.SQL("({} OR {})").format(beyond, null)], [value, rowid]
    return [beyond], [value, rowid]


def _same_kind(value: Any, expression: _Expression) -> bool:
    if expression.text:
        return isinstance(value, str)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _pg_statement(
    table: psql.Identifier,
    geometry: str | None,
    checked: _Checked,
    expressions: dict[str, _Expression],
    keyset: tuple[list[psql.Composable], list[Any]],
    query: RowQuery,
    release: Release,
) -> psql.Composable:
    """One statement: (release the version's table holds, the catalogue's generation,
    total, page columns…) rows; a single row of NULL page columns when the page is empty.
    The total is the release's stored count of rows without filters, counted with them."""
    where, _ = _pg_where(checked, expressions)
    fid, sort = psql.Identifier(FID), checked.sort_column
    selected = [fid] + ([expressions[sort].sql] if sort else [])
    selected += [expressions[name].sql for name in checked.chosen]
    if geometry:
        selected.append(
            psql.SQL("ST_AsGeoJSON(ST_Transform({}, 4326))").format(psql.Identifier(geometry))
        )
    page = psql.SQL("SELECT {} FROM {}{} ORDER BY {} LIMIT %s").format(
        psql.SQL(", ").join(selected),
        table,
        _pg_clause(where + keyset[0]),
        _pg_order(expressions[sort].sql if sort else None, checked.descending),
    )
    if query.offset:
        page += psql.SQL(" OFFSET %s")
    total: psql.Composable = psql.SQL("NULL::bigint")
    if query.total and where:
        total = psql.SQL("(SELECT count(*) FROM {}{})").format(table, _pg_clause(where))
    elif query.total:
        total = psql.SQL("%s::bigint")
    # the page's order again, on its output columns (4: fid, 5: the sort value)
    direction = psql.SQL("DESC NULLS LAST" if checked.descending else "ASC NULLS FIRST")
    order = psql.SQL("5 {d}, 4 {d}").format(d=direction) if sort else psql.SQL("4")
    statement = psql.SQL(
        "SELECT s.current_release, (SELECT value FROM catalog_generation), {total}, p.* "
        "FROM structure_versions s "
        "LEFT JOIN LATERAL ({page}) p ON s.current_release = %s "
        "WHERE s.dataset = %s AND s.version = %s ORDER BY {order}"
    ).format(total=total, page=page, order=order)
    return statement


def _pg_arguments(
    checked: _Checked,
    expressions: dict[str, _Expression],
    key_values: list[Any],
    query: RowQuery,
    release: Release,
) -> list[Any]:
    """The arguments of `_pg_statement`'s placeholders, in their order."""
    _, parameters = _pg_where(checked, expressions)
    page = parameters + key_values + [query.size + 1]
    if query.offset:
        page.append(query.offset)
    total: list[Any] = []
    if query.total:
        total = parameters if checked.filters else [release.row_count]
    return [*total, *page, release.id, release.dataset, release.structure_version]


def _pg_clause(conditions: list[psql.Composable]) -> psql.Composable:
    if not conditions:
        return psql.SQL("")
    return psql.SQL(" WHERE {}").format(psql.SQL(" AND ").join(conditions))


def _pg_order(expression: psql.Composable | None, descending: bool) -> psql.Composable:
    fid = psql.Identifier(FID)
    if expression is None:
        return fid
    # SQLite's order: NULLs are the smallest values; the fid breaks ties, as rowid does.
    direction = psql.SQL("DESC NULLS LAST" if descending else "ASC NULLS FIRST")
    return psql.SQL("{e} {d}, {f} {d}").format(e=expression, d=direction, f=fid)


def _page(
    fetched: list[tuple], checked: _Checked, geographic: bool, total: int | None, query: RowQuery
) -> Page:
    """The page from rows (fid, [sort value], chosen columns…, [GeoJSON]), as `run`."""
    more = len(fetched) > query.size
    fetched = fetched[: query.size]
    chosen, skip = checked.chosen, 2 if checked.sort_column else 1
    end = skip + len(chosen)
    rows = [dict(zip(chosen, row[skip:end], strict=True)) for row in fetched]
    booleans = [name for name in chosen if checked.types[name] == "boolean"]
    for row in rows if booleans else ():
        for name in booleans:
            if row[name] is not None:
                row[name] = bool(row[name])
    geometries = [row[-1] for row in fetched] if geographic else None
    next_cursor = None
    if more and fetched and not query.offset:
        last = fetched[-1]
        next_cursor = _encode([last[1] if checked.sort_column else None, last[0]])
    return Page(chosen, rows, geometries, next_cursor, total)
