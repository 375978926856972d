"""WMS 1.3.0 and WFS 2.0 served by MapServer, from a map file generated from the catalog.

`MapServerService.update` writes one map file for every served layer (and MapServer's
config file beside it), each time atomically: MapServer reads the map file on every
request, so a new release, a new structure version or a withdrawn dataset is served from
the next request on, without a restart. The map file and the config hold nothing specific
to how MapServer is run: on `/wms` and `/wfs` the catalog application (the embedded
deployment) keeps a small pool of Debian's `mapserv` running as FastCGI processes
(`resident.FastCgiPool`, `OPENDATA_OGC_PROCESSES` of them), or runs it as a CGI program for
each request when `OPENDATA_OGC_RESIDENT` is "0"; a production web server runs the same
binary as FastCGI with `MAPSERVER_CONFIG_FILE` pointing at the same config.

A resident `mapserv` reads its config once, when it starts, and the map file on every
request (`msCGILoadMap`), so a new map file is served from the next request on; `update`
still renews the pool (`FastCgiPool.restart`: each process leaves once its request is
answered), so that no process keeps a connection or a cache from the previous map file.

MapServer does the protocols (capabilities, GetMap, GetFeatureInfo, GetLegendGraphic,
DescribeFeatureType, GetFeature with paging, filters and reprojection); this module only
describes the layers and bridges HTTP requests to the CGI program, handing a WFS 2.0
GetFeature's BBOX over as a filter so that it is exact in its own CRS (`bbox_as_filter`).

The capabilities' online resources (every absolute link MapServer writes) are in the map
file, from the catalog's public URL (`OPENDATA_PUBLIC_URL`, `catalog.site`): MapServer
never builds them from a request's Host or X-Forwarded-Host, whether run by the catalog or
by a production web server (issue #16).

A layer is read from its GeoPackage through OGR, or, when the store is PostGIS and the
layer names its table there, from PostGIS directly (`CONNECTIONTYPE POSTGIS`, in the
data's own CRS, with its GIST index). The map file then holds the connection string
without the password: `mapserv` gets it from the `PGPASSWORD` environment variable (a
FastCGI deployment sets `PGPASSWORD` or `PGPASSFILE` in its own environment).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import html
import itertools
import json
import logging
import math
import os
import re
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pyproj import Transformer

from catalog import site
from catalog.bodies import BodyTooLarge, read_bounded
from catalog.ogc.capabilities import CapabilitiesCache, Document, variant_of
from catalog.ogc.layers import Entry, Layer
from catalog.ogc.resident import FastCgiPool, Finished
from core.settings import DEFAULT_PUBLIC_URL, resident_processes, resident_services
from core.urls import iso_record

LOGGER = logging.getLogger(__name__)

MAPSERV = "/usr/bin/mapserv"
TIMEOUT_SECONDS = 30.0
MAX_POST_BYTES = 1024 * 1024
# What WMS GetFeatureInfo answers in: advertised in the capabilities, and the only formats
# handed to mapserv (8.0 aborts on some others, e.g. a bare "application/json").
FEATURE_INFO_FORMATS = (
    "application/json; subtype=geojson",
    "text/plain",
    "application/vnd.ogc.gml",
)
MAP_FILE = "catalogue.map"
LAYERS_DIR = "couches"  # one map file per layer: what a request naming one layer reads
SETS_DIR = "ensembles"  # one map file per set of layers named together, made on demand
SET_LIFETIME = 3600.0  # seconds a set's map file is kept after it was made
# The parameter naming the layers a request reads, per request (WMS and WFS)
LAYER_PARAMETERS = {
    "getmap": ("layers",),
    "getfeatureinfo": ("layers",),
    "getlegendgraphic": ("layer",),
    "getstyles": ("layers",),
    "getfeature": ("typenames", "typename"),
    "describefeaturetype": ("typenames", "typename"),
    "getpropertyvalue": ("typenames", "typename"),
}
CONFIG_FILE = "mapserver.conf"
SERVICE_CRS = ("EPSG:4326", "EPSG:2154", "EPSG:3946", "EPSG:3857")
WMS_EXTRA_CRS = ("CRS:84",)
MAX_FEATURES = 5000  # WFS page size when the caller asks for no COUNT (paging is advertised)
EXTENT_MARGIN = 1e-5  # degrees, about a metre
FID_ITEM = "ms_fid"  # the GeoPackage's feature id, exposed for gml:id and hidden as an item
LAYER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # an XML NCName: a WFS type name
PLAIN_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")  # a PostgreSQL name needing no quotes
PROJECTED_MARGIN = 1.0  # metres (or the CRS's unit) around a PostGIS layer's extent
# A GetFeature BBOX becomes a polygon of this many segments per edge (see `bbox_as_filter`)
BBOX_EDGE_SEGMENTS = 64
# EPSG:4326 named as WFS 2.0 reads it latitude first; MapServer reads a filter's polygon
# in it longitude first, so such a box is handed over in CRS84 (the same, x = longitude)
LATITUDE_FIRST = re.compile(
    r"^(urn:(x-)?ogc:def:crs:EPSG:[0-9.]*:4326|https?://www\.opengis\.net/def/crs/EPSG/0/4326)$",
    re.IGNORECASE,
)
CRS84_URN = "urn:ogc:def:crs:OGC:1.3:CRS84"
DEFAULT_WFS_CRS = SERVICE_CRS[0]  # the features' CRS when a GetFeature names no SRSNAME
FES_NS = "http://www.opengis.net/fes/2.0"
GML32_NS = "http://www.opengis.net/gml/3.2"

SERVICE_TITLE = "Données ouvertes des communes de la Métropole de Lyon"
SERVICE_ABSTRACT = (
    "Cartes (WMS) et objets géographiques (WFS) des jeux de données ouverts publiés par les "
    "communes partenaires de la Métropole de Lyon. Chaque couche est diffusée sous sa propre "
    "licence, indiquée dans sa description."
)
SERVICE_KEYWORDS = ("données ouvertes", "Métropole de Lyon", "communes")
CONTACT_PERSON = "Équipe data de la Métropole de Lyon"
ORGANISATION = "Métropole de Lyon et communes partenaires"
ROUTES = {"/wms": "WMS", "/wfs": "WFS"}

# Default style: one colour for every layer, drawn according to its geometry kind.
STYLE_RGB = (0, 102, 204)
OUTLINE_RGB = (255, 255, 255)
POINT_SIZE = 10
LINE_WIDTH = 3
# Table Schema types as MapServer's GML types (DescribeFeatureType, GeoJSON field types).
# Dates, times and years are served as text: MapServer wraps GML 3.2 dates in
# gml:timePosition elements that GDAL's GML reader does not take as a field's value.
GML_TYPES = {"integer": "Long", "number": "Real", "boolean": "Boolean"}
# MapServer 8 writes a null value as an empty element (<ms:x></ms:x>), which no xs:long,
# xs:double or xs:boolean accepts, and as "" in GeoJSON: every item is declared nillable and
# an empty one is sent as <ms:x xsi:nil="true"/>, or null in GeoJSON (`as_declared`). Texts
# too: published data hold no empty text (reading a submission makes an empty cell null,
# `pipelines/read/cells.py`), so an empty text element can only be a null.
FEATURE_BLOCK = re.compile(rb'(<ms:([^\s>]+) gml:id="[^"]*">)(.*?)(</ms:\2>)', re.DOTALL)
EMPTY_ITEM = re.compile(rb"<ms:([^\s>/]+)></ms:\1>")
# Geometry types declared by DescribeFeatureType. Lines and polygons stay
# gml:GeometryPropertyType: GML 3.2's CurvePropertyType and SurfacePropertyType make GDAL
# (ogr2ogr, QGIS) read plain lines and polygons as curves.
# The geometry type each layer declares (DescribeFeatureType), so that GIS clients (GDAL's
# WFS driver, QGIS) make a point, line or polygon layer rather than an "Unknown" one.
GML_GEOMETRIES = {
    "Point": "point",
    "MultiPoint": "multipoint",
    "LineString": "line",
    "MultiLineString": "multiline",
    "Polygon": "polygon",
    "MultiPolygon": "multipolygon",
}


# --- map file syntax -------------------------------------------------------------------------


def quoted(value: object) -> str:
    """A map file string on one line, with its backslashes and double quotes escaped."""
    text = " ".join(str(value).split())
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def metadata_block(items: dict[str, str], indent: str) -> list[str]:
    lines = [f"{indent}METADATA"]
    lines += [f"{indent}  {quoted(key)} {quoted(value)}" for key, value in items.items()]
    return lines + [f"{indent}END"]


def rgb(colour: tuple[int, int, int]) -> str:
    return " ".join(str(c) for c in colour)


def extent(bbox: tuple[float, float, float, float]) -> str:
    """A lon/lat box, a little larger than the features' own: MapServer leaves features
    lying on the edge of an exact extent out of WFS's numberMatched."""
    west, south, east, north = (float(v) for v in bbox)
    m = EXTENT_MARGIN
    return f"{west - m!r} {south - m!r} {east + m!r} {north + m!r}"


