"""Benchmark of XLSX readers (issue #15): our openpyxl reader against python-calamine and
fastexcel, on generated sheets and the repository's real workbooks.

Every reader turns the first sheet into the same kind of Arrow table of text cells:

- `openpyxl`: `pipelines.read.xlsx.read_xlsx` as it is (container checks, openpyxl in read-only
  streaming mode, `_cell_to_text` on every cell);
- `calamine`: the same container checks and the same `_read_sheet` (hence the same
  `_cell_to_text`), fed with python-calamine's rows instead of openpyxl's;
- `calamine-brut`: python-calamine's rows alone, without any conversion (the floor);
- `fastexcel`: the container checks then fastexcel's own Arrow table, every column read as
  text (`dtypes="string"`): its text is not ours (dates « 2026-03-12 00:00:00 », untrimmed
  text…), so it only tells how fast a fully Rust path would be.

Each (file, reader) run is a child process of its own, so that its peak memory (`VmHWM`
of /proc/self/status, which counts Rust allocations too, unlike tracemalloc) is its own;
runs are interleaved (run 1 of every reader on every file, then run 2…) and the median of
`--runs` is kept, with ratios against the openpyxl reader of the same run. The tables are
compared cell by cell (a digest of the Arrow table) with the openpyxl reader's.

    .venv/bin/python bench/xlsx_readers.py                      # 10k, 100k, 500k rows
    .venv/bin/python bench/xlsx_readers.py --rows 10000 --runs 1 # smoke run
    .venv/bin/python bench/xlsx_readers.py --write              # figures into XLSX_RESULTS.md
    .venv/bin/python bench/xlsx_readers.py --safety --write     # hostile files, cell texts

`--safety` reads every XLSX case of tests/hostile_corpus.py (plus two sparse sheets) through
`read_source` with each reader, in a child whose address space is bounded, and compares the
text each candidate gives to cells of every number format and of hand-written XML (errors,
formulas, escapes, long numbers) with today's.

Generated workbooks are cached under bench/out/xlsx/ (12 columns of mixed types: text with
accents, integers, decimals, dates, date-times, booleans, percentages, empty cells).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out" / "xlsx"
RESULTS = HERE / "XLSX_RESULTS.md"
BEGIN, END = "<!-- mesures -->", "<!-- /mesures -->"
REAL_FILES = sorted((ROOT / "samples").rglob("*.xlsx")) + sorted((ROOT / "tests").rglob("*.xlsx"))
READERS = ("openpyxl", "calamine", "calamine-brut", "fastexcel")
REFERENCE = "openpyxl"
CHILD_TIMEOUT = 1800

COMMUNES = ["Vaulx-en-Velin", "Villeurbanne", "Écully", "Bron", "Saint-Priest",
            "Décines-Charpieu", "Vénissieux", "Caluire-et-Cuire", "Oullins-Pierre-Bénite",
            "Sainte-Foy-lès-Lyon"]  # fmt: skip
WORDS = ["association", "sportive", "théâtre", "école", "médiathèque", "jardins", "partagés",
         "cœur", "quartier", "fête", "musique", "solidarité", "été", "enfance", "âge"]  # fmt: skip
HEADER = ["id", "commune", "association", "montant_eur", "adherents", "date_vote",
          "mise_a_jour", "versee", "taux", "code_postal", "siret", "commentaire"]  # fmt: skip


# --- Workbooks -------------------------------------------------------------------------------


def generated(rows: int) -> Path:
    """A workbook of `rows` data rows × 12 mixed columns, written once (openpyxl write-only)."""
    import openpyxl
    from openpyxl.cell import WriteOnlyCell

    path = OUT / f"genere-{rows}.xlsx"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    rng = random.Random(rows)
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("subventions")
    sheet.append(HEADER)
    start = date(2015, 1, 1)
    for number in range(1, rows + 1):
        taux = WriteOnlyCell(sheet, value=round(rng.random(), 4))
        taux.number_format = "0.00%"
        values: list[Any] = [
            number,
            rng.choice(COMMUNES),
            " ".join(rng.choices(WORDS, k=rng.randint(2, 5))).capitalize(),
            round(rng.uniform(50, 80_000), 2)
            if rng.random() > 0.1
            else float(rng.randint(1, 99) * 100),
            rng.randint(0, 5000),
            start + timedelta(days=rng.randint(0, 4000)),
            datetime(2024, 1, 1) + timedelta(seconds=rng.randint(0, 60_000_000)),
            rng.random() > 0.3,
            taux,
            f"69{rng.randint(0, 999):03d}",
            rng.randint(10**13, 10**14 - 1),
            None if rng.random() < 0.5 else f"Dossier n° {rng.randint(1, 9999)} — à revoir",
        ]
        for column in range(1, 11):  # about 3 % of empty cells outside the id
            if rng.random() < 0.03:
                values[column] = None
        sheet.append(values)
    partial = path.with_suffix(".partiel")
    book.save(partial)
    partial.rename(path)
    return path


# --- One run, in a child process ---------------------------------------------------------------


def vm_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def table_digest(table: Any) -> str:
    """The cells of a table of text (names and values), whatever its chunking."""
    digest = hashlib.sha256(json.dumps(table.column_names).encode())
    for column in table.columns:
        for value in column.to_pylist():
            digest.update(b"\x00" if value is None else b"\x01" + value.encode() + b"\x02")
    return digest.hexdigest()


def calamine_sheet(path: Path) -> Any:
    """What `read_xlsx` would be on python-calamine: the same container checks, the same
    `_read_sheet` (rules, limits, French messages, `_cell_to_text`), calamine's rows."""
    import python_calamine

    from core.problems import reject
    from pipelines.read import STAGE, xlsx

    xlsx._check_xlsx_container(path)
    try:
        book = python_calamine.CalamineWorkbook.from_path(path)
    except python_calamine.CalamineError as error:
        raise reject(
            STAGE,
            "xlsx-illisible",
            f"Le classeur {path.name} est illisible : ce n'est pas un classeur Excel (.xlsx) "
            f"valide ({type(error).__name__}).",
        ) from error
    with book:
        kinds = [meta.typ for meta in book.sheets_metadata]
        if python_calamine.SheetTypeEnum.WorkSheet not in kinds:
            raise reject(
                STAGE, "fichier-vide", f"Le classeur {path.name} n'a aucune feuille."
            )
        try:  # the whole sheet, densified in Rust memory, before any row reaches Python
            sheet = book.get_sheet_by_index(kinds.index(python_calamine.SheetTypeEnum.WorkSheet))
        except python_calamine.CalamineError as error:
            raise reject(
                STAGE,
                "xlsx-illisible",
                f"Le classeur {path.name} est illisible ({type(error).__name__}).",
            ) from error
        # iter_rows starts at row 1 but at the first used column: pad back to column A
        padding = [None] * (sheet.start or (0, 0))[1]
        return xlsx._read_sheet((padding + row for row in sheet.iter_rows()), path.name)


