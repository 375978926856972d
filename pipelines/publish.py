"""Publish stage: write a checked table as distributions and switch the release in.

The canonical CSV is written first and hashed: when its hash equals the current
release's, nothing new is published and the submission only confirms that the
data is current. Otherwise every distribution is staged, then the store switches
the release in atomically.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import geopandas.io.arrow as geopandas_arrow
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pyogrio
import shapely

from catalog.formats import neutralise_formulas
from catalog.records import Distribution, NewRelease, Release, SubmissionRecord
from catalog.store import CatalogStore
from pipelines.report import Repair

WGS84 = 4326
# A text cell stays text, even when it looks like JSON ("[4.83, 45.76]" of a geopoint).
GEOJSON_OPTIONS = {"RFC7946": "YES", "WRITE_NAME": "NO", "AUTODETECT_JSON_STRINGS": "NO"}


@dataclass(frozen=True)
class CheckedData:
    """What the structure check hands to publication."""

    typed: pa.Table
    geometry: gpd.GeoSeries | None
    crs: int | None
    geometry_columns: dict[str, str] | None = None  # positions read from these columns
    repairs: tuple[Repair, ...] = ()  # what the platform mended in the data, reported


@dataclass(frozen=True)
class PublishOutcome:
    status: str  # publiee | confirmee
    release: Release


def publish(
    store: CatalogStore, data: CheckedData, draft: NewRelease, submission: SubmissionRecord
) -> PublishOutcome:
    """Publish `data` as the dataset's new release, unless it is the current content."""
    staged = store.staging_dir()
    try:
        csv_path = staged / f"{draft.dataset}.csv"
        write_csv(data, csv_path)
        content_hash = file_sha256(csv_path)
        current = store.current_release(draft.dataset, draft.structure_version)
        if current is not None and current.content_hash == content_hash:
            store.confirm(
                draft.dataset, _with_release(submission, current.id), draft.metadata, draft.licence
            )
            shutil.rmtree(staged, ignore_errors=True)
            return PublishOutcome(status="confirmee", release=current)
        distributions = [_describe(csv_path, "csv", None)]
        distributions += write_other_distributions(data, staged, draft.dataset)
        new = NewRelease(
            **{
                **draft.__dict__,
                "content_hash": content_hash,
                "row_count": data.typed.num_rows,
                "distributions": distributions,
            }
        )
        release = store.publish(new, staged, submission)
        return PublishOutcome(status="publiee", release=release)
    finally:
        if staged.exists():
            shutil.rmtree(staged, ignore_errors=True)


def _with_release(submission: SubmissionRecord, release_id: str) -> SubmissionRecord:
    return SubmissionRecord(**{**submission.__dict__, "release": release_id})


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def write_csv(data: CheckedData, path: Path) -> None:
    """UTF-8, comma-separated; geometries as WKT in WGS84 (unless the positions are already
    columns of the table); no cell a spreadsheet would run."""
    table = data.typed
    if data.geometry is not None and not data.geometry_columns:
        wkt = data.geometry.to_crs(WGS84).to_wkt()
        table = table.append_column("geometry", pa.array(wkt.tolist(), type=pa.string()))
    pacsv.write_csv(
        neutralise_formulas(table),
        path,
        write_options=pacsv.WriteOptions(quoting_style="needed"),
    )


def write_other_distributions(data: CheckedData, folder: Path, name: str) -> list[Distribution]:
    if data.geometry is None:
        parquet = folder / f"{name}.parquet"
        pq.write_table(data.typed, parquet, compression="zstd")
        return [_describe(parquet, "parquet", None)]
    geoparquet = folder / f"{name}.parquet"
    pq.write_table(_geoparquet_table(data), geoparquet, compression="zstd")
    geojson = folder / f"{name}.geojson"
    _write_layer(data, WGS84, geojson, "GeoJSON", name, GEOJSON_OPTIONS)
    gpkg = folder / f"{name}.gpkg"
    _write_layer(data, data.crs, gpkg, "GPKG", name, {})
    return [
        _describe(geoparquet, "parquet", data.crs),
        _describe(geojson, "geojson", WGS84),
        _describe(gpkg, "gpkg", data.crs),
    ]


def _geoparquet_table(data: CheckedData) -> pa.Table:
    """GeoParquet keeping Arrow's types (integers with blanks stay integers, dates dates);
    without pandas metadata, so that readers build the same frames as before."""
    frame = gpd.GeoDataFrame(
        data.typed.to_pandas(types_mapper=pd.ArrowDtype),
        geometry=data.geometry.reset_index(drop=True),
    )
    # geopandas' own GeoParquet writer, up to the file: its `geo` metadata is the standard's
    table = geopandas_arrow._geopandas_to_arrow(frame, index=False)
    return table.replace_schema_metadata({b"geo": table.schema.metadata[b"geo"]})


def _write_layer(
    data: CheckedData, crs: int | None, path: Path, driver: str, layer: str, options: dict
) -> None:
    """One layer written from Arrow: types as validated, with no detour through floats."""
    geometry = data.geometry.reset_index(drop=True)
    if crs != data.crs:
        geometry = geometry.to_crs(crs)
    wkb = pa.array(shapely.to_wkb(np.asarray(geometry.values, dtype=object)), type=pa.binary())
    columns = data.typed.column_names
    # A table's own column may be called "geometry" or "fid": GDAL must not mistake it for
    # (or crash on) its geometry and identifier columns, whatever their case.
    geometry_name = _free_name(columns, "geometry")
    if driver == "GPKG":
        options = {**options, "FID": _free_name(columns, "fid")}
    pyogrio.write_arrow(
        data.typed.append_column(geometry_name, wkb),
        path,
        driver=driver,
        layer=layer,
        geometry_name=geometry_name,
        geometry_type=_ogr_geometry_type(geometry),
        crs=f"EPSG:{crs}",
        layer_options=options,
    )


def _free_name(columns: list[str], wanted: str) -> str:
    taken = {c.casefold() for c in columns}
    name = wanted
    while name.casefold() in taken:
        name = f"{name}_"
    return name


def _ogr_geometry_type(geometry: gpd.GeoSeries) -> str:
    kinds = set(geometry.dropna().geom_type)
    return kinds.pop() if len(kinds) == 1 else "Unknown"


def _describe(path: Path, fmt: str, crs: int | None) -> Distribution:
    return Distribution(format=fmt, filename=path.name, size=path.stat().st_size, crs=crs)
