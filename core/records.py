"""What the catalog store holds, as plain records shared by every backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

MEDIA_TYPES = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
}


@dataclass(frozen=True)
class Distribution:
    format: str
    filename: str
    size: int
    crs: int | None = None

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.format]


@dataclass(frozen=True)
class Release:
    """An immutable published version of a dataset's content."""

    id: str
    dataset: str
    structure_version: int
    content_hash: str
    published_at: datetime
    row_count: int
    distributions: list[Distribution]
    metadata: dict[str, Any]
    licence: dict[str, Any]
    anonymisation: dict[str, Any] | None = None  # full report: data team and producer only

    def distribution(self, fmt: str) -> Distribution | None:
        return next((d for d in self.distributions if d.format == fmt), None)


@dataclass(frozen=True)
class StructureVersion:
    dataset: str
    version: int
    structure: dict[str, Any]
    created_at: datetime
    current_release: str | None


@dataclass(frozen=True)
class Dataset:
    slug: str
    producer: str
    metadata: dict[str, Any]
    licence: dict[str, Any]
    current_version: int
    status: str
    first_published_at: datetime
    last_published_at: datetime
    last_confirmed_at: datetime


@dataclass(frozen=True)
class SubmissionRecord:
    id: str
    producer: str
    dataset: str | None
    channel: str
    received_at: datetime
    status: str  # publiee | confirmee | refusee
    release: str | None
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class NewRelease:
    """A release ready to be switched in: its files are already staged."""

    dataset: str
    producer: str
    content_hash: str
    row_count: int
    distributions: list[Distribution]
    metadata: dict[str, Any]
    licence: dict[str, Any]
    structure: dict[str, Any]
    structure_version: int
    anonymisation: dict[str, Any] | None = None


@dataclass(frozen=True)
class ChangeNotice:
    """A producer's notice of a breaking structure change (annex §3.2).

    `schema` is the new Table Schema (with `geometry_type`/`crs` for map data, and the
    source file format when it changes); `mapping` derives the old structure's columns
    from the new data, so the old structure keeps receiving fresh data in parallel."""

    id: str
    dataset: str
    from_version: int
    structure: dict[str, Any]
    effective_date: date
    description: str
    mapping: dict[str, Any] | None
    announced_at: datetime
    switched_at: datetime | None = None  # first release in the new structure
    retired_at: datetime | None = None  # old structure no longer served (410)

    @property
    def to_version(self) -> int:
        return self.from_version + 1


@dataclass(frozen=True)
class Event:
    """Something reusers and producers are told about: the change feeds, webhooks, e-mails."""

    id: int
    dataset: str
    kind: str  # one of the lifecycle rules' kinds (core.lifecycle)
    at: datetime
    title: str  # French, one line
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceState:
    """The last check of a dataset's declared source (pull delivery, issue #7).

    `etag`, `last_modified`, `length` and `sha256` describe the content last taken into the
    catalog (published or confirmed); `failing_since` is the start of the current failure
    streak (None when the last check succeeded)."""

    dataset: str
    endpoint: str
    etag: str | None = None
    last_modified: str | None = None
    length: int | None = None
    sha256: str | None = None
    last_checked_at: datetime | None = None
    last_success_at: datetime | None = None
    consecutive_failures: int = 0
    last_error: str | None = None
    failing_since: datetime | None = None


@dataclass(frozen=True)
class MailAcknowledgement:
    """The data team's word that what a mail tells (a depublication warning) reached its
    producer otherwise (telephone, letter, meeting): for the lifecycle rules, the mail is
    delivered from `acknowledged_at` on, whether or not it ever leaves."""

    key: str  # the mail's key (core.lifecycle.mail_key)
    dataset: str
    acknowledged_at: datetime
    actor: str  # who acknowledged it, as the audit log names them
    reason: str  # how the producer was told, in the data team's words


@dataclass(frozen=True)
class Subscription:
    """A reuser's webhook: events of one dataset (or all), signed with `secret` (HMAC)."""

    id: str
    url: str
    dataset: str | None
    secret: str
    created_at: datetime


# --- accounts and audit (issue #9) -----------------------------------------------------------


@dataclass(frozen=True)
class ApiToken:
    """A producer's or the data team's API token. Only the SHA-256 of its secret is kept:
    the token itself is shown once, at creation (see catalog.accounts)."""

    id: str
    secret_sha256: str
    kind: str  # producteur | equipe-data
    commune: str | None  # producers: their commune's slug
    agent: str  # the agent's e-mail address
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def active(self, moment: datetime) -> bool:
        return self.revoked_at is None and moment < self.expires_at

    def state(self, moment: datetime) -> str:
        """actif | expire | revoque"""
        if self.revoked_at is not None:
            return "revoque"
        return "actif" if moment < self.expires_at else "expire"


@dataclass(frozen=True)
class AuditEntry:
    """Who did what, when: one line of the audit log (read by the data team)."""

    at: datetime
    actor: str  # Principal.label, or `operateur:<system user>` for the command line
    actor_kind: str  # producteur | equipe-data | usager | anonyme | operateur | plateforme
    actor_id: str  # token id, OIDC subject, system user; empty for the platform
    action: str  # see catalog.accounts.AUDIT_ACTIONS
    commune: str | None = None  # the commune the action concerns
    target: str | None = None  # dataset slug, token id, upload id…
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None


@dataclass(frozen=True)
class PortalSession:
    """A person signed in on the portal (catalog.sessions). The cookie holds only a random
    identifier; the store keeps its SHA-256 (`id_sha256`) and, here only, who the person is
    and the ID token the provider's logout needs."""

    id_sha256: str
    issuer: str
    subject: str
    person: dict[str, Any]  # family_name, given_name, email, agent
    created_at: datetime
    expires_at: datetime
    id_token: str | None = None

    def active(self, moment: datetime) -> bool:
        return moment < self.expires_at
