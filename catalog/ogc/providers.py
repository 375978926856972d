"""pygeoapi providers over what the catalog publishes.

- `GeoPackageProvider`: a layer's features, read from its GeoPackage with the standard
  library's sqlite3 and the GeoPackage's R-tree index. pygeoapi's own SQLite/GeoPackage
  provider needs the SpatiaLite extension, which this Python cannot load.
- `PostgisProvider`: a layer's features on the PostGIS backend, read from its structure
  version's table (`donnees."<slug>__v<N>"`) with its GIST index, in psycopg 3.
- `CatalogueProvider`: one OGC API Records record per public dataset, from a JSON file
  the OGC API writes atomically. pygeoapi's TinyDB catalogue provider is not used: it
  builds its queries with `eval` over request values.

All filter, count and page in the data source, so `numberMatched` is exact.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import json
import math
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import shapely
from psycopg import sql
from psycopg_pool import ConnectionPool
from pygeoapi.provider.base import (
    BaseProvider,
    ProviderInvalidQueryError,
    ProviderItemNotFoundError,
)
from pygeoapi.util import crs_transform

from catalog.ogc.boxes import EDGE_POINTS, Region, region_of

JSON_TYPES = {  # Table Schema type -> JSON Schema
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
}
ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class GeoPackageProvider(BaseProvider):
    """Features of one GeoPackage table (`table` in the provider definition); `field_types`
    gives the Table Schema type of each published field."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.table = provider_def["table"]
        self.id_field = "fid"
        facts = _table_facts(str(self.data), self.table)
        self.geometry_column, self.has_index, self.count, self.dense = facts[:4]
        declared = provider_def.get("field_types", {})
        self._columns = [(name, declared.get(name, "string")) for name in facts[4]]
        self.rtree = f"rtree_{self.table}_{self.geometry_column}"
        self.points_only = provider_def.get("geometry_type", "").endswith("Point")
        self._fields = self.get_fields()

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.data}?mode=ro&immutable=1", uri=True)

    def get_fields(self) -> dict[str, dict[str, str]]:
        return {name: JSON_TYPES.get(kind, {"type": "string"}) for name, kind in self._columns}

    @crs_transform
    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list[float] | None = None,
        datetime_: str | None = None,
        properties: list[tuple[str, str]] | None = None,
        sortby: list[dict[str, str]] | None = None,
        select_properties: list[str] | None = None,
        skip_geometry: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        conditions, parameters = self._conditions(datetime_, properties or [])
        region = region_of(bbox) if bbox else None
        with self._connect() as conn:
            if region and region.is_crs84 and self.points_only and not (conditions or sortby):
                # The R-tree alone counts and pages points in a CRS84 box (its float32
                # bounds checked against the geometry near the edges): only the page's
                # rows are read from the table.
                matched, page = self._boxed_page(conn, region, offset, limit, resulttype)
                rows = self._rows_by_fid(conn, page)
            elif region:
                fids = self._intersecting(conn, region, conditions, parameters)
                matched = len(fids)
                rows = []
                if resulttype != "hits" and sortby:
                    rows = conn.execute(
                        f"SELECT {self._select()} FROM {quote(self.table)} AS t "
                        "WHERE t.fid IN (SELECT value FROM json_each(?)) "
                        f"ORDER BY {self._order(sortby)} LIMIT ? OFFSET ?",
                        [json.dumps(fids), limit, offset],
                    ).fetchall()
                elif resulttype != "hits":
                    rows = self._rows_by_fid(conn, fids[offset : offset + limit])
            elif not (conditions or sortby) and self.dense:
                # Whole table in fid order, fids 1..n: a page is a range of fids.
                matched = self.count
                rows = []
                if resulttype != "hits":
                    rows = conn.execute(
                        f"SELECT {self._select()} FROM {quote(self.table)} AS t "
                        "WHERE t.fid > ? ORDER BY t.fid LIMIT ?",
                        [offset, limit],
                    ).fetchall()
            else:
                source = f"{quote(self.table)} AS t"
                where = " AND ".join(conditions) or "1"
                matched = conn.execute(
                    f"SELECT COUNT(*) FROM {source} WHERE {where}", parameters
                ).fetchone()[0]
                rows = []
                if resulttype != "hits":
                    rows = conn.execute(
                        f"SELECT {self._select()} FROM {source} WHERE {where} "
                        f"ORDER BY {self._order(sortby or [])} LIMIT ? OFFSET ?",
                        parameters + [limit, offset],
                    ).fetchall()
        features = [self._feature(row, select_properties, skip_geometry) for row in rows]
        return {
            "type": "FeatureCollection",
            "features": features,
            "numberMatched": matched,
            "numberReturned": len(features),
        }

    @crs_transform
    def get(self, identifier: str, **kwargs: Any) -> dict[str, Any]:
        try:
            fid = int(identifier)
        except ValueError:
            raise ProviderItemNotFoundError(f"Objet « {identifier} » introuvable.") from None
        with self._connect() as conn:
            rows = self._rows_by_fid(conn, [fid])
        if not rows:
            raise ProviderItemNotFoundError(f"Objet « {identifier} » introuvable.")
        return self._feature(rows[0], None, False)

    # --- SQL ----------------------------------------------------------------------------

    def _select(self) -> str:
        names = ", ".join(f"t.{quote(name)}" for name, _ in self._columns)
        return f"t.fid, t.{quote(self.geometry_column)}" + (f", {names}" if names else "")

    def _source(self, envelope: tuple[float, float, float, float]) -> tuple[str, list[Any]]:
        """The table's rows whose R-tree box meets `envelope` (CRS84): the candidates."""
        if not self.has_index:
            raise ProviderInvalidQueryError("Index spatial absent : bbox indisponible.")
        west, south, east, north = envelope
        return (
            # CROSS JOIN fixes the order: the R-tree finds the box's few features first,
            # instead of a scan of the table probing the R-tree row by row.
            f"{quote(self.rtree)} AS r CROSS JOIN {quote(self.table)} AS t ON t.fid = r.id "
            "AND r.maxx >= ? AND r.minx <= ? AND r.maxy >= ? AND r.miny <= ?",
            [west, east, south, north],
        )

    def _conditions(
        self, datetime_: str | None, properties: list[tuple[str, str]]
    ) -> tuple[list[str], list[Any]]:
        conditions: list[str] = []
        parameters: list[Any] = []
        kinds = dict(self._columns)
        for name, value in properties:
            if name not in kinds:
                raise ProviderInvalidQueryError(f"Propriété inconnue : {name}")
            conditions.append(f"t.{quote(name)} = ?")
            parameters.append(_typed(value, kinds[name]))
        if datetime_ and self.time_field:
            conditions_, parameters_ = self._time_conditions(datetime_, kinds[self.time_field])
            conditions += conditions_
            parameters += parameters_
        return conditions, parameters

    def _time_conditions(self, datetime_: str, kind: str) -> tuple[list[str], list[Any]]:
        column = f"t.{quote(self.time_field)}"
        width = 10 if kind == "date" else 19  # compare dates as dates, instants to the second

        def bound(value: str) -> str:
            return value.replace(" ", "T").removesuffix("Z")[:width]

        expression = f"substr(replace({column}, ' ', 'T'), 1, {width})"
        if "/" not in datetime_:
            return [f"{expression} = ?"], [bound(datetime_)]
        start, end = datetime_.split("/", 1)
        conditions, parameters = [], []
        if start not in ("", ".."):
            conditions.append(f"{expression} >= ?")
            parameters.append(bound(start))
        if end not in ("", ".."):
            conditions.append(f"{expression} <= ?")
            parameters.append(bound(end))
        return conditions, parameters

    def _order(self, sortby: list[dict[str, str]]) -> str:
        kinds = dict(self._columns)
        terms = []
        for sort in sortby:
            if sort["property"] not in kinds:
                raise ProviderInvalidQueryError(f"Tri impossible sur : {sort['property']}")
            direction = "DESC" if sort["order"] == "-" else "ASC"
            terms.append(f"t.{quote(sort['property'])} {direction}")
        return ", ".join([*terms, "t.fid"])

    def _intersecting(
        self,
        conn: sqlite3.Connection,
        region: Region,
        conditions: list[str],
        parameters: list[Any],
    ) -> list[int]:
        """Fids whose geometry, not only its envelope, meets the box, in fid order: the
        R-tree's candidates tested exactly in the box's own CRS."""
        source, source_parameters = self._source(region.envelope())
        where = " AND ".join(conditions) or "1"
        candidates = conn.execute(
            f"SELECT t.fid, t.{quote(self.geometry_column)} FROM {source} "
            f"WHERE {where} ORDER BY t.fid",
            source_parameters + parameters,
        ).fetchall()
        if not candidates:
            return []
        geometries = shapely.from_wkb([_wkb(blob) for _, blob in candidates])
        hits = region.meets(geometries)
        return [fid for (fid, _), hit in zip(candidates, hits, strict=True) if hit]

    def _boxed_page(
        self, conn: sqlite3.Connection, region: Region, offset: int, limit: int, kind: str
    ) -> tuple[int, list[int]]:
        """Points in a CRS84 box, counted and paged in the R-tree. Its bounds are float32,
        rounded outwards (up to 0.4 m here): a point whose R-tree box is not wholly
        inside the box is checked against its geometry, and left out if outside."""
        west, south, east, north = region.box
        meets = "r.maxx >= ? AND r.minx <= ? AND r.maxy >= ? AND r.miny <= ?"
        inside = "r.minx >= ? AND r.maxx <= ? AND r.miny >= ? AND r.maxy <= ?"
        values = [west, east, south, north]
        rtree = f"{quote(self.rtree)} AS r"
        doubtful = conn.execute(
            f"SELECT t.fid, t.{quote(self.geometry_column)} FROM {rtree} "
            f"CROSS JOIN {quote(self.table)} AS t ON t.fid = r.id "
            f"WHERE {meets} AND NOT ({inside})",
            [*values, *values],
        ).fetchall()
        outside: list[int] = []
        if doubtful:
            geometries = shapely.from_wkb([_wkb(blob) for _, blob in doubtful])
            hits = region.meets(geometries)
            outside = [fid for (fid, _), hit in zip(doubtful, hits, strict=True) if not hit]
        kept = f"{meets} AND r.id NOT IN (SELECT value FROM json_each(?))"
        arguments = [*values, json.dumps(outside)]
        (matched,) = conn.execute(
            f"SELECT COUNT(*) FROM {rtree} WHERE {kept}", arguments
        ).fetchone()
        if kind == "hits":
            return matched, []
        page = conn.execute(
            f"SELECT r.id FROM {rtree} WHERE {kept} ORDER BY r.id LIMIT ? OFFSET ?",
            [*arguments, limit, offset],
        ).fetchall()
        return matched, [fid for (fid,) in page]

    def _rows_by_fid(self, conn: sqlite3.Connection, fids: list[int]) -> list[tuple]:
        if not fids:
            return []
        marks = ", ".join("?" for _ in fids)
        return conn.execute(
            f"SELECT {self._select()} FROM {quote(self.table)} AS t "
            f"WHERE t.fid IN ({marks}) ORDER BY t.fid",
            fids,
        ).fetchall()

    def _feature(
        self, row: tuple, select_properties: list[str] | None, skip_geometry: bool
    ) -> dict[str, Any]:
        fid, blob, *values = row
        properties = {
            name: _json_value(value, kind)
            for (name, kind), value in zip(self._columns, values, strict=True)
            if not select_properties or name in select_properties
        }
        geometry = None
        if blob is not None and not skip_geometry:
            geometry = json.loads(shapely.to_geojson(shapely.from_wkb(_wkb(blob))))
        return {"type": "Feature", "id": fid, "geometry": geometry, "properties": properties}


