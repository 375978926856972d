"""Fuzz every reader of the read stage with atheris (libFuzzer, coverage-guided).

Each target feeds the fuzzer's bytes to `pipelines.read.read_source` as one kind of file
(or as one part inside an otherwise valid container, to reach the parsers behind it) for
a bounded time, in a child process of its own. A finding is any exception other than
`SubmissionRejected`, a refusal by the read stage's catch-all rule `fichier-illisible`
(an error no guard anticipated), an input running longer than `--timeout`, or memory
beyond `--rss-mb`. When a child stops on a finding, the parent keeps its input under
`--artifacts` and starts it again for the time left, so that one bug does not end the run.

    .venv/bin/python bench/fuzz_readers.py --seconds 60              # every target
    .venv/bin/python bench/fuzz_readers.py --seconds 20 --targets csv,kml --write

Seeds are the hostile corpus of the tests (tests/hostile_corpus.py) plus valid files.
`--write` puts the figures in bench/FUZZ_RESULTS.md (keeping its « Findings fixed » part).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "FUZZ_RESULTS.md"
HISTORY = "## Findings fixed"
CATCH_ALL = "fichier-illisible"
# A forged sheet row number makes the reader count up to Excel's 1,048,576 rows (about a
# second) before refusing: lower bounds keep the fuzzer fast on the same branches.
HARNESS_LIMITS = {"MAX_XLSX_ROWS": 20_000, "MAX_XLSX_CELLS": 500_000}


@dataclass(frozen=True)
class Target:
    name: str
    filename: str  # the upload's name: its extension picks the reader
    extension: str  # seeds from the hostile corpus with this extension
    member: str | None = None  # the fuzzed bytes are this part of a valid container
    what: str = ""


TARGETS = {
    t.name: t
    for t in (
        Target("csv", "f.csv", ".csv", what="CSV, any bytes"),
        Target("xlsx", "f.xlsx", ".xlsx", what="whole XLSX (zip)"),
        Target("xlsx-feuille", "f.xlsx", ".xlsx", "xl/worksheets/sheet1.xml", "XLSX sheet XML"),
        Target("geojson", "f.geojson", ".geojson", what="GeoJSON"),
        Target("shapefile", "f.zip", ".zip", what="whole zipped Shapefile"),
        Target("shapefile-shp", "f.zip", ".zip", "bancs.shp", ".shp inside a valid zip"),
        Target("shapefile-dbf", "f.zip", ".zip", "bancs.dbf", ".dbf inside a valid zip"),
        Target("gpkg", "f.gpkg", ".gpkg", what="GeoPackage (SQLite)"),
        Target("kml", "f.kml", ".kml", what="KML"),
        Target("gml", "f.gml", ".gml", what="GML"),
    )
}


# --- inside the child: one target under atheris ----------------------------------------------


def container(target: Target) -> dict[str, bytes]:
    """The valid container whose `target.member` the fuzzer replaces."""
    sys.path.insert(0, str(ROOT / "tests"))
    import hostile_corpus

    if target.name.startswith("xlsx"):
        return dict(hostile_corpus.xlsx_parts(hostile_corpus.SHEET))
    return hostile_corpus.shapefile_parts(hostile_corpus.bench_frame())


def pack(parts: dict[str, bytes], member: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, data if name == member else content)
    return buffer.getvalue()


class Finding(Exception):
    """A refusal by the catch-all: an exception no guard of the reader anticipated."""


def run_child(target: Target, options: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["pipelines"]):
        from pipelines import read
        from pipelines.read import read_source
        from pipelines.report import SubmissionRejected
    warnings.simplefilter("ignore")
    for name, value in HARNESS_LIMITS.items():  # same code paths, cheaper inputs
        setattr(read, name, value)
    parts = container(target) if target.member else {}
    path = Path(tempfile.gettempdir()) / target.filename  # the parent's folder (TMPDIR)

    def one_input(data: bytes) -> None:
        path.write_bytes(pack(parts, target.member, data) if target.member else data)
        try:
            read_source(path)
        except SubmissionRejected as refusal:
            if any(p.rule == CATCH_ALL for p in refusal.report.problems):
                raise Finding(refusal.report.problems[0].message) from refusal.__cause__

    atheris.Setup([sys.argv[0], *options], one_input)
    atheris.Fuzz()


# --- the parent: seeds, children, figures ----------------------------------------------------


def write_seeds(target: Target, folder: Path) -> int:
    sys.path.insert(0, str(ROOT / "tests"))
    import hostile_corpus

    count = 0
    for case in hostile_corpus.build_corpus():
        if not case.filename.endswith(target.extension) or len(case.content) > 200_000:
            continue
        content = case.content
        if target.member:
            try:
                with zipfile.ZipFile(io.BytesIO(case.content)) as archive:
                    content = archive.read(target.member)
            except (zipfile.BadZipFile, KeyError, OSError, ValueError, RuntimeError):
                continue
        (folder / f"seed-{count:04d}").write_bytes(content)
        count += 1
    return count


@dataclass
class Figures:
    target: str
    what: str
    seconds: float = 0.0
    executions: int = 0
    findings: list[str] = field(default_factory=list)
    seeds: int = 0

    @property
    def rate(self) -> float:
        return self.executions / self.seconds if self.seconds else 0.0


EXECUTED = re.compile(r"stat::number_of_executed_units: (\d+)")
DONE = re.compile(r"Done (\d+) runs in (\d+) second")
STATUS = re.compile(r"^#(\d+)\s", re.MULTILINE)
ARTIFACT = re.compile(r"Test unit written to (\S+)")
SUMMARY = re.compile(r"(ERROR: libFuzzer: .*|Uncaught Python exception: .*)")
ERROR_LINE = re.compile(r"^(\w+\.)*\w*(Error|Exception|Finding|Warning)\b.*")


def fuzz_target(target: Target, seconds: float, args: argparse.Namespace) -> Figures:
    figures = Figures(target.name, target.what)
    artifacts = Path(args.artifacts) / target.name
    artifacts.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix=f"fuzz-corpus-{target.name}-") as corpus,
        tempfile.TemporaryDirectory(prefix=f"fuzz-work-{target.name}-") as work,
    ):
        figures.seeds = write_seeds(target, Path(corpus))
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 1:
            started = time.monotonic()
            output = run_once(target, int(left), corpus, work, artifacts, args)
            figures.seconds += time.monotonic() - started
            figures.executions += executed(output)
            artifact = ARTIFACT.search(output)
            if artifact is None:
                break  # the time ran out without a finding
            figures.findings.append(f"{describe(output)} — {artifact.group(1)}")
    return figures


def run_once(target: Target, seconds: int, corpus: str, work: str, artifacts: Path, args) -> str:
    """One child fuzzing until its time is up or a finding; its output. Everything it
    writes (the input file, the readers' folders, even when killed) stays in `work`."""
    options = [
        f"-max_total_time={seconds}",
        f"-timeout={args.timeout}",
        f"-rss_limit_mb={args.rss_mb}",
        "-max_len=65536",
        "-print_final_stats=1",
        f"-artifact_prefix={artifacts}/",
        corpus,
    ]
    command = [sys.executable, __file__, "--child", target.name, "--", *options]
    environment = {**os.environ, "PYTHONWARNINGS": "ignore", "TMPDIR": work}
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        errors="replace",
        env=environment,
        check=False,
        timeout=seconds + args.timeout * 3 + 120,
    )
    return done.stdout + done.stderr


