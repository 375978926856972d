"""OGC API – Features (Core, GeoJSON, HTML, OpenAPI 3.0, Part 2 CRS) and OGC API – Records,
served by pygeoapi under `/ogc`.

pygeoapi builds every response; this module only writes its configuration from the
catalog's layers and routes requests to it. pygeoapi reads its configuration once per
`API` object, so a new one is built whenever the catalog changes (and per public base
URL, since its links are absolute: the application's `OPENDATA_PUBLIC_URL`, never the
request's Host, see `catalog.site`): no restart, and the previous one keeps answering
until the new one is ready.
"""

from __future__ import annotations

import copy
import hashlib
import html
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pygeoapi import l10n
from pygeoapi.api import (
    API,
    F_HTML,
    APIRequest,
    conformance,
    describe_collections,
    get_collection_schema,
    landing_page,
)
from pygeoapi.api import openapi_ as openapi_document
from pygeoapi.api.itemtypes import (
    get_collection_item,
    get_collection_items,
    get_collection_queryables,
)
from pygeoapi.openapi import get_oas

from catalog.ogc.boxes import REQUESTED, requested_region
from catalog.ogc.layers import Entry, Layer, temporal_extent
from catalog.ogc.openapi import self_contained
from catalog.ogc.providers import register_password
from catalog.site import public_url
from core.urls import dataset_api, dataset_page, download

FEATURE_FUNCTIONS = (get_collection_items, get_collection_item)

PREFIX = "/ogc"
LOGGER = logging.getLogger(__name__)
CATALOGUE = "catalogue"
MAX_APIS = 512  # pygeoapi instances kept (one per collection, page of collections, site)
COLLECTIONS_LIMIT = 100  # collections per page of /collections when no `limit` is asked
MAX_COLLECTIONS_LIMIT = 1000
MAX_ANSWERS = 256
ALL = None  # every collection: only the OpenAPI document describes them all at once
# pygeoapi's HTML pages, in French and in the portal's look, loading nothing from another
# host (its own templates load Bootstrap and Leaflet from CDNs and are in English)
TEMPLATES = Path(__file__).with_name("templates")


class _NoConfigCache(dict):
    """pygeoapi 0.21 keeps the first configuration it translates for its HTML pages, per
    locale and for the whole process (`l10n._cfg_cache`): every later page would show
    that configuration's collections, whatever the release or the caller's audience. With
    this cache nothing is kept: each page translates its own API's configuration."""

    def get(self, key: Any, default: Any = None) -> Any:
        return default

    def __setitem__(self, key: Any, value: Any) -> None:
        return None


l10n._cfg_cache = _NoConfigCache()
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
SERVED_CRS = [CRS84] + [
    f"http://www.opengis.net/def/crs/EPSG/0/{code}" for code in (4326, 2154, 3946, 3857)
]
THEME_SCHEME = "http://publications.europa.eu/resource/authority/data-theme"
COMMON_PARAMETERS = {"f", "lang"}
ITEMS_PARAMETERS = COMMON_PARAMETERS | {
    "bbox",
    "bbox-crs",
    "crs",
    "datetime",
    "limit",
    "offset",
    "properties",
    "skipGeometry",
    "sortby",
}
TITLE = "Données ouvertes des communes de la Métropole de Lyon"
# pygeoapi announces every API it knows; these are not offered here (read-only features,
# no processes, no tiles), so they are taken out of the conformance list and landing page.
NOT_OFFERED = (
    "ogcapi-features-4",
    "ogcapi-processes",
    "ogcapi-tiles",
    "/processes",
    "/jobs",
    "TileMatrixSets",
)


_CLIENT_ERROR: ContextVar[bool] = ContextVar("ogc_api_client_error", default=False)


class _SilencedWhileClientError(logging.Filter):
    """pygeoapi logs every exception it answers as an ERROR with a traceback, a caller's
    bad bbox as a crash: while a client error (4xx) is being answered, its record goes."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _CLIENT_ERROR.get()


logging.getLogger("pygeoapi.api").addFilter(_SilencedWhileClientError())


class QuietClientErrors(API):
    """pygeoapi's API, logging a client's error (4xx) as one warning without traceback;
    server errors (5xx) keep pygeoapi's ERROR and traceback."""

    def get_exception(
        self, status: int, headers: dict[str, Any], format_: str, code: str, description: str
    ) -> tuple[dict[str, Any], int, str]:
        if status >= 500:
            return super().get_exception(status, headers, format_, code, description)
        token = _CLIENT_ERROR.set(True)
        try:
            answer = super().get_exception(status, headers, format_, code, description)
        finally:
            _CLIENT_ERROR.reset(token)
        LOGGER.warning("OGC API, requête refusée (%s %s) : %s", status, code, description)
        return answer