@functools.lru_cache(maxsize=256)
def _table_facts(path: str, table: str) -> tuple[str, bool, int, bool, tuple[str, ...]]:
    """Geometry column, spatial index, row count, whether fids are exactly 1..count, and
    attribute columns. Read once per file: layer GeoPackages are written once and never
    edited (releases are immutable), and pygeoapi makes a provider per request."""
    with sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True) as conn:
        geometry = conn.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (table,)
        ).fetchone()[0]
        index = f"rtree_{table}_{geometry}"
        has_index = bool(
            conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (index,)).fetchone()
        )
        count, highest, lowest = conn.execute(
            f"SELECT COUNT(*), MAX(fid), MIN(fid) FROM {quote(table)}"
        ).fetchone()
        columns = tuple(
            row[1]
            for row in conn.execute(f"PRAGMA table_info({quote(table)})")
            if row[1] not in ("fid", geometry)
        )
    dense = count == 0 or (lowest == 1 and highest == count)
    return geometry, has_index, count, dense, columns


def _wkb(blob: bytes) -> bytes:
    """The WKB inside a GeoPackage geometry blob (after its header and envelope)."""
    envelope = ENVELOPE_BYTES.get((blob[3] >> 1) & 0b111, 0)
    return blob[8 + envelope :]


def _typed(value: str, kind: str) -> Any:
    if kind == "boolean":
        if value.lower() not in ("true", "false", "1", "0"):
            raise ProviderInvalidQueryError(f"Valeur booléenne attendue : {value}")
        return value.lower() in ("true", "1")
    return value  # SQLite's column affinity compares "12" with an INTEGER column as 12


