"""What a dataset's page gives a reuser to take the data elsewhere (issue #19).

- « Utiliser dans un SIG » (`gis`): for a dataset served as a layer (the current structure
  has a geometry), the addresses of the WMS and WFS services and their capabilities, the
  layer's name, its OGC API – Features collection, and the dataset's ISO 19139 record in
  the CSW. A restricted dataset is not in the public services (`catalog.ogc.services`):
  its page names none of them.
- « Utiliser l'API » (`api_examples`): curl commands that work as they are: rows filtered
  on a value the data holds and paged, the CSV download, and for a layer its OGC API items
  in a box inside the data's extent.
- The downloads (`files`): each format with its size (French units) when its file exists
  (stored, or derived by an earlier download: the page builds none) and its date.
- The schema.org `Dataset` JSON-LD of the page's head (`catalog.schema_org`).

Every address starts with the public base URL (`catalog.site`, OPENDATA_PUBLIC_URL).
"""

from __future__ import annotations

import functools
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from catalog import schema_org
from catalog.description import Description, describe
from catalog.ogc.layers import layer_name
from catalog.ogc.mapserver import LAYER_NAME
from catalog.store import Releases, downloads
from catalog.web.views import is_public
from core.records import Dataset, Release
from core.urls import (
    capabilities,
    dataset_api,
    download,
    iso_record,
    ogc_api,
    ogc_collection,
    ogc_service,
)

SAMPLE_MAX_LENGTH = 40  # a longer value makes an unreadable example
PAGE_SIZE = 10
UNITS = (("Go", 10**9), ("Mo", 10**6), ("ko", 10**3))
# in double quotes: the shell puts the caller's token (`JETON=…`) in its place
TOKEN_HEADER = '-H "Authorization: Bearer $JETON"'


@dataclass(frozen=True)
class Gis:
    """The services serving the dataset, for a GIS (QGIS, ArcGIS…)."""

    layer: str | None  # the layer's name; None: not served as a layer (no geometry)
    in_map_services: bool  # WMS and WFS serve it (a valid XML name)
    wms: str
    wms_capabilities: str
    wfs: str
    wfs_capabilities: str
    ogc_api: str
    collection: str | None
    csw: str
    iso_record: str


@dataclass(frozen=True)
class Example:
    """A copyable command and what it does (French)."""

    title: str
    command: str


@dataclass(frozen=True)
class File:
    """A download of the page: its format, address, size (None: not made yet) and date."""

    format: str
    label: str
    url: str
    size: str | None
    date: str  # dd/mm/yyyy


def page_context(
    store: Releases,
    dataset: Dataset,
    release: Release,
    structure: dict[str, Any],
    base: str,
    ready: dict[str, Path | None],
) -> dict[str, Any]:
    """The dataset page's hand-off parts; `structure` is the release's structure version,
    `ready` the file each offered format's download would serve now (None: derived on the
    first download)."""
    public = is_public(dataset)
    layer = served_layer(dataset, release, structure)
    description = describe(store, dataset, release, base, [layer] if layer and public else [])
    fields = structure.get("published_schema") or structure["schema"]
    return {
        "sig": gis(base, dataset.slug, layer) if public else None,
        "exemples_api": api_examples(
            store, dataset, release, fields["fields"], base, layer, description, public
        ),
        "fichiers": files(dataset, release, base, ready),
        "jsonld": schema_org.dataset(description, base) if public else None,
    }


def served_layer(dataset: Dataset, release: Release, structure: dict[str, Any]) -> str | None:
    """The current structure's layer name in the OGC services; None without geometry."""
    if not structure.get("geometry_type"):
        return None
    return layer_name(dataset.slug, release.structure_version, current=True)


def gis(base: str, slug: str, layer: str | None) -> Gis:
    return Gis(
        layer=layer,
        in_map_services=layer is not None and LAYER_NAME.match(layer) is not None,
        wms=ogc_service(base, "WMS"),
        wms_capabilities=capabilities(base, "WMS"),
        wfs=ogc_service(base, "WFS"),
        wfs_capabilities=capabilities(base, "WFS"),
        ogc_api=ogc_api(base),
        collection=ogc_collection(base, layer) if layer else None,
        csw=f"{base.rstrip('/')}/csw",
        iso_record=iso_record(base, slug),
    )


