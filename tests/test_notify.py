"""Telling people (annex §3.2): Atom feeds, signed and retried webhooks, e-mails.

Real components only: the catalog served by uvicorn, a local HTTP receiver that checks the
HMAC signatures, an aiosmtpd SMTP server whose messages are read back.
"""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler
from typing import Any

import feedparser
import pytest
import requests
from aiosmtpd.controller import Controller
from attacker import PUBLIC_ADDRESS, attacker_server, fake_resolver, loopback_server

from catalog.store import CatalogStore
from core.producers import load_producers
from pipelines import notify

from conftest import running_catalog

START = "2026-11-02T10:00:00Z"
SECRET_TITLE = "Registre confidentiel des interventions"
PUBLIC = "ecully-arbres"
RESTRICTED = "ecully-interventions"
PRODUCER_MAIL = "donnees-ouvertes@ecully.example.org"  # config/producers.yaml
TEAM_MAIL = "equipe-data@test.example.org"
PUBLIC_URL = "https://donnees.example.org"  # links start with it, whatever address is asked


@pytest.fixture
def catalog(submit, dataset_folder, store, monkeypatch) -> CatalogStore:
    """A public and a restricted dataset of Écully, published on START."""
    monkeypatch.setenv("OPENDATA_NOW", START)
    monkeypatch.setenv("OPENDATA_PUBLIC_URL", PUBLIC_URL)
    # the receivers of these tests listen on loopback, which the SSRF guard refuses
    monkeypatch.setenv("OPENDATA_WEBHOOKS_INTERNAL", "1")
    public = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(public, public.parent / "metadata.yaml").status == "publiee"
    restricted = dataset_folder(
        "interventions.csv",
        "id;lieu\r\n1;Mairie\r\n",
        name="interventions",
        extra_metadata="acces: restreint\n",
    )
    metadata = restricted.parent / "metadata.yaml"
    metadata.write_text(
        metadata.read_text(encoding="utf-8").replace(
            "titre: Arbres d'alignement", f"titre: {SECRET_TITLE}"
        ),
        encoding="utf-8",
    )
    assert submit(restricted, metadata).status == "publiee"
    return store


def at(monkeypatch: pytest.MonkeyPatch, moment: str) -> None:
    monkeypatch.setenv("OPENDATA_NOW", moment)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def record(store: CatalogStore, dataset: str, kind: str, title: str, **details: Any):
    event = store.record_event(dataset, kind, title, details, key=f"{dataset}:{kind}:{title}")
    assert event is not None
    return event


# --- feeds ------------------------------------------------------------------------------------


