"""DCAT-AP 3 view of the catalog: the store's records, read as DCAT terms.

Metadata was mapped onto DCAT terms when it was submitted (pipelines/metadata.py), so
this module only writes triples; every node carries its rdf:type and every controlled
value is the EU vocabulary URI with its skos:inScheme, as the DCAT-AP 3.0.1 shapes ask.

Lifecycle (annex data.grandlyon.com, §3.2): `adms:versionNotes` tells harvesters, in
French, of announced, applied and retired structure changes; a dataset depublished after
3 years without update stays in the catalogue with `adms:status` WITHDRAWN (EU
dataset-status vocabulary) and no distribution, while its URLs answer 410 Gone.

Access: `dct:accessRights` says PUBLIC or RESTRICTED (EU access-right vocabulary). A
restricted dataset is only in the graphs of a caller who may read it
(`core.access.may_see`); anonymous harvesters never learn it exists.
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, SKOS, XSD

from catalog.description import Description, describe
from catalog.store import Publications
from core.access import ANONYMOUS, Principal, dataset_access, may_see
from core.dates import release_updated
from core.licences import fill_notice
from core.records import Dataset, Release
from core.urls import dataset_page, download

DCAT3 = Namespace("http://www.w3.org/ns/dcat#")  # open: rdflib's DCAT lacks DCAT 3 terms
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
HYDRA = Namespace("http://www.w3.org/ns/hydra/core#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
GEO = Namespace("http://www.opengis.net/ont/geosparql#")
EU = "http://publications.europa.eu/resource/authority/"
FILE_TYPES = {"csv": "CSV", "parquet": "PARQUET", "geojson": "GEOJSON", "gpkg": "GPKG"}
SERIALISATIONS = {
    "ttl": ("turtle", "text/turtle"),
    "jsonld": ("json-ld", "application/ld+json"),
    "rdf": ("xml", "application/rdf+xml"),
}
PAGE_SIZE = 50
# The events whose titles make a dataset's version notes, newest first.
VERSION_NOTE_KINDS = (
    "avis-changement",
    "bascule",
    "changement-compatible",
    "retrait-structure",
    "depublication",
    "republication",
)
MAX_VERSION_NOTES = 20
ACCESS_RIGHTS = {  # access level -> EU access-right concept and its French label
    "public": ("PUBLIC", "public"),
    "restreint": ("RESTRICTED", "restreint"),
    "agents": ("RESTRICTED", "restreint aux agents publics"),
}


def _concept(graph: Graph, scheme: str, code: str, label: str) -> URIRef:
    node = URIRef(f"{EU}{scheme}/{code}")
    graph.add((node, RDF.type, SKOS.Concept))
    graph.add((node, SKOS.inScheme, _scheme(graph, f"{EU}{scheme}", scheme)))
    graph.add((node, SKOS.prefLabel, Literal(label, lang="fr")))
    return node


def _scheme(graph: Graph, uri: str, title: str) -> URIRef:
    node = _typed(graph, uri, SKOS.ConceptScheme)
    graph.add((node, DCTERMS.title, Literal(title, lang="en")))
    return node


def _typed(graph: Graph, uri: str, kind: URIRef) -> URIRef:
    node = URIRef(uri)
    graph.add((node, RDF.type, kind))
    return node


def new_graph() -> Graph:
    graph = Graph()
    for prefix, namespace in (
        ("dcat", DCAT),
        ("dct", DCTERMS),
        ("foaf", FOAF),
        ("vcard", VCARD),
        ("skos", SKOS),
        ("adms", ADMS),
        ("hydra", HYDRA),
        ("dcatap", DCATAP),
    ):
        graph.bind(prefix, namespace)
    return graph


def harvested_datasets(store: Publications, principal: Principal = ANONYMOUS) -> list[Dataset]:
    """What the catalogue lists: every dataset the caller may read (anonymous harvesters:
    the public ones), published or depublished (harvesters must learn of a withdrawal)."""
    return [d for d in store.list_datasets() if may_see(principal, d)]


def version_notes(store: Publications, dataset: Dataset) -> str | None:
    """The dataset's lifecycle in French, one line per change, newest first."""
    lines = []
    for event in store.events(dataset.slug, limit=200):
        if event.kind not in VERSION_NOTE_KINDS:
            continue
        line = f"{event.at:%d/%m/%Y} : {event.title}"
        description = event.details.get("description") if event.kind == "avis-changement" else None
        lines.append(f"{line}. {description}" if description else line)
    return "\n".join(lines[:MAX_VERSION_NOTES]) or None


