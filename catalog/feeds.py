"""How reusers learn what changes (annex data.grandlyon.com, §3.2): Atom feeds and webhooks.

- `GET /changements.atom`: the catalog's change feed, newest events first;
- `GET /api/datasets/<slug>/changements.atom`: one dataset's;
- `POST /api/abonnements`, `DELETE /api/abonnements/<id>`: webhook subscriptions, delivered
  and signed by `pipelines.notify.deliver_webhooks`.

What reusers are told (`is_told`): the events of the datasets they may read (anonymous
readers and webhooks: public datasets only), and the depublication of such a dataset
(nothing else about it once depublished). A restricted dataset's events are never told to
a caller who may not read it, not even that it exists.

The French wording of an event's details (`describe_details`) is shared with the e-mails.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from feedgen.feed import FeedGenerator

from catalog import site
from catalog.bodies import BodyTooLarge, read_bounded
from catalog.conditional import none_match
from catalog.principal import ANONYMOUS, Principal
from catalog.store import CatalogStore
from catalog.visibility import CALLER, may_see, may_see_or_refuse
from core import clock
from core.netguard import webhook_refusal
from core.records import EVENT_KINDS, Dataset, Event, Subscription
from core.sources import SOURCE_FAILURE_KIND

ATOM_MEDIA_TYPE = "application/atom+xml"
FEED_SIZE = 100
TOLD_STATUSES = ("publie", "depublie")  # a depublished dataset's feed tells its depublication
MAX_SUBSCRIPTIONS_PER_URL = 20
MAX_URL_LENGTH = 2000
SUBSCRIPTION_MAX_BYTES = 16_384
# Entry ids must never change, whatever host the feed is read through (RFC 4151 tag URIs).
TAG_AUTHORITY = "donnees-ouvertes.communes-lyon.example.org"
TAG_DATE = "2026"
SIGNATURE_HELP = (
    "Chaque envoi porte l'en-tête X-Opendata-Signature : « sha256= » suivi du HMAC-SHA256 "
    "(hexadécimal) du corps brut de la requête, calculé avec ce secret. Conservez-le : il "
    "n'est affiché qu'une fois."
)

MONTHS = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
DETAIL_LABELS = {  # keys written by pipelines.lifecycle and pipelines.governance
    "description": "Changement",
    "changements": "Modifications",
    "date_effet": "Date d'effet",
    "avis": "Référence de l'avis",
    "ancienne_structure": "Ancienne version de structure",
    "nouvelle_structure": "Nouvelle version de structure",
    "ancienne_structure_alimentee": "Ancienne structure alimentée en parallèle",
    "retrait_au_plus_tot": "Ancienne structure diffusée au moins jusqu'au",
    "successeur": "Lien stable de la nouvelle structure",
    "version": "Version publiée",
    "structure": "Version de structure",
    "lignes": "Nombre de lignes",
    "attendue_le": "Mise à jour attendue le",
    "date_attendue": "Mise à jour attendue le",
    "derniere_mise_a_jour": "Dernière mise à jour",
    "depublication_le": "Dépublication le",
    "date_depublication": "Dépublication le",
    "jours_restants": "Jours restants avant la dépublication",
    "depuis": "Depuis le",
    "motif": "Motif",
    "url": "Lien",
}
# Never told to reusers, even when the rules engine puts them in an event's details.
PRIVATE_DETAILS = frozenset({"contact", "courriel", "email", "destinataires"})
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]00:?00)?")


# --- what reusers are told ------------------------------------------------------------------


INTERNAL_KINDS = frozenset({SOURCE_FAILURE_KIND})  # for the commune and the data team only


def is_told(dataset: Dataset | None, event: Event, principal: Principal = ANONYMOUS) -> bool:
    """Whether reusers (feeds, webhooks: anonymous) learn of `event` about `dataset`."""
    if not may_see(principal, dataset) or dataset is None or event.kind in INTERNAL_KINDS:
        return False
    if dataset.status == "publie":
        return True
    return dataset.status == "depublie" and event.kind == "depublication"


def told_events(
    store: CatalogStore,
    datasets: dict[str, Dataset],
    slug: str | None = None,
    size: int = FEED_SIZE,
    principal: Principal = ANONYMOUS,
) -> list[Event]:
    """The newest `size` events `principal` may learn of, newest first (one dataset's or all)."""
    fetched = size
    while True:
        events = store.events(slug, limit=fetched)
        told = [e for e in events if is_told(datasets.get(e.dataset), e, principal)]
        if len(told) >= size or len(events) < fetched:
            return told[:size]
        fetched *= 4


# --- French wording ---------------------------------------------------------------------------


def french_date(day: date) -> str:
    """`1er mars 2027`, `15 octobre 2026`."""
    number = "1er" if day.day == 1 else str(day.day)
    return f"{number} {MONTHS[day.month - 1]} {day.year}"


def french_moment(moment: datetime) -> str:
    """`2 novembre 2026 à 10 h 05 (UTC)`, from a naive UTC instant."""
    return f"{french_date(moment.date())} à {moment.hour} h {moment:%M} (UTC)"


def rfc3339(moment: datetime) -> str:
    """A naive UTC instant (as the store keeps it) in RFC 3339: `2026-11-02T10:05:00Z`."""
    return moment.replace(tzinfo=None, microsecond=0).isoformat() + "Z"


def describe_value(value: Any, base: str) -> str:
    """A detail's value in French: dates spelled out, site paths made absolute."""
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, list):
        return " ; ".join(describe_value(v, base) for v in value)
    if isinstance(value, dict):
        return " ; ".join(f"{k} : {describe_value(v, base)}" for k, v in value.items())
    text = str(value)
    if ISO_DATE.fullmatch(text):
        return french_date(date.fromisoformat(text))
    if ISO_DATETIME.fullmatch(text):
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return french_moment(
            moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
        )
    if text.startswith("/"):
        return base + text
    return text


