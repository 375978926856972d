"""Lifecycle rules (annex data.grandlyon.com, §3.2), replayed with the simulated clock.

The key steps go through the real Airflow DAGs (the commune's and `gouvernance`), run with
dag.test() in one long-lived interpreter: the DAG folder is parsed once and each run sets
`OPENDATA_NOW`, so three years pass in seconds. The rest is checked in process, through the
catalog's HTTP interface (and its OGC API).
"""

from __future__ import annotations

import csv
import email
import io
import json
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pyshacl
import pytest
from aiosmtpd.controller import Controller
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from mail_relay import free_port
from rdflib import Graph, URIRef
from rdflib.namespace import DCAT, RDF
from test_access import ROUTE_VALUES
from test_dags import _airflow_env, _drop, airflow_home  # noqa: F401 - airflow_home: fixture

from catalog import accounts
from catalog.ogc.api import OgcApi
from catalog.store import CatalogStore
from catalog.web.app import create_app
from core import clock
from core.settings import PROJECT_ROOT, Settings
from opendata.cli import main as cli
from pipelines import governance
from pipelines.submission import Submission, run_submission

from backends import on_both_backends
from conftest import SAMPLES

pytest_plugins = ["backends"]  # the `backend` fixture: sqlite, postgis
settings, store = on_both_backends()  # every test here runs on both backends

BANCS = "ecully-bancs-publics"
SUCCESSOR = f'</api/datasets/{BANCS}/v2/download/csv>; rel="successor-version"'
BANCS_SAMPLE = SAMPLES / "inbox" / "ecully" / "bancs-publics"
PRODUCER_MAIL = "donnees-ouvertes@ecully.example.org"  # config/producers.yaml
TEAM_MAIL = "equipe-data@test.example.org"
ADMS_STATUS = URIRef("http://www.w3.org/ns/adms#status")
ADMS_NOTES = URIRef("http://www.w3.org/ns/adms#versionNotes")
WITHDRAWN = URIRef("http://publications.europa.eu/resource/authority/dataset-status/WITHDRAWN")
SHAPES = PROJECT_ROOT.parent / "shared" / "standards" / "dcat-ap-3.0.1"

# Runs DAGs on request: one JSON command per line on stdin ({"dag", "env"}), one RESULT
# line per run on stdout. Parsing the DAG folder and the first run's start-up (~10 s) are
# paid once; each further run takes well under a second.
DRIVER = """
import json, os, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print("READY " + json.dumps({"dags": sorted(bag.dag_ids),
      "errors": {k: str(v) for k, v in bag.import_errors.items()}}), flush=True)
for line in sys.stdin:
    command = json.loads(line)
    for name, value in command["env"].items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    run = bag.get_dag(command["dag"]).test()
    states = {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances()}
    print("RESULT " + json.dumps({"state": str(run.state), "tasks": states}), flush=True)
"""


class DagDriver:
    """A long-lived interpreter running the project's DAGs with dag.test()."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(PROJECT_ROOT / "dags")],
            env={**env, "PYTHONIOENCODING": "utf-8"},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        ready, output = self._until("READY ")
        assert json.loads(ready)["errors"] == {}, output[-3000:]

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _until(self, prefix: str, timeout: float = 300) -> tuple[str, str]:
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "the DAG driver stopped:\n" + "".join(output[-100:])
            if line.startswith(prefix):
                return line.removeprefix(prefix), "".join(output)
            output.append(line)

    def run(self, dag_id: str, settings: Settings, now: str, **env: str | None) -> dict:
        """Run `dag_id` on `settings`' data at the simulated instant `now`."""
        command = {
            "dag": dag_id,
            "env": {
                "OPENDATA_DATA_DIR": str(settings.data_dir),
                "OPENDATA_INBOX_DIR": str(settings.inbox_dir),
                "OPENDATA_STORE_URL": settings.store_url,
                "OPENDATA_NOW": now,
                "OPENDATA_SMTP_HOST": "127.0.0.1",
                "OPENDATA_SMTP_PORT": str(free_port()),  # nobody listens, unless given
                **env,
            },
        }
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        result, output = self._until("RESULT ")
        return {**json.loads(result), "output": output}

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def dags(airflow_home: Path) -> Iterator[DagDriver]:  # noqa: F811 - the imported fixture
    driver = DagDriver(_airflow_env(airflow_home, OPENDATA_TASK_RETRIES="0"))
    try:
        yield driver
    finally:
        driver.close()