def read_with(reader: str, path: Path) -> tuple[Any, int]:
    """The Arrow table (None for the raw reader) and the number of data rows."""
    from pipelines.read import xlsx

    if reader == "openpyxl":
        source = xlsx.read_xlsx(path)
        return source.table, source.table.num_rows
    if reader == "calamine":
        source = calamine_sheet(path)
        return source.table, source.table.num_rows
    if reader == "calamine-brut":
        import python_calamine

        with python_calamine.CalamineWorkbook.from_path(path) as book:
            count = sum(1 for _ in book.get_sheet_by_index(0).iter_rows())
        return None, count - 1
    if reader == "fastexcel":
        import fastexcel

        xlsx._check_xlsx_container(path)
        table = fastexcel.read_excel(str(path)).load_sheet(0, dtypes="string").to_arrow()
        return table, table.num_rows
    raise ValueError(reader)


def child(reader: str, path: Path) -> None:
    """Import everything first (its memory is the baseline), then time the read alone."""
    from pipelines.read import stage  # noqa: F401

    for candidate in ("python_calamine", "fastexcel"):  # imported by every reader alike
        with contextlib.suppress(ImportError):
            importlib.import_module(candidate)

    before = vm_kib("VmHWM")
    started = time.perf_counter()
    table, rows = read_with(reader, path)
    seconds = time.perf_counter() - started
    peak = vm_kib("VmHWM")
    digest = table_digest(table) if table is not None else ""
    print(json.dumps({"seconds": seconds, "peak_kib": peak, "base_kib": before, "rows": rows,
                      "digest": digest}))  # fmt: skip


