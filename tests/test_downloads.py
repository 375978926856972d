"""Every format, in every offered CRS, with caching, ranges and the licence attached."""

import csv
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import unquote

import geopandas as gpd
import openpyxl
import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests
from defusedxml import ElementTree
from pyproj import Transformer
from shapely.geometry import Point

from conftest import deployment, running_catalog, write_submission

POINTS = [(4.777, 45.776), (4.780, 45.778)]
CSV = 'id;remarque\r\n1;=HYPERLINK("http://example.org")\r\n2;@SUM(A1)\r\n3;-bien\r\n'


def publish_bancs_and_remarques(folder: Path, publish: Callable[[Path], None]) -> None:
    """A map of benches (ODbL, GeoPackage in EPSG:3946) and a table of remarks."""
    frame = gpd.GeoDataFrame(
        {"id_banc": [1, 2], "materiau": ["bois", "métal"]},
        geometry=[Point(*p) for p in POINTS],
        crs="EPSG:4326",
    )
    source = folder / "bancs.gpkg"
    frame.to_crs("EPSG:3946").to_file(source, driver="GPKG")
    submissions = folder / "submissions"
    publish(
        write_submission(
            submissions / "bancs", "bancs.gpkg", source.read_bytes(), licence="odbl-1.0"
        )
    )
    publish(write_submission(submissions / "remarques", "remarques.csv", CSV))


@pytest.fixture
def catalog(submit, store, tmp_path: Path) -> Iterator[str]:
    def publish(data: Path) -> None:
        assert submit(data, data.parent / "metadata.yaml").status == "publiee"

    publish_bancs_and_remarques(tmp_path, publish)
    with running_catalog(store) as base:
        yield base


