"""Personal data on files no one here wrote, and on a generated corpus of French personal data.

- Real corpus (`tests/data/real_corpus/`, 45 real exports of French open-data portals, each
  with its source and licence in `manifest.yaml`): no file without personal data is refused.
- Generated corpus (`bench/personal_corpus.py`): every personal column is found, with
  explicit and with neutral headers, names inside sentences are masked, and once the
  treatments the refusal proposes are declared, no personal value is left in any artefact.
"""

from __future__ import annotations

import io
import json
import logging
import random
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import geopandas as gpd
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import requests
import yaml

from catalog.web.app import create_app
from pipelines import governance, personal, retention
from pipelines.anonymise import redact
from pipelines.personal import names
from pipelines.read.stage import read_source
from pipelines.submission import Submission, archive_submission, run_submission

from conftest import PROJECT_ROOT, Deployment, deployment, serving, write_submission

REAL_CORPUS = Path(__file__).parent / "data" / "real_corpus"
MANIFEST = yaml.safe_load((REAL_CORPUS / "manifest.yaml").read_text(encoding="utf-8"))["fichiers"]
sys.path.insert(0, str(PROJECT_ROOT / "bench"))
from personal_corpus import CorpusTable, generated_corpus  # noqa: E402

CORPUS = generated_corpus(seed=7)
# Coordinates alone, beside amounts and categories, say nothing of whom the rows are about:
# the one generated case no detector reading the file can find (docs/donnees-personnelles.md,
# « Limites »).
UNDECIDABLE = {"signalements_domicile_geolocalises", "signalements_domicile_geolocalises_neutre"}


def read_real(entry: dict[str, Any]) -> pa.Table:
    frame = pd.read_csv(
        REAL_CORPUS / entry["fichier"],
        sep=entry["separateur"],
        encoding=entry["encodage"],
        dtype=str,
        keep_default_na=False,
    ).replace("", None)
    return pa.Table.from_pandas(frame, preserve_index=False)


# --- real files --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry", [e for e in MANIFEST if e["personnel"] == "non"], ids=lambda e: e["fichier"]
)
def test_a_real_file_without_personal_data_is_not_refused(
    entry: dict[str, Any], submit, dataset_folder
) -> None:
    findings = personal.detect(read_real(entry))  # every column as text
    assert [(f.column, f.kind) for f in findings] == []
    # and as the pipeline reads and types it, with no declaration at all
    content = (REAL_CORPUS / entry["fichier"]).read_bytes()
    data = dataset_folder(entry["fichier"], content, name="reel")
    outcome = submit(data, data.parent / "metadata.yaml")
    assert [p.rule for p in outcome.report.problems if p.stage == "anonymisation"] == []


def test_real_corpus_covers_enough_files_columns_and_producers() -> None:
    columns = sum(read_real(e).num_columns for e in MANIFEST)
    producers = {e["ville"] for e in MANIFEST}
    assert len(MANIFEST) >= 40 and columns >= 400 and len(producers) >= 5
    assert all(e["source"] and e["licence"] for e in MANIFEST)


@pytest.mark.parametrize(
    "label",
    [
        "Complexe Sportif Jean Guimier",
        "Stade Municipal Jacques Joly",
        "Centre Nautique Camille Muffat",
        "Salle multisports Jean Jaurès",
        "Rue Dr Bouchut",
        "Place du Docteur Jean Roux",
        "Av. Jean Mermoz / Bd Pinel",
        "Parking Jean Macé",
        "Gymnase du Président Jean Moulin",
        "École maternelle Louise Michel",
        "Quai Claude Bernard",
        "Borne-fontaine Bayard, Gros Caillou",
    ],
)
def test_a_place_named_after_someone_is_a_place(label: str) -> None:
    assert names.label_shape(label) is None
    if "," not in label:  # in a sentence, a comma ends the place's phrase
        assert names.names_in_texts([f"Rendez-vous devant {label} à 10 h"]) == {}


def test_a_column_of_facilities_streets_and_districts_is_not_personal() -> None:
    places = pa.table(
        {
            "nom": ["Complexe Sportif Jean Guimier", "Parking Jean Macé", "Stade de Gerland"] * 3,
            "quartier": ["Jean Macé", "Gerland", "Monplaisir"] * 3,
            "station": ["Jean Macé", "Place Guichard", "Saxe - Gambetta"] * 3,
            "adresse": ["12 rue du Docteur Bouchut", "3 av. Jean Mermoz", "1 bd Pinel"] * 3,
            "latitude": [45.7456123, 45.7601234, 45.7512345] * 3,
            "longitude": [4.8421234, 4.8512345, 4.8634567] * 3,
        }
    )
    assert personal.detect(places) == []


