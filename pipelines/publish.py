"""Publish stage: write a checked table as distributions and switch the release in.

The canonical CSV is written first and hashed: when its hash equals the current
release's, nothing new is published and the submission only confirms that the
data is current. Otherwise every distribution is staged, then the store switches
the release in atomically.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from catalog.store import Releases
from catalog.store.downloads import tables
from catalog.store.downloads.layers import (
    arrow_layer,
    chunked,
    geojson_options,
    write_geoparquet,
    write_layer,
)
from catalog.store.downloads.tables import datetimes_as_iso, neutralise_formulas
from core.inbox import file_sha256
from core.problems import Repair
from core.records import Distribution, NewRelease, Release, SubmissionRecord

WGS84 = 4326


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
    store: Releases, data: CheckedData, draft: NewRelease, submission: SubmissionRecord
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


def write_csv(data: CheckedData, path: Path) -> None:
    """UTF-8, comma-separated; geometries as WKT in WGS84 (unless the positions are already
    columns of the table); no cell a spreadsheet would run. Written chunk by chunk."""
    writer, schema = None, None
    options = pacsv.WriteOptions(quoting_style="needed")
    try:
        for table in _csv_chunks(data):
            table = neutralise_formulas(datetimes_as_iso(table))
            if writer is None:
                schema = table.schema
                writer = pacsv.CSVWriter(path, schema, write_options=options)
            writer.write_table(table.cast(schema))
    finally:
        if writer is not None:
            writer.close()


def _csv_chunks(data: CheckedData) -> Iterator[pa.Table]:
    if data.geometry is None or data.geometry_columns:
        for start in range(0, max(data.typed.num_rows, 1), tables.CHUNK_ROWS):
            yield data.typed.slice(start, tables.CHUNK_ROWS)
        return
    for table, geometry in chunked(data.typed, data.geometry):
        wkt = geometry.to_crs(WGS84).to_wkt()
        yield table.append_column("geometry", pa.array(wkt.tolist(), type=pa.string()))


def write_other_distributions(data: CheckedData, folder: Path, name: str) -> list[Distribution]:
    """Parquet, and for a map GeoParquet, GeoJSON and GeoPackage, written chunk by chunk."""
    parquet = folder / f"{name}.parquet"
    if data.geometry is None:
        pq.write_table(data.typed, parquet, compression="zstd")  # a row group at a time
        return [_describe(parquet, "parquet", None)]
    geometry = data.geometry.reset_index(drop=True)
    write_geoparquet(lambda: chunked(data.typed, geometry), parquet)
    geojson = folder / f"{name}.geojson"
    wgs84 = arrow_layer(data.typed, geometry, WGS84)
    write_layer(wgs84, geojson, "GeoJSON", name, WGS84, geojson_options(WGS84))
    gpkg = folder / f"{name}.gpkg"
    write_layer(arrow_layer(data.typed, geometry), gpkg, "GPKG", name, data.crs, {})
    return [
        _describe(parquet, "parquet", data.crs),
        _describe(geojson, "geojson", WGS84),
        _describe(gpkg, "gpkg", data.crs),
    ]


def _describe(path: Path, fmt: str, crs: int | None) -> Distribution:
    return Distribution(format=fmt, filename=path.name, size=path.stat().st_size, crs=crs)
