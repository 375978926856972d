"""One description per input format (core.input_formats), and everything agrees with it: a
file of every accepted extension is read by its format's reader, and what the upload API,
the drop folder and a source's `format:` accept is what the pipeline reads."""

import zipfile
from pathlib import Path

import geopandas as gpd
import openpyxl
import pytest
from fastapi import HTTPException
from shapely.geometry import Point

from catalog.web.routes.uploads import data_name
from core.inbox import data_files
from core.input_formats import DESCRIPTIONS, FORMAT_BY_NAME, INPUT_FORMATS, InputFormatDescription
from core.problems import SubmissionRejected
from pipelines.metadata import check_source
from pipelines.read.stage import read_source

NAMES = ["Érable sycomore", "Tilleul à petites feuilles"]
DRIVERS = {"geojson": "GeoJSON", "gpkg": "GPKG", "kml": "KML", "gml": "GML"}


def points() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"id_arbre": ["1", "2"], "espece": NAMES},
        geometry=[Point(4.83, 45.76), Point(4.85, 45.75)],
        crs="EPSG:4326",
    )


def write_example(description: InputFormatDescription, path: Path) -> None:
    """Two trees in the format of `description`, under `path` (whatever its extension)."""
    if description.name == "csv":
        path.write_text("id_arbre;espece\n1;" + NAMES[0] + "\n2;" + NAMES[1] + "\n")
    elif description.name == "xlsx":
        book = openpyxl.Workbook()
        book.active.append(["id_arbre", "espece"])
        for number, name in enumerate(NAMES, start=1):
            book.active.append([number, name])
        book.save(path)
    elif description.name == "shapefile":
        folder = path.parent / "couche"
        folder.mkdir()
        points().to_file(folder / "arbres.shp", engine="pyogrio")
        with zipfile.ZipFile(path, "w") as archive:
            for part in folder.iterdir():
                archive.write(part, part.name)
    else:
        folder = path.parent / "gdal"
        folder.mkdir()
        written = folder / f"arbres{description.usual_extension}"
        points().to_file(written, driver=DRIVERS[description.name], engine="pyogrio")
        written.rename(path)


CASES = [(d, extension) for d in DESCRIPTIONS for extension in d.extensions]


@pytest.mark.parametrize(
    ("description", "extension"), CASES, ids=[f"{d.name}{e}" for d, e in CASES]
)
def test_every_accepted_extension_is_read_by_its_format(
    tmp_path: Path, description: InputFormatDescription, extension: str
) -> None:
    path = tmp_path / f"arbres{extension}"
    write_example(description, path)
    source = read_source(path)
    assert source.source_format == description.name
    assert source.table.column("espece").to_pylist() == NAMES
    assert source.is_geographic == description.geographic
    if description.geographic:
        assert source.crs == 4326
        assert source.feature(1).startswith("objet n° 2")  # type: ignore[union-attr]


def test_an_unknown_extension_is_refused_with_the_accepted_formats(tmp_path: Path) -> None:
    path = tmp_path / "arbres.ods"
    path.write_bytes(b"PK\x03\x04")
    with pytest.raises(SubmissionRejected) as caught:
        read_source(path)
    (problem,) = caught.value.report.problems
    assert problem.rule == "format-non-accepte"
    assert "Formats acceptés : CSV, XLSX, GeoJSON, Shapefile zippé (.zip)" in problem.message
    assert all(d.label in problem.message for d in DESCRIPTIONS)


def test_uploads_and_drop_folders_take_the_files_the_pipeline_reads(tmp_path: Path) -> None:
    for description in DESCRIPTIONS:
        for extension in description.extensions:
            folder = tmp_path / f"{description.name}{extension}"
            folder.mkdir()
            name = data_name(f"Arbres remarquables{extension.upper()}")
            assert name == f"Arbres-remarquables{extension}"
            for other in (name, "metadata.yaml", "rapport.txt", "rapport.json", "schema.json"):
                (folder / other).write_text("")
            assert data_files(folder) == [folder / name]
    with pytest.raises(HTTPException) as caught:
        data_name("arbres.xls")
    assert caught.value.status_code == 415
    assert all(e in caught.value.detail for d in DESCRIPTIONS for e in d.extensions)


def test_a_source_format_may_be_given_by_any_of_its_names() -> None:
    for name, fmt in FORMAT_BY_NAME.items():
        declared = {"type": "fichier", "url": "https://example.org/arbres", "format": name}
        source, problems = check_source(declared)
        assert problems == []
        assert source is not None and source["format"] == fmt in INPUT_FORMATS
    _, problems = check_source({"type": "fichier", "url": "https://example.org/a", "format": "ods"})
    assert problems == [
        "Format de source « ods » non accepté. Formats acceptés : CSV, XLSX, GeoJSON, "
        "Shapefile zippé (shapefile), GeoPackage (gpkg), KML, GML."
    ]
