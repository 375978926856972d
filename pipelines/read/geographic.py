"""What every format GDAL reads shares: the file checked for what its name says by its
format's `prepare`, read by GDAL from a temporary folder of our own with no network, its
layer chosen, then its attributes, geometries and coordinates checked.

A geographic format's reader is a `GeographicReader`: its `name`, whether every layer
belongs to the dataset (`all_layers`, a KML's folders), and `prepare`, which refuses what
is not the format (GDAL picks a driver from the content: a « .geojson » holding a VRT
would read other files) and says where GDAL reads it, with which open options.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyogrio
import pyogrio.raw

from core.column_names import check_header
from core.problems import Problem, Report, SubmissionRejected, reject
from pipelines import safety
from pipelines.read import STAGE
from pipelines.read.cells import array_to_text
from pipelines.read.crs import crs_of, resolve_crs
from pipelines.read.geometry import check_geography, decode_geometries
from pipelines.read.table import SourceTable
from pipelines.read.text import SCAN_CHUNK

WORK_PREFIX = "opendata-lecture-"


@dataclass
class _Layer:
    """One layer as GDAL gives it: attribute arrays, WKB geometries, CRS."""

    name: str
    fields: list[str]
    values: list[np.ndarray]
    wkb: np.ndarray
    crs: str | None


class GeographicReader(ABC):
    """A format GDAL reads (see the module's docstring)."""

    name: str
    all_layers = False  # every layer belongs to the dataset (a KML's folders)

    @abstractmethod
    def prepare(self, path: Path, work: Path) -> tuple[str, dict[str, str]]:
        """Refuse the file when it is not the format its name says; where GDAL reads it
        (the file itself, or what was extracted or copied into `work`), with which open
        options."""

    def read(self, path: Path, declared_crs: int | None) -> SourceTable:
        return read_geographic(path, self, declared_crs)


def read_geographic(path: Path, reader: GeographicReader, declared_crs: int | None) -> SourceTable:
    """A geographic file: checked for what it is, read by GDAL from our own folder, then its
    attributes, geometries and coordinates checked."""
    with tempfile.TemporaryDirectory(prefix=WORK_PREFIX) as work:
        location, options = reader.prepare(path, Path(work))
        with _gdal_config(OFFLINE_GDAL), _no_proxy_exemptions():
            layer = _read_layer(location, options, reader.all_layers, path.name)
    _refuse_without_attributes(layer, path.name)
    header = check_header(layer.fields, path.name, trim=False)
    _refuse_reserved_names(header, path.name)
    table = pa.Table.from_arrays([array_to_text(v) for v in layer.values], names=header)
    source = SourceTable(table=table, source_format=reader.name)
    geometries = decode_geometries(layer.wkb, source, path.name)
    crs = resolve_crs(crs_of(layer.crs), declared_crs, path.name)
    source.crs = crs
    source.geometry = gpd.GeoSeries(geometries, crs=f"EPSG:{crs}")
    check_geography(source, path.name)
    return source


def _refuse_without_attributes(layer: _Layer, filename: str) -> None:
    if layer.fields:
        return
    if len(layer.wkb) == 0:
        raise reject(STAGE, "aucune-ligne", f"Le fichier {filename} ne contient aucun objet.")
    raise reject(
        STAGE,
        "geo-sans-attribut",
        f"Les objets du fichier {filename} n'ont aucun attribut : ajoutez au moins un identifiant.",
    )


# Names the published GIS formats give their own columns (GeoPackage's fid and geometry
# column, the WKT column of the CSV): an attribute of that name cannot be published.
RESERVED_GEOGRAPHIC_NAMES = {"fid", "geom", "geometry"}


def _refuse_reserved_names(header: list[str], filename: str) -> None:
    report = Report()
    for name in header:
        if name.casefold() in RESERVED_GEOGRAPHIC_NAMES:
            report.add(
                Problem(
                    STAGE,
                    "colonne-nom-reserve",
                    f"L'attribut « {name} » du fichier {filename} porte un nom réservé par les "
                    "formats publiés (identifiant et géométrie du GeoPackage, géométrie du "
                    f"CSV) : renommez-le, par exemple « {name}_origine ».",
                    row=1,
                    column=name,
                )
            )
    if not report.valid:
        raise SubmissionRejected(report)


def not_the_format(filename: str, label: str, detail: str) -> SubmissionRejected:
    return reject(
        STAGE,
        "format-incoherent",
        f"Le fichier {filename} n'est pas un fichier {label} ({detail}).",
    )


SCAN_OVERLAP = 256


def refuse_pattern(
    path: Path, pattern: re.Pattern[bytes], rule: str, message: Callable[[str], str]
) -> None:
    """Refuse the file when `pattern` occurs anywhere in it (read in chunks that overlap, so
    that no occurrence is cut in two)."""
    tail = b""
    with path.open("rb") as handle:
        while chunk := handle.read(SCAN_CHUNK):
            if pattern.search(tail + chunk):
                raise reject(STAGE, rule, message(path.name))
            tail = chunk[-SCAN_OVERLAP:]


def xml_root(path: Path) -> str:
    """The root of a document without DTD, well-formed to its end (GDAL would read a cut
    document's first features as if they were all)."""
    with path.open("rb") as stream:
        root = safety.check_xml_stream(stream, path.name, allow_doctype=False)
    with path.open("rb") as stream:
        safety.check_xml_well_formed(stream, path.name)
    return root


# GDAL follows URLs a file names (a GeoJSON "crs" link, however it is spelt): while it
# reads a submission, its HTTP client goes through a "proxy" at port 0, where nothing can
# listen, so no request leaves the process; the files themselves never need the network.
OFFLINE_GDAL = {
    "GML_DOWNLOAD_WFS_SCHEMA": "NO",
    "GDAL_HTTP_PROXY": "127.0.0.1:0",
    "GDAL_HTTPS_PROXY": "127.0.0.1:0",
    "GDAL_HTTP_CONNECTTIMEOUT": "1",
    "GDAL_HTTP_TIMEOUT": "1",
    "GDAL_HTTP_MAX_RETRY": "0",
}


NO_PROXY_VARIABLES = ("no_proxy", "NO_PROXY")


@contextlib.contextmanager
def _no_proxy_exemptions() -> Iterator[None]:
    """curl skips the proxy for the hosts of `no_proxy` (often loopback): not while GDAL
    reads a submission. Reads run in the pipeline's own processes, one at a time."""
    saved = {name: os.environ.pop(name) for name in NO_PROXY_VARIABLES if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


@contextlib.contextmanager
def _gdal_config(options: dict[str, str]) -> Iterator[None]:
    previous = {name: pyogrio.get_gdal_config_option(name) for name in options}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(previous)


def _read_layer(location: str, options: dict[str, str], all_layers: bool, filename: str) -> _Layer:
    try:
        names = _layer_names(location, options, all_layers, filename)
        layers = [_read_one_layer(location, name, options) for name in names]
    except SubmissionRejected:
        raise
    except Exception as error:  # GDAL errors come in several types
        raise reject(
            STAGE,
            "geo-illisible",
            f"Le fichier géographique {filename} est illisible "
            f"({_gdal_message(error, location, filename)}).",
        ) from error
    if not layers:
        raise reject(
            STAGE, "geo-sans-geometrie", f"Le fichier {filename} ne contient aucune couche."
        )
    return _merge_layers(layers, filename)  # a KML's folders are one dataset


def _layer_names(
    location: str, options: dict[str, str], all_layers: bool, filename: str
) -> list[str]:
    """The layers to read: every one when they all belong to the dataset (a KML's
    folders); otherwise the one spatial layer holding
    features (tables without geometry, such as QGIS's « layer_styles », are left aside)."""
    listed = [(str(name), kind) for name, kind in pyogrio.list_layers(location)]
    spatial = [name for name, kind in listed if kind is not None]
    if not spatial:
        return [name for name, _ in listed[:1]]
    if all_layers or len(spatial) == 1:
        return spatial
    filled = [name for name in spatial if _feature_count(location, name, options) != 0]
    if len(filled) > 1:
        raise reject(
            STAGE,
            "plusieurs-couches",
            f"Le fichier {filename} contient {len(filled)} couches de données "
            f"({', '.join(filled[:10])}) : déposez-en une seule par jeu de données.",
        )
    return filled or spatial[:1]


def _feature_count(location: str, name: str, options: dict[str, str]) -> int:
    info = pyogrio.read_info(location, layer=name, force_feature_count=True, **options)
    return int(info["features"])


GDAL_MESSAGES = (
    (re.compile(r".*not recognized as being in a supported file format.*"), "format non reconnu"),
    (
        re.compile(r"Failed to read GeoJSON data; At line (\d+), character (\d+): (.*)"),
        r"JSON invalide à la ligne \1, caractère \2 : \3",
    ),
    (re.compile(r"\.shp file is unreadable, or corrupt\."), "fichier .shp illisible ou corrompu"),
)


def _gdal_message(error: Exception, location: str, filename: str) -> str:
    """GDAL's message, without our paths, its main phrases in French."""
    text = " ".join(str(error).split()).replace(f"'{location}'", filename)
    text = text.replace(location, filename)
    for pattern, french in GDAL_MESSAGES:
        text = pattern.sub(french, text)
    return text if len(text) <= 300 else text[:300] + "…"


def _read_one_layer(location: str, name: str, options: dict[str, str]) -> _Layer:
    meta, _, wkb, values = pyogrio.raw.read(location, layer=name, **options)
    if wkb is None:  # a table without geometry column
        wkb = np.full(len(values[0]) if values else 0, None, dtype=object)
    return _Layer(
        name=name,
        fields=[str(f) for f in meta["fields"]],
        values=list(values),
        wkb=np.asarray(wkb, dtype=object),
        crs=meta.get("crs"),
    )


def _merge_layers(layers: list[_Layer], filename: str) -> _Layer:
    """One layer of several with the union of their attributes (a KML's folders)."""
    if len(layers) == 1:
        return layers[0]
    fields = list(dict.fromkeys(name for layer in layers for name in layer.fields))
    values = [np.concatenate([_values_of(layer, name) for layer in layers]) for name in fields]
    wkb = np.concatenate([layer.wkb for layer in layers])
    return _Layer(name=filename, fields=fields, values=values, wkb=wkb, crs=layers[0].crs)


def _values_of(layer: _Layer, name: str) -> np.ndarray:
    if name in layer.fields:
        return np.asarray(layer.values[layer.fields.index(name)], dtype=object)
    return np.full(len(layer.wkb), None, dtype=object)