def add_dataset(
    graph: Graph,
    base: str,
    dataset: Dataset,
    release: Release,
    store: Publications | None = None,
) -> URIRef:
    """The dataset, its publisher, contact point and distributions; with `store`, its
    version notes, its extents in space and time, and its withdrawal when it was
    depublished. Everything but the catalogue's own bookkeeping comes from its description
    (`catalog.description`), which the ISO 19139 records of the CSW come from too."""
    metadata = dataset.metadata
    about = describe(store, dataset, release, base)
    node = URIRef(about.uri)
    add = graph.add
    add((node, RDF.type, DCAT.Dataset))
    add((node, DCTERMS.identifier, Literal(about.identifier)))
    add((node, DCTERMS.title, Literal(about.title, lang="fr")))
    add((node, DCTERMS.description, Literal(about.abstract, lang="fr")))
    add((node, DCTERMS.publisher, _publisher(graph, base, dataset)))
    add((node, DCAT.contactPoint, _contact(graph, about)))
    frequency = about.frequency
    periodicity = _concept(graph, "frequency", frequency.code, frequency.label)
    add((periodicity, RDF.type, DCTERMS.Frequency))
    add((node, DCTERMS.accrualPeriodicity, periodicity))
    for theme, label in about.themes.items():
        add((node, DCAT.theme, _concept(graph, "data-theme", theme, label)))
    for keyword in about.keywords:
        add((node, DCAT.keyword, Literal(keyword, lang="fr")))
    add((node, DCTERMS.language, _language(graph)))
    add((node, DCTERMS.spatial, _france(graph)))
    for place in _places(graph, about):
        add((node, DCTERMS.spatial, place))
    period = _period(graph, about)
    if period is not None:
        add((node, DCTERMS.temporal, period))
    add((node, DCTERMS.modified, Literal(about.revised.isoformat(), datatype=XSD.date)))
    add((node, DCTERMS.accessRights, _access_rights(graph, dataset_access(metadata))))
    add((node, DCTERMS.issued, _datetime(dataset.first_published_at)))
    add((node, DCAT3.version, Literal(f"v{release.structure_version}")))
    add((node, DCAT.landingPage, _typed(graph, about.page, FOAF.Document)))
    provenance = BNode()
    add((provenance, RDF.type, DCTERMS.ProvenanceStatement))
    add((provenance, DCTERMS.description, Literal(about.lineage, lang="fr")))
    add((node, DCTERMS.provenance, provenance))
    if about.crs_uri:
        add((node, DCTERMS.conformsTo, _typed(graph, about.crs_uri, DCTERMS.Standard)))
    national = metadata.get("schema")
    if isinstance(national, dict):  # the national schema it follows (issue #15)
        standard = _typed(graph, national["url"], DCTERMS.Standard)
        title = f"{national['titre']} ({national['nom']}), version {national['version']}"
        add((standard, DCTERMS.title, Literal(title, lang="fr")))
        add((node, DCTERMS.conformsTo, standard))
    notes = version_notes(store, dataset) if store is not None else None
    if notes:
        add((node, ADMS.versionNotes, Literal(notes, lang="fr")))
    if dataset.status == "depublie":
        add((node, ADMS.status, _concept(graph, "dataset-status", "WITHDRAWN", "retiré")))
        return node  # its files are archived, no longer served: no distribution
    for distribution in release.distributions:
        add(
            (
                node,
                DCAT.distribution,
                _distribution(
                    graph, base, dataset, release, distribution.format, distribution.size
                ),
            )
        )
    return node


def _access_rights(graph: Graph, access: str) -> URIRef:
    code, label = ACCESS_RIGHTS.get(access, ACCESS_RIGHTS["restreint"])
    node = _concept(graph, "access-right", code, label)
    graph.add((node, RDF.type, DCTERMS.RightsStatement))
    return node


def _publisher(graph: Graph, base: str, dataset: Dataset) -> URIRef:
    node = _typed(graph, f"{base}/communes/{dataset.producer}", FOAF.Agent)
    name = dataset.metadata.get("publisher_name", dataset.producer)
    graph.add((node, FOAF.name, Literal(name, lang="fr")))
    graph.add((node, DCTERMS.type, _adms_publisher_type(graph)))
    return node


