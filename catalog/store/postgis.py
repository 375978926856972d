"""The catalog store on PostgreSQL/PostGIS (`OPENDATA_STORE_URL=postgresql+psycopg://…`).

The catalog's tables are those of `catalog.store`, created and upgraded by Alembic
(`catalog/store/migrations/`) when the store opens, under an advisory lock so that the catalog
service and the Airflow workers opening the store together migrate it once. SQLite keeps
`create_all` (see `SqlCatalogStore`).

The published data live in schema `donnees`, for the OGC services and SQL reusers:

- one table per structure version, `donnees."<slug>__v<N>"`, holding the rows of that
  version's current release (`ogc_fid` primary key, PostGIS geometry in the release's CRS
  with a GIST index for geographic data);
- one view per dataset, `donnees."<slug>"`, selecting the dataset's current version.

These tables follow the lifecycle (`pipelines/governance.py`): a retired structure
version's table is dropped (`drop_version_data`), a depublished dataset's tables and view
too (`drop_dataset_data`), while its files and history stay in the file store and the
catalog (the archive). Republishing reloads them: a new release through the switch, a
confirmation (same content) from the current releases' Parquet (`confirm`).

A release's Parquet (GeoParquet for maps) is loaded with COPY into a fresh table, inside
the transaction that switches the catalog to the release; the old table is then dropped,
the new one renamed and the view recreated, still in that transaction. A failure at any
step rolls everything back: the previous release stays served, in the catalog and in
PostGIS alike. Names longer than PostgreSQL's 63 bytes are shortened with a hash.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import shapely
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool

from catalog.store import search_index
from catalog.store.concerns import LayerSource
from catalog.store.sql import SqlCatalogStore, search_cache_size
from catalog.store.tables import datasets_table, notices_table, structures_table
from core.records import NewRelease, SubmissionRecord

DATA_SCHEMA = "donnees"
MIGRATIONS = Path(__file__).parent / "migrations"
FID = "ogc_fid"
MAX_IDENTIFIER = 63
BATCH_ROWS = 50_000
_INDEXES = ("_pk", "_geom")  # suffixes of the primary key's and the GIST index's names
MIGRATION_LOCK = 0x0DA7A_C0DE  # pg_advisory_lock key: one migration at a time

_SIMPLE_TYPES: list[tuple[Any, str]] = [
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_integer, "bigint"),
    (pa.types.is_floating, "double precision"),
    (pa.types.is_decimal, "numeric"),
    (pa.types.is_date, "date"),
    (pa.types.is_time, "time"),
    (pa.types.is_string, "text"),
    (pa.types.is_large_string, "text"),
]


class PostgisTables:
    """The PostGIS capability (`SpatialTables`): each structure version's rows in a table
    of schema `donnees`, for MapServer, SQL reusers and the rows API."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    # --- the lifecycle: what leaves the services leaves PostGIS ---------------------------------

    def drop_version_data(self, slug: str, version: int) -> None:
        """A retired structure version: its table goes (the alias view never reads it)."""
        with self.engine.begin() as conn:
            cursor = conn.connection.driver_connection.cursor()
            cursor.execute(
                sql.SQL("DROP TABLE IF EXISTS {}").format(
                    sql.Identifier(DATA_SCHEMA, table_name(slug, version))
                )
            )

    def drop_dataset_data(self, slug: str) -> None:
        """A depublished dataset: its view and every version's table go, in one transaction.
        Its files and history stay in the file store and the catalog."""
        with self.engine.begin() as conn:
            versions = conn.execute(
                sa.select(structures_table.c.version).where(structures_table.c.dataset == slug)
            ).scalars()
            cursor = conn.connection.driver_connection.cursor()
            cursor.execute(
                sql.SQL("DROP VIEW IF EXISTS {}").format(
                    sql.Identifier(DATA_SCHEMA, view_name(slug))
                )
            )
            for version in versions:
                cursor.execute(
                    sql.SQL("DROP TABLE IF EXISTS {}").format(
                        sql.Identifier(DATA_SCHEMA, table_name(slug, version))
                    )
                )

    # --- what the OGC services read ---------------------------------------------------------------

    def layer_source(self, slug: str, version: int) -> LayerSource | None:
        """The version's table as MapServer reads it; None when it is not loaded."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    "SELECT f_geometry_column, srid FROM geometry_columns "
                    "WHERE f_table_schema = :schema AND f_table_name = :table"
                ),
                {"schema": DATA_SCHEMA, "table": table_name(slug, version)},
            ).first()
        if row is None or not row.srid:
            return None
        return LayerSource(
            table=f"{DATA_SCHEMA}.{table_name(slug, version)}",
            geometry=str(row.f_geometry_column),
            srid=int(row.srid),
            dsn=libpq_dsn(self.engine.url),
            password=self.engine.url.password,
        )


class PostgisCatalogStore(SqlCatalogStore):
    """`SqlCatalogStore` on PostgreSQL, with each structure version's rows in PostGIS."""

    def __init__(self, url: str, files_dir: Path) -> None:
        # not SqlCatalogStore.__init__: Alembic, not create_all, owns the schema here
        self.engine = sa.create_engine(url, pool_pre_ping=True)
        self.files_dir = files_dir
        files_dir.mkdir(parents=True, exist_ok=True)
        upgrade_schema(self.engine)
        self.spatial = PostgisTables(self.engine)
        self._answers = search_index.AnswerCache(search_cache_size())
        self._generation_pool: ConnectionPool | None = None

    text_index: search_index.TextIndex = search_index.PostgresText()

    def generation(self) -> int:
        """Read on every request of the web side: through a small pool of its own (the
        engine's pings and resets would triple its round trips)."""
        if self._generation_pool is None:
            conninfo = make_conninfo(libpq_dsn(self.engine.url), password=self.engine.url.password)
            self._generation_pool = ConnectionPool(
                conninfo, kwargs={"autocommit": True}, min_size=1, max_size=4, name="generation"
            )
        for attempt in (1, 2):  # a connection the server closed: once more, anew
            try:
                with self._generation_pool.connection() as conn:
                    row = conn.execute("SELECT value FROM catalog_generation").fetchone()
                return int(row[0]) if row else 0
            except psycopg.OperationalError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._generation_pool is not None:
            self._generation_pool.close()
            self._generation_pool = None
        super().close()

    def _switch(
        self, conn: sa.Connection, new: NewRelease, release_id: str, submission: SubmissionRecord
    ) -> None:
        """The catalog's switch, then the load of the release's rows: one transaction."""
        super()._switch(conn, new, release_id, submission)
        parquet = next(d for d in new.distributions if d.format == "parquet")
        path = self._release_dir(new.dataset, release_id) / parquet.filename
        load_version_table(conn, new.dataset, new.structure_version, path, parquet.crs)
        current = conn.execute(
            sa.select(datasets_table.c.current_version).where(datasets_table.c.slug == new.dataset)
        ).scalar_one()
        replace_alias_view(conn, new.dataset, current)

    def confirm(
        self,
        slug: str,
        submission: SubmissionRecord,
        metadata: dict[str, Any],
        licence: dict[str, Any],
    ) -> None:
        """A confirmation republishes a depublished dataset: its data come back too."""
        super().confirm(slug, submission, metadata, licence)
        with self.engine.begin() as conn:
            if not _relation_exists(conn, view_name(slug)):
                self._reload_dataset(conn, slug)

    def _reload_dataset(self, conn: sa.Connection, slug: str) -> None:
        """Load every served structure version's current release, then the alias view."""
        retired = set(
            conn.execute(
                sa.select(notices_table.c.from_version).where(
                    notices_table.c.dataset == slug, notices_table.c.retired_at.is_not(None)
                )
            ).scalars()
        )
        versions = conn.execute(
            sa.select(structures_table.c.version, structures_table.c.current_release).where(
                structures_table.c.dataset == slug
            )
        ).all()
        for version, release_id in versions:
            if version in retired or release_id is None:
                continue
            release = self.current_release(slug, version)
            parquet = self.release_path(release, "parquet") if release else None
            if release is None or parquet is None:
                continue
            crs = next((d.crs for d in release.distributions if d.format == "parquet"), None)
            load_version_table(conn, slug, version, parquet, crs)
        current = conn.execute(
            sa.select(datasets_table.c.current_version).where(datasets_table.c.slug == slug)
        ).scalar_one()
        if _relation_exists(conn, table_name(slug, current)):
            replace_alias_view(conn, slug, current)


