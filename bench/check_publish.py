"""Benchmark: check + publish of a 1,000,000-row, 12-column CSV against its Table Schema.

In the same run it times the references: pyarrow's bare CSV read and
`frictionless validate` on the same file and schema; then it injects errors in a
copy and checks that our report and frictionless's list the same errors. Each
measure runs in its own process so that its peak memory (max RSS) is its own.

    .venv/bin/python bench/check_publish.py [--rows 1000000]

Figures go to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

HERE = Path(__file__).resolve().parent
COMMUNES = ["Lyon", "Villeurbanne", "Vénissieux", "Écully", "Vaulx-en-Velin", "Bron", "Caluire"]
CATEGORIES = ["voirie", "propreté", "éclairage", "espaces verts", "stationnement"]

SCHEMA = {
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True}},
        {"name": "commune", "type": "string", "constraints": {"enum": COMMUNES}},
        {"name": "code_insee", "type": "string", "constraints": {"pattern": "69[0-9]{3}"}},
        {"name": "date_releve", "type": "date"},
        {"name": "horodatage", "type": "datetime"},
        {"name": "valeur", "type": "number"},
        {"name": "quantite", "type": "integer", "constraints": {"minimum": 0}},
        {"name": "categorie", "type": "string", "constraints": {"enum": CATEGORIES}},
        {"name": "actif", "type": "boolean"},
        {"name": "latitude", "type": "number", "constraints": {"minimum": 45.4, "maximum": 46.1}},
        {"name": "longitude", "type": "number", "constraints": {"minimum": 4.6, "maximum": 5.2}},
        {"name": "libelle", "type": "string", "constraints": {"maxLength": 60}},
    ],
    "primaryKey": ["id"],
}

# (row index, column, bad value): a spread of every kind of error.
INJECTED_KINDS = [
    ("quantite", "beaucoup"),
    ("quantite", "-3"),
    ("date_releve", "2024-02-30"),
    ("valeur", "12,5"),
    ("commune", "Paris"),
    ("code_insee", "75001"),
    ("actif", "oui"),
    ("latitude", "48.85"),
    ("horodatage", "hier"),
    ("libelle", "x" * 80),
    ("id", ""),
]


def generate(path: Path, rows: int, seed: int = 20261123) -> None:
    rng = np.random.default_rng(seed)
    days = np.datetime64("2015-01-01") + rng.integers(0, 3650, rows).astype("timedelta64[D]")
    seconds = rng.integers(0, 86400, rows).astype("timedelta64[s]")
    table = pa.table(
        {
            "id": np.arange(1, rows + 1),
            "commune": np.array(COMMUNES)[rng.integers(0, len(COMMUNES), rows)],
            "code_insee": np.char.add(
                "69", np.char.zfill(rng.integers(1, 999, rows).astype(str), 3)
            ),
            "date_releve": days.astype(str),
            "horodatage": np.char.replace(
                (days.astype("datetime64[s]") + seconds).astype(str), " ", "T"
            ),
            "valeur": np.round(rng.normal(100, 30, rows), 3),
            "quantite": rng.integers(0, 500, rows),
            "categorie": np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), rows)],
            "actif": rng.integers(0, 2, rows).astype(bool),
            "latitude": np.round(rng.uniform(45.6, 45.9, rows), 6),
            "longitude": np.round(rng.uniform(4.7, 5.0, rows), 6),
            "libelle": np.char.add("Relevé n°", np.arange(rows).astype(str)),
        }
    )
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="needed"))


def inject_errors(source: Path, target: Path, count: int, seed: int = 7) -> None:
    table = pacsv.read_csv(
        source,
        convert_options=pacsv.ConvertOptions(
            column_types={f["name"]: pa.string() for f in SCHEMA["fields"]}
        ),
    )
    rng = np.random.default_rng(seed)
    rows = rng.choice(table.num_rows, size=count, replace=False)
    columns = {name: table.column(name).to_pylist() for name in table.column_names}
    for number, row in enumerate(rows):
        column, value = INJECTED_KINDS[number % len(INJECTED_KINDS)]
        columns[column][row] = value
    columns["id"][int(rows[-1])] = columns["id"][int(rows[-2]) - 1 if rows[-2] else 1]
    pacsv.write_csv(
        pa.table(columns), target, write_options=pacsv.WriteOptions(quoting_style="needed")
    )


# --- phases, each in its own process ----------------------------------------------------------


def phase_arrow_read(path: Path) -> dict:
    table = pacsv.read_csv(path)
    return {"rows": table.num_rows}


def phase_frictionless(path: Path) -> dict:
    import frictionless

    resource_ = frictionless.Resource(
        path=path.name,
        basepath=str(path.parent),
        schema=frictionless.Schema.from_descriptor(SCHEMA),
    )
    report = resource_.validate(limit_errors=1_000_000)
    errors = sorted(
        {
            (e.type, e.row_number, None if e.type == "primary-key" else e.field_name)
            for t in report.tasks
            for e in t.errors
        }
    )
    return {"valid": report.valid, "errors": errors}


def phase_check_publish(path: Path) -> dict:
    from catalog.store import open_store
    from core import clock
    from core.records import NewRelease, SubmissionRecord
    from pipelines.publish import CheckedData, publish
    from pipelines.read.stage import read_source
    from pipelines.validate import FRICTIONLESS_TYPES, validate

    source = read_source(path)
    result = validate(source, SCHEMA)
    errors = sorted(
        {
            (FRICTIONLESS_TYPES[p.rule], p.row, None if p.rule == "cle-primaire" else p.column)
            for p in result.report.problems
        }
    )
    published = None
    if result.report.valid:
        with tempfile.TemporaryDirectory() as folder:
            store = open_store(f"sqlite:///{folder}/catalog.db", Path(folder) / "files")
            draft = NewRelease(
                dataset="bench",
                producer="lyon",
                content_hash="",
                row_count=0,
                distributions=[],
                metadata={},
                licence={},
                structure={"schema": SCHEMA},
                structure_version=1,
            )
            record = SubmissionRecord(
                id="bench",
                producer="lyon",
                dataset="bench",
                channel="bench",
                received_at=clock.now(),
                status="",
                release=None,
            )
            outcome = publish(store, CheckedData(result.typed, None, None), draft, record)
            published = {d.format: d.size for d in outcome.release.distributions}
    return {"valid": result.report.valid, "errors": errors, "published": published}


PHASES = {
    "arrow": phase_arrow_read,
    "frictionless": phase_frictionless,
    "ours": phase_check_publish,
}


def run_phase(name: str, path: Path) -> dict:
    """Run one phase in a fresh process; return its output, wall time and peak memory."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(done.stdout)
    result["seconds"] = time.perf_counter() - started - result.pop("startup_seconds")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--errors", type=int, default=550)
    parser.add_argument("--phase")
    parser.add_argument("path", nargs="?")
    parser.add_argument("--generate", action="store_true")
    args = parser.parse_args()
    if args.generate:
        generate(Path(args.path) / "releves.csv", args.rows)
        inject_errors(
            Path(args.path) / "releves.csv", Path(args.path) / "releves-erreurs.csv", args.errors
        )
        return
    if args.phase:
        started = time.perf_counter()
        result = PHASES[args.phase](Path(args.path))
        result["startup_seconds"] = 0.0
        result["inner_seconds"] = time.perf_counter() - started
        result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as folder:
        clean, dirty = Path(folder) / "releves.csv", Path(folder) / "releves-erreurs.csv"
        print(f"Generating {args.rows:,} rows…", flush=True)
        # In a child process, so that this parent stays small: children inherit its peak RSS.
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--generate",
                "--rows",
                str(args.rows),
                "--errors",
                str(args.errors),
                folder,
            ],
            check=True,
        )
        size_mb = clean.stat().st_size / 1e6
        figures = {}
        for name in ("arrow", "ours", "frictionless"):
            print(f"Running {name}…", flush=True)
            figures[name] = run_phase(name, clean)
        print("Running ours and frictionless on the copy with injected errors…", flush=True)
        dirty_ours, dirty_ref = run_phase("ours", dirty), run_phase("frictionless", dirty)
    report(args, size_mb, figures, dirty_ours, dirty_ref)