# --- the generated personal corpus -----------------------------------------------------------


@pytest.mark.parametrize("item", CORPUS, ids=lambda item: item.name)
def test_every_personal_column_is_found_whatever_its_header(item: CorpusTable) -> None:
    flagged = {f.column for f in personal.detect(item.table)}
    personal_columns = {c for c, kind in item.expected.items() if kind}
    controls = {c for c, kind in item.expected.items() if not kind}
    assert flagged & controls == set()
    if item.name not in UNDECIDABLE:
        assert personal_columns - flagged == set()


def test_names_in_sentences_are_masked() -> None:
    item = next(i for i in CORPUS if i.free_text_names)
    column, inserted = next(iter(item.free_text_names.items()))
    masked = redact(item.table.column(column).combine_chunks()).to_pylist()
    total = sum(len(names_in_row) for names_in_row in inserted)
    left = [
        name
        for text, names_in_row in zip(masked, inserted, strict=True)
        for name in names_in_row
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text or "")
    ]
    assert total >= 300 and len(left) <= 0.01 * total, left


@pytest.mark.parametrize(
    ("column", "values", "kind"),
    [
        ("c01", pa.array([612345678, 478123456, 699887766]), "telephone"),  # leading 0 lost
        ("c01", pa.array([33612345678, 33478123456, 33699887766]), "telephone"),  # +33 lost
        ("telephone", pa.array(["+33 6 12 34 56 78", "+33478123456", "+33 (0)6 99 88 77 66"]),
         "telephone"),  # fmt: skip
        ("c01", pa.array(["fr76 3000 6000 0112 3456 7890 189", "fr7630006000011234567890189",
                          "Fr76 3000 6000 0112 3456 7890 189"]), "iban"),  # fmt: skip
        ("c01", pa.array(["1850578006084", "2 85 05 2A 006 084", "185057800608491"]), "nir"),
        ("c01", pa.array([1850578006084, 2850569006084, 1920375123456]), "nir"),  # no key
        ("c01", pa.array([185057800608491.0, 285056900608490.0, 192037512345686.0]), "nir"),
    ],
)
def test_identifiers_in_every_shape(column: str, values: pa.Array, kind: str) -> None:
    people = pa.table({column: values, "nom": ["Jeanne Martin", "Paul Durand", "Léa Roux"][:3]})
    assert kind in {f.kind for f in personal.detect(people) if f.column == column}


def test_numbers_typed_by_a_spreadsheet_are_still_identifiers(submit, dataset_folder, tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["dossier", "contact", "secu", "montant"])
    for number, (phone, nir) in enumerate(
        [(612345678, 185057800608491), (478123456, 285056900608490), (699887766, 1920375123456)]
    ):
        sheet.append([number + 1, phone, nir, 100.5 * (number + 1)])
    path = tmp_path / "dossiers.xlsx"
    book.save(path)
    data = dataset_folder("dossiers.xlsx", path.read_bytes(), name="dossiers")
    outcome = submit(data, data.parent / "metadata.yaml")
    found = {(p.column, p.rule) for p in outcome.report.problems}
    assert found == {
        ("contact", "donnee-personnelle-non-traitee"),
        ("secu", "donnee-personnelle-non-traitee"),
    }
    assert "612345678" not in outcome.summary() + outcome.report.to_json()


def test_surnames_alone_and_names_in_every_order_are_names() -> None:
    surnames = ["Guimier", "Muffat", "Bouchut", "Lefebvre", "Nguyen", "Diallo", "Le Goff",
                "Martin-Dupont", "Garcia", "Rousseau"]  # fmt: skip
    assert {f.kind for f in personal.detect(pa.table({"c07": surnames}))} == {"nom"}
    for shape in (["DUPONT Jean", "MARTIN Léa"], ["Jean DUPONT", "Léa MARTIN"],
                  ["Dupont, Jean", "Martin, Léa"], ["J.-P. Martin", "L. Roux"],
                  ["Jean-Luc de Villepin", "Marie-Hélène N'Diaye"]):  # fmt: skip
        assert names.label_shape(shape[0]) == "full" and names.label_shape(shape[1]) == "full"


