"""Source type `ogcapi`: a collection of an OGC API – Features service, every feature,
following the `next` links; the count received must be the `numberMatched` announced."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from core.records import SourceState
from core.sources import Source
from pipelines.harvest.changes import keep
from pipelines.harvest.contract import Fetching, FetchResult
from pipelines.harvest.errors import SourceError
from pipelines.harvest.geojson import json_document, write_geojson
from pipelines.harvest.http import HttpClient
from pipelines.harvest.paging import MAX_PAGES, paging_error


class OgcApiSource:
    """`type: ogcapi`: the collection `collection` of the service at `url`."""

    name = "ogcapi"

    def fetch(self, source: Source, state: SourceState | None, fetching: Fetching) -> FetchResult:
        return _fetch_ogcapi(
            fetching.client, source, state, fetching.target_dir, fetching.name, fetching.page_size
        )


def _fetch_ogcapi(
    client: HttpClient,
    source: Source,
    state: SourceState | None,
    target_dir: Path,
    name: str,
    page_size: int,
) -> FetchResult:
    items = f"{source.url.rstrip('/')}/collections/{quote(source.collection or '')}/items"
    part = target_dir / f".{name}.part"
    try:
        features, pages = _ogcapi_features(client, items, page_size, source.collection or "")
        write_geojson(features, 4326, part, source.url)
        return keep(part, target_dir / f"{name}.geojson", state, source.url, None, None, pages)
    finally:
        part.unlink(missing_ok=True)


def _ogcapi_features(
    client: HttpClient, items: str, page_size: int, collection: str
) -> tuple[list[dict[str, Any]], int]:
    """Every feature, following `next` links; the count checked against numberMatched."""
    url: str | None = f"{items}?limit={page_size}"
    features: list[dict[str, Any]] = []
    matched: int | None = None
    seen: set[str] = set()
    pages = 0
    while url is not None and pages < MAX_PAGES:
        seen.add(url)
        document = _ogcapi_page(client, url, pages, len(features), collection)
        pages += 1
        if pages == 1 and isinstance(document.get("numberMatched"), int):
            matched = document["numberMatched"]
        got = document.get("features")
        if not isinstance(got, list):
            raise SourceError("contenu-inattendu", "Page sans « features » (GeoJSON)", url)
        features.extend(got)
        url = _next_link(document, url) if got else None
        if url in seen:
            raise SourceError("pagination-sans-fin", "Le lien « next » tourne en rond", url)
    if matched is not None and len(features) != matched:
        raise paging_error(len(features), matched, items)
    return features, pages


def _ogcapi_page(
    client: HttpClient, url: str, index: int, received: int, collection: str
) -> dict[str, Any]:
    what = f"Page {index + 1} de la collection OGC API « {collection} »"
    accept = "application/geo+json, application/json;q=0.9"
    try:
        response = client.get(url, what, accept=accept)
    except SourceError as error:
        if index == 0:
            raise
        raise SourceError(
            "pagination-interrompue",
            f"Le lien vers la page suivante est cassé après {received} objet(s) : "
            f"{error.message} ; rien n'est publié à partir d'une récupération partielle",
            url,
        ) from error
    return json_document(response.content, url)


def _next_link(document: dict[str, Any], url: str) -> str | None:
    for link in document.get("links") or []:
        kind = (link.get("type") or "application/geo+json").lower()
        if link.get("rel") == "next" and "json" in kind and link.get("href"):
            target = urljoin(url, link["href"])
            if urlsplit(target).scheme in {"http", "https"}:
                return target
    return None