def sql_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --- the map file ----------------------------------------------------------------------------


def render_mapfile(layers: Iterable[Layer], public_url: str = DEFAULT_PUBLIC_URL) -> str:
    """The map file serving these layers by WMS and WFS (valid layer names only), on
    `/wms` and `/wfs` under `public_url`."""
    served = [layer for layer in layers if _valid_name(layer)]
    blocks = ["\n".join(_layer_block(layer, public_url)) for layer in served]
    return assemble_mapfile(render_header(served, public_url), blocks)


def render_header(served: list[Layer], public_url: str = DEFAULT_PUBLIC_URL) -> str:
    """A map file's beginning, before its layers: the service's description for `served`
    (their extent, their licences)."""
    lines = [
        "# Generated from the catalog by catalog/ogc/mapserver.py: do not edit.",
        "MAP",
        '  NAME "catalogue"',
        "  STATUS ON",
        f"  EXTENT {extent(_union(served))}",
        "  SIZE 800 600",
        "  MAXSIZE 4096",
        "  UNITS DD",
        "  IMAGECOLOR 255 255 255",
        "  IMAGETYPE png",
        '  PROJECTION "init=epsg:4326" END',
        '  SYMBOL NAME "cercle" TYPE ELLIPSE FILLED TRUE POINTS 1 1 END END',
        *_output_formats(),
        *_legend(),
        "  WEB",
        *metadata_block(_service_metadata(served, public_url), "    "),
        "  END",
    ]
    return "\n".join(lines)


def assemble_mapfile(header: str, blocks: Iterable[str]) -> str:
    return "\n".join([header, *blocks, "END", ""])


def _valid_name(layer: Layer) -> bool:
    if LAYER_NAME.match(layer.name):
        return True
    LOGGER.warning("Couche « %s » ignorée par WMS/WFS : nom invalide", layer.name)
    return False


