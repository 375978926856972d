"""What the OGC services serve, read from the catalog store.

Every service (OGC API Features and Records, WMS/WFS, CSW) is fed from the same list, so
a dataset appears in, or disappears from, all of them at once:

- one `Layer` per served structure version of a published geographic dataset: the current
  structure under the dataset's slug, an older one still diffused in parallel under
  `<slug>-v<N>`;
- one `Entry` per published dataset (geographic or not) for the catalogue services.

Each layer and entry carries its dataset's access level. The services are built per
audience (`TIERS`): `public` (what anonymous callers get: public datasets only),
`restreint` (plus restricted datasets: users signed in through OpenID Connect) and
`agents` (plus the datasets reserved to public agents). `for_tier` is the only way from
the full list to what one audience's service instance holds, and `tier_of` picks the
audience of a caller from `Principal.may_read`.

A layer's features are read from a GeoPackage in WGS84 (longitude, latitude) derived once
from the release's GeoParquet, with its R-tree spatial index; on the PostGIS backend, from
the structure version's PostGIS table (MapServer and the OGC API alike). When the store is PostGIS
(`catalog/store/postgis.py`), the layer also names its structure version's table there
(`postgis_*` fields): MapServer then reads PostGIS directly, in the data's own CRS with
its GIST index; the OGC API keeps reading the GeoPackage (pygeoapi's PostgreSQL provider
needs GeoAlchemy2 and psycopg2, which this environment does not ship).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import sqlite3
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from catalog.description import Description, describe
from catalog.ogc.pycsw_app import BASE_PLACEHOLDER
from catalog.store import CatalogStore, downloads
from core.access import Principal, dataset_access
from core.dates import release_updated
from core.licences import fill_notice
from core.records import Dataset, Release

LOGGER = logging.getLogger(__name__)
LAYER_CRS = 4326
PUBLIC = "public"
# Audience -> the access levels its services hold (each includes the one before).
TIERS: dict[str, frozenset[str]] = {
    PUBLIC: frozenset({"public"}),
    "restreint": frozenset({"public", "restreint"}),
    "agents": frozenset({"public", "restreint", "agents"}),
}


@dataclass(frozen=True)
class Entry:
    """A published dataset as the catalogue services (Records, CSW) describe it."""

    slug: str
    title: str
    description: str
    keywords: list[str]
    themes: list[str]
    producer: str
    publisher_name: str
    modified: str
    published_at: datetime
    licence_name: str
    licence_url: str
    bbox: tuple[float, float, float, float] | None  # WGS84 lon/lat, for map data
    about: Description  # the full description, links on pycsw_app.BASE_PLACEHOLDER
    layers: list[str] = field(default_factory=list)  # its layer names, current first
    access: str = "public"  # public | restreint | agents
    state: str = field(default="", compare=False)  # its print (`stamped`)


@dataclass(frozen=True)
class Layer:
    """One served structure version of a published geographic dataset."""

    name: str  # identifier in every service
    dataset: str
    structure_version: int
    current: bool
    title: str
    description: str
    keywords: list[str]
    geometry_type: str  # Point, LineString, Polygon, Multi…, or Geometry when mixed
    release_id: str
    published_at: datetime
    gpkg: Path  # EPSG:4326, x = longitude
    table: str
    bbox: tuple[float, float, float, float]  # WGS84 lon/lat
    fields: list[dict[str, Any]]  # the published Table Schema fields, geometry excepted
    time_field: str | None  # the first date or datetime field, for `datetime` queries
    licence_name: str
    licence_url: str
    notice: str
    # The structure version's table when the store is PostGIS (None: the GeoPackage only).
    postgis_table: str | None = None  # schema.table, unquoted: donnees.<slug>__v<N>
    postgis_geometry: str | None = None  # its geometry column
    postgis_srid: int | None = None  # the release's CRS, the geometry column's SRID
    postgis_dsn: str | None = None  # libpq connection string, without the password
    postgis_password: str | None = field(default=None, repr=False, compare=False)
    access: str = "public"  # public | restreint | agents
    state: str = field(default="", compare=False)  # its print (`stamped`)

    @property
    def geometry_kind(self) -> str:
        """POINT, LINE or POLYGON: what a default style draws."""
        base = self.geometry_type.removeprefix("Multi").lower()
        return {"point": "POINT", "linestring": "LINE", "polygon": "POLYGON"}.get(base, "POINT")


_Stamped = TypeVar("_Stamped", Layer, Entry)


@dataclass(frozen=True)
class TemporalExtent:
    """The first and last value of a layer's time field (`Layer.time_field`), as the data
    holds them: `2017-09-02` for a Table Schema `date`, `2026-10-01T07:15:30` for a
    `datetime` (no time zone: the platform's datetimes are naive, read as UTC)."""

    field: str
    kind: str  # date | datetime
    start: str
    end: str

    def interval(self) -> list[str]:
        """RFC 3339 instants, UTC, as OGC API collections advertise them (a date: its day)."""
        if self.kind == "date":
            return [f"{self.start}T00:00:00Z", f"{self.end}T23:59:59Z"]
        return [f"{self.start}Z", f"{self.end}Z"]


def temporal_extent(layer: Layer) -> TemporalExtent | None:
    """The layer's temporal extent (None: no date or datetime field, or no value in it),
    read from its GeoPackage whatever the store: the OGC API advertises it, and a catalogue
    record (DCAT, ISO 19139) may describe the dataset's temporal coverage with it."""
    if layer.time_field is None:
        return None
    kind = next(f["type"] for f in layer.fields if f["name"] == layer.time_field)
    found = _time_range(str(layer.gpkg), layer.table, layer.time_field, kind)
    if found is None:
        return None
    return TemporalExtent(layer.time_field, kind, *found)


@functools.lru_cache(maxsize=256)
def _time_range(gpkg: str, table: str, column: str, kind: str) -> tuple[str, str] | None:
    """Min and max of a date (YYYY-MM-DD) or datetime (YYYY-MM-DDTHH:MM:SS) column; read
    once per file (a layer's GeoPackage is written once, releases are immutable). Older
    GeoPackages hold a time of day in date columns, and a space may stand for the T."""
    width = 10 if kind == "date" else 19
    quoted = '"' + column.replace('"', '""') + '"'
    value = f"substr(replace({quoted}, ' ', 'T'), 1, {width})"
    with sqlite3.connect(f"file:{gpkg}?mode=ro&immutable=1", uri=True) as conn:
        start, end = conn.execute(
            f'SELECT min({value}), max({value}) FROM "{table.replace(chr(34), chr(34) * 2)}" '
            f"WHERE {quoted} IS NOT NULL AND {quoted} != ''"
        ).fetchone()
    return None if start is None else (str(start), str(end))


def layer_name(slug: str, version: int, current: bool) -> str:
    return slug if current else f"{slug}-v{version}"


def published_datasets(store: CatalogStore) -> list[Dataset]:
    """Published datasets of every access level known to the services (`for_tier` filters)."""
    return [d for d in store.list_datasets() if is_served(d)]


def is_served(dataset: Dataset) -> bool:
    """Published, at an access level one of the services' audiences reads."""
    return dataset.status == "publie" and dataset_access(dataset.metadata) in TIERS["agents"]


def tier_of(principal: Principal) -> str:
    """The widest audience all of whose datasets `principal` may read, whoever publishes
    them (a producer's own restricted data is in the REST API, not in these services)."""
    widest = PUBLIC
    for tier, levels in TIERS.items():
        if all(principal.may_read(level, producer="") for level in levels):
            widest = tier
    return widest


def for_tier(
    layers: list[Layer], entries: list[Entry], tier: str
) -> tuple[list[Layer], list[Entry]]:
    """What the services of audience `tier` hold (an unknown tier: the public's)."""
    levels = TIERS.get(tier, TIERS[PUBLIC])
    return (
        [layer for layer in layers if layer.access in levels],
        [entry for entry in entries if entry.access in levels],
    )


def served_layers(store: CatalogStore) -> list[Layer]:
    """Every layer to serve, current structures first; their GeoPackages are made once."""
    return [layer for d in published_datasets(store) for layer in dataset_layers(store, d)]


def dataset_layers(store: CatalogStore, dataset: Dataset) -> list[Layer]:
    """The layers of one published dataset, its current structure first."""
    layers: list[Layer] = []
    retired = {n.from_version for n in store.notices(dataset.slug) if n.retired_at}
    for version in sorted(store.structure_versions(dataset.slug), key=_newest_first(dataset)):
        structure = version.structure
        if not structure.get("geometry_type") or version.version in retired:
            continue
        release = store.current_release(dataset.slug, version.version)
        if release is None:
            continue
        current = version.version == dataset.current_version
        try:
            layers.append(stamped(_layer(store, dataset, release, structure, current)))
        except Exception:  # one broken release must not freeze every service
            LOGGER.exception("Couche de %s v%s non servie", dataset.slug, version.version)
    return layers


def catalogue_entries(store: CatalogStore, layers: list[Layer]) -> list[Entry]:
    by_dataset: dict[str, list[Layer]] = {}
    for layer in layers:
        by_dataset.setdefault(layer.dataset, []).append(layer)
    found = (
        dataset_entry(store, dataset, by_dataset.get(dataset.slug, []))
        for dataset in published_datasets(store)
    )
    return [entry for entry in found if entry is not None]


def dataset_entry(store: CatalogStore, dataset: Dataset, own_layers: list[Layer]) -> Entry | None:
    """The catalogue entry of one published dataset (None: no current release)."""
    release = store.current_release(dataset.slug)
    if release is None:
        return None
    metadata = dataset.metadata
    names = [layer.name for layer in own_layers]
    return stamped(
        Entry(
            slug=dataset.slug,
            title=metadata["title"],
            description=metadata["description"],
            keywords=list(metadata.get("keywords", [])),
            themes=list(metadata.get("themes", [])),
            producer=dataset.producer,
            publisher_name=metadata.get("publisher_name", dataset.producer),
            modified=release_updated(dataset, release).isoformat(),  # core.dates
            published_at=release.published_at,
            licence_name=dataset.licence["name"],
            licence_url=dataset.licence["url"],
            bbox=own_layers[0].bbox if own_layers else None,
            about=describe(store, dataset, release, BASE_PLACEHOLDER, names),
            layers=names,
            access=dataset_access(metadata),
        )
    )


def _newest_first(dataset: Dataset) -> Any:
    return lambda version: (version.version != dataset.current_version, -version.version)


def _layer(
    store: CatalogStore,
    dataset: Dataset,
    release: Release,
    structure: dict[str, Any],
    current: bool,
) -> Layer:
    schema = structure.get("published_schema") or structure["schema"]
    fields = [f for f in schema["fields"] if f.get("type") != "geojson" and f["name"] != "geometry"]
    metadata = release.metadata
    notice = fill_notice(
        release.licence["notice"],
        metadata.get("publisher_name", dataset.producer),
        str(metadata["modified"]),
    )
    gpkg = layer_file(store, release, notice, fields)
    table, bbox = _table_and_extent(gpkg)
    version = release.structure_version
    source = (
        store.spatial.layer_source(dataset.slug, version) if store.spatial is not None else None
    )
    title = metadata["title"] if current else f"{metadata['title']} (structure v{version})"
    return Layer(
        name=layer_name(dataset.slug, version, current),
        dataset=dataset.slug,
        structure_version=version,
        current=current,
        title=title,
        description=metadata["description"],
        keywords=list(metadata.get("keywords", [])),
        geometry_type=structure["geometry_type"],
        release_id=release.id,
        published_at=release.published_at,
        gpkg=gpkg,
        table=table,
        bbox=bbox,
        fields=fields,
        time_field=next((f["name"] for f in fields if f["type"] in ("date", "datetime")), None),
        licence_name=release.licence["name"],
        licence_url=release.licence["url"],
        notice=notice,
        postgis_table=source.table if source else None,
        postgis_geometry=source.geometry if source else None,
        postgis_srid=source.srid if source else None,
        postgis_dsn=source.dsn if source else None,
        postgis_password=source.password if source else None,
        access=dataset_access(dataset.metadata),
    )


def layer_file(
    store: CatalogStore, release: Release, notice: str, fields: list[dict[str, Any]]
) -> Path:
    """The release's GeoPackage in WGS84, made once (releases are immutable)."""
    parquet = store.release_path(release, "parquet")
    if parquet is None:
        raise ValueError(f"La version {release.id} n'a pas de fichier Parquet.")
    dates = frozenset(f["name"] for f in fields if f.get("type") == "date")
    return downloads.derived_file(parquet, "gpkg", LAYER_CRS, notice, dates)


def _table_and_extent(gpkg: Path) -> tuple[str, tuple[float, float, float, float]]:
    with sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True) as conn:
        table, *extent = conn.execute(
            "SELECT table_name, min_x, min_y, max_x, max_y FROM gpkg_contents "
            "WHERE data_type = 'features'"
        ).fetchone()
    if any(value is None for value in extent):
        extent = [-180.0, -90.0, 180.0, 90.0]
    return table, (extent[0], extent[1], extent[2], extent[3])


def fingerprint(layers: list[Layer], entries: list[Entry]) -> str:
    """Changes whenever something a service shows changes: a release, a title, a licence.
    Each layer's and entry's own print is computed once, when it is made (`stamped`)."""
    prints = [item.state or _print(item) for item in (*layers, *entries)]
    return hashlib.sha256("\n".join(prints).encode()).hexdigest()


def stamped(item: _Stamped) -> _Stamped:
    """The layer or entry with its print (`state`), for cheap comparisons later."""
    return dataclasses.replace(item, state=_print(item))


def _print(item: Layer | Entry) -> str:
    if isinstance(item, Layer):
        state: list[Any] = [
            "layer",
            item.name,
            item.release_id,
            item.title,
            item.description,
            item.keywords,
            item.licence_url,
            item.postgis_table,
            item.access,
        ]
    else:
        state = [
            "entry",
            item.slug,
            item.title,
            item.description,
            item.keywords,
            item.themes,
            item.modified,
            item.licence_url,
            item.bbox,
            item.layers,
            item.access,
            asdict(item.about),
        ]
    text = json.dumps(state, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
