"""Files and metadata that would make a library reach out or blow up (issue #16).

An attacker HTTP server on loopback records every request: a submitted file must never
make any process call it. A YAML "billion laughs" is refused before anything expands.
"""

from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import zipfile
from collections.abc import Iterator
from pathlib import Path

import geopandas as gpd
import openpyxl
import pyogrio
import pytest
from attacker import Attacker, attacker_server

from core.deposit_checks import Received, check_deposit
from core.problems import Problem, SubmissionRejected
from core.safe_yaml import MAX_PRODUCER_YAML_BYTES
from core.settings import PROJECT_ROOT
from pipelines.read.stage import read_source

# 356 bytes that PyYAML's safe_load expands to 9⁹ (387 million) strings.
YAML_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    """The loopback server of the egress tests, which records every request it gets."""
    with attacker_server() as server:
        yield server


def refusal(outcome) -> list[tuple[str, str]]:
    assert outcome.status == "refusee", outcome.summary()
    return [(p.stage, p.rule) for p in outcome.report.problems]


# --- YAML -------------------------------------------------------------------------------------


def test_a_yaml_bomb_is_refused_before_it_expands(submit, dataset_folder, store) -> None:
    data = dataset_folder("arbres.csv", "id;nom\n1;Tilleul\n", extra_metadata=YAML_BOMB)
    outcome = submit(data, data.parent / "metadata.yaml")
    (problem,) = outcome.report.problems
    assert (problem.stage, problem.rule) == ("metadonnees", "yaml-refuse")
    assert "Les alias YAML (« *a ») (ligne 11) ne sont pas acceptés" in problem.message
    assert store.list_datasets() == []


def upload_refusal(metadata: bytes) -> list[Problem]:
    """What the upload API answers (422) about a metadata.yaml (core.deposit_checks)."""
    received = Received("ecully", metadata, None, "arbres.csv", b"id;nom\n1;Tilleul\n", 17, None)
    verdict = check_deposit(received, PROJECT_ROOT / "licenses")
    assert not verdict.report.valid
    return verdict.report.problems


def test_the_upload_api_refuses_the_bomb_with_a_short_reply() -> None:
    (bomb,) = upload_refusal(YAML_BOMB.encode())
    assert bomb.rule == "yaml-refuse" and len(bomb.message) < 200
    (too_big,) = upload_refusal(b"titre: " + b"x" * MAX_PRODUCER_YAML_BYTES)
    assert "256 Kio au plus" in too_big.message


def test_metadata_fields_are_bounded_and_errors_quote_no_long_input(
    submit, dataset_folder
) -> None:
    long_title = "titre: " + "Arbres " * 2_000 + "\n"
    data = dataset_folder("arbres.csv", "id;nom\n1;Tilleul\n", extra_metadata=long_title)
    (data.parent / "metadata.yaml").write_text(
        (data.parent / "metadata.yaml").read_text().replace("titre: Arbres d'alignement\n", ""),
        encoding="utf-8",
    )
    outcome = submit(data, data.parent / "metadata.yaml")
    (problem,) = outcome.report.problems
    assert (problem.rule, problem.column) == ("valeur-invalide", "titre")  # as written
    assert "250 au plus" in problem.message and len(problem.message) < 300


# --- files that name a URL --------------------------------------------------------------------


def test_a_geojson_crs_link_is_refused_and_never_fetched(
    submit, dataset_folder, attacker
) -> None:
    base = attacker.url("")
    collection = {
        "type": "FeatureCollection",
        "crs": {"type": "link", "properties": {"href": f"{base}/crs", "type": "proj4"}},
        "features": [
            {
                "type": "Feature",
                "properties": {"id": 1},
                "geometry": {"type": "Point", "coordinates": [4.83, 45.76]},
            }
        ],
    }
    data = dataset_folder("bancs.geojson", json.dumps(collection), name="bancs")
    assert refusal(submit(data, data.parent / "metadata.yaml")) == [
        ("lecture", "crs-lien-refuse")
    ]
    assert attacker.received == []


def test_a_kml_network_link_is_refused_and_never_fetched(
    submit, dataset_folder, attacker
) -> None:
    base = attacker.url("")
    kml = f"""<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2"><Document>
<NetworkLink><name>suite</name><Link><href>{base}/suite.kml</href></Link></NetworkLink>
<Placemark><name>banc</name><ExtendedData><Data name="id"><value>1</value></Data>
</ExtendedData><Point><coordinates>4.83,45.76</coordinates></Point></Placemark>
</Document></kml>"""
    data = dataset_folder("bancs.kml", kml, name="bancs")
    assert refusal(submit(data, data.parent / "metadata.yaml")) == [
        ("lecture", "kml-lien-reseau")
    ]
    assert attacker.received == []


