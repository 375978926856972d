"""`opendata demo` as a person runs it: Airflow's scheduler, dag-processor and UI beside the
catalog, a deposit over HTTP published by the scheduler, and Ctrl+C stopping every process."""

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

import pytest
import requests

from core.settings import PROJECT_ROOT, Settings

OPENDATA = str(Path(sys.executable).parent / "opendata")
UPLOAD = PROJECT_ROOT / "samples" / "depot" / "ecully" / "arbres-alignement"
READY_TIMEOUT = 240  # seconds from the command to « Ctrl+C arrête tout »
PUBLISHED_TIMEOUT = 90  # seconds from the deposit to the dataset served


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
        # services follow the store every 15 s: the new layer is served within that time.
        wms = {"SERVICE": "WMS", "REQUEST": "GetCapabilities"}
        for _ in range(30):
            capabilities = requests.get(base + "/wms", params=wms, timeout=30)
            if capabilities.status_code != 503:
                break
            time.sleep(1)
        assert "arbres-alignement" in capabilities.text, capabilities.text
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