def libpq_dsn(url: sa.URL) -> str:
    """libpq's `key=value` connection string for the store's URL, without its password
    (given to MapServer through PGPASSWORD instead: never in a map file or a log)."""
    parts = {
        "host": url.host,
        "port": url.port,
        "dbname": url.database,
        "user": url.username,
    }
    parts |= {k: v for k, v in url.query.items() if isinstance(v, str) and k != "password"}
    return " ".join(f"{k}={_libpq_value(v)}" for k, v in parts.items() if v not in (None, ""))


def _libpq_value(value: object) -> str:
    text = str(value)
    if text and not any(c in text for c in " '\\"):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _relation_exists(conn: sa.Connection, name: str) -> bool:
    found = conn.execute(
        sa.text("SELECT to_regclass(:name)"),
        {"name": sql.Identifier(DATA_SCHEMA, name).as_string(conn.connection.driver_connection)},
    ).scalar()
    return found is not None


# --- schema migrations -------------------------------------------------------------------------


def alembic_config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade_schema(engine: sa.Engine) -> None:
    """Bring the catalog's tables to Alembic's head revision (a no-op when they are)."""
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        command.upgrade(alembic_config(conn), "head")
        if not search_index.up_to_date(conn):  # under the lock: one rebuild at a time
            search_index.rebuild(conn, search_index.PostgresText())


