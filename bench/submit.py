"""Benchmark: `opendata soumettre` of a 1,000,000-row × 12-column CSV, end to end, against
its floors and references, in one run (issue #20).

Every measure is a fresh process timed from outside (interpreter start included), and the
measures are interleaved round after round (`--repeat`, 3 by default); each figure is the
median of its rounds:

- floor, pyarrow: read the CSV, write Parquet (`FLOOR_ARROW`);
- floor, DuckDB: the same with DuckDB (`FLOOR_DUCKDB`), from an environment of its own
  (var/submit-bench-venv, created on first run with `REFERENCE_REQUIREMENTS`);
- ours: `opendata soumettre` of a new dataset into an existing store (its first version);
- frictionless: `frictionless validate` of the same file against the same schema;
- stages: in one process, reading, the structure check, the anonymise stage (this file
  holds no personal data) and publication;
- engines: the structure check's work written for Arrow, DuckDB and Polars (`ENGINES`);
- start: `python -c pass`, `opendata --help`, what `opendata soumettre` imports before it
  reads a byte (`START`), and `opendata soumettre` of an absent file (store and refusal).

The file is bench/check_publish.py's (same generator, same schema).

    .venv/bin/python bench/submit.py [--rows 1000000] [--repeat 3]

Figures go to bench/SUBMIT_RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from check_publish import SCHEMA, generate  # noqa: E402

BIN = Path(sys.executable).parent
BENCH_VENV = ROOT / "var" / "submit-bench-venv"
REFERENCE_REQUIREMENTS = ["duckdb==2.0.1", "polars==2.1.0", "pyarrow==26.0.1", "numpy==2.4.6"]
FLOOR_ARROW = (
    "import sys, pyarrow.csv as c, pyarrow.parquet as p; "
    "p.write_table(c.read_csv(sys.argv[1]), sys.argv[2], compression='zstd')"
)
FLOOR_DUCKDB = (
    "import sys, duckdb; duckdb.sql(f\"COPY (SELECT * FROM read_csv('{sys.argv[1]}')) "
    "TO '{sys.argv[2]}' (FORMAT parquet, COMPRESSION zstd)\")"
)
METADATA = """\
identifiant: releves
titre: Relevés des interventions
description: Relevés générés pour mesurer la soumission d'un fichier d'un million de lignes.
licence: etalab-2.0
frequence: quotidienne
modalites_livraison: Fichier produit par le banc de mesure bench/submit.py.
date_mise_a_jour: 2026-11-23
mots_cles: [banc de mesure]
contact: {nom: Service des relevés, email: releves@mairie-ecully.fr}
schema: schema.json
"""
# What `opendata soumettre` loads before it reads a byte of data: the command line and the
# submission's code (the stages import their engines when they run).
START = "import opendata.cli, pipelines.submission"
ANALYSIS = "<!-- analyse : texte écrit à la main, conservé par bench/submit.py -->"
TARGETS = {"floor": 3.0, "frictionless": 20.0, "anonymise": 0.3, "start": 0.3}


# `--sans-positions`: the same file without a map (its latitude and longitude renamed), to
# measure the submission of a plain table, publication without GeoJSON and GeoPackage.
WITHOUT_POSITIONS = {"latitude": "mesure_nord", "longitude": "mesure_est"}


def prepare(folder: Path, rows: int, positions: bool = True) -> Path:
    """The dataset folder: releves.csv, schema.json, metadata.yaml."""
    dataset = folder / "releves"
    dataset.mkdir(parents=True)
    generate(dataset / "releves.csv", rows)
    schema = SCHEMA
    if not positions:
        _rename_header(dataset / "releves.csv", WITHOUT_POSITIONS)
        renamed = [
            {**f, "name": WITHOUT_POSITIONS.get(f["name"], f["name"])} for f in SCHEMA["fields"]
        ]
        schema = {**SCHEMA, "fields": renamed}
    (dataset / "schema.json").write_text(json.dumps(schema), encoding="utf-8")
    (dataset / "metadata.yaml").write_text(METADATA, encoding="utf-8")
    return dataset


def _rename_header(csv: Path, names: dict[str, str]) -> None:
    renamed = csv.with_suffix(".tmp")
    with csv.open("rb") as source, renamed.open("wb") as target:
        header = source.readline().decode()
        for old, new in names.items():
            header = header.replace(f'"{old}"', f'"{new}"')
        target.write(header.encode())
        shutil.copyfileobj(source, target)
    renamed.replace(csv)


def duckdb_python() -> Path | None:
    """DuckDB's and Polars' own environment (references only, never dependencies of the
    project)."""
    python = BENCH_VENV / "bin" / "python"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        probe = subprocess.run([python, "-c", "import duckdb, polars"], capture_output=True)
        if probe.returncode != 0:
            install = [python, "-m", "pip", "install", "-q", *REFERENCE_REQUIREMENTS]
            subprocess.run(install, check=True)
    except (subprocess.CalledProcessError, OSError) as error:
        print(f"DuckDB and Polars skipped: {error}", file=sys.stderr)
        return None
    return python


def timed(
    command: list[str | Path],
    env: dict[str, str] | None = None,
    refusal_ok: bool = True,
    cwd: Path | None = None,
) -> float:
    """Wall time of a command; it must end normally (1 is a refusal, when that is expected)."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd)
    seconds = time.perf_counter() - started
    allowed = (0, 1) if refusal_ok else (0,)
    if done.returncode not in allowed or "Traceback" in done.stderr:
        raise RuntimeError(f"{command[:3]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def submit_env(data_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "OPENDATA_DATA_DIR": str(data_dir / "data"),
        "OPENDATA_INBOX_DIR": str(data_dir / "inbox"),
    }