def _union(layers: list[Layer]) -> tuple[float, float, float, float]:
    if not layers:
        return (-180.0, -90.0, 180.0, 90.0)
    boxes = [layer.bbox for layer in layers]
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def _output_formats() -> list[str]:
    return [
        "  OUTPUTFORMAT",
        '    NAME "png"',
        '    DRIVER "AGG/PNG"',
        '    MIMETYPE "image/png"',
        '    EXTENSION "png"',
        "    IMAGEMODE RGBA",
        "    TRANSPARENT ON",
        "  END",
        "  OUTPUTFORMAT",
        '    NAME "geojson"',
        '    DRIVER "OGR/GEOJSON"',
        '    MIMETYPE "application/json; subtype=geojson"',
        '    FORMATOPTION "STORAGE=stream"',
        '    FORMATOPTION "FORM=SIMPLE"',
        "  END",
    ]


def _legend() -> list[str]:
    return [
        "  LEGEND",
        "    KEYSIZE 20 12",
        "    IMAGECOLOR 255 255 255",
        "    LABEL SIZE 9 COLOR 0 0 0 END",
        "  END",
    ]


def _service_metadata(layers: list[Layer], public_url: str) -> dict[str, str]:
    online = {path: f"{public_url.rstrip('/')}{path}?" for path in ROUTES}
    return {
        # the links of the capabilities: fixed here, never built from the request
        "wms_onlineresource": online["/wms"],
        "wfs_onlineresource": online["/wfs"],
        "ows_title": SERVICE_TITLE,
        "ows_abstract": SERVICE_ABSTRACT,
        "ows_keywordlist": ",".join(SERVICE_KEYWORDS),
        # WMS 1.3.0 requires a person with the organisation (ContactPersonPrimary)
        "ows_contactperson": CONTACT_PERSON,
        "ows_contactorganization": ORGANISATION,
        "ows_fees": "Aucun : service gratuit.",
        "ows_accessconstraints": _licences_text(layers),
        "ows_srs": " ".join(SERVICE_CRS),
        "wms_srs": " ".join(SERVICE_CRS + WMS_EXTRA_CRS),
        "ows_enable_request": "*",
        "ms_enable_modes": "!*",  # only the OGC protocols, none of mapserv's own CGI modes
        "ows_encoding": "UTF-8",
        "wms_rootlayer_name": "",  # the root layer groups the layers: not requestable itself
        "wms_getmap_formatlist": "png,jpeg",
        "wms_getlegendgraphic_formatlist": "png",
        "wms_getfeatureinfo_formatlist": ",".join(FEATURE_INFO_FORMATS),
        "wfs_getfeature_formatlist": "geojson",
        "wfs_maxfeatures": str(MAX_FEATURES),
        "wfs_compute_number_matched": "true",
        "wms_bbox_extended": "true",
        "wms_sld_enabled": "false",  # no SLD fetched from a URL the caller gives
    }


def _licences_text(layers: list[Layer]) -> str:
    licences = sorted({(layer.licence_name, layer.licence_url) for layer in layers})
    if not licences:
        return "Aucune couche publiée."
    names = " ; ".join(f"{name} ({url})" for name, url in licences)
    return f"Chaque couche est diffusée sous sa licence, indiquée dans sa description : {names}."


def _layer_block(layer: Layer, public_url: str = DEFAULT_PUBLIC_URL) -> list[str]:
    kind = layer.geometry_kind
    return [
        "  LAYER",
        f"    NAME {quoted(layer.name)}",
        f"    TYPE {kind}",
        "    STATUS ON",
        *_source(layer),
        # A layer answers GetFeatureInfo only with a template; GML and GeoJSON need no file.
        '    TEMPLATE "interrogeable"',
        f"    TOLERANCE {0 if kind == 'POLYGON' else 6}",
        "    TOLERANCEUNITS PIXELS",
        *metadata_block(_layer_metadata(layer, public_url), "    "),
        *_class_block(layer),
        "  END",
    ]


def _source(layer: Layer) -> list[str]:
    """Where MapServer reads the features: PostGIS when the layer names its table there."""
    if layer.postgis_table and layer.postgis_dsn and layer.postgis_srid:
        return [
            "    CONNECTIONTYPE POSTGIS",
            f"    CONNECTION {quoted(layer.postgis_dsn)}",
            f"    DATA {quoted(postgis_data(layer))}",
            '    PROCESSING "CLOSE_CONNECTION=DEFER"',
            f'    PROJECTION "init=epsg:{int(layer.postgis_srid)}" END',
            f"    EXTENT {layer_extent(layer)}",
        ]
    return [
        "    CONNECTIONTYPE OGR",
        f"    CONNECTION {quoted(layer.gpkg)}",
        f"    DATA {quoted(layer_sql(layer))}",
        '    PROJECTION "init=epsg:4326" END',
        f"    EXTENT {layer_extent(layer)}",
    ]


def layer_extent(layer: Layer) -> str:
    """The layer's EXTENT (and `ows_extent`), in the CRS MapServer reads it in."""
    if not (layer.postgis_table and layer.postgis_srid) or layer.postgis_srid == 4326:
        return extent(layer.bbox)
    west, south, east, north = (float(v) for v in extent(layer.bbox).split())
    to_native = _from_wgs84(int(layer.postgis_srid))
    x0, y0, x1, y1 = to_native.transform_bounds(west, south, east, north, densify_pts=21)
    m = PROJECTED_MARGIN
    return f"{x0 - m!r} {y0 - m!r} {x1 + m!r} {y1 + m!r}"


@functools.lru_cache(maxsize=32)
def _from_wgs84(srid: int) -> Transformer:
    return Transformer.from_crs(4326, srid, always_xy=True)