def public_details(details: dict[str, Any]) -> dict[str, Any]:
    """An event's details reusers may read (feeds, webhooks): no internal or private key."""
    return {k: v for k, v in details.items() if k not in PRIVATE_DETAILS and not k.startswith("_")}


def describe_details(details: dict[str, Any], base: str) -> list[str]:
    """`Libellé : valeur` lines of an event's details, for feeds and e-mails."""
    lines = []
    for key, value in public_details(details).items():
        if value in (None, "", [], {}):
            continue
        label = DETAIL_LABELS.get(key, key.replace("_", " ").capitalize())
        lines.append(f"{label} : {describe_value(value, base)}")
    return lines


def dataset_title(dataset: Dataset | None, slug: str) -> str:
    return dataset.metadata.get("title", slug) if dataset else slug


def dataset_page(base: str, slug: str) -> str:
    return f"{base}/jeux-de-donnees/{slug}"


def dataset_feed(base: str, slug: str) -> str:
    return f"{base}/api/datasets/{slug}/changements.atom"


def event_text(event: Event, dataset: Dataset | None, base: str) -> str:
    """An event told in French plain text: what, about which dataset, its details, the link."""
    label = EVENT_KINDS.get(event.kind, event.kind)
    source = dataset.metadata.get("publisher_name", dataset.producer) if dataset else ""
    lines = [
        f"{label} : « {dataset_title(dataset, event.dataset)} » ({event.dataset})"
        + (f", publié par {source}." if source else "."),
        f"Date : {french_moment(event.at)}.",
        *describe_details(event.details, base),
        f"Page du jeu de données : {dataset_page(base, event.dataset)}",
    ]
    return "\n".join(lines)


def event_tag(event: Event) -> str:
    return f"tag:{TAG_AUTHORITY},{TAG_DATE}:evenements/{event.id}"


# --- Atom -------------------------------------------------------------------------------------


