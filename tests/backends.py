"""Both store backends for one parametrised suite: the embedded SQLite store and PostGIS.

`postgis_database` creates a throwaway database for the test run (`opendata_test_<random>`
with the PostGIS extension) on the PostgreSQL of 127.0.0.1:5432 (trust auth, user
postgres; `OPENDATA_TEST_PG` overrides the server URL), and drops it at the end. Each test
of the `backend` fixture gets an empty catalog: on PostGIS, its tables and the `donnees`
schema are dropped after the test, so the next store opening runs the migrations again.
Without a reachable server the PostGIS cases are skipped, except in CI (CI=true), where
they fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from catalog.store import CatalogStore
from catalog.store.tables import datasets_table
from core.settings import Settings, load_settings
from pipelines.submission import open_settings_store

BACKENDS = ["sqlite", "postgis"]
PG_SERVER = os.environ.get("OPENDATA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")


@dataclass
class Backend:
    name: str  # sqlite | postgis
    settings: Settings
    store: CatalogStore
    database: str | None = None  # PostgreSQL database name

    @property
    def engine(self) -> sa.Engine:
        return self.store.engine  # type: ignore[attr-defined]

    def ogr_source(self) -> str:
        """The database for GDAL's PostgreSQL driver (`ogrinfo PG:…`)."""
        url = sa.engine.make_url(self.settings.store_url)
        return (
            f"PG:host={url.host} port={url.port or 5432} user={url.username} dbname={url.database}"
        )


def _admin_engine() -> sa.Engine:
    return sa.create_engine(
        f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )


@pytest.fixture(scope="session")
def postgis_database() -> Iterator[str]:
    """A fresh PostGIS database for the run; its SQLAlchemy URL."""
    name = f"opendata_test_{secrets.token_hex(6)}"
    admin = _admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as error:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL injoignable ({PG_SERVER}) : {error}")
    url = f"{PG_SERVER}/{name}"
    try:
        database = sa.create_engine(url, poolclass=sa.pool.NullPool)
        with database.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def empty_postgis(url: str) -> None:
    """Drop the catalog's tables, Alembic's version table and the data schema."""
    tables = [*datasets_table.metadata.tables, "alembic_version"]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS donnees CASCADE"))
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {', '.join(tables)} CASCADE"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Backend]:
    """An isolated deployment (data, inbox, store) on the parametrised backend."""
    monkeypatch.setenv("OPENDATA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OPENDATA_INBOX_DIR", str(tmp_path / "inbox"))
    url = None
    if request.param == "postgis":
        url = request.getfixturevalue("postgis_database")
        monkeypatch.setenv("OPENDATA_STORE_URL", url)
    else:
        monkeypatch.delenv("OPENDATA_STORE_URL", raising=False)
    settings = load_settings()
    store = open_settings_store(settings)
    database = sa.engine.make_url(url).database if url else None
    try:
        yield Backend(request.param, settings, store, database)
    finally:
        store.engine.dispose()  # type: ignore[attr-defined]
        if url:
            empty_postgis(url)


def on_both_backends() -> tuple[Any, Any]:
    """`settings` and `store` fixtures for a test module: assign them at module level
    (`settings, store = on_both_backends()`) and every test of the module that uses them
    runs on SQLite and on PostGIS."""

    @pytest.fixture(name="settings")
    def settings_fixture(backend: Backend) -> Settings:
        return backend.settings

    @pytest.fixture(name="store")
    def store_fixture(backend: Backend) -> CatalogStore:
        return backend.store

    return settings_fixture, store_fixture