def postgis_data(layer: Layer) -> str:
    """The PostGIS layer's DATA: the version table's feature id (as `ms_fid`, the unique
    key and gml:id), its geometry and published fields, dates as YYYY-MM-DD and datetimes
    as YYYY-MM-DDTHH:MM:SS (as the GeoPackage and the OGC API), in feature order (paging)."""
    geometry = layer.postgis_geometry or "geometry"
    schema, _, table = (layer.postgis_table or "").partition(".")
    columns = [f"ogc_fid AS {FID_ITEM}", sql_identifier(geometry)]
    for field in layer.fields:
        name = sql_identifier(field["name"])
        if field["type"] == "date":
            columns.append(f"to_char({name}, 'YYYY-MM-DD') AS {name}")
        elif field["type"] == "datetime":  # ISO 8601, as the GeoPackage and the OGC API
            columns.append(f"to_char({name}, 'YYYY-MM-DD\"T\"HH24:MI:SS') AS {name}")
        else:
            columns.append(name)
    select = (
        f"SELECT {', '.join(columns)} FROM {sql_identifier(schema)}.{sql_identifier(table)} "
        "ORDER BY ogc_fid"
    )
    column = geometry if PLAIN_IDENTIFIER.match(geometry) else sql_identifier(geometry)
    return (
        f"{column} from ({select}) as t using unique {FID_ITEM} "
        f"using srid={int(layer.postgis_srid or 0)}"
    )


def layer_sql(layer: Layer) -> str:
    """The layer's features as MapServer reads them: the feature id (also as an item, for
    gml:id), the geometry, the published fields, dates as YYYY-MM-DD (GeoPackages derived
    before map exports kept dates hold a time of day)."""
    fid, geometry = key_columns(layer.gpkg, layer.table)
    columns = [
        sql_identifier(fid),
        f"{sql_identifier(fid)} AS {FID_ITEM}",
        sql_identifier(geometry),
    ]
    for field in layer.fields:
        name = sql_identifier(field["name"])
        columns.append(f"substr({name}, 1, 10) AS {name}" if field["type"] == "date" else name)
    return f"SELECT {', '.join(columns)} FROM {sql_identifier(layer.table)}"


def key_columns(gpkg: Path, table: str) -> tuple[str, str]:
    """The GeoPackage table's feature id and geometry columns."""
    return _key_columns(str(gpkg), table)


@functools.lru_cache(maxsize=4096)
def _key_columns(gpkg: str, table: str) -> tuple[str, str]:
    """Read once per file: a layer's GeoPackage is written once (releases are immutable)."""
    with sqlite3.connect(f"file:{gpkg}?mode=ro", uri=True) as conn:
        geometry = conn.execute(
            "SELECT column_name FROM gpkg_geometry_columns WHERE table_name = ?", (table,)
        ).fetchone()
        fid = conn.execute(
            "SELECT name FROM pragma_table_info(?) WHERE pk = 1", (table,)
        ).fetchone()
    if geometry is None or fid is None:
        raise ValueError(f"{gpkg} : table {table} sans identifiant ou sans géométrie.")
    return str(fid[0]), str(geometry[0])


def _layer_metadata(layer: Layer, public_url: str = DEFAULT_PUBLIC_URL) -> dict[str, str]:
    licence = f"Licence : {layer.licence_name} ({layer.licence_url}). {layer.notice}"
    items = {
        # the dataset's ISO 19139 record, from the CSW (else MapServer links its own
        # GetMetadata request, which this service does not answer)
        "ows_metadataurl_href": iso_record(public_url, layer.dataset),
        "ows_metadataurl_format": "text/xml",
        "ows_metadataurl_type": "ISO19115:2003",
        "ows_title": layer.title,
        "ows_abstract": f"{layer.description} {licence}",
        "ows_keywordlist": ",".join(layer.keywords),
        "ows_srs": " ".join(SERVICE_CRS),
        "wms_srs": " ".join(SERVICE_CRS + WMS_EXTRA_CRS),
        "ows_extent": layer_extent(layer),
        "wms_attribution_title": layer.notice,
        "wms_attribution_onlineresource": layer.licence_url,
        "gml_include_items": "all",
        "gml_exclude_items": FID_ITEM,
        "wms_include_items": "all",
        "wms_exclude_items": FID_ITEM,
        "gml_featureid": FID_ITEM,
        "gml_geometries": "geometrie",
        "wfs_geometry_precision": "9",  # decimals: 0.1 mm in degrees
    }
    geometry = GML_GEOMETRIES.get(layer.geometry_type)
    if geometry:
        items["gml_geometrie_type"] = geometry
    for field in layer.fields:
        gml_type = GML_TYPES.get(field.get("type", "string"), "Character")
        items[f"gml_{field['name']}_type"] = gml_type
        items[f"gml_{field['name']}_nillable"] = "true"
    return items


def as_declared(response: Response) -> Response:
    """A GetFeature answer as the layers' schemas read it (every item nillable): an empty
    item as xsi:nil in GML, as null in GeoJSON; in GML a carriage return inside a text as
    `&#13;` (XML parsers turn a raw `\r\n` into `\n`: a published `\r\n` comes back whole)."""
    kind = response.headers.get("content-type", "")
    if "geojson" in kind:
        return _geojson_nulls(response)
    body = bytes(response.body)
    if "xml" not in kind or b"<ms:" not in body:
        return response

    def feature(found: re.Match[bytes]) -> bytes:
        content = EMPTY_ITEM.sub(rb'<ms:\1 xsi:nil="true"/>', found.group(3))
        return found.group(1) + content + found.group(4)

    # MapServer declares xmlns:xsi on the collection (for its xsi:schemaLocation)
    changed = FEATURE_BLOCK.sub(feature, body.replace(b"\r", b"&#13;"))
    return _replaced(response, changed)