def report(args, size_mb: float, figures: dict, dirty_ours: dict, dirty_ref: dict) -> None:
    ours, ref, arrow = figures["ours"], figures["frictionless"], figures["arrow"]
    same = [tuple(e) for e in dirty_ours["errors"]] == [tuple(e) for e in dirty_ref["errors"]]
    ratio = ref["inner_seconds"] / ours["inner_seconds"]
    lines = [
        f"# Check + publish benchmark ({args.rows:,} rows × 12 columns, {size_mb:.0f} MB CSV)",
        "",
        "| run | time (s) | peak memory (MB) |",
        "|---|---:|---:|",
        f"| pyarrow bare CSV read | {arrow['inner_seconds']:.2f} | {arrow['peak_mb']:.0f} |",
        f"| **check + publish (ours)** | {ours['inner_seconds']:.2f} | {ours['peak_mb']:.0f} |",
        f"| frictionless validate | {ref['inner_seconds']:.2f} | {ref['peak_mb']:.0f} |",
        "",
        f"- check + publish is **{ratio:.1f}×** faster than frictionless's validation alone "
        f"(target ≥ 10×): {'met' if ratio >= 10 else 'NOT met'}.",
        f"- check + publish takes {ours['inner_seconds'] / arrow['inner_seconds']:.1f}× "
        "pyarrow's bare read.",
        f"- clean file: ours valid={ours['valid']}, frictionless valid={ref['valid']}; "
        f"published {ours['published']}.",
        f"- copy with {args.errors} injected errors: ours reports {len(dirty_ours['errors'])}, "
        f"frictionless {len(dirty_ref['errors'])}; identical (type, row, field) lists: "
        f"**{same}**.",
        "",
        "Times exclude interpreter start-up; each run is a separate process, so peak memory "
        "(max RSS) is its own. Machine: 2 cores.",
    ]
    text = "\n".join(lines) + "\n"
    (HERE / "RESULTS.md").write_text(text, encoding="utf-8")
    print(text)
    if not same:
        only_ours = set(map(tuple, dirty_ours["errors"])) - set(map(tuple, dirty_ref["errors"]))
        only_ref = set(map(tuple, dirty_ref["errors"])) - set(map(tuple, dirty_ours["errors"]))
        print("only ours:", sorted(only_ours)[:10], "\nonly frictionless:", sorted(only_ref)[:10])


if __name__ == "__main__":
    main()