class OgcApi:
    """The OGC API service (pygeoapi), kept in step by `update`."""

    def __init__(self, services_dir: Path) -> None:
        self.folder = services_dir / "ogcapi"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._layers: list[Layer] = []
        self._by_name: dict[str, Layer] = {}
        self._entries: list[Entry] = []
        self._generation = ""
        self._apis: dict[tuple[Any, ...], API] = {}
        # descriptions answered (landing page, collections…), until what they show changes
        self._answers: dict[tuple[Any, ...], tuple[dict[str, str], int, str | bytes]] = {}
        self._lock = threading.Lock()
        self._select: Callable[[Request], OgcApi] = lambda _request: self

    # --- OgcService -------------------------------------------------------------------------

    def update(self, layers: list[Layer], entries: list[Entry]) -> None:
        """Serve these layers and entries. pygeoapi is built per collection (and per page of
        collections), when asked: a change rebuilds only what it touched."""
        state = "\n".join(item.state or json.dumps(vars(item), default=str) for item in entries)
        for layer in layers:
            if layer.postgis_dsn:
                register_password(layer.postgis_dsn, layer.postgis_password)
        with self._lock:
            self._layers, self._entries = layers, entries
            self._by_name = {layer.name: layer for layer in layers}
            self._generation = hashlib.sha256(state.encode()).hexdigest()[:16]
            self._apis = {key: api for key, api in self._apis.items() if self._current(key)}
            self._answers = {}

    def _current(self, key: tuple[Any, ...]) -> bool:
        """Whether a kept pygeoapi still serves what it was built from."""
        _, names, states = key
        return names is not ALL and states == self._states(names)

    def mount(self, app: FastAPI, select: Callable[[Request], OgcApi] | None = None) -> None:
        """The routes; `select` gives the instance answering each request (the caller's
        audience's, see `services.TieredService`), this one by default."""
        self._select = select or (lambda _request: self)
        for path, function, allowed in (
            ("", landing_page, COMMON_PARAMETERS),
            ("/", landing_page, COMMON_PARAMETERS),
            ("/openapi", openapi_document, COMMON_PARAMETERS | {"ui"}),
            ("/conformance", conformance, COMMON_PARAMETERS),
            ("/collections", describe_collections, COMMON_PARAMETERS | {"limit", "offset"}),
        ):
            app.add_api_route(
                PREFIX + path, self._endpoint(function, allowed), include_in_schema=False
            )
        app.add_api_route(
            PREFIX + "/collections/{collection}/schema",
            self._endpoint(get_collection_schema, COMMON_PARAMETERS),
            include_in_schema=False,
        )
        app.add_api_route(
            PREFIX + "/collections/{collection}",
            self._endpoint(describe_collections, COMMON_PARAMETERS),
            include_in_schema=False,
        )
        app.add_api_route(
            PREFIX + "/collections/{collection}/queryables",
            self._endpoint(get_collection_queryables, COMMON_PARAMETERS | {"profile"}),
            include_in_schema=False,
        )
        app.add_api_route(
            PREFIX + "/collections/{collection}/items",
            self._endpoint(get_collection_items, None),
            include_in_schema=False,
        )
        app.add_api_route(
            PREFIX + "/collections/{collection}/items/{item}",
            self._endpoint(get_collection_item, COMMON_PARAMETERS | {"crs"}),
            include_in_schema=False,
        )

    # --- requests ---------------------------------------------------------------------------

    def _endpoint(self, function: Any, allowed: set[str] | None) -> Any:
        async def endpoint(request: Request) -> Response:
            service = await run_in_threadpool(self._select, request)
            arguments = list(request.path_params.values())
            permitted = allowed if allowed is not None else service.items_parameters(arguments[0])
            unknown = sorted(set(request.query_params) - permitted)
            if unknown:
                return _invalid(f"Paramètre(s) inconnu(s) : {', '.join(unknown)}.")
            if not _valid_interval(request.query_params.get("datetime")):
                return _invalid(
                    "Paramètre datetime invalide : une date ou un instant RFC 3339, ou un "
                    "intervalle début/fin (« .. » pour une borne ouverte)."
                )
            page = _collections_page(request) if not arguments else slice(0, 0)
            if page is None:
                return _invalid(
                    f"Paramètres limit et offset invalides : limit entre 1 et "
                    f"{MAX_COLLECTIONS_LIMIT}, offset positif ou nul."
                )
            names = service.names_for(function, arguments, page)
            api = await run_in_threadpool(service.api_for, public_url(request), names)
            api_request = await APIRequest.from_starlette(request, api.locales)
            if api_request.format == F_HTML:  # the pages are French (`TEMPLATES`), and so
                # is what they show of the configuration, whatever the browser's language
                api_request = await APIRequest.from_starlette(request, api.locales[:1])
            key = service.answer_key(function, names, api_request, request)
            kept = service._answers.get(key) if key else None
            if kept is not None:
                return Response(kept[2], status_code=kept[1], headers=dict(kept[0]))
            # the box in its own CRS, for the providers' exact test (`catalog.ogc.boxes`)
            region = requested_region(
                request.query_params.get("bbox"), request.query_params.get("bbox-crs")
            )
            token = REQUESTED.set(region if function is get_collection_items else None)
            try:
                if not api_request.is_valid():
                    headers, status, content = api.get_format_exception(api_request)
                else:
                    headers, status, content = await run_in_threadpool(
                        function, api, api_request, *arguments
                    )
            finally:
                REQUESTED.reset(token)
            if function in (landing_page, conformance) and status == 200:
                content = _without_unoffered(content, headers)
            if function is describe_collections and status == 200:
                extents = await run_in_threadpool(service.temporal_extents, names or ())
                content = _with_temporal_extents(content, headers, extents)
                if not arguments:
                    total = len(service.collection_names())
                    content = _paged(content, headers, request, page, total)
            if key and status == 200:
                service.keep_answer(key, headers, status, content)
            if function in FEATURE_FUNCTIONS and headers.get("Content-Type") == "application/json":
                headers["Content-Type"] = "application/geo+json"
            return Response(content, status_code=status, headers=headers)

        return endpoint

    def answer_key(
        self, function: Any, names: tuple[str, ...] | None, api_request: Any, request: Request
    ) -> tuple[Any, ...] | None:
        """The key under which the answer is kept until a change of what it shows: the
        descriptions (landing page, conformance, collections), not the features."""
        if function not in (landing_page, conformance, describe_collections):
            return None
        return (
            function,  # not its name: pygeoapi wraps several in one decorator, "inner"
            names,
            self._states(names),
            public_url(request),
            api_request.format,
            str(api_request.locale),
            tuple(sorted(request.query_params.multi_items())),
            tuple(request.path_params.values()),
        )

    def keep_answer(
        self, key: tuple[Any, ...], headers: dict[str, str], status: int, content: str | bytes
    ) -> None:
        with self._lock:
            while len(self._answers) >= MAX_ANSWERS:
                self._answers.pop(next(iter(self._answers)))
            self._answers[key] = (dict(headers), status, content)

    def temporal_extents(self, names: tuple[str, ...]) -> dict[str, list[str]]:
        """The temporal interval (RFC 3339) of these layers, for those with a date or
        datetime."""
        layers = [self._by_name[name] for name in names if name in self._by_name]
        found = {layer.name: temporal_extent(layer) for layer in layers}
        return {name: extent.interval() for name, extent in found.items() if extent}

    def items_parameters(self, collection: str) -> set[str]:
        if collection == CATALOGUE:
            return ITEMS_PARAMETERS | {"q", "type", "title", "description", "publisher"}
        layer = self._by_name.get(collection)
        fields = {f["name"] for f in layer.fields} if layer else set()
        return ITEMS_PARAMETERS | fields

    def api_for(self, site: str, names: tuple[str, ...] | None = ALL) -> API:
        """pygeoapi with its links on the public base URL `site`, serving the collections
        `names` (ALL: every one, with the OpenAPI document), built once per change of them."""
        with self._lock:
            key = (site, names, self._states(names))
            api = self._apis.pop(key, None)
            if api is None:
                config = self._config(site, names)
                if names is ALL:
                    document = get_oas(copy.deepcopy(config), fail_on_invalid_collection=False)
                    api = QuietClientErrors(config, self_contained(document))
                else:  # only `/openapi` reads the document
                    api = QuietClientErrors(config, {})
            self._apis[key] = api  # the most recently used last
            while len(self._apis) > MAX_APIS:
                self._apis.pop(next(iter(self._apis)))
            return api

    def _states(self, names: tuple[str, ...] | None) -> tuple[str, ...]:
        if names is ALL:
            return (self._generation, *(layer.state for layer in self._layers))
        return tuple(
            self._generation if name == CATALOGUE else self._layer_state(name) for name in names
        )

    def _layer_state(self, name: str) -> str:
        layer = self._by_name.get(name)
        return "" if layer is None else layer.state or json.dumps(vars(layer), default=str)

    def collection_names(self) -> list[str]:
        """Every collection, in the order `/collections` lists them."""
        return [*(layer.name for layer in self._layers), CATALOGUE]

    def names_for(self, function: Any, arguments: list[str], page: slice) -> tuple[str, ...] | None:
        """The collections the pygeoapi answering this request must hold."""
        if function is openapi_document:
            return ALL
        if arguments:  # one collection: its own (an unknown one: none, pygeoapi says 404)
            known = arguments[0] == CATALOGUE or arguments[0] in self._by_name
            return (arguments[0],) if known else ()
        if function is describe_collections:
            return tuple(self.collection_names()[page])
        # the landing page and the conformance list: pygeoapi declares the classes of the
        # kinds of collection it serves (one of each is enough)
        return tuple(self.collection_names()[:1]) + (CATALOGUE,) if self._layers else (CATALOGUE,)

    # --- configuration ----------------------------------------------------------------------

    def _config(self, site: str, names: tuple[str, ...] | None) -> dict[str, Any]:
        wanted = self.collection_names() if names is ALL else names
        resources = {
            name: _layer_resource(self._by_name[name], site)
            for name in wanted
            if name in self._by_name
        }
        if CATALOGUE in wanted:
            resources[CATALOGUE] = _catalogue_resource(self._write_records(site))
        return {
            "server": {
                "bind": {"host": "127.0.0.1", "port": 0},
                "url": site + PREFIX,
                "mimetype": "application/json; charset=UTF-8",
                "encoding": "utf-8",
                "languages": ["fr-FR", "en-US"],
                "templates": {"path": str(TEMPLATES)},
                "limits": {"default_items": 10, "max_items": 10_000, "on_exceed": "throttle"},
                "map": {  # required by pygeoapi's schema; no template of ours draws tiles
                    "url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                    "attribution": "&copy; contributeurs OpenStreetMap",
                },
                "pretty_print": False,
            },
            "logging": {"level": "ERROR"},
            "metadata": _service_metadata(site),
            "resources": resources,
        }

    def _write_records(self, site: str) -> Path:
        """The Records file for this change and base URL, written atomically once."""
        key = hashlib.sha256(f"{self._generation}{site}".encode()).hexdigest()[:16]
        target = self.folder / f"fiches-{key}.json"
        if not target.exists():
            records = [_record(entry, site) for entry in self._entries]
            handle, temporary = tempfile.mkstemp(dir=self.folder, suffix=".json")
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump(records, out, ensure_ascii=False)
            os.replace(temporary, target)
            self._remove_old_records(keep=target)
        return target

    def _remove_old_records(self, keep: Path) -> None:
        live = {keep.name} | {
            Path(api.config["resources"][CATALOGUE]["providers"][0]["data"]).name
            for api in self._apis.values()
            if CATALOGUE in api.config["resources"]
        }
        for old in self.folder.glob("fiches-*.json"):
            if old.name not in live:
                old.unlink(missing_ok=True)