def _adms_publisher_type(graph: Graph) -> URIRef:
    node = URIRef("http://purl.org/adms/publishertype/LocalAuthority")
    graph.add((node, RDF.type, SKOS.Concept))
    graph.add(
        (
            node,
            SKOS.inScheme,
            _scheme(graph, "http://purl.org/adms/publishertype/1.0", "Publisher type"),
        )
    )
    graph.add((node, SKOS.prefLabel, Literal("Local Authority", lang="en")))
    return node


def _contact(graph: Graph, about: Description) -> BNode:
    node = BNode()
    graph.add((node, RDF.type, VCARD.Kind))
    graph.add((node, VCARD.fn, Literal(about.contact.service)))
    email = URIRef("mailto:" + quote(about.contact.email, safe="@'+"))
    graph.add((node, VCARD.hasEmail, email))
    return node


def _places(graph: Graph, about: Description) -> list[URIRef | BNode]:
    """The producer commune, by its INSEE URI (one node per commune, shared by its datasets),
    and for map data a place of its own with the data's exact box (DCAT-AP allows one
    dcat:bbox per place)."""
    places: list[URIRef | BNode] = []
    if about.commune is not None:
        commune = _typed(graph, about.commune.uri, DCTERMS.Location)
        graph.add((commune, SKOS.prefLabel, Literal(about.commune.name, lang="fr")))
        graph.add((commune, DCTERMS.identifier, Literal(about.commune.insee)))
        places.append(commune)
    if about.extent.bbox is not None:
        extent = BNode()
        graph.add((extent, RDF.type, DCTERMS.Location))
        graph.add((extent, DCAT.bbox, Literal(wkt(about.extent.bbox), datatype=GEO.wktLiteral)))
        places.append(extent)
    return places


def wkt(bbox: tuple[float, float, float, float]) -> str:
    """A WGS84 box as WKT (longitude first, GeoSPARQL's default CRS84); a point as such."""
    west, south, east, north = bbox
    if west == east and south == north:
        return f"POINT({west!r} {south!r})"
    corners = [(west, south), (west, north), (east, north), (east, south), (west, south)]
    return "POLYGON((" + ", ".join(f"{x!r} {y!r}" for x, y in corners) + "))"


def _period(graph: Graph, about: Description) -> BNode | None:
    """The dates the data covers (its first date column), when it has one."""
    start, end = about.extent.start, about.extent.end
    if start is None or end is None:
        return None
    node = BNode()
    graph.add((node, RDF.type, DCTERMS.PeriodOfTime))
    graph.add((node, DCAT.startDate, Literal(start.isoformat(), datatype=XSD.date)))
    graph.add((node, DCAT.endDate, Literal(end.isoformat(), datatype=XSD.date)))
    return node


def _france(graph: Graph) -> URIRef:
    node = _concept(graph, "country", "FRA", "France")
    graph.add((node, RDF.type, DCTERMS.Location))
    return node


def _language(graph: Graph) -> URIRef:
    node = _concept(graph, "language", "FRA", "français")
    graph.add((node, RDF.type, DCTERMS.LinguisticSystem))
    return node


def _datetime(moment: datetime) -> Literal:
    return Literal(moment.isoformat(), datatype=XSD.dateTime)


def _distribution(
    graph: Graph, base: str, dataset: Dataset, release: Release, fmt: str, size: int
) -> URIRef:
    url = download(base, dataset.slug, fmt, release.structure_version)
    node = _typed(graph, f"{url}#distribution", DCAT.Distribution)
    add = graph.add
    add((node, DCTERMS.title, Literal(f"{dataset.metadata['title']} ({fmt.upper()})", lang="fr")))
    add(
        (
            node,
            DCTERMS.description,
            Literal(
                f"Version {release.id} au format {FILE_TYPES[fmt]}, structure v"
                f"{release.structure_version}. {_notice(dataset, release)}",
                lang="fr",
            ),
        )
    )
    add(
        (
            node,
            DCAT.accessURL,
            _typed(graph, dataset_page(base, dataset.slug), FOAF.Document),
        )
    )
    add((node, DCAT.downloadURL, URIRef(url)))
    file_type = _concept(graph, "file-type", FILE_TYPES[fmt], FILE_TYPES[fmt])
    graph.add((file_type, RDF.type, DCTERMS.MediaTypeOrExtent))
    add((node, DCTERMS.format, file_type))
    media = release.distribution(fmt).media_type
    add(
        (
            node,
            DCAT.mediaType,
            _typed(
                graph, f"https://www.iana.org/assignments/media-types/{media}", DCTERMS.MediaType
            ),
        )
    )
    licence = _typed(graph, release.licence["uri"], DCTERMS.LicenseDocument)
    graph.add((licence, DCTERMS.title, Literal(release.licence["name"], lang="fr")))
    add((node, DCTERMS.license, licence))
    add((node, DCAT.byteSize, Literal(size, datatype=XSD.nonNegativeInteger)))
    add((node, DCTERMS.modified, _datetime(release.published_at)))
    add((node, ADMS.status, _concept(graph, "distribution-status", "COMPLETED", "achevée")))
    add((node, DCATAP.availability, _concept(graph, "planned-availability", "STABLE", "stable")))
    return node