# --- files with active content ----------------------------------------------------------------


def geopackage(tmp_path: Path, sql: str) -> bytes:
    frame = gpd.GeoDataFrame(
        {"id": [1, 2]}, geometry=gpd.points_from_xy([4.83, 4.84], [45.76, 45.77]), crs=4326
    )
    path = tmp_path / "bancs.gpkg"
    pyogrio.write_dataframe(frame, path, layer="bancs")
    with sqlite3.connect(path) as connection:
        connection.execute(sql)
    return path.read_bytes()


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        (
            "CREATE TRIGGER espion AFTER UPDATE ON bancs BEGIN DELETE FROM bancs; END",
            "gpkg-declencheur-refuse",
        ),
        ("CREATE VIEW cachee AS SELECT * FROM bancs", "gpkg-vue-refusee"),
    ],
    ids=["declencheur", "vue-cachee"],
)
def test_geopackages_with_code_are_refused(
    sql: str, rule: str, submit, dataset_folder, tmp_path
) -> None:
    data = dataset_folder("bancs.gpkg", geopackage(tmp_path, sql), name="bancs")
    assert refusal(submit(data, data.parent / "metadata.yaml")) == [("lecture", rule)]


def test_a_plain_geopackage_with_its_spatial_index_triggers_publishes(
    submit, dataset_folder, tmp_path
) -> None:
    data = dataset_folder("bancs.gpkg", geopackage(tmp_path, "SELECT 1"), name="bancs")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"


EXTERNAL_LINK = (
    b'<?xml version="1.0" encoding="UTF-8"?><externalLink xmlns='
    b'"http://schemas.openxmlformats.org/spreadsheetml/2006/main"/>'
)


def workbook(extra_member: str) -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["id", "nom"])
    book.active.append([1, "Tilleul"])
    buffer = io.BytesIO()
    book.save(buffer)
    with zipfile.ZipFile(buffer, "a") as archive:
        content = EXTERNAL_LINK if extra_member.endswith(".xml") else b"\xd0\xcf\x11\xe0" * 16
        archive.writestr(extra_member, content)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("member", "rule"),
    [
        ("xl/vbaProject.bin", "xlsx-macros"),
        ("xl/externalLinks/externalLink1.xml", "xlsx-liens-externes"),
    ],
    ids=["macros", "liens-externes"],
)
def test_workbooks_with_macros_or_external_links_are_refused(
    member: str, rule: str, submit, dataset_folder
) -> None:
    data = dataset_folder("arbres.xlsx", workbook(member))
    assert refusal(submit(data, data.parent / "metadata.yaml")) == [("lecture", rule)]


def test_a_zip_polyglot_is_refused(submit, dataset_folder) -> None:
    """Bytes of another format before the archive: zip readers find it from its end."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("bancs.shp", b"\x00\x00\x27\x0a" + b"\x00" * 96)
    polyglot = b'{"type": "FeatureCollection", "features": []}\n' + archive.getvalue()
    data = dataset_folder("bancs.zip", polyglot, name="bancs")
    assert refusal(submit(data, data.parent / "metadata.yaml")) == [
        ("lecture", "zip-polyglotte")
    ]


@pytest.mark.parametrize(
    "line",
    [
        "date_mise_a_jour: 2026-90-01",  # found by atheris (bench/fuzz_readers.py)
        "date_mise_a_jour: !!timestamp 2026-;0-01T10:00:00Z",
        "identifiant: " + "1" * 5_000,
        "theme: " + "[" * 400 + "]" * 400,
    ],
    ids=["date-impossible", "timestamp-casse", "nombre-geant", "imbrication"],
)
def test_values_pyyaml_cannot_build_are_refused_in_french(line: str) -> None:
    (problem,) = upload_refusal(f"titre: Arbres\n{line}\n".encode())
    assert problem.rule == "yaml-invalide"
    assert "n'est pas un YAML lisible" in problem.message


def test_a_crs_link_however_spelt_reaches_no_one(attacker, tmp_path) -> None:
    """GDAL follows "\\u006cink" too: its HTTP client is closed while it reads."""
    base = attacker.url("")
    text = (
        '{"type": "FeatureCollection", "crs": {"type": "\\\\u006cink", "properties": '
        f'{{"href": "{base}/crs", "type": "proj4"}}}}, "features": [{{"type": "Feature", '
        '"properties": {"id": 1}, "geometry": {"type": "Point", "coordinates": [4.83, 45.76]}}]}'
    )
    path = tmp_path / "lien.geojson"
    path.write_text(text)
    with contextlib.suppress(SubmissionRejected):
        read_source(path)
    assert attacker.received == []