def _collections_page(request: Request) -> slice | None:
    """The page of `/collections` asked (`limit`, `offset`); None when invalid."""
    try:
        limit = int(request.query_params.get("limit", COLLECTIONS_LIMIT))
        offset = int(request.query_params.get("offset", 0))
    except ValueError:
        return None
    if not 1 <= limit <= MAX_COLLECTIONS_LIMIT or offset < 0:
        return None
    return slice(offset, offset + limit)


def _paged(
    content: str | bytes, headers: dict[str, str], request: Request, page: slice, total: int
) -> str | bytes:
    """The page of collections with how many there are and the links to the next and
    previous pages (OGC API – Common, Part 2: `limit`, rel `next` and `prev`)."""
    limit = page.stop - page.start
    neighbours = []
    if page.stop < total:
        neighbours.append(("next", page.stop, "Collections suivantes"))
    if page.start > 0:
        neighbours.append(("prev", max(0, page.start - limit), "Collections précédentes"))
    params = {k: v for k, v in request.query_params.items() if k not in ("limit", "offset")}
    base = public_url(request) + PREFIX + "/collections"

    def href(offset: int) -> str:
        return f"{base}?{urlencode({**params, 'limit': limit, 'offset': offset})}"

    if "json" in headers.get("Content-Type", ""):
        document = json.loads(content)
        returned = len(document.get("collections", []))
        document["numberMatched"], document["numberReturned"] = total, returned
        media = headers["Content-Type"].split(";")[0]
        document.setdefault("links", []).extend(
            {"rel": rel, "type": media, "title": title, "href": href(offset)}
            for rel, offset, title in neighbours
        )
        return json.dumps(document, ensure_ascii=False)
    if "html" in headers.get("Content-Type", "") and neighbours:
        text = content.decode() if isinstance(content, bytes) else content
        links = " ".join(
            f'<a rel="{rel}" href="{html.escape(href(offset))}">{title}</a>'
            for rel, offset, title in neighbours
        )
        nav = f'<nav aria-label="Pages des collections"><p>{links}</p></nav>'
        return text.replace("</main>", nav + "\n</main>", 1)
    return content