def api_examples(
    store: Releases,
    dataset: Dataset,
    release: Release,
    fields: list[dict[str, Any]],
    base: str,
    layer: str | None,
    description: Description,
    public: bool,
) -> list[Example]:
    """curl commands on the public URL; a restricted dataset's carry an API token.
    `fields`: the published Table Schema's."""
    token = [] if public else [TOKEN_HEADER]
    rows = f"{dataset_api(base, dataset.slug)}/rows"
    columns = [f for f in fields if f["name"] != "geometry"]
    sample = sample_filter(store, release, columns)
    paging = ["-d", f"_taille={PAGE_SIZE}", "-d", "_decalage=0"]
    next_page = (
        f"par pages de {PAGE_SIZE} (page suivante : _decalage={PAGE_SIZE}, ou le lien "
        "« suivant » de la réponse)"
    )
    if sample is not None:
        column, value = sample
        title = f"Lignes dont « {column} » vaut « {value} », {next_page}"
        query = ["-G", "--data-urlencode", f"{column}={value}", *paging]
    else:
        title = f"Lignes, {next_page}"
        query = ["-G", *paging]
    examples = [
        Example(title, _curl([*token, *query, rows])),
        Example(
            "Télécharger le fichier CSV (nom du fichier donné par le serveur)",
            _curl([*token, "-OJ", download(base, dataset.slug, "csv")]),
        ),
    ]
    box = _inner_box(description.extent.bbox)
    if layer and public and box:
        items = f"{ogc_collection(base, layer)}/items"
        examples.append(
            Example(
                "Objets d'une emprise en OGC API – Features (GeoJSON, longitude et latitude "
                "WGS84 : ouest, sud, est, nord)",
                _curl(["-G", "-d", f"bbox={box}", "-d", "limit=100", "-d", "f=json", items]),
            )
        )
    return examples


def sample_filter(
    store: Releases, release: Release, fields: list[dict[str, Any]]
) -> tuple[str, str] | None:
    """A text column and a short value it holds, for an example that finds rows."""
    parquet = store.release_path(release, "parquet")
    if parquet is None:
        return None
    for field in fields:
        if field.get("type", "string") != "string":
            continue
        value = _first_value(str(parquet), field["name"])
        if value is not None:
            return field["name"], value
    return None


@functools.lru_cache(maxsize=1024)
def _first_value(parquet: str, column: str) -> str | None:
    """The column's first short one-line value; read once per release (immutable), from
    the first rows only."""
    try:
        batches = pq.ParquetFile(parquet).iter_batches(batch_size=100, columns=[column])
        for value in next(batches).column(0).to_pylist():
            if (
                isinstance(value, str)
                and 0 < len(value) <= SAMPLE_MAX_LENGTH
                and value.strip() == value
                and value.isprintable()
            ):
                return value
    except (OSError, StopIteration, KeyError, ValueError):  # no such column, unreadable file
        return None
    return None


def _inner_box(bbox: tuple[float, float, float, float] | None) -> str | None:
    """A box around the middle of the data's extent (half its width and height)."""
    if bbox is None:
        return None
    west, south, east, north = bbox
    dx, dy = (east - west) / 4, (north - south) / 4
    corners = (west + dx, south + dy, east - dx, north - dy)
    if dx == 0 or dy == 0:  # one point: a small box around it
        corners = (west - 0.001, south - 0.001, east + 0.001, north + 0.001)
    return ",".join(f"{value:.5f}" for value in corners)


def _curl(arguments: list[str]) -> str:
    """A shell command line: every argument quoted for the shell, but the token header."""
    return " ".join(["curl", *(a if a == TOKEN_HEADER else shlex.quote(a) for a in arguments)])


def files(
    dataset: Dataset, release: Release, base: str, ready: dict[str, Path | None]
) -> list[File]:
    """The downloads offered, with their sizes when made and the release's date."""
    published = f"{release.published_at:%d/%m/%Y}"
    found = []
    for fmt, path in ready.items():
        size = path.stat().st_size if path is not None and path.is_file() else None
        found.append(
            File(
                format=fmt,
                label=downloads.FORMATS[fmt].label,
                url=download(base, dataset.slug, fmt),
                size=french_size(size) if size is not None else None,
                date=published,
            )
        )
    return found


def french_size(size: int) -> str:
    """A file's size as French readers write it: « 850 octets », « 1,2 Mo », « 35 ko »."""
    for unit, scale in UNITS:
        if size >= scale:
            value = size / scale
            text = f"{value:.1f}" if value < 100 else f"{value:.0f}"
            return f"{text.removesuffix('.0').replace('.', ',')} {unit}"
    return f"{size} octet{'s' if size > 1 else ''}"
