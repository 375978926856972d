"""CSW 2.0.2: the real pycsw, behind the real catalog application on loopback, read with
OWSLib as a harvester would.

The deployment publishes map and non-map samples, a restricted dataset and one that is
later depublished; pycsw runs in its own environment (var/pycsw-venv, made by
scripts/bootstrap.sh).
"""

from __future__ import annotations

import dataclasses
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import ogc_schemas
import pytest
import requests
from fastapi import FastAPI
from lxml import etree
from owslib import fes
from owslib.csw import CatalogueServiceWeb
from owslib.ows import ExceptionReport
from owslib.wfs import WebFeatureService
from owslib.wms import WebMapService
from shapely.geometry import box as box_polygon

from catalog import iso19139
from catalog.description import describe
from catalog.ogc.csw import CswError, CswService, pycsw_venv
from catalog.ogc.mapserver import MapServerService
from catalog.web.app import create_app
from catalog.web.views import is_public
from core.vocabularies import FREQUENCIES, ISO_MAINTENANCE, find_frequency

from conftest import SAMPLES, Deployment, deployment, serving, write_submission

BANCS = "ecully-bancs-publics"  # points in Écully
PISTES = "vaulx-en-velin-pistes-cyclables"  # lines in Vaulx-en-Velin
SIGNALEMENTS = "lyon-signalements-espace-public"  # points in Lyon
PARCS = "ecully-parcs"  # polygons in Écully, Lambert-93
SUBVENTIONS = "vaulx-en-velin-subventions-associations"  # a table, no geometry
RESTRICTED = "ecully-registre-interventions"
WITHDRAWN = "ecully-kiosques"
LATE = "ecully-composteurs"
SECRET_WORD = "Zanzibar"  # only in the restricted dataset's title and description
ECULLY_BOX = (4.74, 45.76, 4.79, 45.79)  # west, south, east, north: west of Lyon
VAULX_BOX = (4.90, 45.76, 4.95, 45.80)  # east of Lyon
TITLE = "Catalogue des données ouvertes des communes de la Métropole de Lyon"
OWS = "{http://www.opengis.net/ows}"


@dataclass
class Catalog:
    base: str
    app: FastAPI
    published: Deployment

    @property
    def csw_url(self) -> str:
        return f"{self.base}/csw"

    def csw(self) -> CatalogueServiceWeb:
        return CatalogueServiceWeb(self.csw_url, version="2.0.2", skip_caps=True, timeout=30)


def small_dataset(root: Path, name: str, title: str, extra: str = "") -> Path:
    data = write_submission(
        root / "depots" / name, f"{name}.csv", f"id;lieu\r\n1;{name}\r\n", extra_metadata=extra
    )
    metadata = data.parent / "metadata.yaml"
    text = metadata.read_text(encoding="utf-8")
    text = text.replace("titre: Arbres d'alignement", f"titre: {title}")
    metadata.write_text(text.replace("Arbres plantés", f"{title}, posés"), encoding="utf-8")
    return data


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    assert (pycsw_venv() / "bin" / "python").exists(), "no pycsw: run scripts/bootstrap.sh"
    with deployment(tmp_path_factory, "csw") as published:
        for sample in (
            "ecully/bancs-publics",
            "vaulx-en-velin/pistes-cyclables",
            "lyon/signalements-espace-public",
        ):
            published.publish_sample(SAMPLES / "inbox" / sample)
        published.publish_sample(SAMPLES / "inbox" / "vaulx-en-velin" / "subventions-associations")
        published.publish(parks_submission(published.root))
        secret = f"Registre {SECRET_WORD} des interventions"
        restricted = small_dataset(
            published.root, "registre-interventions", secret, "acces: restreint\n"
        )
        published.publish(restricted)
        published.publish(small_dataset(published.root, "kiosques", "Kiosques à journaux"))
        services = published.settings.services_dir
        app = create_app(
            published.store, services=[CswService(services), MapServerService(services)]
        )
        with serving(app) as base:
            yield Catalog(base, app, published)