def _valid_interval(value: str | None) -> bool:
    if value is None:
        return True
    for bound in value.split("/") if value.count("/") == 1 else [value]:
        if bound in ("", ".."):
            continue
        try:
            datetime.fromisoformat(bound.replace("Z", "+00:00"))
        except ValueError:
            return False
    return value not in ("/", "../..")


def _without_unoffered(content: str | bytes, headers: dict[str, str]) -> str | bytes:
    if "json" not in headers.get("Content-Type", ""):
        return content
    document = json.loads(content)
    if "conformsTo" in document:
        document["conformsTo"] = [
            c for c in document["conformsTo"] if not any(n in c for n in NOT_OFFERED)
        ]
    if "links" in document:
        document["links"] = [
            link
            for link in document["links"]
            if not any(n in link["href"] or n in link["rel"] for n in NOT_OFFERED)
        ]
    return json.dumps(document, ensure_ascii=False)


def _with_temporal_extents(
    content: str | bytes, headers: dict[str, str], intervals: dict[str, list[str]]
) -> str | bytes:
    """The collections' `extent.temporal` (min and max of the data's time field). Added to
    pygeoapi's answer rather than to its configuration: configured, pygeoapi would refuse
    with a 400 every `datetime` outside the data's range, where an empty page is the answer."""
    if "json" not in headers.get("Content-Type", "") or not intervals:
        return content
    document = json.loads(content)
    for collection in document.get("collections", [document]):
        interval = intervals.get(collection.get("id", ""))
        if interval:
            extent = collection.setdefault("extent", {})
            extent["temporal"] = {"interval": [interval], "trs": GREGORIAN}
    return json.dumps(document, ensure_ascii=False)