def _json_value(value: Any, kind: str) -> Any:
    """A GeoPackage value as its Table Schema type reads in JSON, whatever the file holds:
    GeoPackages of releases published before issue #15 hold integers with blanks as reals
    (3.0) and dates with a time of day."""
    if value is None:
        return None
    if kind == "boolean":
        return bool(value)
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "date" and isinstance(value, str):
        return value[:10]
    if kind == "datetime" and isinstance(value, str):
        return value.replace(" ", "T")
    return value


# --- PostGIS ---------------------------------------------------------------------------------

PG_TEXT_TYPES = {"text", "character varying", "character"}
PG_NUMBER_TYPES = {"smallint", "integer", "bigint", "real", "double precision", "numeric"}
# libpq options of every connection: UTC (times read as the GeoPackage holds them), read-only
PG_OPTIONS = "-c TimeZone=UTC -c default_transaction_read_only=on -c statement_timeout=60000"
POOL_NAME = "opendata-ogc"  # also the connections' application_name
_PASSWORDS: dict[str, str] = {}  # libpq dsn -> password: never in pygeoapi's configuration


def register_password(dsn: str, password: str | None) -> None:
    """The password of the PostGIS store reached at `dsn` (kept out of the provider
    definitions, which pygeoapi may show in its errors)."""
    if password and _PASSWORDS.get(dsn) != password:
        _PASSWORDS[dsn] = password
        _pool.cache_clear()  # pools opened with the former password are left to close


