"""Source type `wfs`: a layer of an OGC WFS (2.0.0 or 1.1.0), every feature, in pages.

The layer is found in the capabilities (with or without its namespace prefix), its
features counted (RESULTTYPE=hits), then asked page after page as GeoJSON when the server
offers it, else as GML read by GDAL; the count received must be the count announced. An
exception report, whatever its HTTP status, is a French error.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio
from lxml import etree
from owslib.wfs import WebFeatureService

from core.records import SourceState
from core.sources import Source
from pipelines.harvest.changes import keep
from pipelines.harvest.contract import Fetching, FetchResult
from pipelines.harvest.errors import SourceError
from pipelines.harvest.geojson import json_features, write_geojson
from pipelines.harvest.http import HttpClient
from pipelines.harvest.paging import all_pages
from pipelines.harvest.safe_xml import XML_PARSER, refuse_unsafe_xml


class WfsSource:
    """`type: wfs`: the layer `couche` of the service at `url`, in the WFS `version`."""

    name = "wfs"

    def fetch(self, source: Source, state: SourceState | None, fetching: Fetching) -> FetchResult:
        return fetch_wfs(
            fetching.client,
            source,
            state,
            fetching.target_dir,
            fetching.name,
            fetching.page_size,
            fetching.crs,
        )


@dataclass(frozen=True)
class WfsLayer:
    typename: str
    srs: str  # as the capabilities list it
    epsg: int
    geojson: str | None  # the GeoJSON output format, when offered


def fetch_wfs(
    client: HttpClient,
    source: Source,
    state: SourceState | None,
    target_dir: Path,
    name: str,
    page_size: int,
    crs: int | None,
    allow_geojson: bool = True,
) -> FetchResult:
    version = source.version or "2.0.0"
    layer = _wfs_layer(client, source, version, crs)
    if not allow_geojson:
        layer = replace(layer, geojson=None)
    total = wfs_hits(client, source, version, layer)
    part = target_dir / f".{name}.part"
    try:
        if layer.geojson:
            pages = _wfs_geojson_pages(client, source, version, layer, total, page_size, part)
        else:
            pages = _wfs_gml_pages(client, source, version, layer, total, page_size, part)
        return keep(part, target_dir / f"{name}.geojson", state, source.url, None, None, pages)
    finally:
        part.unlink(missing_ok=True)


def _wfs_layer(client: HttpClient, source: Source, version: str, crs: int | None) -> WfsLayer:
    what = "Capacités du service WFS"
    params = {"SERVICE": "WFS", "REQUEST": "GetCapabilities", "VERSION": version}
    response = client.get(source.url, what, params=params, explain=_wfs_explain(source.url))
    _raise_exception_report(response.content, source.url)
    try:
        service = WebFeatureService(source.url, version=version, xml=response.content)
    except Exception as error:  # OWSLib raises whatever its XML parsing meets
        raise SourceError(
            "wfs-capacites-illisibles", f"{what} illisibles ({error})", source.url
        ) from error
    typename = _find_layer(list(service.contents), source.couche or "", source.url)
    content = service.contents[typename]
    formats = _output_formats(service, content)
    geojson = next((f for f in formats if "json" in f.lower()), None)
    srs, epsg = _choose_crs(content.crsOptions, crs)
    return WfsLayer(typename=typename, srs=srs, epsg=epsg, geojson=geojson)


def _find_layer(offered: list[str], wanted: str, url: str) -> str:
    """The layer as declared, with or without its namespace prefix."""

    def local(name: str) -> str:
        return name.split(":")[-1]

    for name in offered:
        if name == wanted or local(name) == local(wanted):
            return name
    raise SourceError(
        "wfs-couche-inconnue",
        f"Couche « {wanted} » absente du service WFS (couches offertes : "
        f"{', '.join(offered[:30]) or 'aucune'})",
        url,
    )


def _output_formats(service: Any, content: Any) -> list[str]:
    formats = list(getattr(content, "outputFormats", None) or [])
    try:
        operation = service.getOperationByName("GetFeature")
        values = operation.parameters.get("outputFormat", {}).get("values", [])
    except (KeyError, AttributeError):
        values = []
    return formats + [v for v in values if v not in formats]


def _choose_crs(options: list[Any], declared: int | None) -> tuple[str, int]:
    """The declared CRS when offered, else a projected accepted one (no axis order
    ambiguity), else WGS 84 (longitude first in GeoJSON, RFC 7946)."""
    codes = {getattr(o, "code", None): o for o in options}
    for code in (declared, 2154, 3946, 4326, 4171):
        if code is not None and code in codes:
            return codes[code].getcodeurn(), code
    return "urn:ogc:def:crs:EPSG::4326", 4326


def _wfs_params(version: str, layer: WfsLayer, **extra: str) -> dict[str, str]:
    params = {"SERVICE": "WFS", "REQUEST": "GetFeature", "VERSION": version}
    params["TYPENAMES" if version.startswith("2") else "TYPENAME"] = layer.typename
    params.update(extra)
    return params


def wfs_hits(client: HttpClient, source: Source, version: str, layer: WfsLayer) -> int | None:
    """How many features the layer holds, when the server says (RESULTTYPE=hits)."""
    params = _wfs_params(version, layer, RESULTTYPE="hits")
    what = "Nombre d'objets de la couche WFS"
    response = client.get(source.url, what, params=params, explain=_wfs_explain(source.url))
    _raise_exception_report(response.content, source.url)
    try:
        root = etree.fromstring(response.content, parser=XML_PARSER)
    except etree.XMLSyntaxError:
        return None
    value = root.get("numberMatched") or root.get("numberOfFeatures")
    return int(value) if value and value.isdigit() else None


def _wfs_page(
    client: HttpClient,
    source: Source,
    version: str,
    layer: WfsLayer,
    start: int,
    count: int,
    output: str | None,
) -> bytes:
    size = "COUNT" if version.startswith("2") else "MAXFEATURES"
    extra = {size: str(count), "STARTINDEX": str(start), "SRSNAME": layer.srs}
    if output:
        extra["OUTPUTFORMAT"] = output
    params = _wfs_params(version, layer, **extra)
    what = f"Objets {start + 1} à {start + count} de la couche WFS « {layer.typename} »"
    response = client.get(source.url, what, params=params, explain=_wfs_explain(source.url))
    _raise_exception_report(response.content, source.url)
    return response.content


def _wfs_geojson_pages(
    client: HttpClient,
    source: Source,
    version: str,
    layer: WfsLayer,
    total: int | None,
    page_size: int,
    part: Path,
) -> int:
    features: list[dict[str, Any]] = []

    def page(start: int) -> int:
        content = _wfs_page(client, source, version, layer, start, page_size, layer.geojson)
        got = json_features(content, source.url)
        features.extend(got)
        return len(got)

    pages = all_pages(page, total, source.url)
    write_geojson(features, layer.epsg, part, source.url)
    return pages


def _wfs_gml_pages(
    client: HttpClient,
    source: Source,
    version: str,
    layer: WfsLayer,
    total: int | None,
    page_size: int,
    part: Path,
) -> int:
    frames: list[gpd.GeoDataFrame] = []

    def page(start: int) -> int:
        content = _wfs_page(client, source, version, layer, start, page_size, None)
        frame = _gml_frame(content, part.parent / f".page-{start}.gml", source.url)
        frames.append(frame)
        return len(frame)

    pages = all_pages(page, total, source.url)
    frames = [f for f in frames if len(f)]
    if not frames:
        raise SourceError("reponse-vide", "La couche WFS ne contient aucun objet", source.url)
    merged = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    merged = merged.drop(columns=[c for c in ("gml_id",) if c in merged.columns])
    pyogrio.write_dataframe(merged, part, driver="GeoJSON")
    return pages


def _gml_frame(content: bytes, path: Path, url: str) -> gpd.GeoDataFrame:
    """One GML page as a GeoDataFrame (GDAL turns the axis order of the CRS right)."""
    try:
        root = etree.fromstring(content, parser=XML_PARSER)
    except etree.XMLSyntaxError as error:
        raise SourceError("contenu-inattendu", f"Page GML illisible ({error})", url) from error
    if (root.get("numberReturned") or root.get("numberOfFeatures")) == "0":
        return gpd.GeoDataFrame()
    path.write_bytes(content)
    try:
        return pyogrio.read_dataframe(path, DOWNLOAD_SCHEMA="NO")
    except Exception as error:  # GDAL errors come in several types
        raise SourceError("contenu-inattendu", f"Page GML illisible ({error})", url) from error
    finally:
        for leftover in path.parent.glob(f"{path.stem}.*"):
            leftover.unlink(missing_ok=True)


def _wfs_explain(url: str) -> Callable[[int, bytes], SourceError | None]:
    def explain(_code: int, body: bytes) -> SourceError | None:
        refuse_unsafe_xml(body, url)
        text = _exception_text(body)
        return None if text is None else _exception_error(text, url)

    return explain


def _raise_exception_report(content: bytes, url: str) -> None:
    refuse_unsafe_xml(content, url)  # every WFS answer comes here before it is parsed
    text = _exception_text(content)
    if text is not None:
        raise _exception_error(text, url)


def _root_name(content: bytes) -> str | None:
    """The local name of an XML document's root, read without parsing the rest."""
    if content.lstrip()[:1] != b"<":
        return None
    events = etree.iterparse(
        io.BytesIO(content), events=("start",), resolve_entities=False, no_network=True
    )
    try:
        for _, element in events:
            return etree.QName(element).localname
    except etree.XMLSyntaxError:
        return None
    return None


def _exception_error(text: str, url: str) -> SourceError:
    return SourceError(
        "wfs-exception", f"Le service WFS a répondu par un rapport d'exception : « {text} »", url
    )


def _exception_text(content: bytes) -> str | None:
    """The text of an OGC exception report (whatever the HTTP status), else None."""
    if _root_name(content) not in {"ExceptionReport", "ServiceExceptionReport"}:
        return None
    root = etree.fromstring(content, parser=XML_PARSER)
    texts = " ".join(t.strip() for t in root.itertext() if t.strip())
    return texts[:500] or "(sans message)"