# --- data tables ---------------------------------------------------------------------------------


def table_name(slug: str, version: int) -> str:
    return _identifier(slug, f"__v{version}")


def view_name(slug: str) -> str:
    return _identifier(slug, "")


def _identifier(slug: str, suffix: str) -> str:
    name = slug + suffix
    if len(name.encode()) <= MAX_IDENTIFIER:
        return name
    digest = hashlib.sha256(slug.encode()).hexdigest()[:8]
    keep = MAX_IDENTIFIER - len(suffix) - len(digest) - 1
    return f"{slug.encode()[:keep].decode(errors='ignore')}_{digest}{suffix}"


def load_version_table(
    conn: sa.Connection, slug: str, version: int, parquet: Path, crs: int | None
) -> int:
    """Load `parquet` into a new table, then put it in place of the version's table.

    The rows go through COPY (CSV, built by Arrow in batches); the caller's transaction
    makes the replacement atomic. Returns the number of rows loaded."""
    final = table_name(slug, version)
    token = uuid.uuid4().hex[:8]  # the loading table's names never meet the served one's
    loading = _identifier(slug, f"__v{version}__{token}")
    loading_pk, loading_geom = (_identifier(slug, f"__v{version}__{token}{s}") for s in _INDEXES)
    source = pq.ParquetFile(parquet)
    geometry = _geometry_column(source.schema_arrow)
    columns = [f for f in source.schema_arrow if not f.name.startswith("__index_level_")]
    cursor = conn.connection.driver_connection.cursor()
    target = sql.Identifier(DATA_SCHEMA, loading)
    cursor.execute(_create_table(target, loading_pk, columns, geometry, crs))
    loaded = _copy_rows(cursor, target, source, [f.name for f in columns], geometry, crs)
    if geometry is not None:
        cursor.execute(
            sql.SQL("CREATE INDEX {} ON {} USING GIST ({})").format(
                sql.Identifier(loading_geom), target, sql.Identifier(geometry)
            )
        )
    cursor.execute(sql.SQL("ANALYZE {}").format(target))
    cursor.execute(
        sql.SQL("DROP TABLE IF EXISTS {} CASCADE").format(sql.Identifier(DATA_SCHEMA, final))
    )
    cursor.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(target, sql.Identifier(final)))
    for index, suffix in zip((loading_pk, loading_geom), _INDEXES, strict=True):
        if suffix == "_geom" and geometry is None:
            continue
        cursor.execute(
            sql.SQL("ALTER INDEX {} RENAME TO {}").format(
                sql.Identifier(DATA_SCHEMA, index),
                sql.Identifier(_identifier(slug, f"__v{version}{suffix}")),
            )
        )
    return loaded