def _invalid(message: str) -> JSONResponse:
    return JSONResponse(
        {"code": "InvalidParameterValue", "type": "InvalidParameterValue", "description": message},
        status_code=400,
    )


def _service_metadata(site: str) -> dict[str, Any]:
    return {
        "identification": {
            "title": {"fr": TITLE, "en": "Open data of the communes of the Lyon metropolis"},
            "description": {
                "fr": "Les jeux de données géographiques publiés par les communes partenaires, "
                "en OGC API – Features, et le catalogue en OGC API – Records.",
                "en": "Geographic datasets published by the partner communes.",
            },
            "keywords": {"fr": ["données ouvertes", "Métropole de Lyon", "communes"]},
            "keywords_type": "theme",
            "terms_of_service": f"{site}/",
            "url": f"{site}/",
        },
        "license": {
            "name": "Licence de chaque jeu de données (Licence Ouverte 2.0, ODbL…)",
            "url": f"{site}/",
        },
        "provider": {"name": "Plateforme de données ouvertes des communes", "url": f"{site}/"},
        "contact": {
            "name": "Équipe data",
            "position": "Plateforme de données ouvertes",
            "address": "Métropole de Lyon",
            "city": "Lyon",
            "stateorprovince": "Auvergne-Rhône-Alpes",
            "postalcode": "69003",
            "country": "France",
            "email": "donnees-ouvertes@example.org",
            "url": f"{site}/",
            "role": "pointOfContact",
        },
    }


