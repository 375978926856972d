"""Source type `dcat`: the distribution in a given format of a dataset of a DCAT catalog
(Turtle, JSON-LD or RDF/XML, looked through its Hydra pages); then fetched as a file
(`pipelines.harvest.file`). A JSON-LD context named by address is refused, never fetched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rdflib import Graph, URIRef
from rdflib.namespace import DCAT, DCTERMS, RDF

from core.input_formats import DESCRIPTIONS
from core.records import SourceState
from core.sources import Source
from pipelines.harvest.contract import Fetching, FetchResult
from pipelines.harvest.errors import SourceError
from pipelines.harvest.file import fetch_file, public_url
from pipelines.harvest.http import HttpClient
from pipelines.harvest.paging import MAX_PAGES
from pipelines.harvest.safe_xml import refuse_unsafe_xml

# How catalogs name each format (DCAT file-type codes, media types, CKAN formats).
FORMAT_LABELS = {d.name: set(d.catalog_names) for d in DESCRIPTIONS}
RDF_FORMATS = {
    "text/turtle": "turtle",
    "application/ld+json": "json-ld",
    "application/rdf+xml": "xml",
    "application/n-triples": "nt",
}
HYDRA_NEXT = URIRef("http://www.w3.org/ns/hydra/core#next")


class DcatSource:
    """`type: dcat`: the distribution in `format` of the dataset `jeu` of the catalog at
    `url`."""

    name = "dcat"

    def fetch(self, source: Source, state: SourceState | None, fetching: Fetching) -> FetchResult:
        url = _resolve_dcat(fetching.client, source)
        return fetch_file(
            fetching.client, url, source.format, state, fetching.target_dir, fetching.name
        )


def _resolve_dcat(client: HttpClient, source: Source) -> str:
    """The download URL of the wanted distribution of a dataset of a DCAT catalog, looking
    through the catalog's Hydra pages."""
    url: str | None = source.url
    seen: set[str] = set()
    while url is not None and url not in seen and len(seen) < MAX_PAGES:
        seen.add(url)
        graph = _dcat_graph(client, url)
        dataset = _dcat_dataset(graph, source.jeu or "")
        if dataset is not None:
            return _dcat_download(graph, dataset, source)
        url = _hydra_next(graph)
    raise SourceError(
        "dcat-jeu-introuvable", f"Jeu « {source.jeu} » absent du catalogue DCAT", source.url
    )


def _hydra_next(graph: Graph) -> str | None:
    for _, _, target in graph.triples((None, HYDRA_NEXT, None)):
        return str(target)
    return None


def _dcat_graph(client: HttpClient, url: str) -> Graph:
    accept = "text/turtle, application/ld+json;q=0.9, application/rdf+xml;q=0.8"
    response = client.get(url, "Catalogue DCAT", accept=accept)
    syntax = RDF_FORMATS.get(response.media_type) or _rdf_format_of(url)
    data: bytes | dict[str, Any] = response.content
    if syntax == "xml":
        refuse_unsafe_xml(response.content, url)
    if syntax == "json-ld":
        data = _local_json_ld(response.content, url)
    graph = Graph()
    try:
        graph.parse(data=data, format=syntax, publicID=url)
    except Exception as error:  # rdflib raises per-syntax error types
        raise SourceError(
            "dcat-illisible", f"Catalogue DCAT illisible en {syntax} ({error})", url
        ) from error
    return graph


def _local_json_ld(content: bytes, url: str) -> dict[str, Any]:
    """The JSON-LD document, refused if it names a context by its address: rdflib would
    fetch it itself (`rdflib.plugins.shared.jsonld.context.Context._fetch_context`, with
    urllib), past the SSRF guard and at any address, `file:` included. rdflib is handed
    the parsed document, so that it reads nothing else."""
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise SourceError(
            "dcat-illisible", f"Catalogue DCAT illisible en json-ld ({error})", url
        ) from error
    if not isinstance(document, dict | list):
        raise SourceError("dcat-illisible", "Catalogue DCAT JSON-LD : objet attendu", url)
    remote = _remote_context(document)
    if remote is not None:
        raise SourceError(
            "dcat-contexte-distant",
            f"Catalogue DCAT JSON-LD avec un contexte distant (« {remote[:200]} ») : la "
            "plateforme ne télécharge aucun contexte JSON-LD ; intégrez le contexte au "
            "document (« @context » : { … }) ou publiez le catalogue en Turtle ou RDF/XML",
            url,
        )
    # rdflib takes a parsed document as a dict only: a top-level array is its @graph
    return document if isinstance(document, dict) else {"@graph": document}


def _remote_context(node: Any) -> str | None:
    """The first context named by address (`"@context": "https://…"`, in a list, or an
    `@import`) anywhere in a JSON-LD document: embedded and scoped contexts included."""
    stack = [node]
    while stack:
        value = stack.pop()
        if isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            named = _named_context(value.get("@context"))
            if named is not None:
                return named
            if "@import" in value:
                return str(value["@import"])
            stack.extend(value.values())
    return None


def _named_context(context: Any) -> str | None:
    """A context given by address: the value itself, or an item of (nested) arrays, which
    rdflib reads the same way."""
    pending = [context]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            return item
        if isinstance(item, list):
            pending.extend(item)
    return None


def _rdf_format_of(url: str) -> str:
    suffix = Path(urlsplit(url).path).suffix.lower()
    return {".jsonld": "json-ld", ".rdf": "xml", ".xml": "xml", ".nt": "nt"}.get(suffix, "turtle")


def _dcat_dataset(graph: Graph, wanted: str) -> URIRef | None:
    """The dataset whose URI or dct:identifier is `wanted`."""
    for dataset in graph.subjects(RDF.type, DCAT.Dataset):
        identifiers = {str(i) for i in graph.objects(dataset, DCTERMS.identifier)}
        if isinstance(dataset, URIRef) and wanted in identifiers | {str(dataset)}:
            return dataset
    return None


def _dcat_download(graph: Graph, dataset: URIRef, source: Source) -> str:
    wanted = source.format or ""
    offered = []
    for distribution in graph.objects(dataset, DCAT.distribution):
        labels = set()
        for term in (DCTERMS.format, DCAT.mediaType):
            for value in graph.objects(distribution, term):
                labels |= _labels(value)
        offered.append("/".join(sorted(labels)) or "?")
        if labels & FORMAT_LABELS.get(wanted, {wanted}):
            download = graph.value(distribution, DCAT.downloadURL)
            if download is None:
                raise SourceError(
                    "dcat-sans-telechargement",
                    f"La distribution {wanted.upper()} du jeu n'a pas d'adresse de "
                    "téléchargement (dcat:downloadURL)",
                    source.url,
                )
            return public_url(str(download), source.url)
    raise SourceError(
        "dcat-distribution-introuvable",
        f"Aucune distribution au format {wanted.upper()} pour ce jeu (distributions : "
        f"{', '.join(offered) or 'aucune'})",
        source.url,
    )


def _labels(value: Any) -> set[str]:
    """`…/file-type/CSV` → csv; `…/media-types/text/csv` → text/csv; a literal as written."""
    text = str(value).strip().lower()
    if not isinstance(value, URIRef):
        return {text}
    labels = {text.rstrip("/").rsplit("/", 1)[-1]}
    if "media-types/" in text:
        labels.add(text.split("media-types/", 1)[1])
    return labels