def parks_submission(root: Path) -> Path:
    """Polygons in Lambert-93 (GeoPackage): two parks of Écully."""
    frame = gpd.GeoDataFrame(
        {"nom": ["Parc du Vivier", "Parc de la mairie"]},
        geometry=[
            box_polygon(4.7700, 45.7700, 4.7721, 45.7712),
            box_polygon(4.7800, 45.7790, 4.7833, 45.7811),
        ],
        crs="EPSG:4326",
    ).to_crs("EPSG:2154")
    source = root / "parcs.gpkg"
    frame.to_file(source, driver="GPKG")
    data = write_submission(root / "depots" / "parcs", "parcs.gpkg", source.read_bytes())
    metadata = data.parent / "metadata.yaml"
    text = metadata.read_text(encoding="utf-8").replace("Arbres d'alignement", "Parcs publics")
    metadata.write_text(text, encoding="utf-8")
    return data


def public_slugs(published: Deployment) -> set[str]:
    return {d.slug for d in published.store.list_datasets() if is_public(d)}


def all_identifiers(csw: CatalogueServiceWeb, **options) -> set[str]:
    csw.getrecords2(esn="brief", maxrecords=100, **options)
    assert csw.results["returned"] == csw.results["matches"]
    return set(csw.records)


def like(text: str) -> list[fes.PropertyIsLike]:
    return [fes.PropertyIsLike("csw:AnyText", f"%{text}%")]


def get(catalog: Catalog, **params: str) -> requests.Response:
    """A CSW 2.0.2 request in key-value pairs, without OWSLib."""
    everything = {"service": "CSW", "version": "2.0.2", **params}
    return requests.get(catalog.csw_url, params=everything, timeout=30)


def box(west: float, south: float, east: float, north: float) -> fes.BBox:
    """A bbox filter in WGS84 as CSW 2.0.2 writes it: latitude first for this CRS URN."""
    return fes.BBox([south, west, north, east], crs="urn:ogc:def:crs:EPSG::4326")


def record(csw: CatalogueServiceWeb, identifier: str):
    csw.getrecordbyid(id=[identifier], esn="full")
    return csw.records.get(identifier)


# --- capabilities ---------------------------------------------------------------------------


def test_capabilities_are_french_and_list_the_operations(catalog: Catalog) -> None:
    csw = CatalogueServiceWeb(catalog.csw_url, version="2.0.2", timeout=30)
    assert csw.identification.type == "CSW"
    assert "2.0.2" in csw.identification.version
    assert csw.identification.title == TITLE
    assert csw.provider.name == "Métropole de Lyon et communes partenaires"
    operations = {operation.name for operation in csw.operations}
    assert {"GetCapabilities", "DescribeRecord", "GetRecords", "GetRecordById"} <= operations
    assert "Transaction" not in operations  # read-only: the catalog is fed from the store
    get_records = csw.get_operation_by_name("GetRecords")
    assert get_records.methods[0]["url"] == catalog.csw_url  # the URL the caller used


CSW_XSD = "http://schemas.opengis.net/csw/2.0.2/CSW-discovery.xsd"


def test_csw_answers_in_dublin_core_are_valid_against_the_official_schemas(
    catalog: Catalog,
) -> None:
    capabilities = get(catalog, request="GetCapabilities")
    assert ogc_schemas.errors(CSW_XSD, capabilities.content) == []
    records = get(
        catalog,
        request="GetRecords",
        typenames="csw:Record",
        elementsetname="full",
        resulttype="results",
    )
    assert records.status_code == 200
    assert ogc_schemas.errors(CSW_XSD, records.content) == []
    # the check bites: search results without their required count are refused
    uncounted = re.sub(rb' numberOfRecordsMatched="\d+"', b"", records.content, count=1)
    assert uncounted != records.content and ogc_schemas.errors(CSW_XSD, uncounted) != []


# --- search ---------------------------------------------------------------------------------


def test_get_records_lists_exactly_the_public_datasets(catalog: Catalog) -> None:
    csw = catalog.csw()
    expected = public_slugs(catalog.published)
    assert {BANCS, PISTES, SUBVENTIONS, WITHDRAWN} <= expected
    assert all_identifiers(csw) == expected
    assert csw.results["matches"] == len(expected)