@dataclass
class Run:
    seconds: float
    peak_mib: float
    extra_mib: float
    rows: int
    digest: str


def run_child(reader: str, path: Path) -> Run | str:
    """One measured read; a failure's last line instead (an exception, a crash)."""
    command = [sys.executable, __file__, "--child", reader, str(path)]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=CHILD_TIMEOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines() or [f"code {done.returncode}"]
        return f"échec (code {done.returncode}) : {lines[-1][:160]}"
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return Run(
        seconds=found["seconds"],
        peak_mib=found["peak_kib"] / 1024,
        extra_mib=(found["peak_kib"] - found["base_kib"]) / 1024,
        rows=found["rows"],
        digest=found["digest"],
    )


# --- Safety and cell semantics of the candidates -------------------------------------------


SAFETY_MARKERS = ("<!-- securite -->", "<!-- /securite -->")
SAFETY_READERS = ("openpyxl", "calamine", "fastexcel")
SAFETY_HEADROOM = 4 * 1024**3  # address space a safety child may add to what imports took
SIGNALS = {-6: "abandon du processus (SIGABRT)", -9: "processus tué (SIGKILL)"}


def fastexcel_sheet(path: Path) -> Any:
    """fastexcel behind the same container checks, as a SourceTable for `read_source`."""
    import fastexcel

    from pipelines.read import xlsx
    from pipelines.read.table import SourceTable

    xlsx._check_xlsx_container(path)
    table = fastexcel.read_excel(str(path)).load_sheet(0, dtypes="string").to_arrow()
    return SourceTable(table=table, source_format="xlsx")


