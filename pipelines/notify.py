"""Telling people what the lifecycle rules decided (annex data.grandlyon.com, §3.2).

Producers and the data team by e-mail (SMTP), reusers by signed webhooks (and by the Atom
feeds of `catalog.feeds`). The daily governance job calls `notify_pending`, which is
idempotent: a mail is sent once per event (the store keeps its key), a webhook delivery is
retried with exponential backoff until it succeeds or `max_attempts` is reached.

The agent who deposited a submission over the upload API is mailed its outcome (published,
confirmed, or refused with the French report) as soon as the pipeline archives it
(`tell_depositor`), once per deposit; a mail the relay could not take then is sent by the
next `notify_pending`, for `DEPOSIT_MAIL_DAYS` days.

Configuration, from the environment (read at each call):
- `OPENDATA_SMTP_HOST`, `OPENDATA_SMTP_PORT` (default localhost:25): the SMTP relay;
- `OPENDATA_SMTP_FROM` (default donnees-ouvertes@example.org): the sender;
- `OPENDATA_DATA_TEAM_EMAIL` (default equipe-data@example.org): copied on every notice, and
  the address replies go to;
- `OPENDATA_PUBLIC_URL` (default http://127.0.0.1:8000): the catalog's address, for links.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import smtplib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import requests

from catalog.store import CatalogStore
from core import clock, lifecycle
from core.inbox import REPORT_JSON, REPORT_TEXT, deposit_mail_key, upload_marker
from core.lifecycle import mail_key
from core.netguard import GuardedSession, Refused, webhooks_policy
from core.producers import Producer, load_producers
from core.records import Dataset, Event, Subscription
from core.settings import Settings
from core.urls import dataset_api, dataset_feed, dataset_page
from core.vocabularies import EMAIL_PATTERN
from core.wording import (
    dataset_title,
    describe_details,
    french_moment,
    public_details,
    rfc3339,
)

log = logging.getLogger(__name__)

BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
PENDING_WINDOW = 500  # the recent events notify_pending looks at
USER_AGENT = "donnees-ouvertes-communes-lyon-webhooks/1.0"
ERROR_LENGTH = 500
SIGNATURE = "Plateforme de données ouvertes des communes de la Métropole de Lyon"
DEPOSIT_MAIL_DAYS = 7  # a deposit's outcome not mailed by then is not mailed any more


@dataclass(frozen=True)
class MailConfig:
    host: str
    port: int
    sender: str
    data_team: str
    public_url: str
    timeout: float = 10

    @classmethod
    def from_env(cls) -> MailConfig:
        return cls(
            host=os.environ.get("OPENDATA_SMTP_HOST", "localhost"),
            port=int(os.environ.get("OPENDATA_SMTP_PORT", "25")),
            sender=os.environ.get("OPENDATA_SMTP_FROM", "donnees-ouvertes@example.org"),
            data_team=os.environ.get("OPENDATA_DATA_TEAM_EMAIL", "equipe-data@example.org"),
            public_url=public_url(),
        )


def public_url() -> str:
    return os.environ.get("OPENDATA_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")


# --- webhooks -----------------------------------------------------------------------------------


def webhook_body(event: Event, base: str) -> bytes:
    """The JSON sent to subscribers, as the exact bytes that are signed."""
    payload = {
        "id": event.id,
        "type": event.kind,
        "jeu_de_donnees": event.dataset,
        "date": rfc3339(event.at),
        "titre": event.title,
        "details": public_details(event.details),
        "lien": dataset_page(base, event.dataset),
    }
    return json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the raw body, keyed with the subscription's secret."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def next_attempt(moment: datetime, attempts: int, max_attempts: int) -> datetime | None:
    """When to retry after `attempts` failed attempts; None once they are used up."""
    if attempts >= max_attempts:
        return None
    return moment + BACKOFF[min(attempts, len(BACKOFF)) - 1]


def _post(
    session: requests.Session, event: Event, subscription: Subscription, base: str, timeout: float
) -> str | None:
    """POST one event to one subscriber; the error in a few words, None when delivered."""
    body = webhook_body(event, base)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Opendata-Evenement": event.kind,
        "X-Opendata-Signature": sign(subscription.secret, body),
        "X-Opendata-Livraison": str(event.id),
    }
    try:
        response = session.post(
            subscription.url, data=body, headers=headers, timeout=timeout, allow_redirects=False
        )
    except Refused as refused:  # the SSRF guard (core.netguard): nothing was sent
        return refused.message[:ERROR_LENGTH]
    except requests.RequestException as error:
        return f"{type(error).__name__} : {error}"[:ERROR_LENGTH]
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


def deliver_webhooks(
    store: CatalogStore,
    moment: datetime | None = None,
    max_attempts: int = 6,
    timeout: float = 10,
) -> dict[str, int]:
    """Deliver the due webhooks; counts of delivered, failed (given up), retry_scheduled and
    skipped (events reusers may not learn of: restricted or removed datasets)."""
    moment = moment or clock.now()
    base = public_url()
    datasets = {d.slug: d for d in store.list_datasets()}
    report = dict.fromkeys(("delivered", "failed", "retry_scheduled", "skipped"), 0)
    with GuardedSession(webhooks_policy) as session:
        for event, subscription, attempts in store.due_deliveries(moment, max_attempts):
            if not lifecycle.is_told(datasets.get(event.dataset), event):
                store.record_delivery(
                    event.id,
                    subscription.id,
                    delivered=False,
                    error="non diffusé : jeu de données restreint, dépublié ou supprimé",
                    next_attempt_at=None,
                )
                report["skipped"] += 1
                continue
            error = _post(session, event, subscription, base, timeout)
            retry = None if error is None else next_attempt(moment, attempts + 1, max_attempts)
            store.record_delivery(
                event.id,
                subscription.id,
                delivered=error is None,
                error=error,
                next_attempt_at=retry,
            )
            if error is None:
                report["delivered"] += 1
            else:
                report["retry_scheduled" if retry else "failed"] += 1
                log.warning("Webhook %s, événement %s : %s", subscription.url, event.id, error)
    return report


# --- e-mail -------------------------------------------------------------------------------------


def send_mail(
    store: CatalogStore,
    key: str,
    recipients: list[str],
    subject: str,
    body: str,
    config: MailConfig | None = None,
    copy: list[str] | None = None,
) -> bool:
    """Send a French plain-text mail once per `key`; True when it went out now.

    False when it was already sent, or when the SMTP relay could not take it (logged, not
    recorded: the next run tries again)."""
    config = config or MailConfig.from_env()
    everyone = [*recipients, *(copy or [])]
    if store.mail_sent(key) or not everyone:
        return False
    message = _message(config, recipients, copy or [], subject, body)
    try:
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
            refused = smtp.send_message(message)
    except OSError as error:  # unreachable relay, and every smtplib.SMTPException
        log.warning(
            "Courriel « %s » non envoyé (%s:%s) : %s", subject, config.host, config.port, error
        )
        return False
    if refused:
        log.warning("Courriel « %s » : destinataires refusés %s", subject, sorted(refused))
    store.record_mail(key, everyone, subject)
    return True


def _message(
    config: MailConfig, to: list[str], copy: list[str], subject: str, body: str
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config.sender
    message["To"] = ", ".join(to or copy)
    if to and copy:
        message["Cc"] = ", ".join(copy)
    message["Reply-To"] = config.data_team
    message["Date"] = format_datetime(clock.now().replace(tzinfo=UTC))
    message["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2] or "localhost")
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
    message["Content-Language"] = "fr"
    message.set_content(body, charset="utf-8", cte="quoted-printable")
    return message


# --- which event mails whom, saying what (core.lifecycle) --------------------------------------


def producer_email(dataset: Dataset | None, producers: dict[str, Producer]) -> str | None:
    """The producer's notice address, else the dataset's metadata contact."""
    if dataset is None:
        return None
    producer = producers.get(dataset.producer)
    if producer is not None and producer.email:
        return producer.email
    contact = dataset.metadata.get("contact") or {}
    return contact.get("email") if isinstance(contact, dict) else None


def compose(event: Event, dataset: Dataset | None, base: str) -> tuple[str, str]:
    """The French subject and plain-text body telling the producer about `event`."""
    title = dataset_title(dataset, event.dataset)
    notice = lifecycle.mail(event, title)
    if notice is None:
        raise ValueError(f"no mail for event kind {event.kind}")
    details = describe_details(event.details, base)
    lines = [
        "Bonjour,",
        "",
        notice.what,
        "",
        f"Pourquoi : {notice.why}",
        "",
        f"Ce qu'il faut faire : {notice.todo}",
        "",
        f"Jeu de données : {event.dataset} ({lifecycle.label(event.kind)})",
        *(f"- {line}" for line in details),
        "",
        "Liens :",
        f"- page du jeu de données : {dataset_page(base, event.dataset)}",
        f"- fil des changements (Atom) : {dataset_feed(base, event.dataset)}",
        "",
        "-- ",
        SIGNATURE,
        "Message automatique ; pour toute question, répondez à ce courriel (équipe data).",
    ]
    return f"[Données ouvertes] {notice.subject}", "\n".join(lines) + "\n"


def notify_event(
    store: CatalogStore,
    event: Event,
    settings: Settings,
    producers: dict[str, Producer] | None = None,
    config: MailConfig | None = None,
) -> list[str]:
    """Mail the producer and the data team about `event`, once; the addresses mailed now.

    `producers` defaults to the settings' producers file."""
    if not lifecycle.is_mailed(event.kind) or store.mail_sent(mail_key(event)):
        return []
    config = config or MailConfig.from_env()
    if producers is None:
        producers = load_producers(settings.producers_file)
    dataset = store.get_dataset(event.dataset)
    producer = producer_email(dataset, producers)
    to = [producer] if producer else []
    copy = [config.data_team] if config.data_team.lower() != (producer or "").lower() else []
    subject, body = compose(event, dataset, config.public_url)
    sent = send_mail(store, mail_key(event), to, subject, body, config, copy=copy)
    return [*to, *copy] if sent else []


