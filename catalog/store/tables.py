"""The catalog's tables, one SQLAlchemy metadata for every SQL backend: SQLite creates them
(`create_all`), PostgreSQL migrates to them with Alembic (`migrations/`)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

catalog_metadata = sa.MetaData()

datasets_table = sa.Table(
    "datasets",
    catalog_metadata,
    sa.Column("slug", sa.String(80), primary_key=True),
    sa.Column("producer", sa.String(80), nullable=False, index=True),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("licence", sa.JSON, nullable=False),
    sa.Column("current_version", sa.Integer, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("first_published_at", sa.DateTime, nullable=False),
    sa.Column("last_published_at", sa.DateTime, nullable=False),
    sa.Column("last_confirmed_at", sa.DateTime, nullable=False),
)

structures_table = sa.Table(
    "structure_versions",
    catalog_metadata,
    sa.Column("dataset", sa.String(80), sa.ForeignKey("datasets.slug"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("structure", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("current_release", sa.String(40)),
)

releases_table = sa.Table(
    "releases",
    catalog_metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("dataset", sa.String(80), sa.ForeignKey("datasets.slug"), nullable=False, index=True),
    sa.Column("structure_version", sa.Integer, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("published_at", sa.DateTime, nullable=False),
    sa.Column("row_count", sa.Integer, nullable=False),
    sa.Column("distributions", sa.JSON, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("licence", sa.JSON, nullable=False),
    sa.Column("anonymisation", sa.JSON),
)

submissions_table = sa.Table(
    "submissions",
    catalog_metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("producer", sa.String(80), nullable=False, index=True),
    sa.Column("dataset", sa.String(80), index=True),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("release", sa.String(40)),
    sa.Column("report", sa.JSON, nullable=False),
)


# Lifecycle (annex §3.2). New tables rather than new columns: existing stores gain them
# with create_all, no migration needed.
notices_table = sa.Table(
    "change_notices",
    catalog_metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("dataset", sa.String(80), sa.ForeignKey("datasets.slug"), nullable=False, index=True),
    sa.Column("from_version", sa.Integer, nullable=False),
    sa.Column("structure", sa.JSON, nullable=False),
    sa.Column("effective_date", sa.Date, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("mapping", sa.JSON),
    sa.Column("announced_at", sa.DateTime, nullable=False),
    sa.Column("switched_at", sa.DateTime),
    sa.Column("retired_at", sa.DateTime),
)

events_table = sa.Table(
    "events",
    catalog_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(80), nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False, index=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("details", sa.JSON, nullable=False),
    # one event per (dataset, key): the governance job may run twice and tell once
    sa.Column("key", sa.String(200), nullable=False, unique=True),
)

subscriptions_table = sa.Table(
    "subscriptions",
    catalog_metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("dataset", sa.String(80), index=True),
    sa.Column("secret", sa.String(80), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

deliveries_table = sa.Table(
    "deliveries",
    catalog_metadata,
    sa.Column("event", sa.Integer, sa.ForeignKey("events.id"), primary_key=True),
    sa.Column("subscription", sa.String(40), sa.ForeignKey("subscriptions.id"), primary_key=True),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime),
    sa.Column("delivered_at", sa.DateTime),
    sa.Column("last_error", sa.Text),
)

mails_table = sa.Table(
    "mails_sent",
    catalog_metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # what was told, to whom, about what
    sa.Column("sent_at", sa.DateTime, nullable=False),
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
)

# A mail that could not leave, acknowledged by the data team as delivered otherwise (issue
# #19: a depublication waits for its warning, delivered by mail or so acknowledged).
mail_acknowledgements_table = sa.Table(
    "mail_acknowledgements",
    catalog_metadata,
    sa.Column("key", sa.String(200), primary_key=True),  # the mail's key (mails_sent.key)
    sa.Column("dataset", sa.String(80), nullable=False, index=True),
    sa.Column("acknowledged_at", sa.DateTime, nullable=False),
    sa.Column("actor", sa.String(250), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

usage_table = sa.Table(
    "usage_daily",
    catalog_metadata,
    sa.Column("dataset", sa.String(80), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("kind", sa.String(20), primary_key=True),  # telechargement | api | page
    sa.Column("count", sa.Integer, nullable=False),
)


# Pull delivery (issue #7): the last check of each dataset's declared source.
source_checks_table = sa.Table(
    "source_checks",
    catalog_metadata,
    sa.Column("dataset", sa.String(80), primary_key=True),
    sa.Column("endpoint", sa.Text, nullable=False),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.String(64)),
    sa.Column("length", sa.BigInteger),
    sa.Column("sha256", sa.String(64)),
    sa.Column("last_checked_at", sa.DateTime),
    sa.Column("last_success_at", sa.DateTime),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("failing_since", sa.DateTime),
)


# Accounts (issue #9): API tokens, only the SHA-256 of their secret, and the audit log.
tokens_table = sa.Table(
    "api_tokens",
    catalog_metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("secret_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("kind", sa.String(20), nullable=False),  # producteur | equipe-data
    sa.Column("commune", sa.String(80), index=True),
    sa.Column("agent", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
    sa.Column("last_used_at", sa.DateTime),
)

audit_table = sa.Table(
    "audit_log",
    catalog_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(250), nullable=False),
    sa.Column("actor_kind", sa.String(20), nullable=False),
    sa.Column("actor_id", sa.String(200), nullable=False),
    sa.Column("action", sa.String(60), nullable=False, index=True),
    sa.Column("commune", sa.String(80), index=True),
    sa.Column("target", sa.String(200)),
    sa.Column("details", sa.JSON, nullable=False),
)

# The portal's sessions (issue #16): the cookie holds a random identifier only; the row,
# under the SHA-256 of that identifier, holds who is signed in. Signing out deletes it.
sessions_table = sa.Table(
    "portal_sessions",
    catalog_metadata,
    sa.Column("id_sha256", sa.String(64), primary_key=True),
    sa.Column("issuer", sa.Text, nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("person", sa.JSON, nullable=False),
    sa.Column("id_token", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False, index=True),
)

# The search index (issue #20, `catalog.store.search_index`): one entry per dataset the
# portal may list, its themes, and the index's version. The words are in `search_text` (an
# FTS5 table, SQLite) or in `document` (a tsvector, PostgreSQL; unused on SQLite).
# Entries are never updated, only deleted and inserted again under a new id (never
# reused: AUTOINCREMENT on SQLite, a sequence on PostgreSQL), so that (max(id), count) tells
# one state of the index from another (`search_index.generation`). Sort keys compare by code
# point on both backends (collation "C" on PostgreSQL), so that their indexes give the order.
_CODE_POINT_TEXT = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
search_entries_table = sa.Table(
    "search_entries",
    catalog_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("slug", _CODE_POINT_TEXT, nullable=False, unique=True),
    sa.Column("producer", sa.String(80), nullable=False),
    sa.Column("access", sa.String(20), nullable=False),
    sa.Column("licence", sa.String(80), nullable=False),
    sa.Column("geographic", sa.Boolean, nullable=False),
    sa.Column("title_sort", _CODE_POINT_TEXT, nullable=False),
    sa.Column("updated", sa.Date, nullable=False),
    sa.Column("next_due", sa.Date),  # None: no periodic commitment, never late
    sa.Column("document", sa.Text().with_variant(postgresql.TSVECTOR(), "postgresql")),
    sa.Index("ix_search_entries_document", "document", postgresql_using="gin"),
    sa.Index("ix_search_entries_title", "title_sort", "slug"),
    sa.Index("ix_search_entries_updated", "updated", "slug"),
    # the facets' columns: counting them reads this index only
    sa.Index("ix_search_entries_facets", "producer", "licence", "geographic", "next_due", "access"),
    sqlite_autoincrement=True,
)

search_themes_table = sa.Table(
    "search_themes",
    catalog_metadata,
    sa.Column(
        "entry",
        sa.Integer,
        sa.ForeignKey("search_entries.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("theme", sa.String(40), primary_key=True, index=True),
)

search_state_table = sa.Table(
    "search_state",
    catalog_metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)

# One row per change of what the services show of a dataset (a release, its metadata, its
# status, a notice): the OGC services read the changes after the last one they applied
# (`Releases.changes`), one query, rather than the whole catalogue.
changes_table = sa.Table(
    "catalogue_changes",
    catalog_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dataset", sa.String(80), nullable=False),
    sa.Column("at", sa.DateTime, nullable=False),
)

# A number that changes with every change of what the catalog serves (datasets, their
# structure versions, releases and change notices), in whatever process makes it: triggers
# add 1 to it (`sql.GENERATION_TRIGGERS` on SQLite, migration 0007 on PostgreSQL). Readers
# keep what they read while it stays the same (`catalog.web.lookups`).
generation_table = sa.Table(
    "catalog_generation",
    catalog_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.BigInteger, nullable=False),
)

GENERATION_SOURCES = ("datasets", "structure_versions", "releases", "change_notices")