# --- quasi-identifiers ---------------------------------------------------------------------------


def survey_csv(rows: int = 200) -> str:
    rng = random.Random(3)
    lines = ["age;sexe;code_postal;reponse"]
    for _ in range(rows):
        age, postcode = rng.randint(18, 90), f"69{rng.choice('0123456789')}{rng.randint(0, 9)}0"
        lines.append(f"{age};{rng.choice('HF')};{postcode};{rng.choice(['oui', 'non'])}")
    return "\r\n".join(lines) + "\r\n"


def test_quasi_identifiers_below_k_are_refused_with_the_measured_k(submit, dataset_folder):
    data = dataset_folder("enquete.csv", survey_csv(), name="enquete")
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    text = outcome.summary()
    assert "k mesuré = 1" in text and "Pour atteindre k = 11" in text
    assert [p.column for p in outcome.report.problems] == ["age, sexe, code_postal"]
    proposed = text.split("déclarez dans « donnees_personnelles » : ")[1].split("}. ")[0] + "}"
    declared = "donnees_personnelles:\n" + "".join(
        f"  {d if d.endswith('}') else d + '}'}\n" for d in proposed.split("}, ")
    )
    data = dataset_folder("enquete.csv", survey_csv(), name="enquete", extra_metadata=declared)
    published = submit(data, data.parent / "metadata.yaml")
    assert published.status == "publiee", declared + published.summary()
    declared = "k_anonymat: {quasi_identifiants: [age, sexe, code_postal], k: 11}\n"
    declared += "donnees_personnelles:\n  age: {traitement: generaliser, tranches: 20}\n"
    declared += "  code_postal: {traitement: generaliser, niveau: departement}\n"
    data = dataset_folder("enquete.csv", survey_csv(), name="enquete", extra_metadata=declared)
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"


# --- one pass, fail closed, messages ----------------------------------------------------------


def test_structure_and_personal_data_are_reported_in_one_pass(submit, dataset_folder):
    csv = "id;declarant;montant\r\n1;Jeanne Martin;12\r\n2;Paul Durand;douze\r\n3;Léa Roux;3\r\n"
    schema = json.dumps(
        {"fields": [{"name": "id", "type": "integer"}, {"name": "declarant", "type": "string"},
                    {"name": "montant", "type": "integer"}]}  # fmt: skip
    )
    data = dataset_folder("d.csv", csv, name="d", schema=schema)
    outcome = submit(data, data.parent / "metadata.yaml")
    stages = {(p.stage, p.column) for p in outcome.report.problems}
    assert ("structure", "montant") in stages and ("anonymisation", "declarant") in stages
    assert "Jeanne" not in outcome.summary() + outcome.report.to_json()


def test_a_report_never_quotes_a_value_shaped_like_a_name(submit, dataset_folder):
    rows = "".join(f"{n};RAS\r\n" for n in range(1, 40)) + "40;Jean Dupont\r\n"
    schema = json.dumps(
        {"fields": [{"name": "id", "type": "integer"},
                    {"name": "etat", "type": "string", "constraints": {"enum": ["RAS", "OK"]}}]}
    )  # fmt: skip
    data = dataset_folder("e.csv", "id;etat\r\n" + rows, name="e", schema=schema)
    outcome = submit(data, data.parent / "metadata.yaml")
    assert [(p.row, p.column, p.rule) for p in outcome.report.problems] == [(41, "etat", "enum")]
    assert "Dupont" not in outcome.summary() + outcome.report.to_json()


def test_without_its_references_the_stage_refuses_to_run(
    submit, dataset_folder, monkeypatch, tmp_path
):
    monkeypatch.setattr(names, "NAMES_DIR", tmp_path / "nowhere")
    names.first_names.cache_clear()
    names.surnames.cache_clear()
    try:
        data = dataset_folder("a.csv", "id;nom\r\n1;Jeanne Martin\r\n", name="a")
        outcome = submit(data, data.parent / "metadata.yaml")
    finally:
        names.first_names.cache_clear()
        names.surnames.cache_clear()
    assert outcome.status == "refusee"
    assert {p.rule for p in outcome.report.problems} == {"detecteur-indisponible"}
    assert "Liste de référence des noms absente" in outcome.summary()