def _layer_resource(layer: Layer, site: str) -> dict[str, Any]:
    provider: dict[str, Any] = {
        "type": "feature",
        "name": "catalog.ogc.providers.GeoPackageProvider",
        "data": str(layer.gpkg),
        "table": layer.table,
        "id_field": "fid",
    }
    if layer.postgis_table and layer.postgis_dsn and layer.postgis_srid:
        # PostGIS backend: the structure version's table, in its own CRS (GIST index)
        provider = {
            "type": "feature",
            "name": "catalog.ogc.providers.PostgisProvider",
            "data": layer.postgis_dsn,  # without the password (see `update`)
            "table": layer.postgis_table,
            "geometry": layer.postgis_geometry or "geometry",
            "srid": layer.postgis_srid,
            "release": layer.release_id,
            "id_field": "ogc_fid",
        }
    provider |= {
        "geometry_type": layer.geometry_type,
        "field_types": {f["name"]: f.get("type", "string") for f in layer.fields},
        "crs": SERVED_CRS,
        "storage_crs": CRS84,
    }
    if layer.time_field:
        provider["time_field"] = layer.time_field
    return {
        "type": "collection",
        "title": layer.title,
        "description": layer.description,
        "keywords": layer.keywords or [layer.dataset],
        "links": [
            {
                "type": "text/html",
                "rel": "canonical",
                "title": "Fiche du jeu de données",
                "href": dataset_page(site, layer.dataset),
                "hreflang": "fr",
            },
            {
                "type": "text/html",
                "rel": "license",
                "title": layer.licence_name,
                "href": layer.licence_url,
            },
        ],
        "extents": {"spatial": {"bbox": list(layer.bbox), "crs": CRS84}},
        "providers": [provider],
    }


def _catalogue_resource(records: Path) -> dict[str, Any]:
    return {
        "type": "collection",
        "title": "Catalogue des jeux de données",
        "description": "Une fiche OGC API – Records par jeu de données publié.",
        "keywords": ["catalogue", "données ouvertes"],
        "links": [],
        "extents": {"spatial": {"bbox": [-180, -90, 180, 90], "crs": CRS84}},
        "providers": [
            {
                "type": "record",
                "name": "catalog.ogc.providers.CatalogueProvider",
                "data": str(records),
                "id_field": "id",
                "time_field": "updated",
                "title_field": "title",
            }
        ],
    }


def _record(entry: Entry, site: str) -> dict[str, Any]:
    """One OGC API – Records record (GeoJSON encoding) for a dataset."""
    geometry = None
    if entry.bbox:
        west, south, east, north = entry.bbox
        ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
        geometry = {"type": "Polygon", "coordinates": [ring]}
    return {
        "id": entry.slug,
        "type": "Feature",
        "conformsTo": ["http://www.opengis.net/spec/ogcapi-records-1/1.0/req/record-core"],
        "time": {"date": entry.modified[:10]},
        "geometry": geometry,
        "properties": {
            "type": "dataset",
            "title": entry.title,
            "description": entry.description,
            "keywords": entry.keywords,
            "themes": [
                {"concepts": [{"id": theme} for theme in entry.themes], "scheme": THEME_SCHEME}
            ]
            if entry.themes
            else [],
            "language": {"code": "fr"},
            "created": entry.published_at.isoformat(),
            "updated": entry.modified[:10],
            "publisher": entry.publisher_name,
            "license": entry.licence_name,
            "contacts": [{"organization": entry.publisher_name, "roles": ["publisher"]}],
        },
        "links": _record_links(entry, site),
    }


def _record_links(entry: Entry, site: str) -> list[dict[str, Any]]:
    links = [
        {
            "rel": "alternate",
            "type": "text/html",
            "title": "Fiche du jeu de données",
            "href": dataset_page(site, entry.slug),
        },
        {
            "rel": "describedby",
            "type": "application/json",
            "title": "Métadonnées (API du catalogue)",
            "href": dataset_api(site, entry.slug),
        },
        {
            "rel": "license",
            "type": "text/html",
            "title": entry.licence_name,
            "href": entry.licence_url,
        },
        {
            "rel": "enclosure",
            "type": "text/csv",
            "title": "Téléchargement CSV",
            "href": download(site, entry.slug, "csv"),
        },
    ]
    for layer in entry.layers:
        links.append(
            {
                "rel": "item",
                "type": "application/geo+json",
                "title": f"Couche {layer} (OGC API – Features)",
                "href": f"{site}{PREFIX}/collections/{layer}/items",
            }
        )
    return links
