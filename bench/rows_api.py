"""Benchmark: the catalog's rows API against pygeoapi 0.21 serving the same data.

Both servers run on loopback, one uvicorn worker each, and are loaded by a second
process (bounded: a fixed number of requests per run, 8 client threads with keep-alive).
Measured: requests per second and latency percentiles for search, a dataset page, a
100-row page of rows (first page, and deep in the table: a keyset cursor for us, an
offset for pygeoapi, whose API has no cursor) and a full CSV download.

    .venv/bin/python bench/rows_api.py [--rows 1000000]

pygeoapi runs from its own environment (var/pygeoapi-venv, created on first run with
`pip install pygeoapi==0.21.0 s3fs uvicorn starlette`), over a GeoParquet written from
the same release.
Figures go to bench/ROWS_API_RESULTS.md.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYGEOAPI_VENV = ROOT / "var" / "pygeoapi-venv"
THREADS = 8


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{url} did not come up")


def load(urls: list[str], requests_count: int) -> dict:
    """Bounded load from this (second) process: `requests_count` GETs over 8 threads."""
    sessions = [requests.Session() for _ in range(THREADS)]
    latencies: list[float] = []

    def worker(index: int) -> list[float]:
        session, mine = sessions[index], []
        for n in range(index, requests_count, THREADS):
            started = time.perf_counter()
            response = session.get(urls[n % len(urls)], timeout=60)
            response.raise_for_status()
            mine.append(time.perf_counter() - started)
        return mine

    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        for part in pool.map(worker, range(THREADS)):
            latencies.extend(part)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": 1000 * statistics.median(latencies),
        "p95": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
        "p99": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
    }


def publish(folder: Path, rows: int) -> Path:
    """The benchmark file published through the real pipeline; returns the data folder."""
    sys.path.insert(0, str(HERE))
    from check_publish import generate

    from core.settings import load_settings
    from pipelines.submission import Submission, open_settings_store, run_submission

    submission_folder = folder / "inbox" / "lyon" / "releves"
    submission_folder.mkdir(parents=True)
    generate(submission_folder / "releves.csv", rows)
    (submission_folder / "metadata.yaml").write_text(
        "titre: Relevés de mesure\ndescription: Relevés générés pour le banc d'essai.\n"
        "licence: etalab-2.0\nfrequence: quotidienne\nmodalites_livraison: Dépôt quotidien.\n"
        "date_mise_a_jour: 2026-11-01\nmots_cles: [mesures]\n"
        "contact: {nom: Banc d'essai, email: banc@exemple.fr}\n",
        encoding="utf-8",
    )
    os.environ["OPENDATA_DATA_DIR"] = str(folder / "data")
    settings = load_settings()
    submission = Submission.new(
        "lyon", submission_folder / "releves.csv", submission_folder / "metadata.yaml", "banc"
    )
    outcome = run_submission(submission, settings, open_settings_store(settings))
    assert outcome.status == "publiee", outcome.summary()
    return folder / "data"


def pygeoapi_config(folder: Path, parquet: Path, port: int) -> Path:
    import geopandas as gpd
    import pandas as pd

    frame = pd.read_parquet(parquet)
    geo = gpd.GeoDataFrame(
        frame, geometry=gpd.points_from_xy(frame.longitude, frame.latitude), crs=4326
    )
    geoparquet = folder / "releves-geo.parquet"
    geo.to_parquet(geoparquet)
    config = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": port},
            "url": f"http://127.0.0.1:{port}",
            "mimetype": "application/json",
            "encoding": "utf-8",
            "language": "fr-FR",
            "limits": {"default_items": 100, "max_items": 1000},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OSM"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "banc",
                "description": "banc",
                "keywords": ["banc"],
                "terms_of_service": "",
                "url": "http://example.org",
            },
            "license": {"name": "etalab-2.0", "url": "http://example.org"},
            "provider": {"name": "banc", "url": "http://example.org"},
            "contact": {"name": "banc"},
        },
        "resources": {
            "releves": {
                "type": "collection",
                "title": "releves",
                "description": "releves",
                "keywords": ["releves"],
                "extents": {
                    "spatial": {
                        "bbox": [4.7, 45.6, 5.0, 45.9],
                        "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                    }
                },
                "providers": [
                    {
                        "type": "feature",
                        "name": "Parquet",
                        "data": {"source": str(geoparquet)},
                        "id_field": "id",
                        "x_field": "longitude",
                        "y_field": "latitude",
                    }
                ],
            }
        },
    }
    path = folder / "pygeoapi.yml"
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


def ensure_pygeoapi() -> Path:
    python = PYGEOAPI_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PYGEOAPI_VENV)], check=True)
        subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "-q",
                "pygeoapi==0.21.0",
                "pyarrow",
                "geopandas",
                "s3fs",
                "uvicorn",
                "starlette",
            ],
            check=True,
        )
    return python


def start_pygeoapi(folder: Path, parquet: Path, port: int) -> subprocess.Popen:
    """pygeoapi 0.21 (its own environment) over a GeoParquet made from `parquet`."""
    config = pygeoapi_config(folder, parquet, port)
    env = {
        **os.environ,
        "PYGEOAPI_CONFIG": str(config),
        "PYGEOAPI_OPENAPI": str(folder / "openapi.yml"),
    }
    python = ensure_pygeoapi()
    subprocess.run(
        [str(python.parent / "pygeoapi"), "openapi", "generate", str(config)]
        + ["--output-file", str(folder / "openapi.yml")],
        env=env,
        check=True,
        capture_output=True,
    )
    log = (folder / "pygeoapi.log").open("w")
    return subprocess.Popen(
        [str(python), "-m", "uvicorn", "pygeoapi.starlette_app:APP"]
        + ["--host", "127.0.0.1", "--port", str(port), "--log-level", "error"],
        env=env,
        stdout=log,
        stderr=log,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        print(f"Publishing {args.rows:,} rows through the pipeline…", flush=True)
        data = publish(folder, args.rows)
        ours_port, theirs_port = free_port(), free_port()
        env = {**os.environ, "OPENDATA_DATA_DIR": str(data)}
        ours = subprocess.Popen(
            [str(Path(sys.executable).parent / "opendata"), "servir", "--port", str(ours_port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from catalog.store import open_store

        store = open_store(f"sqlite:///{data / 'catalog.db'}", data / "files")
        parquet = store.release_path(store.current_release("lyon-releves"), "parquet")
        theirs = start_pygeoapi(folder, parquet, theirs_port)
        try:
            figures = measure(ours_port, theirs_port, args.requests, args.rows)
        finally:
            ours.terminate()
            theirs.terminate()
    write(figures, args)


def measure(ours_port: int, theirs_port: int, count: int, rows: int) -> dict:
    ours = f"http://127.0.0.1:{ours_port}"
    theirs = f"http://127.0.0.1:{theirs_port}"
    wait_until_up(f"{ours}/api/datasets")
    wait_until_up(f"{theirs}/collections/releves")
    rows_url = f"{ours}/api/datasets/lyon-releves/rows?_taille=100"
    requests.get(rows_url, timeout=600)  # first use builds the rows copy: not measured
    depth = rows * 9 // 10
    deep = requests.get(f"{rows_url}&_decalage={depth - 100}", timeout=60).json()
    # a keyset cursor that lands `depth` rows deep, as a reuser paging along would hold
    cursor_page = requests.get(
        f"{rows_url}&_apres="
        + base64.urlsafe_b64encode(json.dumps([None, depth]).encode()).decode(),
        timeout=60,
    )
    assert cursor_page.json()["lignes"][0]["id"] == deep["lignes"][0]["id"] + 100
    items = f"{theirs}/collections/releves/items?f=json&limit=100"
    cursor = cursor_page.url
    plan = {
        "search": ([f"{ours}/api/datasets?q=releves"], None),
        "dataset page": ([f"{ours}/jeux-de-donnees/lyon-releves"], None),
        "rows, first 100": ([rows_url], [items]),
        "rows, 100 at 90 %": ([cursor], [f"{items}&offset={depth}"]),
        "full CSV download": ([f"{ours}/api/datasets/lyon-releves/download/csv"], None),
    }
    figures = {}
    for name, (our_urls, their_urls) in plan.items():
        heavy = "download" in name or "90 %" in name
        n = max(40, count // 20) if heavy else count
        print(f"  {name}…", flush=True)
        figures[name] = {"ours": load(our_urls, n)}
        if their_urls:
            figures[name]["pygeoapi"] = load(their_urls, max(40, n // 10))
    return figures


def write(figures: dict, args) -> None:
    lines = [
        f"# Rows API benchmark ({args.rows:,} rows, 1 uvicorn worker each, "
        f"{THREADS} client threads)",
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
    first = figures["rows, first 100"]
    ratio = first["ours"]["rps"] / first["pygeoapi"]["rps"]
    deep = figures["rows, 100 at 90 %"]
    lines += [
        "",
        f"- rows endpoint, first page: **{ratio:.1f}×** pygeoapi's throughput "
        f"(target ≥ 10×: {'met' if ratio >= 10 else 'NOT met'}).",
        f"- 90 % deep ({args.rows * 9 // 10:,} rows): ours {deep['ours']['rps']:.0f} req/s "
        "(keyset cursor), "
        f"pygeoapi {deep['pygeoapi']['rps']:.1f} req/s (offset): "
        f"**{deep['ours']['rps'] / deep['pygeoapi']['rps']:.0f}×**.",
        "- Both servers and the load generator share this 2-core machine.",
    ]
    text = "\n".join(lines) + "\n"
    (HERE / "ROWS_API_RESULTS.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
