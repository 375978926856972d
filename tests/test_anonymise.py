"""No personal data is ever published: detection, treatments, and the property over outputs."""

import json
import logging
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyarrow as pa
import pytest
import requests
import yaml

from pipelines import personal

from conftest import personal_sample, running_catalog

TREATMENTS = yaml.safe_load(personal_sample.SIGNALEMENTS_METADATA)["donnees_personnelles"]


def write_personal_submission(
    dataset_folder, tmp_path: Path, count: int = 300, treatments: dict | None = None, seed: int = 7
) -> tuple[Path, list]:
    records = personal_sample.personal_records(count, seed)
    frame = gpd.GeoDataFrame(
        [{k: v for k, v in r.items() if k not in {"longitude", "latitude"}} for r in records],
        geometry=gpd.points_from_xy(
            [r["longitude"] for r in records], [r["latitude"] for r in records]
        ),
        crs="EPSG:4326",
    )
    source = tmp_path / "signalements.geojson"
    frame.to_file(source, driver="GeoJSON")
    declared = {
        "donnees_personnelles": treatments if treatments is not None else TREATMENTS,
        "k_anonymat": {"quasi_identifiants": ["arrondissement"], "k": 11},
    }
    data = dataset_folder(
        "signalements.geojson",
        source.read_bytes(),
        name="signalements",
        extra_metadata=yaml.safe_dump(declared, allow_unicode=True),
    )
    return data, records


def personal_values(records: list[dict]) -> set[str]:
    values = set()
    for record in records:
        values.update(str(record[f]) for f in personal_sample.PERSONAL_FIELDS)
        values.add(f"{record['longitude']:.6f}")
    return values


# --- detection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("Contact : jeanne.martin@exemple.fr", "courriel"),
        ("06 12 34 56 78", "telephone"),
        ("+33 6 12 34 56 78", "telephone"),
        ("+33612345678", "telephone"),
        ("04.78.12.34.56", "telephone"),
        ("1 85 05 78 006 084 91", "nir"),
        ("185057800608491", "nir"),
        ("2 85 05 2A 006 084 82", "nir"),
        ("FR76 3000 6000 0112 3456 7890 189", "iban"),
        ("FR7630006000011234567890189", "iban"),
        ("AB-123-CD", "plaque"),
        ("12 rue de la République", "adresse"),
        ("née le 12/03/1985 à Lyon", "date-naissance"),
    ],
)
def test_known_personal_values_are_detected(value: str, kind: str) -> None:
    in_a_sentence = f"Signalé par téléphone, à recontacter : {value} (urgent)"
    reports = {"declarant": ["Jeanne Martin", "Paul Durand"], "texte_libre": [in_a_sentence, "RAS"]}
    findings = personal.detect(pa.table(reports))
    assert kind in {f.kind for f in findings if f.column == "texte_libre"}


def test_a_facility_s_own_phone_mailbox_and_address_are_not_personal() -> None:
    facilities = pa.table(
        {
            "nom": ["Gymnase Jean Moulin", "Piscine Camille Muffat", "Médiathèque Simone Veil"],
            "adresse": ["12 rue Victor Hugo", "3 avenue Jean Jaurès", "1 place du Docteur Roux"],
            "telephone": ["04 78 12 34 56", "04.72.10.30.30", "0478953212"],
            "courriel": ["gymnase@mairie-ecully.fr", "accueil@piscine.fr", "contact@lyon.fr"],
            "latitude": [45.77, 45.76, 45.75],
            "longitude": [4.80, 4.85, 4.83],
        }
    )
    assert personal.detect(facilities) == []
    people = facilities.append_column("responsable", pa.array(["Jeanne Martin"] * 3))
    found = {(f.column, f.kind) for f in personal.detect(people)}
    assert {("adresse", "adresse"), ("telephone", "telephone"), ("responsable", "nom")} <= found
    assert ("latitude", "coordonnees-individuelles") in found


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("1 85 05 78 006 084 36", "nir"),  # wrong key: not a NIR
        ("2 85 05 2A 006 084 83", "nir"),
        ("FR76 3000 6000 0112 3456 7890 188", "iban"),  # wrong checksum
        ("06 12 34 56", "telephone"),  # too short
    ],
)
def test_invalid_identifiers_are_not_personal_values(value: str, kind: str) -> None:
    findings = personal.detect(pa.table({"texte_libre": [value]}))
    assert kind not in {f.kind for f in findings}