def replace_alias_view(conn: sa.Connection, slug: str, version: int) -> None:
    """`donnees."<slug>"`: the rows of the dataset's current structure version."""
    cursor = conn.connection.driver_connection.cursor()
    view = sql.Identifier(DATA_SCHEMA, view_name(slug))
    cursor.execute(sql.SQL("DROP VIEW IF EXISTS {}").format(view))
    cursor.execute(
        sql.SQL("CREATE VIEW {} AS SELECT * FROM {}").format(
            view, sql.Identifier(DATA_SCHEMA, table_name(slug, version))
        )
    )


def _geometry_column(schema: pa.Schema) -> str | None:
    geo = (schema.metadata or {}).get(b"geo")
    if geo is None:
        return None
    return json.loads(geo)["primary_column"]


def _create_table(
    target: sql.Composed,
    primary_key: str,
    columns: list[pa.Field],
    geometry: str | None,
    crs: int | None,
) -> sql.Composed:
    definitions = [
        sql.SQL("{} bigint GENERATED ALWAYS AS IDENTITY CONSTRAINT {} PRIMARY KEY").format(
            sql.Identifier(FID), sql.Identifier(primary_key)
        )
    ]
    for field in columns:
        if field.name == geometry:
            kind = sql.SQL(f"geometry(Geometry, {int(crs or 0)})")
        else:
            kind = sql.SQL(_pg_type(field.type))
        definitions.append(sql.SQL("{} {}").format(sql.Identifier(field.name), kind))
    return sql.SQL("CREATE TABLE {} ({})").format(target, sql.SQL(", ").join(definitions))


def _pg_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    return next((name for test, name in _SIMPLE_TYPES if test(arrow_type)), "text")


def _copy_rows(
    cursor: Any,
    target: sql.Composed,
    source: pq.ParquetFile,
    names: list[str],
    geometry: str | None,
    crs: int | None,
) -> int:
    """COPY the rows in CSV, one Arrow batch at a time (bounded memory)."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        target, sql.SQL(", ").join(map(sql.Identifier, names))
    )
    loaded = 0
    with cursor.copy(statement) as copy:
        for batch in source.iter_batches(batch_size=BATCH_ROWS, columns=names):
            copy.write(_csv_chunk(batch, geometry, crs))
            loaded += batch.num_rows
    return loaded


def _csv_chunk(batch: pa.RecordBatch, geometry: str | None, crs: int | None) -> bytes:
    table = pa.Table.from_batches([batch])
    for index, field in enumerate(table.schema):
        if field.name == geometry:
            table = table.set_column(index, field.name, _hex_ewkb(table[field.name], crs))
        elif pa.types.is_dictionary(field.type):
            table = table.set_column(
                index, field.name, pc.cast(table[field.name], field.type.value_type)
            )
        elif pa.types.is_nested(field.type):
            table = table.set_column(index, field.name, _as_json(table[field.name]))
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, write_options=pacsv.WriteOptions(include_header=False))
    return buffer.getvalue()


def _hex_ewkb(column: pa.ChunkedArray, crs: int | None) -> pa.Array:
    geometries = shapely.from_wkb(column.to_numpy(zero_copy_only=False))
    if crs:
        geometries = shapely.set_srid(geometries, crs)
    return pa.array(shapely.to_wkb(geometries, hex=True, include_srid=bool(crs)), pa.string())


def _as_json(column: pa.ChunkedArray) -> pa.Array:
    values = [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()]
    return pa.array(values, pa.string())


def data_tables(engine: sa.Engine) -> Iterator[str]:
    """The names of the tables of schema `donnees` (for tests and the data team)."""
    with engine.connect() as conn:
        yield from conn.execute(
            sa.text("SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY tablename"),
            {"s": DATA_SCHEMA},
        ).scalars()
