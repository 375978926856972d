"""The files communes really send: tables with positions are maps, national schemas publish,
and a refusal tells everything at once.

Real inputs: the IRVE national schema and its own example (etalab/schema-irve, see
`tests/data/national_schemas/SOURCES.md`); real exports of `tests/data/real_corpus/`
(sources and licences in its `manifest.yaml`).
"""

from __future__ import annotations

import csv
import io
import json
import warnings
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest

from pipelines import personal
from pipelines.read.stage import read_source

NATIONAL = Path(__file__).parent / "data" / "national_schemas"
REAL_CORPUS = Path(__file__).parent / "data" / "real_corpus"
IRVE = NATIONAL / "etalab-schema-irve-statique" / "2.3.1"


def published_structure(store, slug: str) -> dict:
    return store.structure_versions(slug)[-1].structure


def published_features(store, slug: str, fmt: str = "geojson"):
    return pyogrio.read_dataframe(store.release_path(store.current_release(slug), fmt))


def test_the_irve_national_schema_with_its_geopoint_publishes_a_map(
    submit, dataset_folder, store
) -> None:
    data = dataset_folder(
        "irve.csv",
        (IRVE / "exemple-valide.csv").read_bytes(),
        name="bornes",
        schema=(IRVE / "schema.json").read_text(encoding="utf-8"),
    )
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "publiee", outcome.summary()
    structure = published_structure(store, outcome.dataset)
    assert structure["geometry_type"] == "Point" and structure["crs"] == 4326
    assert structure["geometry_columns"]["shape"] == "coordonneesXY"
    features = published_features(store, outcome.dataset)
    first = json.loads(features["coordonneesXY"].iloc[0])  # "[lon, lat]", as the schema says
    path = store.release_path(store.current_release(outcome.dataset), "geojson")
    geojson = json.loads(path.read_text(encoding="utf-8"))
    assert geojson["name"] == outcome.dataset  # the layer is named after the dataset
    assert isinstance(geojson["features"][0]["properties"]["coordonneesXY"], str)
    assert (features.geometry.iloc[0].x, features.geometry.iloc[0].y) == pytest.approx(first)


def test_lambert93_coordinates_are_recognised_and_kept_in_their_projection(
    submit, dataset_folder, store
) -> None:
    """A real APUR export (X/Y in metres, no CRS declared anywhere): a map in EPSG:2154."""
    content = (REAL_CORPUS / "apur_paris_commerces_non_alimentaires.csv").read_bytes()
    data = dataset_folder("commerces.csv", content, name="commerces")
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "publiee", outcome.summary()
    assert published_structure(store, outcome.dataset)["crs"] == 2154
    gpkg = published_features(store, outcome.dataset, "gpkg")
    assert gpkg.crs.to_epsg() == 2154
    assert (gpkg.geometry.x == gpkg["X"]).all() and (gpkg.geometry.y == gpkg["Y"]).all()


DEGREES = "nom;latitude;longitude\nGymnase;45,7686;4,7883\nStade;45,7705;4,7785\n"


def test_a_declared_crs_the_coordinates_contradict_is_refused_not_dropped(
    submit, dataset_folder
) -> None:
    data = dataset_folder("sport.csv", DEGREES, extra_metadata="systeme_coordonnees: 2154\n")
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    (problem,) = outcome.report.problems
    assert problem.rule == "crs-degres-declares-en-metres"
    assert "déclaré en EPSG:2154 (RGF93 v1 / Lambert-93)" in problem.message


def test_swapped_latitude_and_longitude_are_refused(submit, dataset_folder) -> None:
    swapped = "nom;latitude;longitude\nGymnase;4,7883;45,7686\nStade;4,7785;45,7705\n"
    data = dataset_folder("sport.csv", swapped)
    outcome = submit(data, data.parent / "metadata.yaml")
    assert [p.rule for p in outcome.report.problems] == ["coordonnees-inversees"]