def test_names_of_people_but_not_of_places() -> None:
    people = pa.table({"nom": ["Jeanne Martin", "Paul Durand", "Camille Lefèvre"]})
    assert [f.kind for f in personal.detect(people)] == ["nom"]
    places = pa.table(
        {
            "nom": [
                "Gymnase Jean Moulin",
                "Rue Victor Hugo",
                "École Louis Pasteur",
                "Stade de Gerland",
            ]
        }
    )
    assert personal.detect(places) == []
    text = pa.table({"commentaire": ["Appel de Mme Dupont ce matin", "RAS", "RAS"]})
    assert {f.kind for f in personal.detect(text)} == {"nom"}


def test_ordinary_open_data_is_not_personal() -> None:
    ordinary = pa.table(
        {
            "horaires": ["08:00-12:00", "Lu-Ve 9h-17h30", "14h00 - 18h00"],
            "code_insee": ["69081", "69123", "69256"],
            "code_postal": ["69130", "69003", "69120"],
            "identifiant": ["EQ-00012", "F0042", "BANC-3946-17"],
            "montant": ["1250.50", "300", "12000"],
            "date_releve": ["2026-10-01", "2026-10-02", "2026-10-03"],
        }
    )
    assert personal.detect(ordinary) == []


def test_sole_trader_identifiers_only_where_the_data_says_so() -> None:
    sirets = ["73282932000074", "35600000000048", "55203253400646"]
    companies = pa.table({"siret": sirets, "forme": ["SAS", "SA", "SARL"]})
    assert personal.detect(companies) == []
    traders = pa.table({"siret": sirets, "forme": ["SAS", "Entrepreneur individuel", "SARL"]})
    assert [f.kind for f in personal.detect(traders)] == ["siret-entrepreneur"]


# --- the pipeline ----------------------------------------------------------------------------


def test_undeclared_personal_column_blocks_without_repeating_values(
    submit, dataset_folder, store, tmp_path
):
    treatments = {k: v for k, v in TREATMENTS.items() if k != "telephone"}
    data, records = write_personal_submission(dataset_folder, tmp_path, 40, treatments)
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    text = outcome.summary()
    assert "colonne « telephone » : Numéros de téléphone détecté(e)s dans 40 valeur(s)" in text
    assert "traitement: non-personnel" in text and "traitement: supprimer" in text
    blob = text + outcome.report.to_json()
    assert not any(value in blob for value in personal_values(records))
    assert store.get_dataset("ecully-signalements") is None