class Mailbox:
    """A real local SMTP server (aiosmtpd) keeping every message."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.port = free_port()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(
            email.message_from_bytes(envelope.original_content, policy=default_policy)
        )
        return "250 Message accepted for delivery"

    def subjects(self) -> list[str]:
        return [m["Subject"] for m in self.messages]

    def env(self) -> dict[str, str]:
        return {
            "OPENDATA_SMTP_HOST": "127.0.0.1",
            "OPENDATA_SMTP_PORT": str(self.port),
            "OPENDATA_DATA_TEAM_EMAIL": TEAM_MAIL,
        }


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def at(monkeypatch: pytest.MonkeyPatch, moment: str) -> None:
    monkeypatch.setenv("OPENDATA_NOW", moment)


def client(store: CatalogStore, settings: Settings) -> TestClient:
    """The catalog with its OGC API (the other OGC services are not needed here)."""
    return TestClient(create_app(store, services=[OgcApi(settings.services_dir)]))


def bancs_updated_on(root: Path, day: str) -> Path:
    """The bancs sample in `root`/ecully/bancs-publics, its data updated by the commune on
    `day` (`date_mise_a_jour`: the reference of freshness and of the 3-year count)."""
    folder = root / "ecully" / "bancs-publics"
    shutil.copytree(BANCS_SAMPLE, folder)
    metadata = folder / "metadata.yaml"
    text = metadata.read_text(encoding="utf-8")
    declared = re.search(r"^date_mise_a_jour: (\S+)$", text, re.M)
    assert declared is not None
    metadata.write_text(text.replace(declared.group(0), f"date_mise_a_jour: {day}"), "utf-8")
    return folder


def publish_bancs(settings: Settings, store: CatalogStore) -> None:
    """The bancs published, their data updated by the commune the day it deposits them."""
    folder = bancs_updated_on(settings.data_dir.parent / "depot-bancs", clock.today().isoformat())
    data = folder / "bancs-publics.geojson"
    submission = Submission.new("ecully", data, folder / "metadata.yaml", "test")
    outcome = run_submission(submission, settings, store)
    assert outcome.status == "publiee", outcome.summary()


def renamed_bancs(root: Path) -> Path:
    """Bancs in the announced structure (`etat` renamed `etat_constate`), with a new bench."""
    folder = root / "ecully" / "bancs-publics"
    folder.mkdir(parents=True)
    collection = json.loads((BANCS_SAMPLE / "bancs-publics.geojson").read_text(encoding="utf-8"))
    for feature in collection["features"]:
        feature["properties"]["etat_constate"] = feature["properties"].pop("etat")
    collection["features"].append(
        {
            "type": "Feature",
            "properties": {
                "id_banc": 61,
                "materiau": "granit",
                "date_pose": "2027-01-25",
                "etat_constate": "neuf",
            },
            "geometry": {"type": "Point", "coordinates": [1838500.0, 5176000.0]},
        }
    )
    text = json.dumps(collection, ensure_ascii=False)
    (folder / "bancs-publics.geojson").write_text(text, encoding="utf-8")
    shutil.copy(BANCS_SAMPLE / "metadata.yaml", folder)
    return folder


def released_files(store: CatalogStore, slug: str) -> list[Path]:
    return [
        store.release_path(release, distribution.format)
        for release in store.releases(slug)
        for distribution in release.distributions
    ]


def csv_rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def collections(http: TestClient) -> set[str]:
    response = http.get("/ogc/collections", params={"f": "json"})
    assert response.status_code == 200, response.text
    return {c["id"] for c in response.json()["collections"]}


def team_headers(store: CatalogStore) -> dict[str, str]:
    """A data-team member's API token, valid from the (replayed) present on."""
    token = accounts.create_token(store, "equipe-data", "data@grandlyon.com").token
    return {"Authorization": f"Bearer {token}"}


def health_row(http: TestClient, slug: str) -> dict[str, Any]:
    response = http.get("/api/equipe-data/sante", headers=team_headers(http.app.state.store))
    assert response.status_code == 200, response.text
    return next(r for r in response.json()["jeux_de_donnees"] if r["slug"] == slug)


