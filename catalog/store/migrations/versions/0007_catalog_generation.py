"""The catalog's generation (issue #20): a number that changes with every change of the
datasets, their structure versions, releases and change notices, whatever process makes it
(statement triggers), so that the web side keeps its look-ups of releases, which never
change, while it stays the same, and reads them again as soon as it moves.

Revision ID: 0007
Revises: 0006
Create Date: 2027-01-12 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SOURCES = ("datasets", "structure_versions", "releases", "change_notices")


def upgrade() -> None:
    op.create_table(
        "catalog_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO catalog_generation (id, value) VALUES (1, 0)")
    op.execute(
        "CREATE OR REPLACE FUNCTION catalog_generation_bump() RETURNS trigger "
        "LANGUAGE plpgsql AS $$ BEGIN "
        "UPDATE catalog_generation SET value = value + 1 WHERE id = 1; RETURN NULL; END $$"
    )
    for table in SOURCES:
        op.execute(
            f"CREATE TRIGGER {table}_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION catalog_generation_bump()"
        )


def downgrade() -> None:
    for table in SOURCES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_generation ON {table}")
    op.execute("DROP FUNCTION IF EXISTS catalog_generation_bump()")
    op.drop_table("catalog_generation")
