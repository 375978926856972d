"""Search at catalogue scale (issue #20): latency and throughput of search and of the portal's
home page with 100, 1,000 and 10,000 datasets, on SQLite (FTS5) and PostGIS (tsvector).

Each catalogue is built by `bench_catalogue.build_catalogue` (real French titles of
metropolitan portals, 58 communes), then served by the catalogue's ASGI application in a
uvicorn process of its own (one worker; the OGC services are left out: they are measured
by their own bench) and loaded from this process:

- latency: every request of a mix of real French queries, with and without filters, sorts
  and pages (`QUERIES`), one client, after a warm-up; p50 and p95;
- throughput: the same mix from 8 client threads, requests per second;
- the home page (`/`, with its theme and commune counts), one client; p50.

The goal: search p50 under 15 ms, and throughput flat from 100 to 10,000 datasets (the ratio
10,000 / 100 near 1). Runs are interleaved (each round measures every catalogue once) and
the medians of the rounds are kept, so that the shared machine's drift hits every size.

    from search_scale import measure_search   # no side effect on import
    figures = measure_search(store_url, files_dir)

    .venv/bin/python bench/search_scale.py --sizes 100 1000 10000 --rounds 3

Needs PostgreSQL at 127.0.0.1:5432 (trust auth) for the PostGIS runs (`--backends sqlite`
to skip them). Figures go to `bench/SEARCH_RESULTS.md` with `--write`.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
THREADS = 8
PG_SERVER = os.environ.get("OPENDATA_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
P50_TARGET_MS = 15.0
FLAT_TARGET = 0.8  # throughput at 10,000 at least 0.8 × at 100 counts as flat

# What reusers type: single words, plurals, accents, several words, words that match many
# datasets and few, with the portal's filters, sorts and a second page.
QUERIES: list[dict[str, str]] = [
    {"q": "vélo"},
    {"q": "stationnement vélos"},
    {"q": "espace public"},
    {"q": "arbres"},
    {"q": "écoles"},
    {"q": "déchets recyclage"},
    {"q": "budget"},
    {"q": "qualité de l'air"},
    {"q": "équipements sportifs"},
    {"q": "sport"},
    {"q": "élections municipales"},
    {"q": "bornes de recharge"},
    {"q": "données"},
    {"q": "jardins", "commune": "villeurbanne"},
    {"q": "voirie", "theme": "TRAN"},
    {"q": "culture", "tri": "mise-a-jour"},
    {"theme": "ENVI"},
    {"commune": "lyon"},
    {"geographique": "oui", "tri": "titre", "page": "2"},
    {"statut": "en-retard"},
    {},
    {"tri": "mise-a-jour", "taille": "100"},
]
HOME_PAGES = [{}, {"q": "parcs"}, {"theme": "TRAN"}]


# --- serving ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(
    store_url: str, files_dir: Path, port: int, code: Path = ROOT, cache: bool = True
) -> subprocess.Popen:
    """The catalogue's ASGI application on `port`, in a uvicorn process of its own; `code`:
    the project's checkout to serve (another one: the code before the index); `cache`:
    whether answers are kept for the index's state (OPENDATA_SEARCH_CACHE)."""
    env = {**os.environ, "OPENDATA_STORE_URL": store_url, "OPENDATA_RATE_LIMIT": "off"}
    if not cache:
        env["OPENDATA_SEARCH_CACHE"] = "0"
    env["SEARCH_BENCH_CODE"] = str(code)
    env["OPENDATA_DATA_DIR"] = str(files_dir.parent)
    producers = files_dir.parent.parent / "producers.yaml"  # bench_catalogue's
    if producers.is_file():
        env["OPENDATA_PRODUCERS_FILE"] = str(producers)
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )


