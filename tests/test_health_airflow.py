"""The health page's Airflow part on a real `airflow api-server` (Airflow 3, simple auth
manager, SQLite metadata in a temporary AIRFLOW_HOME, the project's DAGs serialized by
`airflow dags reserialize`; no scheduler: a triggered run stays queued). The data team
sees each commune's last and next runs, re-runs a commune from the page (in Chromium too,
signed in through the OpenID provider), and the page still works, saying so in French, when
Airflow cannot be reached."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import lxml.html
import pytest
from fastapi.testclient import TestClient
from oidc_provider import OidcProvider
from playwright.sync_api import expect

from catalog import accounts
from catalog.web.app import create_app
from core.settings import PROJECT_ROOT

from conftest import deployment, running_catalog

AIRFLOW = str(Path(sys.executable).parent / "airflow")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SAMPLES = PROJECT_ROOT / "samples" / "inbox"
USER, PASSWORD = "equipe-catalogue", secrets.token_urlsafe(12)
PAGE = "/equipe-data/sante"
API = "/api/equipe-data/sante"
START_TIMEOUT = 120  # seconds for the api-server to answer (about 30 s here)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Airflow's API server on a free loopback port; its base URL."""
    home = tmp_path_factory.mktemp("airflow-sante")
    port = _free_port()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(16),
        "AIRFLOW__API__WORKERS": "1",
        "OPENDATA_DATA_DIR": str(home / "data"),
        "OPENDATA_INBOX_DIR": str(home / "inbox"),
    }
    # the simple auth manager reads its users' passwords from this file (it generates the
    # missing ones): the catalog's user gets a known one
    (home / "simple_auth_manager_passwords.json.generated").write_text(
        f'{{"{USER}": "{PASSWORD}"}}\n', encoding="utf-8"
    )
    migrate = subprocess.run(
        [AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    log = (home / "api-server.log").open("w")
    server = subprocess.Popen(
        [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped whole
    )
    try:
        # the DAGs in the metadata database, as the dag-processor would put them
        serialized = subprocess.run(
            [AIRFLOW, "dags", "reserialize"], env=env, capture_output=True, text=True, timeout=300
        )
        assert serialized.returncode == 0, serialized.stderr[-2000:]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert server.poll() is None, (home / "api-server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (home / "api-server.log").read_text()[-3000:]
            time.sleep(1)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    """A catalog with real deposits of two communes."""
    with deployment(tmp_path_factory, "sante-airflow") as catalog:
        catalog.publish_sample(SAMPLES / "lyon" / "fontaines-eau-potable")
        catalog.publish_sample(SAMPLES / "ecully" / "bancs-publics")
        yield catalog


@pytest.fixture
def configured(airflow, monkeypatch) -> str:
    monkeypatch.setenv("OPENDATA_AIRFLOW_URL", airflow)
    monkeypatch.setenv("OPENDATA_AIRFLOW_USER", USER)
    monkeypatch.setenv("OPENDATA_AIRFLOW_PASSWORD", PASSWORD)
    monkeypatch.delenv("OPENDATA_AIRFLOW_API_URL", raising=False)
    return airflow


def team(store) -> dict[str, str]:
    token = accounts.create_token(store, "equipe-data", "data@grandlyon.com").token
    return {"Authorization": f"Bearer {token}"}


def airflow_runs(base: str, dag_id: str) -> list[dict]:
    """The DAG's runs, read from Airflow's API directly (not through the catalog)."""
    token = httpx.post(f"{base}/auth/token", json={"username": USER, "password": PASSWORD})
    answer = httpx.get(
        f"{base}/api/v2/dags/{dag_id}/dagRuns",
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    answer.raise_for_status()
    return answer.json()["dag_runs"]


def test_each_commune_s_runs_and_a_rerun_from_the_page(deployed, configured) -> None:
    store = deployed.store
    with TestClient(create_app(store, services=[])) as http:
        headers = team(store)
        before = http.get(API, headers=headers).json()
        assert before["airflow"] == {
            "configure": True,
            "interface": configured,
            "joignable": True,
            "message": None,
        }
        lyon = next(c for c in before["communes"] if c["slug"] == "lyon")["airflow"]
        assert lyon["dag"] == "commune_lyon" and lyon["connu"]
        assert lyon["suspendu"]  # paused at creation: a run waits until it is unpaused
        assert lyon["lien"] == f"{configured}/dags/commune_lyon"

        answer = http.post(f"{PAGE}/communes/lyon/relancer", headers=headers)
        assert answer.status_code == 200, answer.text  # after the redirect to the page
        assert "Relance du traitement de Lyon demandée à Airflow." in answer.text
        [audit] = store.audit_log(action="traitement-relance")
        assert (audit.commune, audit.target) == ("lyon", "commune_lyon")
        run_id = audit.details["execution"]

        # the run is Airflow's own, noted with who asked for it
        [run] = [r for r in airflow_runs(configured, "commune_lyon") if r["dag_run_id"] == run_id]
        assert run["run_type"] == "manual" and run["state"] == "queued"
        assert run["note"] == "Relancé depuis la vue santé par equipe-data:data@grandlyon.com"

        after = http.get(API, headers=headers).json()
        last = next(c for c in after["communes"] if c["slug"] == "lyon")["airflow"]
        assert last["derniere_execution"]["id"] == run_id
        assert last["derniere_execution"]["etat_libelle"] == "en file d'attente"
        assert last["derniere_execution"]["lien"] == (
            f"{configured}/dags/commune_lyon/runs/{quote(run_id, safe='')}"
        )
        page = http.get(f"{PAGE}?commune=lyon", headers=headers).text
        row = lxml.html.fromstring(page).xpath('//tr[@id="commune-lyon"]')[0]
        assert "en file d'attente" in row.text_content()
        logs = row.xpath('.//a[starts-with(., "journaux dans Airflow")]/@href')
        assert logs == [last["derniere_execution"]["lien"]]
        assert httpx.get(logs[0]).status_code == 200  # the Airflow UI serves that page

        # the API does the same, and only for the data team and a known commune
        api = http.post(f"{API}/communes/ecully/relancer", headers=headers)
        assert api.status_code == 201 and api.json()["dag"] == "commune_ecully"
        assert api.json()["etat"] == "queued"
        producer = accounts.create_token(store, "producteur", "agent@ecully.fr", "ecully").token
        refused = [
            http.post(f"{API}/communes/ecully/relancer"),
            http.post(
                f"{API}/communes/ecully/relancer",
                headers={"Authorization": f"Bearer {producer}"},
            ),
            http.post(f"{API}/communes/paris/relancer", headers=headers),
        ]
        assert [r.status_code for r in refused] == [401, 403, 404]
        assert len(store.audit_log(action="traitement-relance")) == 2


def test_without_airflow_the_page_says_so_and_shows_the_rest(deployed, monkeypatch) -> None:
    store = deployed.store
    closed = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("OPENDATA_AIRFLOW_URL", closed)
    with TestClient(create_app(store, services=[])) as http:
        headers = team(store)
        started = time.monotonic()
        page = http.get(PAGE, headers=headers)
        assert time.monotonic() - started < 10  # a short timeout, not the page's hang
        assert page.status_code == 200
        assert "Airflow ne répond pas : les exécutions des traitements ne sont pas affichées" in (
            page.text
        )
        rows = lxml.html.fromstring(page.text).xpath('//table[@id="table-communes"]/tbody/tr')
        assert len(rows) == 3  # the communes and their deposits, still
        ecully = lxml.html.fromstring(page.text).xpath('//tr[@id="commune-ecully"]/td')
        assert [c.text_content().strip() for c in ecully[:3]] == ["1", "1", "0"]
        audited = len(store.audit_log(action="traitement-relance"))
        rerun = http.post(f"{API}/communes/ecully/relancer", headers=headers)
        assert rerun.status_code == 502
        assert rerun.json()["detail"].startswith(
            "Relance du traitement d'Écully impossible : Airflow injoignable"
        )
        assert len(store.audit_log(action="traitement-relance")) == audited  # nothing ran

    monkeypatch.delenv("OPENDATA_AIRFLOW_URL")
    with TestClient(create_app(store, services=[])) as http:
        page = http.get(PAGE, headers=team(store))
        shown = lxml.html.fromstring(page.text).text_content()
        assert "Airflow n'est pas configuré (OPENDATA_AIRFLOW_URL)" in shown
        rerun = http.post(f"{API}/communes/ecully/relancer", headers=team(store))
        assert rerun.status_code == 503


def test_a_wrong_airflow_password_is_told(deployed, configured, monkeypatch) -> None:
    monkeypatch.setenv("OPENDATA_AIRFLOW_PASSWORD", "pas-le-bon")
    with TestClient(create_app(deployed.store, services=[])) as http:
        report = http.get(API, headers=team(deployed.store)).json()
    assert not report["airflow"]["joignable"]
    assert f"Airflow refuse l'identifiant « {USER} »" in report["airflow"]["message"]


# --- in a browser ---------------------------------------------------------------------------------


@pytest.fixture
def browser():
    playwright_api = pytest.importorskip("playwright.sync_api")
    assert Path(CHROMIUM).exists(), "Debian's chromium is installed by scripts/bootstrap.sh"
    with playwright_api.sync_playwright() as driver:
        launched = driver.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


def test_the_data_team_signs_in_filters_by_commune_then_reruns_it_in_chromium(
    deployed, configured, browser, tmp_path, monkeypatch
) -> None:
    """The data team's day in a browser: signed in through the OpenID provider (no token),
    it filters the page, re-runs a commune (a form carrying the session's CSRF token) and
    follows the run to Airflow."""
    store = deployed.store
    habilitations = tmp_path / "habilitations.yaml"
    habilitations.write_text("equipe-data:\n  courriels: [camille@grandlyon.example.org]\n")
    with OidcProvider().serving() as issuer:
        for name, value in {
            "OPENDATA_OIDC_ISSUERS": f"proconnect={issuer.issuer}",
            "OPENDATA_OIDC_CLIENT_ID_PROCONNECT": issuer.client_id,
            "OPENDATA_OIDC_CLIENT_SECRET_PROCONNECT": issuer.client_secret,
            "OPENDATA_SESSION_SECRET": secrets.token_urlsafe(32),
            "OPENDATA_SESSION_SECURE": "0",  # plain http on loopback
            "OPENDATA_HABILITATIONS_FILE": str(habilitations),
        }.items():
            monkeypatch.setenv(name, value)
        issuer.next_user = {"sub": "equipe-1", "email": "camille@grandlyon.example.org"}
        with running_catalog(store) as base:
            rerun_in_the_browser(browser, base)
    runs = airflow_runs(configured, "commune_ecully")
    assert any(r["run_type"] == "manual" for r in runs)


def rerun_in_the_browser(browser, base: str) -> None:
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{base}{PAGE}")  # to the provider and back, signed in
    expect(page.get_by_role("heading", level=1)).to_have_text("Santé des jeux de données")
    communes = page.locator("#table-communes tbody tr")
    expect(communes).to_have_count(3)

    page.get_by_label("Commune", exact=True).select_option(label="Écully")
    page.get_by_role("button", name="Filtrer").click()
    expect(page).to_have_url(re.compile(r"commune=ecully"))
    expect(communes).to_have_count(1)
    datasets = page.locator("#sante tbody tr")
    expect(datasets).to_have_count(1)
    expect(datasets.first).to_contain_text("ecully-bancs-publics")

    page.get_by_role("button", name="Relancer le traitement d'Écully").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Relance du traitement d'Écully demandée à Airflow."
    )
    row = page.locator("#commune-ecully")
    expect(row).to_contain_text("en file d'attente")
    logs = row.get_by_role("link", name=re.compile("journaux dans Airflow"))
    expect(logs).to_have_attribute("href", re.compile(r"/dags/commune_ecully/runs/manual__"))

    header = page.locator("#sante th", has_text="Dernière mise à jour")
    header.get_by_role("link").click()
    expect(page.locator("#sante th", has_text="Dernière mise à jour")).to_have_attribute(
        "aria-sort", "ascending"
    )
    context.close()
    assert errors == []