class PostgisProvider(BaseProvider):
    """Features of one structure version's table in PostGIS (`table`: schema.table), in
    the data's own CRS (`srid`) with its GIST index; geometries are returned in CRS84,
    like the GeoPackage provider's, so pygeoapi's CRS handling is the same."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.dsn = str(self.data)
        self.schema_name, self.table = provider_def["table"].split(".", 1)
        self.geometry_column = provider_def.get("geometry", "geometry")
        self.srid = int(provider_def["srid"])
        self.id_field = "ogc_fid"
        columns = _postgis_columns(
            self.dsn, self.schema_name, self.table, self.geometry_column, provider_def["release"]
        )
        declared = provider_def.get("field_types", {})
        self._columns = [(name, declared.get(name, "string")) for name, _ in columns]
        self._pg_types = dict(columns)
        self._fields = self.get_fields()

    def get_fields(self) -> dict[str, dict[str, str]]:
        return {name: JSON_TYPES.get(kind, {"type": "string"}) for name, kind in self._columns}

    @crs_transform
    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list[float] | None = None,
        datetime_: str | None = None,
        properties: list[tuple[str, str]] | None = None,
        sortby: list[dict[str, str]] | None = None,
        select_properties: list[str] | None = None,
        skip_geometry: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        conditions, parameters = self._conditions(bbox, datetime_, properties or [])
        where = sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("TRUE")
        order = self._order(sortby or [])
        with _pg_connect(self.dsn) as conn:
            matched = conn.execute(
                sql.SQL("SELECT count(*) FROM {} AS t WHERE {}").format(self._table(), where),
                parameters,
            ).fetchone()[0]
            rows: list[tuple] = []
            if resulttype != "hits":
                rows = conn.execute(
                    sql.SQL(
                        "SELECT {} FROM {} AS t WHERE {} ORDER BY {} LIMIT %s OFFSET %s"
                    ).format(self._select(), self._table(), where, order),
                    [*parameters, limit, offset],
                ).fetchall()
        features = [self._feature(row, select_properties, skip_geometry) for row in rows]
        return {
            "type": "FeatureCollection",
            "features": features,
            "numberMatched": matched,
            "numberReturned": len(features),
        }

    @crs_transform
    def get(self, identifier: str, **kwargs: Any) -> dict[str, Any]:
        try:
            fid = int(identifier)
        except ValueError:
            raise ProviderItemNotFoundError(f"Objet « {identifier} » introuvable.") from None
        with _pg_connect(self.dsn) as conn:
            row = conn.execute(
                sql.SQL("SELECT {} FROM {} AS t WHERE t.{} = %s").format(
                    self._select(), self._table(), sql.Identifier(self.id_field)
                ),
                [fid],
            ).fetchone()
        if row is None:
            raise ProviderItemNotFoundError(f"Objet « {identifier} » introuvable.")
        return self._feature(row, None, False)

    # --- SQL ----------------------------------------------------------------------------

    def _table(self) -> sql.Identifier:
        return sql.Identifier(self.schema_name, self.table)

    def _column(self, name: str) -> sql.Composed:
        return sql.SQL("t.{}").format(sql.Identifier(name))

    def _select(self) -> sql.Composed:
        names = [self._column(name) for name, _ in self._columns]
        geometry = sql.SQL("ST_AsGeoJSON(ST_Transform({}, 4326))").format(
            self._column(self.geometry_column)
        )
        return sql.SQL(", ").join([self._column(self.id_field), geometry, *names])

    def _conditions(
        self,
        bbox: list[float] | None,
        datetime_: str | None,
        properties: list[tuple[str, str]],
    ) -> tuple[list[sql.Composable], list[Any]]:
        conditions: list[sql.Composable] = []
        parameters: list[Any] = []
        if bbox:
            condition, values = self._meets(region_of(bbox))
            conditions.append(condition)
            parameters += values
        kinds = dict(self._columns)
        for name, value in properties:
            if name not in kinds:
                raise ProviderInvalidQueryError(f"Propriété inconnue : {name}")
            condition, values = self._equals(name, kinds[name], value)
            conditions.append(condition)
            parameters += values
        if datetime_ and self.time_field:
            for condition, value in self._time_conditions(datetime_, kinds[self.time_field]):
                conditions.append(condition)
                parameters.append(value)
        return conditions, parameters

    def _meets(self, region: Region) -> tuple[sql.Composable, list[Any]]:
        """The geometries meeting the box, tested in the box's own CRS; the GIST index
        takes the candidates from the box reprojected with densified edges (its curved
        edges' envelope in the data's CRS)."""
        code, box = region.xy()
        geometry = self._column(self.geometry_column)
        envelope = sql.SQL("ST_MakeEnvelope(%s, %s, %s, %s, {})").format(sql.Literal(code))
        if code == self.srid:
            test = sql.SQL("{g} && {e} AND ST_Intersects({g}, {e})")
            return test.format(g=geometry, e=envelope), [*box, *box]
        step = max(box[2] - box[0], box[3] - box[1]) / EDGE_POINTS
        test = sql.SQL(
            "{g} && ST_Transform(ST_Segmentize({e}, %s), {srid}) "
            "AND ST_Intersects(ST_Transform({g}, {code}), {e})"
        )
        condition = test.format(
            g=geometry, e=envelope, srid=sql.Literal(self.srid), code=sql.Literal(code)
        )
        return condition, [*box, step, *box]

    def _as_text(self, name: str, width: int | None = None) -> sql.Composed:
        """The column as the GeoPackage holds it: ISO text, `T` between date and time."""
        text = sql.SQL("replace(CAST({} AS text), ' ', 'T')").format(self._column(name))
        if width is None:
            return text
        return sql.SQL("substr({}, 1, {})").format(text, sql.Literal(width))

    def _equals(self, name: str, kind: str, value: str) -> tuple[sql.Composable, list[Any]]:
        column, pg_type = self._column(name), self._pg_types[name]
        if kind == "boolean":
            return sql.SQL("{} = %s").format(column), [_typed(value, kind)]
        if pg_type in PG_NUMBER_TYPES:
            number = _number(value)
            if number is None:  # SQLite finds no number equal to a word either
                return sql.SQL("FALSE"), []
            return sql.SQL("{} = %s").format(column), [number]
        if pg_type in PG_TEXT_TYPES:
            return sql.SQL("{} = %s").format(column), [value]
        width = 10 if kind == "date" else None
        return sql.SQL("{} = %s").format(self._as_text(name, width)), [value]

    def _time_conditions(self, datetime_: str, kind: str) -> list[tuple[sql.Composable, str]]:
        width = 10 if kind == "date" else 19  # as the GeoPackage provider compares them

        def bound(value: str) -> str:
            return value.replace(" ", "T").removesuffix("Z")[:width]

        expression = self._as_text(self.time_field, width)
        if "/" not in datetime_:
            return [(sql.SQL("{} = %s").format(expression), bound(datetime_))]
        start, end = datetime_.split("/", 1)
        found = []
        if start not in ("", ".."):
            found.append((sql.SQL("{} >= %s").format(expression), bound(start)))
        if end not in ("", ".."):
            found.append((sql.SQL("{} <= %s").format(expression), bound(end)))
        return found

    def _order(self, sortby: list[dict[str, str]]) -> sql.Composed:
        """SQLite's order: NULLs smallest, text by code point (COLLATE "C")."""
        kinds = dict(self._columns)
        terms = []
        for sort in sortby:
            name = sort["property"]
            if name not in kinds:
                raise ProviderInvalidQueryError(f"Tri impossible sur : {name}")
            direction = sql.SQL("DESC NULLS LAST" if sort["order"] == "-" else "ASC NULLS FIRST")
            terms.append(sql.SQL("{} {}").format(self._sort_key(name, kinds[name]), direction))
        return sql.SQL(", ").join([*terms, self._column(self.id_field)])

    def _sort_key(self, name: str, kind: str) -> sql.Composable:
        pg_type = self._pg_types[name]
        if pg_type in PG_TEXT_TYPES:
            return sql.SQL('{} COLLATE "C"').format(self._column(name))
        if kind == "date" and pg_type.startswith("timestamp"):  # the GeoPackage's day
            return self._as_text(name, 10)
        return self._column(name)

    def _feature(
        self, row: tuple, select_properties: list[str] | None, skip_geometry: bool
    ) -> dict[str, Any]:
        fid, geojson, *values = row
        properties = {
            name: _pg_json_value(value, kind)
            for (name, kind), value in zip(self._columns, values, strict=True)
            if not select_properties or name in select_properties
        }
        geometry = None
        if geojson is not None and not skip_geometry:
            geometry = json.loads(geojson)
        return {"type": "Feature", "id": fid, "geometry": geometry, "properties": properties}


