"""A release's Parquet read back chunk by chunk, and the cell conversions every tabular
download shares (formulas neutralised, dates and datetimes as ISO 8601 text)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import geopandas as gpd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pyproj

CHUNK_ROWS = 50_000
FORMULA_CHARACTERS = pa.array(["=", "+", "-", "@", "\t", "\r"])


def neutralise_formulas(table: pa.Table) -> pa.Table:
    """Text cells a spreadsheet would run as a formula get a leading apostrophe."""
    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type):
            first = pc.utf8_slice_codeunits(column, 0, 1)  # cheaper than a regex
            risky = pc.is_in(first, value_set=FORMULA_CHARACTERS)
            if pc.any(risky).as_py():
                column = pc.if_else(risky, pc.binary_join_element_wise("'", column, ""), column)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=table.column_names)


def neutralise_cell(value: object) -> object:
    """One cell, as `neutralise_formulas` does for whole columns."""
    if isinstance(value, str) and value[:1] in FORMULA_CHARACTERS.to_pylist():
        return "'" + value
    return value


def stored_crs(source: Path) -> int:
    geo = json.loads(pq.read_schema(source).metadata[b"geo"])
    stored = geo["columns"][geo["primary_column"]].get("crs")
    return (pyproj.CRS.from_user_input(stored).to_epsg() if stored else None) or 4326


def with_dates(table: pa.Table, dates: frozenset[str]) -> pa.Table:
    """`dates` as Arrow dates, blanks kept blank: releases published before issue #15
    store a map's dates as timestamps, later ones as dates."""
    for name in dates & set(table.column_names):
        position = table.column_names.index(name)
        table = table.set_column(position, name, pc.cast(table.column(name), pa.date32()))
    return table


def tables(source: Path, crs: int | None, dates: frozenset[str]) -> Iterator[pa.Table]:
    """Attributes as Arrow types (dates as dates), plus the geometry as WKT in `crs` (WGS84
    by default) for map data; chunk by chunk, every chunk with the same schema."""
    metadata = pq.read_schema(source).metadata or {}
    column, source_crs = None, None
    if b"geo" in metadata:
        geo = json.loads(metadata[b"geo"])
        column = geo["primary_column"]
        source_crs = pyproj.CRS.from_user_input(geo["columns"][column].get("crs") or 4326)
    for batch in pq.ParquetFile(source).iter_batches(batch_size=CHUNK_ROWS):
        table = with_dates(pa.Table.from_batches([batch]), dates)
        if column is None:
            yield table
            continue
        geometry = gpd.GeoSeries.from_wkb(
            table.column(column).to_numpy(zero_copy_only=False), crs=source_crs
        ).to_crs(crs or 4326)
        wkt = pa.array(geometry.to_wkt().tolist(), type=pa.string())
        yield table.drop_columns([column]).append_column("geometry", wkt)


def dates_as_text(table: pa.Table, kinds: Callable[[pa.DataType], bool] | None = None) -> pa.Table:
    """Dates and datetimes (or only the `kinds` asked) as ISO 8601 text."""
    wanted = kinds or (lambda t: pa.types.is_date(t) or pa.types.is_timestamp(t))
    for position, column in enumerate(table.columns):
        if wanted(column.type):
            table = table.set_column(position, table.field(position).name, _iso_text(column))
    return table


def _iso_text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dates as 2016-03-22, datetimes as 2016-03-22T10:05:00 (ISO 8601), in whole seconds
    (Arrow's %S would write the fractions of a finer unit: 10:05:00.000)."""
    if pa.types.is_date(column.type):
        return pc.strftime(column, format="%Y-%m-%d")
    seconds = pc.cast(column, pa.timestamp("s", column.type.tz), safe=False)
    if column.type.tz is not None:
        return pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%S")
    # Arrow's own cast writes "2016-03-22 10:05:00" fast; the T goes in its place
    return pc.utf8_replace_slice(pc.cast(seconds, pa.string()), 10, 11, "T")


def datetimes_as_iso(table: pa.Table) -> pa.Table:
    """Datetimes as ISO 8601 text (2016-03-22T10:05:00), as the schema's `datetime` reads
    them; Arrow's CSV writer would put a space between date and time."""
    return dates_as_text(table, lambda kind: pa.types.is_timestamp(kind) and kind.tz is None)