def hostile_cases() -> list[tuple[str, bytes, str, dict[str, Any]]]:
    """The test suite's hostile workbooks (tests/hostile_corpus.py), plus sheets of two cells
    whose far corners make a dense reader hold rows × columns cells: (name, bytes, what the
    suite expects, limits patched in pipelines.read.text/xlsx, pipelines.safety)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from hostile_corpus import SHEET, row, xlsx_cases, xlsx_parts, zip_bytes

    cases = [
        (c.name, c.content, ", ".join(sorted(c.rules)) or "lu", c.limits) for c in xlsx_cases()
    ]
    for corner in ("XFD4000", "XFD1048576"):
        content = zip_bytes(xlsx_parts(SHEET + row(int(corner[3:]), [(corner[:3], 3)])))
        cases.append((f"xlsx/creux-A1-{corner} (ajouté)", content, "lu ou refusé, borné", {}))
    return cases


def safety_child(reader: str, path: Path, limits: str) -> None:
    """`read_source` on one hostile file with `reader` as the XLSX reader, in a bounded
    address space: an unbounded allocation fails here instead of swapping the machine."""
    import resource

    from core.problems import SubmissionRejected
    from pipelines import safety
    from pipelines.read import stage, text, xlsx

    for candidate in ("python_calamine", "fastexcel"):
        with contextlib.suppress(ImportError):
            importlib.import_module(candidate)
    space = vm_kib("VmSize") * 1024 + SAFETY_HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (space, space))
    modules = {"text": text, "xlsx": xlsx, "safety": safety}
    for key, value in json.loads(limits).items():
        module, name = key.split(".")
        setattr(modules[module], name, value)
    xlsx.read_xlsx = {"calamine": calamine_sheet, "fastexcel": fastexcel_sheet}.get(
        reader, xlsx.read_xlsx
    )
    started = time.perf_counter()
    try:
        source = stage.read_source(path)
        rules = sorted({problem.rule for problem in source.problems.problems})
        outcome = f"lu, {source.table.num_rows} ligne(s)" + "".join(f", {r}" for r in rules)
    except SubmissionRejected as refusal:
        rules = sorted({problem.rule for problem in refusal.report.problems})
        outcome = "refusé : " + ", ".join(rules)
    seconds = time.perf_counter() - started
    print(json.dumps({"outcome": outcome, "seconds": seconds, "peak_kib": vm_kib("VmHWM")}))


def run_safety_child(reader: str, path: Path, limits: dict[str, Any]) -> str:
    command = [sys.executable, __file__, "--safety-child", reader, str(path), json.dumps(limits)]
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return "bloqué (> 300 s)"
    if done.returncode != 0:
        allocation = re.search(r"memory allocation of (\d+) bytes failed", done.stderr)
        tried = f", allocation de {int(allocation[1]) / 1024**3:.0f} Gio" if allocation else ""
        return SIGNALS.get(done.returncode, f"échec (code {done.returncode})") + tried
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return f"{found['outcome']} ({found['seconds']:.2f} s, pic {found['peak_kib'] / 1024:.0f} Mio)"


def hostile_table() -> str:
    lines = [
        "| Cas | Attendu par les tests | " + " | ".join(SAFETY_READERS) + " |",
        "| --- | --- |" + " --- |" * len(SAFETY_READERS),
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    for name, content, expected, limits in hostile_cases():
        path = OUT / "hostile.xlsx"
        path.write_bytes(content)
        outcomes = [run_safety_child(reader, path, limits) for reader in SAFETY_READERS]
        print(name, outcomes, flush=True)
        lines.append(f"| {name} | {expected} | " + " | ".join(outcomes) + " |")
    return "\n".join(lines)


NUMBER_FORMATS = ["General", "0", "0.00", "#,##0.00 €", "0.00%", "0%", "dd/mm/yyyy", "d/m/yy",
                  "mmm-yy", "[$-40C]d mmmm yyyy", "[$-fr-FR]dddd d mmmm yyyy", "dd/mm/yyyy hh:mm",
                  "h:mm", "hh:mm:ss", "[h]:mm:ss", "mm:ss", "yyyy-mm-dd", "@", '0.00" m²"',
                  '"Semaine "0', "0.00E+00", "# ?/?", "[Red]0.00", 'dd"/"mm"/"yyyy', "yyyy",
                  "m/d/yyyy h:mm AM/PM", "mmmm", "ddd", "[$€-40C] #,##0.00", "[mm]:ss"]  # fmt: skip
FORMAT_VALUES = [45000, 45000.5, 0.75, 1.5, 0, 1, 44927.999988, 60, 61, -1]
RAW_CELLS = [  # (case, the cell's XML as producers write it)
    ("erreur #DIV/0!", '<c r="B{n}" t="e"><v>#DIV/0!</v></c>'),
    ("erreur #N/A d'une formule", '<c r="B{n}" t="e"><f>NA()</f><v>#N/A</v></c>'),
    ('date ISO (t="d")', '<c r="B{n}" t="d"><v>2026-03-12T00:00:00</v></c>'),
    ('date-heure ISO (t="d")', '<c r="B{n}" t="d"><v>2026-03-12T10:20:30</v></c>'),
    ("formule texte, valeur en cache", '<c r="B{n}" t="str"><f>A1&amp;"x"</f><v>ab</v></c>'),
    ("formule nombre, valeur en cache", '<c r="B{n}"><f>1+1</f><v>2</v></c>'),
    ("formule sans valeur en cache", '<c r="B{n}"><f>1+1</f></c>'),
    ("formule booléenne", '<c r="B{n}" t="b"><f>TRUE()</f><v>1</v></c>'),
    ("formule vers un classeur externe", '<c r="B{n}"><f>[1]Feuil1!A1</f><v>42</v></c>'),
    ("échappement _x000D_", '<c r="B{n}" t="inlineStr"><is><t>a_x000D_b</t></is></c>'),
    ("texte enrichi", '<c r="B{n}" t="inlineStr"><is><r><t>ri</t></r><r><t>che</t></r></is></c>'),
    ("entités XML prédéfinies", '<c r="B{n}" t="inlineStr"><is><t>&#233;&amp;&lt;</t></is></c>'),
    ("nombre 1E3", '<c r="B{n}"><v>1E3</v></c>'),
    ("entier de 20 chiffres", '<c r="B{n}"><v>12345678901234567890</v></c>'),
    ("1.0000000000000002", '<c r="B{n}"><v>1.0000000000000002</v></c>'),
    ("zéro négatif", '<c r="B{n}"><v>-0</v></c>'),
    ("espaces seuls", '<c r="B{n}" t="inlineStr"><is><t xml:space="preserve">  </t></is></c>'),
    ("booléen faux", '<c r="B{n}" t="b"><v>0</v></c>'),
]


def semantics_workbooks() -> list[Path]:
    """Two workbooks of (case, value) rows: every number format × value through openpyxl,
    and cells written as raw XML (errors, formulas, escapes, long numbers…)."""
    import openpyxl

    sys.path.insert(0, str(ROOT / "tests"))
    from hostile_corpus import xlsx_parts, zip_bytes

    OUT.mkdir(parents=True, exist_ok=True)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["cas", "valeur"])
    for number_format in NUMBER_FORMATS:
        for value in FORMAT_VALUES:
            sheet.append([f"{value} au format « {number_format} »", value])
            sheet.cell(sheet.max_row, 2).number_format = number_format
    formats = OUT / "semantique-formats.xlsx"
    book.save(formats)
    rows = ['<row r="1"><c r="A1" t="inlineStr"><is><t>cas</t></is></c>'
            '<c r="B1" t="inlineStr"><is><t>valeur</t></is></c></row>']  # fmt: skip
    for n, (case, cell) in enumerate(RAW_CELLS, start=2):
        name = case.replace("&", "&amp;").replace("<", "&lt;")
        rows.append(
            f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>{name}</t></is></c>'
            f"{cell.format(n=n)}</row>"
        )
    raw = OUT / "semantique-cellules.xlsx"
    raw.write_bytes(zip_bytes(xlsx_parts("".join(rows))))
    return [formats, raw]


def semantics_table() -> str:
    """The cells whose text differs from today's reader, per candidate."""
    from pipelines.read import xlsx

    lines = ["| Cas | openpyxl (aujourd'hui) | calamine | fastexcel |", "| --- | --- | --- | --- |"]
    counts = []
    for path in semantics_workbooks():
        today = xlsx.read_xlsx(path).table.to_pylist()
        other = calamine_sheet(path).table.to_pylist()
        fast = fastexcel_sheet(path).table.to_pylist()
        differ = [0, 0]
        for ours, theirs, rust in zip(today, other, fast, strict=True):
            differ[0] += ours != theirs
            differ[1] += ours != rust
            if ours != theirs:
                lines.append(f"| {ours['cas']} | {ours['valeur']!r} | {theirs['valeur']!r} "
                             f"| {rust['valeur']!r} |")  # fmt: skip
        counts.append(f"{path.name} : {len(today)} cellules, {differ[0]} différente(s) avec "
                      f"calamine, {differ[1]} avec fastexcel")  # fmt: skip
    return "\n".join(["; ".join(counts) + ".", "", *lines])