def _serve_here(port: int) -> None:
    """`--serve PORT`: run the application on the settings' store, without OGC services."""
    sys.path.insert(0, os.environ.get("SEARCH_BENCH_CODE", str(ROOT)))
    import uvicorn

    from catalog.ogc.services import ServicesRefresher
    from catalog.store import open_store
    from catalog.web import app as application
    from catalog.web.app import create_app
    from core.settings import load_settings

    class Idle(ServicesRefresher):
        """No OGC service is served here: no refresh check every 15 s either (it reads
        every layer, measured by the services' own bench), which would load the server."""

        def start(self) -> None:
            pass

        def stop(self) -> None:
            pass

    application.ServicesRefresher = Idle  # type: ignore[misc]
    settings = load_settings()
    store = open_store(settings.store_url, settings.files_dir)
    app = create_app(store, services=[], settings=settings)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def wait_until_up(url: str, server: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"le serveur s'est arrêté (code {server.returncode})")
        try:
            if requests.get(url, timeout=30).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} ne répond pas")


# --- measuring -------------------------------------------------------------------------------


def _latencies(session: requests.Session, urls: list[str], repeat: int) -> list[float]:
    found = []
    for _ in range(repeat):
        for url in urls:
            started = time.perf_counter()
            response = session.get(url, timeout=120)
            found.append(time.perf_counter() - started)
            response.raise_for_status()
    return found


def _throughput(urls: list[str], count: int) -> float:
    sessions = [requests.Session() for _ in range(THREADS)]

    def worker(index: int) -> int:
        for n in range(index, count, THREADS):
            sessions[index].get(urls[n % len(urls)], timeout=120).raise_for_status()
        return 1

    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(worker, range(THREADS)))
    return count / (time.perf_counter() - started)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[int(share * (len(ordered) - 1))]