@pytest.fixture(scope="module")
def published_once(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same catalog, published once for the module's tests that only read downloads
    (each asks for its own format and CRS, so each is still derived by its request)."""
    with deployment(tmp_path_factory, "telechargements") as deployed:
        publish_bancs_and_remarques(deployed.root, deployed.publish)
        with running_catalog(deployed.store) as base:
            yield base


def url(base: str, fmt: str, crs: int | None = None, slug: str = "ecully-bancs") -> str:
    query = f"?crs={crs}" if crs else ""
    return f"{base}/api/datasets/{slug}/download/{fmt}{query}"


def expected(crs: int) -> list[tuple[float, float]]:
    to = Transformer.from_crs(4326, crs, always_xy=True)
    return [to.transform(*p) for p in POINTS]


def read_geo(content: bytes, fmt: str, tmp_path: Path) -> gpd.GeoDataFrame:
    path = tmp_path / f"download.{'zip' if fmt == 'shp' else fmt}"
    path.write_bytes(content)
    if fmt in {"parquet", "geoparquet"}:
        return gpd.read_parquet(path)
    return gpd.read_file(path)


@pytest.mark.parametrize("fmt", ["geojson", "gpkg", "shp", "geoparquet"])
@pytest.mark.parametrize("crs", [4326, 2154, 3946, 3857, 4171])
def test_geographic_formats_in_every_crs(published_once, tmp_path, fmt, crs):
    response = requests.get(url(published_once, fmt, crs), timeout=30)
    assert response.status_code == 200, response.text
    frame = read_geo(response.content, fmt, tmp_path)
    assert frame.crs.to_epsg() == crs
    got = [(round(p.x, 2), round(p.y, 2)) for p in frame.geometry]
    assert got == [(round(x, 2), round(y, 2)) for x, y in expected(crs)]
    assert sorted(frame["materiau"]) == ["bois", "métal"]
    assert f"epsg{crs}" in response.headers["content-disposition"]


def test_kml_is_wgs84_only(catalog, tmp_path):
    kml = requests.get(url(catalog, "kml"), timeout=30)
    assert kml.status_code == 200 and b"<kml" in kml.content
    refused = requests.get(url(catalog, "kml", 2154), timeout=30)
    assert refused.status_code == 400 and "toujours en EPSG:4326" in refused.json()["detail"]


def test_tabular_formats_of_a_map(catalog):
    rows = requests.get(url(catalog, "json"), timeout=30).json()
    assert [r["materiau"] for r in rows] == ["bois", "métal"]
    assert rows[0]["geometry"].startswith("POINT (4.777")
    lambert = pd.read_csv(io.BytesIO(requests.get(url(catalog, "csv", 2154), timeout=30).content))
    assert lambert["geometry"][0].startswith(f"POINT ({expected(2154)[0][0]:.0f}"[:12])
    book = openpyxl.load_workbook(
        io.BytesIO(requests.get(url(catalog, "xlsx"), timeout=30).content)
    )
    assert [c.value for c in book["donnees"][1]] == ["id_banc", "materiau", "geometry"]
    assert "ODbL" in book["licence"]["A1"].value


def test_unknown_crs_and_crs_on_a_table(catalog):
    bad = requests.get(url(catalog, "geojson", 27572), timeout=10)
    assert bad.status_code == 400 and "EPSG:3946" in bad.json()["detail"]
    table = requests.get(url(catalog, "csv", 2154, slug="ecully-remarques"), timeout=10)
    assert table.status_code == 400 and "n'est pas géographique" in table.json()["detail"]


def test_spreadsheet_formulas_are_neutralised(catalog):
    text = requests.get(url(catalog, "csv", slug="ecully-remarques"), timeout=10).text
    assert '"\'=HYPERLINK(""http://example.org"")"' in text and "'@SUM(A1)" in text
    assert "'-bien" in text
    book = openpyxl.load_workbook(
        io.BytesIO(requests.get(url(catalog, "xlsx", slug="ecully-remarques"), timeout=10).content)
    )
    values = [row[1].value for row in book["donnees"].iter_rows(min_row=2)]
    assert values == ['\'=HYPERLINK("http://example.org")', "'@SUM(A1)", "'-bien"]
    assert all(row[1].data_type == "s" for row in book["donnees"].iter_rows(min_row=2))


def test_http_caching_and_ranges(catalog):
    first = requests.get(url(catalog, "gpkg"), timeout=10)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = requests.get(url(catalog, "gpkg"), headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    since = requests.get(url(catalog, "gpkg"), headers={"If-Modified-Since": modified}, timeout=10)
    assert since.status_code == 304
    other_crs = requests.get(
        url(catalog, "gpkg", 2154), headers={"If-None-Match": etag}, timeout=10
    )
    assert other_crs.status_code == 200
    # If-None-Match compares weakly (RFC 9110 §13.1.2): W/ tags, lists and * match too
    for header in (f"W/{etag}", f'"autre", W/{etag}', f'"a,b",{etag}', "*"):
        weak = requests.get(url(catalog, "gpkg"), headers={"If-None-Match": header}, timeout=10)
        assert weak.status_code == 304 and weak.content == b"", header
    for header in ('W/"autre"', etag.strip('"'), f'"{etag}"'):
        other = requests.get(url(catalog, "gpkg"), headers={"If-None-Match": header}, timeout=10)
        assert other.status_code == 200 and other.content == first.content, header
    part = requests.get(url(catalog, "gpkg"), headers={"Range": "bytes=0-99"}, timeout=10)
    assert part.status_code == 206 and part.content == first.content[:100]


def test_odbl_downloads_carry_the_share_alike_notice(catalog):
    response = requests.get(url(catalog, "shp"), timeout=30)
    mention = unquote(response.headers["X-Licence-Mention"])
    assert "même licence" in mention and "Écully" in mention
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert "même licence" in archive.read("LICENCE.txt").decode()
    assert json.loads(requests.get(f"{catalog}/api/datasets/ecully-bancs", timeout=5).text)[
        "licence"
    ]["obligations"]["partage_a_l_identique"]


def test_derived_files_are_written_chunk_by_chunk(catalog, tmp_path, monkeypatch):
    from catalog.store.downloads import tables, xlsx

    monkeypatch.setattr(tables, "CHUNK_ROWS", 1)  # two points: two chunks
    for fmt in ("gpkg", "shp"):
        frame = read_geo(requests.get(url(catalog, fmt, 3857), timeout=30).content, fmt, tmp_path)
        assert sorted(frame["materiau"]) == ["bois", "métal"] and frame.crs.to_epsg() == 3857
    text = requests.get(url(catalog, "csv", 3857), timeout=30).text
    assert text.count("POINT") == 2 and text.count('"id_banc"') == 1
    book = openpyxl.load_workbook(
        io.BytesIO(requests.get(url(catalog, "xlsx", 3857), timeout=30).content)
    )
    assert book["donnees"].max_row == 3
    monkeypatch.setattr(xlsx, "SHEET_ROWS", 2)  # a header and a row a sheet, as Excel's limit
    content = requests.get(url(catalog, "xlsx", 2154), timeout=30).content
    book = openpyxl.load_workbook(io.BytesIO(content))
    assert book.sheetnames == ["donnees", "donnees_2", "licence"]
    assert [row[1] for row in book["donnees_2"].values] == ["materiau", "métal"]
    # GeoParquet in another CRS: every chunk's rows, and a bounding box holding them all
    content = requests.get(url(catalog, "geoparquet", 2154), timeout=30).content
    (tmp_path / "bancs.parquet").write_bytes(content)
    frame = gpd.read_parquet(tmp_path / "bancs.parquet")
    assert sorted(frame["materiau"]) == ["bois", "métal"] and frame.crs.to_epsg() == 2154
    geo = json.loads(pq.read_schema(tmp_path / "bancs.parquet").metadata[b"geo"])
    assert geo["columns"]["geometry"]["bbox"] == pytest.approx(list(frame.total_bounds))
    kml = requests.get(url(catalog, "kml"), timeout=30).text
    assert kml.count("</Placemark>") == 2


def test_a_map_is_published_chunk_by_chunk(submit, dataset_folder, store, monkeypatch, tmp_path):
    """The files written at publication (CSV, GeoParquet, GeoJSON, GeoPackage), one row
    per chunk: each holds every row once, in order, and the map's whole extent."""
    from catalog.store.downloads import tables

    monkeypatch.setattr(tables, "CHUNK_ROWS", 1)
    lines = "".join(f"{n};site {n};{4.7 + n / 100:.2f};{45.7 + n / 100:.2f}\n" for n in range(5))
    data = dataset_folder("sites.csv", "id;nom;longitude;latitude\n" + lines, name="sites")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    release = store.current_release("ecully-sites")
    csv_text = store.release_path(release, "csv").read_text(encoding="utf-8")
    assert csv_text.count('"nom"') == 1 and csv_text.count("site ") == 5
    for fmt in ("parquet", "geojson", "gpkg"):
        path = store.release_path(release, fmt)
        frame = gpd.read_parquet(path) if fmt == "parquet" else gpd.read_file(path)
        assert frame["id"].tolist() == [0, 1, 2, 3, 4], fmt
        assert frame.to_crs(4326).total_bounds == pytest.approx([4.7, 45.7, 4.74, 45.74]), fmt
    geo = json.loads(pq.read_schema(store.release_path(release, "parquet")).metadata[b"geo"])
    assert geo["columns"]["geometry"]["bbox"] == pytest.approx([4.7, 45.7, 4.74, 45.74])


KML = "{http://www.opengis.net/kml/2.2}"
TERMINALS = {  # a map with a date, two datetimes, an integer with a blank, long names
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": list(point)},
            "properties": {
                "id_borne": number,
                "date_de_mise_en_service": day,
                "horodatage_du_releve": f"{day}T{time}",
                "horodatage_de_la_pose": f"2015-01-0{number}T08:00:00",
                "puissance": power,
            },
        }
        for number, point, day, time, power in [
            (1, POINTS[0], "2016-03-22", "10:05:00", None),
            (2, POINTS[1], "2017-11-05", "23:59:59", 22),
        ]
    ],
}
TERMINAL_VALUES = [
    {
        "id_borne": 1,
        "date_de_mise_en_service": "2016-03-22",
        "horodatage_du_releve": "2016-03-22T10:05:00",
        "horodatage_de_la_pose": "2015-01-01T08:00:00",
    },
    {
        "id_borne": 2,
        "date_de_mise_en_service": "2017-11-05",
        "horodatage_du_releve": "2017-11-05T23:59:59",
        "horodatage_de_la_pose": "2015-01-02T08:00:00",
    },
]


