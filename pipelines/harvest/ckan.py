"""Source type `ckan`: a resource of a dataset of a CKAN catalog (API `package_show`),
named by its name, its id, or its format when only one resource has it; then fetched as a
file (`pipelines.harvest.file`)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from core.input_formats import FORMAT_BY_NAME
from core.records import SourceState
from core.sources import Source
from pipelines.harvest.contract import Fetching, FetchResult
from pipelines.harvest.errors import SourceError
from pipelines.harvest.file import fetch_file, public_url
from pipelines.harvest.geojson import json_document
from pipelines.harvest.http import HttpClient


class CkanSource:
    """`type: ckan`: the resource `ressource` of the dataset `jeu` of the catalog at `url`."""

    name = "ckan"

    def fetch(self, source: Source, state: SourceState | None, fetching: Fetching) -> FetchResult:
        url, fmt = _resolve_ckan(fetching.client, source)
        return fetch_file(fetching.client, url, fmt, state, fetching.target_dir, fetching.name)


def _resolve_ckan(client: HttpClient, source: Source) -> tuple[str, str | None]:
    """The URL (and format) of the declared resource of a CKAN dataset."""
    api = urljoin(source.url.rstrip("/") + "/", "api/3/action/package_show")
    what = f"Jeu « {source.jeu} » du catalogue CKAN"

    def explain(code: int, _body: bytes) -> SourceError | None:
        if code == 404:
            return SourceError("ckan-jeu-introuvable", f"{what} introuvable", source.url)
        return None

    response = client.get(api, what, params={"id": source.jeu or ""}, explain=explain)
    document = json_document(response.content, api)
    result = document.get("result")
    if not document.get("success") or not isinstance(result, dict):
        raise SourceError("ckan-jeu-introuvable", f"{what} introuvable", source.url)
    resource = _ckan_resource(result.get("resources") or [], source.ressource or "", source.url)
    fmt = FORMAT_BY_NAME.get(str(resource.get("format") or "").strip().lower())
    return public_url(resource.get("url"), source.url), fmt


def _ckan_resource(resources: list[dict[str, Any]], wanted: str, url: str) -> dict[str, Any]:
    key = wanted.strip().casefold()
    by_name = [
        r for r in resources if key in {str(r.get(k) or "").casefold() for k in ("name", "id")}
    ]
    if by_name:
        return by_name[0]
    by_format = [r for r in resources if str(r.get("format") or "").strip().casefold() == key]
    if len(by_format) == 1:
        return by_format[0]
    offered = ", ".join(f"{r.get('name')} ({r.get('format')})" for r in resources) or "aucune"
    if by_format:
        raise SourceError(
            "ckan-ressource-ambigue",
            f"Plusieurs ressources au format « {wanted} » : donnez le nom de la ressource "
            f"(ressources : {offered})",
            url,
        )
    raise SourceError(
        "ckan-ressource-introuvable",
        f"Aucune ressource nommée ou au format « {wanted} » (ressources : {offered})",
        url,
    )