def atom_feed(
    events: list[Event],
    datasets: dict[str, Dataset],
    *,
    base: str,
    feed_id: str,
    title: str,
    self_url: str,
    page_url: str,
) -> bytes:
    feed = FeedGenerator()
    feed.id(feed_id)
    feed.title(title)
    feed.subtitle(
        "Publications, changements de structure, retards et dépublications "
        "(annexe data.grandlyon.com, §3.2)."
    )
    feed.author({"name": "Données ouvertes des communes de la Métropole de Lyon"})
    feed.link(href=self_url, rel="self", type=ATOM_MEDIA_TYPE)
    feed.link(href=page_url, rel="alternate", type="text/html")
    feed.language("fr")
    newest = events[0].at if events else clock.now()
    feed.updated(newest.replace(tzinfo=UTC))
    for event in events:
        dataset = datasets.get(event.dataset)
        entry = feed.add_entry(order="append")  # events come newest first
        entry.id(event_tag(event))
        entry.title(event.title)
        entry.updated(event.at.replace(tzinfo=UTC))
        entry.published(event.at.replace(tzinfo=UTC))
        entry.link(href=dataset_page(base, event.dataset), rel="alternate", type="text/html")
        entry.category(term=event.kind, label=EVENT_KINDS.get(event.kind, event.kind))
        entry.content(event_text(event, dataset, base), type="text")
    return feed.atom_str(pretty=True)


def _atom_response(request: Request, body: bytes) -> Response:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=60"}
    if none_match(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=ATOM_MEDIA_TYPE, headers=headers)


# --- subscriptions ----------------------------------------------------------------------------


def check_webhook_url(url: Any) -> str:
    """The subscription's URL, or a French 400 saying what is wrong with it."""
    if not isinstance(url, str) or not url.strip():
        raise HTTPException(
            400, detail="« url » est obligatoire : l'adresse qui recevra les envois."
        )
    url = url.strip()
    if len(url) > MAX_URL_LENGTH or any(c.isspace() or ord(c) < 32 for c in url):
        raise HTTPException(400, detail="« url » n'est pas une adresse web valide.")
    try:
        parts = urlsplit(url)
        hostname, _port = parts.hostname, parts.port
    except ValueError as error:
        raise HTTPException(400, detail="« url » n'est pas une adresse web valide.") from error
    if parts.scheme not in ("http", "https") or not hostname:
        raise HTTPException(
            400, detail="« url » doit être une adresse http:// ou https:// avec un nom d'hôte."
        )
    refusal = webhook_refusal(url)  # the SSRF guard: checked again at every delivery
    if refusal is not None:
        raise HTTPException(400, detail=f"« url » refusée : {refusal.message}.")
    if parts.username is not None or parts.password is not None:
        raise HTTPException(
            400,
            detail="« url » ne doit pas contenir d'identifiants : vérifiez plutôt la signature "
            "des envois avec le secret de l'abonnement.",
        )
    return url


