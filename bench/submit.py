"""Benchmark: `opendata soumettre` of a 1,000,000-row × 12-column CSV, end to end, against
its floors and references, in one run (issue #20).

Every measure is a fresh process timed from outside (interpreter start included), and the
measures are interleaved round after round (`--repeat`, 3 by default); each figure is the
median of its rounds:

- floor, pyarrow: read the CSV, write Parquet (`FLOOR_ARROW`);
- floor, DuckDB: the same with DuckDB (`FLOOR_DUCKDB`), from an environment of its own
  (var/submit-bench-venv, created on first run with `pip install duckdb==… pyarrow`);
- ours: `opendata soumettre` into an empty data folder (a first publication);
- frictionless: `frictionless validate` of the same file against the same schema;
- stages: in one process, the structure check (read + positions + Table Schema) and the
  anonymise stage, on this file, which holds no personal data;
- start: `python -c pass`, `opendata --help`, and `opendata soumettre` of a file that is
  not there (every import and the store opened, no data read).

The file is bench/check_publish.py's (same generator, same schema).

    .venv/bin/python bench/submit.py [--rows 1000000] [--repeat 3]

Figures go to bench/SUBMIT_RESULTS.md.
"""

from __future__ import annotations

import argparse
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
DUCKDB_REQUIREMENT = "duckdb==2.0.1"
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
TARGETS = {"floor": 3.0, "frictionless": 20.0, "anonymise": 0.3, "start": 0.3}


def prepare(folder: Path, rows: int) -> Path:
    """The dataset folder: releves.csv, schema.json, metadata.yaml."""
    dataset = folder / "releves"
    dataset.mkdir(parents=True)
    generate(dataset / "releves.csv", rows)
    (dataset / "schema.json").write_text(json.dumps(SCHEMA), encoding="utf-8")
    (dataset / "metadata.yaml").write_text(METADATA, encoding="utf-8")
    return dataset


def duckdb_python() -> Path | None:
    """DuckDB's own environment (a reference only, never a dependency of the project)."""
    python = BENCH_VENV / "bin" / "python"
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        probe = subprocess.run([python, "-c", "import duckdb"], capture_output=True)
        if probe.returncode != 0:
            subprocess.run(
                [python, "-m", "pip", "install", "-q", DUCKDB_REQUIREMENT, "pyarrow"], check=True
            )
    except (subprocess.CalledProcessError, OSError) as error:
        print(f"DuckDB floor skipped: {error}", file=sys.stderr)
        return None
    return python


def timed(
    command: list[str | Path], env: dict[str, str] | None = None, refusal_ok: bool = True
) -> float:
    """Wall time of a command; it must end normally (1 is a refusal, when that is expected)."""
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
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


def one_round(dataset: Path, work: Path, duckdb: Path | None, with_frictionless: bool) -> dict:
    csv, metadata = dataset / "releves.csv", dataset / "metadata.yaml"
    figures: dict[str, float] = {}
    figures["pass"] = timed([sys.executable, "-c", "pass"])
    figures["help"] = timed([BIN / "opendata", "--help"])
    started = work / "started"  # a store that exists already: the start, not its creation
    figures["start"] = timed(submit_command(dataset / "absent.csv", metadata), submit_env(started))
    figures["arrow"] = timed([sys.executable, "-c", FLOOR_ARROW, csv, work / "floor.parquet"])
    if duckdb is not None:
        figures["duckdb"] = timed([duckdb, "-c", FLOOR_DUCKDB, csv, work / "floor.parquet"])
    fresh = work / "submit"
    shutil.rmtree(fresh, ignore_errors=True)
    figures["ours"] = timed(submit_command(csv, metadata), submit_env(fresh), refusal_ok=False)
    stages = subprocess.run(
        [sys.executable, __file__, "--stages", str(dataset)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures.update(json.loads(stages.stdout.splitlines()[-1]))
    if with_frictionless:
        figures["frictionless"] = timed(
            [BIN / "frictionless", "validate", csv, "--schema", dataset / "schema.json"]
        )
    return figures


def stages(dataset: Path) -> dict[str, float]:
    """The structure check and the anonymise stage of the chain, timed in one process."""
    from core.settings import load_settings
    from pipelines.submission import (
        Submission,
        open_settings_store,
        stage_anonymise,
        stage_metadata,
        stage_read,
        stage_structure,
    )

    with tempfile.TemporaryDirectory() as folder:
        os.environ.update(submit_env(Path(folder)))
        settings = load_settings()
        store = open_settings_store(settings)
        submission = Submission.new(
            "ecully", dataset / "releves.csv", dataset / "metadata.yaml", "banc"
        )
        metadata = stage_metadata(submission, settings)
        started = time.perf_counter()
        source = stage_read(submission, metadata)
        checked, structure, _version = stage_structure(submission, metadata, source, store)
        structure_seconds = time.perf_counter() - started
        started = time.perf_counter()
        stage_anonymise(submission, metadata, checked, structure, settings)
        anonymise_seconds = time.perf_counter() - started
    return {"structure": structure_seconds, "anonymise": anonymise_seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sans-frictionless", action="store_true")
    parser.add_argument("--stages", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stages:
        print(json.dumps(stages(args.stages)))
        return
    duckdb = duckdb_python()
    with tempfile.TemporaryDirectory() as folder:
        print(f"Generating {args.rows:,} rows…", flush=True)
        dataset = prepare(Path(folder), args.rows)
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
            rounds.append(one_round(dataset, work, duckdb, not args.sans_frictionless))
            print(json.dumps(rounds[-1]), flush=True)
    report(args, size_mb, rounds)


def report(args: argparse.Namespace, size_mb: float, rounds: list[dict]) -> None:
    median = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
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
        ("**ours: `opendata soumettre`** (first publication)", "ours"),
        ("frictionless validate", "frictionless"),
        ("structure check (read + positions + Table Schema), in process", "structure"),
        ("anonymise stage (no personal data), in process", "anonymise"),
        ("`python -c pass`", "pass"),
        ("`opendata --help`", "help"),
        ("`opendata soumettre` start (file absent: imports, store, refusal)", "start"),
    ]
    lines = [
        f"# Submission benchmark ({args.rows:,} rows × 12 columns, {size_mb:.0f} MB CSV)",
        "",
        f"`bench/submit.py`: medians of {len(rounds)} interleaved rounds, each measure a fresh "
        "process timed from outside (interpreter start included). Machine: 2 cores, shared.",
        "",
        "| run | median (s) | rounds (s) |",
        "|---|---:|---|",
    ]
    for label, key in rows:
        if key in median:
            shown = ", ".join(f"{r[key]:.2f}" for r in rounds)
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
    text = "\n".join(lines) + "\n"
    (HERE / "SUBMIT_RESULTS.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
