"""Initial catalog schema: every table of `catalog.store` (catalog, lifecycle, webhooks,
mails, usage, pull-delivery source checks), PostGIS and the `donnees` schema that holds
the published data (one table per structure version, one view per dataset).

Revision ID: 0001
Revises:
Create Date: 2026-11-23 16:06:22.416630
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # PostGIS: a no-op when the database administrator created it already (the usual case:
    # creating it needs a superuser).
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.execute("CREATE SCHEMA IF NOT EXISTS donnees")
    op.create_table(
        "datasets",
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("producer", sa.String(length=80), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("licence", sa.JSON(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("first_published_at", sa.DateTime(), nullable=False),
        sa.Column("last_published_at", sa.DateTime(), nullable=False),
        sa.Column("last_confirmed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("slug"),
    )
    op.create_index(op.f("ix_datasets_producer"), "datasets", ["producer"], unique=False)
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dataset", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    op.create_index(op.f("ix_events_at"), "events", ["at"], unique=False)
    op.create_index(op.f("ix_events_dataset"), "events", ["dataset"], unique=False)
    op.create_table(
        "mails_sent",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "source_checks",
        sa.Column("dataset", sa.String(length=80), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.String(length=64), nullable=True),
        sa.Column("length", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(), nullable=True),
        sa.Column("last_success_at", sa.DateTime(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failing_since", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("dataset"),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("producer", sa.String(length=80), nullable=False),
        sa.Column("dataset", sa.String(length=80), nullable=True),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("release", sa.String(length=40), nullable=True),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_submissions_dataset"), "submissions", ["dataset"], unique=False)
    op.create_index(op.f("ix_submissions_producer"), "submissions", ["producer"], unique=False)
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("dataset", sa.String(length=80), nullable=True),
        sa.Column("secret", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_subscriptions_dataset"), "subscriptions", ["dataset"], unique=False)
    op.create_table(
        "usage_daily",
        sa.Column("dataset", sa.String(length=80), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("dataset", "day", "kind"),
    )
    op.create_table(
        "change_notices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("dataset", sa.String(length=80), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=False),
        sa.Column("structure", sa.JSON(), nullable=False),
        sa.Column("effective_date", sa.Date(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("mapping", sa.JSON(), nullable=True),
        sa.Column("announced_at", sa.DateTime(), nullable=False),
        sa.Column("switched_at", sa.DateTime(), nullable=True),
        sa.Column("retired_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset"],
            ["datasets.slug"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_change_notices_dataset"), "change_notices", ["dataset"], unique=False)
    op.create_table(
        "deliveries",
        sa.Column("event", sa.Integer(), nullable=False),
        sa.Column("subscription", sa.String(length=40), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event"],
            ["events.id"],
        ),
        sa.ForeignKeyConstraint(
            ["subscription"],
            ["subscriptions.id"],
        ),
        sa.PrimaryKeyConstraint("event", "subscription"),
    )
    op.create_table(
        "releases",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("dataset", sa.String(length=80), nullable=False),
        sa.Column("structure_version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("distributions", sa.JSON(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("licence", sa.JSON(), nullable=False),
        sa.Column("anonymisation", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset"],
            ["datasets.slug"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_releases_dataset"), "releases", ["dataset"], unique=False)
    op.create_table(
        "structure_versions",
        sa.Column("dataset", sa.String(length=80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("structure", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("current_release", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["dataset"],
            ["datasets.slug"],
        ),
        sa.PrimaryKeyConstraint("dataset", "version"),
    )


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS donnees CASCADE")
    op.drop_table("structure_versions")
    op.drop_index(op.f("ix_releases_dataset"), table_name="releases")
    op.drop_table("releases")
    op.drop_table("deliveries")
    op.drop_index(op.f("ix_change_notices_dataset"), table_name="change_notices")
    op.drop_table("change_notices")
    op.drop_table("usage_daily")
    op.drop_index(op.f("ix_subscriptions_dataset"), table_name="subscriptions")
    op.drop_table("subscriptions")
    op.drop_index(op.f("ix_submissions_producer"), table_name="submissions")
    op.drop_index(op.f("ix_submissions_dataset"), table_name="submissions")
    op.drop_table("submissions")
    op.drop_table("source_checks")
    op.drop_table("mails_sent")
    op.drop_index(op.f("ix_events_dataset"), table_name="events")
    op.drop_index(op.f("ix_events_at"), table_name="events")
    op.drop_table("events")
    op.drop_index(op.f("ix_datasets_producer"), table_name="datasets")
    op.drop_table("datasets")
