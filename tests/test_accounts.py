"""Producer and data-team accounts (issue #9): API tokens stored hashed, expiring and
revocable; the APIs answer 401/403 by account; every action lands in the audit log."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from catalog import accounts, refusals, sessions
from catalog.web.app import create_app
from core.access import Principal
from core.records import AuditEntry
from opendata.cli import main as cli

from backends import on_both_backends

pytest_plugins = ["backends"]  # the `backend` fixture: sqlite, postgis
settings, store = on_both_backends()  # every test here runs on both backends


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def at(monkeypatch: pytest.MonkeyPatch, moment: str) -> None:
    monkeypatch.setenv("OPENDATA_NOW", moment)


def test_a_token_is_stored_hashed_expires_and_can_be_revoked(store, backend, monkeypatch):
    at(monkeypatch, "2027-01-04T09:00:00Z")
    issued = accounts.create_token(store, "producteur", "Marie.Dupont@ecully.fr", "ecully", 90)
    token_id, secret = accounts.parse_token(issued.token)
    assert issued.token.startswith("odl_") and token_id == issued.record.id
    principal = accounts.principal_for_api_token(store, issued.token)
    assert principal == Principal(
        kind="producteur", subject=token_id, email="marie.dupont@ecully.fr", commune="ecully"
    )
    assert principal.acts_for("ecully") and not principal.acts_for("lyon")
    with backend.engine.connect() as conn:
        stored = repr(conn.execute(sa.text("SELECT * FROM api_tokens")).all())
    assert secret not in stored and hashlib.sha256(secret.encode()).hexdigest() in stored

    forged = f"odl_{token_id}_{'A' * 43}"
    assert accounts.principal_for_api_token(store, forged) is None
    assert accounts.principal_for_api_token(store, "odl_inconnu") is None
    at(monkeypatch, "2027-04-04T08:59:59Z")  # 90 days later, by the platform's clock
    assert accounts.principal_for_api_token(store, issued.token) is not None
    at(monkeypatch, "2027-04-04T09:00:00Z")
    assert accounts.principal_for_api_token(store, issued.token) is None

    at(monkeypatch, "2027-01-05T09:00:00Z")
    team = accounts.create_token(store, "equipe-data", "data@grandlyon.com")
    assert accounts.principal_for_api_token(store, team.token).kind == "equipe-data"
    accounts.revoke_token(store, team.record.id)
    assert accounts.principal_for_api_token(store, team.token) is None
    with pytest.raises(accounts.AccountError, match="déjà révoqué le 05/01/2027"):
        accounts.revoke_token(store, team.record.id)
    with pytest.raises(accounts.AccountError, match="introuvable"):
        accounts.revoke_token(store, "000000000000")
    log = [(e.action, e.target, e.actor_kind) for e in store.audit_log()]
    assert log == [
        ("jeton-revoque", team.record.id, "operateur"),
        ("jeton-cree", team.record.id, "operateur"),
        ("jeton-cree", token_id, "operateur"),
    ]


@pytest.mark.parametrize(
    ("kind", "agent", "commune", "days", "message"),
    [
        ("producteur", "marie@ecully.fr", "lyon2", 90, "Commune « lyon2 » inconnue"),
        ("producteur", "marie", "ecully", 90, "adresse électronique"),
        ("producteur", "marie@ecully.fr", "ecully", 0, "de 1 à 365 jours"),
        ("producteur", "marie@ecully.fr", "ecully", 366, "de 1 à 365 jours"),
        ("equipe-data", "data@grandlyon.com", "ecully", 90, "aucune commune"),
        ("admin", "data@grandlyon.com", None, 90, "Type de jeton « admin » inconnu"),
    ],
)
def test_tokens_are_only_made_for_known_communes_and_agents(
    store, kind, agent, commune, days, message
):
    with pytest.raises(accounts.AccountError, match=message):
        accounts.create_token(store, kind, agent, commune, days)
    assert store.tokens() == []


def test_the_command_line_creates_lists_and_revokes_tokens(store, capsys):
    created = ["jetons", "creer", "--producteur", "ecully", "--agent", "marie.dupont@ecully.fr"]
    assert cli([*created, "--expire-dans", "30"]) == 0
    out = capsys.readouterr().out
    token = re.search(r"odl_\S+", out).group(0)
    assert "n'est affiché qu'une fois" in out
    principal = accounts.principal_for_api_token(store, token)
    assert principal.commune == "ecully" and principal.label == "producteur:marie.dupont@ecully.fr"
    assert cli(["jetons", "creer", "--equipe-data", "--agent", "data@grandlyon.com"]) == 0
    capsys.readouterr()

    assert cli(["jetons", "lister"]) == 0
    listing = capsys.readouterr().out
    assert token not in listing and "marie.dupont@ecully.fr" in listing
    assert "équipe data" in listing and listing.count("actif") == 2
    assert cli(["jetons", "revoquer", principal.subject]) == 0
    assert "révoqué" in capsys.readouterr().out
    assert accounts.principal_for_api_token(store, token) is None
    assert cli(["jetons", "lister", "--producteur", "ecully", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["etat"] == "revoque" and "secret_sha256" not in listed

    assert cli(["jetons", "creer", "--producteur", "lyon2", "--agent", "a@lyon2.fr"]) == 1
    assert "Commune « lyon2 » inconnue" in capsys.readouterr().err
    assert cli(["jetons", "revoquer", principal.subject]) == 1
    assert "déjà révoqué" in capsys.readouterr().err

    assert cli(["journal", "--commune", "ecully", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["action"] for e in entries] == ["jeton-revoque", "jeton-cree"]
    assert all(e["qui"].startswith("operateur:") for e in entries)
    assert cli(["journal"]) == 0
    assert capsys.readouterr().out.count("jeton-cree") == 2


def test_the_apis_answer_by_account_and_every_action_is_logged(
    store, submit, dataset_folder, monkeypatch
):
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    ecully = accounts.create_token(store, "producteur", "marie@ecully.fr", "ecully").token
    vaulx = accounts.create_token(store, "producteur", "paul@vaulx.fr", "vaulx-en-velin").token
    team = accounts.create_token(store, "equipe-data", "data@grandlyon.com").token
    revoked = accounts.create_token(store, "producteur", "ancien@ecully.fr", "ecully")
    accounts.revoke_token(store, revoked.record.id)
    stats = "/api/communes/ecully/statistiques"
    with TestClient(create_app(store, services=[])) as http:
        anonymous = http.get(stats)
        forged = http.get(stats, headers=bearer(f"odl_{'0' * 12}_{'A' * 43}"))
        old = http.get(stats, headers=bearer(revoked.token))
        other = http.get(stats, headers=bearer(vaulx))
        own = http.get(stats, headers=bearer(ecully))
        as_team = http.get(stats, headers=bearer(team))
        public_page = http.get("/communes/ecully").text
        own_page = http.get("/communes/ecully", headers=bearer(ecully)).text
        health_producer = http.get("/api/equipe-data/sante", headers=bearer(ecully))
        health_team = http.get("/api/equipe-data/sante", headers=bearer(team))
        journal_producer = http.get("/api/equipe-data/journal", headers=bearer(ecully))
        journal = http.get("/api/equipe-data/journal", headers=bearer(team)).json()
        ecully_only = http.get(
            "/api/equipe-data/journal", params={"commune": "ecully"}, headers=bearer(team)
        ).json()
        refusals = http.get(
            "/api/equipe-data/journal", params={"action": "acces-refuse"}, headers=bearer(team)
        ).json()
        bad_action = http.get(
            "/api/equipe-data/journal", params={"action": "x"}, headers=bearer(team)
        )
        bad_date = http.get(
            "/api/equipe-data/journal", params={"depuis": "hier"}, headers=bearer(team)
        )
        account = http.get("/api/compte", headers=bearer(ecully)).json()

    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert "Authentification requise" in anonymous.json()["detail"]
    assert forged.status_code == 401 and old.status_code == 401
    assert "expiré ou révoqué" in old.json()["detail"]
    assert other.status_code == 403 and "vaulx-en-velin" in other.json()["detail"]
    assert own.status_code == 200 and as_team.status_code == 200
    assert [d["slug"] for d in own.json()["jeux_de_donnees"]] == ["ecully-arbres"]
    assert "Usage sur les 30 derniers jours" not in public_page
    assert "Usage sur les 30 derniers jours" in own_page
    assert health_producer.status_code == 403 and health_team.status_code == 200
    assert journal_producer.status_code == 403
    assert bad_action.status_code == 400 and bad_date.status_code == 400
    assert account["commune"] == "ecully" and account["type"] == "producteur"

    actions = [(e["action"], e["qui"], e["commune"]) for e in journal["entrees"]]
    assert ("statistiques-consultees", "producteur:marie@ecully.fr", "ecully") in actions
    assert ("statistiques-consultees", "equipe-data:data@grandlyon.com", "ecully") in actions
    assert ("acces-refuse", "producteur:paul@vaulx.fr", "ecully") in actions
    assert ("sante-consultee", "equipe-data:data@grandlyon.com", None) in actions
    assert ("soumission-publiee", "plateforme:pipeline", "ecully") in actions
    assert {e["commune"] for e in ecully_only["entrees"]} == {"ecully"}
    assert {e["action"] for e in refusals["entrees"]} == {"acces-refuse"}
    assert len(refusals["entrees"]) == 3  # vaulx's statistics, ecully's health and journal
    published = next(e for e in journal["entrees"] if e["action"] == "soumission-publiee")
    assert published["objet"] == "ecully-arbres" and published["details"]["canal"]


def test_backups_and_restores_are_logged(store, tmp_path, capsys):
    accounts.create_token(store, "equipe-data", "data@grandlyon.com")
    signed_in = sessions.open_session(store, "https://idp.example", {"sub": "a"}, "x.y.z", 8)
    assert cli(["backup", str(tmp_path)]) == 0
    [archive] = tmp_path.glob("*.tar")
    assert [e.action for e in store.audit_log(limit=1)] == ["sauvegarde"]
    assert cli(["restore", str(archive), "--force"]) == 0
    capsys.readouterr()
    assert cli(["journal", "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    # the restored catalog: what the backup held, then the restore itself
    assert [e["action"] for e in entries] == ["restauration", "jeton-cree"]
    assert entries[0]["objet"] == archive.name and entries[0]["qui"].startswith("operateur:")
    # a session of the backup may have been signed out since: none comes back
    store.engine.dispose()  # SQLite: the restored database is a new file
    assert store.portal_session(sessions.digest(signed_in)) is None


# --- refusals in the audit log (issue #16) ------------------------------------------------------


def refusals_of(store, action: str) -> list:
    return [e for e in store.audit_log(limit=1000) if e.action == action]


def test_refused_credentials_are_in_the_audit_log(store, dataset_folder, submit, monkeypatch):
    monkeypatch.setenv("OPENDATA_RATE_LIMIT", "off")
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    revoked = accounts.create_token(store, "producteur", "ancien@ecully.fr", "ecully")
    accounts.revoke_token(store, revoked.record.id)
    monkeypatch.setenv("OPENDATA_NOW", "2020-01-01T00:00:00Z")
    expired = accounts.create_token(store, "producteur", "parti@ecully.fr", "ecully", 30)
    monkeypatch.delenv("OPENDATA_NOW")
    team = accounts.create_token(store, "equipe-data", "data@grandlyon.com").token
    stats = "/api/communes/ecully/statistiques"
    with TestClient(create_app(store, services=[])) as http:
        assert http.get(stats, headers=bearer(revoked.token)).status_code == 401
        # a reading endpoint serves an expired token as an anonymous caller, but says so
        assert http.get("/api/datasets", headers=bearer(expired.token)).status_code == 200
        assert http.get(stats, headers=bearer(f"odl_{'0' * 12}_{'A' * 43}")).status_code == 401
        assert http.get(stats, headers=bearer("odl_pas-un-jeton")).status_code == 401
        assert http.get(stats, headers=bearer("un.jwt.quelconque")).status_code == 401
        journal = http.get(
            "/api/equipe-data/journal",
            params={"action": "authentification-refusee"},
            headers=bearer(team),
        ).json()["entrees"]
    seen = {(e["objet"], e["commune"], e["details"]["motif"]) for e in journal}
    assert seen == {
        (revoked.record.id, "ecully", "jeton-revoque"),
        (expired.record.id, "ecully", "jeton-expire"),
        (None, None, "jeton-inconnu"),
        (None, None, "jeton-mal-forme"),
        (None, None, "jeton-oidc-invalide"),
    }
    by_reason = {e["details"]["motif"]: e for e in journal}
    revoked_line = by_reason["jeton-revoque"]
    assert revoked_line["details"]["client"] == "testclient"
    assert revoked_line["details"]["chemin"] == stats
    assert revoked_line["details"]["methode"] == "GET"
    assert revoked_line["date"] and revoked_line["qui"] == "anonyme"
    assert by_reason["jeton-expire"]["details"]["chemin"] == "/api/datasets"


def test_a_restricted_dataset_refused_to_a_caller_is_in_the_audit_log(
    store, dataset_folder, submit, monkeypatch
):
    monkeypatch.setenv("OPENDATA_RATE_LIMIT", "off")
    data = dataset_folder(
        "arbres.csv", "id;espece\r\n1;Platane\r\n", extra_metadata="acces: restreint\n"
    )
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    vaulx = accounts.create_token(store, "producteur", "paul@vaulx.fr", "vaulx-en-velin").token
    ecully = accounts.create_token(store, "producteur", "marie@ecully.fr", "ecully").token
    app = create_app(store, services=[])
    with TestClient(app) as http:
        missing = http.get("/api/datasets/ecully-inexistant")
        hidden = http.get("/api/datasets/ecully-arbres")
        assert missing.status_code == hidden.status_code == 404
        assert (
            http.get("/api/datasets/ecully-arbres/rows", headers=bearer(vaulx)).status_code == 404
        )
        assert http.get("/api/datasets/ecully-arbres", headers=bearer(ecully)).status_code == 200
        refusals.flush(app)
    lines = refusals_of(store, "lecture-refusee")
    assert [(e.actor, e.target, e.commune) for e in lines] == [
        ("producteur:paul@vaulx.fr", "ecully-arbres", "ecully"),
        ("anonyme", "ecully-arbres", "ecully"),
    ]
    assert lines[0].details == {
        "motif": "acces-restreint",
        "client": "testclient",
        "methode": "GET",
        "chemin": "/api/datasets/ecully-arbres/rows",
    }


def test_a_flood_of_bad_requests_writes_a_bounded_number_of_lines(store, monkeypatch):
    monkeypatch.setenv("OPENDATA_RATE_LIMIT_EXEMPT", "")  # the flood meets the rate limit too
    app = create_app(store, services=[])
    with TestClient(app) as http:
        statuses = {
            http.get("/api/compte", headers=bearer(f"odl_{n:012x}_{'A' * 43}")).status_code
            for n in range(1000)
        }
        assert statuses <= {401, 429}
        refusals.flush(app)
    assert len(refusals_of(store, "authentification-refusee")) == refusals.PER_CLIENT
    [summary] = refusals_of(store, "refus-non-detailles")
    assert summary.details["client"] == "testclient"
    assert summary.details["refus"] == "authentification-refusee"
    assert summary.details["limite"] == refusals.PER_CLIENT


class Lines:
    """A store that only keeps what the refusal log writes."""

    def __init__(self) -> None:
        self.written: list[AuditEntry] = []

    def record_audit(self, entry: AuditEntry) -> None:
        self.written.append(entry)


def test_the_refusal_log_is_bounded_per_client_and_for_all_clients():
    lines, moment = Lines(), [0.0]
    log = refusals.RefusalLog(
        lines, per_client=3, per_window=20, window=60, max_clients=50, monotonic=lambda: moment[0]
    )

    def refuse(client: str, action: str = "authentification-refusee") -> None:
        log.record(
            AuditEntry(
                at=datetime(2027, 1, 1),
                actor="anonyme",
                actor_kind="anonyme",
                actor_id="",
                action=action,
            ),
            client,
        )

    for _ in range(100):
        refuse("10.0.0.1")
        refuse("10.0.0.1", "lecture-refusee")
    log.flush()
    assert [e.action for e in lines.written].count("authentification-refusee") == 3
    assert [e.action for e in lines.written].count("lecture-refusee") == 3
    assert [e.action for e in lines.written].count("refus-non-detailles") == 2

    for n in range(10_000):  # many addresses (IPv6 makes them cheap)
        refuse(f"2001:db8::{n:x}")
    log.flush()
    assert len(lines.written) <= 20 + 20 // 3 + 1 + 2
    assert [e.details.get("client") for e in lines.written].count("*") == 1

    moment[0] = 61.0  # the next minute: details again
    before = len(lines.written)
    refuse("10.0.0.1")
    log.flush()
    assert (
        len(lines.written) == before + 1 and lines.written[-1].action == "authentification-refusee"
    )


def test_the_journal_shows_control_characters_escaped(store, capsys):
    hostile = "usager:\x1b[31mMallory\x1b[0m\n01/01/2027 00:00:00  operateur:root"
    store.record_audit(
        AuditEntry(
            at=datetime(2027, 1, 4, 9, 0),
            actor=hostile,
            actor_kind="usager",
            actor_id="sub-\x9b6n",
            action="statistiques-consultees",
            commune="ecully",
            target="jeu\u202etxt.exe",
            details={"nom\x07": "\x1b]0;titre\x07"},
        )
    )
    assert cli(["journal"]) == 0
    out = capsys.readouterr().out
    assert "\\x1b[31mMallory\\x1b[0m\\x0a01/01/2027" in out and "jeu\\u202etxt.exe" in out
    assert out.count("\n") == 1  # one entry, one line
    assert cli(["journal", "--json"]) == 0
    raw = capsys.readouterr().out
    assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]", raw)  # newlines: the layout
    [entry] = json.loads(raw)
    assert entry["qui"] == "usager:\\x1b[31mMallory\\x1b[0m\\x0a01/01/2027 00:00:00  operateur:root"
    assert entry["id_acteur"] == "sub-\\x9b6n"
    assert entry["details"] == {"nom\\x07": "\\x1b]0;titre\\x07"}
    team = accounts.create_token(store, "equipe-data", "data@grandlyon.com").token
    with TestClient(create_app(store, services=[])) as http:
        served = http.get("/api/equipe-data/journal", headers=bearer(team)).json()["entrees"]
    assert any(e["qui"] == entry["qui"] for e in served)
