"""The input formats a commune may submit: one description each, and one table of them.

This table is the input formats' registry, in pygeoapi's shape: each entry names its reader
by a dotted path (`"pipelines.read.csv:CsvReader"`), which `pipelines.read.registry` loads
when a file of that format is read; this module imports nothing of the project. Everything
else that lists input formats derives from it: the drop folders' and the upload API's
accepted extensions (`core.inbox`, `catalog.web.routes.uploads`), the read stage's format detection
and its French wording (`pipelines.read`), the size limits (`pipelines.safety`), the
metadata's `format:` of a source (`pipelines.metadata`), and how a pulled file's format is
recognised from its name, media type, catalog label and first bytes (`pipelines.harvest`).

Adding an input format: a reader module in `pipelines/read/` (see `InputFormat` in
`pipelines.read.registry`) and one `InputFormatDescription` below (docs/input-formats.md).
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True)
class InputFormatDescription:
    """What the platform says and knows of one input format."""

    name: str  # the format's name in reports, metadata, structures: "csv", "shapefile"
    label: str  # French, as a commune names it: "CSV", "Shapefile zippé"
    extensions: tuple[str, ...]  # lower-case, with the dot; the first is the usual one
    reader: str  # "module:Class" of its reader (pipelines.read.registry.InputFormat)
    geographic: bool  # its rows are features with geometries
    max_bytes: int  # largest file accepted (pipelines.safety)
    media_types: tuple[str, ...] = ()  # what a server sends it as (Content-Type)
    catalog_names: tuple[str, ...] = ()  # how DCAT and CKAN catalogs label it
    aliases: tuple[str, ...] = ()  # other names a metadata `format:` may give it
    magic: tuple[bytes, ...] = ()  # how a fetched file of this format may start

    @property
    def usual_extension(self) -> str:
        return self.extensions[0]

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a metadata `format:` may use: the name, the extensions, the aliases."""
        suffixes = tuple(extension.lstrip(".") for extension in self.extensions)
        return tuple(dict.fromkeys((self.name, *suffixes, *self.aliases)))


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# The sizes: a Shapefile's .shp and .dbf are each at most 2 GiB by design; GDAL reads a
# GeoJSON or a KML whole in memory (about ten times its size), openpyxl a workbook's shared
# strings, hence lower limits; GML is streamed.
DESCRIPTIONS: tuple[InputFormatDescription, ...] = (
    InputFormatDescription(
        name="csv",
        label="CSV",
        extensions=(".csv", ".txt"),
        reader="pipelines.read.csv:CsvReader",
        geographic=False,
        max_bytes=2 * GIB,
        media_types=("text/csv", "application/csv"),
        catalog_names=("csv", "text/csv"),
    ),
    InputFormatDescription(
        name="xlsx",
        label="XLSX",
        extensions=(".xlsx",),
        reader="pipelines.read.xlsx:XlsxReader",
        geographic=False,
        max_bytes=256 * MIB,
        media_types=(XLSX_TYPE,),
        catalog_names=("xlsx", XLSX_TYPE),
        aliases=("excel",),
        magic=(b"PK\x03\x04",),
    ),
    InputFormatDescription(
        name="geojson",
        label="GeoJSON",
        extensions=(".geojson", ".json"),
        reader="pipelines.read.geojson:GeoJsonReader",
        geographic=True,
        max_bytes=512 * MIB,
        media_types=("application/geo+json", "application/vnd.geo+json", "application/json"),
        catalog_names=("geojson", "application/geo+json", "application/vnd.geo+json"),
        magic=(b"{",),
    ),
    InputFormatDescription(
        name="shapefile",
        label="Shapefile zippé",
        extensions=(".zip",),
        reader="pipelines.read.shapefile:ShapefileReader",
        geographic=True,
        max_bytes=2 * GIB,
        media_types=("application/zip", "application/x-zip-compressed"),
        catalog_names=("shp", "shapefile", "zip", "application/zip"),
        aliases=("shp",),
        magic=(b"PK\x03\x04",),
    ),
    InputFormatDescription(
        name="gpkg",
        label="GeoPackage",
        extensions=(".gpkg",),
        reader="pipelines.read.gpkg:GeoPackageReader",
        geographic=True,
        max_bytes=2 * GIB,
        media_types=("application/geopackage+sqlite3",),
        catalog_names=("gpkg", "geopackage", "application/geopackage+sqlite3"),
        aliases=("geopackage",),
        magic=(b"SQLite format 3\x00",),
    ),
    InputFormatDescription(
        name="kml",
        label="KML",
        extensions=(".kml",),
        reader="pipelines.read.kml:KmlReader",
        geographic=True,
        max_bytes=256 * MIB,
        media_types=("application/vnd.google-earth.kml+xml",),
        catalog_names=("kml", "application/vnd.google-earth.kml+xml"),
    ),
    InputFormatDescription(
        name="gml",
        label="GML",
        extensions=(".gml",),
        reader="pipelines.read.gml:GmlReader",
        geographic=True,
        max_bytes=1 * GIB,
        media_types=("application/gml+xml",),
        catalog_names=("gml", "application/gml+xml"),
    ),
)

INPUT_FORMATS: dict[str, InputFormatDescription] = {d.name: d for d in DESCRIPTIONS}
FORMAT_BY_SUFFIX: dict[str, str] = {e: d.name for d in DESCRIPTIONS for e in d.extensions}
FORMAT_BY_MEDIA_TYPE: dict[str, str] = {t: d.name for d in DESCRIPTIONS for t in d.media_types}
FORMAT_BY_NAME: dict[str, str] = {n: d.name for d in DESCRIPTIONS for n in d.names}
GEOGRAPHIC_FORMATS: frozenset[str] = frozenset(d.name for d in DESCRIPTIONS if d.geographic)


def is_geographic(name: str) -> bool:
    return name in GEOGRAPHIC_FORMATS


def accepted_files() -> str:
    """The accepted formats as a commune names its files, for a French message:
    "CSV, XLSX, GeoJSON, Shapefile zippé (.zip), GeoPackage (.gpkg), KML, GML"."""
    return ", ".join(
        d.label if d.usual_extension[1:] == d.label.lower() else f"{d.label} ({d.usual_extension})"
        for d in DESCRIPTIONS
    )


def accepted_names() -> str:
    """The accepted formats as a metadata `format:` names them, for a French message:
    "CSV, XLSX, GeoJSON, Shapefile zippé (shapefile), GeoPackage (gpkg), KML, GML"."""
    return ", ".join(
        d.label if d.name == d.label.lower() else f"{d.label} ({d.name})" for d in DESCRIPTIONS
    )
