"""What a published dataset is, said once: the description that every metadata standard
the catalog writes is a rendering of.

`describe` maps the stored metadata, the producer (`config/producers.yaml`) and the current
release's data onto plain values: title, abstract, dates, contact, licence, CRS, exact
extent in WGS84, temporal extent, keywords and themes, frequency, lineage and links.
`catalog.iso19139` writes it as an ISO 19139 record (CSW, the MetadataURL of WMS and WFS),
`catalog.dcat` as DCAT-AP 3: neither maps the metadata itself.

The data's extents are read from the release's Parquet once per release (releases are
immutable): the bounding box of every geometry after reprojection to WGS84, not the
reprojected corners of the native box (which are larger), and the first and last dates of
the first date column (the column OGC API Features filters with `datetime`).
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from catalog.store import Releases, downloads
from core.dates import release_updated
from core.licences import fill_notice
from core.producers import Producer, load_producers
from core.records import Dataset, Release
from core.settings import load_settings
from core.urls import dataset_page, dataset_resource, download
from core.vocabularies import THEMES, Frequency, find_frequency

LOGGER = logging.getLogger(__name__)
WGS84 = 4326
INSEE_COMMUNE = "http://id.insee.fr/geo/commune/"  # INSEE's URI of a commune, by its code
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/"
# Link protocols, as GeoNetwork names them (its map viewer and DCAT exports read them).
PAGE, DOWNLOAD = "WWW:LINK", "WWW:DOWNLOAD-1.0-http--download"
OGC_API, WMS, WFS = "OGC:OGC-API-Features-items", "OGC:WMS", "OGC:WFS"
DATE_TYPES = ("date", "datetime")


@dataclass(frozen=True)
class Link:
    protocol: str
    url: str
    name: str  # the layer name for OGC services, as harvesters expect
    description: str
    function: str = ""  # ISO CI_OnLineFunctionCode: download, information (empty: a service)


@dataclass(frozen=True)
class Contact:
    organisation: str  # the producer commune
    service: str  # the commune's service answering for the dataset
    email: str
    page: str  # the commune's page on the portal


@dataclass(frozen=True)
class Commune:
    name: str
    insee: str

    @property
    def uri(self) -> str:
        return INSEE_COMMUNE + self.insee


@dataclass(frozen=True)
class Licence:
    name: str
    url: str  # the licence's page
    uri: str  # its identifier (DCAT)
    notice: str  # how to credit the source, filled in for this dataset


@dataclass(frozen=True)
class Extent:
    """What the data itself covers."""

    bbox: tuple[float, float, float, float] | None = None  # WGS84 west, south, east, north
    start: date | None = None
    end: date | None = None


@dataclass(frozen=True)
class Description:
    identifier: str  # the dataset's slug: CSW record id, DCAT dct:identifier
    uri: str  # the dataset's URI (DCAT node, ISO resource identifier)
    page: str
    title: str
    abstract: str
    created: date  # first publication on the platform
    published: date  # publication of the current release
    revised: date  # the data's last update: the reference date of core.dates
    contact: Contact
    commune: Commune | None
    licence: Licence
    crs: int | None  # EPSG code of the data, for map data
    extent: Extent
    keywords: list[str]
    themes: dict[str, str]  # EU data-theme code -> French label
    frequency: Frequency
    lineage: str  # how the data is produced and delivered
    links: list[Link] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)  # OGC layer names, current first

    @property
    def crs_uri(self) -> str | None:
        return f"{EPSG_URI}{self.crs}" if self.crs else None


def describe(
    store: Releases | None,
    dataset: Dataset,
    release: Release,
    base: str,
    layers: list[str] | None = None,
) -> Description:
    """The dataset as every metadata standard describes it; links start with `base`
    (without `store`, nothing is read from the data: no CRS of its own, no extents)."""
    metadata = dataset.metadata
    structure = _structure(store, release) if store is not None else {}
    geographic = bool(structure.get("geometry_type"))
    source = metadata.get("publisher_name", dataset.producer)
    producer = producers().get(dataset.producer)
    licence = release.licence
    frequency = find_frequency(str(metadata["accrual_periodicity"])) or find_frequency("UNKNOWN")
    assert frequency is not None
    return Description(
        identifier=dataset.slug,
        uri=dataset_resource(base, dataset.slug),
        page=dataset_page(base, dataset.slug),
        title=metadata["title"],
        abstract=metadata["description"],
        created=dataset.first_published_at.date(),
        published=release.published_at.date(),
        revised=release_updated(dataset, release),  # the reference date (core.dates)
        contact=Contact(
            organisation=source,
            service=metadata["contact"]["name"],
            email=metadata["contact"]["email"],
            page=f"{base}/communes/{dataset.producer}",
        ),
        commune=Commune(producer.name, producer.insee) if producer and producer.insee else None,
        licence=Licence(
            name=licence["name"],
            url=licence["url"],
            uri=licence.get("uri", licence["url"]),
            notice=_notice(licence, source, release_updated(dataset, release).isoformat()),
        ),
        crs=_crs(metadata, structure) if geographic or metadata.get("crs") else None,
        extent=data_extent(store, release, structure) if store is not None else Extent(),
        keywords=list(metadata.get("keywords", [])),
        themes={code: THEMES[code] for code in metadata.get("themes", []) if code in THEMES},
        frequency=frequency,
        lineage=" ".join(str(metadata.get("delivery", "")).split()),
        links=links(base, dataset.slug, geographic, layers or []),
        layers=list(layers or []),
    )


def links(base: str, slug: str, geographic: bool, layers: list[str]) -> list[Link]:
    """The dataset's page, downloads and, for map data, its layers in every OGC service."""
    found = [Link(PAGE, dataset_page(base, slug), slug, "Fiche sur le portail", "information")]
    found += [
        Link(
            DOWNLOAD, download(base, slug, fmt), fmt, f"Téléchargement au format {fmt}", "download"
        )
        for fmt in downloads.offered(geographic)
    ]
    for layer in layers:
        found += [
            Link(
                OGC_API,
                f"{base}/ogc/collections/{layer}/items",
                layer,
                "Objets de la collection (OGC API Features)",
            ),
            Link(WMS, f"{base}/wms", layer, "Couche WMS"),
            Link(WFS, f"{base}/wfs", layer, "Type d'objets WFS"),
        ]
    return found