def test_published_outputs_hold_no_personal_value(submit, dataset_folder, store, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    data, records = write_personal_submission(dataset_folder, tmp_path)
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "publiee", outcome.summary()
    release = store.current_release("ecully-signalements")
    blobs = [
        caplog.text,
        json.dumps(release.metadata, ensure_ascii=False),
        json.dumps(release.anonymisation, ensure_ascii=False),
    ]
    for distribution in release.distributions:
        path = store.release_path(release, distribution.format)
        if distribution.format in {"csv", "geojson"}:
            blobs.append(path.read_text(encoding="utf-8"))
        elif distribution.format == "parquet":
            blobs.append(gpd.read_parquet(path).to_csv())
        else:
            frame = gpd.read_file(path)
            blobs.append(frame.to_csv())
    blobs.extend(api_responses(store))
    everything = "\n".join(blobs)
    leaks = sorted(v for v in personal_values(records) if v in everything)
    assert leaks == []
    assert "[nom masqué]" in everything and "[téléphone masqué]" in everything


def api_responses(store) -> list[str]:
    paths = (
        [
            "/",
            "/api/datasets",
            "/api/datasets/ecully-signalements",
            "/jeux-de-donnees/ecully-signalements",
        ]
        + [f"/api/datasets/ecully-signalements/download/{f}" for f in ("csv", "geojson")]
        + [f"/api/datasets/ecully-signalements/dcat.{e}" for e in ("ttl", "jsonld")]
    )
    with running_catalog(store) as base:
        return [requests.get(base + p, timeout=5).text for p in paths]


def test_release_records_treatments_and_public_summary(submit, dataset_folder, store, tmp_path):
    data, _ = write_personal_submission(dataset_folder, tmp_path)
    submit(data, data.parent / "metadata.yaml")
    release = store.current_release("ecully-signalements")
    columns = {c["colonne"]: c for c in release.anonymisation["colonnes"]}
    assert columns["courriel"]["traitement"] == "supprimer"
    assert columns["courriel"]["natures"] == ["adresses électroniques"]
    assert columns["description"]["valeurs_modifiees"] == 300
    assert "noms et prénoms de personnes" in columns["description"]["natures"]
    k = release.anonymisation["k_anonymat"]
    assert k["k"] == 11 and k["k_atteint"] >= 11
    assert release.row_count == 300 - k["lignes_supprimees"]
    public = release.metadata["anonymisation"]
    assert public["pseudonymise"] is True and public["anonymise"] is False
    assert "pseudonymisées (et non anonymes)" in public["resume"]
    published = pd.read_csv(store.release_path(release, "csv"))
    assert "courriel" not in published.columns and "nir" not in published.columns
    assert published["date_naissance"].astype(str).str.fullmatch(r"\d{4}").all()
    assert published["declarant"].str.fullmatch(r"[0-9a-f]{20}").all()
    assert not published["adresse"].str.match(r"^\d").any()
    schema = store.structure_versions("ecully-signalements")[0].structure["published_schema"]
    assert "courriel" not in {f["name"] for f in schema["fields"]}


def test_pseudonyms_are_stable_across_versions_and_keyed_per_producer(
    submit, dataset_folder, store, tmp_path, monkeypatch
):
    data, records = write_personal_submission(dataset_folder, tmp_path, 200)
    submit(data, data.parent / "metadata.yaml")
    first = pd.read_csv(store.release_path(store.current_release("ecully-signalements"), "csv"))
    again = submit(data, data.parent / "metadata.yaml")
    assert again.status == "confirmee"  # same pseudonyms, same content
    monkeypatch.setenv("OPENDATA_PSEUDONYM_KEY_ECULLY", "une autre clé")
    other = submit(data, data.parent / "metadata.yaml")
    assert other.status == "publiee"
    second = pd.read_csv(store.release_path(store.current_release("ecully-signalements"), "csv"))
    assert set(first["declarant"]).isdisjoint(second["declarant"])


def test_not_personal_declaration_needs_and_records_a_justification(submit, dataset_folder, store):
    csv = (
        "service;standard\r\nAstreinte voirie;06 78 33 11 22\r\n"
        "Astreinte propreté;06 78 33 11 23\r\n"
    )
    data = dataset_folder(
        "services.csv",
        csv,
        name="services",
        extra_metadata=("donnees_personnelles:\n  standard: {traitement: non-personnel}\n"),
    )
    refused = submit(data, data.parent / "metadata.yaml")
    assert "sans justification" in refused.summary()
    data = dataset_folder(
        "services.csv",
        csv,
        name="services",
        extra_metadata=(
            "donnees_personnelles:\n  standard: {traitement: non-personnel, "
            "justification: Standard de la mairie}\n"
        ),
    )
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    record = store.current_release("ecully-services").anonymisation["colonnes"][0]
    assert record == {
        "colonne": "standard",
        "natures": ["numéros de téléphone"],
        "traitement": "non-personnel",
        "valeurs_modifiees": 0,
        "justification": "Standard de la mairie",
    }


def test_insufficient_treatment_is_refused(submit, dataset_folder):
    csv = "id;courriel\r\n1;jeanne.martin@exemple.fr\r\n"
    data = dataset_folder(
        "contacts.csv",
        csv,
        name="contacts",
        extra_metadata=("donnees_personnelles:\n  courriel: {traitement: generaliser}\n"),
    )
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    assert "contient encore des adresses électroniques" in outcome.summary()


def test_k_anonymity_suppresses_rare_combinations(submit, dataset_folder, store):
    rows = (
        ["tranche;quartier;n"]
        + [f"30-39;Centre;{i}" for i in range(12)]
        + ["80-89;Gare;1", "80-89;Gare;2"]
    )
    data = dataset_folder(
        "stats.csv",
        "\r\n".join(rows) + "\r\n",
        name="stats",
        extra_metadata=("k_anonymat: {quasi_identifiants: [tranche, quartier], k: 11}\n"),
    )
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    release = store.current_release("ecully-stats")
    assert release.row_count == 12
    assert release.anonymisation["k_anonymat"]["lignes_supprimees"] == 2
    assert release.anonymisation["k_anonymat"]["k_atteint"] == 12


def test_k_anonymity_that_would_suppress_everything_is_refused(submit, dataset_folder, store):
    rows = ["tranche;quartier"] + [f"{i}0-{i}9;Centre" for i in range(5)]
    data = dataset_folder(
        "stats.csv",
        "\r\n".join(rows) + "\r\n",
        name="stats",
        extra_metadata="k_anonymat: {quasi_identifiants: [tranche]}\n",
    )
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    assert "n'apparaît au moins 11 fois" in outcome.summary()


def test_structure_errors_in_personal_columns_do_not_echo_values(submit, dataset_folder):
    schema = json.dumps(
        {
            "fields": [
                {"name": "id", "type": "integer"},
                {"name": "courriel", "type": "string", "constraints": {"maxLength": 5}},
            ]
        }
    )
    csv = "id;courriel\r\n1;jeanne.martin@exemple.fr\r\n"
    data = dataset_folder(
        "contacts.csv",
        csv,
        name="contacts",
        schema=schema,
        extra_metadata=("donnees_personnelles:\n  courriel: {traitement: supprimer}\n"),
    )
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    blob = outcome.summary() + outcome.report.to_json()
    assert "jeanne.martin" not in blob and "valeur masquée" in blob


def test_portal_and_api_say_how_the_dataset_was_anonymised(submit, dataset_folder, store, tmp_path):
    data, _ = write_personal_submission(dataset_folder, tmp_path, 200)
    submit(data, data.parent / "metadata.yaml")
    responses = api_responses(store)
    detail = json.loads(responses[2])
    assert "pseudonymisées (et non anonymes)" in detail["donnees_personnelles"]["resume"]
    assert "courriel" not in {f["name"] for f in detail["schema_publie"]["fields"]}
    html = responses[3]
    assert "Données personnelles" in html and "k-anonymat (k = 11)" in html


# --- regressions found in review: each was a leak ----------------------------------------


@pytest.mark.parametrize(
    ("header", "rows", "kind"),
    [
        ("telephone", ["0612345678", "0478123456"], "telephone"),  # read as numbers once
        ("commentaire", ["RAS"] * 5 + ["Jean Dupont a signalé une branche cassée"], "nom"),
        ("observateur", ["DUPONT Jean", "LEFEBVRE Sophie", "DURAND Pierre"], "nom"),
        ("note", ["planté en mémoire de Léa Martin née le 1985-03-12"], "date-naissance"),
    ],
)
def test_personal_values_in_less_usual_shapes_are_blocked(
    submit, dataset_folder, header, rows, kind
):
    csv = "id;" + header + "\r\n" + "".join(f"{i};{v}\r\n" for i, v in enumerate(rows))
    data = dataset_folder("donnees.csv", csv, name="donnees")
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    assert {(p.column, p.rule) for p in outcome.report.problems} >= {
        (header, "donnee-personnelle-non-traitee")
    }
    assert kind in {f.kind for f in personal.detect(pa.table({header: rows}))}


def test_phone_typed_as_a_number_in_a_spreadsheet_is_found() -> None:
    findings = personal.detect(pa.table({"tel": pa.array([612345678, 478123456])}))
    assert [f.kind for f in findings] == ["telephone"]
    assert personal.detect(pa.table({"nir": pa.array([185057800608491.0])}))[0].kind == "nir"


def test_coordinates_with_suffixed_names_are_tied_to_people(submit, dataset_folder):
    csv = (
        "signalement,courriel,latitude_wgs84,longitude_wgs84\r\n"
        "1,jean.dupont@exemple.fr,45.765123,4.835617\r\n"
    )
    data = dataset_folder(
        "s.csv",
        csv,
        name="s",
        extra_metadata=("donnees_personnelles:\n  courriel: {traitement: supprimer}\n"),
    )
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    assert {p.column for p in outcome.report.problems} == {"latitude_wgs84", "longitude_wgs84"}
    data = dataset_folder(
        "s.csv",
        csv,
        name="s",
        extra_metadata=(
            "donnees_personnelles:\n  courriel: {traitement: supprimer}\n"
            "  latitude_wgs84: {traitement: generaliser, grille_m: 500}\n"
            "  longitude_wgs84: {traitement: generaliser, grille_m: 500}\n"
        ),
    )
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"


@pytest.mark.parametrize("case", ["ragged", "primary-key", "long"])
def test_rejection_reports_never_quote_personal_values(submit, dataset_folder, case):
    email, phone = "jean.dupont@exemple.fr", "06 12 34 56 78"
    declared = "donnees_personnelles:\n  courriel: {traitement: supprimer}\n"
    schema = None
    if case == "ragged":
        csv = f"arbre,courriel\r\n1,{email},{phone}\r\n2,x@exemple.fr\r\n"
    elif case == "primary-key":
        csv = f"arbre;courriel\r\n1;{email}\r\n2;{email}\r\n"
        schema = json.dumps(
            {
                "fields": [
                    {"name": "arbre", "type": "integer"},
                    {"name": "courriel", "type": "string"},
                ],
                "primaryKey": "courriel",
            }
        )
    else:
        long_value = "x" * 195 + f" contact {email} ; tel {phone}"
        csv = f"arbre;courriel\r\n1;{long_value}\r\n"
        schema = json.dumps(
            {
                "fields": [
                    {"name": "arbre", "type": "integer"},
                    {"name": "courriel", "type": "string", "constraints": {"pattern": "^y+$"}},
                ]
            }
        )
    data = dataset_folder("a.csv", csv, name="a", schema=schema, extra_metadata=declared)
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    blob = outcome.summary() + outcome.report.to_json()
    assert email not in blob and phone not in blob and "dupont" not in blob


def test_a_change_of_treatment_is_a_change_of_structure(submit, dataset_folder, store):
    """A treatment that stops publishing a column removes it: a breaking change, refused
    without notice. One that publishes a column it dropped adds it: compatible (issue #6)."""
    csv = "arbre;courriel\r\n1;jean.dupont@exemple.fr\r\n"
    data = dataset_folder(
        "t.csv",
        csv,
        name="t",
        extra_metadata=("donnees_personnelles:\n  courriel: {traitement: pseudonymiser}\n"),
    )
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    data = dataset_folder(
        "t.csv",
        csv.replace("1;", "2;"),
        name="t",
        extra_metadata=("donnees_personnelles:\n  courriel: {traitement: supprimer}\n"),
    )
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    assert "changent les colonnes publiées" in outcome.summary()
    header = store.release_path(store.current_release("ecully-t"), "csv").read_text()
    assert "courriel" in header.splitlines()[0]  # the published version is untouched