def test_full_text_search_finds_a_dataset_by_a_word_of_its_description(catalog: Catalog) -> None:
    csw = catalog.csw()
    # "inspection" is in the benches' description only (their title does not say it)
    assert all_identifiers(csw, constraints=like("inspection")) == {BANCS}
    assert all_identifiers(csw, constraints=like("délibération")) == {SUBVENTIONS}
    # links are not searchable text: every record has one, no word search matches them all
    assert all_identifiers(csw, constraints=like("download")) == set()


def test_bbox_query_finds_map_datasets_in_their_area_only(catalog: Catalog) -> None:
    csw = catalog.csw()
    assert all_identifiers(csw, constraints=[box(*ECULLY_BOX)]) == {BANCS, PARCS}
    assert all_identifiers(csw, constraints=[box(*VAULX_BOX)]) == {PISTES}
    both = [fes.And([*like("vélo"), box(*VAULX_BOX)])]
    assert all_identifiers(csw, constraints=both) == {PISTES}
    assert all_identifiers(csw, constraints=[fes.And([*like("bancs"), box(*VAULX_BOX)])]) == set()


# --- one record -----------------------------------------------------------------------------


def test_get_record_by_id_describes_the_dataset_with_its_links(catalog: Catalog) -> None:
    entry = catalog.published.store.get_dataset(BANCS)
    found = record(catalog.csw(), BANCS)
    assert found is not None
    assert found.title == "Bancs publics"
    assert found.abstract == entry.metadata["description"]
    assert found.modified == str(entry.metadata["modified"])
    assert found.publisher == "Écully"
    assert found.rights == ["Licence Ouverte / Open Licence version 2.0"]
    # Dublin Core is pycsw's view of the ISO record, which has no dct:license: the licence's
    # URL is in the ISO record (test_iso_records_carry_what_a_harvester_keeps)
    assert {"bancs", "mobilier urbain"} <= set(found.subjects)
    assert float(found.bbox.minx) == pytest.approx(4.7667, abs=1e-3)  # longitude, latitude order
    assert float(found.bbox.miny) == pytest.approx(45.7690, abs=1e-3)
    links = {(ref["scheme"], ref["url"]) for ref in found.references}
    base = catalog.base
    assert ("WWW:LINK", f"{base}/jeux-de-donnees/{BANCS}") in links
    download = f"{base}/api/datasets/{BANCS}/download/geojson"
    assert ("WWW:DOWNLOAD-1.0-http--download", download) in links
    assert ("OGC:OGC-API-Features-items", f"{base}/ogc/collections/{BANCS}/items") in links
    assert {("OGC:WMS", f"{base}/wms"), ("OGC:WFS", f"{base}/wfs")} <= links
    assert requests.get(download, timeout=30).status_code == 200  # the links work


def test_a_table_has_downloads_but_no_map_links_or_extent(catalog: Catalog) -> None:
    found = record(catalog.csw(), SUBVENTIONS)
    assert found.bbox is None
    schemes = {ref["scheme"] for ref in found.references}
    assert schemes == {"WWW:LINK", "WWW:DOWNLOAD-1.0-http--download"}
    assert found.rights == ["Licence Ouverte / Open Licence version 2.0"]


def test_records_are_also_served_as_iso_19139(catalog: Catalog) -> None:
    csw = catalog.csw()
    csw.getrecordbyid(id=[PISTES], outputschema="http://www.isotc211.org/2005/gmd")
    iso = csw.records[PISTES]
    assert iso.identification[0].title == "Aménagements cyclables"
    extent = iso.identification[0].bbox
    assert float(extent.minx) == pytest.approx(true_bounds("vaulx-en-velin/pistes-cyclables")[0])
    online = {(link.protocol, link.name, link.url) for link in iso.distribution.online}
    assert ("OGC:WMS", PISTES, f"{catalog.base}/wms") in online  # the layer a client adds
    assert ("OGC:WFS", PISTES, f"{catalog.base}/wfs") in online


