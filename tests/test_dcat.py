"""DCAT-AP 3 export, read over HTTP and validated with pyshacl against the official shapes."""

import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyshacl
import pytest
import requests
from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF, XSD
from shapely.geometry import Point

from core.settings import PROJECT_ROOT

from conftest import running_catalog

SHAPES = PROJECT_ROOT.parent / "shared" / "standards" / "dcat-ap-3.0.1"
EU = "http://publications.europa.eu/resource/authority/"
HYDRA = "http://www.w3.org/ns/hydra/core#"


def shapes(*names: str) -> Graph:
    graph = Graph()
    for name in names:
        graph.parse(SHAPES / name)
    return graph


@pytest.fixture
def catalog(submit, dataset_folder, store, tmp_path: Path):
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    frame = gpd.GeoDataFrame(
        {
            "id_banc": [1, 2, 3],
            "date_pose": pd.to_datetime(["2019-05-02", "2012-03-30", "2024-11-08"]),
        },
        geometry=[Point(4.777, 45.776), Point(4.7712, 45.7791), Point(4.7803, 45.7702)],
        crs="EPSG:4326",
    )
    source = tmp_path / "bancs.gpkg"
    frame.to_crs("EPSG:3946").to_file(source, driver="GPKG")
    data = dataset_folder("bancs.gpkg", source.read_bytes(), name="bancs", licence="odbl-1.0")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    with running_catalog(store) as base:
        yield base


def fetch(url: str, fmt: str) -> Graph:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    return Graph().parse(data=response.text, format=fmt)


@pytest.mark.parametrize(
    ("extension", "fmt"), [("ttl", "turtle"), ("jsonld", "json-ld"), ("rdf", "xml")]
)
def test_catalogue_conforms_to_dcat_ap_3_shapes(catalog: str, extension: str, fmt: str):
    graph = fetch(f"{catalog}/dcat/catalogue.{extension}", fmt)
    for names in (("shapes.ttl", "range.ttl"), ("mdr-vocabularies.shape.ttl",)):
        conforms, results, text = pyshacl.validate(
            graph, shacl_graph=shapes(*names), inference="none", allow_warnings=True
        )
        assert conforms, text
    assert len(list(graph.subjects(RDF.type, DCAT.Dataset))) == 2


def test_dataset_record_carries_what_harvesters_need(catalog: str):
    graph = fetch(f"{catalog}/api/datasets/ecully-bancs/dcat.ttl", "turtle")
    dataset = next(graph.subjects(RDF.type, DCAT.Dataset))
    assert graph.value(dataset, DCTERMS.accrualPeriodicity) == URIRef(f"{EU}frequency/ANNUAL")
    assert graph.value(dataset, DCTERMS.conformsTo) == URIRef(
        "http://www.opengis.net/def/crs/EPSG/0/3946"
    )
    assert str(graph.value(dataset, DCTERMS.modified)) == "2026-10-01"
    licences = set(graph.objects(None, DCTERMS.license))
    assert licences == {URIRef("http://opendatacommons.org/licenses/odbl/1-0/")}
    downloads = sorted(str(u) for u in graph.objects(None, DCAT.downloadURL))
    assert len(downloads) == 4 and all("/v1/download/" in u for u in downloads)
    for url in downloads:
        assert requests.head(url, timeout=5).status_code == 200
    publisher = graph.value(dataset, DCTERMS.publisher)
    assert "Écully" in {str(o) for o in graph.objects(publisher, None)}


GEOSPARQL_WKT = URIRef("http://www.opengis.net/ont/geosparql#wktLiteral")