# --- The whole benchmark -----------------------------------------------------------------------


def label(path: Path) -> str:
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def measure(files: list[Path], runs: int) -> dict[tuple[str, str], list[Run | str]]:
    results: dict[tuple[str, str], list[Run | str]] = {}
    for number in range(1, runs + 1):
        for path in files:
            for reader in READERS:
                outcome = run_child(reader, path)
                results.setdefault((label(path), reader), []).append(outcome)
                shown = f"{outcome.seconds:.2f} s, {outcome.peak_mib:.0f} Mio" if isinstance(
                    outcome, Run) else outcome  # fmt: skip
                print(f"[{number}/{runs}] {label(path)} {reader}: {shown}", flush=True)
    return results


def markdown(files: list[Path], results: dict[tuple[str, str], list[Run | str]], runs: int) -> str:
    lines = [
        f"Machine : {os.cpu_count()} cœurs, Python {platform.python_version()}, "
        f"{versions()} ; médiane de {runs} exécution(s) entrelacée(s), un processus par "
        "lecture. « Accélération » : médiane, sur les séries, de la durée d'openpyxl ÷ celle "
        "du lecteur dans la même série (> 1 = plus rapide). "
        "« Mémoire en plus » : pic VmHWM du processus moins son pic après les imports.",
        "",
        "| Fichier | Lignes | Lecteur | Durée (s) | Accélération | Pic mémoire (Mio) "
        "| Mémoire en plus (Mio) | Table identique |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for path in files:
        name = label(path)
        baseline = results[(name, REFERENCE)]
        reference = [r for r in baseline if isinstance(r, Run)]
        for reader in READERS:
            outcomes = results[(name, reader)]
            done = [r for r in outcomes if isinstance(r, Run)]
            if not done:
                lines.append(f"| {name} | | {reader} | {outcomes[0]} | | | | |")
                continue
            seconds = statistics.median(r.seconds for r in done)
            same = "référence" if reader == REFERENCE else "—"
            if reader in ("calamine", "fastexcel") and reference:
                same = "oui" if all(r.digest == reference[0].digest for r in done) else "non"
            ratios = [
                ours.seconds / theirs.seconds
                for ours, theirs in zip(baseline, outcomes, strict=True)
                if isinstance(ours, Run) and isinstance(theirs, Run) and theirs.seconds > 0
            ]
            ratio = f"× {statistics.median(ratios):.2f}" if ratios else ""
            lines.append(
                f"| {name} | {done[0].rows} | {reader} | {seconds:.{4 if seconds < 0.1 else 2}f} "
                f"| {ratio} "
                f"| {statistics.median(r.peak_mib for r in done):.0f} "
                f"| {statistics.median(r.extra_mib for r in done):.0f} | {same} |"
            )
    return "\n".join(lines)


def versions() -> str:
    from importlib.metadata import version

    return ", ".join(
        f"{name} {version(name)}" for name in ("openpyxl", "python-calamine", "fastexcel")
    )


def write_results(table: str, markers: tuple[str, str]) -> None:
    """Replace what lies between the two markers of XLSX_RESULTS.md (the prose stays)."""
    begin, end = markers
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else ""
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    RESULTS.write_text(f"{head}{begin}\n{table}\n{end}{tail}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="10000,100000,500000", help="generated sizes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="figures into XLSX_RESULTS.md")
    parser.add_argument("--safety", action="store_true", help="hostile files and cell texts")
    parser.add_argument("--child", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--safety-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    if args.safety_child:
        safety_child(args.safety_child[0], Path(args.safety_child[1]), args.safety_child[2])
        return
    if args.safety:
        found = f"{hostile_table()}\n\n{semantics_table()}"
        print(found)
        if args.write:
            write_results(found, SAFETY_MARKERS)
        return
    sizes = [int(size) for size in args.rows.split(",") if size]
    files = [*REAL_FILES, *(generated(size) for size in sizes)]
    table = markdown(files, measure(files, args.runs), args.runs)
    print(table)
    if args.write:
        write_results(table, (BEGIN, END))


if __name__ == "__main__":
    main()
