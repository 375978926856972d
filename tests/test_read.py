"""Every accepted input dialect and format reads into the same text table."""

import zipfile
from datetime import date
from pathlib import Path

import geopandas as gpd
import openpyxl
import pytest
from shapely.geometry import Point

from core.problems import SubmissionRejected
from pipelines.read.stage import read_source

ROWS = [("1", "Érable sycomore", "12,5"), ("2", "Tilleul à petites feuilles", "8")]


def write_csv(path: Path, encoding: str, delimiter: str, decimal: str, newline: str = "\n"):
    lines = [delimiter.join(("id", "espece", "hauteur"))]
    for ident, name, height in ROWS:
        lines.append(delimiter.join((ident, name, height.replace(",", decimal))))
    data = newline.join(lines) + newline
    path.write_bytes(data.encode(encoding))


@pytest.mark.parametrize(
    ("encoding", "delimiter", "decimal", "newline"),
    [
        ("utf-8", ",", ".", "\n"),
        ("utf-8-sig", ";", ",", "\r\n"),
        ("cp1252", ";", ",", "\r\n"),
        ("latin-1", ";", ",", "\n"),
        ("utf-8", "\t", ".", "\n"),
        ("cp1252", "|", ".", "\r\n"),
    ],
)
def test_csv_dialects_read_the_same(tmp_path: Path, encoding, delimiter, decimal, newline):
    path = tmp_path / "arbres.csv"
    write_csv(path, encoding, delimiter, decimal, newline)
    source = read_source(path)
    assert source.table.column_names == ["id", "espece", "hauteur"]
    assert source.table.column("espece").to_pylist() == [r[1] for r in ROWS]
    assert source.dialect is not None
    assert source.dialect.delimiter == delimiter
    assert source.dialect.decimal_comma == (decimal == ",")
    assert source.dialect.encoding.replace("-sig", "") in {encoding.replace("-sig", ""), "cp1252"}


def test_windows_1252_specific_characters_survive(tmp_path: Path) -> None:
    path = tmp_path / "noms.csv"
    path.write_bytes("nom;prix\r\nŒuvre « Été »;5 €\r\n".encode("cp1252"))
    source = read_source(path)
    assert source.dialect.encoding == "cp1252"
    assert source.table.to_pylist() == [{"nom": "Œuvre « Été »", "prix": "5 €"}]


def test_quoted_values_with_separators_and_newlines(tmp_path: Path) -> None:
    path = tmp_path / "adresses.csv"
    path.write_text('id;adresse\n1;"12, rue de la Paix\nBâtiment B"\n2;"place ""Carnot"""\n')
    source = read_source(path)
    assert source.table.column("adresse").to_pylist() == [
        "12, rue de la Paix\nBâtiment B",
        'place "Carnot"',
    ]


def test_ragged_rows_are_reported_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "bancal.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n")
    source = read_source(path)
    rules = {(p.row, p.rule) for p in source.problems.problems}
    assert rules == {(3, "cellules-manquantes"), (4, "cellules-en-trop")}
    assert source.row_number([0, 1]).tolist() == [2, 5]


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        (b"", "fichier-vide"),
        (b"id;nom\r\n", "aucune-ligne"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "fichier-binaire"),
        (b"id;id\n1;2\n", "entete-duplique"),
    ],
)
def test_unreadable_csv_files_get_a_precise_error(tmp_path: Path, content: bytes, rule: str):
    path = tmp_path / "donnees.csv"
    path.write_bytes(content)
    with pytest.raises(SubmissionRejected) as caught:
        read_source(path)
    assert caught.value.report.problems[0].rule == rule


def test_unaccepted_format_lists_the_accepted_ones(tmp_path: Path) -> None:
    path = tmp_path / "donnees.ods"
    path.write_bytes(b"PK")
    with pytest.raises(SubmissionRejected) as caught:
        read_source(path)
    assert "CSV, XLSX, GeoJSON, Shapefile zippé (.zip), GeoPackage" in str(caught.value)