def test_converted_maps_keep_dates_the_dataset_name_and_full_field_names(
    submit, dataset_folder, store, tmp_path
):
    data = dataset_folder("bornes.geojson", json.dumps(TERMINALS), name="bornes")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    with running_catalog(store) as base:
        lambert = requests.get(url(base, "geojson", 2154, slug="ecully-bornes"), timeout=30)
        kml = requests.get(url(base, "kml", slug="ecully-bornes"), timeout=30)
        shp = requests.get(url(base, "shp", slug="ecully-bornes"), timeout=30)
        table = requests.get(url(base, "json", slug="ecully-bornes"), timeout=30).json()
        items = requests.get(f"{base}/ogc/collections/ecully-bornes/items?f=json", timeout=30)
        rows = requests.get(f"{base}/api/datasets/ecully-bornes/rows", timeout=30).json()
    assert [{k: r[k] for k in TERMINAL_VALUES[0]} for r in table] == TERMINAL_VALUES
    # an integer with blanks stays an integer in every service (not 22.0)
    served = [f["properties"]["puissance"] for f in items.json()["features"]]
    assert served == [None, 22] and isinstance(served[1], int)
    assert [r["puissance"] for r in rows["lignes"]] == [None, 22]
    assert [r["puissance"] for r in table] == [None, 22]
    # GeoJSON in another CRS: dates as dates, datetimes in ISO 8601, the dataset's name
    collection = lambert.json()
    assert collection["name"] == "ecully-bornes"
    properties = [f["properties"] for f in collection["features"]]
    assert [{k: p[k] for k in TERMINAL_VALUES[0]} for p in properties] == TERMINAL_VALUES
    assert [p["puissance"] for p in properties] == [None, 22]
    # KML: the same text, in a folder named after the dataset
    document = ElementTree.fromstring(kml.content)
    assert document.find(f".//{KML}Folder/{KML}name").text == "ecully_bornes"
    placemarks = [
        {d.get("name"): d.text for d in placemark.iter(f"{KML}SimpleData")}
        for placemark in document.iter(f"{KML}Placemark")
    ]
    assert [{k: p[k] for k in TERMINAL_VALUES[0]} for p in placemarks] == [
        {k: str(v) for k, v in values.items()} for values in TERMINAL_VALUES
    ]
    # Shapefile: champs.csv maps each 10-byte field name back to the dataset's column
    with zipfile.ZipFile(io.BytesIO(shp.content)) as archive:
        fields = archive.read("champs.csv").decode("utf-8")
    mapping = dict(csv.reader(io.StringIO(fields)))
    assert mapping.pop("nom_shapefile") == "nom_complet"
    assert mapping["date_de_mi"] == "date_de_mise_en_service"
    assert {mapping["horodatage"], mapping["horodata_1"]} == {
        "horodatage_du_releve",
        "horodatage_de_la_pose",
    }
    frame = read_geo(shp.content, "shp", tmp_path).rename(columns=mapping)
    # a Shapefile has a date type (kept), no datetime type (ISO 8601 text)
    assert str(frame["date_de_mise_en_service"].dtype).startswith("datetime64")
    frame["date_de_mise_en_service"] = frame["date_de_mise_en_service"].dt.strftime("%Y-%m-%d")
    rows = frame[list(TERMINAL_VALUES[0])].to_dict("records")
    assert rows == TERMINAL_VALUES