def _geojson_nulls(response: Response) -> Response:
    """WFS GeoJSON: every "" as null (MapServer writes a null that way)."""
    try:
        document = json.loads(bytes(response.body))
    except ValueError:
        return response
    changed = False
    for feature in document.get("features", []) if isinstance(document, dict) else []:
        properties = feature.get("properties") or {}
        for name, value in properties.items():
            if value == "":
                properties[name] = None
                changed = True
    if not changed:
        return response
    return _replaced(response, json.dumps(document, ensure_ascii=False).encode())


def _replaced(response: Response, body: bytes) -> Response:
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return Response(body, status_code=response.status_code, headers=headers)


def _class_block(layer: Layer) -> list[str]:
    return [
        "    CLASS",
        f"      NAME {quoted(layer.title)}",
        *_styles(layer.geometry_kind),
        "    END",
    ]


def _styles(kind: str) -> list[str]:
    if kind == "POINT":
        return [
            "      STYLE",
            f'        SYMBOL "cercle" SIZE {POINT_SIZE} COLOR {rgb(STYLE_RGB)}',
            f"        OUTLINECOLOR {rgb(OUTLINE_RGB)} WIDTH 1",
            "      END",
        ]
    if kind == "LINE":
        return [f"      STYLE COLOR {rgb(STYLE_RGB)} WIDTH {LINE_WIDTH} END"]
    return [
        f"      STYLE COLOR {rgb(STYLE_RGB)} OPACITY 40 END",
        f"      STYLE OUTLINECOLOR {rgb(STYLE_RGB)} WIDTH 2 END",
    ]


