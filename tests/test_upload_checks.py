"""An upload answers at once (issue #19): what its files say is checked when it arrives,
every problem in one French report (422, nothing written), in the pipeline's own words;
a deposit that passes says when the commune's DAG will take it, and its depositor is mailed
the outcome (published or refused) through the SMTP relay."""

from __future__ import annotations

import dataclasses
import json

import pytest
from fastapi.testclient import TestClient
from mail_relay import relay_down, relay_up

from catalog import accounts
from catalog.web.app import create_app
from core.problems import SubmissionRejected
from core.producers import load_producers
from opendata.cli import main as cli
from pipelines import notify, tasks

from conftest import METADATA_TEMPLATE, serving

DEPOTS = "/api/communes/ecully/depots"
GOOD = METADATA_TEMPLATE.format(licence="etalab-2.0") + "identifiant: arbres\n"
TREES = "id;espece;hauteur\r\n1;Platane;12\r\n2;Tilleul;8\r\n"
SCHEMA = {
    "fields": [
        {"name": "id", "type": "integer"},
        {"name": "espece", "type": "string"},
        {"name": "hauteur_m", "type": "integer"},
    ]
}
NOW = "2026-11-25T10:03:00Z"
PUBLIC = "https://donnees.example.fr"


@pytest.fixture
def ecully(settings, store, monkeypatch) -> dict[str, str]:
    monkeypatch.setenv("OPENDATA_NOW", NOW)
    monkeypatch.setenv("OPENDATA_PUBLIC_URL", PUBLIC)
    token = accounts.create_token(store, "producteur", "marie@ecully.fr", "ecully").token
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def app(settings, store):
    """The catalog, the commune of Écully looking at its drop folder every quarter hour."""
    producers = load_producers(settings.producers_file)
    producers["ecully"] = dataclasses.replace(producers["ecully"], schedule="*/15 * * * *")
    return create_app(store, services=[], producers=producers)


def mistaken(text: str) -> str:
    """The good metadata with real mistakes: no contact, a two-digit year, a misspelt key,
    a licence that does not exist."""
    for right, wrong in (
        ("contact: {nom: Service espaces verts, email: espaces-verts@mairie-ecully.fr}\n", ""),
        ("date_mise_a_jour: 2026-10-01", "date_mise_a_jour: 20/11/26"),
        ("mots_cles: [arbres, nature]", "mots_cle: [arbres, nature]"),
        ("licence: etalab-2.0", "licence: licence ouvert"),
    ):
        assert right in text
        text = text.replace(right, wrong)
    return text + "schema: schema.json\n"


def test_a_deposit_with_mistakes_gets_every_problem_in_one_french_report(
    settings, store, ecully, app
):
    files = {
        "fichier": ("arbres.csv", TREES.encode()),
        "metadonnees": ("metadata.yaml", mistaken(GOOD).encode()),
        "schema": ("schema.json", json.dumps(SCHEMA).encode()),
    }
    with TestClient(app) as http:
        refused = http.post(DEPOTS, files=files, headers=ecully)
    assert refused.status_code == 422, refused.text
    answer = refused.json()
    problems = {(p["regle"], p["colonne"]): p for p in answer["problemes"]}
    assert answer["nombre_problemes"] == len(answer["problemes"]) == 7, answer["rapport"]
    assert "Rien n'a été enregistré" in answer["detail"]
    # no contact
    contact = problems[("champ-obligatoire", "contact")]
    assert contact["message"] == "Le champ « contact » est obligatoire."
    # 20/11/26: the year in full, and the date probably meant
    day = problems[("valeur-invalide", "date_mise_a_jour")]
    assert day["message"].startswith("Date « 20/11/26 » illisible : l'année doit s'écrire")
    assert "vouliez-vous dire « 20/11/2026 » ?" in day["message"]
    assert day["suggestion"] == "20/11/2026" and day["valeur"] == "20/11/26"
    # a misspelt key: the key meant, and the required field it leaves missing
    key = problems[("cle-inconnue", "mots_cle")]
    assert "Clé « mots_cle » inconnue : vouliez-vous dire « mots_cles » ?" in key["message"]
    assert key["suggestion"] == "mots_cles"
    missing = problems[("champ-obligatoire", "mots_cles")]["message"]
    assert missing == (
        "Le champ « mots_cles » est obligatoire (la clé « mots_cle » est-elle mal orthographiée ?)."
    )
    # a licence that does not exist, and the one meant
    licence = problems[("licence-non-acceptee", "licence")]
    assert licence["etape"] == "licence" and licence["suggestion"] == "etalab-2.0"
    assert licence["message"].startswith(
        "Licence « licence ouvert » non acceptée : vouliez-vous dire « etalab-2.0 » "
        "(Licence Ouverte 2.0) ?"
    )
    # the header against the schema declared: row 1, each column named
    absent = problems[("colonne-manquante", "hauteur_m")]
    extra = problems[("colonne-en-trop", "hauteur")]
    assert absent["etape"] == extra["etape"] == "structure"
    assert absent["ligne"] == extra["ligne"] == 1
    assert (
        absent["message"] == "La colonne « hauteur_m » prévue par le schéma est absente du fichier."
    )
    assert (
        "[Licence] règle « licence-non-acceptee », clé « licence » : 1 cas" in answer["rapport"]
    )
    # nothing written; the refusal is in the audit log
    assert not (settings.inbox_dir / "ecully").exists()
    assert not any((settings.inbox_dir / ".televersements" / "depots").glob("*"))
    [entry] = store.audit_log(action="depot-refuse")
    assert entry.actor == "producteur:marie@ecully.fr" and entry.details["problemes"] == 7