def test_declared_position_columns_with_any_name_make_the_map(
    submit, dataset_folder, store
) -> None:
    table = "nom;E93;N93\nGymnase;838000;6520000\nStade;839000;6521500\n"
    declared = "colonnes_geographiques: {x: E93, y: N93}\nsysteme_coordonnees: EPSG:2154\n"
    data = dataset_folder("sport.csv", table, extra_metadata=declared)
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "publiee", outcome.summary()
    structure = published_structure(store, outcome.dataset)
    assert structure["geometry_columns"] == {"x": "E93", "y": "N93", "kind": "xy"}
    missing = "colonnes_geographiques: {x: E, y: N93}\n"
    data = dataset_folder("sport.csv", table, name="autre", extra_metadata=missing)
    refused = submit(data, data.parent / "metadata.yaml")
    assert [(p.rule, p.column) for p in refused.report.problems] == [
        ("colonne-geographique-absente", "E")
    ]


def test_a_refusal_reports_metadata_licence_and_data_problems_in_one_pass(
    submit, dataset_folder, store
) -> None:
    table = "nom;telephone;capacite\nGymnase;06 12 34 56 78;300\nStade;07 11 22 33 44;deux\n"
    data = dataset_folder(
        "sport.csv",
        table,
        licence="cc-by-nc-4.0",
        extra_metadata="frequense: mensuelle\nschema: schema.json\n",
    )
    fields = [{"name": "nom"}, {"name": "telephone"}, {"name": "capacite", "type": "integer"}]
    (data.parent / "schema.json").write_text(json.dumps({"fields": fields}), encoding="utf-8")
    outcome = submit(data, data.parent / "metadata.yaml")
    found = {(p.stage, p.rule, p.row, p.column) for p in outcome.report.problems}
    assert found == {
        ("metadonnees", "cle-inconnue", None, "frequense"),
        ("licence", "licence-non-acceptee", None, "licence"),
        ("structure", "type", 3, "capacite"),
        ("anonymisation", "donnee-personnelle-non-traitee", None, "telephone"),
    }
    recorded = store.submissions()[0].report
    assert {p["etape"] for p in recorded["problemes"]} == {
        "metadonnees",
        "licence",
        "structure",
        "anonymisation",
    }


def doubly_encoded(text: str) -> str:
    """What a spreadsheet makes of UTF-8 read as Windows-1252 and saved again as UTF-8."""
    return text.encode("utf-8").decode("cp1252", errors="ignore")


def test_doubly_encoded_text_is_repaired_counted_and_published_as_the_original(
    submit, dataset_folder, store
) -> None:
    """A real Vélo'v export whose every other line went through the double encoding."""
    original = (REAL_CORPUS / "grandlyon_velov_stations.csv").read_text(encoding="utf-8-sig")
    lines = original.splitlines()
    damaged = [doubly_encoded(line) if n % 2 else line for n, line in enumerate(lines)]
    assert damaged != lines and "Ã©" in "\n".join(damaged)
    clean = dataset_folder("velov.csv", original, name="velov")
    reference = submit(clean, clean.parent / "metadata.yaml")
    data = dataset_folder("velov.csv", "\n".join(damaged) + "\n", name="velov-abime")
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "publiee", outcome.summary()
    repaired = {r.column: r.count for r in outcome.report.repairs}
    expected = {}
    columns = zip(*(_cells(line) for line in lines[1:]), strict=True)
    for column, values in zip(lines[0].split(","), columns, strict=True):
        changed = sum(1 for n, v in enumerate(values, 1) if n % 2 and doubly_encoded(v) != v)
        if changed:
            expected[column] = changed
    assert repaired == expected and "nom" in repaired
    assert "encodée(s) deux fois" in outcome.report.to_text()
    published = [
        store.release_path(store.current_release(o.dataset), "csv").read_bytes()
        for o in (reference, outcome)
    ]
    assert published[0] == published[1]


def _cells(line: str) -> list[str]:
    return next(csv.reader([line]))


def test_text_ftfy_cannot_restore_is_refused_with_its_row(submit, dataset_folder) -> None:
    table = "id;nom\n1;Gymnase\n2;CollÃ¨ge Ã\n3;SÃO PAULO\n"  # a cut sequence; real Portuguese
    data = dataset_folder("sport.csv", table)
    outcome = submit(data, data.parent / "metadata.yaml")
    assert [(p.rule, p.row, p.column) for p in outcome.report.problems] == [
        ("encodage-casse", 3, "nom")
    ]


