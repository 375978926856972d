"""The search index (issue #20): an entry per listed dataset with its facets, sort keys and
words (a weighted tsvector under a GIN index), its themes, and the index's version. The
store fills it when it opens (`catalog.store.search_index.ensure`).

Revision ID: 0005
Revises: 0004
Create Date: 2027-01-12 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("slug", sa.Text(collation="C"), nullable=False),
        sa.Column("producer", sa.String(length=80), nullable=False),
        sa.Column("access", sa.String(length=20), nullable=False),
        sa.Column("licence", sa.String(length=80), nullable=False),
        sa.Column("geographic", sa.Boolean(), nullable=False),
        sa.Column("title_sort", sa.Text(collation="C"), nullable=False),
        sa.Column("updated", sa.Date(), nullable=False),
        sa.Column("next_due", sa.Date(), nullable=True),
        sa.Column("document", postgresql.TSVECTOR(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_index(
        "ix_search_entries_document",
        "search_entries",
        ["document"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index("ix_search_entries_title", "search_entries", ["title_sort", "slug"])
    op.create_index("ix_search_entries_updated", "search_entries", ["updated", "slug"])
    op.create_index(
        "ix_search_entries_facets",
        "search_entries",
        ["producer", "licence", "geographic", "next_due", "access"],
    )
    op.create_table(
        "search_themes",
        sa.Column("entry", sa.Integer(), nullable=False),
        sa.Column("theme", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["entry"], ["search_entries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("entry", "theme"),
    )
    op.create_index(op.f("ix_search_themes_theme"), "search_themes", ["theme"], unique=False)
    op.create_table(
        "search_state",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("search_state")
    op.drop_index(op.f("ix_search_themes_theme"), table_name="search_themes")
    op.drop_table("search_themes")
    for index in ("document", "title", "updated", "facets"):
        op.drop_index(f"ix_search_entries_{index}", table_name="search_entries")
    op.drop_table("search_entries")
