"""The platform at catalogue scale: 100, 1,000 and 10,000 datasets, and each figure's growth.

For each size and backend, `bench_catalogue` builds a fresh instance (the samples through
the pipeline, then copies switched in through the store), and the scale measures run on it:
search and the home page (`search_scale.measure_search`, with and without the answers'
cache: the query mix repeats, so the cache alone would flatter it), the OGC services
(`services_scale.measure_services`). Each figure is printed with its growth from the
smallest catalogue to the largest (1.0 = flat). The figures that do not depend on the
catalogue's size (a 1M-row submission, the rows API against datasette, a 10M-row file, the
Celery workers) have their own benchmarks; their last results are quoted at the end.

    .venv/bin/python bench/scale.py                       # 100, 1 000, 10 000 ; SQLite
    .venv/bin/python bench/scale.py --postgis             # and PostGIS
    .venv/bin/python bench/scale.py --sizes 100 1000      # quicker

Figures go to bench/SCALE_RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_catalogue import open_bench_catalogue  # noqa: E402

PG_SERVER = os.environ.get("OPENDATA_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
RESULTS = HERE / "SCALE_RESULTS.md"
OTHER_RESULTS = {
    "soumission d'un CSV de 1 M de lignes": "SUBMIT_RESULTS.md",
    "API des lignes face à datasette": "ROWS_API_RESULTS.md",
    "fichier de 10 M de lignes": "BIG_FILE_RESULTS.md",
    "workers Celery": "WORKERS_RESULTS.md",
}


SEARCH_SHOWN = [
    ("search_p50_ms", "recherche, p50 (ms)"),
    ("search_p95_ms", "recherche, p95 (ms)"),
    ("search_rps", "recherche, req/s sous 8 clients"),
    ("home_p50_ms", "accueil du portail, p50 (ms)"),
    ("uncached_search_p50_ms", "recherche sans cache des réponses, p50 (ms)"),
    ("uncached_search_p95_ms", "recherche sans cache des réponses, p95 (ms)"),
    ("uncached_search_rps", "recherche sans cache des réponses, req/s sous 8 clients"),
    ("uncached_home_p50_ms", "accueil sans cache des réponses, p50 (ms)"),
]
# MapServer's capabilities of the whole map file (the reference) grow quadratically: timed up
# to this size only.
REFERENCE_UP_TO = 1000


def measures(count: int) -> list[Callable[[str, Path], dict[str, Any]]]:
    """The scale measures, imported when the benchmark runs (each starts its servers)."""
    from search_scale import measure_search
    from services_scale import measure_services

    def services(store_url: str, files_dir: Path) -> dict[str, Any]:
        return measure_services(store_url, files_dir, reference=count <= REFERENCE_UP_TO)

    def search_uncached(store_url: str, files_dir: Path) -> dict[str, Any]:
        figures = measure_search(store_url, files_dir, cache=False)
        return {f"uncached_{key}": value for key, value in figures.items()}

    return [measure_search, search_uncached, services]


def labels() -> list[tuple[str, str]]:
    from services_scale import SHOWN

    return [("build_s", "construction du catalogue (s)"), *SEARCH_SHOWN, *SHOWN]


@contextmanager
def postgis_database() -> Iterator[str]:
    """A throwaway PostGIS database; its URL."""
    name = f"opendata_scale_{secrets.token_hex(4)}"
    admin = sa.create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{PG_SERVER}/{name}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def measure_size(folder: Path, count: int, store_url: str | None) -> dict[str, Any]:
    started = time.perf_counter()
    settings, store, _ = open_bench_catalogue(folder, count, store_url)
    store.close()
    figures: dict[str, Any] = {"build_s": time.perf_counter() - started}
    for measure in measures(count):
        figures |= measure(settings.store_url, settings.files_dir)
    return figures


def run(sizes: list[int], backends: list[str], scratch: Path) -> dict[str, dict[int, dict]]:
    results: dict[str, dict[int, dict]] = {}
    for backend in backends:
        results[backend] = {}
        for count in sizes:
            folder = scratch / f"{backend}-{count}"
            print(f"{backend}, {count} jeux…", flush=True)
            if backend == "postgis":
                with postgis_database() as url:
                    results[backend][count] = measure_size(folder, count, url)
            else:
                results[backend][count] = measure_size(folder, count, None)
            shutil.rmtree(folder, ignore_errors=True)
    return results


def table(backend: str, by_size: dict[int, dict[str, float]]) -> list[str]:
    sizes = sorted(by_size)
    header = " | ".join(f"{size:,} jeux".replace(",", " ") for size in sizes)
    lines = [
        f"### {backend}",
        "",
        f"| mesure | {header} | croissance {sizes[-1]:,} / {sizes[0]:,} |".replace(",", " "),
        "|---|" + "---:|" * (len(sizes) + 1),
    ]
    for key, label in labels():
        values = [by_size[size].get(key) for size in sizes]
        if all(value is None for value in values):
            continue
        cells = " | ".join(_number(v) for v in values)
        growth = _growth(values[0], values[-1])
        lines.append(f"| {label} | {cells} | {growth} |")
    return lines + [""]


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return str(value)


def _growth(first: Any, last: Any) -> str:
    if not isinstance(first, int | float) or not isinstance(last, int | float) or not first:
        return "—"
    return f"{last / first:.2f}×"


def report(results: dict[str, dict[int, dict]]) -> str:
    lines = [
        "# Passage à l'échelle du catalogue (issue #20)",
        "",
        "`bench/scale.py` : pour chaque taille, un catalogue neuf (`bench/bench_catalogue.py`), "
        "puis les mesures de recherche et des services OGC sur ce catalogue. Croissance : "
        "valeur au plus grand catalogue divisée par la valeur au plus petit (1,00× : plat). "
        f"Machine : {os.cpu_count()} cœurs, charge moyenne {os.getloadavg()[0]:.1f} en fin de "
        "mesure.",
        "",
    ]
    for backend, by_size in results.items():
        lines += table(backend, by_size)
    lines += [
        "Mesures indépendantes de la taille du catalogue (dernier passage de chaque banc) :",
        "",
    ]
    for title, name in OTHER_RESULTS.items():
        if (HERE / name).exists():
            lines.append(f"- {title} : [bench/{name}]({name})")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--postgis", action="store_true", help="aussi sur PostGIS")
    parser.add_argument("--sans-ecrire", action="store_true", help="afficher sans écrire")
    args = parser.parse_args()
    backends = ["sqlite", "postgis"] if args.postgis else ["sqlite"]
    with tempfile.TemporaryDirectory(prefix="opendata-scale-") as scratch:
        results = run(sorted(args.sizes), backends, Path(scratch))
    text = report(results)
    print(text)
    if not args.sans_ecrire:
        RESULTS.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
