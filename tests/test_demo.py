"""`opendata demo` as a person runs it: Airflow's scheduler, dag-processor and UI beside the
catalog, an agent and the data team signing in from Chromium through the demo's OpenID
Connect provider, a deposit over HTTP published by the scheduler, and Ctrl+C stopping every
process."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import expect, sync_playwright
from test_portal_browser import CHROMIUM, FLAGS

from catalog.roles import Role, load_roles
from core.producers import load_producers
from core.settings import PROJECT_ROOT, Settings
from opendata import demo as demo_command

OPENDATA = str(Path(sys.executable).parent / "opendata")
UPLOAD = PROJECT_ROOT / "samples" / "depot" / "ecully" / "arbres-alignement"
READY_TIMEOUT = 240  # seconds from the command to « Ctrl+C arrête tout »
PUBLISHED_TIMEOUT = 90  # seconds from the deposit to the dataset served
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Output:
    """The demo's standard output, read as it comes."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self.thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, words: str, process: subprocess.Popen[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while words not in self.text:
            assert process.poll() is None, f"la démo s'est arrêtée :\n{self.text}"
            assert time.monotonic() < deadline, f"« {words} » jamais affiché :\n{self.text}"
            time.sleep(0.5)

    def value(self, pattern: str) -> str:
        found = re.search(pattern, self.text)
        assert found, f"{pattern} absent de :\n{self.text}"
        return found[1]


def live_processes() -> dict[tuple[int, str], tuple[int, str, bytes]]:
    """Live processes (not zombies): (pid, start time) -> (parent, command, environment)."""
    found = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (entry / "environ").read_bytes()
        except (OSError, IndexError):
            continue
        if stat[0] != "Z":  # state, parent, …, start time (field 22)
            found[(int(entry.name), stat[19])] = (int(stat[1]), command, environ)
    return found


def started_by(pid: int, mark: str) -> dict[tuple[int, str], str]:
    """The descendants of `pid`, and any process whose environment holds `mark`."""
    processes = live_processes()
    family, grown = {pid}, True
    while grown:
        grown = False
        for (child, _), (parent, _, _) in processes.items():
            if parent in family and child not in family:
                family.add(child)
                grown = True
    return {
        key: command
        for key, (_, command, environ) in processes.items()
        if key[0] in family and key[0] != pid or mark.encode() in environ.split(b"\0")
    }


def sign_in_from_the_browser(base: str, output: Output) -> None:
    """As printed: « Se connecter », the demo provider's form, then the person's pages."""
    agent = output.value(r"agent d'Écully : (\S+@\S+)")
    team = output.value(r"équipe data : (\S+@\S+)")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = new_page(browser)  # the agent types their address in the provider's form
            page.goto(base + "/")
            page.get_by_role("link", name="Se connecter").click()
            page.get_by_placeholder("sub").fill(agent)
            page.get_by_role("button", name="Authorize").click()
            page.wait_for_url(base + "/")
            expect(page.locator("header")).to_contain_text("Agent d'Écully")
            page.get_by_role("link", name="Mes dépôts").click()
            page.wait_for_url(base + "/communes/ecully/depots")
            expect(page.get_by_role("heading", level=1)).to_have_text("Dépôts — Écully")
            assert page.get_by_role("link", name="Santé des jeux").count() == 0

            page = new_page(browser)  # the data team opens its page, then picks its button
            page.goto(base + "/equipe-data/sante")
            page.get_by_role("button", name=team).click()
            page.wait_for_url(base + "/equipe-data/sante")
            expect(page.get_by_role("heading", level=1)).to_have_text("Santé des jeux de données")
            expect(page.locator("header")).to_contain_text("Équipe data")
        finally:
            browser.close()


def new_page(browser):
    """A page of a new browser profile (no cookie) that reaches loopback hosts only."""
    context = browser.new_context(locale="fr-FR")
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if urlsplit(route.request.url).hostname in LOOPBACK else route.abort()
        ),
    )
    return context.new_page()


