"""Agents and the data team in the browser (issue #19): signed in through a real local
OpenID Connect provider (`tests/oidc_provider.py`), their role from the habilitations file
(`catalog.roles`), « Mes dépôts » with its upload form (CSRF token per session), the health
page; Debian's Chromium driven by Playwright for what a person does."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import pytest
import requests
from captures import VIEWPORT, capture
from oidc_provider import OidcProvider
from playwright.sync_api import expect
from test_portal_browser import CHROMIUM, FLAGS
from test_upload_api import run_commune_dag_tasks, trees

from catalog import accounts, refusals
from catalog.roles import RolesError, parse_roles
from catalog.web.app import create_app
from core.inbox import UPLOAD_MARKER
from core.problems import SubmissionRejected
from pipelines import tasks

from conftest import METADATA_TEMPLATE, Deployment, deployment, serving, write_submission

playwright_api = pytest.importorskip("playwright.sync_api")
LYON_SIRET = "21690123400019"
HABILITATIONS = f"""\
fournisseurs: [proconnect]
equipe-data:
  courriels: [camille.leroy@grandlyon.example.org]
communes:
  ecully:
    domaines: [ville-ecully.fr]
  lyon:
    siret: ["{LYON_SIRET}"]
"""
ECULLY_AGENT = {
    "sub": "agent-ecully",
    "given_name": "Marie",
    "family_name": "Durand",
    "email": "marie.durand@ville-ecully.fr",
}
LYON_AGENT = {"sub": "agent-lyon", "given_name": "Paul", "email": "paul@lyon.example.net"}
DATA_TEAM = {
    "sub": "equipe-1",
    "given_name": "Camille",
    "family_name": "Leroy",
    "email": "Camille.Leroy@GrandLyon.example.org",  # addresses compare without case
}
CITIZEN = {"sub": "usager-1", "given_name": "Alex", "email": "alex@example.net"}
HEALTH = "/equipe-data/sante"
ECULLY = "/communes/ecully/depots"


def metadata(identifier: str) -> bytes:
    return (
        METADATA_TEMPLATE.format(licence="etalab-2.0") + f"identifiant: {identifier}\n"
    ).encode()


@dataclass
class World:
    base: str
    deployed: Deployment
    issuer: OidcProvider
    app: Any
    inbox: Path

    def sign_in(self, person: dict[str, Any], back: str = "/") -> requests.Session:
        """A browser-like session signed in as `person`, back on `back`."""
        self.issuer.next_user = person
        browser = requests.Session()
        page = browser.get(f"{self.base}/connexion?retour={back}", timeout=30)
        assert page.status_code in (200, 403), page.text
        return browser

    def get(self, path: str, **options: Any) -> requests.Response:
        options.setdefault("allow_redirects", False)
        return requests.get(self.base + path, timeout=30, **options)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with OidcProvider().serving() as issuer, deployment(tmp_path_factory, "gens") as deployed:
        habilitations = deployed.root / "habilitations.yaml"
        habilitations.write_text(HABILITATIONS, encoding="utf-8")
        inbox = deployed.root / "inbox"
        patch = pytest.MonkeyPatch()
        for name, value in {
            "OPENDATA_OIDC_ISSUERS": f"proconnect={issuer.issuer}",
            "OPENDATA_OIDC_CLIENT_ID_PROCONNECT": issuer.client_id,
            "OPENDATA_OIDC_CLIENT_SECRET_PROCONNECT": issuer.client_secret,
            "OPENDATA_SESSION_SECRET": "secret-de-session-des-tests-0123456789abcdef",
            "OPENDATA_SESSION_SECURE": "0",  # plain http on loopback
            "OPENDATA_HABILITATIONS_FILE": str(habilitations),
            "OPENDATA_INBOX_DIR": str(inbox),
        }.items():
            patch.setenv(name, value)
        try:
            app = create_app(deployed.store, services=[])
            with serving(app) as base:
                yield World(base, deployed, issuer, app, inbox)
        finally:
            patch.undo()


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page).group(1)


def upload_files(identifier: str, rows: int = 5) -> dict[str, tuple[str, bytes]]:
    return {
        "metadonnees": ("metadata.yaml", metadata(identifier)),
        "fichier": ("arbres.csv", trees(rows)),
        "schema": ("", b""),  # the optional input left empty, as a browser sends it
    }


# --- the habilitations file -------------------------------------------------------------------


def test_the_habilitations_give_roles_by_address_domain_siret_or_claim():
    roles = parse_roles(
        {
            "fournisseurs": ["proconnect"],
            "equipe-data": {"courriels": ["Data@GrandLyon.com"]},
            "communes": {
                "ecully": {"domaines": ["ville-ecully.fr"], "courriels": ["maire@gmail.com"]},
                "lyon": {"siret": ["216 901 234 00019"]},
                "vaulx-en-velin": {"revendications": {"organizational_unit": ["Mairie de Vaulx"]}},
            },
        },
        communes={"ecully", "lyon", "vaulx-en-velin"},
        providers={"proconnect", "grandlyon"},
    )

    def role(provider: str = "proconnect", **person: Any) -> tuple[str, str | None] | None:
        found = roles.role_of(person, provider)
        return (found.kind, found.commune) if found else None

    assert role(email="data@grandlyon.com") == ("equipe-data", None)
    assert role(email="a.b@VILLE-ECULLY.fr") == ("producteur", "ecully")
    assert role(email="a.b@services.ville-ecully.fr") is None  # a sub-domain is another domain
    assert role(email="a.b@ville-ecully.fr.pirate.net") is None
    assert role(email="maire@gmail.com") == ("producteur", "ecully")
    assert role(email="x@y.fr", revendications={"siret": LYON_SIRET}) == ("producteur", "lyon")
    claim = {"organizational_unit": ["Autre", "Mairie de Vaulx"]}
    assert role(email="x@y.fr", revendications=claim) == ("producteur", "vaulx-en-velin")
    assert role("grandlyon", email="a.b@ville-ecully.fr") is None  # not a trusted provider
    unverified = {"email_verified": False}
    assert role(email="a.b@ville-ecully.fr", revendications=unverified) is None
    both = {"siret": LYON_SIRET}
    assert role(email="a.b@ville-ecully.fr", revendications=both) is None  # two communes
    assert role(email="data@grandlyon.com", revendications=both) == ("equipe-data", None)
    assert roles.claims == ("email_verified", "organizational_unit", "siret")


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"communes": {"lyon2": {"courriels": ["a@b.fr"]}}}, "commune « lyon2 » inconnue"),
        ({"equipe-data": {"adresses": ["a@b.fr"]}}, "clé(s) inconnue(s) adresses"),
        ({"equipe_data": {}}, "clé(s) inconnue(s) equipe_data"),
        ({"equipe-data": {"courriels": ["pas-une-adresse"]}}, "adresse électronique"),
        ({"communes": {"ecully": {"domaines": ["@ville ecully.fr"]}}}, "domaine « ville ecully"),
        ({"communes": {"ecully": {"siret": ["1234"]}}}, "SIRET « 1234 » invalide"),
        ({"fournisseurs": ["proconect"]}, "proconect inconnu(s) d'OPENDATA_OIDC_ISSUERS"),
        (
            {"communes": {"ecully": {"domaines": ["a.fr"]}, "lyon": {"domaines": ["A.fr"]}}},
            "domaine « a.fr » donné(e) à deux communes",
        ),
        ({"communes": {"ecully": {"revendications": {"email": ["x"]}}}}, "se règle par"),
        ({"communes": ["ecully"]}, "une entrée par identifiant de commune"),
    ],
)
def test_a_wrong_habilitations_file_is_refused_in_french(document, message):
    with pytest.raises(RolesError) as refused:
        parse_roles(document, communes={"ecully", "lyon"}, providers={"proconnect"})
    assert message in str(refused.value)


def test_the_catalog_does_not_start_with_a_wrong_habilitations_file(store, tmp_path, monkeypatch):
    wrong = tmp_path / "habilitations.yaml"
    wrong.write_text("communes:\n  lyon2:\n    domaines: [mairie-lyon.fr]\n", encoding="utf-8")
    monkeypatch.setenv("OPENDATA_HABILITATIONS_FILE", str(wrong))
    with pytest.raises(SystemExit, match="commune « lyon2 » inconnue"):
        create_app(store, services=[])
    monkeypatch.setenv("OPENDATA_HABILITATIONS_FILE", str(tmp_path / "absent.yaml"))
    with pytest.raises(SystemExit, match="fichier d'habilitations introuvable"):
        create_app(store, services=[])


# --- pages, sessions and tokens ---------------------------------------------------------------


def test_without_a_session_the_pages_send_to_the_sign_in_and_the_apis_answer_401(world):
    for page in (HEALTH, ECULLY, f"{ECULLY}/20270101000000-abcdef12"):
        answer = world.get(page)
        assert answer.status_code == 303, page
        assert answer.headers["location"] == f"/connexion?retour={page.replace('/', '%2F')}"
    api = world.get("/api/equipe-data/sante")
    assert api.status_code == 401 and "Authorization" in api.json()["detail"]
    # following the redirection: the provider, then back on the page, signed in
    world.issuer.next_user = DATA_TEAM
    browser = requests.Session()
    page = browser.get(world.base + HEALTH, timeout=30)
    assert page.status_code == 200 and page.url == world.base + HEALTH
    assert "<h1>Santé des jeux de données</h1>" in page.text and "Camille Leroy" in page.text
    # the session opens no API: they take bearer credentials only
    assert browser.get(f"{world.base}/api/equipe-data/sante", timeout=30).status_code == 401
    files = upload_files("par-l-api")
    sent = browser.post(f"{world.base}/api/communes/ecully/depots", files=files, timeout=30)
    assert sent.status_code == 401 and not (world.inbox / "ecully" / "par-l-api").exists()
    # machines keep their tokens, on the page too
    token = accounts.create_token(world.deployed.store, "equipe-data", "data@grandlyon.com")
    headers = {"Authorization": f"Bearer {token.token}"}
    assert world.get(HEALTH, headers=headers).status_code == 200
    assert world.get(HEALTH, headers={"Authorization": "Bearer faux"}).status_code == 401


def test_each_person_gets_the_pages_of_their_role_and_a_french_403_elsewhere(world):
    start = max((e.id for e in world.deployed.store.audit_log(limit=1)), default=0)
    world.app.state.refusals = refusals.RefusalLog(world.deployed.store)  # a fresh quota
    marie = world.sign_in(ECULLY_AGENT)
    home = marie.get(world.base + "/", timeout=30).text
    assert "Marie Durand" in home and f'<a href="{ECULLY}">Mes dépôts</a>' in home
    assert "Santé des jeux" not in home
    assert marie.get(world.base + ECULLY, timeout=30).status_code == 200
    other = marie.get(f"{world.base}/communes/lyon/depots", timeout=30)
    assert other.status_code == 403 and "<h1>Accès refusé</h1>" in other.text
    assert "Réservé aux agents de la commune « lyon »" in other.text
    assert "rattaché à la commune « ecully »" in other.text
    health = marie.get(world.base + HEALTH, timeout=30)
    assert health.status_code == 403 and "Réservé à l'équipe data" in unescape(health.text)

    world.issuer.names_in_userinfo = True  # ProConnect's way: the claims in the userinfo
    try:
        paul = world.sign_in({**LYON_AGENT, "siret": LYON_SIRET})
    finally:
        world.issuer.names_in_userinfo = False
    assert paul.get(f"{world.base}/communes/lyon/depots", timeout=30).status_code == 200
    assert paul.get(world.base + ECULLY, timeout=30).status_code == 403

    camille = world.sign_in(DATA_TEAM)
    home = camille.get(world.base + "/", timeout=30).text
    assert '<a href="/equipe-data/sante">Santé des jeux</a>' in home and "Mes dépôts" not in home
    assert camille.get(world.base + ECULLY, timeout=30).status_code == 200  # every commune

    alex = world.sign_in(CITIZEN)
    refused = alex.get(world.base + HEALTH, timeout=30)
    assert refused.status_code == 403
    assert "n'est rattaché à aucune commune" in unescape(refused.text)
    assert "Mes dépôts" not in alex.get(world.base + "/", timeout=30).text
    refusals.flush(world.app)
    lines = [e for e in world.deployed.store.audit_log(action="acces-refuse") if e.id > start]
    assert {(e.actor, e.commune) for e in lines} >= {
        ("producteur:Marie Durand", "lyon"),
        ("producteur:Marie Durand", None),
        ("usager:Alex Martin", None),
    }


def test_a_form_posted_by_session_needs_the_csrf_token_of_that_session(world):
    marie = world.sign_in(ECULLY_AGENT, ECULLY)
    token = csrf_of(marie.get(world.base + ECULLY, timeout=30).text)
    lea = world.sign_in({**ECULLY_AGENT, "sub": "agent-ecully-2", "given_name": "Léa"}, ECULLY)
    other_token = csrf_of(lea.get(world.base + ECULLY, timeout=30).text)
    assert token != other_token and len(token) == 43
    url, folder = world.base + ECULLY, world.inbox / "ecully" / "jetons"
    for form in ({}, {"csrf": ""}, {"csrf": other_token}, {"csrf": token[:-1] + "A"}):
        refused = marie.post(url, data=form, files=upload_files("jetons"), timeout=30)
        assert refused.status_code == 403, form
        assert "jeton de sécurité (csrf) est absent ou ne correspond pas" in refused.text
        assert not folder.exists()
    sent = marie.post(url, data={"csrf": token}, files=upload_files("jetons"), timeout=30)
    assert sent.status_code == 200 and re.search(r"/communes/ecully/depots/\d{14}-", sent.url)
    assert sorted(p.name for p in folder.iterdir()) == [
        UPLOAD_MARKER,
        "arbres.csv",
        "metadata.yaml",
    ]
    marker = json.loads((folder / UPLOAD_MARKER).read_text(encoding="utf-8"))
    assert marker["par"] == "producteur:Marie Durand" and marker["jeton"] == "agent-ecully"
    # signed out and in again: a new session, a new token; the old one opens nothing
    marie.get(world.base + "/deconnexion", timeout=30)
    marie = world.sign_in(ECULLY_AGENT, ECULLY)
    again = marie.post(url, data={"csrf": token}, files=upload_files("jetons-2"), timeout=30)
    assert again.status_code == 403 and not (world.inbox / "ecully" / "jetons-2").exists()
    # a machine with its token needs no CSRF token (a browser never adds the header itself)
    machine = accounts.create_token(world.deployed.store, "producteur", "robot@ecully.fr", "ecully")
    headers = {"Authorization": f"Bearer {machine.token}"}
    files = upload_files("par-jeton")
    posted = requests.post(url, files=files, headers=headers, timeout=30, allow_redirects=False)
    assert posted.status_code == 303 and (world.inbox / "ecully" / "par-jeton").is_dir()
    shutil.rmtree(world.inbox / "ecully")  # the next tests start from an empty inbox


def test_the_form_refuses_a_bad_deposit_as_the_api_does_in_french(world):
    marie = world.sign_in(ECULLY_AGENT, ECULLY)
    token = csrf_of(marie.get(world.base + ECULLY, timeout=30).text)
    files = {**upload_files("x"), "fichier": ("arbres.exe", b"MZ")}
    refused = marie.post(world.base + ECULLY, data={"csrf": token}, files=files, timeout=30)
    assert refused.status_code == 415 and "Dépôt refusé" in refused.text
    assert "format non accepté" in refused.text and 'name="csrf"' in refused.text
    files = {**upload_files("x"), "metadonnees": ("metadata.yaml", b"titre: [")}
    refused = marie.post(world.base + ECULLY, data={"csrf": token}, files=files, timeout=30)
    assert refused.status_code == 422 and "YAML" in refused.text and "ligne 1" in refused.text
    wrong_licence = METADATA_TEMPLATE.format(licence="licence ouvert") + "identifiant: x\n"
    files = {**upload_files("x"), "metadonnees": ("metadata.yaml", wrong_licence.encode())}
    refused = marie.post(world.base + ECULLY, data={"csrf": token}, files=files, timeout=30)
    assert refused.status_code == 422 and "vouliez-vous dire" in refused.text
    assert "etalab-2.0" in refused.text
    assert not (world.inbox / "ecully").exists() or not any((world.inbox / "ecully").iterdir())


def test_a_refused_submission_has_its_report_in_french_on_its_page(world):
    schema = json.dumps(
        {
            "fields": [
                {"name": "id", "type": "integer"},
                {"name": "espece", "type": "string"},
                {"name": "hauteur", "type": "integer"},
            ]
        }
    )
    rows = "id;espece;hauteur\r\n1;Platane;12\r\n2;Chêne;grand\r\n"
    write_submission(world.inbox / "ecully" / "haies", "haies.csv", rows, schema=schema)
    for submission in tasks.find_submissions("ecully"):  # the commune DAG's tasks
        metadata = tasks.check_metadata(submission)
        tasks.check_licence(submission, metadata)
        with pytest.raises(SubmissionRejected):
            tasks.check_structure(submission, metadata)
    marie = world.sign_in(ECULLY_AGENT, ECULLY)
    listing = marie.get(world.base + ECULLY, timeout=30).text
    row = re.search(r"<tr>\s*<td>[^<]*</td>\s*<td><code>ecully-haies</code>.*?</tr>", listing, re.S)
    assert "Refusé" in row.group(0) and "Dossier de dépôt" in row.group(0)
    link = re.search(r'href="(/communes/ecully/depots/[^"]+)"', row.group(0)).group(1)
    page = marie.get(world.base + link, timeout=30).text
    assert "La soumission est refusée : 1 problème(s) détecté(s)." in page
    assert "Structure (Table Schema)" in page and "colonne « hauteur »" in page
    assert "ligne 3" in page
    missing = marie.get(f"{world.base}{ECULLY}/20270101000000-abcdef12", timeout=30)
    assert missing.status_code == 404 and "Dépôt introuvable" in missing.text
    shutil.rmtree(world.inbox / "ecully")


# --- in Chromium ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), "Debian's chromium is installed by scripts/bootstrap.sh"
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="fr-FR", viewport=VIEWPORT)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert errors == []


def test_an_agent_signs_in_uploads_with_the_form_and_reads_the_outcome(world, page, tmp_path):
    world.issuer.next_user = ECULLY_AGENT
    page.goto(world.base + "/")
    page.get_by_role("link", name="Se connecter").click()
    page.wait_for_url(world.base + "/")
    page.get_by_role("link", name="Mes dépôts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dépôts — Écully")
    expect(page.locator("#derniere-publication")).to_contain_text("Aucun jeu de données publié")
    (tmp_path / "metadata.yaml").write_bytes(metadata("arbres-formulaire"))
    (tmp_path / "arbres.csv").write_bytes(trees(40))
    page.get_by_label("Métadonnées (metadata.yaml)").set_input_files(tmp_path / "metadata.yaml")
    page.get_by_label(re.compile("Fichier de données")).set_input_files(tmp_path / "arbres.csv")
    page.get_by_role("button", name="Déposer").click()
    page.wait_for_url(re.compile(r"/communes/ecully/depots/\d{14}-[0-9a-f]{8}$"))
    expect(page.locator("#etat")).to_contain_text("En attente de traitement")

    [published] = run_commune_dag_tasks("ecully")  # the commune's DAG passes
    assert published["statut"] == "publiee" and page.url.endswith(published["id"])
    page.reload()
    expect(page.locator("#etat")).to_contain_text("Publié")
    expect(page.locator("main")).to_contain_text("Aucun problème détecté (40 lignes vérifiées)")
    page.get_by_role("link", name="Retour à la liste des dépôts").click()
    expect(page.locator("#derniere-publication")).to_contain_text("Arbres d'alignement")
    newest = page.locator("#depots tbody tr").first
    for text in ("ecully-arbres-formulaire", "Formulaire ou API", "Publié"):
        expect(newest).to_contain_text(text)
    capture(page, "mes-depots")
    page.locator("#derniere-publication").get_by_role("link", name="Arbres d'alignement").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Arbres d'alignement")


def test_an_agent_of_another_commune_is_refused_in_the_browser(world, page):
    world.issuer.next_user = {**LYON_AGENT, "siret": LYON_SIRET}
    answer = page.goto(world.base + ECULLY)  # sent to the sign-in, then back, refused
    assert answer.status == 403 and page.url == world.base + ECULLY
    expect(page.get_by_role("heading", level=1)).to_have_text("Accès refusé")
    expect(page.get_by_role("alert")).to_contain_text("Réservé aux agents de la commune « ecully »")
    assert page.locator("input[type=file]").count() == 0
    page.get_by_role("link", name="Mes dépôts").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Dépôts — Lyon")


def test_the_data_team_signs_in_through_the_health_page(world, page):
    world.issuer.next_user = DATA_TEAM
    world.issuer.requests.clear()
    page.goto(world.base + HEALTH)  # no session: to the provider and back
    assert "/authorize" in world.issuer.requests and page.url == world.base + HEALTH
    expect(page.get_by_role("heading", level=1)).to_have_text("Santé des jeux de données")
    expect(page.locator("header")).to_contain_text("Camille Leroy")
    page.goto(world.base + "/")
    page.get_by_role("link", name="Santé des jeux").click()
    page.wait_for_url(world.base + HEALTH)
    page.get_by_role("link", name="Se déconnecter").click()
    page.wait_for_url(world.base + "/")
    world.issuer.next_user = CITIZEN  # signed out: the next sign-in is somebody else's
    assert page.goto(world.base + HEALTH).status == 403
    expect(page.get_by_role("alert")).to_contain_text("Réservé à l'équipe data")