def submit_command(data: Path, metadata: Path) -> list[str | Path]:
    return [
        BIN / "opendata",
        "soumettre",
        "--producteur",
        "ecully",
        str(data),
        "--metadonnees",
        str(metadata),
    ]


def one_round(
    dataset: Path, work: Path, duckdb: Path | None, with_frictionless: bool, first: bool
) -> dict:
    csv, metadata = dataset / "releves.csv", dataset / "metadata.yaml"
    figures: dict[str, float] = {}
    figures["pass"] = timed([sys.executable, "-c", "pass"])
    figures["help"] = timed([BIN / "opendata", "--help"])
    figures["start"] = timed([sys.executable, "-c", START])
    started = work / "started"  # a store that exists already: the start, not its creation
    figures["absent"] = timed(submit_command(dataset / "absent.csv", metadata), submit_env(started))
    figures["arrow"] = timed([sys.executable, "-c", FLOOR_ARROW, csv, work / "floor.parquet"])
    if duckdb is not None:
        figures["duckdb"] = timed([duckdb, "-c", FLOOR_DUCKDB, csv, work / "floor.parquet"])
    fresh = work / "submit"  # the platform's store as it is, without this dataset yet
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(work / "started", fresh)
    figures["ours"] = timed(submit_command(csv, metadata), submit_env(fresh), refusal_ok=False)
    stages = subprocess.run(
        [sys.executable, __file__, "--stages", str(dataset)] + (["--publish"] if first else []),
        capture_output=True,
        text=True,
        check=True,
    )
    figures.update(json.loads(stages.stdout.splitlines()[-1]))
    for engine in ENGINES if duckdb is not None else ():
        done = subprocess.run(
            [duckdb, __file__, "--engine", engine, csv], capture_output=True, text=True, check=True
        )
        measured = json.loads(done.stdout.splitlines()[-1])
        assert measured["wrong"] == 0, (engine, measured)
        figures[f"engine-{engine}"] = measured["seconds"]
    if with_frictionless:
        # Relative paths: frictionless refuses absolute ones as unsafe (and says so in 5 s).
        figures["frictionless"] = timed(
            [BIN / "frictionless", "validate", csv.name, "--schema", "schema.json"],
            refusal_ok=False,
            cwd=dataset,
        )
    return figures


ENGINE_MODULES = (
    "frictionless",
    "geopandas",
    "pipelines.read.stage",
    "pipelines.read.csv",
    "pipelines.coordinates",
    "pipelines.validate",
    "pipelines.anonymise",
    "pipelines.publish",
    "pipelines.lifecycle",
)


