"""Load test: many concurrent clients on the catalog, on loopback, bounded in time.

The bundled sample submissions (and a generated table of `--rows` rows) are published
through the real pipeline into a scratch folder; `opendata servir --workers N` serves them
with the rate limiter on (Redis storage, shared by the workers; a per-client limit set for
the run, see `RATE_LIMIT`). A second process (this one) runs `--clients` simulated users for
`--duration` seconds: each has its own keep-alive connection and its own address, given to
the catalog in `X-Forwarded-For` (the catalog trusts loopback as its proxy for the run), and
loops on a request drawn from a mix of search, dataset pages, rows, downloads, OGC API
items, WMS maps and WFS features, with a random think time between requests. Every answer
must be a success: any other status or a transport error counts as an error, and the run
fails unless there are none. A last burst from one more address checks that the limiter was
on all along (it must answer 429 there).

    .venv/bin/python bench/load.py            # 200 clients, 5 minutes
    .venv/bin/python bench/load.py --short    # smoke run: 20 clients, 20 s

Figures (p50/p95/p99 per kind, throughput, the machine's load) go to bench/LOAD_RESULTS.md
(a `--short` run only prints them, so a smoke run never replaces the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLES = ROOT / "samples" / "inbox"
BIG = "lyon-releves"
RATE_LIMIT = "20/second;600/minute"  # per simulated client; the run stays far below it
REDIS = "redis://127.0.0.1:6379/2"
WORDS = ["fontaines", "bancs", "vélo", "subventions", "releves", "eau", "sport", "piste", ""]
KINDS = {  # kind: weight in the mix
    "recherche": 18,
    "page jeu de données": 14,
    "lignes (API)": 24,
    "téléchargement": 10,
    "OGC API Features": 16,
    "WMS GetMap": 12,
    "WFS GetFeature": 6,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- the catalog under test --------------------------------------------------------------------


def publish_all(data: Path, rows: int) -> list[str]:
    """Publish the samples (and `rows` generated rows, if any); the published slugs."""
    os.environ["OPENDATA_DATA_DIR"] = str(data)
    from core.settings import load_settings
    from pipelines.submission import Submission, open_settings_store, run_submission

    settings = load_settings()
    store = open_settings_store(settings)
    submissions = []
    for folder in sorted(SAMPLES.glob("*/*/")):
        datafile = next(
            p for p in folder.iterdir() if p.name not in {"metadata.yaml", "schema.json"}
        )
        submissions.append((folder.parent.name, datafile, folder / "metadata.yaml"))
    if rows:
        submissions.append(("lyon", *generated(data.parent / "releves", rows)))
    for producer, datafile, metadata in submissions:
        outcome = run_submission(
            Submission.new(producer, datafile, metadata, "banc"), settings, store
        )
        assert outcome.status == "publiee", outcome.summary()
    return [d.slug for d in store.list_datasets()]


def generated(folder: Path, rows: int) -> tuple[Path, Path]:
    sys.path.insert(0, str(HERE))
    from check_publish import generate

    folder.mkdir(parents=True)
    generate(folder / "releves.csv", rows)
    (folder / "metadata.yaml").write_text(
        "titre: Relevés de mesure\ndescription: Relevés générés pour le test de charge.\n"
        "licence: etalab-2.0\nfrequence: quotidienne\nmodalites_livraison: Dépôt quotidien.\n"
        "date_mise_a_jour: 2026-11-01\nmots_cles: [mesures, releves]\n"
        "contact: {nom: Banc d'essai, email: banc@exemple.fr}\n",
        encoding="utf-8",
    )
    return folder / "releves.csv", folder / "metadata.yaml"


def serve(data: Path, port: int, workers: int, storage: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "OPENDATA_DATA_DIR": str(data),
        "OPENDATA_RATE_LIMIT": RATE_LIMIT,
        "OPENDATA_RATE_LIMIT_STORAGE": storage,
        "OPENDATA_RATE_LIMIT_EXEMPT": "",
        "OPENDATA_TRUSTED_PROXIES": "127.0.0.1",
    }
    command = [str(Path(sys.executable).parent / "opendata"), "servir", "--port", str(port)]
    return subprocess.Popen(
        [*command, "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(data.parent / "serveur.log").open("w"),
    )


def wait_until_ready(base: str, layers: int, seconds: float = 180) -> list[str]:
    """Wait for the service and for its OGC layers; their names."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(f"{base}/ogc/collections?f=json", timeout=10)
            names = [c["id"] for c in answer.json().get("collections", [])]
            names = [n for n in names if n != "catalogue"]
            if answer.status_code == 200 and len(names) >= layers:
                return names
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    raise RuntimeError("the catalog or its OGC layers never came up")