def test_dataset_says_where_and_when_its_data_lies(catalog: str):
    """The commune by its INSEE URI, the data's exact box (WKT, WGS84) and the first and last
    dates of its date column; a table has its commune and neither box nor period."""
    graph = fetch(f"{catalog}/api/datasets/ecully-bancs/dcat.ttl", "turtle")
    dataset = next(graph.subjects(RDF.type, DCAT.Dataset))
    places = set(graph.objects(dataset, DCTERMS.spatial))
    commune = URIRef("http://id.insee.fr/geo/commune/69081")  # Écully
    assert commune in places
    assert (commune, RDF.type, DCTERMS.Location) in graph
    boxes = [graph.value(place, DCAT.bbox) for place in places]
    (bbox,) = [b for b in boxes if b is not None]
    assert bbox.datatype == GEOSPARQL_WKT
    # exact (the points went through EPSG:3946 and back): no rounding
    numbers = [float(v) for v in re.findall(r"-?\d+\.\d+", str(bbox))]
    assert str(bbox).startswith("POLYGON((")
    assert min(numbers[0::2]) == pytest.approx(4.7712, abs=1e-7)
    assert max(numbers[0::2]) == pytest.approx(4.7803, abs=1e-7)
    assert min(numbers[1::2]) == pytest.approx(45.7702, abs=1e-7)
    assert max(numbers[1::2]) == pytest.approx(45.7791, abs=1e-7)
    period = graph.value(dataset, DCTERMS.temporal)
    assert (period, RDF.type, DCTERMS.PeriodOfTime) in graph
    assert graph.value(period, DCAT.startDate) == Literal("2012-03-30", datatype=XSD.date)
    assert graph.value(period, DCAT.endDate) == Literal("2024-11-08", datatype=XSD.date)
    table = fetch(f"{catalog}/api/datasets/ecully-arbres/dcat.ttl", "turtle")
    node = next(table.subjects(RDF.type, DCAT.Dataset))
    assert commune in set(table.objects(node, DCTERMS.spatial))
    assert not list(table.objects(None, DCAT.bbox))
    assert table.value(node, DCTERMS.temporal) is None


def test_catalogue_is_paginated_for_harvesters(catalog: str):
    first = fetch(f"{catalog}/dcat/catalogue.ttl?page=1&taille=1", "turtle")
    assert len(list(first.subjects(RDF.type, DCAT.Dataset))) == 1
    next_page = next(first.objects(None, URIRef(HYDRA + "next")), None)
    assert next_page is not None
    second = fetch(str(next_page), "turtle")
    assert len(list(second.subjects(RDF.type, DCAT.Dataset))) == 1
    assert next(second.objects(None, URIRef(HYDRA + "next")), None) is None
    wrong = requests.get(f"{catalog}/dcat/catalogue.csv", timeout=5)
    assert wrong.status_code == 404 and "Turtle" in wrong.json()["detail"]


def test_every_page_says_the_same_of_the_catalog_and_merged_pages_conform(
    submit, dataset_folder, store, monkeypatch
):
    """Datasets first published on different days: each page's catalog node carries the
    catalog's dates, not its page's, so a harvester merging the pages keeps one of each."""
    for day, name in (("2026-10-05", "arbres"), ("2026-11-20", "bancs")):
        monkeypatch.setenv("OPENDATA_NOW", f"{day}T09:00:00")
        data = dataset_folder(f"{name}.csv", "id;nom\r\n1;un\r\n", name=name)
        assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    with running_catalog(store) as base:
        pages = [fetch(f"{base}/dcat/catalogue.ttl?page={n}&taille=1", "turtle") for n in (1, 2)]
    merged = pages[0] + pages[1]  # what a harvester holds once it has read every page
    catalog_node = next(merged.subjects(RDF.type, DCAT.Catalog))
    assert [str(d) for d in merged.objects(catalog_node, DCTERMS.issued)] == ["2026-10-05T09:00:00"]
    assert len(list(merged.objects(catalog_node, DCTERMS.modified))) == 1
    for names in (("shapes.ttl", "range.ttl"), ("mdr-vocabularies.shape.ttl",)):
        conforms, _, text = pyshacl.validate(
            merged, shacl_graph=shapes(*names), inference="none", allow_warnings=True
        )
        assert conforms, text