def stages(dataset: Path, publish: bool) -> dict[str, float]:
    """The chain's stages on this file, timed in one process: reading, the rest of the
    structure check (positions, Table Schema), anonymisation, publication."""
    from core.settings import load_settings
    from pipelines.submission import (
        Submission,
        open_settings_store,
        stage_anonymise,
        stage_licence,
        stage_metadata,
        stage_publish,
        stage_read,
        stage_structure,
    )

    # The stages' engines loaded first: the figures are the stages' work, not their imports
    # (the end-to-end run counts those).
    for module in ENGINE_MODULES:
        importlib.import_module(module)
    with tempfile.TemporaryDirectory() as folder:
        os.environ.update(submit_env(Path(folder)))
        settings = load_settings()
        store = open_settings_store(settings)
        submission = Submission.new(
            "ecully", dataset / "releves.csv", dataset / "metadata.yaml", "banc"
        )
        metadata = stage_metadata(submission, settings)
        licence = stage_licence(metadata, settings)
        started = time.perf_counter()
        source = stage_read(submission, metadata)
        read_seconds = time.perf_counter() - started
        checked, structure, version = stage_structure(submission, metadata, source, store)
        structure_seconds = time.perf_counter() - started
        started = time.perf_counter()
        checked, structure, report = stage_anonymise(
            submission, metadata, checked, structure, settings
        )
        anonymise_seconds = time.perf_counter() - started
        figures = {
            "read": read_seconds,
            "structure": structure_seconds,
            "anonymise": anonymise_seconds,
        }
        if publish:  # the first round only: it is the longest part, and its own process
            started = time.perf_counter()
            stage_publish(
                submission, metadata, licence, checked, structure, version, store, report, settings
            )
            figures["publish"] = time.perf_counter() - started
    return figures


# --- which engine: the structure check's work on this file, in each engine's own idiom ---------
# Every column read as text, then typed (integers, numbers, dates, date-times; a cell that is
# not of its type counted), the code's pattern, the commune's list, the identifier's
# uniqueness; the typed table handed over as Arrow (what publication writes).
INTEGERS, NUMBERS = ("id", "quantite"), ("valeur", "latitude", "longitude")


def engine_arrow(csv: Path) -> int:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    names = [f["name"] for f in SCHEMA["fields"]]
    text = pacsv.read_csv(
        csv, convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    )
    typed = {n: pc.cast(text[n], pa.int64()) for n in INTEGERS}
    typed |= {n: pc.cast(text[n], pa.float64()) for n in NUMBERS}
    typed["date_releve"] = pc.cast(text["date_releve"], pa.date32())
    typed["horodatage"] = pc.cast(text["horodatage"], pa.timestamp("s"))
    bad = sum(typed[n].null_count - text[n].null_count for n in typed)
    code = pc.match_substring_regex(text["code_insee"], "^69[0-9]{3}$")
    bad += pc.sum(pc.invert(code)).as_py() or 0
    communes = pa.array(SCHEMA["fields"][1]["constraints"]["enum"])
    bad += pc.sum(pc.invert(pc.is_in(text["commune"], value_set=communes))).as_py() or 0
    bad += len(typed["id"]) - len(pc.unique(typed["id"]))
    pa.table(typed)
    return bad


def engine_duckdb(csv: Path) -> int:
    import duckdb

    casts = {n: f"TRY_CAST({n} AS BIGINT)" for n in INTEGERS}
    casts |= {n: f"TRY_CAST({n} AS DOUBLE)" for n in NUMBERS}
    casts["date_releve"] = "TRY_CAST(date_releve AS DATE)"
    casts["horodatage"] = "TRY_STRPTIME(horodatage, '%Y-%m-%dT%H:%M:%S')"
    communes = ", ".join(f"'{c}'" for c in SCHEMA["fields"][1]["constraints"]["enum"])
    connection = duckdb.connect()
    connection.sql(f"CREATE TABLE text AS SELECT * FROM read_csv('{csv}', all_varchar=true)")
    typed = ", ".join(f"{cast} AS {name}" for name, cast in casts.items())
    connection.sql(f"CREATE TABLE typed AS SELECT {typed} FROM text")
    counts = ", ".join(f"count({name})" for name in casts)
    before = connection.sql(f"SELECT {counts} FROM text").fetchall()[0]
    after = connection.sql(f"SELECT {counts} FROM typed").fetchall()[0]
    bad = sum(before) - sum(after)
    bad += connection.sql(
        "SELECT count(*) FILTER (WHERE NOT regexp_full_match(code_insee, '69[0-9]{3}'))"
        f" + count(*) FILTER (WHERE commune NOT IN ({communes}))"
        " + count(*) - count(DISTINCT id) FROM text"
    ).fetchall()[0][0]
    connection.sql("SELECT * FROM typed").to_arrow_table()
    return int(bad)


