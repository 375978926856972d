"""`opendata demo`: the embedded deployment running as production does, on one machine.

Child processes, each in its own process group with its log under var/logs: Airflow's
api-server (its UI, and the Execution API its LocalExecutor tasks report to), scheduler
and dag-processor, on the SQLite metadata database; then the catalog (`opendata servir`,
which owns the resident MapServer and pycsw). Every DAG is unpaused, and the communes'
DAGs look at their drop folder every `DEMO_SCHEDULE` (`OPENDATA_PLANIFICATION`): a
deposit made over HTTP while the demo runs is published within a minute. The bundled
samples are dropped in the inbox first and published by the scheduler like any deposit.

People sign in on the portal through a development OpenID Connect provider
(`oidc-provider-mock`, the `demo` extra), another child process on loopback: its form asks
whom to sign in as, and a habilitations file written under var/demo/ makes
`agent.<commune>@demo.grandlyon.fr` an agent of that commune and
`equipe-data@demo.grandlyon.fr` the data team. Not started when OPENDATA_OIDC_ISSUERS
already names providers (theirs are used, with their habilitations).

Ctrl+C (SIGINT) or SIGTERM stops every process the demo started: each group is asked to
stop (SIGTERM), then killed; any process still carrying the demo's mark in its environment
(a task process in a group of its own) is killed last. Each child also gets SIGTERM from
the kernel if the demo itself dies (setpriv --pdeathsig).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from core.producers import SCHEDULE_VARIABLE, Producer, load_producers, schedule
from core.settings import PROJECT_ROOT, Settings
from core.wording import of_place

DEMO_SCHEDULE = "20s"  # how often each commune's DAG looks at its drop folder in the demo
AIRFLOW_USER = "admin"
MARK = "OPENDATA_DEMO_RUN"  # in every child's environment: what is left of a run is found
SAMPLES_INBOX = PROJECT_ROOT / "samples" / "inbox"  # published at start (not --sans-exemples)
UPLOAD_SAMPLE = PROJECT_ROOT / "samples" / "depot"  # <commune>/<dataset>/: the curl example
SAMPLES_TIMEOUT = 600.0  # seconds for the samples to be published
READY_TIMEOUT = 240.0  # seconds for the services to answer
STOP_TIMEOUT = 25.0  # seconds the children have to stop before they are killed
SETPRIV = shutil.which("setpriv")  # util-linux (Debian: essential)
ISSUERS_VARIABLE = "OPENDATA_OIDC_ISSUERS"  # catalog.oidc's, not imported: the CLI stays light
DEMO_PROVIDER = "demo"  # the demo's OpenID Connect provider, in OPENDATA_OIDC_ISSUERS
DEMO_PROVIDER_LABEL = "Connexion de démonstration"
DEMO_DOMAIN = "demo.grandlyon.fr"  # the demo's people: no mail is ever sent to them
DATA_TEAM_EMAIL = f"equipe-data@{DEMO_DOMAIN}"


class DemoError(Exception):
    """The demo cannot go on; the message is French, for the person who started it."""


@dataclass
class Demo:
    """What `opendata demo` runs, and where."""

    settings: Settings
    host: str
    port: int
    airflow_port: int
    logs: Path
    env: dict[str, str]
    started: float = field(default_factory=time.monotonic)
    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def catalog_url(self) -> str:
        return f"http://{_shown(self.host)}:{self.port}"

    @property
    def airflow_url(self) -> str:
        return f"http://{_shown(self.host)}:{self.airflow_port}"

    def step(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f} s] {message}", flush=True)

    def start(self, name: str, command: list[str]) -> None:
        """A child in its own process group (stopped whole), its output in its log."""
        if SETPRIV:  # SIGTERM from the kernel if the demo dies without stopping it
            command = [SETPRIV, "--pdeathsig=TERM", "--", *command]
        log = self.logs / f"{name}.log"
        with log.open("ab") as output:
            self.children[name] = subprocess.Popen(
                command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check_children(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None:
                raise DemoError(
                    f"{name} s'est arrêté (code {child.returncode}) ; son journal : "
                    f"{self.logs / (name + '.log')}\n{_tail(self.logs / (name + '.log'))}"
                )

    def wait(self, what: str, check: Callable[[], Any], timeout: float) -> Any:
        """`check()`'s first true answer, the children watched meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_children()
            result = check()
            if result:
                return result
            time.sleep(1)
        raise DemoError(f"Délai dépassé ({timeout:.0f} s) : {what}. Journaux : {self.logs}")

    def stop(self) -> None:
        """Every child and its descendants stopped: asked first, then killed."""
        for child in self.children.values():
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self.children.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(child, signal.SIGKILL)  # what is left of its group
            child.wait()
        for pid in marked_processes(self.env[MARK]):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def run(
    settings: Settings,
    *,
    host: str,
    port: int,
    airflow_port: int,
    samples: Path | None,
    serve: bool,
) -> int:
    """Start everything, publish the samples (when given), print what to open, then wait
    for Ctrl+C; without `serve`, stop once the samples are published."""
    logs = settings.data_dir.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    demo = Demo(
        settings, host, port, airflow_port, logs, demo_environment(settings, host, airflow_port)
    )
    # Ctrl+C (SIGINT) and SIGTERM stop the demo, even started where SIGINT is ignored (in
    # the background of a script)
    previous = {n: signal.signal(n, _interrupt) for n in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _run(demo, samples, serve)
    except KeyboardInterrupt:
        print("\nArrêt de la démonstration…", flush=True)
        return 0
    except DemoError as error:
        print(f"Démonstration interrompue : {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        for number in previous:  # a second Ctrl+C does not cut the stopping short
            signal.signal(number, signal.SIG_IGN)
        demo.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
        if demo.children:
            print("Tous les processus de la démonstration sont arrêtés.", flush=True)


def _run(demo: Demo, samples: Path | None, serve: bool) -> int:
    from pipelines.submission import open_settings_store

    settings, env = demo.settings, demo.env
    producers = list(load_producers(settings.producers_file).values())
    demo.step("Initialisation de la base de métadonnées d'Airflow (SQLite)…")
    _setup_airflow(env, demo.logs)
    password = airflow_password(env)
    # the health page reads the DAG runs and re-runs a commune through Airflow's REST API
    env.setdefault("OPENDATA_AIRFLOW_USER", AIRFLOW_USER)
    env.setdefault("OPENDATA_AIRFLOW_PASSWORD", password)
    copied = copy_samples(samples, settings.inbox_dir) if samples else []
    if samples:
        demo.step(f"{len(copied)} soumission(s) d'exemple déposée(s) dans {settings.inbox_dir}")
    demo.step(
        f"Démarrage d'Airflow (api-server sur le port {demo.airflow_port}, scheduler, "
        "dag-processor)…"
    )
    airflow = str(Path(sys.executable).parent / "airflow")
    demo.start("airflow-api-server", [airflow, "api-server"])
    demo.start("airflow-scheduler", [airflow, "scheduler"])
    demo.start("airflow-dag-processor", [airflow, "dag-processor"])
    issuer = None
    if serve:
        issuer = start_identity_provider(demo, producers)
        opendata = str(Path(sys.executable).parent / "opendata")
        demo.start("catalogue", [opendata, "servir", "--host", demo.host, "--port", str(demo.port)])
    api = demo.wait(
        "Airflow répond", lambda: _airflow_session(demo.airflow_url, password), READY_TIMEOUT
    )
    dag_ids = {f"commune_{p.slug.replace('-', '_')}" for p in producers}
    demo.wait("les DAG des communes sont chargés", lambda: _unpause(api, dag_ids), READY_TIMEOUT)
    period = schedule(env[SCHEDULE_VARIABLE])
    every = f"toutes les {period.seconds} s" if isinstance(period, timedelta) else f"« {period} »"
    demo.step(f"DAG actifs : {', '.join(sorted(dag_ids))} (dépôts examinés {every})")
    _wait_samples(demo, copied)
    store = open_settings_store(settings)
    for dataset in store.list_datasets():
        demo.step(f"      publié : {dataset.slug} (structure v{dataset.current_version})")
    if not serve:
        return 0
    demo.wait("le catalogue répond", lambda: _answers(demo.catalog_url + "/"), READY_TIMEOUT)
    if issuer is not None:
        demo.wait(
            "le fournisseur d'identité de démonstration répond",
            lambda: _get_json(issuer + "/.well-known/openid-configuration"),
            READY_TIMEOUT,
        )
    tokens = demo_tokens(store, producers)
    print(welcome(demo, password, tokens, producers[0], issuer), flush=True)
    while True:
        demo.check_children()
        time.sleep(1)


def agent_email(commune: str) -> str:
    """The demo's agent of `commune`, as typed in the demo provider's form."""
    return f"agent.{commune}@{DEMO_DOMAIN}"


def start_identity_provider(demo: Demo, producers: list[Producer]) -> str | None:
    """The demo's OpenID Connect provider started on loopback, and the catalog's
    environment set to sign people in through it; its issuer URL. None when the person's
    own providers are configured, or when `oidc-provider-mock` is not installed."""
    env = demo.env
    if env.get(ISSUERS_VARIABLE, "").strip():
        demo.step(f"Connexion au portail : les fournisseurs de {ISSUERS_VARIABLE}")
        return None
    if importlib.util.find_spec("oidc_provider_mock") is None:
        demo.step(
            "Connexion au portail indisponible : oidc-provider-mock n'est pas installé "
            "(pip install -e '.[demo]' ou bash scripts/bootstrap.sh)"
        )
        return None
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"  # the catalog accepts http on loopback only
    suffix = DEMO_PROVIDER.upper()
    people = demo_people(producers)
    command = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    for person in people:  # offered as buttons on the provider's form, with their names
        command.append(f"--user-claims={json.dumps(person, ensure_ascii=False)}")
    demo.step(f"Démarrage du fournisseur d'identité de démonstration ({issuer})…")
    demo.start("fournisseur-identite-demo", command)
    habilitations = write_demo_habilitations(
        demo.settings.data_dir.parent / "demo" / "habilitations.yaml", producers
    )
    env[ISSUERS_VARIABLE] = f"{DEMO_PROVIDER}={issuer}"
    env.pop("OPENDATA_OIDC_AUDIENCE", None)  # the audience is the demo client's id
    env[f"OPENDATA_OIDC_CLIENT_ID_{suffix}"] = "portail-opendata-demo"
    # the provider takes any client secret; a random one all the same, as a real one would be
    env[f"OPENDATA_OIDC_CLIENT_SECRET_{suffix}"] = secrets.token_urlsafe(24)
    env[f"OPENDATA_OIDC_LABEL_{suffix}"] = DEMO_PROVIDER_LABEL
    env["OPENDATA_HABILITATIONS_FILE"] = str(habilitations)
    env.setdefault("OPENDATA_SESSION_SECRET", secrets.token_urlsafe(32))  # new at each run
    return issuer


def demo_people(producers: list[Producer]) -> list[dict[str, Any]]:
    """The claims of the demo's people: an agent of each commune and the data team."""
    people: list[dict[str, Any]] = [
        {
            "sub": agent_email(p.slug),
            "email": agent_email(p.slug),
            "email_verified": True,
            "given_name": "Agent",
            "family_name": of_place(p.name),
        }
        for p in producers
    ]
    people.append(
        {
            "sub": DATA_TEAM_EMAIL,
            "email": DATA_TEAM_EMAIL,
            "email_verified": True,
            "given_name": "Équipe",
            "family_name": "data",
        }
    )
    return people


def write_demo_habilitations(path: Path, producers: list[Producer]) -> Path:
    """The demo's habilitations file (`catalog.roles`): its people, for its provider only."""
    document = {
        "fournisseurs": [DEMO_PROVIDER],
        "equipe-data": {"courriels": [DATA_TEAM_EMAIL]},
        "communes": {p.slug: {"courriels": [agent_email(p.slug)]} for p in producers},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `opendata demo` at each start: the demo's people, not real ones.\n"
    path.write_text(header + yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return path


def demo_environment(settings: Settings, host: str, airflow_port: int) -> dict[str, str]:
    """The variables of every child: the embedded Airflow (`airflow_environment`), its
    api-server on `airflow_port`, DAGs active from the start, the short schedule."""
    env = airflow_environment(settings)
    api_url = f"http://{_shown(host)}:{airflow_port}"
    local_api = f"http://127.0.0.1:{airflow_port}" if host in {"", "0.0.0.0", "::"} else api_url
    env[MARK] = secrets.token_hex(8)
    env["AIRFLOW__API__HOST"] = host
    env["AIRFLOW__API__PORT"] = str(airflow_port)
    env["AIRFLOW__API__BASE_URL"] = api_url
    env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"{local_api}/execution/"
    env.setdefault("AIRFLOW__API__WORKERS", "1")  # the machine's 2 cores go to the tasks
    env.setdefault("AIRFLOW__CORE__PARALLELISM", "4")
    # The LocalExecutor's workers start from a process that has imported the pipeline once:
    # each task process, forked from a worker, then reads its DAG file in a blink instead of
    # importing pandas, GeoPandas… again (seconds of CPU per task, 6 tasks per deposit).
    env.setdefault("AIRFLOW__SCHEDULER__MP_START_METHOD", "forkserver")
    env.setdefault("AIRFLOW__CORE__MP_FORKSERVER_PRELOAD", "airflow,pipelines.tasks")
    env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
    env["AIRFLOW__CORE__AUTH_MANAGER"] = (
        "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
    )
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = f"{AIRFLOW_USER}:admin"
    env.setdefault(
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
        str(Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"),
    )
    # the scheduler's and triggerer's log servers: free ports, another Airflow may run here
    env.setdefault("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", str(free_port()))
    env.setdefault("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", str(free_port()))
    env.setdefault(SCHEDULE_VARIABLE, DEMO_SCHEDULE)
    env.setdefault("OPENDATA_AIRFLOW_URL", api_url)  # linked from late-run alerts
    env.setdefault("OPENDATA_SESSION_SECURE", "0")  # plain http on this machine
    return env


def airflow_environment(settings: Settings) -> dict[str, str]:
    """Embedded Airflow: SQLite metadata database under the data folder, our DAG folder."""
    env = dict(os.environ)
    env.setdefault("AIRFLOW_HOME", str(settings.data_dir.parent / "airflow"))
    env.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_ROOT / "dags"))
    env.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    # task logs where the data team reads them: var/logs/airflow/dag_id=…/run_id=…/task_id=…
    env.setdefault(
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(settings.data_dir.parent / "logs" / "airflow")
    )
    env.setdefault("OPENDATA_DATA_DIR", str(settings.data_dir))
    env.setdefault("OPENDATA_INBOX_DIR", str(settings.inbox_dir))
    return env


def _setup_airflow(env: dict[str, str], logs: Path) -> None:
    from pipelines.tasks import write_pools_file

    airflow = str(Path(sys.executable).parent / "airflow")
    pools = write_pools_file(Path(env["AIRFLOW_HOME"]) / "pools.json")
    for name, command in (
        ("airflow-db-migrate", [airflow, "db", "migrate"]),
        ("airflow-pools", [airflow, "pools", "import", str(pools)]),
    ):
        log = logs / f"{name}.log"
        with log.open("w") as output:
            done = subprocess.run(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise DemoError(f"« airflow {' '.join(command[1:3])} » a échoué :\n{_tail(log)}")


def airflow_password(env: dict[str, str]) -> str:
    """The Airflow UI's admin password: the simple auth manager's password file, given a
    random password the first time (Airflow keeps the passwords it finds there)."""
    path = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
    try:
        passwords = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        passwords = {}
    if not isinstance(passwords, dict) or not passwords.get(AIRFLOW_USER):
        passwords = {**(passwords if isinstance(passwords, dict) else {})}
        passwords[AIRFLOW_USER] = secrets.token_urlsafe(12)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(passwords) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return str(passwords[AIRFLOW_USER])


def copy_samples(samples: Path, inbox: Path) -> list[Path]:
    """Drop the bundled sample submissions into the inbox (never over a pending one): the
    drop folders filled."""
    copied = []
    for folder in sorted(samples.glob("*/*/")):
        target = inbox / folder.parent.name / folder.name
        if any(p.suffix != ".txt" and p.name != "rapport.json" for p in target.glob("*")):
            continue
        target.mkdir(parents=True, exist_ok=True)
        for path in target.glob("rapport.*"):  # the previous submission's: not this one's
            path.unlink()
        for path in folder.iterdir():
            shutil.copy2(path, target / path.name)
        copied.append(target)
    return copied


def _wait_samples(demo: Demo, folders: list[Path]) -> None:
    waiting = list(folders)
    while waiting:
        demo.wait(
            "publication des exemples", lambda: any(_report(f) for f in waiting), SAMPLES_TIMEOUT
        )
        for folder in list(waiting):
            report = _report(folder)
            if report is not None:
                waiting.remove(folder)
                demo.step(
                    f"[{len(folders) - len(waiting)}/{len(folders)}] {folder.parent.name}/"
                    f"{folder.name} : {report.get('statut', '?')}"
                )


def _report(folder: Path) -> dict[str, Any] | None:
    """The submission's report, once the pipeline has written it (its files archived)."""
    if (folder / "metadata.yaml").exists():
        return None
    try:
        report = json.loads((folder / "rapport.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


def demo_tokens(store: Any, producers: list[Producer]) -> dict[str, str]:
    """A token for an agent of the first commune and one for the data team, new at each
    start; the previous demo's are revoked (a token is shown once, never stored)."""
    from catalog import accounts

    commune = producers[0].slug
    agents = {
        commune: f"agent.demo@{commune}.example.org",
        "equipe-data": "demo@equipe-data.example.org",
    }
    for record in store.tokens(None):
        if record.agent in agents.values() and record.revoked_at is None:
            accounts.revoke_token(store, record.id)
    return {
        commune: accounts.create_token(store, "producteur", agents[commune], commune, 30).token,
        "equipe-data": accounts.create_token(
            store, "equipe-data", agents["equipe-data"], None, 30
        ).token,
    }


def welcome(
    demo: Demo,
    password: str,
    tokens: dict[str, str],
    producer: Producer,
    issuer: str | None = None,
) -> str:
    """What to open, in French, with ready credentials and a ready upload command."""
    url = demo.catalog_url
    sign_in = ""
    if issuer is not None:
        sign_in = (
            f"\nSe connecter au portail : « Se connecter » en haut de page mène au fournisseur "
            f"d'identité de démonstration\n({issuer}) ; y saisir l'adresse de la personne "
            f"(ou cliquer sur son bouton), puis « Authorize » :\n"
            f"  agent {of_place(producer.name)} : {agent_email(producer.slug)}  "
            f"(« Mes dépôts » : {url}/communes/{producer.slug}/depots)\n"
            f"  équipe data : {DATA_TEAM_EMAIL}  (« Santé des jeux » : {url}/equipe-data/sante)\n"
            f"  (agent.<commune>@{DEMO_DOMAIN} pour les autres communes ; toute autre adresse "
            f"est un simple usager)\n"
        )
    sample = next(iter(sorted((UPLOAD_SAMPLE / producer.slug).glob("*/"))), None)
    upload = ""
    if sample is not None:
        data = next(p for p in sorted(sample.iterdir()) if p.name != "metadata.yaml")
        upload = (
            f"\nDéposer un jeu de données pour {producer.name} (publié en moins d'une minute) :\n"
            f"  curl -H 'Authorization: Bearer {tokens[producer.slug]}' \\\n"
            f"       -F 'fichier=@{data}' -F 'metadonnees=@{sample / 'metadata.yaml'}' \\\n"
            f"       {url}/api/communes/{producer.slug}/depots\n"
            f"  puis suivez l'adresse « url_statut » de la réponse, ou le portail.\n"
        )
    return (
        f"\nLa démonstration est prête (démarrée en {time.monotonic() - demo.started:.0f} s).\n\n"
        f"  Portail                 : {url}/\n"
        f"  Documentation de l'API  : {url}/docs\n"
        f"  Airflow                 : {demo.airflow_url}/  (identifiant « {AIRFLOW_USER} », "
        f"mot de passe « {password} »)\n"
        f"  Santé des jeux (équipe data) : {url}/equipe-data/sante\n"
        f"      curl -H 'Authorization: Bearer {tokens['equipe-data']}' {url}/equipe-data/sante\n\n"
        f"  Jeton d'API d'un agent {of_place(producer.name)} : {tokens[producer.slug]}\n"
        f"  Jeton d'API de l'équipe data : {tokens['equipe-data']}\n"
        f"{sign_in}"
        f"{upload}\n"
        f"Journaux : {demo.logs}. Ctrl+C arrête tout.\n"
    )


def _airflow_session(base: str, password: str) -> dict[str, str] | None:
    """Once the api-server answers and its scheduler and dag-processor are healthy: the
    headers of a signed-in admin."""
    health = _get_json(f"{base}/api/v2/monitor/health")
    if not health or any(
        (health.get(part) or {}).get("status") != "healthy"
        for part in ("metadatabase", "scheduler", "dag_processor")
    ):
        return None
    request = urllib.request.Request(
        f"{base}/auth/token",
        data=json.dumps({"username": AIRFLOW_USER, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            token = json.load(answer)["access_token"]
    except urllib.error.HTTPError as error:
        if error.code == 401:
            raise DemoError(
                f"Airflow refuse l'identifiant « {AIRFLOW_USER} » avec le mot de passe de son "
                "fichier (AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE) : un api-server "
                "d'une autre instance répond-il sur ce port ?"
            ) from error
        return None
    except (OSError, ValueError, KeyError):
        return None
    return {"base": base, "Authorization": f"Bearer {token}"}


def _unpause(api: dict[str, str], dag_ids: set[str]) -> bool:
    """Every DAG active (an earlier demo's metadata may hold paused ones); False while the
    communes' DAGs are not all loaded."""
    headers = {"Authorization": api["Authorization"]}
    listing = _get_json(f"{api['base']}/api/v2/dags?limit=1000", headers) or {}
    dags = {d["dag_id"]: d for d in listing.get("dags", [])}
    if not dag_ids <= set(dags):
        return False
    for dag_id, dag in dags.items():
        if dag.get("is_paused"):
            request = urllib.request.Request(
                f"{api['base']}/api/v2/dags/{dag_id}",
                data=b'{"is_paused": false}',
                headers={**headers, "Content-Type": "application/json"},
                method="PATCH",
            )
            urllib.request.urlopen(request, timeout=10).close()
    return True


def _get_json(url: str, headers: dict[str, str] | None = None) -> Any:
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=headers or {}), timeout=5
        ) as answer:
            return json.load(answer)
    except (OSError, ValueError):
        return None


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5).close()
        return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def marked_processes(mark: str) -> list[int]:
    """The processes whose environment carries the demo's mark (this process aside)."""
    wanted = f"{MARK}={mark}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if wanted in environ.split(b"\0") and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _signal_group(child: subprocess.Popen[bytes], number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, number)


def _interrupt(number: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _shown(host: str) -> str:
    if host in {"", "0.0.0.0", "::"}:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
