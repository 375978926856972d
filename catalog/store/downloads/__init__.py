"""Download formats, derived on request from a release's Parquet/GeoParquet distribution.

A format is one module here defining a `Format` (name, extension, media type, whether
only maps have it, its writer) and one entry in `REGISTRY`, in the order the portal lists
them. Every format is written chunk by chunk (`tables.CHUNK_ROWS` rows), so memory does not
grow with the file: tabular formats from Arrow batches, map formats through GDAL fed with
Arrow batches, GeoParquet in another CRS batch by batch (its `geo` metadata from a first
pass).
Releases are immutable, so a derived file (a format, in a CRS) is written once, beside the
release, under a temporary name then renamed: concurrent requests never serve a
half-written file, and later ones are plain file downloads (ranges, caching).
"""

from __future__ import annotations

import fcntl
import functools
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from catalog.store.downloads.format import Format
from core.plugins import load

# name → "module:attribute" of its `Format`
REGISTRY = {
    "csv": "catalog.store.downloads.csv_:FORMAT",
    "json": "catalog.store.downloads.json_:FORMAT",
    "xlsx": "catalog.store.downloads.xlsx:FORMAT",
    "parquet": "catalog.store.downloads.parquet:PARQUET",
    "geoparquet": "catalog.store.downloads.parquet:GEOPARQUET",
    "geojson": "catalog.store.downloads.geojson:FORMAT",
    "gpkg": "catalog.store.downloads.gpkg:FORMAT",
    "shp": "catalog.store.downloads.shapefile:FORMAT",
    "kml": "catalog.store.downloads.kml:FORMAT",
}
ACCEPTED_CRS = (4326, 2154, 3946, 3857, 4171)


FORMATS: dict[str, Format] = {name: load(entry) for name, entry in REGISTRY.items()}


class FormatError(ValueError):
    """A format or CRS this dataset cannot be served in (French message)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status  # 404: no such file for this dataset; 400: a bad parameter


def offered(geographic: bool) -> list[str]:
    return [name for name, f in FORMATS.items() if geographic or not f.geographic_only]


def check_request(fmt: str, crs: int | None, geographic: bool) -> Format:
    spec = FORMATS.get(fmt)
    if spec is None or (spec.geographic_only and not geographic):
        raise FormatError(
            f"Format « {fmt} » non disponible pour ce jeu de données. "
            f"Formats disponibles : {', '.join(offered(geographic))}.",
            404,
        )
    if crs is not None:
        if not geographic:
            raise FormatError(
                "Ce jeu de données n'est pas géographique : « crs » ne s'applique pas."
            )
        if crs not in ACCEPTED_CRS:
            raise FormatError(
                f"Système de coordonnées EPSG:{crs} non proposé. Systèmes "
                f"proposés : {', '.join(f'EPSG:{c}' for c in ACCEPTED_CRS)}."
            )
        if spec.fixed_crs and crs != spec.fixed_crs:
            raise FormatError(f"Le format {fmt} est toujours en EPSG:{spec.fixed_crs}.")
    return spec


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """One builder at a time for `path`, across threads and processes (uvicorn workers)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".verrou"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def derived_file(
    source: Path, fmt: str, crs: int | None, notice: str, dates: frozenset[str] = frozenset()
) -> Path:
    """The file of `source` (a release's Parquet) in `fmt` and `crs`, made once; `dates`
    are the columns the schema says are dates (map releases store them as timestamps)."""
    spec = FORMATS[fmt]
    target = derived_path(source, fmt, crs)
    return build_once(target, lambda path: spec.write(source, path, crs, notice, dates))


def derived_path(source: Path, fmt: str, crs: int | None) -> Path:
    """Where `derived_file` keeps `source` in `fmt` and `crs` (the file may not exist yet)."""
    suffix = f"-{crs}" if crs else ""
    return source.parent / "derived" / f"{source.stem}{suffix}-{fmt}.{FORMATS[fmt].extension}"


def dates_as_timestamps(parquet: Path | None, dates: frozenset[str]) -> bool:
    """Whether the release stores some of its `dates` as timestamps, as map releases did
    before issue #15: the files published beside it then write 2017-09-02T00:00:00 for a
    date, and each download is derived from the Parquet instead (dates as YYYY-MM-DD)."""
    if parquet is None or not dates:
        return False
    return not dates.isdisjoint(_timestamp_columns(str(parquet)))


@functools.lru_cache(maxsize=1024)
def _timestamp_columns(parquet: str) -> frozenset[str]:
    """The Parquet's timestamp columns, read once per file: a release never changes."""
    schema = pq.read_schema(parquet)
    return frozenset(f.name for f in schema if pa.types.is_timestamp(f.type))


def build_once(target: Path, build: Callable[[Path], None]) -> Path:
    """`target`, built by `build` into a temporary file then renamed, by one request only:
    concurrent requests wait for it and never see a half-written file."""
    if target.is_file():
        return target
    with exclusive(target):
        if target.is_file():  # built by another request meanwhile
            return target
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=target.suffix)
        os.close(handle)
        try:
            build(Path(temporary))
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    return target