def test_the_upload_and_the_pipeline_say_the_same_words(
    settings, submit, dataset_folder, ecully, app
):
    """The pipeline refuses a dropped folder with the very problems the upload answered."""
    data = dataset_folder("arbres.csv", TREES)
    metadata = data.parent / "metadata.yaml"
    metadata.write_text(mistaken(GOOD).replace("schema: schema.json\n", ""), encoding="utf-8")
    files = {
        "fichier": ("arbres.csv", TREES.encode()),
        "metadonnees": ("m.yaml", metadata.read_bytes()),
    }
    with TestClient(app) as http:
        answer = http.post(DEPOTS, files=files, headers=ecully).json()
    outcome = submit(data, metadata)
    assert outcome.status == "refusee"
    uploaded = {(p["etape"], p["regle"], p["colonne"], p["message"]) for p in answer["problemes"]}
    piped = {(p.stage, p.rule, p.column, p.message) for p in outcome.report.problems}
    assert uploaded == piped and len(piped) == 5


def test_files_that_cannot_be_read_are_refused_with_the_metadata_problems(settings, ecully, app):
    broken_yaml = b"titre: Arbres\ndescription: [a, b\nlicence: etalab-2.0\n"
    pdf = b"%PDF-1.7\n" + bytes(range(256))
    bad_schema = b'{"fields": [{"name": "id", "type": "integer"},]}'
    with TestClient(app) as http:
        yaml_answer = http.post(
            DEPOTS,
            files={"fichier": ("arbres.csv", pdf), "metadonnees": ("m.yaml", broken_yaml)},
            data={"jeu": "arbres"},
            headers=ecully,
        )
        schema_answer = http.post(
            DEPOTS,
            files={
                "fichier": ("arbres.csv", TREES.encode()),
                "metadonnees": ("m.yaml", (GOOD + "schema: schema.json\n").encode()),
                "schema": ("schema.json", bad_schema),
            },
            headers=ecully,
        )
    assert yaml_answer.status_code == schema_answer.status_code == 422
    found = {(p["regle"], p["ligne"]): p["message"] for p in yaml_answer.json()["problemes"]}
    assert found[("yaml-invalide", 3)].endswith(
        "ligne 3, colonne 8 : une liste ouverte par « [ » n'est pas refermée par « ] »"
    )
    assert "c'est un document PDF" in found[("fichier-binaire", None)]
    [schema] = schema_answer.json()["problemes"]
    assert schema["regle"] == "schema-illisible" and schema["message"] == (
        "Le schéma schema.json est illisible : JSON invalide ligne 1, colonne 47 (virgule en "
        "trop après le dernier élément)."
    )
    assert not (settings.inbox_dir / "ecully").exists()