# --- the data's extents ----------------------------------------------------------------------

MAX_EXTENTS = 65536
_EXTENTS: dict[tuple[Any, ...], Extent] = {}  # by the file's identity


def data_extent(store: Releases, release: Release, structure: dict[str, Any]) -> Extent:
    """The release's extents (empty when its Parquet cannot be read: logged, not fatal)."""
    parquet = store.release_path(release, "parquet")
    if parquet is None or not parquet.is_file():
        return Extent()
    fields = (structure.get("published_schema") or structure.get("schema") or {}).get("fields", [])
    date_field = next((f["name"] for f in fields if f.get("type") in DATE_TYPES), None)
    try:
        return _stored_extent(parquet, bool(structure.get("geometry_type")), date_field)
    except Exception:  # a damaged file must not take the catalogue services down
        LOGGER.exception("Étendue de %s illisible", parquet)
        return Extent()


def _stored_extent(parquet: Path, geographic: bool, date_field: str | None) -> Extent:
    """The extent read once per file (releases are immutable): kept in memory by the
    file's identity (a file linked into several releases is read once) and beside the
    Parquet (`derived/…-etendue.json`), so that a restarted catalog reads no data again."""
    identity = parquet.stat()
    key = (identity.st_dev, identity.st_ino, identity.st_mtime_ns, geographic, date_field)
    found = _EXTENTS.get(key)
    if found is None:
        found = _file_extent(parquet, geographic, date_field)
        while len(_EXTENTS) >= MAX_EXTENTS:
            _EXTENTS.pop(next(iter(_EXTENTS)))
        _EXTENTS[key] = found
    return found


def _file_extent(parquet: Path, geographic: bool, date_field: str | None) -> Extent:
    kept = parquet.parent / "derived" / f"{parquet.stem}-etendue.json"
    key = [geographic, date_field]
    try:
        stored = json.loads(kept.read_text(encoding="utf-8"))
        if stored["key"] == key:
            bbox = tuple(stored["bbox"]) if stored["bbox"] else None
            start, end = (date.fromisoformat(d) if d else None for d in stored["dates"])
            return Extent(bbox, start, end)  # type: ignore[arg-type]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    extent = _read_extent(parquet, geographic, date_field)
    dates = [d.isoformat() if d else None for d in (extent.start, extent.end)]
    text = json.dumps({"key": key, "bbox": extent.bbox, "dates": dates})
    try:
        kept.parent.mkdir(exist_ok=True)
        temporary = kept.with_name(f".{kept.name}.{os.getpid()}")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, kept)
    except OSError:  # a read-only file store: kept in memory only
        LOGGER.warning("Étendue de %s non enregistrée", parquet)
    return extent


def _read_extent(parquet: Path, geographic: bool, date_field: str | None) -> Extent:
    bbox = _wgs84_bounds(parquet) if geographic else None
    start = end = None
    if date_field is not None:
        column = pq.read_table(parquet, columns=[date_field]).column(date_field)
        bounds = pc.min_max(column)
        first, last = bounds["min"].as_py(), bounds["max"].as_py()
        if first is not None and last is not None:  # None: the column is empty
            start, end = _date(first), _date(last)
    return Extent(bbox, start, end)


def _wgs84_bounds(parquet: Path) -> tuple[float, float, float, float] | None:
    geo = json.loads((pq.read_schema(parquet).metadata or {}).get(b"geo", b"{}"))
    column = geo.get("primary_column")
    frame = gpd.read_parquet(parquet, columns=[column] if column else None)
    frame = frame[~frame.geometry.is_empty & frame.geometry.notna()]
    if frame.empty:
        return None
    if frame.crs is not None and frame.crs.to_epsg() != WGS84:
        frame = frame.to_crs(WGS84)
    west, south, east, north = (float(v) for v in frame.total_bounds)
    if any(math.isnan(v) for v in (west, south, east, north)):
        return None
    return (west, south, east, north)


# --- helpers ---------------------------------------------------------------------------------


@cache
def _producers(path: Path, mtime: float) -> dict[str, Producer]:
    return load_producers(path)


def producers() -> dict[str, Producer]:
    path = load_settings().producers_file
    try:
        return _producers(path, path.stat().st_mtime)
    except OSError:
        return {}


def _structure(store: Releases, release: Release) -> dict[str, Any]:
    for version in store.structure_versions(release.dataset):
        if version.version == release.structure_version:
            return version.structure
    return {}


def _crs(metadata: dict[str, Any], structure: dict[str, Any]) -> int:
    """The data's EPSG code: declared in the metadata, else the structure's, else WGS84."""
    for value in (metadata.get("crs"), structure.get("crs")):
        text = str(value or "").upper().removeprefix("EPSG:")
        if text.isdigit():
            return int(text)
    return WGS84


def _notice(licence: dict[str, Any], source: str, modified: str) -> str:
    return fill_notice(str(licence.get("notice", "")), source, modified)


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