def render_config(map_path: Path) -> str:
    """MapServer's config: only the generated map files may be served (the catalogue's,
    one per layer and one per set of layers asked together), by default the catalogue's."""
    folder = re.escape(str(map_path.parent))
    pattern = (
        f"^({re.escape(str(map_path))}|{folder}/({LAYERS_DIR}|{SETS_DIR})/[A-Za-z0-9_.-]+\\.map)$"
    )
    return "\n".join(
        [
            "# Generated by catalog/ogc/mapserver.py: do not edit.",
            "CONFIG",
            "  ENV",
            f"    MS_MAP_PATTERN {quoted(pattern)}",
            f"    MS_MAPFILE {quoted(map_path)}",
            '    MS_ERRORFILE "stderr"',
            "  END",
            "  MAPS",
            f"    CATALOGUE {quoted(map_path)}",
            "  END",
            "END",
            "",
        ]
    )


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` at once: a reader sees the old file or the new one, never a part."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- the service -----------------------------------------------------------------------------


class MapServerService:
    """WMS and WFS of every served layer, by MapServer, on `/wms` and `/wfs`."""

    def __init__(
        self,
        services_dir: Path,
        mapserv: str = MAPSERV,
        timeout: float = TIMEOUT_SECONDS,
        public_url: str | None = None,
        resident: bool | None = None,
    ) -> None:
        self.folder = services_dir / "mapserver"
        self.map_path = self.folder / MAP_FILE
        self.config_path = self.folder / CONFIG_FILE
        self.mapserv = mapserv
        self.timeout = timeout
        # resident FastCGI processes (started on the first request), else CGI per request
        self.pool: FastCgiPool | None = None
        if resident_services() if resident is None else resident:
            self.pool = FastCgiPool(
                [mapserv],
                self._process_environ(),
                size=resident_processes(),
                label="MapServer",
            )
        self.layer_names: tuple[str, ...] | None = None  # None until the first update
        self.pg_password: str | None = None  # for PostGIS layers: mapserv's PGPASSWORD
        self._select: Callable[[Request], MapServerService] = lambda _request: self
        self._public_url = public_url
        self._app: Any = None  # the application serving this instance (attach)
        self._written: dict[str, str] = {}  # layer name -> what its map file was made from
        self._blocks: dict[str, str] = {}  # layer name -> its LAYER block
        self._header = ""  # the catalogue's map file's beginning
        self._served: frozenset[str] = frozenset()  # the layer names, for each request
        self.capabilities = CapabilitiesCache(self.run_capabilities)

    def public_url(self) -> str:
        """The base of the online resources: the one given, else the public URL of the
        application serving this instance, else the configured one (`catalog.site`)."""
        return self._public_url or site.of_app(self._app)

    def attach(self, app: FastAPI) -> None:
        """Serve links on `app`'s public URL (from the next update of the map file on)."""
        self._app = app

    def update(self, layers: list[Layer], entries: list[Entry]) -> None:
        """Write the changed layers' map files, the catalogue's map file and the config;
        the capabilities documents are assembled again from the changed layers' elements."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / LAYERS_DIR).mkdir(exist_ok=True)
        sets = self.folder / SETS_DIR
        url = self.public_url()
        served = [layer for layer in layers if _valid_name(layer)]
        changed = {
            layer.name for layer in served if self._written.get(layer.name) != _key(layer, url)
        }
        for layer in served:
            if layer.name in changed:
                self._blocks[layer.name] = "\n".join(_layer_block(layer, url))
                text = assemble_mapfile(render_header([layer], url), [self._blocks[layer.name]])
                write_atomically(self.layer_map(layer.name), text)
                self._written[layer.name] = _key(layer, url)
        names = [layer.name for layer in served]
        for gone in set(self._written) - set(names):
            self._written.pop(gone)
            self._blocks.pop(gone, None)
            self.layer_map(gone).unlink(missing_ok=True)
        self._header = render_header(served, url)
        write_atomically(self.config_path, render_config(self.map_path.resolve()))
        write_atomically(self.map_path, assemble_mapfile(self._header, self._blocks_of(names)))
        _remove_old_sets(sets)
        self.layer_names = tuple(names)
        self._served = frozenset(names)
        passwords = {layer.postgis_password for layer in layers if layer.postgis_password}
        self.pg_password = next(iter(passwords), None)
        if self.pool is not None:
            self.pool.restart()
        started = time.perf_counter()
        self.capabilities.layers_changed(names, changed)
        LOGGER.info(
            "MapServer : %d couches réécrites, capacités assemblées en %.2f s",
            len(changed),
            time.perf_counter() - started,
        )

    def layer_map(self, name: str) -> Path:
        return self.folder / LAYERS_DIR / f"{name}.map"

    def _blocks_of(self, names: Iterable[str]) -> list[str]:
        return [self._blocks[name] for name in names]

    def map_for(self, names: list[str]) -> Path:
        """The map file holding these served layers: the layer's own for one, one made for
        the set for several (named by its content: another worker of the catalog may be
        reading an older one, left in place until it is old)."""
        if len(names) == 1:
            return self.layer_map(names[0])
        return self._set_map(self._header, self._blocks_of(names))

    def _set_map(self, header: str, blocks: list[str]) -> Path:
        text = assemble_mapfile(header, blocks)
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        target = self.folder / SETS_DIR / f"{digest}.map"
        if not target.exists():
            target.parent.mkdir(exist_ok=True)
            write_atomically(target, text)
        return target

    def map_of_request(self, method: str, query: str) -> Path:
        """The smallest map file answering the request: the one of the layers it names when
        they are all served, else the catalogue's (MapServer then says what is wrong)."""
        if method != "GET":
            return self.map_path
        params = {k.lower(): v for k, v in parse_qsl(query, keep_blank_values=True)}
        keys = LAYER_PARAMETERS.get(params.get("request", "").lower(), ())
        value = next((params[key] for key in keys if key in params), "")
        names = list(dict.fromkeys(_bare_name(n) for n in re.split(r"[,()]", value) if n.strip()))
        if not names or not all(name in self._served for name in names):
            return self.map_path
        return self.map_for(names)

    def run_capabilities(
        self, names: Sequence[str], query: str, whole: bool
    ) -> tuple[int, dict[str, str], bytes]:
        """MapServer's GetCapabilities on a map file of these layers, with the catalogue's
        description when `whole` (a CGI run: done once per change, off the request path)."""
        whole_map = self._set_map(self._header, self._blocks_of(names)) if whole else None
        target = whole_map or self.map_for(list(names))
        environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "MAPSERVER_CONFIG_FILE": str(self.config_path.resolve()),
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": "GET",
            "QUERY_STRING": f"map={target.resolve()}&{query}",
            **site.cgi_server(self.public_url()),
            "SCRIPT_NAME": "/wms",
        }
        done = subprocess.run(
            [self.mapserv], env=environ, capture_output=True, timeout=self.timeout, check=False
        )
        response = mapserver_answer(Finished(done.returncode, done.stdout, done.stderr))
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
        return response.status_code, headers, bytes(response.body)

    def close(self) -> None:
        """Stop the resident processes (the application stops)."""
        if self.pool is not None:
            self.pool.close()

    def _process_environ(self) -> dict[str, str]:
        """A resident process's own environment: the config it reads when it starts (each
        request then brings its CGI variables, which replace it while it answers)."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "MAPSERVER_CONFIG_FILE": str(self.config_path.resolve()),
        }

    def mount(
        self, app: FastAPI, select: Callable[[Request], MapServerService] | None = None
    ) -> None:
        """The routes; `select` gives the instance answering each request (the caller's
        audience's, see `services.TieredService`), this one by default."""
        self.attach(app)
        self._select = select or (lambda _request: self)
        for path, service in ROUTES.items():
            endpoint = self._endpoint(service)
            for method in ("GET", "POST"):
                app.add_api_route(
                    path,
                    endpoint,
                    methods=[method],
                    name=f"{service.lower()}_{method.lower()}",
                    summary=f"Service {service} (MapServer)",
                    description=f"Requêtes OGC {service} : paramètres du protocole, ou corps "
                    "XML en POST. Sans paramètre : présentation du service.",
                    response_class=Response,
                )

    def _endpoint(self, service: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            chosen = await run_in_threadpool(self._select, request)
            return await chosen.answer(request, service)

        return endpoint

    async def answer(self, request: Request, service: str) -> Response:
        """Run `mapserv` on the request; French answers for what MapServer cannot say."""
        if request.method == "GET" and not request.url.query:
            return service_page(request, service)
        if not self.layer_names:
            return ogc_exception(503, "Le service n'a encore aucune couche publiée.")
        try:
            body = await read_bounded(request, MAX_POST_BYTES) if request.method == "POST" else b""
        except BodyTooLarge:
            return ogc_exception(413, "Requête trop volumineuse (1 Mio au plus).")
        refused = refuse_unadvertised_format(service, request.url.query)
        if refused is not None:
            return refused
        if request.method == "GET":
            query = cgi_query(request.url.query, service, add_defaults=True)
            variant = variant_of(service, query)
            if variant is not None:
                document = await run_in_threadpool(self.capabilities.document, variant)
                if document is not None:
                    return await capabilities_answer(document, request)
        environ = self.cgi_environ(request, service, body)
        try:
            if self.pool is not None:
                finished = await self.pool.run(environ, body, self.timeout)
            else:
                finished = await run_cgi(self.mapserv, environ, body, self.timeout)
        except TimeoutError:
            return ogc_exception(504, f"MapServer n'a pas répondu en {self.timeout:.0f} s.")
        except OSError:
            LOGGER.exception("MapServer introuvable ou non exécutable : %s", self.mapserv)
            return ogc_exception(503, "MapServer n'est pas disponible sur ce serveur.")
        return as_declared(mapserver_answer(finished))

    def cgi_environ(self, request: Request, service: str, body: bytes) -> dict[str, str]:
        """The CGI variables: no header of the request but its content type, and the
        server's name and port the public URL's (should the map file name no online
        resource, MapServer would build one from them)."""
        url = request.url
        public = self.public_url()
        environ = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "MAPSERVER_CONFIG_FILE": str(self.config_path.resolve()),
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": request.method,
            "QUERY_STRING": f"map={self.map_of_request(request.method, url.query).resolve()}&"
            + cgi_query(url.query, service, add_defaults=request.method == "GET"),
            **site.cgi_server(public),
            "SCRIPT_NAME": urlsplit(public).path.rstrip("/") + url.path,
        }
        if self.pg_password:
            environ["PGPASSWORD"] = self.pg_password
        if request.method == "POST":
            environ["CONTENT_TYPE"] = request.headers.get("content-type", "text/xml")
            environ["CONTENT_LENGTH"] = str(len(body))
        return environ


async def capabilities_answer(document: Document, request: Request) -> Response:
    """The cached capabilities document, compressed for a client that accepts gzip."""
    headers = {**document.headers, "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", "").lower():
        body = document.compressed or await run_in_threadpool(document.gzipped)
        return Response(body, document.status, {**headers, "Content-Encoding": "gzip"})
    return Response(document.body, document.status, headers)


def _key(layer: Layer, public_url: str) -> str:
    """What a layer's map file is made from (its print, else the layer itself)."""
    return f"{public_url}\n{layer.state or repr(layer)}"


def _remove_old_sets(folder: Path) -> None:
    """Map files of sets of layers no request has needed for a while."""
    if not folder.is_dir():
        return
    limit = time.time() - SET_LIFETIME
    for old in folder.glob("*.map"):
        with contextlib.suppress(OSError):
            if old.stat().st_mtime < limit:
                old.unlink()


def _bare_name(name: str) -> str:
    """A layer or type name without its namespace prefix (`ms:bancs` is `bancs`)."""
    return name.strip().rpartition(":")[2]


def cgi_query(query: str, service: str, add_defaults: bool) -> str:
    """The caller's parameters less `map` (the map file is the config's); a GET names its
    service by its route, and asks for the capabilities when it names no request."""
    pairs = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() != "map"]
    names = {k.lower() for k, _ in pairs}
    if add_defaults and "service" not in names:
        pairs.append(("SERVICE", service))
    if add_defaults and "request" not in names:
        pairs.append(("REQUEST", "GetCapabilities"))
    return urlencode(bbox_as_filter(pairs))


def bbox_as_filter(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """A WFS 2.0 GetFeature's BBOX that names its CRS, as a FILTER: the box as a polygon
    in that CRS, each edge cut in `BBOX_EDGE_SEGMENTS`, that the features intersect.

    MapServer 8 tests each feature in the output CRS (SRSNAME, EPSG:4326 by default),
    exactly when the BBOX is in that CRS (left as it is then), else against the envelope
    of the BBOX reprojected into it: a Lambert-93 box asked without SRSNAME=EPSG:2154
    returned features tens of metres outside it. A filter's polygon is reprojected vertex by
    vertex into each layer's CRS and tested exactly against the geometries, after the
    spatial index (R-tree, GiST) has chosen the candidates; its dense edges follow the
    box's straight edges, curved in the layer's CRS, to within a millimetre."""
    params = {k.lower(): v for k, v in pairs}
    if (
        params.get("request", "").lower() != "getfeature"
        or not params.get("version", "").startswith("2.0")
        or not {"filter", "resourceid"}.isdisjoint(params)
    ):
        return pairs
    parts = params.get("bbox", "").split(",")
    if len(parts) != 5:  # four numbers and a CRS; any other BBOX is left to MapServer
        return pairs
    try:
        box = [float(v) for v in parts[:4]]
    except ValueError:
        return pairs
    if not all(math.isfinite(v) for v in box) or box[0] > box[2] or box[1] > box[3]:
        return pairs
    names = params.get("typenames") or params.get("typename") or ""
    count = max(1, len([name for name in names.split(",") if name.strip()]))
    crs = parts[4].strip()
    if _crs_code(crs) == _crs_code(params.get("srsname") or DEFAULT_WFS_CRS):
        return pairs  # MapServer tests each feature in the box's own CRS: exact already
    if LATITUDE_FIRST.match(crs):
        box, crs = [box[1], box[0], box[3], box[2]], CRS84_URN
    one = _intersects_filter(box, crs)
    kept = [(k, v) for k, v in pairs if k.lower() != "bbox"]
    return [*kept, ("FILTER", "".join(f"({one})" for _ in range(count)) if count > 1 else one)]


def _crs_code(crs: str) -> str:
    """A CRS's code (`2154`, `CRS84`) whatever its spelling (EPSG:, urn, URI)."""
    return re.split(r"[:/]", crs.strip().upper())[-1]


def _intersects_filter(box: list[float], crs: str) -> str:
    """An FES 2.0 filter: the features intersecting the box, as a dense polygon in `crs`
    (in the box's own axis order, which the polygon's srsName keeps)."""
    a0, b0, a1, b1 = box
    corners = [(a0, b0), (a1, b0), (a1, b1), (a0, b1), (a0, b0)]
    n = BBOX_EDGE_SEGMENTS
    points = [
        (start[0] + (end[0] - start[0]) * i / n, start[1] + (end[1] - start[1]) * i / n)
        for start, end in itertools.pairwise(corners)
        for i in range(n)
    ]
    points.append(corners[0])
    positions = " ".join(f"{a!r} {b!r}" for a, b in points)
    return (
        f'<fes:Filter xmlns:fes="{FES_NS}" xmlns:gml="{GML32_NS}"><fes:Intersects>'
        "<fes:ValueReference>geometrie</fes:ValueReference>"
        f'<gml:Polygon gml:id="bbox" srsName="{html.escape(crs)}"><gml:exterior>'
        f"<gml:LinearRing><gml:posList>{positions}</gml:posList></gml:LinearRing>"
        "</gml:exterior></gml:Polygon></fes:Intersects></fes:Filter>"
    )


def refuse_unadvertised_format(service: str, query: str) -> Response | None:
    """A WMS GetFeatureInfo in a format the capabilities do not advertise: refused with
    `InvalidFormat` before it reaches mapserv."""
    params = {k.lower(): v for k, v in parse_qsl(query, keep_blank_values=True)}
    if service != "WMS" or params.get("request", "").lower() != "getfeatureinfo":
        return None
    asked = params.get("info_format", "")
    if _media_type(asked) in {_media_type(f) for f in FEATURE_INFO_FORMATS}:
        return None
    return wms_exception(
        "InvalidFormat",
        f"INFO_FORMAT « {asked} » non proposé. Formats proposés : "
        f"{', '.join(FEATURE_INFO_FORMATS)}.",
    )


def _media_type(value: str) -> str:
    return ";".join(part.strip() for part in value.lower().split(";"))


def mapserver_answer(finished: Finished) -> Response:
    """The HTTP answer for a mapserv run: a crash (a CGI process killed by a signal or
    failing silently, a FastCGI process dropping the request) is a 500 with an exception
    report (the incident logged with MapServer's own words), never a 200."""
    crashed = not finished.complete or finished.returncode < 0
    if crashed or (finished.returncode != 0 and not finished.output.strip()):
        LOGGER.error(
            "MapServer s'est arrêté (code %s) : %s",
            finished.returncode,
            finished.errors.decode("utf-8", "replace").strip()[:2000] or "sans message",
        )
        return ogc_exception(
            500, "MapServer s'est arrêté sur cette requête ; l'incident est consigné."
        )
    return cgi_response(finished.output)


async def run_cgi(program: str, environ: dict[str, str], body: bytes, timeout: float) -> Finished:
    """The CGI program's run; TimeoutError (the process killed) past `timeout`."""
    process = await asyncio.create_subprocess_exec(
        program,
        stdin=asyncio.subprocess.PIPE if body else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environ,
    )
    try:
        output, errors = await asyncio.wait_for(process.communicate(body or None), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if errors.strip() and process.returncode == 0:
        LOGGER.info("MapServer : %s", errors.decode("utf-8", "replace").strip()[:2000])
    return Finished(process.returncode if process.returncode is not None else 0, output, errors)


def cgi_response(output: bytes) -> Response:
    """An HTTP response from a CGI output: headers (with `Status:`), a blank line, the body."""
    ends = [(output.find(sep), sep) for sep in (b"\r\n\r\n", b"\n\n") if sep in output]
    if not ends:
        return ogc_exception(502, "Réponse invalide de MapServer.")
    position, separator = min(ends)
    status, headers = 200, {}
    for line in output[:position].decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "status":
            status = int(value.split()[0])
        elif name.strip():
            headers[name.strip()] = value.strip()
    return Response(output[position + len(separator) :], status_code=status, headers=headers)


def ogc_exception(status: int, message: str) -> Response:
    """An OWS exception report in French, for answers that MapServer does not give."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ows:ExceptionReport xmlns:ows="http://www.opengis.net/ows/1.1" version="2.0.0" '
        'xml:lang="fr">\n'
        '  <ows:Exception exceptionCode="NoApplicableCode">\n'
        f"    <ows:ExceptionText>{html.escape(message)}</ows:ExceptionText>\n"
        "  </ows:Exception>\n"
        "</ows:ExceptionReport>\n"
    )
    return Response(body, status_code=status, media_type="text/xml; charset=utf-8")


def wms_exception(code: str, message: str) -> Response:
    """A WMS 1.3.0 service exception report, in French (400)."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ServiceExceptionReport version="1.3.0" xmlns="http://www.opengis.net/ogc">\n'
        f'  <ServiceException code="{html.escape(code)}">{html.escape(message)}'
        "</ServiceException>\n"
        "</ServiceExceptionReport>\n"
    )
    return Response(body, status_code=400, media_type="text/xml; charset=utf-8")


def service_page(request: Request, service: str) -> HTMLResponse:
    """What a browser opening the bare service URL gets: how to use it, in French."""
    version = "1.3.0" if service == "WMS" else "2.0.0"
    link = html.escape(f"{request.url.path}?SERVICE={service}&VERSION={version}")
    return HTMLResponse(
        '<!doctype html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>Service {service} — {html.escape(SERVICE_TITLE)}</title></head><body>"
        f"<h1>Service {service} {version}</h1>"
        f"<p>{html.escape(SERVICE_ABSTRACT)}</p>"
        f'<p>Document de capacités : <a href="{link}&amp;REQUEST=GetCapabilities">'
        "GetCapabilities</a>. Systèmes de coordonnées : "
        f"{', '.join(SERVICE_CRS)}.</p></body></html>"
    )