ISO = "http://www.isotc211.org/2005/gmd"
GMD = "{http://www.isotc211.org/2005/gmd}"
MAP_DATASETS = {  # slug -> geometry kind
    BANCS: "points",
    SIGNALEMENTS: "points",
    PISTES: "lines",
    PARCS: "polygons",
}


def true_bounds(sample: str) -> tuple[float, float, float, float]:
    """The sample's bounds in WGS84, from its own file (west, south, east, north)."""
    folder = SAMPLES / "inbox" / sample
    data = next(p for p in folder.iterdir() if p.name not in {"metadata.yaml", "schema.json"})
    frame = gpd.read_file(data if data.suffix != ".zip" else f"zip://{data}")
    return tuple(float(v) for v in frame.to_crs(4326).total_bounds)


def iso_record(catalog: Catalog, identifier: str) -> requests.Response:
    return get(
        catalog,
        request="GetRecordById",
        id=identifier,
        outputSchema=ISO,
        elementSetName="full",
    )


def test_iso_records_are_valid_against_the_official_iso_19139_schemas(catalog: Catalog) -> None:
    """Every kind of dataset (points, lines, polygons, a table), alone and in a search: the
    CSW answer against CSW 2.0.2 with ISO 19139, the record itself against gmd.xsd."""
    for identifier in [*MAP_DATASETS, SUBVENTIONS]:
        answer = iso_record(catalog, identifier)
        assert answer.status_code == 200
        assert ogc_schemas.iso_errors(answer.content, CSW_XSD) == [], identifier
        (record_element,) = etree.fromstring(answer.content)
        assert record_element.tag == f"{GMD}MD_Metadata"
        alone = etree.tostring(record_element)
        assert ogc_schemas.iso_errors(alone) == [], identifier
    search = get(
        catalog,
        request="GetRecords",
        typenames="gmd:MD_Metadata",
        outputSchema=ISO,
        elementsetname="full",
        resulttype="results",
        maxrecords="100",
    )
    assert search.status_code == 200
    assert len(etree.fromstring(search.content).findall(f".//{GMD}MD_Metadata")) == len(
        public_slugs(catalog.published)
    )
    assert ogc_schemas.iso_errors(search.content, CSW_XSD) == []
    # the check bites: a citation without its date (pycsw's own records) is refused
    undated = re.sub(
        rb"<gmd:date><gmd:CI_Date>.*?</gmd:CI_Date></gmd:date>", b"", alone, flags=re.S
    )
    assert undated != alone and ogc_schemas.iso_errors(undated) != []


def test_iso_records_carry_what_a_harvester_keeps(catalog: Catalog) -> None:
    csw = catalog.csw()
    csw.getrecordbyid(id=[BANCS], outputschema=ISO)
    iso = csw.records[BANCS]
    ident = iso.identification[0]
    assert ident.title == "Bancs publics"
    assert {(d.type, d.date) for d in ident.date} >= {("revision", "2026-10-28")}
    assert {d.type for d in ident.date} == {"creation", "publication", "revision"}
    contact = ident.contact[0]
    assert (contact.organization, contact.role) == ("Écully", "pointOfContact")
    assert contact.position == "Service voirie et espaces publics"
    assert contact.email == "espaces-publics@mairie-ecully.fr"
    assert ident.otherconstraints == ["Licence Ouverte / Open Licence version 2.0"]
    assert ident.otherconstraints_url == [
        "https://www.etalab.gouv.fr/licence-ouverte-open-licence/"
    ]
    assert iso.referencesystem.code == "EPSG:3946"  # the data's CRS (RGF93 / CC46)
    west, south, east, north = true_bounds("ecully/bancs-publics")
    extent = ident.bbox
    assert float(extent.minx) == pytest.approx(west, abs=1e-7)  # exact: no rounding
    assert float(extent.miny) == pytest.approx(south, abs=1e-7)
    assert float(extent.maxx) == pytest.approx(east, abs=1e-7)
    assert float(extent.maxy) == pytest.approx(north, abs=1e-7)
    words = {word for group in ident.keywords for word in group.keywords}
    assert {"bancs", "mobilier urbain", "Régions et villes"} <= {w.name for w in words}
    installed = gpd.read_file(
        SAMPLES / "inbox" / "ecully" / "bancs-publics" / "bancs-publics.geojson"
    )
    first, last = installed["date_pose"].min(), installed["date_pose"].max()
    assert time_period(iso.xml) == (f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}")
    frequency = etree.fromstring(iso.xml).find(f".//{GMD}MD_MaintenanceFrequencyCode")
    assert frequency.get("codeListValue") == "biannually"  # semestrielle
    assert "tournée d'inspection" in iso.dataquality.lineage
    online = {(link.protocol, link.name, link.url) for link in iso.distribution.online}
    base = catalog.base
    assert {
        ("OGC:WMS", BANCS, f"{base}/wms"),
        ("OGC:WFS", BANCS, f"{base}/wfs"),
        ("OGC:OGC-API-Features-items", BANCS, f"{base}/ogc/collections/{BANCS}/items"),
        (
            "WWW:DOWNLOAD-1.0-http--download",
            "geojson",
            f"{base}/api/datasets/{BANCS}/download/geojson",
        ),
        ("WWW:LINK", BANCS, f"{base}/jeux-de-donnees/{BANCS}"),
    } <= online
    for _protocol, _name, url in online:
        if "/download/" in url:  # the OGC API's are checked in tests/test_ogc_api.py
            assert requests.get(url, timeout=30).status_code == 200, url