def notify_pending(
    store: CatalogStore,
    settings: Settings,
    producers: dict[str, Producer] | None = None,
    config: MailConfig | None = None,
) -> dict[str, Any]:
    """Mail every recent event not mailed yet, and every recent deposit's outcome not mailed
    yet (the relay was down when it was decided), then deliver the due webhooks."""
    config = config or MailConfig.from_env()
    if producers is None:
        producers = load_producers(settings.producers_file)
    sent = pending = 0
    for event in reversed(store.events(limit=PENDING_WINDOW)):  # oldest first
        if not lifecycle.is_mailed(event.kind) or store.mail_sent(mail_key(event)):
            continue
        if notify_event(store, event, settings, producers, config):
            sent += 1
        else:
            pending += 1
    deposits = tell_pending_depositors(store, settings, config)
    return {
        "mails_sent": sent,
        "mails_pending": pending,
        "deposit_mails_sent": deposits,
        "webhooks": deliver_webhooks(store),
    }


# --- the outcome of a deposit, to the agent who made it ----------------------------------------


def tell_depositor(store: CatalogStore, archive: Path, config: MailConfig | None = None) -> bool:
    """Mail the agent who deposited the submission archived in `archive` (the upload API's
    marker names them) what became of it, once; True when the mail left now."""
    marker = upload_marker(archive)
    address = str((marker or {}).get("courriel") or "")
    if marker is None or not EMAIL_PATTERN.fullmatch(address):
        return False  # dropped in a folder, or deposited before depositors were told
    key = deposit_mail_key(marker["id"])
    if store.mail_sent(key):
        return False
    try:
        outcome = json.loads((archive / REPORT_JSON).read_text(encoding="utf-8"))
        report = (archive / REPORT_TEXT).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return False  # not processed yet
    config = config or MailConfig.from_env()
    dataset = store.get_dataset(outcome.get("jeu_de_donnees") or "")
    subject, body = compose_outcome(marker, outcome, report, dataset, config.public_url)
    return send_mail(store, key, [address], subject, body, config)


