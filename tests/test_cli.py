"""`opendata soumettre`, as a commune agent runs it from a shell; the old English names."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import Settings

OPENDATA = str(Path(sys.executable).parent / "opendata")


def run(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "OPENDATA_DATA_DIR": str(settings.data_dir),
        "OPENDATA_INBOX_DIR": str(settings.inbox_dir),
    }
    return subprocess.run([OPENDATA, *args], env=env, capture_output=True, text=True, timeout=120)


def submit_cli(settings: Settings, data: Path, *options: str) -> subprocess.CompletedProcess:
    """`opendata soumettre --producteur ecully DATA --metadonnees METADATA [options]`."""
    return run(
        settings,
        "soumettre",
        "--producteur",
        "ecully",
        str(data),
        "--metadonnees",
        str(data.parent / "metadata.yaml"),
        *options,
    )


def test_submit_publishes_then_reports_errors_in_french(settings, dataset_folder):
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n", encoding="cp1252")
    done = submit_cli(settings, data)
    assert done.returncode == 0, done.stderr
    assert "« ecully-arbres » publié (structure v1" in done.stdout

    bad = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\ndeux;Tilleul\r\n")
    refused = submit_cli(settings, bad)
    assert refused.returncode == 1
    assert "ligne 3, colonne « id » : « deux » n'est pas un nombre entier." in refused.stdout
    assert "Rien n'a été publié ; la version précédente reste diffusée." in refused.stdout

    listed = run(settings, "jeux")
    assert "ecully-arbres" in listed.stdout and "v1" in listed.stdout


def test_old_english_names_still_work_for_one_release_with_a_notice(settings, dataset_folder):
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    done = run(
        settings,
        "submit",
        "--producer",
        "ecully",
        str(data),
        "--metadata",
        str(data.parent / "metadata.yaml"),
    )
    assert done.returncode == 0, done.stderr
    assert "« ecully-arbres » publié" in done.stdout
    assert "« opendata submit » est l'ancien nom de « opendata soumettre »" in done.stderr
    assert "« --producer » est l'ancien nom de « --producteur »" in done.stderr
    assert "« --metadata » est l'ancien nom de « --metadonnees »" in done.stderr
    listed = run(settings, "datasets")
    assert "ecully-arbres" in listed.stdout
    assert "ancien nom de « opendata jeux »" in listed.stderr
    assert "ancien nom" not in run(settings, "jeux").stderr
    nothing = run(settings, "traiter-depots", "--producteur", "ecully")
    assert nothing.returncode == 0 and "Aucun dépôt à traiter" in nothing.stdout


def test_submit_json_report_and_unknown_commune(settings, dataset_folder):
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    refused = run(
        settings,
        "soumettre",
        "--producteur",
        "villeurbanne",
        str(data),
        "--metadonnees",
        str(data.parent / "metadata.yaml"),
        "--json",
    )
    assert refused.returncode == 1
    payload = json.loads(refused.stdout)
    assert payload["statut"] == "refusee"
    problem = payload["rapport"]["problemes"][0]
    assert problem["regle"] == "producteur-inconnu" and "ecully" in problem["message"]


@pytest.mark.slow
def test_demo_publishes_every_sample_through_the_dags(settings, tmp_path):
    env = {
        **os.environ,
        "OPENDATA_DATA_DIR": str(settings.data_dir),
        "OPENDATA_INBOX_DIR": str(settings.inbox_dir),
        "AIRFLOW_HOME": str(tmp_path / "af"),
    }
    with socket.socket() as sock:  # Airflow's api-server: a free port, not 8080
        sock.bind(("127.0.0.1", 0))
        airflow_port = str(sock.getsockname()[1])
    done = subprocess.run(
        [OPENDATA, "demo", "--sans-serveur", "--port-airflow", airflow_port],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # published by Airflow's scheduler, then every process stopped
    assert "[6/6] " in done.stdout and "publiee" in done.stdout
    assert "Tous les processus de la démonstration sont arrêtés." in done.stdout
    published = {
        line.split("publié : ")[1].split(" ")[0]
        for line in done.stdout.splitlines()
        if "publié : " in line
    }
    assert published == {
        "ecully-bancs-publics",
        "ecully-equipements-sportifs",
        "lyon-fontaines-eau-potable",
        "vaulx-en-velin-pistes-cyclables",
        "vaulx-en-velin-subventions-associations",
        "lyon-signalements-espace-public",
    }
    reports = sorted(settings.inbox_dir.glob("*/*/rapport.txt"))
    assert len(reports) == 6
    assert all("publiee" in r.read_text(encoding="utf-8") for r in reports)


def test_data_team_reads_the_anonymisation_report(settings, dataset_folder):
    csv = "service;standard\r\nAccueil;04 78 33 11 22\r\n"
    data = dataset_folder(
        "services.csv",
        csv,
        name="services",
        extra_metadata=(
            "donnees_personnelles:\n  standard: {traitement: non-personnel, "
            "justification: Standard de la mairie}\n"
        ),
    )
    submit_cli(settings, data)
    shown = run(settings, "anonymisation", "ecully-services")
    assert shown.returncode == 0
    record = json.loads(shown.stdout)["colonnes"][0]
    assert record["justification"] == "Standard de la mairie"
    assert "04 78" not in shown.stdout
    assert run(settings, "anonymisation", "inconnu").returncode == 1
