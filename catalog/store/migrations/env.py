"""Alembic environment of the catalog store.

Run by `catalog.store.postgis.upgrade_schema` at store opening, which hands over an open
connection (`config.attributes["connection"]`); from the command line, set
`OPENDATA_STORE_URL` and run `alembic -c catalog/store/migrations/alembic.ini upgrade head`.
Only the catalog's own tables (those of `catalog.store`'s MetaData) are managed: the
data tables and views of schema `donnees` are created by the store at publication.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from catalog.store.tables import datasets_table

config = context.config
target_metadata = datasets_table.metadata  # every table of catalog.store


def _include_object(
    obj: object, name: str, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Ignore what PostGIS owns (spatial_ref_sys, topology…) and the data schema."""
    return not (type_ == "table" and reflected and compare_to is None)


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=_include_object,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = sa.create_engine(os.environ["OPENDATA_STORE_URL"], poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        _run(connection)


if context.is_offline_mode():
    context.configure(
        url=os.environ["OPENDATA_STORE_URL"], target_metadata=target_metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