# --- (a) a breaking change: notice, refused early switch, switch, parallel diffusion, retire ---


def test_breaking_change_is_announced_switched_diffused_in_parallel_then_retired(
    dags, settings, store, mailbox, monkeypatch, tmp_path, capsys
) -> None:
    at(monkeypatch, "2027-01-04T09:00:00Z")
    publish_bancs(settings, store)
    first = store.current_release(BANCS)
    first_csv = store.release_path(first, "csv").read_bytes()

    # The notice, by command line: too early is refused with the earliest date.
    schema = store.structure_versions(BANCS)[0].structure["schema"]
    renamed = [
        {**f, "name": "etat_constate"} if f["name"] == "etat" else f for f in schema["fields"]
    ]
    (tmp_path / "schema.json").write_text(json.dumps({**schema, "fields": renamed}))
    (tmp_path / "correspondance.yaml").write_text("etat: {colonne: etat_constate}\n")
    announce = [
        "annoncer-changement",
        "--producteur=ecully",
        "--jeu=bancs-publics",
        f"--schema={tmp_path / 'schema.json'}",
        "--description=La colonne « etat » devient « etat_constate ».",
        f"--correspondance={tmp_path / 'correspondance.yaml'}",
    ]
    assert cli([*announce, "--date=2027-01-20"]) == 1
    refused = capsys.readouterr().err
    assert "Avis de changement refusé" in refused and "le 03/02/2027" in refused
    assert store.notices(BANCS) == []
    assert cli([*announce, "--date=2027-02-03"]) == 0
    assert "à partir du 03/02/2027" in capsys.readouterr().out
    with client(store, settings) as http:
        page = http.get(f"/jeux-de-donnees/{BANCS}").text
        alias = http.get(f"/api/datasets/{BANCS}/download/csv")
    assert 'role="status"' in page and "Changement de structure le 3 février 2027" in page
    assert "colonne « etat » supprimée ou renommée" in page
    assert f"/api/datasets/{BANCS}/v2/download/csv" in page
    assert alias.headers["Deprecation"] == "@1801612800"  # 2027-02-03T00:00:00Z
    assert alias.headers["Sunset"] == "Fri, 05 Mar 2027 00:00:00 GMT"
    assert SUCCESSOR in alias.headers["Link"]

    # Before the effective date the commune's DAG refuses the new structure.
    folder = _drop(renamed_bancs(tmp_path / "v2"), settings.inbox_dir)
    early = dags.run("commune_ecully", settings, "2027-01-20T08:00:00Z")
    assert early["state"] == "failed", early
    assert early["tasks"]["process.check_structure[0]"] == "failed"
    report = (folder / "rapport.txt").read_text(encoding="utf-8")
    assert "changement-cassant-avant-date" in report and "03/02/2027" in report
    assert "jusqu'au 02/02/2027" in report and "annexe data.grandlyon.com" in report
    assert store.current_release(BANCS) == first
    assert store.release_path(first, "csv").read_bytes() == first_csv

    # On the effective date: v2 published, v1 fed in parallel through the mapping.
    _drop(renamed_bancs(tmp_path / "v2-again"), settings.inbox_dir)
    switched = dags.run("commune_ecully", settings, "2027-02-03T08:00:00Z")
    assert switched["state"] == "success", switched
    assert store.get_dataset(BANCS).current_version == 2
    at(monkeypatch, "2027-02-10T12:00:00Z")
    with client(store, settings) as http:
        new = csv_rows(http.get(f"/api/datasets/{BANCS}/download/csv"))
        v2 = csv_rows(http.get(f"/api/datasets/{BANCS}/v2/download/csv"))
        old_response = http.get(f"/api/datasets/{BANCS}/v1/download/csv")
        old = csv_rows(old_response)
        old_rows = http.get(f"/api/datasets/{BANCS}/v1/rows", params={"id_banc": "61"})
        page = http.get(f"/jeux-de-donnees/{BANCS}").text
        layers = collections(http)
        health = health_row(http, BANCS)
    assert new == v2 and new[0][:4] == ["id_banc", "materiau", "date_pose", "etat_constate"]
    assert old[0][:4] == ["id_banc", "materiau", "date_pose", "etat"]
    assert len(new) == len(old) == 62  # header and 61 benches, the new one in both
    assert new[-1][:4] == old[-1][:4] == ["61", "granit", "2027-01-25", "neuf"]
    assert old_rows.json()["lignes"][0]["etat"] == "neuf"
    assert old_response.headers["Deprecation"] == "@1801641600"  # switched 2027-02-03T08:00Z
    assert old_response.headers["Sunset"] == "Fri, 05 Mar 2027 00:00:00 GMT"
    assert SUCCESSOR in old_response.headers["Link"]
    assert f'</api/datasets/{BANCS}/v2/rows>; rel="successor-version"' in old_rows.headers["Link"]
    assert "Ancienne structure v1 encore diffusée" in page and "5 mars 2027" in page
    assert "alimentée avec les données récentes" in page
    assert {BANCS, f"{BANCS}-v1"} <= layers
    assert f"couche <code>{BANCS}-v1</code>" in page  # named for GIS users too
    assert health["diffusion_parallele"][0]["retrait_au_plus_tot"] == "2027-03-05"

    # The day before both 30-day conditions hold, nothing is retired.
    at(monkeypatch, "2027-03-04T06:00:00Z")
    assert governance.run(store).retired == []
    # The governance DAG retires v1 once they hold; the running services drop it.
    at(monkeypatch, "2027-03-05T07:00:00Z")
    with client(store, settings) as http:
        assert f"{BANCS}-v1" in collections(http)
        retire = dags.run("gouvernance", settings, "2027-03-05T06:00:00Z", **mailbox.env())
        assert retire["state"] == "success", retire
        assert "Structures retirées : ecully-bancs-publics v1" in retire["output"]
        gone = http.get(f"/api/datasets/{BANCS}/v1/download/csv")
        gone_rows = http.get(f"/api/datasets/{BANCS}/v1/rows")
        current = http.get(f"/api/datasets/{BANCS}/download/csv")
        http.app.state.refresher.refresh()
        layers = collections(http)
        changelog = http.get(f"/jeux-de-donnees/{BANCS}").text
    assert gone.status_code == 410 and gone_rows.status_code == 410
    assert "n'est plus diffusée depuis le 5 mars 2027" in gone.json()["detail"]
    assert gone.headers["Link"] == SUCCESSOR
    assert current.status_code == 200 and "Deprecation" not in current.headers
    assert BANCS in layers and f"{BANCS}-v1" not in layers
    assert "La structure v1 n&#39;est plus diffusée" in changelog
    assert all(path.is_file() for path in released_files(store, BANCS))  # nothing deleted
    assert any(
        s.startswith("[Données ouvertes] Ancienne structure retirée") for s in mailbox.subjects()
    )