def test_feeds_tell_public_events_newest_first_and_hide_restricted_ones(catalog, monkeypatch):
    at(monkeypatch, "2026-11-03T08:00:00Z")
    notice = record(
        catalog,
        PUBLIC,
        "avis-changement",
        "Changement de structure annoncé : la colonne « espece » devient « essence »",
        date_effet="2027-03-01",
        description="La colonne « espece » est renommée « essence ».",
        successeur=f"/api/datasets/{PUBLIC}/v2/download/csv",
        courriel="agent.voirie@mairie-ecully.fr",  # for the producer's eyes only
    )
    record(catalog, RESTRICTED, "retard", f"{SECRET_TITLE} : mise à jour en retard")
    at(monkeypatch, "2027-03-01T06:30:00Z")
    switch = record(catalog, PUBLIC, "bascule", "Nouvelle structure en vigueur (version 2)")
    with running_catalog(catalog) as base:
        response = requests.get(f"{base}/changements.atom", timeout=10)
        one = requests.get(f"{base}/api/datasets/{PUBLIC}/changements.atom", timeout=10)
        again = requests.get(
            f"{base}/changements.atom",
            headers={"If-None-Match": response.headers["etag"]},
            timeout=10,
        )
        hidden = requests.get(f"{base}/api/datasets/{RESTRICTED}/changements.atom", timeout=10)
        unknown = requests.get(f"{base}/api/datasets/inconnu/changements.atom", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/atom+xml")
    assert SECRET_TITLE not in response.text and RESTRICTED not in response.text
    assert "agent.voirie" not in response.text
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title.startswith("Changements du catalogue")
    assert feed.feed.language == "fr"
    assert any(
        link.rel == "self" and link.href == f"{PUBLIC_URL}/changements.atom"
        for link in feed.feed.links
    )
    ours = [e for e in feed.entries if e.id.endswith((f"/{notice.id}", f"/{switch.id}"))]
    assert [e.title for e in ours] == [switch.title, notice.title]  # newest first
    newest, oldest = ours
    assert newest.updated == "2027-03-01T06:30:00+00:00"  # RFC 3339, UTC
    assert oldest.updated == "2026-11-03T08:00:00+00:00"
    assert (
        oldest.id == f"tag:donnees-ouvertes.communes-lyon.example.org,2026:evenements/{notice.id}"
    )
    assert oldest.link == f"{PUBLIC_URL}/jeux-de-donnees/{PUBLIC}"
    assert oldest.tags[0].term == "avis-changement"
    text = oldest.content[0].value
    assert "Date d'effet : 1er mars 2027" in text
    assert "La colonne « espece » est renommée « essence »." in text
    assert (
        f"Lien stable de la nouvelle structure : {PUBLIC_URL}/api/datasets/{PUBLIC}/v2/"
        "download/csv" in text
    )
    assert "Arbres d'alignement" in text
    assert again.status_code == 304

    assert one.status_code == 200
    single = feedparser.parse(one.content)
    assert {e.id for e in single.entries} >= {newest.id, oldest.id}
    assert single.feed.title == "Changements du jeu de données « Arbres d'alignement »"
    assert hidden.status_code == 404 and SECRET_TITLE not in hidden.text
    assert unknown.status_code == 404
    assert "introuvable" in unknown.json()["detail"]


def test_a_depublished_dataset_tells_its_depublication_and_nothing_else(catalog, monkeypatch):
    at(monkeypatch, "2029-10-01T02:00:00Z")
    late = record(catalog, PUBLIC, "retard", "Mise à jour en retard")
    at(monkeypatch, "2029-11-02T02:00:00Z")
    catalog.set_status(PUBLIC, "depublie")
    gone = record(
        catalog, PUBLIC, "depublication", "Jeu de données dépublié (3 ans sans mise à jour)"
    )
    catalog.set_status(RESTRICTED, "depublie")
    record(catalog, RESTRICTED, "depublication", f"{SECRET_TITLE} dépublié")
    with running_catalog(catalog) as base:
        everything = requests.get(f"{base}/changements.atom", timeout=10)
        one = requests.get(f"{base}/api/datasets/{PUBLIC}/changements.atom", timeout=10)
        hidden = requests.get(f"{base}/api/datasets/{RESTRICTED}/changements.atom", timeout=10)
    for response in (everything, one):
        assert response.status_code == 200
        ids = [e.id for e in feedparser.parse(response.content).entries]
        assert any(i.endswith(f"/{gone.id}") for i in ids)
        assert not any(i.endswith(f"/{late.id}") for i in ids)
    assert SECRET_TITLE not in everything.text
    assert hidden.status_code == 404


# --- subscriptions API ----------------------------------------------------------------------


def test_subscription_api_checks_what_it_is_given(catalog):
    with running_catalog(catalog) as base:
        url = f"{base}/api/abonnements"

        def post(body: Any) -> requests.Response:
            return requests.post(url, json=body, timeout=10)

        created = post(
            {"url": "https://reutilisateur.example.org/crochet", "jeu_de_donnees": PUBLIC}
        )
        everything = post({"url": "https://reutilisateur.example.org/tout"})
        refusals = {
            "ftp": post({"url": "ftp://reutilisateur.example.org/depot"}),
            "javascript": post({"url": "javascript:alert(1)"}),
            "missing": post({"jeu_de_donnees": PUBLIC}),
            "credentials": post({"url": "https://moi:motdepasse@reutilisateur.example.org/x"}),
            "not json": requests.post(url, data="url=https://x.example.org", timeout=10),
            "list": post(["https://reutilisateur.example.org/"]),
            "slug type": post({"url": "https://reutilisateur.example.org/", "jeu_de_donnees": 3}),
        }
        unknown = post({"url": "https://reutilisateur.example.org/", "jeu_de_donnees": "inconnu"})
        restricted = post(
            {"url": "https://reutilisateur.example.org/", "jeu_de_donnees": RESTRICTED}
        )
        crowded = [post({"url": "https://flot.example.org/"}) for _ in range(21)]
        removed = requests.delete(f"{url}/{created.json()['id']}", timeout=10)
        removed_twice = requests.delete(f"{url}/{created.json()['id']}", timeout=10)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["url"] == "https://reutilisateur.example.org/crochet"
    assert body["jeu_de_donnees"] == PUBLIC
    assert len(body["secret"]) == 64 and "X-Opendata-Signature" in body["signature"]
    assert created.headers["location"] == f"/api/abonnements/{body['id']}"
    assert everything.status_code == 201 and everything.json()["jeu_de_donnees"] is None
    for name, response in refusals.items():
        assert response.status_code == 400, name
        assert response.json()["detail"], name
    assert "http:// ou https://" in refusals["ftp"].json()["detail"]
    assert "identifiants" in refusals["credentials"].json()["detail"]
    assert "obligatoire" in refusals["missing"].json()["detail"]
    assert "Corps JSON attendu" in refusals["not json"].json()["detail"]
    assert unknown.status_code == 404 and "introuvable" in unknown.json()["detail"]
    assert restricted.status_code == 404
    assert [r.status_code for r in crowded] == [201] * 20 + [400]
    assert "20 abonnements" in crowded[-1].json()["detail"]
    assert removed.status_code == 204 and removed_twice.status_code == 404
    assert "introuvable" in removed_twice.json()["detail"]
    assert {s.url for s in catalog.subscriptions()} == {
        "https://reutilisateur.example.org/tout",
        "https://flot.example.org/",
    }


# --- webhooks ---------------------------------------------------------------------------------


@dataclass
class Receiver:
    """A subscriber's endpoint: keeps what it receives; `failures` answers of 500 first."""

    url: str
    failures: dict[str, int]
    received: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def receiver(failures: dict[str, int]) -> Iterator[Receiver]:
    state = Receiver(url="", failures=dict(failures))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
            left = state.failures.get(self.path, 0)
            state.failures[self.path] = left - 1
            self.send_response(500 if left > 0 else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    with loopback_server(Handler) as port:
        state.url = f"http://127.0.0.1:{port}"
        yield state


def subscribe(base: str, url: str, dataset: str | None = None) -> dict[str, Any]:
    response = requests.post(
        f"{base}/api/abonnements", json={"url": url, "jeu_de_donnees": dataset}, timeout=10
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_subscriptions_and_deliveries_to_the_internal_network_are_refused(catalog, monkeypatch):
    monkeypatch.delenv("OPENDATA_WEBHOOKS_INTERNAL")
    with running_catalog(catalog) as base:
        for url in (
            "http://127.0.0.1:9/x",
            "http://localhost/x",
            "http://10.1.2.3/x",
            "http://169.254.169.254/latest/meta-data",
        ):
            response = requests.post(
                f"{base}/api/abonnements", json={"url": url, "jeu_de_donnees": None}, timeout=10
            )
            assert response.status_code == 400, url
            assert "réseau interne" in response.json()["detail"]
    # a subscription made while the guard was lifted is not delivered once it is back
    subscription = catalog.add_subscription("http://127.0.0.1:9/x", None)
    record(catalog, PUBLIC, "publication", "Nouvelle version publiée")
    report = notify.deliver_webhooks(catalog)
    assert report["delivered"] == 0 and report["retry_scheduled"] >= 1
    assert all(s.id == subscription.id for _, s, _ in catalog.due_deliveries(FAR_FUTURE, 10))


FAR_FUTURE = datetime(2100, 1, 1)


def test_webhook_urls_that_parsers_read_differently_are_refused(catalog, monkeypatch):
    # urlsplit reads the host as public.example or "127.0.0.1\\" (which does not resolve),
    # urllib3 as 127.0.0.1: refused at subscription, and never delivered
    monkeypatch.delenv("OPENDATA_WEBHOOKS_INTERNAL")
    with attacker_server() as attacker:
        with running_catalog(catalog) as base:
            response = requests.post(
                f"{base}/api/abonnements", json={"url": "http://127.0.0.1\\/x"}, timeout=10
            )
        assert response.status_code == 400
        assert "barre oblique inverse" in response.json()["detail"]
        sly = f"http://127.0.0.1:{attacker.port}\\@public.example/crochet"
        catalog.add_subscription(sly, None)  # as if made before the guard was tightened
        record(catalog, PUBLIC, "publication", "Nouvelle version publiée")
        report = notify.deliver_webhooks(catalog, timeout=1)
        assert attacker.received == []
    assert report["delivered"] == 0 and report["retry_scheduled"] >= 1


@pytest.mark.parametrize(
    "answers",
    [[PUBLIC_ADDRESS, "127.0.0.1"], [None, "127.0.0.1"]],
    ids=["rebinding", "introuvable-puis-interne"],
)
def test_a_webhook_goes_to_the_address_that_was_checked_or_nowhere(answers, catalog, monkeypatch):
    # the name answers a public address (or nothing) when the guard asks, 127.0.0.1 after
    monkeypatch.delenv("OPENDATA_WEBHOOKS_INTERNAL")
    with attacker_server() as attacker:
        lookups = fake_resolver(monkeypatch, "crochet.reutilisateur.example", answers)
        url = f"http://crochet.reutilisateur.example:{attacker.port}/crochet"
        catalog.add_subscription(url, None)
        record(catalog, PUBLIC, "publication", "Nouvelle version publiée")
        report = notify.deliver_webhooks(catalog, timeout=1)
        assert attacker.received == []
    assert report["delivered"] == 0 and report["retry_scheduled"] >= 1
    # one event per delivery attempt, each resolved once: by the guard, not the connection
    assert len(lookups) == report["retry_scheduled"]


def test_webhooks_are_signed_retried_and_never_tell_restricted_events(catalog, monkeypatch):
    at(monkeypatch, "2026-11-02T12:00:00Z")
    with receiver({"/tout": 1}) as hook, running_catalog(catalog) as base:
        everything = subscribe(base, f"{hook.url}/tout")
        at(monkeypatch, "2026-11-02T12:00:01Z")
        trees = subscribe(base, f"{hook.url}/arbres", PUBLIC)
        at(monkeypatch, "2026-11-03T08:00:00Z")
        notice = record(
            catalog,
            PUBLIC,
            "avis-changement",
            "Changement de structure annoncé",
            date_effet="2027-03-01",
            description="La colonne « espece » est renommée « essence ».",
            courriel="agent.voirie@mairie-ecully.fr",  # never told to reusers
        )
        record(catalog, RESTRICTED, "retard", f"{SECRET_TITLE} : mise à jour en retard")
        first = notify.deliver_webhooks(catalog)
        at(monkeypatch, "2026-11-03T08:00:30Z")  # the retry is due one minute later
        early = notify.deliver_webhooks(catalog)
        at(monkeypatch, "2026-11-03T08:01:00Z")
        retried = notify.deliver_webhooks(catalog)
        at(monkeypatch, "2026-11-04T08:00:00Z")
        after = notify.deliver_webhooks(catalog)
    assert first == {"delivered": 1, "failed": 0, "retry_scheduled": 1, "skipped": 1}
    assert early == dict.fromkeys(first, 0)
    assert retried == {"delivered": 1, "failed": 0, "retry_scheduled": 0, "skipped": 0}
    assert after == dict.fromkeys(first, 0)
    assert [r["path"] for r in hook.received] == ["/tout", "/arbres", "/tout"]
    secrets = {"/tout": everything["secret"], "/arbres": trees["secret"]}
    for request in hook.received:
        body, headers = request["body"], request["headers"]
        expected = hmac.new(secrets[request["path"]].encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Opendata-Signature"] == f"sha256={expected}"
        assert headers["Content-Type"] == "application/json"
        assert headers["X-Opendata-Evenement"] == "avis-changement"
        assert headers["X-Opendata-Livraison"] == str(notice.id)
        payload = json.loads(body)
        assert payload == {
            "id": notice.id,
            "type": "avis-changement",
            "jeu_de_donnees": PUBLIC,
            "date": "2026-11-03T08:00:00Z",
            "titre": "Changement de structure annoncé",
            "details": {
                "date_effet": "2027-03-01",
                "description": "La colonne « espece » est renommée « essence ».",
            },
            "lien": f"https://donnees.example.org/jeux-de-donnees/{PUBLIC}",
        }
        assert SECRET_TITLE.encode() not in body


def test_a_failing_delivery_backs_off_then_is_given_up(catalog, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}/ferme"  # nothing listens there
    at(monkeypatch, "2026-11-02T12:00:00Z")
    with receiver({"/panne": 99}) as hook:
        broken = catalog.add_subscription(f"{hook.url}/panne", PUBLIC)
        closed = catalog.add_subscription(dead, None)
        at(monkeypatch, "2026-11-03T08:00:00Z")
        record(catalog, PUBLIC, "retard", "Mise à jour en retard")
        reports = [notify.deliver_webhooks(catalog, max_attempts=3, timeout=2)]
        for moment in ("08:00:59", "08:01:00", "08:05:59", "08:06:00", "23:00:00"):
            at(monkeypatch, f"2026-11-03T{moment}Z")
            reports.append(notify.deliver_webhooks(catalog, max_attempts=3, timeout=2))
    assert [(r["retry_scheduled"], r["failed"]) for r in reports] == [
        (2, 0),  # attempt 1, retried after 1 minute
        (0, 0),
        (2, 0),  # attempt 2, retried after 5 minutes
        (0, 0),
        (0, 2),  # attempt 3: given up
        (0, 0),
    ]
    assert len(hook.received) == 3
    assert all(r["delivered"] == 0 for r in reports)
    assert {broken.id, closed.id} <= {s.id for s in catalog.subscriptions()}


# --- e-mails ----------------------------------------------------------------------------------


class Mailbox:
    """aiosmtpd handler keeping every message with its envelope."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.original_content, policy=default_policy)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def find(self, subject_part: str) -> tuple[list[str], EmailMessage]:
        found = [(r, m) for r, m in self.messages if subject_part in m["Subject"]]
        assert len(found) == 1, [m["Subject"] for _r, m in self.messages]
        return found[0]


@pytest.fixture
def mailbox(monkeypatch) -> Iterator[Mailbox]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("OPENDATA_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OPENDATA_SMTP_PORT", str(port))
    monkeypatch.setenv("OPENDATA_SMTP_FROM", "donnees-ouvertes@test.example.org")
    monkeypatch.setenv("OPENDATA_DATA_TEAM_EMAIL", TEAM_MAIL)
    try:
        yield box
    finally:
        controller.stop()


def test_producers_and_the_data_team_are_mailed_once_per_event(
    catalog, settings, mailbox, monkeypatch
):
    at(monkeypatch, "2027-10-02T02:00:00Z")  # last update 2026-10-01, yearly
    record(
        catalog,
        PUBLIC,
        "retard",
        "Mise à jour en retard",
        attendue_le="2027-10-01",
        depublication_le="2029-10-01",
    )
    record(catalog, PUBLIC, "publication", "Nouvelle version publiée")  # reusers only
    at(monkeypatch, "2029-07-03T02:00:00Z")
    record(
        catalog,
        PUBLIC,
        "avertissement-depublication",
        "Dépublication dans 90 jours",
        jours_restants=90,
    )
    record(catalog, RESTRICTED, "avis-changement", "Changement annoncé", date_effet="2029-08-05")
    report = notify.notify_pending(catalog, settings)
    again = notify.notify_pending(catalog, settings)

    assert report["mails_sent"] == 3 and report["mails_pending"] == 0
    assert again["mails_sent"] == 0 and len(mailbox.messages) == 3
    recipients, late = mailbox.find("Mise à jour en retard")
    assert sorted(recipients) == sorted([PRODUCER_MAIL, TEAM_MAIL])
    assert late["Subject"] == "[Données ouvertes] Mise à jour en retard : Arbres d'alignement"
    assert late["From"] == "donnees-ouvertes@test.example.org"
    assert late["To"] == PRODUCER_MAIL and late["Cc"] == TEAM_MAIL
    assert late["Reply-To"] == TEAM_MAIL
    text = late.get_content()
    assert "mise à jour attendue le 1er octobre 2027" in text
    assert "déposez une mise à jour des données avant le 1er octobre 2029" in text
    assert "annexe data.grandlyon.com, §3.2" in text
    assert f"https://donnees.example.org/jeux-de-donnees/{PUBLIC}" in text

    _recipients, warning = mailbox.find("Dépublication dans 90 jours")
    assert "sera dépublié le 1er octobre 2029, dans 90 jours" in warning.get_content()
    _recipients, notice = mailbox.find("Avis de changement de structure enregistré")
    assert SECRET_TITLE in notice["Subject"]  # the producer and the team see their own data
    assert "à partir du 5 août 2029" in notice.get_content()


def test_the_dataset_contact_is_mailed_when_the_commune_has_no_address(
    catalog, mailbox, settings, monkeypatch
):
    at(monkeypatch, "2029-11-02T02:00:00Z")
    catalog.set_status(PUBLIC, "depublie")
    event = record(catalog, PUBLIC, "depublication", "Jeu de données dépublié")
    producers = load_producers(settings.producers_file)
    producers["ecully"] = replace(producers["ecully"], email=None)
    mailed = notify.notify_event(catalog, event, settings, producers)
    assert mailed == ["espaces-verts@mairie-ecully.fr", TEAM_MAIL]
    ((_recipients, message),) = mailbox.messages
    assert message["Subject"] == "[Données ouvertes] Jeu de données dépublié : Arbres d'alignement"
    assert "a été dépublié le 2 novembre 2029" in message.get_content()
    assert notify.notify_event(catalog, event, settings, producers) == []


def test_an_unreachable_relay_leaves_the_mail_for_the_next_run(catalog, monkeypatch, settings):
    monkeypatch.setenv("OPENDATA_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("OPENDATA_SMTP_PORT", str(free_port()))  # nothing listens there
    at(monkeypatch, "2029-10-01T02:00:00Z")
    event = record(catalog, PUBLIC, "retard", "Mise à jour en retard")
    assert notify.notify_event(catalog, event, settings) == []
    assert not catalog.mail_sent(notify.mail_key(event))
    assert notify.notify_pending(catalog, settings)["mails_pending"] == 1
