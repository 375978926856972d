"""Property-based tests of every reader (hypothesis): whatever the bytes, a reader returns a
table or refuses with a French rule it anticipated, never the catch-all `fichier-illisible`
nor another exception; tables written by ordinary tools read back to the same cells.

Examples are bounded (and derandomised, so that CI sees the same ones) to keep the file
well under a minute on two cores; OPENDATA_PROPERTY_EXAMPLES=N runs N random ones per test.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import geopandas as gpd
import openpyxl
import pytest
from hostile_corpus import KML_POINTS, LAMBERT93, gml, gml_member, kml, placemark
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point

from core.problems import SubmissionRejected
from pipelines.read.stage import read_source
from pipelines.read.table import SourceTable

# OPENDATA_PROPERTY_EXAMPLES=N explores N random examples per test instead (a longer run).
DEEPER = int(os.environ.get("OPENDATA_PROPERTY_EXAMPLES", "0"))
BOUNDED = settings(
    max_examples=DEEPER or 60,
    deadline=None,
    derandomize=not DEEPER,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(BOUNDED, max_examples=DEEPER or 25)

# Column names and cells: printable text without the delimiters and quotes (those are the
# dialect's business, checked on arbitrary bytes below), nor the bytes « Ã Â â » whose
# Windows-1252 pairs look like UTF-8 accents (the mixed-encoding rule).
NAME_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-éèàçôÉ"
CELL_ALPHABET = NAME_ALPHABET + " .:/()'+@#%&*=!?ëïüœ€«»°"
DELIMITERS = [";", ",", "\t", "|"]


@contextmanager
def written(filename: str, content: bytes) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / filename
        path.write_bytes(content)
        yield path


def read_or_refuse(path: Path, declared_crs: int | None = None) -> SourceTable | None:
    """The table, or None for an anticipated refusal; anything else fails the property."""
    try:
        return read_source(path, declared_crs)
    except SubmissionRejected as refusal:
        rules = {problem.rule for problem in refusal.report.problems}
        assert "fichier-illisible" not in rules, refusal.report.to_text()
        assert all(problem.message for problem in refusal.report.problems)
        return None


def expected_text(value: str | None) -> str | None:
    if value is None:
        return None
    return value.strip() or None


names = st.lists(
    st.text(NAME_ALPHABET, min_size=1, max_size=12),
    min_size=2,
    max_size=5,
    unique_by=str.casefold,
)


@st.composite
def tables(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    header = draw(names)
    cell = st.text(CELL_ALPHABET, max_size=15)
    rows = draw(
        st.lists(st.lists(cell, min_size=len(header), max_size=len(header)), min_size=1, max_size=8)
    )
    return header, rows


# --- CSV -------------------------------------------------------------------------------------


@BOUNDED
@given(
    tables(),
    st.sampled_from(DELIMITERS),
    st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]),
    st.sampled_from(["\n", "\r\n"]),
)
def test_csv_tables_round_trip_in_every_dialect(table, delimiter, encoding, newline) -> None:
    header, rows = table
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=newline).writerows([header, *rows])
    with written("a.csv", buffer.getvalue().encode(encoding)) as path:
        source = read_source(path)
    assert source.table.column_names == header
    assert source.dialect is not None and source.dialect.delimiter == delimiter
    assert source.table.to_pylist() == [
        {name: expected_text(value) for name, value in zip(header, row, strict=True)}
        for row in rows
    ]


@BOUNDED
@given(st.binary(max_size=3000))
def test_csv_any_bytes_read_or_are_refused(content: bytes) -> None:
    with written("a.csv", content) as path:
        read_or_refuse(path)


TOKENS = st.sampled_from(
    [
        '"',
        '""',
        ";",
        ",",
        "\t",
        "|",
        "\n",
        "\r",
        "\r\n",
        " ",
        "a",
        "é",
        "1,5",
        "\x00",
        "\x01",
        "\ufeff",
        "=SUM(A1)",
        "<html>",
        "{",
        "\u2028",
        "x" * 300,
    ]
)


@BOUNDED
@given(st.lists(TOKENS, max_size=80), st.sampled_from(["utf-8", "cp1252", "utf-16"]))
def test_csv_quote_and_delimiter_soup_reads_or_is_refused(tokens, encoding) -> None:
    text = "id;nom\n" + "".join(tokens)
    with written("a.csv", text.encode(encoding, errors="replace")) as path:
        source = read_or_refuse(path)
    if source is not None:
        assert source.table.num_columns >= 1
        assert len(source.row_number(range(source.table.num_rows))) == source.table.num_rows


# --- XLSX ------------------------------------------------------------------------------------

xlsx_cells = st.one_of(
    st.none(),
    # openpyxl writes a text starting with « = » as a formula, without a cached value
    st.text(CELL_ALPHABET, max_size=15).filter(lambda text: not text.startswith("=")),
    st.integers(-(10**9), 10**9),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda f: round(f, 3)),
    st.booleans(),
    st.dates(date(1900, 3, 1), date(2100, 1, 1)),
)


def xlsx_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return expected_text(str(value))


@FEW
@given(names, st.data())
def test_xlsx_tables_round_trip(header: list[str], data: st.DataObject) -> None:
    row = st.lists(xlsx_cells, min_size=len(header), max_size=len(header))
    rows = data.draw(st.lists(row, min_size=1, max_size=6))
    rows = [r for r in rows if any(xlsx_text(v) is not None for v in r)] or [["x"] * len(header)]
    book = openpyxl.Workbook()
    for values in [header, *rows]:
        book.active.append(values)
    buffer = io.BytesIO()
    book.save(buffer)
    with written("a.xlsx", buffer.getvalue()) as path:
        source = read_source(path)
    assert source.table.column_names == header
    assert source.table.to_pylist() == [
        {name: xlsx_text(value) for name, value in zip(header, values, strict=True)}
        for values in rows
    ]


def workbook_bytes() -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["id", "nom", "date"])
    book.active.append([1, "Bron", date(2026, 1, 2)])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def mutate(content: bytes, data: st.DataObject, edits: int = 8) -> bytes:
    """Overwrite, insert or delete a few bytes, or cut the file."""
    out = bytearray(content)
    for _ in range(data.draw(st.integers(1, edits))):
        if not out:
            break
        position = data.draw(st.integers(0, len(out) - 1))
        action = data.draw(st.sampled_from(["set", "insert", "delete", "cut"]))
        byte = data.draw(st.integers(0, 255))
        if action == "set":
            out[position] = byte
        elif action == "insert":
            out.insert(position, byte)
        elif action == "delete":
            del out[position]
        else:
            del out[position:]
    return bytes(out)


def rezip_mutated(archive_bytes: bytes, data: st.DataObject) -> bytes:
    """The same archive with one member's content mutated (the zip itself stays valid, so
    the member reaches its parser)."""
    with zipfile.ZipFile(io.BytesIO(archive_bytes)) as archive:
        members = [(info.filename, archive.read(info)) for info in archive.infolist()]
    index = data.draw(st.integers(0, len(members) - 1))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for number, (name, content) in enumerate(members):
            archive.writestr(name, mutate(content, data) if number == index else content)
    return buffer.getvalue()


XLSX = workbook_bytes()


@BOUNDED
@given(st.data())
def test_xlsx_damaged_bytes_read_or_are_refused(data: st.DataObject) -> None:
    content = rezip_mutated(XLSX, data) if data.draw(st.booleans()) else mutate(XLSX, data)
    with written("a.xlsx", content) as path:
        read_or_refuse(path)


# --- GeoJSON ---------------------------------------------------------------------------------

lyon_points = st.tuples(
    st.floats(4.70, 5.05).map(lambda v: round(v, 6)),
    st.floats(45.60, 45.90).map(lambda v: round(v, 6)),
)


@BOUNDED
@given(names, st.data())
def test_geojson_features_round_trip(header: list[str], data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 6))
    cells = st.text(NAME_ALPHABET, min_size=1, max_size=10)
    features = [
        {
            "type": "Feature",
            "properties": {name: data.draw(cells) for name in header},
            "geometry": {"type": "Point", "coordinates": list(data.draw(lyon_points))},
        }
        for _ in range(count)
    ]
    if any(name.casefold() in {"fid", "geom", "geometry"} for name in header):
        return
    content = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    with written("a.geojson", content) as path:
        source = read_source(path)
    assert source.crs == 4326
    assert source.table.to_pylist() == [
        {k: str(v) for k, v in f["properties"].items()} for f in features
    ]  # noqa: E501
    coordinates = [(round(p.x, 6), round(p.y, 6)) for p in source.geometry]
    assert coordinates == [tuple(f["geometry"]["coordinates"]) for f in features]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)
geometries = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["Point", "LineString", "Polygon", "MultiPoint", "GeometryCollection", "Banane"]
        ),  # noqa: E501
        "coordinates": json_values,
    }
)


@BOUNDED
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "type": st.just("Feature"),
                "properties": json_values,
                "geometry": st.none() | geometries | json_values,
            }
        ),
        max_size=5,
    )
)
def test_geojson_any_structure_reads_or_is_refused(features: list[dict]) -> None:
    content = json.dumps({"type": "FeatureCollection", "features": features}).encode()
    with written("a.geojson", content) as path:
        read_or_refuse(path)


@BOUNDED
@given(st.binary(max_size=600).map(lambda b: b"{" + b))
def test_geojson_any_bytes_read_or_are_refused(content: bytes) -> None:
    with written("a.geojson", content) as path:
        read_or_refuse(path)


# --- zipped Shapefile and GeoPackage ---------------------------------------------------------


def frame(points: list[tuple[float, float]], labels: list[str]) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"ident": list(range(1, len(points) + 1)), "libelle": labels},
        geometry=[Point(p) for p in points],
        crs="EPSG:4326",
    )


def zipped_shapefile(data: gpd.GeoDataFrame) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        data.to_file(Path(folder) / "bancs.shp")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for part in sorted(Path(folder).iterdir()):
                archive.write(part, part.name)
        return buffer.getvalue()


def geopackage(data: gpd.GeoDataFrame) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.gpkg"
        data.to_file(path, driver="GPKG", layer="bancs")
        return path.read_bytes()


labels = st.text(NAME_ALPHABET, min_size=1, max_size=10)


@pytest.mark.parametrize(
    ("filename", "write"), [("a.zip", zipped_shapefile), ("a.gpkg", geopackage)]
)
@FEW
@given(st.lists(st.tuples(lyon_points, labels), min_size=1, max_size=5))
def test_shapefile_and_geopackage_round_trip(filename, write, rows) -> None:
    points = [p for p, _ in rows]
    data = frame(points, [label for _, label in rows])
    with written(filename, write(data)) as path:
        source = read_source(path)
    assert source.table.column("libelle").to_pylist() == [label for _, label in rows]
    assert source.table.column("ident").to_pylist() == [str(i) for i in range(1, len(rows) + 1)]
    assert [(round(p.x, 6), round(p.y, 6)) for p in source.geometry] == points


SHAPEFILE = zipped_shapefile(frame([(4.8, 45.76), (4.85, 45.7)], ["a", "b"]))
GEOPACKAGE = geopackage(frame([(4.8, 45.76), (4.85, 45.7)], ["a", "b"]))


@BOUNDED
@given(st.data())
def test_shapefile_damaged_bytes_read_or_are_refused(data: st.DataObject) -> None:
    damaged = (
        rezip_mutated(SHAPEFILE, data) if data.draw(st.booleans()) else mutate(SHAPEFILE, data)
    )
    with written("a.zip", damaged) as path:
        read_or_refuse(path)


@BOUNDED
@given(st.data())
def test_geopackage_damaged_bytes_read_or_are_refused(data: st.DataObject) -> None:
    # Damage past the SQLite header too, where pages, schema and geometries are.
    content = bytearray(GEOPACKAGE)
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1)))
    for _ in range(data.draw(st.integers(1, 30))):
        content[rng.randrange(100, len(content))] = rng.randrange(256)
    content = mutate(bytes(content), data, edits=2) if data.draw(st.booleans()) else content
    with written("a.gpkg", bytes(content)) as path:
        read_or_refuse(path)


# --- KML and GML -----------------------------------------------------------------------------


@BOUNDED
@given(st.lists(st.tuples(labels, lyon_points), min_size=1, max_size=6))
def test_kml_placemarks_round_trip(rows) -> None:
    body = "".join(placemark(name, f"{x},{y}") for name, (x, y) in rows)
    with written("a.kml", kml(body)) as path:
        source = read_source(path)
    assert source.crs == 4326
    column = "Name" if "Name" in source.table.column_names else "name"
    assert source.table.column(column).to_pylist() == [name for name, _ in rows]
    assert [(round(p.x, 6), round(p.y, 6)) for p in source.geometry] == [p for _, p in rows]


@BOUNDED
@given(st.data())
def test_kml_and_gml_damaged_text_reads_or_is_refused(data: st.DataObject) -> None:
    l93 = "".join(gml_member(i, x, y) for i, (x, y) in enumerate(LAMBERT93, start=1))
    filename, document = data.draw(
        st.sampled_from([("a.kml", kml(KML_POINTS)), ("a.gml", gml(l93, srs=2154))])
    )
    snippets = st.sampled_from(
        [
            b"<",
            b">",
            b"&",
            b"&amp;",
            b"<!DOCTYPE x>",
            b"<!ENTITY a 'b'>",
            b"]]>",
            b"<![CDATA[",
            b"\x00",
            b"\xff",
            b"</Placemark>",
            b"<Point>",
            b"<coordinates>1e999,nan</coordinates>",
            b"<gml:Point><gml:coordinates>4,45</gml:coordinates></gml:Point>",
            b"\xc3(",
            b" ",
        ]
    )
    content = bytearray(document)
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(content)))
        content[position:position] = data.draw(snippets)
    with written(filename, bytes(content)) as path:
        read_or_refuse(path)


@BOUNDED
@given(
    st.lists(
        st.tuples(
            st.integers(1, 10**6), st.floats(800_000, 880_000), st.floats(6_490_000, 6_550_000)
        ),
        min_size=1,
        max_size=5,
        unique_by=lambda t: t[0],
    )
)  # noqa: E501
def test_gml_features_round_trip(rows) -> None:
    members = "".join(gml_member(fid, round(x, 2), round(y, 2)) for fid, x, y in rows)
    with written("a.gml", gml(members, srs=2154)) as path:
        source = read_source(path)
    assert source.crs == 2154
    assert source.table.column("id").to_pylist() == [str(fid) for fid, _, _ in rows]
    assert [(p.x, p.y) for p in source.geometry] == [(round(x, 2), round(y, 2)) for _, x, y in rows]