def test_geometry_of_persons_says_which_column_and_proposes_a_grid(submit, dataset_folder):
    csv = (
        "declarant;latitude;longitude\r\nJeanne Martin;45.7612345;4.8312345\r\n"
        "Paul Durand;45.7512345;4.8412345\r\n"
    )
    data = dataset_folder("g.csv", csv, name="g")
    text = submit(data, data.parent / "metadata.yaml").summary()
    assert "Les lignes décrivent des personnes (colonne « declarant »)" in text
    assert "latitude: {traitement: generaliser, grille_m: 200}" in text


# --- minimisation of raw submissions ---------------------------------------------------------


def test_raw_personal_submissions_leave_the_archive_after_the_retention(
    settings, store, dataset_folder, monkeypatch
):
    monkeypatch.setenv("OPENDATA_NOW", "2026-12-01T10:00:00")
    folder = dataset_folder("r.csv", "id;declarant\r\n1;Jeanne Martin\r\n", name="r").parent
    submission = Submission.new("ecully", folder / "r.csv", folder / "metadata.yaml", "test")
    outcome = run_submission(submission, settings, store)
    assert outcome.status == "refusee" and outcome.personal
    archive = archive_submission(submission, outcome, settings)
    assert (archive / "r.csv").is_file()
    assert governance.run(store, archive_dir=settings.archive_dir).purged == []
    later = datetime(2026, 12, 1, 10) + timedelta(days=settings.raw_personal_retention_days + 1)
    report = governance.run(store, later, archive_dir=settings.archive_dir)
    assert report.purged == [str(archive.relative_to(settings.archive_dir))]
    assert sorted(p.name for p in archive.iterdir()) == sorted(retention.KEPT)
    assert "Jeanne" not in (archive / "rapport.txt").read_text(encoding="utf-8")


# --- nothing personal in any artefact after the proposed treatments ------------------------------

DECLARATION = {
    "nom": "{traitement: pseudonymiser}",
    "coordonnees-individuelles": "{traitement: generaliser, grille_m: 200}",
    "date-naissance": "{traitement: generaliser, niveau: annee}",
    "adresse": "{traitement: supprimer}",
}


def as_csv(table: pa.Table) -> str:
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer)
    return buffer.getvalue().decode("utf-8")


def proposed_metadata(findings: list[personal.Finding]) -> str:
    """The declarations the refusal proposes (free text masked, the rest per kind)."""
    declared: dict[str, str] = {}
    for finding in findings:
        if finding.kind == "quasi-identifiants":
            treatment = finding.proposal
        elif finding.in_sentences:
            treatment = "{traitement: masquer}"
        else:
            treatment = DECLARATION.get(finding.kind, "{traitement: supprimer}")
        if treatment:
            declared.setdefault(finding.column, treatment)
    lines = [f"  {json.dumps(column)}: {treatment}" for column, treatment in declared.items()]
    return "donnees_personnelles:\n" + "\n".join(lines) + "\n" if lines else ""


def personal_strings(item: CorpusTable) -> set[str]:
    values: set[str] = set()
    for column, kind in item.expected.items():
        if kind in {None, "quasi_identifiant"}:
            continue
        if kind == "coordonnees_domicile":
            continue  # a grid centre may share one coordinate with a home: see home_positions
        values.update(str(v) for v in item.table.column(column).to_pylist() if v is not None)
    for rows in item.free_text_names.values():
        values.update(name for names_in_row in rows for name in names_in_row)
    return {v for v in values if len(v) >= 4}


def leaks(values: set[str], text: str) -> list[str]:
    """The values found in `text` as whole words (one pass over the text)."""
    if not values:
        return []
    alternatives = "|".join(re.escape(v) for v in sorted(values, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])(?:{alternatives})(?![\w-])")
    return sorted(set(pattern.findall(text)))


def xlsx_text(content: bytes) -> str:
    book = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return "\n".join(
        "\t".join(str(c) for c in row if c is not None)
        for sheet in book.worksheets
        for row in sheet.iter_rows(values_only=True)
    )


EXPLICIT = [i for i in CORPUS if not i.name.endswith("_neutre")]


class LogRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class PublishedCorpus:
    base: str
    deployment: Deployment
    refusals: dict[str, str]  # table -> its first refusal, as the producer saw it
    logs: LogRecords


def submission_folder(root: Path, name: str, filename: str, content: str | bytes, extra: str):
    return write_submission(root / "depots" / name, filename, content, extra_metadata=extra)