def time_period(xml: bytes) -> tuple[str, str]:
    gml = "{http://www.opengis.net/gml/3.2}"
    period = etree.fromstring(xml).find(f".//{gml}TimePeriod")
    return period.findtext(f"{gml}beginPosition"), period.findtext(f"{gml}endPosition")


def test_every_frequency_gives_a_valid_iso_maintenance_code(catalog: Catalog) -> None:
    """Each EU frequency a producer may declare maps onto ISO's codes (with the period when
    ISO 19115:2003 has no code as fine), and the record stays valid."""
    store = catalog.published.store
    dataset = store.get_dataset(PISTES)
    about = describe(store, dataset, store.current_release(PISTES), catalog.base, [PISTES])
    assert set(ISO_MAINTENANCE) == {frequency.code for frequency in FREQUENCIES}
    for frequency in FREQUENCIES:
        document = iso19139.record_xml(dataclasses.replace(about, frequency=frequency))
        assert ogc_schemas.iso_errors(document.encode()) == [], frequency.code
        code = etree.fromstring(document).find(f".//{GMD}MD_MaintenanceFrequencyCode")
        assert code.get("codeListValue") == ISO_MAINTENANCE[frequency.code][0]
    bimonthly = iso19139.record_xml(
        dataclasses.replace(about, frequency=find_frequency("BIMONTHLY"))
    )
    assert "<gts:TM_PeriodDuration>P2M</gts:TM_PeriodDuration>" in bimonthly


def test_a_bbox_search_matches_the_data_not_a_box_rounded_to_a_hundredth(
    catalog: Catalog,
) -> None:
    """pycsw rounds extents to 0.01° (about 1 km): on an edge rounded outwards, a box beside
    the benches matched them; on an edge rounded inwards, a box over the benches there did
    not. The extent is exact now."""
    csw = catalog.csw()
    west, south, east, north = true_bounds("ecully/bancs-publics")
    hair = 1e-5
    beside, over = [], []  # boxes just outside the data / along its edge
    for low, high, horizontal in ((west, east, True), (south, north, False)):
        for edge, outwards in ((low, -1), (high, 1)):
            rounded = round(edge, 2)
            if (rounded - edge) * outwards > 2 * hair:  # rounded outwards: a false hit
                strip = sorted((edge + outwards * hair, rounded - outwards * hair))
                beside.append((strip, horizontal))
            elif (edge - rounded) * outwards > 2 * hair:  # rounded inwards: data missed
                over.append(([edge - hair, edge + hair], horizontal))
    assert beside and over  # Écully's benches have edges of both kinds

    def area(strip: list[float], horizontal: bool) -> fes.BBox:
        return (
            box(strip[0], south, strip[1], north)
            if horizontal
            else box(west, strip[0], east, strip[1])
        )

    for strip, horizontal in beside:
        assert BANCS not in all_identifiers(csw, constraints=[area(strip, horizontal)]), strip
    for strip, horizontal in over:
        assert BANCS in all_identifiers(csw, constraints=[area(strip, horizontal)]), strip