def test_a_geographic_file_names_its_features_not_lines(submit, dataset_folder) -> None:
    def feature(ident: int, rings: list) -> dict:
        geometry = {"type": "Polygon", "coordinates": rings}
        return {"type": "Feature", "properties": {"id_parc": ident}, "geometry": geometry}

    square = [[[4.77, 45.77], [4.78, 45.77], [4.78, 45.78], [4.77, 45.78], [4.77, 45.77]]]
    bowtie = [[[4.77, 45.77], [4.78, 45.78], [4.78, 45.77], [4.77, 45.78], [4.77, 45.77]]]
    features = [feature(12, square), feature(7, bowtie)]
    collection = {"type": "FeatureCollection", "features": features}
    data = dataset_folder("parcs.geojson", json.dumps(collection), name="parcs")
    outcome = submit(data, data.parent / "metadata.yaml")
    (problem,) = outcome.report.problems
    assert (problem.rule, problem.feature) == ("geometrie-invalide", "objet n° 2 (id_parc 7)")
    assert "objet n° 2 (id_parc 7), colonne « geometrie » : Géométrie invalide" in (
        outcome.report.to_text()
    )


def test_a_declared_crs_for_a_table_without_positions_is_not_dropped(
    submit, dataset_folder
) -> None:
    table = "nom;capacite\nGymnase;300\n"
    data = dataset_folder("sport.csv", table, extra_metadata="systeme_coordonnees: 2154\n")
    outcome = submit(data, data.parent / "metadata.yaml")
    assert [(p.rule, p.column) for p in outcome.report.problems] == [
        ("positions-introuvables", "systeme_coordonnees")
    ]


def test_a_utf8_shapefile_whose_field_names_gdal_cut_mid_letter_is_read(
    submit, dataset_folder, store, tmp_path
) -> None:
    """GDAL itself writes "Intitul\\xc3_1" for a second "Intitulé …" column (10 bytes)."""
    frame = gpd.GeoDataFrame(
        {"Intitulé gare": ["Perrache", "Part-Dieu"], "Intitulé fronton": ["Lyon P", "Lyon PD"]},
        geometry=gpd.points_from_xy([842000, 843500], [6519000, 6520000]),
        crs=2154,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # GDAL's "laundered field name"
        pyogrio.write_dataframe(frame, tmp_path / "gares.shp", encoding="UTF-8")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for part in tmp_path.glob("gares.*"):
            zipped.write(part, part.name)
    data = dataset_folder("gares.zip", archive.getvalue(), name="gares")
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "publiee", outcome.summary()
    columns = store.structure_versions(outcome.dataset)[-1].structure["schema"]["fields"]
    assert [c["name"] for c in columns] == ["Intitulé", "Intitul_1"]


def test_headers_a_shapefile_cut_to_ten_characters_read_as_written() -> None:
    """Paris's real film-shooting places, as a Shapefile names their columns: no person."""
    source = read_source(REAL_CORPUS / "paris_lieux_de_tournage.csv")
    cut = [name[:10] for name in source.table.column_names]  # "nom_realisateur" → "nom_realis"
    assert "nom_realis" in cut and "nom_tourna" in cut
    assert personal.detect(source.table.rename_columns(cut)) == []


def test_a_refused_map_from_columns_asks_to_treat_its_columns_not_a_geometry(
    submit, dataset_folder
) -> None:
    """The structure's refusal lists the personal columns as the anonymisation stage would:
    positions read from latitude/longitude are declared there, never as « geometry »."""
    people = [("Martin", "Jeanne", "34"), ("Bernard", "Paul", "x"), ("Dubois", "Marie", "51")]
    rows = ["nom;prenom;age;latitude;longitude"] + [
        f"{n};{p};{a};45.76{i}1;4.83{i}7" for i, (n, p, a) in enumerate(people)
    ]
    fields = [{"name": "nom"}, {"name": "prenom"}, {"name": "age", "type": "integer"}]
    fields += [{"name": "latitude", "type": "number"}, {"name": "longitude", "type": "number"}]
    data = dataset_folder("sig.csv", "\n".join(rows) + "\n", schema=json.dumps({"fields": fields}))
    outcome = submit(data, data.parent / "metadata.yaml")
    columns = {p.column for p in outcome.report.problems if p.stage == "anonymisation"}
    found = {(p.stage, p.rule, p.column) for p in outcome.report.problems}
    assert ("structure", "type", "age") in found
    assert {"latitude", "longitude"} <= columns and "geometry" not in columns
