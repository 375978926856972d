"""Benchmark: the catalog's rows API against datasette 0.65 (the reference) and pygeoapi 0.21.

Same data, same client, same run. Our API is served twice, once per store backend: the
embedded SQLite store (the release's SQLite rows copy answers) and PostGIS (the release's
table in a throwaway database on 127.0.0.1:5432 answers), the same 1M-row release published
into each through the pipeline. datasette serves the very SQLite rows copy our SQLite
backend reads (immutable mode, `-i`, with its `inspect` file: its mode for data that never
changes, where it keeps the table's count as we keep the release's). pygeoapi serves a
GeoParquet of the same release (second reference, first page and a page 90 % deep only: it
has neither cursor nor filter by value here).

Each server is one process (one uvicorn worker); the load is 8 client threads with
keep-alive from this process (`requests`). Rounds are interleaved: in each round every
scenario is run against every server in turn; the figures are the medians of the rounds.

| scenario | ours | datasette 0.65 |
|---|---|---|
| first page | `rows?_taille=100` | `lignes.json?_size=100&_shape=array&_nosuggest=1` |
| deep keyset page (90 %) | `…&_apres=<cursor>` | `…&_next=<rowid>` |
| equality filter | `…&commune=Lyon` | `…&commune__exact=Lyon` |
| sorted deep page (90 %) | `…&_tri=valeur&_apres=<cursor>` | `…&_sort=valeur&_next=<v>,<rowid>` |
| `_total` | `…&_total=1` | `lignes.json?_size=100&_nofacet=1&_nosuggest=1` (count) |

`_shape=array` is datasette's rows as objects, as ours, without count or facets (as ours
without `_total`); the `_total` scenario asks datasette's default shape, which carries the
table's count (`filtered_table_rows_count`, from the inspect file) — without facets.

    .venv/bin/python bench/rows_api.py [--rows 1000000] [--requests 800] [--rounds 3]

Where a request's time goes: `bench/rows_api_profile.py` (pyinstrument).

datasette runs from var/datasette-venv (created on first run: `pip install datasette==0.65.5
uvicorn`), pygeoapi from var/pygeoapi-venv. Figures go to bench/ROWS_API_RESULTS.md.
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
DATASETTE_VENV = ROOT / "var" / "datasette-venv"
DATASETTE = "datasette==0.65.5"  # the latest 0.65.x
SLUG = "lyon-releves"
TARGET = 1.5  # ours / datasette, every scenario, both backends
ALONE = "first page, 1 client"  # the latency of a page without queueing
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


def load(urls: list[str], requests_count: int, threads: int = THREADS) -> dict:
    """Bounded load from this (second) process: `requests_count` GETs over `threads`."""
    sessions = [requests.Session() for _ in range(threads)]
    latencies: list[float] = []

    def worker(index: int) -> list[float]:
        session, mine = sessions[index], []
        for n in range(index, requests_count, threads):
            started = time.perf_counter()
            response = session.get(urls[n % len(urls)], timeout=60)
            response.raise_for_status()
            mine.append(time.perf_counter() - started)
        return mine

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for part in pool.map(worker, range(threads)):
            latencies.extend(part)
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": 1000 * statistics.median(latencies),
        "p95": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
        "p99": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
    }


def publish(folder: Path, rows: int, store_url: str | None = None) -> Path:
    """The benchmark file published through the real pipeline (into the SQLite store of
    the data folder, or the store at `store_url`); returns the data folder."""
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
    os.environ.pop("OPENDATA_STORE_URL", None)
    if store_url:
        os.environ["OPENDATA_STORE_URL"] = store_url
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


def ensure_datasette() -> Path:
    python = DATASETTE_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(DATASETTE_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", DATASETTE, "uvicorn"], check=True
        )
    return DATASETTE_VENV / "bin" / "datasette"


def start_datasette(folder: Path, database: Path, port: int) -> subprocess.Popen:
    """datasette over our SQLite rows copy, immutable (`-i`) with its inspect file."""
    datasette = ensure_datasette()
    inspect = folder / "inspect.json"
    subprocess.run(
        [str(datasette), "inspect", str(database), "--inspect-file", str(inspect)],
        check=True,
        capture_output=True,
    )
    log = (folder / "datasette.log").open("w")
    return subprocess.Popen(
        [str(datasette), "serve", "-i", str(database), "--inspect-file", str(inspect)]
        + ["--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=log,
    )


def start_ours(data: Path, port: int, store_url: str | None) -> subprocess.Popen:
    env = {**os.environ, "OPENDATA_DATA_DIR": str(data)}  # defaults: loopback not limited
    env.pop("OPENDATA_STORE_URL", None)
    if store_url:
        env["OPENDATA_STORE_URL"] = store_url
    command = [str(Path(sys.executable).parent / "opendata"), "servir", "--port", str(port)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def tilde(text: str) -> str:
    """datasette's tilde encoding of a `_next` token's part."""
    safe = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    return "".join(c if c in safe else f"~{ord(c):02X}" for c in text)


def cursor(value, rowid: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([value, rowid]).encode()).decode()


def plan(ports: dict[str, int], copy: Path, rows: int) -> dict[str, dict[str, str]]:
    """Scenario → server → URL, each pair checked to answer the same first row."""
    import sqlite3

    depth = rows * 9 // 10
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as conn:
        value, rowid = conn.execute(
            "SELECT valeur, rowid FROM lignes ORDER BY valeur, rowid LIMIT 1 OFFSET ?", [depth]
        ).fetchone()
    urls: dict[str, dict[str, str]] = {}
    for server in ("sqlite", "postgis"):
        rows_url = f"http://127.0.0.1:{ports[server]}/api/datasets/{SLUG}/rows?_taille=100"
        ours = {
            "first page": rows_url,
            "deep keyset page": f"{rows_url}&_apres={cursor(None, depth)}",
            "equality filter": f"{rows_url}&commune=Lyon",
            "sorted deep page": f"{rows_url}&_tri=valeur&_apres={cursor(value, rowid)}",
            "_total": f"{rows_url}&_total=1",
        }
        for scenario, url in ours.items():
            urls.setdefault(scenario, {})[f"ours ({server})"] = url
    table = f"http://127.0.0.1:{ports['datasette']}/{copy.stem}/lignes.json?_size=100"
    lean = f"{table}&_shape=array&_nosuggest=1"
    theirs = {
        "first page": lean,
        "deep keyset page": f"{lean}&_next={depth}",
        "equality filter": f"{lean}&commune__exact=Lyon",
        "sorted deep page": f"{lean}&_sort=valeur&_next={tilde(repr(value))},{rowid}",
        "_total": f"{table}&_nofacet=1&_nosuggest=1",
    }
    for scenario, url in theirs.items():
        urls[scenario]["datasette"] = url
    items = f"http://127.0.0.1:{ports['pygeoapi']}/collections/releves/items?f=json&limit=100"
    urls["first page"]["pygeoapi"] = items
    urls["deep keyset page"]["pygeoapi"] = f"{items}&offset={depth}"
    check_same_rows(urls)
    return urls


def check_same_rows(urls: dict[str, dict[str, str]]) -> None:
    """Every server's page starts with the same row (pygeoapi's offset page included)."""
    for scenario, servers in urls.items():
        first_ids = {}
        for server, url in servers.items():
            body = requests.get(url, timeout=120).json()
            if server.startswith("ours"):
                first_ids[server] = body["lignes"][0]["id"]
            elif server == "datasette":
                rows = body if isinstance(body, list) else body["rows"]
                first = rows[0]
                first_ids[server] = first["id"] if isinstance(first, dict) else first[1]
            else:
                first_ids[server] = body["features"][0]["properties"]["id"]
        assert len(set(first_ids.values())) == 1, (scenario, first_ids)


def measure(urls: dict[str, dict[str, str]], count: int, rounds: int) -> dict:
    """Interleaved rounds: each round runs every scenario on every server in turn."""
    for servers in urls.values():  # warm-up (prepared statements, page cache), not measured
        for server, url in servers.items():
            load([url], 20 if server == "pygeoapi" else 100)
    runs: dict[str, dict[str, list[dict]]] = {}
    for number in range(1, rounds + 1):
        print(f"  round {number}/{rounds}…", flush=True)
        for scenario, servers in urls.items():
            for server, url in servers.items():
                n = max(16, count // 20) if server == "pygeoapi" else count
                runs.setdefault(scenario, {}).setdefault(server, []).append(load([url], n))
        for server, url in urls["first page"].items():  # latency alone: one client
            if server != "pygeoapi":
                alone = load([url], count // 4, threads=1)
                runs.setdefault(ALONE, {}).setdefault(server, []).append(alone)
    return {
        scenario: {
            server: {
                key: statistics.median(run[key] for run in measured)
                for key in ("rps", "p50", "p95", "p99")
            }
            for server, measured in servers.items()
        }
        for scenario, servers in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from postgis import create_database, drop_database

    from catalog.store import open_store

    store_url = create_database()
    servers: list[subprocess.Popen] = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            print(f"Publishing {args.rows:,} rows through the pipeline, twice…", flush=True)
            data = publish(folder / "sqlite", args.rows)
            pg_data = publish(folder / "postgis", args.rows, store_url)
            os.environ.pop("OPENDATA_STORE_URL", None)
            ports = {name: free_port() for name in ("sqlite", "postgis", "datasette", "pygeoapi")}
            servers.append(start_ours(data, ports["sqlite"], None))
            servers.append(start_ours(pg_data, ports["postgis"], store_url))
            for server in ("sqlite", "postgis"):
                base = f"http://127.0.0.1:{ports[server]}/api/datasets/{SLUG}/rows"
                wait_until_up(f"{base}?_taille=1", 900)  # builds the SQLite copy: not measured
                requests.get(f"{base}?_taille=1&_tri=valeur", timeout=900)  # its sort index
            store = open_store(f"sqlite:///{data / 'catalog.db'}", data / "files")
            parquet = store.release_path(store.current_release(SLUG), "parquet")
            copy = parquet.parent / "derived" / f"{parquet.stem}-lignes.sqlite"
            servers.append(start_datasette(folder, copy, ports["datasette"]))
            servers.append(start_pygeoapi(folder, parquet, ports["pygeoapi"]))
            wait_until_up(f"http://127.0.0.1:{ports['datasette']}/-/versions.json")
            wait_until_up(f"http://127.0.0.1:{ports['pygeoapi']}/collections/releves")
            urls = plan(ports, copy, args.rows)
            figures = measure(urls, args.requests, args.rounds)
            versions = requests.get(
                f"http://127.0.0.1:{ports['datasette']}/-/versions.json", timeout=10
            ).json()
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(60)
        drop_database(store_url)
    write(figures, args, versions["datasette"]["version"])


def write(figures: dict, args, datasette_version: str) -> None:
    lines = [
        f"# Rows API benchmark ({args.rows:,} rows; ours vs datasette {datasette_version})",
        "",
        f"One process per server, {THREADS} client threads (`requests`, keep-alive) from "
        f"the same client process, {args.rounds} interleaved rounds of {args.requests} "
        "requests per scenario and server (pygeoapi: 1/20th), medians of the rounds. "
        "All servers and the client share this 2-core machine (with other jobs): the "
        "ratios within the run are what counts. `bench/rows_api.py`.",
        "",
        "| scenario | server | req/s | p50 ms | p95 ms | p99 ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for scenario, servers in figures.items():
        for server, f in servers.items():
            lines.append(
                f"| {scenario} | {server} | {f['rps']:.0f} | {f['p50']:.1f} | "
                f"{f['p95']:.1f} | {f['p99']:.1f} |"
            )
    lines += [
        "",
        f"## Ours / datasette (throughput; target ≥ {TARGET}× on every scenario, both backends)",
        "",
        "| scenario | SQLite store | PostGIS store |",
        "|---|---:|---:|",
    ]
    met_all = True
    for scenario, servers in figures.items():
        if scenario == ALONE:
            continue
        cells = []
        for backend in ("sqlite", "postgis"):
            ratio = servers[f"ours ({backend})"]["rps"] / servers["datasette"]["rps"]
            met = ratio >= TARGET
            met_all &= met
            cells.append(f"{ratio:.2f}× ({'met' if met else 'NOT met'})")
        lines.append(f"| {scenario} | {' | '.join(cells)} |")
    first = figures["first page"]
    p50s = {b: first[f"ours ({b})"]["p50"] for b in ("sqlite", "postgis")}
    alone = {b: figures[ALONE][f"ours ({b})"]["p50"] for b in ("sqlite", "postgis")}
    lines += [
        "",
        f"- Every scenario on both backends ≥ {TARGET}× datasette: "
        f"**{'met' if met_all else 'NOT met'}**.",
        "- p50 of a 100-row first page, one client: SQLite "
        f"{alone['sqlite']:.1f} ms, PostGIS {alone['postgis']:.1f} ms, datasette "
        f"{figures[ALONE]['datasette']['p50']:.1f} ms (target < 5 ms: "
        f"{'met' if max(alone.values()) < 5 else 'NOT met'}); under 8 concurrent clients "
        f"on 2 shared cores: SQLite {p50s['sqlite']:.1f} ms, PostGIS {p50s['postgis']:.1f} ms.",
        "- pygeoapi (second reference, offset paging over GeoParquet): first page "
        f"{first['pygeoapi']['rps']:.1f} req/s, 90 % deep "
        f"{figures['deep keyset page']['pygeoapi']['rps']:.1f} req/s.",
    ]
    text = "\n".join(lines) + "\n"
    (HERE / "ROWS_API_RESULTS.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