@contextmanager
def _pg_connect(dsn: str) -> Iterator[psycopg.Connection]:
    """A connection of the store's pool: each request borrows one instead of opening its
    own (a PostgreSQL connection costs a process and a few milliseconds)."""
    with _pool(dsn).connection(timeout=30) as conn:
        yield conn


@functools.cache
def _pool(dsn: str) -> ConnectionPool:
    """One pool per store and worker process, sized by `OPENDATA_PG_POOL_SIZE` (10): the
    worker's threads share it. Connections are checked before they are lent."""
    size = int(os.environ.get("OPENDATA_PG_POOL_SIZE", "10"))
    kwargs = {
        "password": _PASSWORDS.get(dsn),
        "options": PG_OPTIONS,
        "autocommit": True,
        "connect_timeout": 10,
        "application_name": POOL_NAME,
    }
    return ConnectionPool(
        dsn,
        kwargs=kwargs,
        min_size=1,
        max_size=size,
        open=True,
        check=ConnectionPool.check_connection,
        name=POOL_NAME,
    )


@functools.lru_cache(maxsize=256)
def _postgis_columns(
    dsn: str, schema: str, table: str, geometry: str, release: str
) -> tuple[tuple[str, str], ...]:
    """The table's attribute columns and their PostgreSQL types, read once per release
    (a new release replaces the table, and changes `release`)."""
    with _pg_connect(dsn) as conn:
        found = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [schema, table],
        ).fetchall()
    return tuple((name, kind) for name, kind in found if name not in ("ogc_fid", geometry))