def engine_polars(csv: Path) -> int:
    import polars as pl

    text = pl.read_csv(csv, infer_schema=False)
    typed = text.select(
        *[pl.col(n).cast(pl.Int64, strict=False) for n in INTEGERS],
        *[pl.col(n).cast(pl.Float64, strict=False) for n in NUMBERS],
        pl.col("date_releve").str.to_date("%Y-%m-%d", strict=False),
        pl.col("horodatage").str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False),
    )
    bad = sum(typed[n].null_count() - text[n].null_count() for n in typed.columns)
    bad += int((~text["code_insee"].str.contains(r"^69[0-9]{3}$")).sum())
    bad += int((~text["commune"].is_in(SCHEMA["fields"][1]["constraints"]["enum"])).sum())
    bad += int(typed["id"].is_duplicated().sum())
    typed.to_arrow()
    return bad


ENGINES = {"arrow": engine_arrow, "duckdb": engine_duckdb, "polars": engine_polars}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sans-frictionless", action="store_true")
    parser.add_argument("--stages", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument(
        "--sans-positions",
        action="store_true",
        help="the file without a map (figures to SUBMIT_TABLE_RESULTS.md; no engines)",
    )
    args = parser.parse_args()
    if args.stages:
        print(json.dumps(stages(args.stages, args.publish)))
        return
    if args.engine:
        started = time.perf_counter()
        wrong = ENGINES[args.engine[0]](Path(args.engine[1]))
        print(json.dumps({"seconds": time.perf_counter() - started, "wrong": wrong}))
        return
    duckdb = duckdb_python()
    if args.sans_positions:
        ENGINES.clear()  # their work names the latitude and longitude
    with tempfile.TemporaryDirectory() as folder:
        print(f"Generating {args.rows:,} rows…", flush=True)
        dataset = prepare(Path(folder), args.rows, positions=not args.sans_positions)
        size_mb = (dataset / "releves.csv").stat().st_size / 1e6
        work = Path(folder) / "work"
        work.mkdir()
        timed(
            submit_command(dataset / "absent.csv", dataset / "metadata.yaml"),
            submit_env(work / "started"),
        )  # creates the store the start is measured on
        rounds = []
        for number in range(args.repeat):
            print(f"Round {number + 1}/{args.repeat}…", flush=True)
            rounds.append(
                one_round(dataset, work, duckdb, not args.sans_frictionless, first=not rounds)
            )
            print(json.dumps(rounds[-1]), flush=True)
    report(args, size_mb, rounds)


def report(args: argparse.Namespace, size_mb: float, rounds: list[dict]) -> None:
    median = {k: statistics.median(r[k] for r in rounds if k in r) for k in rounds[0]}
    ratios = {
        "floor": [r["ours"] / r["arrow"] for r in rounds],
        "frictionless": [r["frictionless"] / r["ours"] for r in rounds if "frictionless" in r],
        "anonymise": [r["anonymise"] / r["structure"] for r in rounds],
        "help": [r["help"] for r in rounds],
        "start": [r["start"] for r in rounds],
    }
    ratio = {k: statistics.median(v) for k, v in ratios.items() if v}

    def verdict(met: bool) -> str:
        return "**met**" if met else "**not met**"

    rows = [
        ("floor: pyarrow, read CSV + write Parquet", "arrow"),
        ("floor: DuckDB, read CSV + write Parquet", "duckdb"),
        ("**ours: `opendata soumettre`** (a new dataset's first version)", "ours"),
        ("frictionless validate", "frictionless"),
        ("in process: reading the CSV (part of the structure check)", "read"),
        ("in process: structure check (read + positions + Table Schema)", "structure"),
        ("in process: anonymise stage (no personal data)", "anonymise"),
        (
            "in process: publication (CSV, (Geo)Parquet, GeoJSON and GeoPackage for a map)",
            "publish",
        ),
        ("`python -c pass`", "pass"),
        ("`opendata --help`", "help"),
        ("`opendata soumettre` start: `import opendata.cli, pipelines.submission`", "start"),
        ("`opendata soumettre` of an absent file (start, store, refusal recorded)", "absent"),
    ]
    lines = [
        f"# Submission benchmark ({args.rows:,} rows × 12 columns, {size_mb:.0f} MB CSV"
        + (", without positions: a table, no map)" if args.sans_positions else ")"),
        "",
        f"`bench/submit.py`: medians of {len(rounds)} interleaved rounds, each measure a fresh "
        "process timed from outside (interpreter start included). Machine: 2 cores, shared.",
        "",
        "| run | median (s) | rounds (s) |",
        "|---|---:|---|",
    ]
    for label, key in rows:
        if key in median:
            shown = ", ".join(f"{r[key]:.2f}" for r in rounds if key in r)
            lines.append(f"| {label} | {median[key]:.2f} | {shown} |")
    lines += [
        "",
        "| goal | measured (median of the rounds' ratios) | target | |",
        "|---|---:|---:|---|",
        f"| end to end ÷ pyarrow floor | {ratio['floor']:.1f}× | ≤ {TARGETS['floor']:.0f}× "
        f"| {verdict(ratio['floor'] <= TARGETS['floor'])} |",
    ]
    if "duckdb" in median:
        duck = statistics.median(r["ours"] / r["duckdb"] for r in rounds)
        lines.append(
            f"| end to end ÷ DuckDB floor | {duck:.1f}× | ≤ {TARGETS['floor']:.0f}× "
            f"| {verdict(duck <= TARGETS['floor'])} |"
        )
    if "frictionless" in ratio:
        lines.append(
            f"| frictionless ÷ end to end | {ratio['frictionless']:.1f}× | "
            f"≥ {TARGETS['frictionless']:.0f}× "
            f"| {verdict(ratio['frictionless'] >= TARGETS['frictionless'])} |"
        )
    lines += [
        f"| anonymise stage ÷ structure check | {ratio['anonymise']:.2f}× | "
        f"≤ {TARGETS['anonymise']}× | {verdict(ratio['anonymise'] <= TARGETS['anonymise'])} |",
        f"| `opendata --help` | {ratio['help']:.2f} s ({median['help'] / median['pass']:.1f}× "
        f"`python -c pass`) | ≤ {TARGETS['start']} s "
        f"| {verdict(ratio['help'] <= TARGETS['start'])} |",
        f"| `opendata soumettre` start | {ratio['start']:.2f} s "
        f"({median['start'] / median['pass']:.1f}× `python -c pass`) | ≤ {TARGETS['start']} s "
        f"| {verdict(ratio['start'] <= TARGETS['start'])} |",
        "",
    ]
    if "engine-arrow" in median:
        lines += [
            "Engines, on the structure check's work on this file (every column read as text, "
            "typed with its invalid cells counted, the code's pattern, the communes' list, the "
            "identifier's uniqueness, the typed table handed over as Arrow), in process, "
            "imports excluded, each in its own idiom:",
            "",
            "| engine | median (s) | rounds (s) |",
            "|---|---:|---|",
        ]
        for engine in ENGINES:
            key = f"engine-{engine}"
            shown = ", ".join(f"{r[key]:.2f}" for r in rounds)
            lines.append(f"| {engine} | {median[key]:.2f} | {shown} |")
        lines.append("")
    text = "\n".join(lines) + "\n"
    results = HERE / ("SUBMIT_TABLE_RESULTS.md" if args.sans_positions else "SUBMIT_RESULTS.md")
    kept = results.read_text(encoding="utf-8") if results.exists() else ""
    if ANALYSIS in kept:  # the written analysis below the figures stays
        text += "\n" + kept[kept.index(ANALYSIS) :]
    results.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
