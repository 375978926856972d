"""The catalog store: one interface, chosen by URL.

`SqlCatalogStore` keeps the catalog in any SQLAlchemy database (SQLite for the
embedded default; PostgreSQL speaks the same SQL) and the distributions as
files, one immutable folder per release. Publication is atomic: files are
staged, moved into a new release folder, and the switch of the current release
is a single database transaction, so a failure at any step leaves the previous
release served.
"""

from __future__ import annotations

import json
import shutil
import uuid
from abc import ABC, abstractmethod
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from catalog.records import (
    Dataset,
    Distribution,
    NewRelease,
    Release,
    StructureVersion,
    SubmissionRecord,
)

_meta = sa.MetaData()

datasets_table = sa.Table(
    "datasets",
    _meta,
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
    _meta,
    sa.Column("dataset", sa.String(80), sa.ForeignKey("datasets.slug"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("structure", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("current_release", sa.String(40)),
)

releases_table = sa.Table(
    "releases",
    _meta,
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
    _meta,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("producer", sa.String(80), nullable=False, index=True),
    sa.Column("dataset", sa.String(80), index=True),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("release", sa.String(40)),
    sa.Column("report", sa.JSON, nullable=False),
)


usage_table = sa.Table(
    "usage_daily",
    _meta,
    sa.Column("dataset", sa.String(80), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("kind", sa.String(20), primary_key=True),  # telechargement | api | page
    sa.Column("count", sa.Integer, nullable=False),
)


def now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


class CatalogStore(ABC):
    """What the pipeline and the catalog service need from a store."""

    @abstractmethod
    def list_datasets(self) -> list[Dataset]: ...

    @abstractmethod
    def get_dataset(self, slug: str) -> Dataset | None: ...

    @abstractmethod
    def structure_versions(self, slug: str) -> list[StructureVersion]: ...

    @abstractmethod
    def current_release(self, slug: str, version: int | None = None) -> Release | None: ...

    @abstractmethod
    def current_releases(self) -> dict[str, Release]:
        """The current release of every dataset, by slug, in one read."""

    @abstractmethod
    def releases(self, slug: str) -> list[Release]: ...

    @abstractmethod
    def submissions(self, producer: str | None = None) -> list[SubmissionRecord]: ...

    @abstractmethod
    def staging_dir(self) -> Path:
        """A fresh folder, on the same file system as the releases, to write files into."""

    @abstractmethod
    def publish(self, new: NewRelease, staged: Path, submission: SubmissionRecord) -> Release:
        """Switch in a release whose files are in `staged`; all or nothing."""

    @abstractmethod
    def confirm(
        self,
        slug: str,
        submission: SubmissionRecord,
        metadata: dict[str, Any],
        licence: dict[str, Any],
    ) -> None:
        """Record that a submission brought the same content: the dataset is current, and
        its metadata (access level, licence, description…) is the submitted one."""

    @abstractmethod
    def record_rejection(self, submission: SubmissionRecord) -> None: ...

    @abstractmethod
    def release_path(self, release: Release, fmt: str) -> Path | None: ...

    @abstractmethod
    def add_usage(self, counts: dict[tuple[str, date, str], int]) -> None:
        """Add counts of (dataset, day, kind); no caller is ever recorded."""

    @abstractmethod
    def usage(self, datasets: list[str], since: date) -> list[tuple[str, date, str, int]]: ...


class SqlCatalogStore(CatalogStore):
    def __init__(self, url: str, files_dir: Path) -> None:
        self.engine = sa.create_engine(url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.files_dir = files_dir
        files_dir.mkdir(parents=True, exist_ok=True)
        _meta.create_all(self.engine)

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

    def releases(self, slug: str) -> list[Release]:
        query = (
            sa.select(releases_table)
            .where(releases_table.c.dataset == slug)
            .order_by(releases_table.c.published_at, releases_table.c.id)
        )
        with self.engine.connect() as conn:
            return [_release(row) for row in conn.execute(query).mappings()]

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
        release_id = f"{now():%Y%m%dT%H%M%S}-{new.content_hash[:12]}-{uuid.uuid4().hex[:6]}"
        target = self._release_dir(new.dataset, release_id)
        target.parent.mkdir(parents=True, exist_ok=True)
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
        moment = now()
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
            conn.execute(
                structures_table.update().where(version_key).values(current_release=release_id)
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
                .values(last_confirmed_at=now(), metadata=metadata, licence=licence)
            )
            self._insert_submission(conn, submission, "confirmee", submission.release)

    def record_rejection(self, submission: SubmissionRecord) -> None:
        with self.engine.begin() as conn:
            self._insert_submission(conn, submission, "refusee", None)

    def _insert_submission(
        self, conn: sa.Connection, submission: SubmissionRecord, status: str, release: str | None
    ) -> None:
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

    def _release_dir(self, dataset: str, release_id: str) -> Path:
        return self.files_dir / dataset / release_id


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _distribution_dict(distribution: Distribution) -> dict[str, Any]:
    return {
        "format": distribution.format,
        "filename": distribution.filename,
        "size": distribution.size,
        "crs": distribution.crs,
    }


def _dataset(row: Any) -> Dataset:
    return Dataset(**row)


def _release(row: Any) -> Release:
    values = dict(row)
    values["distributions"] = [Distribution(**d) for d in values["distributions"]]
    return Release(**values)


def open_store(url: str, files_dir: Path) -> CatalogStore:
    """The store for a URL: sqlite:///… for the embedded default."""
    return SqlCatalogStore(url, files_dir)
