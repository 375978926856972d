"""The SQLite copy of a release's rows, which the rows API queries (`catalog.rows`).

The store writes it at publication (`write_at_publication`), in the release's staged
folder before the release is switched in: the first reuser does not wait for it, and a
failed publication leaves nothing behind (the previous release keeps its own copy). It is
written batch by batch from the release's Parquet, so memory does not grow with the file.
Releases published before this copy existed get theirs on their first rows request
(`rows_database`), under a temporary name then renamed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely

from catalog.store.downloads import build_once

GEOMETRY = "__geojson"  # the geometry, as GeoJSON in WGS84
COPY_ROWS = 50_000  # rows per batch: memory stays flat whatever the release's size
TABLE = "lignes"


def copy_path(parquet: Path) -> Path:
    """Where the copy of the release whose Parquet is `parquet` is kept (it may not exist)."""
    return parquet.parent / "derived" / f"{parquet.stem}-lignes.sqlite"


def published_schema(structure: dict[str, Any]) -> dict[str, Any]:
    """The Table Schema of what a release publishes (after anonymisation)."""
    return structure.get("published_schema") or structure.get("schema") or {}


def rows_database(parquet: Path, schema: dict[str, Any]) -> Path:
    """The copy of a release's rows: written at publication, else now (older releases)."""
    dates = {f["name"] for f in schema.get("fields", []) if f.get("type") == "date"}
    return build_once(copy_path(parquet), lambda path: write_copy(parquet, path, dates))


def write_at_publication(parquet: Path, structure: dict[str, Any]) -> Path:
    """The copy of a release being published, beside its staged Parquet."""
    return rows_database(parquet, published_schema(structure))


def write_copy(parquet: Path, database: Path, dates: set[str]) -> None:
    """Every row of `parquet` into table `lignes` of `database`, one batch at a time."""
    source = pq.ParquetFile(parquet)
    geo = json.loads((source.schema_arrow.metadata or {}).get(b"geo", b"null"))
    shape = _prepared(source.schema_arrow.empty_table(), geo, dates).schema
    names = shape.names
    with sqlite3.connect(database) as conn:
        # a file nobody reads until it is renamed into place: no journal, no fsync
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        columns = ", ".join(f"{quote_name(n)} {_sqlite_type(shape.field(n).type)}" for n in names)
        conn.execute(f"CREATE TABLE {TABLE} ({columns})")
        insert = f"INSERT INTO {TABLE} VALUES ({', '.join('?' for _ in names)})"
        for batch in source.iter_batches(batch_size=COPY_ROWS):
            table = _prepared(pa.Table.from_batches([batch]), geo, dates)
            conn.executemany(insert, _rows(table))


def _prepared(table: pa.Table, geo: dict[str, Any] | None, dates: set[str]) -> pa.Table:
    """The geometry as GeoJSON in WGS84 (last column), dates as dates (map releases store
    them as timestamps)."""
    if geo is not None:  # read as Arrow: integers with blanks stay integers (no pandas detour)
        column = geo["primary_column"]
        geometry = gpd.GeoSeries.from_wkb(
            table.column(column).to_numpy(zero_copy_only=False),
            crs=geo["columns"][column].get("crs") or 4326,
        ).to_crs(4326)
        table = table.drop_columns([column])
        table = table.append_column(GEOMETRY, pa.array(shapely.to_geojson(geometry.values)))
    for name in dates & set(table.column_names):
        position = table.column_names.index(name)
        table = table.set_column(position, name, pc.cast(table.column(name), pa.date32()))
    return table


def _rows(table: pa.Table) -> Iterator[tuple[Any, ...]]:
    """The table's rows as tuples of values SQLite binds as they are."""
    return zip(*(_values(column) for column in table.columns), strict=True)


def _values(column: pa.ChunkedArray) -> Iterable[Any]:
    """The column's values as `_sqlite_value` gives them; dates and whole-second datetimes
    written by Arrow (as isoformat() does, 20 times faster than Python objects)."""
    kind = column.type
    if pa.types.is_date32(kind):
        return pc.cast(column, pa.string()).to_pylist()
    if pa.types.is_timestamp(kind) and kind.tz is None:
        seconds = pc.cast(column, pa.timestamp("s"), safe=False)
        if kind.unit == "s" or pc.all(pc.equal(pc.cast(seconds, kind), column)).as_py() in (
            True,
            None,
        ):
            return pc.utf8_replace_slice(pc.cast(seconds, pa.string()), 10, 11, "T").to_pylist()
    if _binds_as_is(kind):
        return column.to_pylist()
    return [_sqlite_value(v) for v in column.to_pylist()]


def _binds_as_is(kind: pa.DataType) -> bool:
    """Types whose Python values (int, float, str, bool, None) SQLite binds directly."""
    if pa.types.is_dictionary(kind):
        return _binds_as_is(kind.value_type)
    return (
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_null(kind)
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


def quote_name(name: str) -> str:
    """A column's name as an SQLite identifier."""
    return '"' + name.replace('"', '""') + '"'