def measure_search(
    store_url: str,
    files_dir: Path,
    *,
    repeat: int = 5,
    load_requests: int = 800,
    code: Path = ROOT,
    cache: bool = True,
) -> dict[str, Any]:
    """Serve the catalogue of `store_url` (files in `files_dir`) and measure its search:
    p50 / p95 of the query mix (ms, one client), requests per second under 8 client threads,
    and the home page's p50 (ms). Also the number of datasets listed."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(store_url, Path(files_dir), port, code, cache)
    try:
        wait_until_up(f"{base}/api/datasets?taille=1", server)
        api = [
            requests.Request("GET", f"{base}/api/datasets", params=q).prepare().url for q in QUERIES
        ]
        home = [requests.Request("GET", f"{base}/", params=q).prepare().url for q in HOME_PAGES]
        session = requests.Session()
        total = session.get(f"{base}/api/datasets?taille=1", timeout=60).json()["total"]
        _latencies(session, api + home, min(2, repeat))  # warm-up: connections, caches, the planner
        searches = _latencies(session, [u for u in api if u], repeat)
        pages = _latencies(session, home, repeat * 3)
        rps = _throughput(api, load_requests)
        return {
            "datasets": total,
            "search_p50_ms": 1000 * statistics.median(searches),
            "search_p95_ms": _percentile(searches, 0.95),
            "search_rps": rps,
            "home_p50_ms": 1000 * statistics.median(pages),
        }
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


# --- catalogues ------------------------------------------------------------------------------


def _postgis_database(name: str) -> str:
    import sqlalchemy as sa

    admin = sa.create_engine(
        f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{PG_SERVER}/{name}"
    database = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with database.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
    return url


def build(folder: Path, backend: str, count: int) -> tuple[str, Path]:
    """A catalogue of `count` datasets in `folder` (reused when already built); its URL
    and files folder."""
    sys.path.insert(0, str(HERE))
    from bench_catalogue import open_bench_catalogue

    done = folder / "built"
    files_dir = folder / "data" / "files"
    if done.is_file() and done.read_text().startswith(f"{count} "):
        return done.read_text().split(" ", 1)[1], files_dir  # a catalogue already built
    url = _postgis_database(f"opendata_bench_search_{count}") if backend == "postgis" else None
    started = time.perf_counter()
    settings, store, slugs = open_bench_catalogue(folder, count, url)
    store.close()
    done.write_text(f"{count} {settings.store_url}")
    print(f"  {backend} {count}: {len(slugs)} jeux en {time.perf_counter() - started:.0f} s")
    return settings.store_url, settings.files_dir


def same_answers(first: tuple[str, Path], second: tuple[str, Path]) -> list[str]:
    """The queries of the mix on which two catalogues (the same one on both backends)
    answer differently: total, facets or the page's order."""
    sys.path.insert(0, str(ROOT))
    from datetime import date

    from catalog.store import open_store
    from catalog.store.search_index import Readers, SearchQuery

    stores = [open_store(url, files_dir) for url, files_dir in (first, second)]
    differences = []
    try:
        for params in QUERIES:
            filters = {k: v for k, v in params.items() if k not in ("q", "tri", "page", "taille")}
            query = SearchQuery(
                params.get("q", ""),
                filters,
                params.get("tri", "pertinence"),
                int(params.get("page", 1)),
                int(params.get("taille", 20)),
            )
            one, other = (s.search(query, Readers(), date(2026, 12, 1)) for s in stores)
            if (one.total, one.facets, one.slugs) != (other.total, other.facets, other.slugs):
                differences.append(str(params))
    finally:
        for store in stores:
            store.close()
    return differences


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgis"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=ROOT / "var" / "bench-search")
    parser.add_argument("--write", action="store_true", help="bench/SEARCH_RESULTS.md")
    parser.add_argument("--check", action="store_true", help="compare the backends' answers")
    parser.add_argument("--uncached", action="store_true", help="one more round, no cache")
    parser.add_argument(
        "--before", help="git revision of the code before the index: measured once on SQLite"
    )
    args = parser.parse_args()
    if args.serve:
        _serve_here(args.serve)
        return 0
    catalogues = {}
    for backend in args.backends:
        for size in args.sizes:
            catalogues[backend, size] = build(args.folder / f"{backend}-{size}", backend, size)
    if {"sqlite", "postgis"} <= set(args.backends):
        for size in args.sizes:
            differ = same_answers(catalogues["sqlite", size], catalogues["postgis", size])
            print(f"  {size} jeux : réponses identiques sur les deux bases : {not differ} {differ}")
    if args.check:
        return 0
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {key: [] for key in catalogues}
    for _, (url, files_dir) in catalogues.items():  # an index of another version: rebuilt
        sys.path.insert(0, str(ROOT))
        from catalog.store import open_store

        open_store(url, files_dir).close()
    for round_number in range(args.rounds):
        for key, (url, files_dir) in catalogues.items():
            figures = measure_search(url, files_dir)
            runs[key].append(figures)
            print(f"  tour {round_number + 1} {key[0]} {key[1]}: {_line(figures)}", flush=True)
    medians = {key: _median(found) for key, found in runs.items()}
    report = _report(medians, args.sizes, args.backends, args.rounds)
    if args.uncached:
        computed = {}
        for key, (url, files_dir) in catalogues.items():
            computed[key] = measure_search(url, files_dir, cache=False)
            print(f"  sans cache {key[0]} {key[1]}: {_line(computed[key])}", flush=True)
        report += "\n## Sans cache des réponses (OPENDATA_SEARCH_CACHE=0, un tour)\n\n"
        report += "Chaque recherche est calculée par la base : le coût propre de l'index.\n"
        report += _report(computed, args.sizes, args.backends, 1).split("\n", 4)[4]
    if args.before:
        report += _before(args.before, args.folder, catalogues, medians, args.sizes)
    print(report)
    if args.write:
        (HERE / "SEARCH_RESULTS.md").write_text(report, encoding="utf-8")
    return 0