def test_xlsx_cells_become_text_with_iso_dates(tmp_path: Path) -> None:
    path = tmp_path / "subventions.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["annee", "association", "montant", "date_vote", "versee"])
    sheet.append([2026, "Les Amis de la Médiathèque", 1500.5, date(2026, 3, 12), True])
    sheet.append([2026, "Club de judo", 800.0, date(2026, 4, 2), False])
    book.save(path)
    source = read_source(path)
    assert source.table.to_pylist()[0] == {
        "annee": "2026",
        "association": "Les Amis de la Médiathèque",
        "montant": "1500.5",
        "date_vote": "2026-03-12",
        "versee": "true",
    }
    assert source.table.column("montant").to_pylist()[1] == "800"


def bench_points(crs: int) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(
        {"id_banc": [1, 2], "materiau": ["bois", "métal"]},
        geometry=[Point(4.777, 45.776), Point(4.780, 45.778)],
        crs="EPSG:4326",
    )
    return frame.to_crs(f"EPSG:{crs}")


def test_geojson_in_cc46_keeps_its_crs(tmp_path: Path) -> None:
    path = tmp_path / "bancs.geojson"
    bench_points(3946).to_file(path, driver="GeoJSON")
    source = read_source(path)
    assert source.crs == 3946 and source.is_geographic
    back = source.geometry.to_crs(4326)
    assert back.x.round(3).tolist() == [4.777, 4.78]
    assert source.table.column("materiau").to_pylist() == ["bois", "métal"]


def test_zipped_shapefile_in_lambert_93(tmp_path: Path) -> None:
    folder = tmp_path / "shp"
    folder.mkdir()
    bench_points(2154).to_file(folder / "bancs.shp")
    archive = tmp_path / "bancs.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for part in folder.iterdir():
            zipped.write(part, part.name)
    source = read_source(archive)
    assert source.crs == 2154 and source.table.num_rows == 2


@pytest.mark.parametrize("crs", [4326, 4171, 2154, 3946])
def test_geopackage_in_each_accepted_crs(tmp_path: Path, crs: int) -> None:
    path = tmp_path / "bancs.gpkg"
    bench_points(crs).to_file(path, driver="GPKG")
    source = read_source(path)
    assert source.crs == crs
    assert source.geometry.to_crs(4326).y.round(3).tolist() == [45.776, 45.778]


def test_crs_declared_in_metadata_must_match_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bancs.gpkg"
    bench_points(2154).to_file(path, driver="GPKG")
    with pytest.raises(SubmissionRejected) as caught:
        read_source(path, declared_crs=3946)
    assert "est en EPSG:2154 mais les métadonnées déclarent EPSG:3946" in str(caught.value)


def test_other_crs_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bancs.gpkg"
    bench_points(27572).to_file(path, driver="GPKG")
    with pytest.raises(SubmissionRejected) as caught:
        read_source(path)
    assert caught.value.report.problems[0].rule == "crs-non-accepte"


def test_zip_without_exactly_one_shapefile(tmp_path: Path) -> None:
    archive = tmp_path / "vide.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("lisezmoi.txt", "rien")
    with pytest.raises(SubmissionRejected) as caught:
        read_source(archive)
    assert "exactement un fichier .shp" in str(caught.value)


def test_xlsx_duplicate_or_missing_header_names_are_refused(tmp_path: Path) -> None:
    for header, rule in ((["nom", "nom"], "entete-duplique"), (["nom", None, "x"], "entete-vide")):
        path = tmp_path / "classeur.xlsx"
        book = openpyxl.Workbook()
        book.active.append(header)
        book.active.append(["a", "b", "c"][: len(header)])
        book.save(path)
        with pytest.raises(SubmissionRejected) as caught:
            read_source(path)
        assert caught.value.report.problems[0].rule == rule