@pytest.mark.slow
def test_demo_publishes_a_deposit_over_http_and_ctrl_c_stops_every_process(
    settings: Settings, tmp_path: Path
) -> None:
    port, airflow_port = free_port(), free_port()
    home = f"AIRFLOW_HOME={tmp_path / 'airflow-demo'}"
    env = {**os.environ, "AIRFLOW_HOME": home.split("=", 1)[1]}
    env.pop("OPENDATA_PUBLIC_URL", None)
    started = time.monotonic()
    demo = subprocess.Popen(
        [
            OPENDATA,
            "demo",
            "--sans-exemples",
            "--port",
            str(port),
            "--port-airflow",
            str(airflow_port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = Output(demo)
    try:
        output.wait_for("Ctrl+C arrête tout", demo, READY_TIMEOUT)
        ready = time.monotonic() - started
        base = f"http://127.0.0.1:{port}"
        assert f"Portail                 : {base}/" in output.text
        assert f"{base}/docs" in output.text and f"{base}/equipe-data/sante" in output.text
        assert requests.get(base + "/docs", timeout=30).status_code == 200

        # the Airflow UI's login, as printed, opens its API
        airflow = f"http://127.0.0.1:{airflow_port}"
        password = output.value(r"identifiant « admin », mot de passe « ([^»]+) »")
        assert f"Airflow                 : {airflow}/" in output.text
        login = requests.post(
            airflow + "/auth/token", json={"username": "admin", "password": password}, timeout=30
        )
        assert login.status_code == 201, login.text
        dags = requests.get(
            airflow + "/api/v2/dags",
            headers={"Authorization": f"Bearer {login.json()['access_token']}"},
            timeout=30,
        ).json()["dags"]
        assert {d["dag_id"] for d in dags} >= {"commune_ecully", "commune_lyon"}
        assert not any(d["is_paused"] for d in dags)

        # the data team's token opens the health page
        team = output.value(r"Jeton d'API de l'équipe data : (\S+)")
        health = requests.get(
            base + "/equipe-data/sante", headers={"Authorization": f"Bearer {team}"}, timeout=30
        )
        assert health.status_code == 200 and "Santé" in health.text

        # an agent and the data team sign in from the browser, as the summary tells them
        assert "Se connecter au portail : « Se connecter »" in output.text
        sign_in_from_the_browser(base, output)

        # the printed agent's token and upload command, sent as curl would
        token = output.value(r"Jeton d'API d'un agent d'Écully : (\S+)")
        assert f"-F 'fichier=@{UPLOAD / 'arbres-alignement.csv'}'" in output.text
        assert f"{base}/api/communes/ecully/depots" in output.text
        deposited = time.monotonic()
        with (
            (UPLOAD / "arbres-alignement.csv").open("rb") as data,
            (UPLOAD / "metadata.yaml").open("rb") as metadata,
        ):
            sent = requests.post(
                base + "/api/communes/ecully/depots",
                headers={"Authorization": f"Bearer {token}"},
                files={"fichier": data, "metadonnees": metadata},
                timeout=30,
            )
        assert sent.status_code == 202, sent.text
        status_url = base + sent.json()["url_statut"]
        while True:
            state = requests.get(
                status_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
            ).json()
            if state["statut"] != "en-attente":
                break
            assert time.monotonic() - deposited < PUBLISHED_TIMEOUT, output.text
            time.sleep(2)
        published = time.monotonic() - deposited
        print(f"démo prête en {ready:.0f} s ; dépôt publié en {published:.0f} s")
        assert state["statut"] == "publiee", state
        page = requests.get(state["liens"]["page"], timeout=30)
        assert page.status_code == 200 and "Arbres d&#39;alignement" in page.text
        csv = requests.get(state["liens"]["csv"], timeout=30)
        assert "Micocoulier de Provence" in csv.text

        # the resident OGC servers start on their first request: they too must stop. The
        # services follow the store's change log every 2 s; the capabilities are assembled
        # by the catalog, so a map is asked for to start MapServer.
        wms = {"SERVICE": "WMS", "REQUEST": "GetCapabilities"}
        for _ in range(30):
            capabilities = requests.get(base + "/wms", params=wms, timeout=30)
            if capabilities.status_code != 503 and "arbres-alignement" in capabilities.text:
                break
            time.sleep(1)
        assert "arbres-alignement" in capabilities.text, capabilities.text
        layer = re.search(r"<Name>([^<]*arbres-alignement[^<]*)</Name>", capabilities.text)
        assert layer, capabilities.text
        getmap = {
            "SERVICE": "WMS",
            "VERSION": "1.3.0",
            "REQUEST": "GetMap",
            "LAYERS": layer.group(1),
            "STYLES": "",
            "CRS": "EPSG:4326",
            "BBOX": "45.70,4.70,45.82,4.86",
            "WIDTH": "64",
            "HEIGHT": "64",
            "FORMAT": "image/png",
        }
        map_image = requests.get(base + "/wms", params=getmap, timeout=60)
        assert map_image.headers.get("Content-Type") == "image/png", map_image.text[:300]
        csw = {"service": "CSW", "request": "GetCapabilities", "version": "2.0.2"}
        assert requests.get(base + "/csw", params=csw, timeout=60).status_code == 200
        children = started_by(demo.pid, home)
        names = " ".join(children.values())
        for process in (
            "api_server",
            "scheduler",
            "dag-processor",
            "servir",
            "mapserv",
            "gunicorn",
            "oidc_provider_mock",
        ):
            assert process in names, names
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)  # what Ctrl+C sends
        try:
            code = demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            raise
    output.thread.join(timeout=30)
    assert code == 0, output.text
    assert "Tous les processus de la démonstration sont arrêtés." in output.text
    left = set(children) & set(live_processes())
    assert not left, [children[key] for key in left]
    assert started_by(demo.pid, home) == {}


def test_the_demo_habilitations_give_the_printed_addresses_their_roles(
    settings: Settings, tmp_path: Path
) -> None:
    producers = list(load_producers(settings.producers_file).values())
    path = demo_command.write_demo_habilitations(tmp_path / "habilitations.yaml", producers)
    communes = [p.slug for p in producers]
    roles = load_roles(communes, ["demo"], {"OPENDATA_HABILITATIONS_FILE": str(path)})

    def role(email: str, provider: str = "demo") -> Role | None:
        return roles.role_of({"email": email, "revendications": {}}, provider)

    for commune in communes:
        assert role(f"agent.{commune}@demo.grandlyon.fr") == Role("producteur", commune)
    assert role("equipe-data@demo.grandlyon.fr") == Role("equipe-data")
    assert role("quelqu.un@demo.grandlyon.fr") is None
    assert role("equipe-data@demo.grandlyon.fr", provider="proconnect") is None
    people = {p["email"]: p for p in demo_command.demo_people(producers)}
    assert people["agent.ecully@demo.grandlyon.fr"]["family_name"] == "d'Écully"
