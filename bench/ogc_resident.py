"""Benchmark: WMS, WFS and CSW by the catalog, a process per request (CGI) against the
resident processes (mapserv as FastCGI, pycsw under gunicorn), issue #18.

The geographic samples and a table are published through the real pipeline; two
catalogs (`opendata servir`, one uvicorn worker each) serve the same data folder, one with
`OPENDATA_OGC_RESIDENT=0`, the other with the default. Latency: one client, the two
catalogs asked in turn (interleaved), medians. Load: 8 client threads on the resident
catalog, a mix of the three requests, every answer checked.

    .venv/bin/python bench/ogc_resident.py [--rounds 40] [--load 2000]

Figures go to bench/RESULTS.md (its section « Services OGC résidents »).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from rows_api import THREADS, free_port, wait_until_up  # noqa: E402

SAMPLES = ROOT / "samples" / "inbox"
PUBLISHED = (
    "ecully/bancs-publics",
    "vaulx-en-velin/pistes-cyclables",
    "lyon/signalements-espace-public",
    "vaulx-en-velin/subventions-associations",
)
REQUESTS = {
    "WMS GetMap 256×256 PNG": (
        "/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=ecully-bancs-publics&STYLES="
        "&CRS=EPSG:4326&BBOX=45.765,4.760,45.785,4.785&WIDTH=256&HEIGHT=256&FORMAT=image/png",
        "image/png",
    ),
    "WFS GetFeature GeoJSON": (
        "/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=ms:ecully-bancs-publics"
        "&OUTPUTFORMAT=application/json;%20subtype=geojson",
        "application/json",
    ),
    "CSW GetRecords (full)": (
        "/csw?service=CSW&version=2.0.2&request=GetRecords&typenames=csw:Record"
        "&elementsetname=full&resulttype=results",
        "application/xml",
    ),
}
SECTION = "# Services OGC résidents"


def publish(data: Path) -> None:
    os.environ["OPENDATA_DATA_DIR"] = str(data)
    from core.settings import load_settings
    from pipelines.submission import Submission, open_settings_store, run_submission

    settings = load_settings()
    store = open_settings_store(settings)
    for sample in PUBLISHED:
        folder = SAMPLES / sample
        file = next(p for p in folder.iterdir() if p.name not in {"metadata.yaml", "schema.json"})
        submission = Submission.new(
            folder.parent.name, file, folder / "metadata.yaml", "banc d'essai"
        )
        outcome = run_submission(submission, settings, store)
        assert outcome.status == "publiee", outcome.summary()


def start(data: Path, port: int, resident: str) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "opendata"), "servir", "--port", str(port)],
        env={**os.environ, "OPENDATA_DATA_DIR": str(data), "OPENDATA_OGC_RESIDENT": resident},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def ask(session: requests.Session, url: str, media_type: str) -> float:
    started = time.perf_counter()
    response = session.get(url, timeout=60)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith(media_type), response.headers
    return elapsed


def interleaved(bases: dict[str, str], rounds: int) -> dict[str, dict[str, float]]:
    """Median ms of each request on each catalog, the catalogs asked in turn."""
    sessions = {name: requests.Session() for name in bases}
    figures: dict[str, dict[str, float]] = {}
    for label, (path, media_type) in REQUESTS.items():
        times: dict[str, list[float]] = {name: [] for name in bases}
        for name, base in bases.items():  # warm-up: first processes started, caches
            for _ in range(3):
                ask(sessions[name], base + path, media_type)
        for _ in range(rounds):
            for name, base in bases.items():
                times[name].append(ask(sessions[name], base + path, media_type))
        figures[label] = {name: 1000 * statistics.median(t) for name, t in times.items()}
        print(f"  {label}: {figures[label]}", flush=True)
    return figures


def load(base: str, count: int) -> dict[str, float]:
    """`count` requests (the three kinds in turn) over 8 threads; errors counted."""
    plan = list(REQUESTS.values())
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        session = requests.Session()
        for n in range(index, count, THREADS):
            path, media_type = plan[n % len(plan)]
            try:
                elapsed = ask(session, base + path, media_type)
            except (AssertionError, requests.RequestException) as failed:
                with lock:
                    errors.append(repr(failed)[:200])
                continue
            with lock:
                latencies.append(elapsed)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": count,
        "errors": len(errors),
        "rps": len(latencies) / wall,
        "p50": 1000 * latencies[len(latencies) // 2],
        "p95": 1000 * latencies[int(len(latencies) * 0.95)],
        "first_error": errors[0] if errors else "",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--load", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        data = Path(scratch) / "data"
        print("Publishing the samples through the pipeline…", flush=True)
        publish(data)
        ports = {"CGI": free_port(), "résident": free_port()}
        servers = {
            name: start(data, port, "0" if name == "CGI" else "1") for name, port in ports.items()
        }
        bases = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
        try:
            for base in bases.values():
                wait_until_up(base + REQUESTS["CSW GetRecords (full)"][0], seconds=180)
            print(f"Interleaved latency, {args.rounds} rounds…", flush=True)
            latency = interleaved(bases, args.rounds)
            print(f"Load: {args.load} requests, {THREADS} threads…", flush=True)
            loaded = load(bases["résident"], args.load)
            print(f"  {loaded}", flush=True)
        finally:
            for server in servers.values():
                server.terminate()
                server.wait(timeout=30)
    write(latency, loaded, args)


def write(latency: dict[str, dict[str, float]], loaded: dict, args: argparse.Namespace) -> None:
    lines = [
        f"{SECTION} (issue #18 : MapServer et pycsw sans processus par requête)",
        "",
        "`bench/ogc_resident.py` : deux catalogues (`opendata servir`, 1 worker uvicorn chacun) "
        "sur les mêmes données (échantillons publiés par le pipeline) ; l'un lance un "
        "processus par requête (CGI, `OPENDATA_OGC_RESIDENT=0`), l'autre garde ses processus "
        "(2 `mapserv` FastCGI, pycsw sous gunicorn à 2 workers). Un client, les deux "
        f"catalogues interrogés tour à tour, médianes sur {args.rounds} requêtes.",
        "",
        "| requête | CGI (ms) | résident (ms) | accélération |",
        "|---|---:|---:|---:|",
    ]
    for label, times in latency.items():
        cgi, resident = times["CGI"], times["résident"]
        lines.append(f"| {label} | {cgi:.1f} | {resident:.1f} | **{cgi / resident:.1f}×** |")
    lines += [
        "",
        f"Charge sur le catalogue résident : {loaded['requests']} requêtes (les trois en "
        f"alternance), {THREADS} fils clients en boucle locale : **{loaded['errors']} erreur(s)**, "
        f"{loaded['rps']:.0f} req/s, p50 {loaded['p50']:.1f} ms, p95 {loaded['p95']:.1f} ms.",
        "",
        "Serveurs et client partagent cette machine à 2 cœurs.",
        "",
    ]
    section = "\n".join(lines)
    results = HERE / "RESULTS.md"
    text = results.read_text(encoding="utf-8")
    kept = text.split(f"\n{SECTION}")[0].rstrip("\n")
    results.write_text(f"{kept}\n\n{section}", encoding="utf-8")
    print(section)


if __name__ == "__main__":
    main()
