"""What callers need from the catalog store, one small Protocol per concern.

A caller depends on the concerns it uses (`Accounts` for the accounts module, `Lifecycle`
for the notices API…); `CatalogStore` is all of them, what a backend implements. What only
PostGIS can do is one optional capability, `store.spatial` (`SpatialTables`), never an
`isinstance` test on the backend.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from catalog.store.search_index import Readers, SearchPage, SearchQuery
from core.records import (
    ApiToken,
    AuditEntry,
    ChangeNotice,
    Dataset,
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


class Releases(Protocol):
    """Datasets, their structure versions and releases, and the submissions that made them."""

    files_dir: Path  # where the releases' files are, one folder per release

    @abstractmethod
    def list_datasets(self) -> list[Dataset]: ...

    @abstractmethod
    def get_dataset(self, slug: str) -> Dataset | None: ...

    @abstractmethod
    def generation(self) -> int:
        """A number that changes whenever datasets, structure versions, releases or change
        notices change, in any process: what was read from them stays true while it does not."""

    @abstractmethod
    def structure_versions(self, slug: str) -> list[StructureVersion]: ...

    @abstractmethod
    def current_release(self, slug: str, version: int | None = None) -> Release | None: ...

    @abstractmethod
    def current_releases(self) -> dict[str, Release]:
        """The current release of every dataset, by slug, in one read."""

    @abstractmethod
    def changes(self, after: int) -> list[tuple[int, str]]:
        """The changes of what the services show (a release, metadata, a status, a notice)
        numbered after `after`, as (number, dataset), in order: one cheap query."""

    @abstractmethod
    def releases(self, slug: str) -> list[Release]: ...

    @abstractmethod
    def release_path(self, release: Release, fmt: str) -> Path | None: ...

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
    def submissions(self, producer: str | None = None) -> list[SubmissionRecord]: ...

    @abstractmethod
    def submission(self, submission_id: str) -> SubmissionRecord | None: ...

    @abstractmethod
    def set_status(self, slug: str, status: str) -> None:
        """`publie` or `depublie`; files and history are kept either way."""


class Lifecycle(Protocol):
    """Change notices and the events of the datasets' lives (annex §3.2)."""

    @abstractmethod
    def notices(self, slug: str) -> list[ChangeNotice]:
        """The dataset's change notices, oldest first."""

    @abstractmethod
    def add_notice(self, notice: ChangeNotice) -> None: ...

    @abstractmethod
    def mark_notice(
        self,
        notice_id: str,
        *,
        switched_at: datetime | None = None,
        retired_at: datetime | None = None,
    ) -> None: ...

    @abstractmethod
    def record_event(
        self, dataset: str, kind: str, title: str, details: dict[str, Any], key: str
    ) -> Event | None:
        """Add an event, once per `key`: None when it was already recorded."""

    @abstractmethod
    def events(self, dataset: str | None = None, limit: int = 100) -> list[Event]:
        """Newest first; every dataset's when `dataset` is None."""


class Deliveries(Protocol):
    """Webhook subscriptions, their deliveries, the mails already sent, and those the data
    team acknowledged as delivered otherwise."""

    @abstractmethod
    def add_subscription(self, url: str, dataset: str | None) -> Subscription: ...

    @abstractmethod
    def subscriptions(self) -> list[Subscription]: ...

    @abstractmethod
    def remove_subscription(self, subscription_id: str) -> bool: ...

    @abstractmethod
    def due_deliveries(
        self, moment: datetime, max_attempts: int
    ) -> list[tuple[Event, Subscription, int]]:
        """Webhook deliveries to (re)try now: (event, subscription, attempts so far)."""

    @abstractmethod
    def record_delivery(
        self,
        event_id: int,
        subscription_id: str,
        *,
        delivered: bool,
        error: str | None,
        next_attempt_at: datetime | None,
    ) -> None: ...

    @abstractmethod
    def mail_sent(self, key: str) -> bool: ...

    @abstractmethod
    def record_mail(self, key: str, recipients: list[str], subject: str) -> None: ...

    @abstractmethod
    def mail_sent_at(self, key: str) -> datetime | None:
        """When the mail recorded under `key` left (the platform's clock); None until then."""

    @abstractmethod
    def acknowledge_mail(self, acknowledgement: MailAcknowledgement) -> bool:
        """Record that what the mail under `acknowledgement.key` tells reached its producer
        otherwise; False (and nothing changed) when it was already acknowledged."""

    @abstractmethod
    def mail_acknowledgement(self, key: str) -> MailAcknowledgement | None:
        """The data team's acknowledgement of the mail under `key`; None if there is none."""