def map_of(item: CorpusTable) -> bytes:
    """The table as GeoJSON points (its latitude and longitude become the geometry)."""
    frame = item.table.to_pandas()
    points = gpd.GeoDataFrame(
        frame.drop(columns=["latitude", "longitude"]),
        geometry=gpd.points_from_xy(frame["longitude"], frame["latitude"]),
        crs=4326,
    )
    return points.to_json(default=str).encode("utf-8")


@pytest.fixture(scope="module")
def published_corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PublishedCorpus]:
    """Each explicit table of the generated corpus submitted bare (refused), then with the
    treatments the detector proposes (published); one table also as a map. Then served."""
    logs = LogRecords()
    root = logging.getLogger()
    root.addHandler(logs)
    previous = root.level
    root.setLevel(logging.DEBUG)
    try:
        with deployment(tmp_path_factory, "personnel") as deployed:
            refusals = {}
            tables = [(f"{slug(i)}.csv", as_csv(i.table).encode()) for i in EXPLICIT]
            tables.append(("stationnement-carte.geojson", map_of(MAPPED)))
            for filename, content in tables:
                name = filename.rsplit(".", 1)[0]
                data = submission_folder(deployed.root, name, filename, content, "")
                submission = Submission.new("ecully", data, data.parent / "metadata.yaml", "t")
                refused = run_submission(submission, deployed.settings, deployed.store)
                refusals[name] = refused.summary() + refused.report.to_json()
                if refused.status == "publiee":
                    continue  # nothing found: published as it came (UNDECIDABLE)
                source = read_source(data)
                findings = personal.detect(source.table, source.geometry is not None)
                extra = proposed_metadata(findings)
                deployed.publish(submission_folder(deployed.root, name, filename, content, extra))
            app = create_app(deployed.store)
            with serving(app) as base:
                app.state.refresher.refresh()
                yield PublishedCorpus(base, deployed, refusals, logs)
    finally:
        root.removeHandler(logs)
        root.setLevel(previous)


def slug(item: CorpusTable) -> str:
    return item.name.replace("_", "-")[:40]


MAPPED = next(i for i in EXPLICIT if i.name == "stationnement_residents")


def get(corpus: PublishedCorpus, path: str, **params: str) -> requests.Response:
    response = requests.get(corpus.base + path, params=params, timeout=60)
    assert response.status_code == 200, (path, response.text[:300])
    return response


@pytest.mark.parametrize("item", EXPLICIT, ids=lambda i: i.name)
def test_after_the_proposed_treatments_no_personal_value_is_published(
    item: CorpusTable, published_corpus: PublishedCorpus
) -> None:
    name, corpus = slug(item), published_corpus
    dataset = f"/api/datasets/ecully-{name}"
    downloads = {fmt: get(corpus, f"{dataset}/download/{fmt}") for fmt in ("csv", "json", "xlsx")}
    frame = pd.read_parquet(io.BytesIO(get(corpus, f"{dataset}/download/parquet").content))
    settings = corpus.deployment.settings
    database = (settings.data_dir / "catalog.db").read_bytes().decode("utf-8", "ignore")
    artefacts = {
        "csv": downloads["csv"].text,
        "json": downloads["json"].text,
        "xlsx": xlsx_text(downloads["xlsx"].content),
        "parquet": frame.to_csv(),
        "rows": get(corpus, f"{dataset}/rows", _taille="1000").text,
        "fiche, page, DCAT": "\n".join(
            get(corpus, path).text
            for path in (dataset, f"/jeux-de-donnees/ecully-{name}", f"{dataset}/dcat.ttl")
        ),
        "rapport de refus": corpus.refusals[name],
        "catalogue (base)": database,
        "journaux": "\n".join(corpus.logs.lines),
    }
    if item.name not in UNDECIDABLE:
        values = personal_strings(item)
        found = {label: leaks(values, text) for label, text in artefacts.items()}
        assert {label: found for label, found in found.items() if found} == {}
        assert home_positions(item) & published_positions(frame) == set()