def test_the_command_line_prints_the_report_of_a_refused_deposit(
    settings, store, ecully, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("OPENDATA_JETON", ecully["Authorization"].removeprefix("Bearer "))
    data, metadata = tmp_path / "arbres.csv", tmp_path / "metadata.yaml"
    data.write_text(TREES, encoding="utf-8")
    metadata.write_text(mistaken(GOOD).replace("schema: schema.json\n", ""), encoding="utf-8")
    with serving(create_app(store, services=[])) as base:
        code = cli(["deposer", str(data), "--metadonnees", str(metadata), "--url", base])
    error = capsys.readouterr().err
    assert code == 1 and "HTTP 422" in error
    assert (
        "vouliez-vous dire « mots_cles » ?" in error and "vouliez-vous dire « etalab-2.0 »" in error
    )


def test_a_waiting_deposit_says_when_the_commune_dag_takes_it(settings, ecully, app, monkeypatch):
    files = {"fichier": ("arbres.csv", TREES.encode()), "metadonnees": ("m.yaml", GOOD.encode())}
    with TestClient(app) as http:
        sent = http.post(DEPOTS, files=files, headers=ecully)
        status_url = sent.json()["url_statut"]
        at_once = http.get(status_url, headers=ecully).json()["traitement_prevu"]
        monkeypatch.setenv("OPENDATA_NOW", "2026-11-25T10:21:00Z")  # the 10:15 run is late
        late = http.get(status_url, headers=ecully).json()["traitement_prevu"]
    assert sent.status_code == 202, sent.text
    assert sent.json()["traitement_prevu"] == at_once
    assert at_once["le"] == "2026-11-25T10:15:00Z" and at_once["planification"] == "*/15 * * * *"
    assert at_once["libelle"] == (
        "Traitement prévu au prochain passage de la chaîne de publication de la commune, le "
        "25 novembre 2026 à 10 h 15 (UTC), dans 12 min environ ; le résultat suit en quelques "
        "minutes."
    )
    assert late["le"] == "2026-11-25T10:30:00Z"
    assert (
        "du 25 novembre 2026 à 10 h 15 (UTC) traite ce dépôt (ou a pris du retard)"
        in (late["libelle"])
    )
    assert "le 25 novembre 2026 à 10 h 30 (UTC), dans 9 min environ" in late["libelle"]


def test_with_the_demo_s_schedule_the_deposit_is_taken_within_the_minute(
    settings, store, ecully, monkeypatch
):
    """`OPENDATA_PLANIFICATION=20s` (what `opendata demo` sets): every commune's DAG looks
    every 20 seconds, and the deposit's answer says so."""
    monkeypatch.setenv("OPENDATA_PLANIFICATION", "20s")
    app = create_app(store, services=[], producers=load_producers(settings.producers_file))
    files = {"fichier": ("arbres.csv", TREES.encode()), "metadonnees": ("m.yaml", GOOD.encode())}
    with TestClient(app) as http:
        sent = http.post(DEPOTS, files=files, headers=ecully)
    assert sent.status_code == 202, sent.text
    expected = sent.json()["traitement_prevu"]
    assert expected["le"] == "2026-11-25T10:03:20Z" and expected["planification"] == "20s"
    assert "dans moins d'une minute" in expected["libelle"]


def run_dag_tasks(producer: str) -> list[str]:
    """The commune DAG's tasks on every ready submission; the outcomes."""
    outcomes = []
    for submission in tasks.find_submissions(producer):
        try:
            metadata = tasks.check_metadata(submission)
            licence = tasks.check_licence(submission, metadata)
            tasks.check_structure(submission, metadata)
            anonymisation = tasks.anonymise(submission, metadata)
            outcomes.append(tasks.publish(submission, metadata, licence, anonymisation)["statut"])
        except SubmissionRejected:
            outcomes.append("refusee")
    return outcomes


def test_the_depositor_is_mailed_the_publication_and_the_refusal(
    settings, store, ecully, app, monkeypatch
):
    files = {"fichier": ("arbres.csv", TREES.encode()), "metadonnees": ("m.yaml", GOOD.encode())}
    # passes the checks at once; the structure check of every row refuses « grand »
    bad_rows = TREES + "3;Chêne;grand\r\n"
    again = {"fichier": ("arbres.csv", bad_rows.encode()), "metadonnees": ("m.yaml", GOOD.encode())}
    with TestClient(app) as http:
        with relay_up(monkeypatch) as relay:
            published = http.post(DEPOTS, files=files, headers=ecully).json()
            assert run_dag_tasks("ecully") == ["publiee"]
        status = http.get(published["url_statut"], headers=ecully).json()
        relay_down(monkeypatch)
        refused = http.post(DEPOTS, files=again, headers=ecully).json()
        assert run_dag_tasks("ecully") == ["refusee"]
        unsent = http.get(refused["url_statut"], headers=ecully).json()
        with relay_up(monkeypatch) as later:  # the governance job's next run sends it
            report = notify.notify_pending(store, settings)
            notify.notify_pending(store, settings)  # once only
        mailed = http.get(refused["url_statut"], headers=ecully).json()
    [(recipients, mail)] = relay.messages
    body = mail.get_content()
    assert recipients == ["marie@ecully.fr"]
    assert mail["Subject"] == "[Données ouvertes] Dépôt publié : Arbres d'alignement"
    assert f"dépôt n° {published['depot']}) est publié" in body
    assert "du 25 novembre 2026 à 10 h 03 (UTC) (fichier arbres.csv" in body
    assert f"- page du jeu de données : {PUBLIC}/jeux-de-donnees/ecully-arbres" in body
    assert status["courriel_envoye_le"] == "2026-11-25T10:03:00"
    assert unsent["statut"] == "refusee" and unsent["courriel_envoye_le"] is None
    assert report["deposit_mails_sent"] == 1
    [(recipients, mail)] = later.messages
    body = mail.get_content()
    assert recipients == ["marie@ecully.fr"]
    assert mail["Subject"].startswith("[Données ouvertes] Dépôt refusé : Arbres d'alignement (1 ")
    assert "est refusé : rien n'a été publié" in body
    assert "ligne 4, colonne « hauteur » : « grand » n'est pas un nombre entier." in body
    assert mailed["courriel_envoye_le"] == "2026-11-25T10:03:00"
