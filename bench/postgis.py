"""Benchmark: the PostGIS backend beside the embedded SQLite one, in the same run.

1. Publish: one generated file (`check_publish.generate`, 12 columns, latitude/longitude)
   goes through the whole pipeline (`pipelines.submission.run_submission`: metadata,
   licence, read, structure inference + check, personal-data detection, publish) once per
   backend, each in a fresh process so that its time and peak memory (max RSS) are its own.
   SQLite: `sqlite:///…/catalog.db` (the default). PostGIS: a throwaway database
   `opendata_bench_<random>` with the PostGIS extension on 127.0.0.1:5432, dropped at the
   end; there the publication also COPYs the release into `donnees."<slug>__v1"` (geometry
   + GIST index) inside the switch's transaction, timed on its own.
2. Serve (skipped with --no-serve): `opendata servir` per backend (one uvicorn worker each,
   the matching environment), loaded one at a time by `rows_api.load` (8 client threads,
   keep-alive, a fixed number of requests): search, dataset page, rows first page, rows 90 %
   deep (keyset cursor), rows sorted by a column 90 % deep. On SQLite the rows endpoint
   reads the release's SQLite copy; on PostGIS the release's table (catalog/rows.py).

    .venv/bin/python bench/postgis.py [--rows 1000000] [--requests 2000] [--no-serve]

Figures go to bench/POSTGIS_RESULTS.md, one section per row count (a run replaces its own
section). `OPENDATA_TEST_PG` overrides the server URL, as in the tests.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import sqlalchemy as sa

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "POSTGIS_RESULTS.md"
PG_SERVER = os.environ.get("OPENDATA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
BACKENDS = ("sqlite", "postgis")
SLUG = "lyon-releves"
METADATA = (
    "titre: Relevés de mesure\ndescription: Relevés générés pour le banc d'essai.\n"
    "licence: etalab-2.0\nfrequence: quotidienne\nmodalites_livraison: Dépôt quotidien.\n"
    "date_mise_a_jour: 2026-11-01\nmots_cles: [mesures]\n"
    "contact: {nom: Banc d'essai, email: banc@exemple.fr}\n"
)

sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))


# --- child processes -------------------------------------------------------------------------


def phase_generate(folder: Path, rows: int) -> dict:
    from check_publish import generate

    generate(folder / "releves.csv", rows)
    return {"mb": (folder / "releves.csv").stat().st_size / 1e6}


def phase_publish(folder: Path, rows: int) -> dict:
    """run_submission on the environment's backend (OPENDATA_* set by the parent)."""
    import catalog.store.postgis as postgis
    from core.settings import load_settings
    from pipelines.submission import Submission, open_settings_store, run_submission

    load_seconds: list[float] = []
    original = postgis.load_version_table

    def timed_load(*args, **kwargs):  # the COPY into PostGIS, inside the switch
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            load_seconds.append(time.perf_counter() - started)

    postgis.load_version_table = timed_load
    settings = load_settings()
    started = time.perf_counter()
    store = open_settings_store(settings)  # PostGIS: Alembic migrations on an empty database
    open_seconds = time.perf_counter() - started
    submission = Submission.new("lyon", folder / "releves.csv", folder / "metadata.yaml", "banc")
    started = time.perf_counter()
    outcome = run_submission(submission, settings, store)
    seconds = time.perf_counter() - started
    assert outcome.status == "publiee", outcome.summary()
    result = {
        "seconds": seconds,
        "open_seconds": open_seconds,
        "load_seconds": sum(load_seconds) if load_seconds else None,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if settings.store_url.startswith("postgresql"):
        with store.engine.connect() as conn:  # type: ignore[attr-defined]
            result["postgis_rows"] = conn.execute(
                sa.text(f'SELECT count(*) FROM donnees."{SLUG}"')
            ).scalar_one()
            result["geometry"] = conn.execute(
                sa.text(
                    "SELECT type || ':' || srid FROM geometry_columns "
                    "WHERE f_table_schema = 'donnees' AND f_table_name = :t"
                ),
                {"t": f"{SLUG}__v1"},
            ).scalar()
            result["table_mb"] = (
                conn.execute(
                    sa.text("SELECT pg_total_relation_size(:t)"), {"t": f'donnees."{SLUG}__v1"'}
                ).scalar_one()
                / 1e6
            )
    return result


PHASES = {"generate": phase_generate, "publish": phase_publish}


def child(phase: str, folder: Path, rows: int, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--rows", str(rows), str(folder)],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"phase {phase} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the throwaway PostGIS database ----------------------------------------------------------


def admin_engine() -> sa.Engine:
    return sa.create_engine(
        f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )


def create_database() -> str:
    name = f"opendata_bench_{secrets.token_hex(6)}"
    with admin_engine().connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = f"{PG_SERVER}/{name}"
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
    engine.dispose()
    return url


def drop_database(url: str) -> None:
    name = sa.engine.make_url(url).database
    with admin_engine().connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


# --- serving -----------------------------------------------------------------------------------


def serve_and_measure(envs: dict[str, dict[str, str]], count: int, rows: int) -> dict:
    from rows_api import free_port, load, wait_until_up

    servers, bases = {}, {}
    try:
        for backend, env in envs.items():
            port = free_port()
            bases[backend] = f"http://127.0.0.1:{port}"
            servers[backend] = subprocess.Popen(
                [str(Path(sys.executable).parent / "opendata"), "servir", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        plans, first_use = {}, {}
        depth = rows * 9 // 10
        for backend, base in bases.items():
            wait_until_up(f"{base}/api/datasets")
            rows_url = f"{base}/api/datasets/{SLUG}/rows?_taille=100"
            started = time.perf_counter()
            requests.get(rows_url, timeout=1200).raise_for_status()  # builds the rows copy
            first_use[backend] = time.perf_counter() - started
            deep = requests.get(f"{rows_url}&_decalage={depth - 100}", timeout=120).json()
            cursor = requests.get(
                f"{rows_url}&_apres="
                + base64.urlsafe_b64encode(json.dumps([None, depth]).encode()).decode(),
                timeout=120,
            )
            assert cursor.json()["lignes"][0]["id"] == deep["lignes"][0]["id"] + 100
            sorted_url = f"{rows_url}&_tri=valeur"
            before = requests.get(f"{sorted_url}&_decalage={depth - 100}", timeout=1200).json()
            last = before["lignes"][-1]  # the generated ids are the rows' order: id = rowid
            sorted_cursor = requests.get(
                f"{sorted_url}&_apres="
                + base64.urlsafe_b64encode(
                    json.dumps([last["valeur"], last["id"]]).encode()
                ).decode(),
                timeout=120,
            )
            assert sorted_cursor.json()["lignes"][0]["valeur"] >= last["valeur"]
            plans[backend] = {
                "search": f"{base}/api/datasets?q=releves",
                "dataset page": f"{base}/jeux-de-donnees/{SLUG}",
                "rows, first 100": rows_url,
                "rows, 100 at 90 %": cursor.url,
                "rows sorted by a column, 100 at 90 %": sorted_cursor.url,
            }
        figures: dict = {"first_use": first_use}
        for name in plans["sqlite"]:
            for backend in envs:  # alternate, so that drift on the shared machine hits both
                print(f"  {name} / {backend}…", flush=True)
                figures.setdefault(name, {})[backend] = load([plans[backend][name]], count)
        return figures
    finally:
        for server in servers.values():
            server.terminate()
        for server in servers.values():
            server.wait(timeout=30)


# --- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--no-serve", action="store_true")
    parser.add_argument("--phase")
    parser.add_argument("path", nargs="?")
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(PHASES[args.phase](Path(args.path), args.rows)))
        return
    url = create_database()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            print(f"Generating {args.rows:,} rows…", flush=True)
            size_mb = child("generate", folder, args.rows)["mb"]
            envs, publish = {}, {}
            for backend in BACKENDS:
                base = folder / backend
                drop = base / "inbox" / "lyon" / "releves"
                drop.mkdir(parents=True)
                os.link(folder / "releves.csv", drop / "releves.csv")
                (drop / "metadata.yaml").write_text(METADATA, encoding="utf-8")
                env = {
                    **os.environ,
                    "OPENDATA_DATA_DIR": str(base / "data"),
                    "OPENDATA_INBOX_DIR": str(base / "inbox"),
                }
                env.pop("OPENDATA_STORE_URL", None)
                if backend == "postgis":
                    env["OPENDATA_STORE_URL"] = url
                envs[backend] = env
                print(f"Publishing on {backend}…", flush=True)
                publish[backend] = child("publish", drop, args.rows, env)
                print(f"  {publish[backend]}", flush=True)
            (folder / "releves.csv").unlink()
            serving = None
            if not args.no_serve:
                print("Serving…", flush=True)
                serving = serve_and_measure(envs, args.requests, args.rows)
    finally:
        drop_database(url)
    write(args, size_mb, publish, serving)


def write(args, size_mb: float, publish: dict, serving: dict | None) -> None:
    lite, pg = publish["sqlite"], publish["postgis"]
    lines = [
        f"<!-- rows={args.rows} -->",
        f"## {args.rows:,} rows × 12 columns ({size_mb:.0f} MB CSV)",
        "",
        "Publish: `run_submission` (metadata, licence, read, structure inference + check, "
        "personal-data detection, publish), each backend in its own process.",
        "",
        "| backend | publish (s) | of which COPY into PostGIS (s) | peak memory (MB) |",
        "|---|---:|---:|---:|",
        f"| SQLite | {lite['seconds']:.2f} | – | {lite['peak_mb']:.0f} |",
        f"| PostGIS | {pg['seconds']:.2f} | {pg['load_seconds']:.2f} | {pg['peak_mb']:.0f} |",
        "",
        f"- PostGIS / SQLite publish time: **{pg['seconds'] / lite['seconds']:.2f}×** "
        f"({pg['seconds'] - lite['seconds']:+.1f} s); the COPY + GIST index + ANALYZE is "
        f"{100 * pg['load_seconds'] / pg['seconds']:.0f} % of the PostGIS publish, "
        f"{args.rows / pg['load_seconds']:,.0f} rows/s.",
        f'- PostGIS table `donnees."{SLUG}"`: {pg["postgis_rows"]:,} rows, '
        + (
            f"geometry {pg['geometry']} (GIST index)"
            if pg["geometry"]
            else "no geometry (a CSV's latitude/longitude stay columns: no GIST index)"
        )
        + f", {pg['table_mb']:.0f} MB with indexes. Opening the PostGIS store on an empty "
        f"database (Alembic migrations): {pg['open_seconds']:.2f} s.",
        "- Peak memory is the pipeline process's; PostgreSQL's own backend process is not counted.",
    ]
    if serving:
        lines += [
            "",
            f"Serving: `opendata servir`, one uvicorn worker per backend, {args.requests} "
            "requests per row over 8 client threads, loaded one server at a time "
            "(alternating backends per request kind).",
            "",
            "| request | SQLite req/s | PostGIS req/s | PostGIS / SQLite | SQLite p50 / p95 ms "
            "| PostGIS p50 / p95 ms |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, f in serving.items():
            if name == "first_use":
                continue
            s, p = f["sqlite"], f["postgis"]
            lines.append(
                f"| {name} | {s['rps']:.0f} | {p['rps']:.0f} | {p['rps'] / s['rps']:.2f}× | "
                f"{s['p50']:.1f} / {s['p95']:.1f} | {p['p50']:.1f} / {p['p95']:.1f} |"
            )
        first = serving["first_use"]
        lines += [
            "",
            f"- First rows request: SQLite {first['sqlite']:.1f} s (builds the release's "
            f"SQLite rows copy), PostGIS {first['postgis']:.1f} s (reads the release's table "
            '`donnees."<slug>__v<N>"`, loaded at publication).',
            "- On PostGIS the rows come from the release's table (catalog/rows.py "
            "`run_postgis`: keyset on `ogc_fid`; a sorted page reads an index on (column, "
            "fid) created by the first sort on that column, which the setup requests here).",
        ]
    section = "\n".join(lines) + "\n"
    header = (
        "# PostGIS vs SQLite benchmark (`bench/postgis.py`)\n\n"
        "Same run, same generated file, same machine (2 cores, shared with the load "
        "generator and PostgreSQL 15 + PostGIS 3 on 127.0.0.1). Times exclude interpreter "
        "start-up.\n\n"
    )
    sections = {}
    if RESULTS.exists():
        for part in re.split(r"(?=<!-- rows=\d+ -->)", RESULTS.read_text(encoding="utf-8")):
            found = re.match(r"<!-- rows=(\d+) -->", part)
            if found:
                sections[int(found.group(1))] = part.rstrip() + "\n"
    sections[args.rows] = section
    text = header + "\n".join(sections[k] for k in sorted(sections))
    RESULTS.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