def test_a_personal_map_leaves_no_plate_nor_home_in_the_ogc_services(
    published_corpus: PublishedCorpus,
) -> None:
    corpus, layer = published_corpus, "ecully-stationnement-carte"
    features = get(corpus, f"/ogc/collections/{layer}/items", f="json", limit="1000").json()
    points = [f["geometry"]["coordinates"] for f in features["features"]]
    assert len(points) == MAPPED.table.num_rows
    wfs = get(corpus, "/wfs", SERVICE="WFS", VERSION="2.0.0", REQUEST="GetFeature",
              TYPENAMES=layer, OUTPUTFORMAT="application/json; subtype=geojson")  # fmt: skip
    assert len(wfs.json()["features"]) == MAPPED.table.num_rows
    dataset = f"/api/datasets/{layer}/download"
    downloads = {fmt: get(corpus, f"{dataset}/{fmt}").text for fmt in ("geojson", "kml", "csv")}
    package = gpd.read_file(io.BytesIO(get(corpus, f"{dataset}/gpkg").content))
    x, y = points[0]
    infos = [
        get(corpus, "/wms", SERVICE="WMS", VERSION="1.3.0", REQUEST="GetFeatureInfo",
            LAYERS=layer, QUERY_LAYERS=layer, CRS="CRS:84", STYLES="", FORMAT="image/png",
            BBOX=f"{x - 0.001},{y - 0.001},{x + 0.001},{y + 0.001}", WIDTH="101",
            HEIGHT="101", I="50", J="50", INFO_FORMAT=fmt, FEATURE_COUNT="10").text
        for fmt in ("text/plain", "application/vnd.ogc.gml")
    ]  # fmt: skip
    assert "immatriculation" not in infos[0] and "statut" in infos[0]
    answers = {"OGC API": json.dumps(features), "WFS": wfs.text, "WMS": "\n".join(infos)}
    answers |= downloads | {"gpkg": package.to_csv()}
    values = personal_strings(MAPPED)
    found = {name: leaks(values, text) for name, text in answers.items()}
    assert {name: found for name, found in found.items() if found} == {}
    published = {(round(lat, 5), round(lon, 5)) for lon, lat in points}
    assert home_positions(MAPPED) & published == set()


def home_positions(item: CorpusTable) -> set[tuple[float, float]]:
    columns = [c for c, kind in item.expected.items() if kind == "coordonnees_domicile"]
    if len(columns) != 2:
        return set()
    pairs = zip(*(item.table.column(c).to_pylist() for c in columns), strict=True)
    return {(round(a, 5), round(b, 5)) for a, b in pairs if a is not None and b is not None}


def published_positions(frame: pd.DataFrame) -> set[tuple[float, float]]:
    if not {"latitude", "longitude"} <= set(frame.columns):
        return set()
    pairs = zip(frame["latitude"], frame["longitude"], strict=True)
    return {(round(a, 5), round(b, 5)) for a, b in pairs if pd.notna(a) and pd.notna(b)}


# --- a personal value far down a long file (issue #20: the scan reads label columns on their
# distinct values, and long columns' names on their first distinct values) --------------------


def _long_file(late_row: int, late_cells: str, rows: int = 12_000) -> str:
    """`id;etat;quantite` rows of labels and small counts, with one row replaced late."""
    lines = ["id;etat;quantite"]
    lines += [f"{i};{'RAS' if i % 3 else 'conforme'};{i % 50}" for i in range(1, rows + 1)]
    lines[late_row] = f"{late_row};{late_cells}"
    return "\r\n".join(lines) + "\r\n"


def test_an_email_late_in_a_column_of_labels_is_still_found(submit, dataset_folder):
    # The first 10,000 rows hold two labels: the column is read on its distinct values,
    # which must still include the one e-mail written at row 11,900.
    data = dataset_folder("l.csv", _long_file(11_900, "jeanne.martin@gmail.com;3"), name="l")
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    found = [(p.rule, p.column) for p in outcome.report.problems]
    assert ("donnee-personnelle-non-traitee", "etat") in found
    assert "Adresses électroniques détecté(e)s dans 1 valeur(s)" in outcome.summary()


def test_a_mobile_number_late_in_a_column_of_numbers_is_still_found(submit, dataset_folder):
    # A spreadsheet typed it as a number and dropped its leading 0, 11,000 rows down.
    data = dataset_folder("n.csv", _long_file(11_000, "RAS;612345678"), name="n")
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    found = [(p.rule, p.column) for p in outcome.report.problems]
    assert found == [("donnee-personnelle-non-traitee", "quantite")]


def test_the_same_long_file_without_them_is_published(submit, dataset_folder):
    data = dataset_folder("c.csv", _long_file(11_000, "RAS;7"), name="c")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