def add_subscription(store: CatalogStore, body: bytes) -> Subscription:
    """Check a subscription request (JSON body) and record it; French 400/404 otherwise."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        payload = None
    if not isinstance(payload, dict):
        raise HTTPException(
            400, detail='Corps JSON attendu : {"url": "https://…", "jeu_de_donnees": …}.'
        )
    url = check_webhook_url(payload.get("url"))
    slug = payload.get("jeu_de_donnees")
    if slug is not None:
        if not isinstance(slug, str):
            raise HTTPException(
                400, detail="« jeu_de_donnees » est un identifiant, ou null pour tout suivre."
            )
        dataset = store.get_dataset(slug)
        if not may_see(ANONYMOUS, dataset) or dataset.status != "publie":
            raise HTTPException(404, detail=f"Jeu de données « {slug} » introuvable.")
    if sum(s.url == url for s in store.subscriptions()) >= MAX_SUBSCRIPTIONS_PER_URL:
        raise HTTPException(
            400,
            detail=f"Cette adresse a déjà {MAX_SUBSCRIPTIONS_PER_URL} abonnements, le maximum : "
            "supprimez-en ou abonnez-vous à tout le catalogue (jeu_de_donnees null).",
        )
    return store.add_subscription(url, slug)


def subscription_json(subscription: Subscription, *, with_secret: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": subscription.id,
        "url": subscription.url,
        "jeu_de_donnees": subscription.dataset,
        "cree_le": rfc3339(subscription.created_at),
    }
    if with_secret:
        body["secret"] = subscription.secret
        body["signature"] = SIGNATURE_HELP
    return body


def _base(request: Request) -> str:
    return site.public_url(request)


def router(store: CatalogStore) -> APIRouter:
    """The change feeds and the webhook subscriptions API.

    Subscriptions are anonymous until authentication arrives (issue #9): the subscription id
    (random, 128 bits) is what lets its holder delete it. To limit abuse, URLs carrying
    credentials are refused and one URL has at most MAX_SUBSCRIPTIONS_PER_URL subscriptions.
    """
    api = APIRouter()

    def told_dataset_or_404(slug: str, principal: Principal) -> Dataset:
        dataset = store.get_dataset(slug)
        if (
            not may_see_or_refuse(store, principal, dataset)
            or dataset is None
            or dataset.status not in TOLD_STATUSES
        ):
            raise HTTPException(404, detail=f"Jeu de données « {slug} » introuvable.")
        return dataset

    @api.get(
        "/changements.atom",
        summary="Fil Atom des changements du catalogue",
        response_class=Response,
        responses={200: {"content": {ATOM_MEDIA_TYPE: {}}}},
    )
    def catalog_feed(request: Request, principal: Principal = CALLER) -> Response:
        base = _base(request)
        datasets = {d.slug: d for d in store.list_datasets()}
        body = atom_feed(
            told_events(store, datasets, principal=principal),
            datasets,
            base=base,
            feed_id=f"tag:{TAG_AUTHORITY},{TAG_DATE}:changements",
            title="Changements du catalogue des données ouvertes des communes de la Métropole "
            "de Lyon",
            self_url=f"{base}/changements.atom",
            page_url=f"{base}/",
        )
        return _atom_response(request, body)

    @api.get(
        "/api/datasets/{slug}/changements.atom",
        summary="Fil Atom des changements d'un jeu de données",
        response_class=Response,
        responses={200: {"content": {ATOM_MEDIA_TYPE: {}}}},
    )
    def dataset_changes(request: Request, slug: str, principal: Principal = CALLER) -> Response:
        dataset = told_dataset_or_404(slug, principal)
        base = _base(request)
        body = atom_feed(
            told_events(store, {slug: dataset}, slug, principal=principal),
            {slug: dataset},
            base=base,
            feed_id=f"tag:{TAG_AUTHORITY},{TAG_DATE}:changements/{slug}",
            title=f"Changements du jeu de données « {dataset_title(dataset, slug)} »",
            self_url=dataset_feed(base, slug),
            page_url=dataset_page(base, slug),
        )
        return _atom_response(request, body)

    @api.post(
        "/api/abonnements",
        status_code=201,
        summary="S'abonner aux changements (webhook signé)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["url"],
                            "properties": {
                                "url": {"type": "string", "format": "uri"},
                                "jeu_de_donnees": {"type": ["string", "null"]},
                            },
                        }
                    }
                },
            }
        },
    )
    async def subscribe(request: Request) -> JSONResponse:
        try:
            body = await read_bounded(request, SUBSCRIPTION_MAX_BYTES)
        except BodyTooLarge:
            too_large = "Demande d'abonnement trop volumineuse (16 Kio au plus)."
            raise HTTPException(413, detail=too_large) from None
        subscription = await run_in_threadpool(add_subscription, store, body)
        return JSONResponse(
            subscription_json(subscription, with_secret=True),
            status_code=201,
            headers={"Location": f"/api/abonnements/{subscription.id}"},
        )

    @api.delete(
        "/api/abonnements/{subscription_id}",
        status_code=204,
        summary="Se désabonner",
        response_class=Response,
    )
    def unsubscribe(subscription_id: str) -> Response:
        if not store.remove_subscription(subscription_id):
            raise HTTPException(404, detail=f"Abonnement « {subscription_id} » introuvable.")
        return Response(status_code=204)

    return api