def executed(output: str) -> int:
    for pattern in (EXECUTED, DONE):
        found = pattern.findall(output)
        if found:
            value = found[-1]
            return int(value[0] if isinstance(value, tuple) else value)
    statuses = STATUS.findall(output)
    return int(statuses[-1]) if statuses else 0


def describe(output: str) -> str:
    """The exception that stopped the child (the cause of a catch-all refusal first)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if ERROR_LINE.match(line)]
    if errors:
        return errors[0][:300]
    found = SUMMARY.search(output)
    return found.group(1)[:300] if found else "arrêt sans message"


def report(results: list[Figures], seconds: float) -> str:
    total = sum(r.executions for r in results)
    elapsed = sum(r.seconds for r in results)
    lines = [
        "# Fuzzing the readers (atheris)",
        "",
        f"`bench/fuzz_readers.py --seconds {seconds:g}`: atheris "
        f"{_atheris_version()} (libFuzzer), Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores shared with other work. A finding is an exception other "
        "than `SubmissionRejected`, a refusal by the catch-all rule `fichier-illisible`, an "
        "input over the per-input time limit, or memory over the limit. Harness limits: "
        f"{', '.join(f'{k}={v}' for k, v in HARNESS_LIMITS.items())} (the code path of "
        "these refusals is the same, each forged input costs less). Executions per second "
        "count each child's start-up (about 4 s) in its time.",
        "",
        "| target | fuzzed input | seeds | executions | exec/s | findings |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.target} | {r.what} | {r.seeds} | {r.executions} | {r.rate:.0f} | "
            f"{len(r.findings)} |"
        )
    rate = total / elapsed if elapsed else 0
    lines += ["", f"Total: {total} executions in {elapsed:.0f} s ({rate:.0f} exec/s)."]
    findings = [(r.target, f) for r in results for f in r.findings]
    lines += ["", "Findings of this run:" if findings else "No finding in this run."]
    lines += [f"- {target}: {finding}" for target, finding in findings]
    return "\n".join(lines) + "\n"


def _atheris_version() -> str:
    from importlib.metadata import version

    return version("atheris")


def main() -> None:
    if "--child" in sys.argv:
        position = sys.argv.index("--child")
        options = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
        run_child(TARGETS[sys.argv[position + 1]], options)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="per target")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated")
    parser.add_argument("--timeout", type=int, default=20, help="seconds per input")
    parser.add_argument("--rss-mb", type=int, default=3072, help="memory limit per child")
    parser.add_argument("--artifacts", default=str(ROOT / "var" / "fuzz"), help="findings")
    parser.add_argument("--write", action="store_true", help=f"write {RESULTS.name}")
    args = parser.parse_args()
    results = []
    for name in args.targets.split(","):
        figures = fuzz_target(TARGETS[name], args.seconds, args)
        print(
            f"{name}: {figures.executions} executions, {figures.rate:.0f}/s, "
            f"{len(figures.findings)} finding(s)",
            flush=True,
        )
        for finding in figures.findings:
            print(f"  {finding}", flush=True)
        results.append(figures)
    text = report(results, args.seconds)
    print(text)
    if args.write:
        RESULTS.write_text(text + kept_history(), encoding="utf-8")


def kept_history() -> str:
    """The hand-written history below the figures (findings fixed), kept across runs."""
    if not RESULTS.exists():
        return ""
    previous = RESULTS.read_text(encoding="utf-8")
    position = previous.find(HISTORY)
    return "" if position < 0 else "\n" + previous[position:]


if __name__ == "__main__":
    main()