def _notice(dataset: Dataset, release: Release) -> str:
    source = dataset.metadata.get("publisher_name", dataset.producer)
    updated = release_updated(dataset, release).isoformat()  # core.dates
    return fill_notice(release.licence["notice"], source, updated)


def catalog_graph(
    base: str,
    entries: list[tuple[Dataset, Release]],
    page: int,
    total: int,
    page_size: int = PAGE_SIZE,
    extension: str = "ttl",
    store: Publications | None = None,
    catalogued: list[Dataset] | None = None,
) -> Graph:
    """One page of the catalog, with Hydra paging links for harvesters (with `store`, the
    datasets' version notes). The catalog's own dates span `catalogued`, every dataset of
    every page, so that each page says the same of the catalog (merged pages stay valid)."""
    graph = new_graph()
    catalog = URIRef(f"{base}/dcat/catalogue")
    graph.add((catalog, RDF.type, DCAT.Catalog))
    graph.add(
        (
            catalog,
            DCTERMS.title,
            Literal("Données ouvertes des communes de la Métropole de Lyon", lang="fr"),
        )
    )
    graph.add(
        (
            catalog,
            DCTERMS.description,
            Literal(
                "Jeux de données publiés par les communes partenaires de la Métropole de Lyon.",
                lang="fr",
            ),
        )
    )
    publisher = _typed(graph, f"{base}/communes", FOAF.Agent)
    graph.add(
        (publisher, FOAF.name, Literal("Métropole de Lyon et communes partenaires", lang="fr"))
    )
    graph.add((publisher, DCTERMS.type, _adms_publisher_type(graph)))
    graph.add((catalog, DCTERMS.publisher, publisher))
    graph.add((catalog, DCTERMS.language, _language(graph)))
    graph.add((catalog, DCTERMS.spatial, _france(graph)))
    graph.add((catalog, DCAT.themeTaxonomy, _scheme(graph, f"{EU}data-theme", "Data theme")))
    licence = _typed(
        graph, "https://www.etalab.gouv.fr/licence-ouverte-open-licence/", DCTERMS.LicenseDocument
    )
    graph.add((catalog, DCTERMS.license, licence))  # of the catalog's own metadata
    every = catalogued if catalogued is not None else [d for d, _ in entries]
    if every:
        graph.add((catalog, DCTERMS.issued, _datetime(min(d.first_published_at for d in every))))
        graph.add((catalog, DCTERMS.modified, _datetime(max(d.last_published_at for d in every))))
    graph.add((catalog, FOAF.homepage, _typed(graph, f"{base}/", FOAF.Document)))
    for dataset, release in entries:
        graph.add((catalog, DCAT.dataset, add_dataset(graph, base, dataset, release, store)))
    last = max(1, -(-total // page_size))

    def page_uri(number: int) -> URIRef:
        return URIRef(f"{base}/dcat/catalogue.{extension}?page={number}&taille={page_size}")

    view = page_uri(page)
    graph.add((view, RDF.type, HYDRA.PartialCollectionView))
    graph.add((view, HYDRA.first, page_uri(1)))
    graph.add((view, HYDRA.last, page_uri(last)))
    if page < last:
        graph.add((view, HYDRA.next, page_uri(page + 1)))
    if page > 1:
        graph.add((view, HYDRA.previous, page_uri(page - 1)))
    graph.add((catalog, HYDRA.view, view))
    graph.add((catalog, HYDRA.totalItems, Literal(total, datatype=XSD.nonNegativeInteger)))
    return graph


def dataset_graph(
    base: str, dataset: Dataset, release: Release, store: Publications | None = None
) -> Graph:
    graph = new_graph()
    add_dataset(graph, base, dataset, release, store)
    return graph


def serialise(graph: Graph, extension: str) -> tuple[str, str]:
    fmt, media_type = SERIALISATIONS[extension]
    return graph.serialize(format=fmt), media_type