def test_every_metadata_url_of_wms_and_wfs_answers_the_layer_s_iso_record(
    catalog: Catalog,
) -> None:
    wms = WebMapService(f"{catalog.base}/wms", version="1.3.0", timeout=30)
    wfs = WebFeatureService(f"{catalog.base}/wfs", version="2.0.0", timeout=30)
    urls = {}
    for name, layer in wms.contents.items():
        if name in MAP_DATASETS:
            urls[("wms", name)] = [m["url"] for m in layer.metadataUrls]
    for name, layer in wfs.contents.items():
        urls[("wfs", name.removeprefix("ms:"))] = [m["url"] for m in layer.metadataUrls]
    assert {name for kind, name in urls if kind == "wfs"} == set(MAP_DATASETS)
    assert {name for kind, name in urls if kind == "wms"} == set(MAP_DATASETS)
    for (kind, name), found in urls.items():
        assert len(found) == 1, (kind, name)
        answer = requests.get(found[0], timeout=30)
        assert answer.status_code == 200
        (record_element,) = etree.fromstring(answer.content)
        assert record_element.tag == f"{GMD}MD_Metadata", (kind, name)
        assert ogc_schemas.iso_errors(etree.tostring(record_element)) == [], (kind, name)
        identifier = record_element.findtext(f"{GMD}fileIdentifier/{{*}}CharacterString")
        assert identifier == name


# --- what is never served -------------------------------------------------------------------


def test_a_restricted_dataset_is_never_returned(catalog: Catalog) -> None:
    csw = catalog.csw()
    assert catalog.published.store.get_dataset(RESTRICTED).metadata["access"] == "restreint"
    assert record(csw, RESTRICTED) is None
    assert all_identifiers(csw, constraints=like(SECRET_WORD)) == set()
    response = get(
        catalog,
        request="GetRecords",
        typenames="csw:Record",
        resulttype="results",
        elementsetname="full",
    )
    assert response.status_code == 200 and BANCS in response.text
    assert SECRET_WORD not in response.text and RESTRICTED not in response.text
    assert "catalogue.invalid" not in response.text  # every link is on the public base URL


def test_a_bad_request_gets_an_ogc_exception_report(catalog: Catalog) -> None:
    response = get(catalog, request="GetEverything")
    report = etree.fromstring(response.content)
    assert report.tag == f"{OWS}ExceptionReport"
    exception = report.find(f"{OWS}Exception")
    assert exception.get("exceptionCode") == "InvalidParameterValue"
    assert exception.get("locator") == "request"
    html = get(catalog, request="GetRecordById", id=BANCS, outputFormat="text/html")
    assert html.headers["content-type"].startswith("application/xml")  # never the caller's
    assert etree.fromstring(html.content).tag == f"{OWS}ExceptionReport"
    malformed = requests.post(
        catalog.csw_url,
        data=b"<csw:GetRecords xmlns:csw='http://www.opengis.net/cat/csw/2.0.2'>",
        headers={"Content-Type": "application/xml"},
        timeout=30,
    )
    assert etree.fromstring(malformed.content).tag == f"{OWS}ExceptionReport"
    with pytest.raises(ExceptionReport):
        catalog.csw().getrecords2(outputschema="http://example.org/pas-un-schema")
    huge = requests.post(catalog.csw_url, data=b"<a/>" * 300_000, timeout=30)
    assert huge.status_code == 413 and "trop volumineuse" in huge.json()["detail"]