# --- the simulated clients ---------------------------------------------------------------------


@dataclass
class Plan:
    """What the clients ask for: every URL is built from what the catalog publishes."""

    slugs: list[str]
    layers: list[str]
    columns: dict[str, list[str]] = field(default_factory=dict)

    def request(self, kind: str, rng: random.Random) -> str:
        return BUILDERS[kind](self, rng)


def search(plan: Plan, rng: random.Random) -> str:
    extra = rng.choice(["", "&commune=lyon", "&geographique=oui", "&tri=mise-a-jour"])
    return f"/api/datasets?q={rng.choice(WORDS)}{extra}"


def dataset_page(plan: Plan, rng: random.Random) -> str:
    return f"/jeux-de-donnees/{rng.choice(plan.slugs)}"


def rows(plan: Plan, rng: random.Random) -> str:
    slug = rng.choice(plan.slugs + [BIG] * 2) if BIG in plan.slugs else rng.choice(plan.slugs)
    columns = plan.columns.get(slug, [])
    query = f"_taille={rng.choice([20, 50, 100])}"
    if columns and rng.random() < 0.5:
        query += f"&_tri={rng.choice(['', '-'])}{rng.choice(columns)}"
    if slug == BIG and rng.random() < 0.5:
        query += f"&_decalage={rng.randrange(0, 50_000)}"
    return f"/api/datasets/{slug}/rows?{query}"


def download(plan: Plan, rng: random.Random) -> str:
    small = [s for s in plan.slugs if s != BIG]
    if BIG in plan.slugs and rng.random() < 0.05:
        return f"/api/datasets/{BIG}/download/csv"
    slug = rng.choice(small)
    fmt = "geojson" if slug in plan.layers and rng.random() < 0.5 else "csv"
    return f"/api/datasets/{slug}/download/{fmt}"


def ogc_items(plan: Plan, rng: random.Random) -> str:
    if rng.random() < 0.15:
        return "/ogc/collections?f=json"
    return f"/ogc/collections/{rng.choice(plan.layers)}/items?f=json&limit={rng.choice([10, 50])}"


def wms(plan: Plan, rng: random.Random) -> str:
    x, y = rng.uniform(4.75, 4.95), rng.uniform(45.70, 45.82)
    size = rng.choice([0.02, 0.05, 0.1])
    return (
        "/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&FORMAT=image/png&STYLES="
        f"&LAYERS={rng.choice(plan.layers)}&CRS=CRS:84&WIDTH=256&HEIGHT=256"
        f"&BBOX={x:.4f},{y:.4f},{x + size:.4f},{y + size:.4f}"
    )


def wfs(plan: Plan, rng: random.Random) -> str:
    return (
        "/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature"
        "&OUTPUTFORMAT=application/json;%20subtype=geojson"
        f"&TYPENAMES=ms:{rng.choice(plan.layers)}&COUNT=20"
    )


BUILDERS: dict[str, Callable[[Plan, random.Random], str]] = {
    "recherche": search,
    "page jeu de données": dataset_page,
    "lignes (API)": rows,
    "téléchargement": download,
    "OGC API Features": ogc_items,
    "WMS GetMap": wms,
    "WFS GetFeature": wfs,
}


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    bytes: int = 0


async def client(
    number: int, base: str, plan: Plan, deadline: float, think: float, tally: Tally
) -> None:
    rng = random.Random(number)
    address = f"198.51.{100 + number // 250}.{number % 250 + 1}"  # documentation range
    kinds, weights = list(KINDS), list(KINDS.values())
    # An idle connection is let go before uvicorn's keep-alive timeout (5 s) would close it
    # under a request being sent (a race that would read as an error).
    keep_alive = httpx.Limits(max_connections=1, keepalive_expiry=3.0)
    async with httpx.AsyncClient(
        base_url=base, headers={"X-Forwarded-For": address}, timeout=120, limits=keep_alive
    ) as session:
        await asyncio.sleep(rng.uniform(0, think))  # clients arrive over the first seconds
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            url = plan.request(kind, rng)
            started = time.perf_counter()
            try:
                answer = await session.get(url)
                tally.bytes += len(answer.content)
                if answer.status_code >= 400:
                    tally.errors[kind].append(f"{answer.status_code} {url}")
            except httpx.HTTPError as error:
                tally.errors[kind].append(f"{type(error).__name__} {url}")
            tally.latencies[kind].append(time.perf_counter() - started)
            await asyncio.sleep(rng.expovariate(1 / think))