def compose_outcome(
    marker: dict[str, Any],
    outcome: dict[str, Any],
    report: str,
    dataset: Dataset | None,
    base: str,
) -> tuple[str, str]:
    """The French subject and plain-text body telling a depositor their deposit's outcome."""
    slug = outcome.get("jeu_de_donnees") or ""
    title = dataset_title(dataset, slug) if slug else "(jeu de données non identifié)"
    received = datetime.fromisoformat(marker["recu_le"])
    deposited = (
        f"Votre dépôt du {french_moment(received)} (fichier {marker.get('fichier', '?')}, "
        f"dépôt n° {marker['id']})"
    )
    status = outcome.get("statut")
    if status in {"publiee", "confirmee"}:
        what = (
            f"{deposited} est publié : le jeu de données « {title} » ({slug}) est en ligne, "
            f"version {outcome.get('version')}."
            if status == "publiee"
            else f"{deposited} a été traité : son contenu est identique à la version diffusée "
            f"de « {title} » ({slug}) ; aucune nouvelle version, les données sont confirmées "
            "à jour."
        )
        subject = f"[Données ouvertes] Dépôt publié : {title}"
        lines = [
            what,
            "",
            "Liens :",
            f"- page du jeu de données : {dataset_page(base, slug)}",
            f"- métadonnées (API) : {dataset_api(base, slug)}",
        ]
    else:
        count = (outcome.get("rapport") or {}).get("nombre_problemes")
        subject = f"[Données ouvertes] Dépôt refusé : {title}" + (
            f" ({count} problème(s))" if count else ""
        )
        lines = [
            f"{deposited} est refusé : rien n'a été publié, la version diffusée (s'il y en a "
            "une) reste en ligne.",
            "",
            "Corrigez les problèmes ci-dessous puis déposez à nouveau (« opendata deposer » ou "
            "l'API de dépôt).",
            "",
            "Rapport :",
            "",
            report.strip(),
        ]
    body = [
        "Bonjour,",
        "",
        *lines,
        "",
        "-- ",
        SIGNATURE,
        "Message automatique ; pour toute question, répondez à ce courriel (équipe data).",
    ]
    return subject, "\n".join(body) + "\n"


def tell_pending_depositors(
    store: CatalogStore, settings: Settings, config: MailConfig | None = None
) -> int:
    """Mail the outcomes of the recent deposits not mailed yet; how many left now."""
    since = clock.now() - timedelta(days=DEPOSIT_MAIL_DAYS)
    sent = 0
    for marker_file in sorted(settings.archive_dir.glob("*/*/*/.depot")):
        marker = upload_marker(marker_file.parent)
        if marker is None or datetime.fromisoformat(marker["recu_le"]) < since:
            continue
        if tell_depositor(store, marker_file.parent, config):
            sent += 1
    return sent