class SourceChecks(Protocol):
    """The last check of each dataset's declared source (pull delivery)."""

    @abstractmethod
    def source_state(self, slug: str) -> SourceState | None:
        """The last check of the dataset's declared source; None before the first one."""

    @abstractmethod
    def record_source_check(self, slug: str, state: SourceState) -> None:
        """Keep `state` as the dataset's last source check (replacing the previous one)."""


class Accounts(Protocol):
    """API tokens, the audit log, and the portal's sessions."""

    @abstractmethod
    def add_token(self, token: ApiToken) -> None: ...

    @abstractmethod
    def token(self, token_id: str) -> ApiToken | None: ...

    @abstractmethod
    def tokens(self, commune: str | None = None) -> list[ApiToken]:
        """Every token (of `commune` when given), oldest first."""

    @abstractmethod
    def revoke_token(self, token_id: str, moment: datetime) -> bool:
        """Revoke a token not revoked yet; False when there is none such."""

    @abstractmethod
    def token_used(self, token_id: str, moment: datetime) -> None:
        """Remember when a token was last used."""

    @abstractmethod
    def record_audit(self, entry: AuditEntry) -> None: ...

    @abstractmethod
    def audit_log(
        self,
        commune: str | None = None,
        since: datetime | None = None,
        action: str | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Newest first."""

    @abstractmethod
    def add_session(self, session: PortalSession) -> None: ...

    @abstractmethod
    def portal_session(self, id_sha256: str) -> PortalSession | None: ...

    @abstractmethod
    def delete_session(self, id_sha256: str) -> bool:
        """Delete a session (signing out); False when there was none."""

    @abstractmethod
    def purge_sessions(self, moment: datetime) -> int:
        """Delete the sessions expired at `moment`; how many."""


class Usage(Protocol):
    """Download and call counts, per dataset and day; never who."""

    @abstractmethod
    def add_usage(self, counts: dict[tuple[str, date, str], int]) -> None:
        """Add counts of (dataset, day, kind); no caller is ever recorded."""

    @abstractmethod
    def usage(self, datasets: list[str], since: date) -> list[tuple[str, date, str, int]]: ...


class Search(Protocol):
    """The search index of the datasets the portal lists (`catalog.store.search_index`),
    kept up to date by every write of a dataset."""

    @abstractmethod
    def search(self, query: SearchQuery, readers: Readers, today: date) -> SearchPage:
        """The matching datasets `readers` may list: total, facets, one page of slugs."""

    @abstractmethod
    def listed(self, slugs: list[str]) -> list[tuple[Dataset, Release]]:
        """The datasets named, with their current release, in the order given."""


class Publications(Releases, Lifecycle, Protocol):
    """Datasets and releases with their lifecycle: what publishing, a change notice and the
    pages that show a dataset's life need."""


@dataclass(frozen=True)
class LayerSource:
    """Where a structure version's features are in PostGIS, for MapServer."""

    table: str  # schema.table, unquoted
    geometry: str
    srid: int
    dsn: str  # libpq keywords, never the password
    password: str | None = field(default=None, repr=False)


class SpatialTables(Protocol):
    """What only a store keeping each structure version's rows in PostGIS can do."""

    engine: sa.Engine

    @abstractmethod
    def layer_source(self, slug: str, version: int) -> LayerSource | None:
        """The version's table, for MapServer; None when it holds no map."""

    @abstractmethod
    def drop_version_data(self, slug: str, version: int) -> None:
        """A retired structure version's table goes (its files stay in the archive)."""

    @abstractmethod
    def drop_dataset_data(self, slug: str) -> None:
        """A depublished dataset's tables and view go (its files stay in the archive)."""


class CatalogStore(
    Releases, Lifecycle, Deliveries, SourceChecks, Accounts, Usage, Search, Protocol
):
    """Every concern: what a backend implements (`sql.SqlCatalogStore`, `postgis.…`)."""

    spatial: SpatialTables | None  # None on SQLite

    @abstractmethod
    def close(self) -> None:
        """Release the store's connections (a backup, a restore, a test's end)."""