# --- (b) a compatible change -------------------------------------------------------------------


def test_compatible_change_publishes_and_is_in_the_changelog(
    submit, dataset_folder, store, settings, monkeypatch
) -> None:
    at(monkeypatch, "2027-01-04T09:00:00Z")
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    at(monkeypatch, "2027-02-01T09:00:00Z")
    data = dataset_folder("arbres.csv", "id;espece;hauteur\r\n1;Platane;12\r\n2;Tilleul;8\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    slug = "ecully-arbres"
    assert store.get_dataset(slug).current_version == 1  # same structure version, same URLs
    with client(store, settings) as http:
        detail = http.get(f"/api/datasets/{slug}").json()
        page = http.get(f"/jeux-de-donnees/{slug}").text
        rows = http.get(f"/api/datasets/{slug}/v1/rows").json()
        notes = Graph().parse(data=http.get(f"/api/datasets/{slug}/dcat.ttl").text)
    changelog = detail["cycle_de_vie"]["changements"]
    assert changelog[0]["type"] == "changement-compatible"
    assert "colonne « hauteur » ajoutée" in changelog[0]["titre"]
    assert "Historique des changements" in page and "colonne « hauteur » ajoutée" in page
    assert rows["colonnes"] == ["id", "espece", "hauteur"]
    text = str(next(notes.objects(None, ADMS_NOTES)))
    assert text.startswith("01/02/2027 : Changement de structure compatible")


def test_without_a_mapping_the_old_structure_is_served_frozen(
    submit, dataset_folder, store, settings, monkeypatch, tmp_path, capsys
) -> None:
    at(monkeypatch, "2027-01-04T09:00:00Z")
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    frozen = store.current_release("ecully-arbres")
    schema = {"fields": [{"name": "id", "type": "integer"}, {"name": "essence"}]}
    (tmp_path / "schema.yaml").write_text(json.dumps(schema))
    announce = [
        "annoncer-changement",
        "--producteur=ecully",
        "--jeu=arbres",
        f"--schema={tmp_path / 'schema.yaml'}",
        "--date=2027-02-03",
        "--description=La colonne « espece » devient « essence ».",
    ]
    assert cli(announce) == 0
    assert cli([*announce[:2], "--jeu=inconnu", *announce[3:]]) == 1
    assert "introuvable" in capsys.readouterr().err
    at(monkeypatch, "2027-02-03T09:00:00Z")
    data = dataset_folder("arbres.csv", "id;essence\r\n1;Platane\r\n2;Érable\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    with client(store, settings) as http:
        old = http.get("/api/datasets/ecully-arbres/v1/download/csv")
        page = http.get("/jeux-de-donnees/ecully-arbres").text
    assert store.current_release("ecully-arbres", 1) == frozen
    assert old.content == store.release_path(frozen, "csv").read_bytes()
    assert old.headers["Sunset"] == "Fri, 05 Mar 2027 00:00:00 GMT"
    assert "figée à sa dernière version" in page


# --- (c) three years without update -----------------------------------------------------------


def test_three_years_without_update_warns_depublishes_keeps_files_and_a_submission_republishes(
    dags, settings, store, mailbox, monkeypatch, tmp_path
) -> None:
    at(monkeypatch, "2027-01-04T09:00:00Z")  # half-yearly: next update expected 2027-07-06
    publish_bancs(settings, store)
    files = released_files(store, BANCS)

    late = dags.run("gouvernance", settings, "2027-07-07T06:00:00Z", **mailbox.env())
    assert late["state"] == "success", late
    assert "Jeux en retard signalés : ecully-bancs-publics" in late["output"]
    again = dags.run("gouvernance", settings, "2027-07-07T18:00:00Z", **mailbox.env())
    assert "Jeux en retard signalés : aucun" in again["output"]  # idempotent
    at(monkeypatch, "2027-07-08T09:00:00Z")
    with client(store, settings) as http:
        assert "(en retard)" in http.get(f"/jeux-de-donnees/{BANCS}").text
        assert health_row(http, BANCS)["en_retard"] is True

    for moment, days in (("2029-10-06T06:00:00Z", 90), ("2029-12-05T06:00:00Z", 30)):
        warned = dags.run("gouvernance", settings, moment, **mailbox.env())
        assert (
            f"Avertissements de dépublication : ecully-bancs-publics ({days} j)"
            in (warned["output"])
        )
    at(monkeypatch, "2029-12-05T09:00:00Z")
    with client(store, settings) as http:
        row = health_row(http, BANCS)
    assert row["depublication_prevue_le"] == "2030-01-04" and row["depublication_bientot"]

    gone = dags.run("gouvernance", settings, "2030-01-04T06:00:00Z", **mailbox.env())
    assert "Jeux dépubliés : ecully-bancs-publics" in gone["output"]
    assert store.get_dataset(BANCS).status == "depublie"
    kinds = [e.kind for e in reversed(store.events(BANCS))]
    assert kinds == [
        "publication",
        "retard",
        "avertissement-depublication",
        "avertissement-depublication",
        "depublication",
    ]
    subjects = mailbox.subjects()
    for expected in (
        "Mise à jour en retard",
        "Dépublication dans 90 jours",
        "Dépublication dans 30 jours",
        "Jeu de données dépublié",
    ):
        assert sum(expected in s for s in subjects) == 1, subjects
    assert all(PRODUCER_MAIL in m["To"] for m in mailbox.messages)

    at(monkeypatch, "2030-01-05T09:00:00Z")
    with client(store, settings) as http:
        http.app.state.refresher.refresh()
        urls = dataset_urls(http, BANCS)
        assert len(urls) >= 9  # page, metadata, downloads, rows, DCAT, notices, feed
        for path in urls:
            response = http.get(path)
            if path.endswith("/changements.atom"):  # the feed tells the depublication
                assert response.status_code == 200 and "dépublié" in response.text, path
            else:
                assert response.status_code == 410, path
        page = http.get(f"/jeux-de-donnees/{BANCS}")
        search = http.get("/api/datasets", params={"q": "bancs"}).json()
        home = http.get("/").text
        layers = collections(http)
        catalogue = Graph().parse(data=http.get("/dcat/catalogue.ttl").text)
        row = health_row(http, BANCS)
    assert page.headers["content-type"].startswith("text/html")
    assert "a été dépublié le 4 janvier 2030" in page.text
    assert "pas été mises à jour depuis le 4 janvier 2027" in page.text
    assert search["total"] == 0 and BANCS not in home
    assert BANCS not in layers
    dataset = next(catalogue.subjects(RDF.type, DCAT.Dataset))
    assert catalogue.value(dataset, ADMS_STATUS) == WITHDRAWN
    assert list(catalogue.objects(dataset, DCAT.distribution)) == []
    assert "Jeu de données dépublié" in str(catalogue.value(dataset, ADMS_NOTES))
    for names in (("shapes.ttl", "range.ttl"), ("mdr-vocabularies.shape.ttl",)):
        shapes = Graph()
        for name in names:
            shapes.parse(SHAPES / name)
        conforms, _graph, text = pyshacl.validate(
            catalogue, shacl_graph=shapes, inference="none", allow_warnings=True
        )
        assert conforms, text
    assert row["statut"] == "depublie" and row["depublie_le"] == "2030-01-04"
    assert all(path.is_file() for path in files)  # archived, never deleted

    # A new submission (here: the same content, its date of update declared anew: the
    # commune confirms the data are still exact) republishes it.
    _drop(bancs_updated_on(tmp_path / "confirmees", "2030-02-01"), settings.inbox_dir)
    back = dags.run("commune_ecully", settings, "2030-02-01T08:00:00Z", **mailbox.env())
    assert back["state"] == "success", back
    assert store.get_dataset(BANCS).status == "publie"
    assert store.events(BANCS, limit=1)[0].kind == "republication"
    at(monkeypatch, "2030-02-01T09:00:00Z")
    with client(store, settings) as http:
        http.app.state.refresher.refresh()
        assert http.get(f"/api/datasets/{BANCS}/download/csv").status_code == 200
        assert http.get("/api/datasets", params={"q": "bancs"}).json()["total"] == 1
        assert BANCS in collections(http)
        detail = http.get(f"/api/datasets/{BANCS}").json()
    assert detail["cycle_de_vie"]["depublication_prevue_le"] == "2033-02-01"
    assert all(path.is_file() for path in files)


def dataset_urls(http: TestClient, slug: str) -> list[str]:
    """Every GET route of one dataset, filled in as tests/test_access.py does."""
    values = {**ROUTE_VALUES, "slug": slug, "item": slug}
    return [
        re.sub(r"{(\w+)}", lambda m: values[m.group(1)], route.path)
        for route in http.app.routes
        if isinstance(route, APIRoute) and "GET" in route.methods and "{slug}" in route.path
    ]


# --- notices over HTTP, the data team's view, the governance command -------------------------


def test_producers_announce_changes_through_the_api_with_their_commune_token(
    submit, dataset_folder, store, settings, monkeypatch
) -> None:
    at(monkeypatch, "2027-01-04T09:00:00Z")
    ecully = accounts.create_token(store, "producteur", "marie@ecully.fr", "ecully").token
    vaulx = accounts.create_token(store, "producteur", "paul@vaulx.fr", "vaulx-en-velin").token
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    restricted = dataset_folder(
        "releves.csv",
        "id;lieu\r\n1;Mairie\r\n",
        name="releves",
        extra_metadata="acces: restreint\n",
    )
    assert submit(restricted, restricted.parent / "metadata.yaml").status == "publiee"
    url = "/api/datasets/ecully-arbres/avis-changement"
    body = {
        "schema": {"fields": [{"name": "id", "type": "integer"}, {"name": "essence"}]},
        "date_effet": "2027-01-20",
        "description": "La colonne « espece » devient « essence ».",
        "correspondance": {"espece": {"colonne": "essence"}},
    }

    def post(token: str | None, payload: dict[str, Any], path: str = url) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return http.post(path, json=payload, headers=headers)

    with client(store, settings) as http:
        anonymous = post(None, body)
        unknown = post("jeton-inconnu", body)
        other = post(vaulx, body)
        hidden = post(vaulx, body, "/api/datasets/ecully-releves/avis-changement")
        early = post(ecully, body)
        accepted = post(ecully, {**body, "date_effet": "2027-02-03"})
        twice = post(ecully, {**body, "date_effet": "2027-03-01"})
        wrong = post(ecully, {**body, "date_effet": "03/02/2027"})
        listed = http.get(url)
        not_listed = http.get("/api/datasets/ecully-releves/avis-changement")
        page = http.get("/jeux-de-donnees/ecully-arbres").text
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert unknown.status_code == 401
    assert other.status_code == 403 and "commune productrice" in other.json()["detail"]
    assert hidden.status_code == 404  # another commune does not learn it exists
    assert early.status_code == 400 and early.json()["regles"] == ["avis-trop-proche"]
    assert "plus proche possible : le 03/02/2027" in early.json()["detail"]
    assert accepted.status_code == 201, accepted.text
    notice = accepted.json()
    assert notice["statut"] == "annonce" and notice["nouvelle_structure"] == 2
    assert notice["date_effet"] == "2027-02-03" and notice["ancienne_structure_alimentee"]
    assert twice.status_code == 409 and "déjà en cours" in twice.json()["detail"]
    assert wrong.status_code == 400 and "AAAA-MM-JJ" in wrong.json()["detail"]
    assert listed.status_code == 200 and listed.json()["avis_en_cours"]["id"] == notice["id"]
    assert not_listed.status_code == 404
    assert "Changement de structure le 3 février 2027" in page
    assert "figée" not in page and "alimentée" in page


def test_the_data_team_sees_every_dataset_health_with_its_token_only(
    submit, dataset_folder, store, settings, monkeypatch
) -> None:
    at(monkeypatch, "2027-01-04T09:00:00Z")
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    restricted = dataset_folder(
        "releves.csv",
        "id;lieu\r\n1;Mairie\r\n",
        name="releves",
        extra_metadata="acces: restreint\n",
    )
    assert submit(restricted, restricted.parent / "metadata.yaml").status == "publiee"
    at(monkeypatch, "2028-01-10T09:00:00Z")  # yearly: both are late
    team = team_headers(store)
    ecully = accounts.create_token(store, "producteur", "marie@ecully.fr", "ecully").token
    with client(store, settings) as http:
        producer = http.get("/api/equipe-data/sante", headers={"Authorization": f"Bearer {ecully}"})
        anonymous = http.get("/api/equipe-data/sante")
        wrong = http.get("/equipe-data/sante", headers={"Authorization": "Bearer non"})
        report = http.get("/api/equipe-data/sante", headers=team).json()
        page = http.get("/equipe-data/sante", headers=team)
    assert producer.status_code == 403 and "équipe data" in producer.json()["detail"]
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert "ecully-releves" not in anonymous.text + wrong.text + producer.text
    rows = {r["slug"]: r for r in report["jeux_de_donnees"]}
    assert set(rows) == {"ecully-arbres", "ecully-releves"}
    assert rows["ecully-releves"]["acces"] == "restreint"
    assert all(r["en_retard"] and r["statut_libelle"] == "publié" for r in rows.values())
    # 3 years after the data's update by the producer (2026-10-01), not their publication
    assert rows["ecully-arbres"]["depublication_prevue_le"] == "2029-10-01"
    assert report["resume"]["en_retard"] == 2
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="fr">' in page.text and "<caption>" in page.text
    assert '>Dépublication<span class="visuellement-cache"> (trier' in page.text  # sortable
    assert "ecully-releves" in page.text and "(accès restreint)" in page.text


def test_governance_command_applies_the_rules_once_and_prints_the_report(
    submit, dataset_folder, monkeypatch, capsys
) -> None:
    at(monkeypatch, "2027-01-04T09:00:00Z")
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    capsys.readouterr()
    monkeypatch.setenv("OPENDATA_SMTP_PORT", str(free_port()))  # no relay: mails wait
    at(monkeypatch, "2028-01-10T09:00:00Z")
    assert cli(["gouvernance"]) == 0
    first = capsys.readouterr().out
    assert cli(["gouvernance"]) == 0
    second = capsys.readouterr().out
    assert "Jeux en retard signalés : ecully-arbres" in first
    assert "Courriels envoyés : 0 (en attente : 1)" in first
    assert "Jeux en retard signalés : aucun" in second