async def run_clients(base: str, plan: Plan, count: int, duration: float, think: float) -> Tally:
    tally = Tally()
    deadline = time.monotonic() + duration
    await asyncio.gather(*(client(n, base, plan, deadline, think, tally) for n in range(count)))
    return tally


async def limiter_probe(base: str) -> list[int]:
    """One more client, in a hurry: 40 requests at once must meet the limit."""
    headers = {"X-Forwarded-For": "203.0.113.77"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as session:
        answers = await asyncio.gather(*(session.get("/api/datasets") for _ in range(40)))
    return [a.status_code for a in answers]


# --- measure and report --------------------------------------------------------------------------


def warm_up(base: str, plan: Plan) -> None:
    """First uses build the rows copies and derived files: not measured."""
    rng = random.Random(0)
    with httpx.Client(base_url=base, timeout=600) as session:
        for slug in plan.slugs:
            answer = session.get(f"/api/datasets/{slug}/rows?_taille=1")
            plan.columns[slug] = answer.json()["colonnes"]
            session.get(f"/api/datasets/{slug}/download/csv")
            if slug in plan.layers:
                session.get(f"/api/datasets/{slug}/download/geojson")
        for kind in KINDS:
            for _ in range(5):
                session.get(plan.request(kind, rng))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def report(
    args: argparse.Namespace, tally: Tally, context: dict[str, Any], probe: list[int]
) -> str:
    total = sum(len(v) for v in tally.latencies.values())
    errors = sum(len(v) for v in tally.errors.values())
    lines = [
        f"# Load test ({args.clients} clients, {args.duration:.0f} s)",
        "",
        f"- {context['machine']}; catalog: `opendata servir --workers {args.workers}` "
        f"(uvicorn), load generator: this process (asyncio + httpx), both on the machine.",
        f"- Data: the {context['samples']} bundled samples"
        + (f" and a generated table of {args.rows:,} rows (`{BIG}`)." if args.rows else "."),
        f"- Each client: its own keep-alive connection and address (`X-Forwarded-For`, the "
        f"catalog trusting loopback as its proxy), a request drawn from the mix below, then "
        f"a think time drawn from an exponential law of mean {args.think:g} s.",
        f"- Rate limiter on, Redis storage (`{args.storage}`), "
        f"`OPENDATA_RATE_LIMIT={RATE_LIMIT}` per client: no client of the run reaches it; a "
        f"burst of 40 requests from one more address after the run got "
        f"{probe.count(429)} × 429 (the limiter was on).",
        f"- Machine load (1/5/15 min) before: {context['load_before']}, "
        f"after: {context['load_after']}.",
        "- CPU used during the run (2 cores: "
        f"{2 * args.duration:.0f} CPU·s available): "
        + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in context["cpu"].items())
        + ".",
        f"- MapServer runs as one CGI process per WMS/WFS request: {cgi_share(context, tally)}.",
        "",
        f"**{total:,} requests, {errors} error(s), {total / args.duration:.0f} req/s, "
        f"{tally.bytes / 1e6:.0f} MB served.**",
        "",
        "| request | share | count | errors | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    weights = sum(KINDS.values())
    for kind, weight in KINDS.items():
        values = tally.latencies.get(kind, [])
        if not values:
            continue
        lines.append(
            f"| {kind} | {100 * weight / weights:.0f} % | {len(values):,} | "
            f"{len(tally.errors.get(kind, []))} | {percentile(values, 0.50):.0f} | "
            f"{percentile(values, 0.95):.0f} | {percentile(values, 0.99):.0f} | "
            f"{1000 * max(values):.0f} |"
        )
    every = [v for values in tally.latencies.values() for v in values]
    lines.append(
        f"| **all** | 100 % | {total:,} | {errors} | {percentile(every, 0.5):.0f} | "
        f"{percentile(every, 0.95):.0f} | {percentile(every, 0.99):.0f} | "
        f"{1000 * max(every):.0f} |"
    )
    if errors:
        samples = [e for values in tally.errors.values() for e in values][:10]
        lines += ["", "Errors (first 10):", "", *[f"- `{e}`" for e in samples]]
    lines += [
        "",
        "Summary for the README:",
        "",
        f"> Load test (`bench/load.py`): {args.clients} concurrent clients for "
        f"{duration(args.duration)} on loopback ({context['machine_short']}, catalog with "
        f"{args.workers} workers, rate limiter on): {total:,} requests mixing search, dataset "
        f"pages, rows, downloads, OGC API, WMS and WFS, {errors} error(s); p50 "
        f"{percentile(every, 0.5):.0f} ms, p95 {percentile(every, 0.95):.0f} ms, p99 "
        f"{percentile(every, 0.99):.0f} ms (details in `bench/LOAD_RESULTS.md`).",
    ]
    return "\n".join(lines) + "\n"


def cgi_share(context: dict[str, Any], tally: Tally) -> str:
    cpu = context["cpu"]
    used = sum(cpu.values()) or 1.0
    mapserver = sum(len(tally.latencies.get(k, [])) for k in ("WMS GetMap", "WFS GetFeature"))
    total = sum(len(v) for v in tally.latencies.values()) or 1
    return (
        f"{100 * cpu['programmes CGI (MapServer)'] / used:.0f} % of the CPU used for "
        f"{100 * mapserver / total:.0f} % of the requests"
    )


def duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def cpu_seconds(server: int) -> dict[str, float]:
    """CPU time so far: the catalog's processes, the CGI programs they ran (MapServer,
    reaped), and this load generator."""
    catalog, cgi = 0.0, 0.0
    root = psutil.Process(server)
    for process in [root, *root.children(recursive=True)]:
        times = process.cpu_times()
        catalog += times.user + times.system
        cgi += times.children_user + times.children_system
    mine = psutil.Process().cpu_times()
    return {
        "catalogue (uvicorn)": catalog,
        "programmes CGI (MapServer)": cgi,
        "générateur de charge": mine.user + mine.system,
    }


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, help="default 200 (20 with --short)")
    parser.add_argument("--duration", type=float, help="seconds; default 300 (20 with --short)")
    parser.add_argument("--think", type=float, default=5.0, help="mean think time, seconds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rows", type=int, help="generated table; 0: none; default 100000 (20000 with --short)"
    )
    parser.add_argument("--storage", default=REDIS, help="rate limiter storage")
    parser.add_argument("--short", action="store_true", help="smoke run: 20 clients, 20 s")
    args = parser.parse_args()
    short = args.short
    args.clients = args.clients or (20 if short else 200)
    args.duration = args.duration or (20.0 if short else 300.0)
    args.rows = args.rows if args.rows is not None else (20_000 if short else 100_000)
    with tempfile.TemporaryDirectory(prefix="charge-") as scratch:
        data = Path(scratch) / "data"
        print("Publishing the samples through the pipeline…", flush=True)
        slugs = publish_all(data, args.rows)
        port = free_port()
        server = serve(data, port, args.workers, args.storage)
        base = f"http://127.0.0.1:{port}"
        try:
            layers = wait_until_ready(base, layers=3)
            plan = Plan(slugs=slugs, layers=layers)
            warm_up(base, plan)
            print(f"{args.clients} clients for {args.duration:.0f} s…", flush=True)
            before, cpu_before = load_average(), cpu_seconds(server.pid)
            tally = asyncio.run(run_clients(base, plan, args.clients, args.duration, args.think))
            after, cpu_after = load_average(), cpu_seconds(server.pid)
            probe = asyncio.run(limiter_probe(base))
        finally:
            server.terminate()
            server.wait(30)
    context = {
        "machine": f"{os.cpu_count()} cores, {os.uname().sysname} {os.uname().release}",
        "machine_short": f"{os.cpu_count()} cores",
        "samples": str(len([s for s in slugs if s != BIG])),
        "load_before": before,
        "load_after": after,
        "cpu": {k: cpu_after[k] - cpu_before[k] for k in cpu_before},
    }
    text = report(args, tally, context, probe)
    if not args.short:
        (HERE / "LOAD_RESULTS.md").write_text(text, encoding="utf-8")
    print(text)
    errors = sum(len(v) for v in tally.errors.values())
    return 0 if errors == 0 and 429 in probe else 1


if __name__ == "__main__":
    sys.exit(main())
