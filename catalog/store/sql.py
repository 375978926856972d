"""The catalog store on SQL: `SqlCatalogStore` keeps the catalog in any SQLAlchemy
database (SQLite for the embedded default; PostgreSQL speaks the same SQL) and the
distributions as files, one immutable folder per release. Publication is atomic: files are
staged (with the rows API's copy, `rows_copy`), moved into a new release folder, and the
switch of the current release is a single database transaction, so a failure at any step
leaves the previous release served.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import threading
import uuid
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from catalog.store import rows_copy, search_index
from catalog.store.concerns import CatalogStore, SpatialTables
from catalog.store.tables import (
    GENERATION_SOURCES,
    audit_table,
    catalog_metadata,
    changes_table,
    datasets_table,
    deliveries_table,
    events_table,
    generation_table,
    mail_acknowledgements_table,
    mails_table,
    notices_table,
    releases_table,
    sessions_table,
    source_checks_table,
    structures_table,
    submissions_table,
    subscriptions_table,
    tokens_table,
    usage_table,
)
from core import clock
from core.records import (
    ApiToken,
    AuditEntry,
    ChangeNotice,
    Dataset,
    Distribution,
    Event,
    MailAcknowledgement,
    NewRelease,
    PortalSession,
    Release,
    SourceState,
    StructureVersion,
    SubmissionRecord,
    Subscription,
)


class SqlCatalogStore(CatalogStore):
    def __init__(self, url: str, files_dir: Path) -> None:
        self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.files_dir = files_dir
        files_dir.mkdir(parents=True, exist_ok=True)
        catalog_metadata.create_all(self.engine)
        search_index.ensure(self.engine, self.text_index)
        self._answers = search_index.AnswerCache(search_cache_size())
        self._generation_readers = threading.local()  # a kept connection per thread
        if self.engine.dialect.name == "sqlite":
            _sqlite_generation(self.engine)

    spatial: SpatialTables | None = None  # rows in files only; PostGIS has tables
    text_index: search_index.TextIndex = search_index.SqliteText()

    def close(self) -> None:
        self.engine.dispose()

    # --- reading -----------------------------------------------------------------------------

    def list_datasets(self) -> list[Dataset]:
        query = sa.select(datasets_table).order_by(datasets_table.c.slug)
        with self.engine.connect() as conn:
            return [_dataset(row) for row in conn.execute(query).mappings()]

    def get_dataset(self, slug: str) -> Dataset | None:
        query = sa.select(datasets_table).where(datasets_table.c.slug == slug)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _dataset(row) if row else None

    def generation(self) -> int:
        """Read on every request of the web side: on SQLite, through a connection its
        thread keeps (WAL: it sees every commit, from any process, at its next read)."""
        database = self.engine.url.database
        if self.engine.dialect.name != "sqlite" or not database or database == ":memory:":
            with self.engine.connect() as conn:
                return int(conn.execute(sa.select(generation_table.c.value)).scalar() or 0)
        file = os.stat(database)  # a restore replaces the file: a new connection then
        kept = getattr(self._generation_readers, "kept", None)
        if kept is None or kept[0] != (file.st_dev, file.st_ino):
            if kept is not None:
                kept[1].close()
            connection = sqlite3.connect(database, timeout=30, isolation_level=None)
            kept = self._generation_readers.kept = ((file.st_dev, file.st_ino), connection)
        row = kept[1].execute("SELECT value FROM catalog_generation").fetchone()
        return int(row[0]) if row else 0

    def structure_versions(self, slug: str) -> list[StructureVersion]:
        query = (
            sa.select(structures_table)
            .where(structures_table.c.dataset == slug)
            .order_by(structures_table.c.version)
        )
        with self.engine.connect() as conn:
            return [StructureVersion(**row) for row in conn.execute(query).mappings()]

    def current_release(self, slug: str, version: int | None = None) -> Release | None:
        dataset = self.get_dataset(slug)
        if dataset is None:
            return None
        wanted = version if version is not None else dataset.current_version
        query = (
            sa.select(releases_table)
            .join(
                structures_table,
                sa.and_(
                    structures_table.c.dataset == releases_table.c.dataset,
                    structures_table.c.current_release == releases_table.c.id,
                ),
            )
            .where(structures_table.c.dataset == slug, structures_table.c.version == wanted)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return _release(row) if row else None

    def current_releases(self) -> dict[str, Release]:
        query = (
            sa.select(releases_table)
            .join(structures_table, structures_table.c.current_release == releases_table.c.id)
            .join(
                datasets_table,
                sa.and_(
                    datasets_table.c.slug == structures_table.c.dataset,
                    datasets_table.c.current_version == structures_table.c.version,
                ),
            )
        )
        with self.engine.connect() as conn:
            return {row["dataset"]: _release(row) for row in conn.execute(query).mappings()}

    def search(
        self, query: search_index.SearchQuery, readers: search_index.Readers, today: date
    ) -> search_index.SearchPage:
        with self.engine.connect() as conn:
            return self._answers.search(conn, self.text_index, query, readers, today)

    def listed(self, slugs: list[str]) -> list[tuple[Dataset, Release]]:
        """The datasets named, with their current release, in the order given."""
        if not slugs:
            return []
        datasets = sa.select(datasets_table).where(datasets_table.c.slug.in_(slugs))
        # from the datasets named, by primary keys only (never a scan of every release)
        releases = (
            sa.select(releases_table)
            .select_from(datasets_table)
            .join(
                structures_table,
                sa.and_(
                    structures_table.c.dataset == datasets_table.c.slug,
                    structures_table.c.version == datasets_table.c.current_version,
                ),
            )
            .join(releases_table, releases_table.c.id == structures_table.c.current_release)
            .where(datasets_table.c.slug.in_(slugs))
        )
        with self.engine.connect() as conn:
            found = {row["slug"]: _dataset(row) for row in conn.execute(datasets).mappings()}
            current = {row["dataset"]: _release(row) for row in conn.execute(releases).mappings()}
        return [(found[s], current[s]) for s in slugs if s in found and s in current]

    def changes(self, after: int) -> list[tuple[int, str]]:
        query = (
            sa.select(changes_table.c.id, changes_table.c.dataset)
            .where(changes_table.c.id > after)
            .order_by(changes_table.c.id)
        )
        with self.engine.connect() as conn:
            return [(row.id, row.dataset) for row in conn.execute(query)]

    def releases(self, slug: str) -> list[Release]:
        query = (
            sa.select(releases_table)
            .where(releases_table.c.dataset == slug)
            .order_by(releases_table.c.published_at, releases_table.c.id)
        )
        with self.engine.connect() as conn:
            return [_release(row) for row in conn.execute(query).mappings()]

    def submission(self, submission_id: str) -> SubmissionRecord | None:
        query = sa.select(submissions_table).where(submissions_table.c.id == submission_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return SubmissionRecord(**row) if row else None

    def submissions(self, producer: str | None = None) -> list[SubmissionRecord]:
        query = sa.select(submissions_table).order_by(submissions_table.c.received_at)
        if producer:
            query = query.where(submissions_table.c.producer == producer)
        with self.engine.connect() as conn:
            return [SubmissionRecord(**row) for row in conn.execute(query).mappings()]

    def release_path(self, release: Release, fmt: str) -> Path | None:
        distribution = release.distribution(fmt)
        if distribution is None:
            return None
        return self._release_dir(release.dataset, release.id) / distribution.filename

    # --- writing -----------------------------------------------------------------------------

    def staging_dir(self) -> Path:
        path = self.files_dir / ".staging" / uuid.uuid4().hex
        path.mkdir(parents=True)
        return path

    def publish(self, new: NewRelease, staged: Path, submission: SubmissionRecord) -> Release:
        # Unique across datasets: two communes may publish identical files in one second.
        release_id = f"{clock.now():%Y%m%dT%H%M%S}-{new.content_hash[:12]}-{uuid.uuid4().hex[:6]}"
        target = self._release_dir(new.dataset, release_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        _write_rows_copy(new, staged)
        staged.rename(target)
        try:
            with self.engine.begin() as conn:
                self._switch(conn, new, release_id, submission)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        release = self.current_release(new.dataset, new.structure_version)
        assert release is not None
        return release

    def _switch(
        self, conn: sa.Connection, new: NewRelease, release_id: str, submission: SubmissionRecord
    ) -> None:
        moment = clock.now()
        existing = conn.execute(
            sa.select(datasets_table.c.slug).where(datasets_table.c.slug == new.dataset)
        ).first()
        if existing is None:
            conn.execute(
                datasets_table.insert().values(
                    slug=new.dataset,
                    producer=new.producer,
                    metadata=new.metadata,
                    licence=new.licence,
                    current_version=new.structure_version,
                    status="publie",
                    first_published_at=moment,
                    last_published_at=moment,
                    last_confirmed_at=moment,
                )
            )
        else:
            current = conn.execute(
                sa.select(datasets_table.c.current_version).where(
                    datasets_table.c.slug == new.dataset
                )
            ).scalar_one()
            # A release of an older structure (fed through a notice's mapping) leaves the
            # dataset's current structure, metadata and dates as they are.
            if new.structure_version >= current:
                conn.execute(
                    datasets_table.update()
                    .where(datasets_table.c.slug == new.dataset)
                    .values(
                        metadata=new.metadata,
                        licence=new.licence,
                        current_version=new.structure_version,
                        status="publie",
                        last_published_at=moment,
                        last_confirmed_at=moment,
                    )
                )
        conn.execute(
            releases_table.insert().values(
                id=release_id,
                dataset=new.dataset,
                structure_version=new.structure_version,
                content_hash=new.content_hash,
                published_at=moment,
                row_count=new.row_count,
                distributions=[_distribution_dict(d) for d in new.distributions],
                metadata=new.metadata,
                licence=new.licence,
                anonymisation=new.anonymisation,
            )
        )
        version_key = sa.and_(
            structures_table.c.dataset == new.dataset,
            structures_table.c.version == new.structure_version,
        )
        if conn.execute(sa.select(structures_table.c.version).where(version_key)).first():
            # a compatible change (a column added…) updates the structure of its version
            conn.execute(
                structures_table.update()
                .where(version_key)
                .values(current_release=release_id, structure=new.structure)
            )
        else:
            conn.execute(
                structures_table.insert().values(
                    dataset=new.dataset,
                    version=new.structure_version,
                    structure=new.structure,
                    created_at=moment,
                    current_release=release_id,
                )
            )
        self._insert_submission(conn, submission, "publiee", release_id)
        _record_change(conn, new.dataset)
        search_index.refresh(conn, self.text_index, new.dataset)

    def confirm(
        self,
        slug: str,
        submission: SubmissionRecord,
        metadata: dict[str, Any],
        licence: dict[str, Any],
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                datasets_table.update()
                .where(datasets_table.c.slug == slug)
                .values(
                    last_confirmed_at=clock.now(),
                    metadata=metadata,
                    licence=licence,
                    status="publie",
                )
            )
            self._insert_submission(conn, submission, "confirmee", submission.release)
            _record_change(conn, slug)
            search_index.refresh(conn, self.text_index, slug)

    def record_rejection(self, submission: SubmissionRecord) -> None:
        with self.engine.begin() as conn:
            self._insert_submission(conn, submission, "refusee", None)

    def _insert_submission(
        self, conn: sa.Connection, submission: SubmissionRecord, status: str, release: str | None
    ) -> None:
        """The submission's outcome, and its line in the audit log (same transaction)."""
        conn.execute(
            submissions_table.insert().values(
                id=submission.id,
                producer=submission.producer,
                dataset=submission.dataset,
                channel=submission.channel,
                received_at=submission.received_at,
                status=status,
                release=release,
                report=json.loads(json.dumps(submission.report, default=str)),
            )
        )
        conn.execute(audit_table.insert().values(**_audit_row(_outcome_entry(submission, status))))

    def add_usage(self, counts: dict[tuple[str, date, str], int]) -> None:
        if not counts:
            return
        key = (usage_table.c.dataset, usage_table.c.day, usage_table.c.kind)
        with self.engine.begin() as conn:
            for (dataset, day, kind), count in counts.items():
                where = sa.and_(*(c == v for c, v in zip(key, (dataset, day, kind), strict=True)))
                updated = conn.execute(
                    usage_table.update().where(where).values(count=usage_table.c.count + count)
                )
                if updated.rowcount == 0:
                    conn.execute(
                        usage_table.insert().values(
                            dataset=dataset, day=day, kind=kind, count=count
                        )
                    )

    def usage(self, datasets: list[str], since: date) -> list[tuple[str, date, str, int]]:
        query = (
            sa.select(
                usage_table.c.dataset, usage_table.c.day, usage_table.c.kind, usage_table.c.count
            )
            .where(usage_table.c.dataset.in_(datasets), usage_table.c.day >= since)
            .order_by(usage_table.c.dataset, usage_table.c.day, usage_table.c.kind)
        )
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    # --- lifecycle ---------------------------------------------------------------------------

    def notices(self, slug: str) -> list[ChangeNotice]:
        query = (
            sa.select(notices_table)
            .where(notices_table.c.dataset == slug)
            .order_by(notices_table.c.announced_at, notices_table.c.id)
        )
        with self.engine.connect() as conn:
            return [ChangeNotice(**row) for row in conn.execute(query).mappings()]

    def add_notice(self, notice: ChangeNotice) -> None:
        with self.engine.begin() as conn:
            conn.execute(notices_table.insert().values(**asdict(notice)))
            _record_change(conn, notice.dataset)

    def mark_notice(
        self,
        notice_id: str,
        *,
        switched_at: datetime | None = None,
        retired_at: datetime | None = None,
    ) -> None:
        values = {k: v for k, v in (("switched_at", switched_at), ("retired_at", retired_at)) if v}
        with self.engine.begin() as conn:
            conn.execute(
                notices_table.update().where(notices_table.c.id == notice_id).values(**values)
            )
            dataset = conn.execute(
                sa.select(notices_table.c.dataset).where(notices_table.c.id == notice_id)
            ).scalar()
            if dataset is not None:
                _record_change(conn, dataset)

    def set_status(self, slug: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                datasets_table.update().where(datasets_table.c.slug == slug).values(status=status)
            )
            _record_change(conn, slug)
            search_index.refresh(conn, self.text_index, slug)

    def record_event(
        self, dataset: str, kind: str, title: str, details: dict[str, Any], key: str
    ) -> Event | None:
        moment = clock.now()
        row = {"dataset": dataset, "kind": kind, "at": moment, "title": title}
        with self.engine.begin() as conn:
            if conn.execute(sa.select(events_table.c.id).where(events_table.c.key == key)).first():
                return None
            details = json.loads(json.dumps(details, default=str))
            result = conn.execute(events_table.insert().values(**row, details=details, key=key))
            return Event(id=result.inserted_primary_key[0], details=details, **row)

    def events(self, dataset: str | None = None, limit: int = 100) -> list[Event]:
        query = sa.select(events_table).order_by(events_table.c.id.desc()).limit(limit)
        if dataset is not None:
            query = query.where(events_table.c.dataset == dataset)
        with self.engine.connect() as conn:
            return [_event(row) for row in conn.execute(query).mappings()]

    def add_subscription(self, url: str, dataset: str | None) -> Subscription:
        subscription = Subscription(
            id=uuid.uuid4().hex,
            url=url,
            dataset=dataset,
            secret=secrets.token_hex(32),
            created_at=clock.now(),
        )
        with self.engine.begin() as conn:
            conn.execute(subscriptions_table.insert().values(**asdict(subscription)))
        return subscription

    def subscriptions(self) -> list[Subscription]:
        query = sa.select(subscriptions_table).order_by(subscriptions_table.c.created_at)
        with self.engine.connect() as conn:
            return [Subscription(**row) for row in conn.execute(query).mappings()]

    def remove_subscription(self, subscription_id: str) -> bool:
        with self.engine.begin() as conn:
            conn.execute(
                deliveries_table.delete().where(deliveries_table.c.subscription == subscription_id)
            )
            deleted = conn.execute(
                subscriptions_table.delete().where(subscriptions_table.c.id == subscription_id)
            )
        return deleted.rowcount > 0

    def due_deliveries(
        self, moment: datetime, max_attempts: int
    ) -> list[tuple[Event, Subscription, int]]:
        subscriptions = self.subscriptions()
        if not subscriptions:
            return []
        oldest = min(s.created_at for s in subscriptions)
        with self.engine.connect() as conn:
            events = [
                _event(row)
                for row in conn.execute(
                    sa.select(events_table)
                    .where(events_table.c.at >= oldest)
                    .order_by(events_table.c.id)
                ).mappings()
            ]
            done = {
                (row.event, row.subscription): row
                for row in conn.execute(sa.select(deliveries_table))
            }
        due = []
        for event in events:
            for subscription in subscriptions:
                if subscription.dataset not in (None, event.dataset):
                    continue
                if event.at < subscription.created_at:
                    continue
                past = done.get((event.id, subscription.id))
                if past is None:
                    due.append((event, subscription, 0))
                elif (
                    past.delivered_at is None
                    and past.attempts < max_attempts
                    and past.next_attempt_at is not None
                    and past.next_attempt_at <= moment
                ):
                    due.append((event, subscription, past.attempts))
        return due

    def record_delivery(
        self,
        event_id: int,
        subscription_id: str,
        *,
        delivered: bool,
        error: str | None,
        next_attempt_at: datetime | None,
    ) -> None:
        key = sa.and_(
            deliveries_table.c.event == event_id,
            deliveries_table.c.subscription == subscription_id,
        )
        values = {
            "delivered_at": clock.now() if delivered else None,
            "last_error": error,
            "next_attempt_at": next_attempt_at,
        }
        with self.engine.begin() as conn:
            updated = conn.execute(
                deliveries_table.update()
                .where(key)
                .values(attempts=deliveries_table.c.attempts + 1, **values)
            )
            if updated.rowcount == 0:
                conn.execute(
                    deliveries_table.insert().values(
                        event=event_id, subscription=subscription_id, attempts=1, **values
                    )
                )

    def mail_sent(self, key: str) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(sa.select(mails_table.c.key).where(mails_table.c.key == key)).first()
                is not None
            )

    def mail_sent_at(self, key: str) -> datetime | None:
        query = sa.select(mails_table.c.sent_at).where(mails_table.c.key == key)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def record_mail(self, key: str, recipients: list[str], subject: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                mails_table.insert().values(
                    key=key, sent_at=clock.now(), recipients=recipients, subject=subject
                )
            )

    def acknowledge_mail(self, acknowledgement: MailAcknowledgement) -> bool:
        table = mail_acknowledgements_table
        with self.engine.begin() as conn:
            known = sa.select(table.c.key).where(table.c.key == acknowledgement.key)
            if conn.execute(known).first() is not None:
                return False
            conn.execute(table.insert().values(**asdict(acknowledgement)))
        return True

    def mail_acknowledgement(self, key: str) -> MailAcknowledgement | None:
        table = mail_acknowledgements_table
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.key == key)).mappings().first()
        return MailAcknowledgement(**row) if row else None

    # --- pull delivery -----------------------------------------------------------------------

    def source_state(self, slug: str) -> SourceState | None:
        query = sa.select(source_checks_table).where(source_checks_table.c.dataset == slug)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return SourceState(**row) if row else None

    def record_source_check(self, slug: str, state: SourceState) -> None:
        values = {**asdict(state), "dataset": slug}
        with self.engine.begin() as conn:
            conn.execute(source_checks_table.delete().where(source_checks_table.c.dataset == slug))
            conn.execute(source_checks_table.insert().values(**values))

    # --- accounts and audit log --------------------------------------------------------------

    def add_token(self, token: ApiToken) -> None:
        with self.engine.begin() as conn:
            conn.execute(tokens_table.insert().values(**asdict(token)))

    def token(self, token_id: str) -> ApiToken | None:
        query = sa.select(tokens_table).where(tokens_table.c.id == token_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return ApiToken(**row) if row else None

    def tokens(self, commune: str | None = None) -> list[ApiToken]:
        query = sa.select(tokens_table).order_by(tokens_table.c.created_at, tokens_table.c.id)
        if commune is not None:
            query = query.where(tokens_table.c.commune == commune)
        with self.engine.connect() as conn:
            return [ApiToken(**row) for row in conn.execute(query).mappings()]

    def revoke_token(self, token_id: str, moment: datetime) -> bool:
        with self.engine.begin() as conn:
            revoked = conn.execute(
                tokens_table.update()
                .where(tokens_table.c.id == token_id, tokens_table.c.revoked_at.is_(None))
                .values(revoked_at=moment)
            )
        return revoked.rowcount > 0

    def token_used(self, token_id: str, moment: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                tokens_table.update()
                .where(tokens_table.c.id == token_id)
                .values(last_used_at=moment)
            )

    def record_audit(self, entry: AuditEntry) -> None:
        with self.engine.begin() as conn:
            conn.execute(audit_table.insert().values(**_audit_row(entry)))

    def audit_log(
        self,
        commune: str | None = None,
        since: datetime | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        query = sa.select(audit_table).order_by(audit_table.c.id.desc()).limit(limit)
        if commune is not None:
            query = query.where(audit_table.c.commune == commune)
        if since is not None:
            query = query.where(audit_table.c.at >= since)
        if action is not None:
            query = query.where(audit_table.c.action == action)
        with self.engine.connect() as conn:
            return [AuditEntry(**row) for row in conn.execute(query).mappings()]

    # --- the portal's sessions ---------------------------------------------------------------

    def add_session(self, session: PortalSession) -> None:
        with self.engine.begin() as conn:
            conn.execute(sessions_table.insert().values(**asdict(session)))

    def portal_session(self, id_sha256: str) -> PortalSession | None:
        query = sa.select(sessions_table).where(sessions_table.c.id_sha256 == id_sha256)
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        return PortalSession(**row) if row else None

    def delete_session(self, id_sha256: str) -> bool:
        with self.engine.begin() as conn:
            deleted = conn.execute(
                sessions_table.delete().where(sessions_table.c.id_sha256 == id_sha256)
            )
        return deleted.rowcount > 0

    def purge_sessions(self, moment: datetime) -> int:
        with self.engine.begin() as conn:
            deleted = conn.execute(
                sessions_table.delete().where(sessions_table.c.expires_at <= moment)
            )
        return deleted.rowcount

    def _release_dir(self, dataset: str, release_id: str) -> Path:
        return self.files_dir / dataset / release_id


def _record_change(conn: sa.Connection, dataset: str) -> None:
    """A change of what the services show of `dataset`, in the transaction making it."""
    conn.execute(changes_table.insert().values(dataset=dataset, at=clock.now()))


def search_cache_size() -> int:
    """OPENDATA_SEARCH_CACHE: answers kept per process (0: none, every search is computed)."""
    return int(os.environ.get("OPENDATA_SEARCH_CACHE", search_index.CACHE_SIZE))


def _write_rows_copy(new: NewRelease, staged: Path) -> None:
    """The rows API's copy of the release, written before the release is switched in, so
    that no reuser waits for it; in the staged folder, which a failure removes."""
    parquet = next((d for d in new.distributions if d.format == "parquet"), None)
    if parquet is not None and (staged / parquet.filename).is_file():
        rows_copy.write_at_publication(staged / parquet.filename, new.structure)


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_generation(engine: sa.Engine) -> None:
    """The generation's row and its triggers (PostgreSQL: migration 0007)."""
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT OR IGNORE INTO catalog_generation (id, value) VALUES (1, 0)"))
        for table in GENERATION_SOURCES:
            for event in ("INSERT", "UPDATE", "DELETE"):
                conn.execute(
                    sa.text(
                        f"CREATE TRIGGER IF NOT EXISTS {table}_generation_{event.lower()} "
                        f"AFTER {event} ON {table} BEGIN UPDATE catalog_generation "
                        "SET value = value + 1 WHERE id = 1; END"
                    )
                )


def _distribution_dict(distribution: Distribution) -> dict[str, Any]:
    return {
        "format": distribution.format,
        "filename": distribution.filename,
        "size": distribution.size,
        "crs": distribution.crs,
    }


def _event(row: Any) -> Event:
    return Event(
        id=row["id"],
        dataset=row["dataset"],
        kind=row["kind"],
        at=row["at"],
        title=row["title"],
        details=row["details"],
    )


def _audit_row(entry: AuditEntry) -> dict[str, Any]:
    row = {k: v for k, v in asdict(entry).items() if k != "id"}
    row["details"] = json.loads(json.dumps(entry.details, default=str))
    return row


def _outcome_entry(submission: SubmissionRecord, status: str) -> AuditEntry:
    """The audit line of a submission's outcome: decided by the platform's pipeline."""
    return AuditEntry(
        at=clock.now(),
        actor="plateforme:pipeline",
        actor_kind="plateforme",
        actor_id="",
        action=f"soumission-{status}",
        commune=submission.producer,
        target=submission.dataset,
        details={"soumission": submission.id, "canal": submission.channel},
    )


def _dataset(row: Any) -> Dataset:
    return Dataset(**row)


def _release(row: Any) -> Release:
    values = dict(row)
    values["distributions"] = [Distribution(**d) for d in values["distributions"]]
    return Release(**values)