def test_a_pycsw_that_does_not_answer_in_time_gives_504(catalog: Catalog) -> None:
    services = catalog.published.settings.services_dir
    app = FastAPI()
    slow = CswService(services, timeout=0.01)
    slow.mount(app)
    try:
        with serving(app) as base:
            response = requests.get(
                f"{base}/csw", params={"request": "GetCapabilities"}, timeout=30
            )
    finally:
        slow.close()
    assert response.status_code == 504
    assert "n'a pas répondu" in response.json()["detail"]


# --- the resident pycsw ---------------------------------------------------------------------


def resident_server(catalog: Catalog):
    service = next(s for s in catalog.app.state.refresher.services if isinstance(s, CswService))
    assert service.resident, "le chemin résident (gunicorn) est le défaut"
    return service


def test_a_killed_resident_pycsw_is_restarted_and_the_next_request_succeeds(
    catalog: Catalog,
) -> None:
    assert BANCS in all_identifiers(catalog.csw())
    service = resident_server(catalog)
    killed = service.server.process
    assert killed is not None and killed.poll() is None
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=10)
    assert all_identifiers(catalog.csw()) == public_slugs(catalog.published)
    assert service.server.process.pid != killed.pid and service.server.process.poll() is None


# --- lifecycle (runs last: it changes the deployment) ---------------------------------------


def test_new_and_depublished_datasets_follow_without_restart(catalog: Catalog) -> None:
    csw = catalog.csw()
    published, refresher = catalog.published, catalog.app.state.refresher
    refresher.stop()  # its cycle would race the explicit refresh below
    assert record(csw, WITHDRAWN) is not None
    published.publish(small_dataset(published.root, "composteurs", "Composteurs de quartier"))
    published.store.set_status(WITHDRAWN, "depublie")  # depublication sets the status
    assert record(csw, LATE) is None  # not before the refresher runs
    server = resident_server(catalog).server.process
    started = time.monotonic()
    assert refresher.refresh()
    refreshed_in = time.monotonic() - started
    assert refreshed_in < 60
    assert record(csw, LATE).title == "Composteurs de quartier"
    assert record(csw, WITHDRAWN) is None
    assert all_identifiers(csw) == public_slugs(published)
    assert WITHDRAWN not in all_identifiers(csw, constraints=like("Kiosques"))
    # the changed repository was read by the same resident pycsw, never restarted
    assert resident_server(catalog).server.process is server and server.poll() is None


# --- without pycsw --------------------------------------------------------------------------


def test_without_pycsw_the_service_says_so_in_french(tmp_path: Path) -> None:
    service = CswService(tmp_path / "services", venv=tmp_path / "absent")
    service.update([], [])  # nothing to run: the catalog keeps working
    app = FastAPI()
    service.mount(app)
    with serving(app) as base:
        response = requests.get(f"{base}/csw", params={"request": "GetCapabilities"}, timeout=30)
    assert response.status_code == 503
    assert "environnement de pycsw" in response.json()["detail"]
    assert "scripts/bootstrap.sh" in response.json()["detail"]


def test_a_failed_rebuild_closes_the_catalogue_until_the_next_one_succeeds(
    tmp_path: Path,
) -> None:
    """A repository that could not be rebuilt may still list a dataset since restricted:
    the service stops answering from it, and the refresher tries again."""
    broken = tmp_path / "pycsw-casse" / "bin"
    broken.mkdir(parents=True)
    (broken / "python").write_text("#!/bin/sh\necho 'pycsw en panne' >&2\nexit 1\n")
    (broken / "python").chmod(0o755)
    service = CswService(tmp_path / "services")
    service.update([], [])
    assert service.repository.exists()
    working = service.python
    service.python = broken / "python"
    service.repository.unlink()  # lost: the next update rebuilds it
    with pytest.raises(CswError, match="pycsw en panne"):
        service.update([], [])
    assert not service.repository.exists()
    app = FastAPI()
    service.mount(app)
    with serving(app) as base:
        closed = requests.get(f"{base}/csw", params={"request": "GetCapabilities"}, timeout=30)
        service.python = working
        service.update([], [])
        reopened = requests.get(f"{base}/csw", params={"request": "GetCapabilities"}, timeout=30)
    assert closed.status_code == 503 and "en cours de préparation" in closed.json()["detail"]
    assert reopened.status_code == 200