def _before(
    revision: str,
    folder: Path,
    catalogues: dict[tuple[str, int], tuple[str, Path]],
    medians: dict[tuple[str, int], dict[str, Any]],
    sizes: list[int],
) -> str:
    """The code before the index, on the SQLite catalogues: one light run each."""
    code = folder / "before"
    if not code.is_dir():
        code.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "archive", revision], cwd=ROOT, capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(code)], input=archive, check=True)
    lines = [
        "",
        f"## Avant l'index (code de `{revision}`, même catalogue SQLite, un tour léger)",
        "",
        "Chaque case : avant → après.",
        "",
        "| jeux | recherche p50 (ms) | req/s (8 clients) | accueil p50 (ms) |",
        "|---:|---:|---:|---:|",
    ]
    for size in (min(sizes), max(sizes)):
        url, files_dir = catalogues["sqlite", size]
        old = measure_search(url, files_dir, repeat=1, load_requests=48, code=code)
        new = medians["sqlite", size]
        print(f"  avant, sqlite {size}: {_line(old)}", flush=True)
        lines.append(
            f"| {size:,} | {old['search_p50_ms']:.1f} → {new['search_p50_ms']:.1f} | "
            f"{old['search_rps']:.1f} → {new['search_rps']:.0f} | "
            f"{old['home_p50_ms']:.1f} → {new['home_p50_ms']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {name: statistics.median(run[name] for run in runs) for name in runs[0]}


def _line(figures: dict[str, Any]) -> str:
    return (
        f"{figures['datasets']} jeux, p50 {figures['search_p50_ms']:.1f} ms, "
        f"p95 {figures['search_p95_ms']:.1f} ms, {figures['search_rps']:.0f} req/s, "
        f"accueil p50 {figures['home_p50_ms']:.1f} ms"
    )


def _report(
    medians: dict[tuple[str, int], dict[str, Any]],
    sizes: list[int],
    backends: list[str],
    rounds: int,
) -> str:
    lines = [
        "# Recherche à l'échelle du catalogue (issue #20)",
        "",
        f"`bench/search_scale.py`, médianes de {rounds} tours entrelacés, sur cette machine à "
        "2 cœurs partagée. Application servie par uvicorn (1 processus, sans les services OGC), "
        f"chargée depuis un second processus ; débit sous {THREADS} clients. Mélange de "
        f"{len(QUERIES)} requêtes françaises réelles, avec et sans filtres, tris et pages.",
        "",
        "| base | jeux | recherche p50 (ms) | p95 (ms) | req/s (8 clients) | accueil p50 (ms) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for backend in backends:
        for size in sizes:
            found = medians[backend, size]
            lines.append(
                f"| {backend} | {found['datasets']:,} | {found['search_p50_ms']:.1f} | "
                f"{found['search_p95_ms']:.1f} | {found['search_rps']:.0f} | "
                f"{found['home_p50_ms']:.1f} |"
            )
    ordered = sorted(sizes)
    small, large = ordered[0], ordered[-1]
    middle = ordered[-2] if len(ordered) > 2 else small
    lines += ["", "## Croissance et objectifs", ""]
    lines += [
        f"Rapports {large:,} / {small:,} jeux, et {large:,} / {middle:,} (à partir de "
        f"{middle:,} jeux, presque toutes les requêtes du mélange remplissent leur page : ce "
        "rapport-là ne mesure plus guère que la taille du catalogue).",
        "",
        "| base | p50 | req/s | accueil p50 | req/s depuis "
        f"{middle:,} | p50 < 15 ms | débit plat (≥ 0,8) |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for backend in backends:
        low, mid, high = (medians[backend, s] for s in (small, middle, large))
        p50_ratio = high["search_p50_ms"] / low["search_p50_ms"]
        rps_ratio = high["search_rps"] / low["search_rps"]
        home_ratio = high["home_p50_ms"] / low["home_p50_ms"]
        p50_met = max(medians[backend, s]["search_p50_ms"] for s in sizes) < P50_TARGET_MS
        lines.append(
            f"| {backend} | ×{p50_ratio:.2f} | ×{rps_ratio:.2f} | ×{home_ratio:.2f} | "
            f"×{high['search_rps'] / mid['search_rps']:.2f} | "
            f"{'atteint' if p50_met else 'non atteint'} | "
            f"{'atteint' if rps_ratio >= FLAT_TARGET else 'non atteint'} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
