"""Benchmark: our OGC API – Features items endpoint against pygeoapi 0.21 on Parquet.

The same 1M generated points are published through the real pipeline (a GeoPackage
submission) and served by the catalog (`opendata servir`: pygeoapi with our GeoPackage
provider, under /ogc); the reference is pygeoapi's stock Parquet provider over a
GeoParquet of the same release, as in bench/rows_api.py. One uvicorn worker each, a
bounded load from a second process (8 client threads with keep-alive).

    .venv/bin/python bench/ogc_api.py [--rows 1000000]

Figures go to bench/OGC_API_RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from rows_api import (  # noqa: E402
    THREADS,
    free_port,
    load,
    start_pygeoapi,
    wait_until_up,
)

COLLECTION = "lyon-releves-geo"
BOX = "4.80,45.70,4.82,45.72"  # about 0.4 % of the generated area


def publish(folder: Path, rows: int) -> Path:
    """The generated points, as a GeoPackage submission through the pipeline."""
    import geopandas as gpd
    import pyarrow.csv as pacsv
    from check_publish import generate

    from core.settings import load_settings
    from pipelines.submission import Submission, open_settings_store, run_submission

    submission_folder = folder / "inbox" / "lyon" / "releves-geo"
    submission_folder.mkdir(parents=True)
    generate(folder / "releves.csv", rows)
    frame = pacsv.read_csv(folder / "releves.csv").to_pandas()
    geo = gpd.GeoDataFrame(
        frame.drop(columns=["latitude", "longitude", "horodatage"]),
        geometry=gpd.points_from_xy(frame.longitude, frame.latitude),
        crs=4326,
    )
    geo.to_file(submission_folder / "releves-geo.gpkg", driver="GPKG", engine="pyogrio")
    (submission_folder / "metadata.yaml").write_text(
        "identifiant: releves-geo\ntitre: Relevés géolocalisés\n"
        "description: Relevés générés pour le banc d'essai OGC API.\n"
        "licence: etalab-2.0\nfrequence: quotidienne\nmodalites_livraison: Dépôt quotidien.\n"
        "date_mise_a_jour: 2026-11-01\nmots_cles: [mesures]\n"
        "contact: {nom: Banc d'essai, email: banc@exemple.fr}\n"
        "systeme_coordonnees: EPSG:4326\n",
        encoding="utf-8",
    )
    os.environ["OPENDATA_DATA_DIR"] = str(folder / "data")
    settings = load_settings()
    submission = Submission.new(
        "lyon",
        submission_folder / "releves-geo.gpkg",
        submission_folder / "metadata.yaml",
        "banc",
    )
    outcome = run_submission(submission, settings, open_settings_store(settings))
    assert outcome.status == "publiee", outcome.summary()
    return folder / "data"


def parquet_with_coordinates(folder: Path, release_parquet: Path) -> Path:
    """The release's rows with longitude/latitude columns, as the reference config reads."""
    import geopandas as gpd

    frame = gpd.read_parquet(release_parquet)
    plain = frame.drop(columns=frame.geometry.name)
    plain["longitude"], plain["latitude"] = frame.geometry.x, frame.geometry.y
    path = folder / "reference.parquet"
    plain.to_parquet(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        print(f"Publishing {args.rows:,} points through the pipeline…", flush=True)
        started = time.perf_counter()
        data = publish(folder, args.rows)
        print(f"  published in {time.perf_counter() - started:.0f} s", flush=True)
        ours_port, theirs_port = free_port(), free_port()
        ours = subprocess.Popen(
            [str(Path(sys.executable).parent / "opendata"), "servir", "--port", str(ours_port)],
            env={**os.environ, "OPENDATA_DATA_DIR": str(data)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from catalog.store import open_store

        store = open_store(f"sqlite:///{data / 'catalog.db'}", data / "files")
        parquet = store.release_path(store.current_release(COLLECTION), "parquet")
        theirs = start_pygeoapi(folder, parquet_with_coordinates(folder, parquet), theirs_port)
        try:
            figures = measure(ours_port, theirs_port, args.requests, args.rows)
        finally:
            ours.terminate()
            theirs.terminate()
    write(figures, args)


def measure(ours_port: int, theirs_port: int, count: int, rows: int) -> dict:
    ours = f"http://127.0.0.1:{ours_port}/ogc/collections/{COLLECTION}/items?f=json&limit=100"
    theirs = f"http://127.0.0.1:{theirs_port}/collections/releves/items?f=json&limit=100"
    started = time.perf_counter()
    wait_until_up(ours, seconds=900)  # start-up builds the layer's GeoPackage once
    print(f"  catalog up (layer built) in {time.perf_counter() - started:.0f} s", flush=True)
    wait_until_up(theirs)
    ours_first, theirs_first = requests.get(ours, timeout=60), requests.get(theirs, timeout=60)
    assert ours_first.json()["numberMatched"] == rows, ours_first.text[:300]
    assert len(theirs_first.json()["features"]) == 100
    depth = rows * 9 // 10
    plan = {
        "items, first 100": ([ours], [theirs]),
        "items, 100 at 90 %": ([f"{ours}&offset={depth}"], [f"{theirs}&offset={depth}"]),
        "items, bbox (≈0.4 %)": ([f"{ours}&bbox={BOX}"], [f"{theirs}&bbox={BOX}"]),
    }
    figures = {}
    for name, (our_urls, their_urls) in plan.items():
        print(f"  {name}…", flush=True)
        n = count // 4 if "90 %" in name else count
        figures[name] = {"ours": load(our_urls, n), "pygeoapi": load(their_urls, max(40, n // 20))}
    return figures


def write(figures: dict, args: argparse.Namespace) -> None:
    lines = [
        f"# OGC API – Features items benchmark ({args.rows:,} points, 1 uvicorn worker each, "
        f"{THREADS} client threads)",
        "",
        "Ours: pygeoapi 0.21 with the catalog's GeoPackage provider (`/ogc`). Reference: "
        "pygeoapi 0.21 with its Parquet provider over the same release.",
        "",
        "| request | server | req/s | p50 ms | p95 ms | p99 ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, servers in figures.items():
        for server, f in servers.items():
            lines.append(
                f"| {name} | {server} | {f['rps']:.0f} | {f['p50']:.1f} | "
                f"{f['p95']:.1f} | {f['p99']:.1f} |"
            )
    lines.append("")
    for name, servers in figures.items():
        ratio = servers["ours"]["rps"] / servers["pygeoapi"]["rps"]
        lines.append(f"- {name}: **{ratio:.1f}×** the reference's throughput.")
    lines.append("- Both servers and the load generator share this 2-core machine.")
    text = "\n".join(lines) + "\n"
    (HERE / "OGC_API_RESULTS.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