def _number(value: str) -> int | float | None:
    """The number SQLite's column affinity would read in `value` (None: a word)."""
    try:
        return int(value)
    except ValueError:
        pass
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None  # "nan", "inf" stay words in SQLite


def _pg_json_value(value: Any, kind: str) -> Any:
    """A PostgreSQL value as the GeoPackage provider returns it."""
    if isinstance(value, datetime.datetime):
        if kind == "date":
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if kind == "integer" and isinstance(value, float | decimal.Decimal) and value % 1 == 0:
        return int(value)  # a table loaded from a release that held integers as reals
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


class CatalogueProvider(BaseProvider):
    """OGC API Records: the catalogue's records, from a JSON list written atomically."""

    def __init__(self, provider_def: dict[str, Any]) -> None:
        super().__init__(provider_def)
        self.records: list[dict[str, Any]] = json.loads(Path(self.data).read_text("utf-8"))
        self.texts = {r["id"]: _searchable_text(r) for r in self.records}
        self._fields = self.get_fields()

    def get_fields(self) -> dict[str, dict[str, str]]:
        return {
            "title": {"type": "string"},
            "description": {"type": "string"},
            "type": {"type": "string"},
            "publisher": {"type": "string"},
            "license": {"type": "string"},
            "updated": {"type": "string", "format": "date"},
            "q": {"type": "string"},
        }

    def query(
        self,
        offset: int = 0,
        limit: int = 10,
        resulttype: str = "results",
        bbox: list[float] | None = None,
        datetime_: str | None = None,
        properties: list[tuple[str, str]] | None = None,
        sortby: list[dict[str, str]] | None = None,
        q: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        found = [
            r
            for r in self.records
            if _matches_text(self.texts[r["id"]], q)
            and _matches_box(r, bbox)
            and _matches_time(r, datetime_)
            and all(str(r["properties"].get(k)) == v for k, v in properties or [] if k != "q")
        ]
        for sort in reversed(sortby or []):
            found.sort(
                key=lambda r, name=sort["property"]: str(r["properties"].get(name, "")),
                reverse=sort["order"] == "-",
            )
        page = [] if resulttype == "hits" else found[offset : offset + limit]
        return {
            "type": "FeatureCollection",
            "features": page,
            "numberMatched": len(found),
            "numberReturned": len(page),
        }

    def get(self, identifier: str, **kwargs: Any) -> dict[str, Any]:
        for record in self.records:
            if record["id"] == identifier:
                return record
        raise ProviderItemNotFoundError(f"Fiche « {identifier} » introuvable.")


def _searchable_text(record: dict[str, Any]) -> str:
    properties = record["properties"]
    themes = [c["id"] for t in properties.get("themes", []) for c in t.get("concepts", [])]
    words = [properties["title"], properties.get("description", "")]
    return " ".join(words + properties.get("keywords", []) + themes).casefold()


def _matches_text(text: str, q: str | None) -> bool:
    """OGC API Records `q`: comma-separated alternatives, each a set of words to find."""
    if not q:
        return True
    alternatives = [a.split() for a in q.casefold().split(",") if a.strip()]
    return any(all(word in text for word in words) for words in alternatives)


def _matches_box(record: dict[str, Any], bbox: list[float] | None) -> bool:
    if not bbox:
        return True
    if record.get("geometry") is None:
        return False
    return bool(shapely.intersects(shapely.geometry.shape(record["geometry"]), shapely.box(*bbox)))


def _matches_time(record: dict[str, Any], datetime_: str | None) -> bool:
    if not datetime_:
        return True
    updated = str(record["properties"].get("updated", ""))[:10]
    if "/" not in datetime_:
        return updated == datetime_[:10]
    start, end = datetime_.split("/", 1)
    return (start in ("", "..") or updated >= start[:10]) and (
        end in ("", "..") or updated <= end[:10]
    )
