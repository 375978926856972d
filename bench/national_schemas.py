"""Conformance table: our structure check against frictionless on the national schemas.

For every Table Schema of schema.data.gouv.fr gathered in tests/data/national_schemas/
(see its SOURCES.md; the list is its miniature catalog, catalog.json) and every example
file of that schema, both validators run on the same file:

- frictionless 5.18: `frictionless.Resource(path, schema=Schema.from_descriptor(...)).validate()`;
- ours: `check_schema_descriptor`, `read_source`, `validate` (pipelines.schema / read /
  validate); a `SubmissionRejected` counts as « refusé (schéma) » or « refusé (lecture) ».

Verdicts and the multisets of (error type, row, field) are compared; our rule codes are
mapped to frictionless error types with `pipelines.validate.FRICTIONLESS_TYPES`. Each
validator is timed (median of `--repeat` runs, 3 by default). No connection may leave
the machine during the run: every attempt is refused and counted.

    .venv/bin/python bench/national_schemas.py [--repeat 3]

Writes bench/NATIONAL_SCHEMAS.md (in French).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import socket
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import frictionless
import pyarrow as pa
import pyarrow.compute as pc

from core.problems import Problem, SubmissionRejected
from core.structure import check_schema_descriptor
from pipelines.coordinates import locate_geometry
from pipelines.read.stage import read_source
from pipelines.validate import FRICTIONLESS_TYPES, validate

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CORPUS = ROOT / "tests" / "data" / "national_schemas"
OUTPUT = HERE / "NATIONAL_SCHEMAS.md"
MAX_LISTED = 40  # differing errors listed per side and per example in « Désaccords »

VALID, INVALID = "valide", "invalide"
REFUSED_SCHEMA, REFUSED_READ = "refusé (schéma)", "refusé (lecture)"
CRASHED = "plantage"  # an exception other than SubmissionRejected: a bug to report

ErrorKey = tuple[str, int | None, str | None]  # (frictionless error type, row, field)


@dataclass
class Outcome:
    verdict: str
    listed: list[tuple[ErrorKey, str]] = field(default_factory=list)  # (key, message)
    seconds: float = 0.0

    @property
    def errors(self) -> Counter[ErrorKey]:
        return Counter(key for key, _message in self.listed)

    @property
    def details(self) -> list[str]:
        return [f"{key_text(key)} — {message}" for key, message in self.listed]

    def add(self, key: ErrorKey, message: str) -> None:
        self.listed.append((key, message))


@dataclass
class Example:
    name: str  # catalog name, e.g. etalab/schema-irve-statique
    version: str
    schema_path: Path
    path: Path

    @property
    def expected(self) -> str | None:
        if self.path.name.startswith("exemple-invalide"):
            return INVALID
        return VALID if self.path.name.startswith("exemple-valide") else None


@dataclass
class Row:
    example: Example
    theirs: Outcome
    ours: Outcome

    @property
    def same_verdict(self) -> bool:
        return normalised_verdict(self.ours.verdict) == self.theirs.verdict

    @property
    def same_errors(self) -> bool:
        return CRASHED not in (self.ours.verdict, self.theirs.verdict) and (
            self.ours.verdict != REFUSED_SCHEMA and self.ours.errors == self.theirs.errors
        )


# --- corpus -------------------------------------------------------------------------


def corpus_entries(corpus: Path = CORPUS) -> list[dict[str, Any]]:
    """The gathered schemas, as listed by the miniature catalog (one entry per version)."""
    catalog = json.loads((corpus / "catalog.json").read_text(encoding="utf-8"))
    entries = []
    for schema in catalog["schemas"]:
        for version in schema["versions"]:
            schema_path = corpus / version["schema_url"]
            examples = [
                corpus / e["path"]
                for e in schema.get("examples", [])
                if (corpus / e["path"]).parent == schema_path.parent
            ]
            entries.append(
                {
                    "name": schema["name"],
                    "version": version["version_name"],
                    "schema_path": schema_path,
                    "examples": examples,
                }
            )
    return entries


def corpus_examples(corpus: Path = CORPUS) -> list[Example]:
    return [
        Example(e["name"], e["version"], e["schema_path"], path)
        for e in corpus_entries(corpus)
        for path in e["examples"]
    ]


def load_descriptor(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


# --- the two validators ---------------------------------------------------------------


def run_frictionless(path: Path, descriptor: dict[str, Any]) -> Outcome:
    try:
        return _run_frictionless(path, descriptor)
    except Exception as error:  # a crash is a finding, not the end of the run
        return crashed(error)


def _run_frictionless(path: Path, descriptor: dict[str, Any]) -> Outcome:
    resource = frictionless.Resource(
        path=path.name,
        basepath=str(path.parent),
        schema=frictionless.Schema.from_descriptor(descriptor),
    )
    report = resource.validate(limit_errors=100_000)
    outcome = Outcome(VALID if report.valid else INVALID)
    for error in [*report.errors, *(e for task in report.tasks for e in task.errors)]:
        outcome.add(frictionless_key(error), error.message)
    return outcome


def frictionless_key(error: Any) -> ErrorKey:
    if error.type.endswith("-label"):  # header errors: no row; the label when no field has it
        labels, number = getattr(error, "labels", []), getattr(error, "field_number", 0)
        label = labels[number - 1] if 0 < number <= len(labels) else None
        return (error.type, None, getattr(error, "field_name", None) or label or None)
    row = getattr(error, "row_number", None)
    column = None if error.type == "primary-key" else (getattr(error, "field_name", None) or None)
    return (error.type, row, column)


def run_ours(path: Path, descriptor: dict[str, Any]) -> Outcome:
    try:
        return _run_ours(path, descriptor)
    except Exception as error:  # a crash is a finding, not the end of the run
        return crashed(error)


def crashed(error: Exception) -> Outcome:
    outcome = Outcome(CRASHED)
    outcome.add((CRASHED, None, None), f"{type(error).__name__}: {error}")
    return outcome


def _run_ours(path: Path, descriptor: dict[str, Any]) -> Outcome:
    try:
        schema = check_schema_descriptor(descriptor, "schema.json")
    except SubmissionRejected as rejected:
        return refused(REFUSED_SCHEMA, rejected)
    try:
        source = read_source(path)
    except SubmissionRejected as rejected:
        return refused(REFUSED_READ, rejected)
    report = validate(source, schema).report
    outcome = Outcome(VALID if report.valid else INVALID)
    for problem in report.problems:
        outcome.add(our_key(problem), f"[{problem.rule}] {problem.message}")
    return outcome


def refused(verdict: str, rejected: SubmissionRejected) -> Outcome:
    outcome = Outcome(verdict)
    for problem in rejected.report.problems:
        outcome.add(our_key(problem), f"[{problem.rule}] {problem.message}")
    return outcome


def our_key(problem: Problem) -> ErrorKey:
    kind = FRICTIONLESS_TYPES.get(problem.rule, f"{problem.stage}:{problem.rule}")
    row = None if kind.endswith("-label") else problem.row  # header errors: no row
    return (kind, row, None if kind == "primary-key" else problem.column)


def normalised_verdict(verdict: str) -> str:
    """A file we cannot read is refused: for the verdict, that is « invalide »."""
    return INVALID if verdict == REFUSED_READ else verdict


def key_text(key: ErrorKey) -> str:
    kind, row, column = key
    where = ", ".join(
        part for part in (f"ligne {row}" if row else "", f"« {column} »" if column else "") if part
    )
    return f"{kind} ({where})" if where else kind


def timed(
    run: Callable[[Path, dict[str, Any]], Outcome], path: Path, schema_path: Path, repeat: int
) -> Outcome:
    """Run `repeat` times (descriptor read each time); keep the last outcome, median time."""
    times, outcome = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        outcome = run(path, load_descriptor(schema_path))
        times.append(time.perf_counter() - start)
    assert outcome is not None
    outcome.seconds = statistics.median(times)
    return outcome


@contextlib.contextmanager
def offline(attempts: list[str]) -> Iterator[None]:
    """Refuse (and record) every outgoing connection and name resolution."""
    connect, create, resolve = socket.socket.connect, socket.create_connection, socket.getaddrinfo

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[1:] if args and isinstance(args[0], socket.socket) else args))
        raise OSError("network disabled by bench/national_schemas.py")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]
    socket.getaddrinfo = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect = connect  # type: ignore[method-assign]
        socket.create_connection = create
        socket.getaddrinfo = resolve


# --- comparison -----------------------------------------------------------------------


def difference_text(row: Row) -> str:
    for side, outcome in (("nous", row.ours), ("frictionless", row.theirs)):
        if outcome.verdict == CRASHED:
            return f"plantage ({side}) : {outcome.listed[0][1][:160]}"
    if row.ours.verdict == REFUSED_SCHEMA:
        return "schéma refusé : " + refusal_causes(row.ours)
    if row.ours.verdict == REFUSED_READ:
        return (
            "lecture refusée : "
            + "; ".join(sorted({d.split(" — ", 1)[-1] for d in row.ours.details}))[:160]
        )
    if row.same_errors:
        return "aucune"
    only_theirs, only_ours = (
        row.theirs.errors - row.ours.errors,
        row.ours.errors - row.theirs.errors,
    )
    parts = []
    if only_theirs:
        parts.append("seulement frictionless : " + type_counts(only_theirs))
    if only_ours:
        parts.append("seulement nous : " + type_counts(only_ours))
    return " ; ".join(parts)


def type_counts(errors: Counter[ErrorKey]) -> str:
    kinds: Counter[str] = Counter()
    for (kind, _row, _column), n in errors.items():
        kinds[kind] += n
    return ", ".join(f"{kind} ×{n}" for kind, n in kinds.most_common())


def refusal_causes(outcome: Outcome) -> str:
    messages = sorted({d.split("] ", 1)[-1].split(" Types acceptés")[0] for d in outcome.details})
    return "; ".join(messages)


def field_spec(schema_path: Path, name: str | None) -> dict[str, Any]:
    for spec in load_descriptor(schema_path).get("fields", []):
        if spec.get("name") == name:
            return spec
    return {}


def cause_of(example: Example, side: str, key: ErrorKey) -> str:
    """A short label for one differing error: side, error type, and the field's type."""
    kind, _row, column = key
    spec = field_spec(example.schema_path, column)
    declared = spec.get("type", "string") if spec else None
    if declared and spec.get("format", "default") != "default":
        declared += f" (format {spec['format']})"
    constraints = ", ".join(sorted(spec.get("constraints", {}))) if spec else ""
    label = f"{kind} seulement {side}"
    if declared:
        label += f", champ de type {declared}"
    if kind == "constraint-error" and constraints:
        label += f" [contraintes : {constraints}]"
    return label


# Differences we keep on purpose, each explained (docs/depot.md says the same).
DOCUMENTED = {
    "extra-cell seulement frictionless (erreurs)": (
        "Une colonne en trop donne chez nous une seule erreur, « colonne-en-trop », sur "
        "l'en-tête ; frictionless ajoute une erreur « extra-cell » pour chaque cellule de "
        "cette colonne. Même verdict, rapport plus court et aussi précis."
    ),
}


def causes(rows: list[Row]) -> Counter[str]:
    found: Counter[str] = Counter()
    for row in rows:
        crashes = [
            (side, o)
            for side, o in (("nous", row.ours), ("frictionless", row.theirs))
            if o.verdict == CRASHED
        ]
        if crashes:
            side, outcome = crashes[0]
            found[f"plantage ({side}) : {outcome.listed[0][1][:120]} (exemples)"] += 1
            continue
        if row.ours.verdict == REFUSED_SCHEMA:
            for detail in sorted(
                {d.split("] ", 1)[-1].split(" non supporté")[0] for d in row.ours.details}
            ):
                found[f"schéma refusé : {detail} non supporté (exemples)"] += 1
            continue
        if row.ours.verdict == REFUSED_READ:
            found["lecture refusée par nous (exemples)"] += 1
            continue
        for side, errors in (
            ("frictionless", row.theirs.errors - row.ours.errors),
            ("nous", row.ours.errors - row.theirs.errors),
        ):
            for key, n in errors.items():
                found[cause_of(row.example, side, key) + " (erreurs)"] += n
    return found


# --- report ---------------------------------------------------------------------------


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def table_lines(rows: list[Row]) -> list[str]:
    lines = [
        "| schéma | version | exemple | verdict frictionless | notre verdict | erreurs "
        "frictionless | nos erreurs | différences | temps frictionless (ms) | notre temps (ms) |",
        "|---|---|---|---|---|---:|---:|---|---:|---:|",
    ]
    for row in rows:
        ours = row.ours.verdict if row.same_verdict else f"**{row.ours.verdict}**"
        lines.append(
            f"| {row.example.name} | {row.example.version} | {row.example.path.name} "
            f"| {row.theirs.verdict} | {ours} | {sum(row.theirs.errors.values())} "
            f"| {sum(row.ours.errors.values())} | {escape(difference_text(row))} "
            f"| {milliseconds(row.theirs.seconds)} | {milliseconds(row.ours.seconds)} |"
        )
    return lines


def one_line(text: str) -> str:
    return text.replace("\n", " ")


def escape(text: str) -> str:
    """For a table cell."""
    return one_line(text).replace("|", "\\|")


def disagreement_lines(rows: list[Row]) -> list[str]:
    lines = []
    for row in rows:
        if row.same_verdict and row.same_errors:
            continue
        lines += ["", f"### {row.example.name} {row.example.version} — {row.example.path.name}", ""]
        lines.append(
            f"Verdict frictionless : {row.theirs.verdict} ; notre verdict : {row.ours.verdict}."
        )
        if CRASHED in (row.ours.verdict, row.theirs.verdict) or row.ours.verdict in (
            REFUSED_SCHEMA,
            REFUSED_READ,
        ):
            lines += side_lines("Notre résultat", row.ours.details)
            if row.ours.verdict == CRASHED:
                lines += side_lines(
                    "Motifs (`pattern`) du schéma que RE2, le moteur d'expressions régulières "
                    "d'Arrow, refuse",
                    re2_refused_patterns(row.example.schema_path),
                )
            lines += side_lines("Erreurs frictionless", row.theirs.details)
            continue
        common = sum((row.theirs.errors & row.ours.errors).values())
        lines.append(f"Erreurs communes (type, ligne, champ) : {common}.")
        lines += side_lines(
            "Seulement frictionless", details_for(row.theirs, row.theirs.errors - row.ours.errors)
        )
        lines += side_lines(
            "Seulement nous", details_for(row.ours, row.ours.errors - row.theirs.errors)
        )
    return lines


def re2_refused_patterns(schema_path: Path) -> list[str]:
    """The fields whose pattern Arrow (RE2) cannot compile, as our check anchors it."""
    refused_patterns = []
    for spec in load_descriptor(schema_path).get("fields", []):
        pattern = spec.get("constraints", {}).get("pattern")
        if pattern is None:
            continue
        try:
            pc.match_substring_regex(pa.array([""]), f"^(?:{pattern})$")
        except pa.ArrowInvalid as error:
            refused_patterns.append(f"« {spec['name']} » : `{pattern}` ({error})")
    return refused_patterns


def details_for(outcome: Outcome, keys: Counter[ErrorKey]) -> list[str]:
    """The errors of `outcome` whose key is in `keys`, as many times as `keys` counts it."""
    left = Counter(keys)
    chosen = []
    for key, message in outcome.listed:
        if left[key] > 0:
            left[key] -= 1
            chosen.append(f"{key_text(key)} — {message}")
    return chosen


def side_lines(title: str, details: list[str]) -> list[str]:
    if not details:
        return ["", f"- {title} : aucune."]
    lines = ["", f"- {title} ({len(details)}) :"]
    lines += [f"  - {one_line(d)}" for d in details[:MAX_LISTED]]
    if len(details) > MAX_LISTED:
        lines.append(f"  - … et {len(details) - MAX_LISTED} autre(s)")
    return lines


def schema_lines(corpus: Path) -> list[str]:
    lines = [
        "| schéma | version | champs | types hors string | exemples | accepté par frictionless "
        "| accepté par nous |",
        "|---|---|---:|---|---:|---|---|",
    ]
    for entry in corpus_entries(corpus):
        descriptor = load_descriptor(entry["schema_path"])
        types = Counter(f.get("type", "string") for f in descriptor.get("fields", []))
        others = ", ".join(f"{t} ×{n}" for t, n in sorted(types.items()) if t != "string")
        lines.append(
            f"| {entry['name']} | {entry['version']} | {sum(types.values())} | {others or '—'} "
            f"| {len(entry['examples'])} | {theirs_accepts(descriptor)} "
            f"| {ours_accepts(descriptor)} |"
        )
    return lines


def theirs_accepts(descriptor: dict[str, Any]) -> str:
    try:
        frictionless.Schema.from_descriptor(descriptor)
    except frictionless.FrictionlessException as error:
        return f"non : {escape(error.error.message)}"
    return "oui"


def ours_accepts(descriptor: dict[str, Any]) -> str:
    try:
        check_schema_descriptor(descriptor, "schema.json")
    except SubmissionRejected as rejected:
        return "non : " + escape(
            "; ".join(
                sorted({p.message.split(" Types acceptés")[0] for p in rejected.report.problems})
            )
        )
    return "oui"


def head_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "pipelines"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "inconnu"
    return f"{commit}{' + modifications non commitées de pipelines/' if dirty else ''}"


def summary_lines(rows: list[Row], attempts: list[str], repeat: int) -> list[str]:
    schemas = {(r.example.name, r.example.version) for r in rows}
    refused_schema = [r for r in rows if r.ours.verdict == REFUSED_SCHEMA]
    refused_read = [r for r in rows if r.ours.verdict == REFUSED_READ]
    crashed_rows = [r for r in rows if CRASHED in (r.ours.verdict, r.theirs.verdict)]
    compared = [r for r in rows if r.ours.verdict not in (REFUSED_SCHEMA, REFUSED_READ, CRASHED)]
    unexpected = [r for r in rows if r.example.expected and r.theirs.verdict != r.example.expected]
    total_theirs = sum(r.theirs.seconds for r in rows)
    total_ours = sum(r.ours.seconds for r in rows)
    return [
        f"- {len(rows)} exemples de {len(schemas)} schémas ({len(corpus_entries())} schémas "
        "rassemblés en tout, dont ceux sans exemple : voir « Schémas »).",
        f"- Verdicts identiques : **{sum(r.same_verdict for r in rows)} / {len(rows)}** "
        "(« refusé (lecture) » compte comme « invalide »).",
        f"- Listes d'erreurs identiques (multiensemble type, ligne, champ) : "
        f"**{sum(r.same_errors for r in rows)} / {len(rows)}**.",
        f"- Refusés par nous à cause du schéma : {len(refused_schema)} exemples "
        f"({len({(r.example.name, r.example.version) for r in refused_schema})} schémas) ; "
        f"refusés à la lecture : {len(refused_read)} ; plantages (exception autre qu'un refus) : "
        f"{len(crashed_rows)}.",
        f"- Sur les {len(compared)} exemples validés par les deux : verdicts identiques "
        f"{sum(r.same_verdict for r in compared)}, erreurs identiques "
        f"{sum(r.same_errors for r in compared)}.",
        f"- Exemples dont le verdict frictionless contredit le nom (« exemple-valide » jugé "
        f"invalide ou l'inverse) : {len(unexpected)}.",
        f"- Temps cumulés (médiane de {repeat} passages par exemple) : frictionless "
        f"{total_theirs:.2f} s, nous {total_ours:.2f} s.",
        f"- Connexions réseau tentées pendant le passage (toutes refusées) : **{len(attempts)}**.",
    ]


def map_of(example: Example) -> str:
    """What the geographic stage makes of an example: the map it draws, or why it refuses."""
    try:
        schema = check_schema_descriptor(load_descriptor(example.schema_path), "schema.json")
        source = read_source(example.path)
        located, columns = locate_geometry(source, schema, None, None, example.path.name)
    except SubmissionRejected as rejected:
        return "refusée : " + " ; ".join(
            f"[{p.rule}] {p.message}" for p in rejected.report.problems[:2]
        )
    if columns is None:
        return ""
    geometry = located.geometry
    kinds = "/".join(sorted(set(geometry.dropna().geom_type)))
    problems = [f"[{p.rule}] {p.message}" for p in located.problems.problems[:2]]
    drawn = f"{kinds} EPSG:{located.crs}, {int(geometry.notna().sum())}/{len(geometry)} objets"
    origin = ", ".join(columns.columns)
    refusal = f" — refusée : {'; '.join(problems)}" if problems else ""
    return f"{drawn} (colonnes {origin}){refusal}"


def map_lines(rows: list[Row]) -> list[str]:
    lines = ["| schéma | version | exemple | carte |", "|---|---|---|---|"]
    for row in rows:
        drawn = map_of(row.example)
        if drawn:
            example = row.example
            lines.append(
                f"| {example.name} | {example.version} | {example.path.name} | "
                f"{escape(one_line(drawn))} |"
            )
    return lines


def write_report(rows: list[Row], attempts: list[str], repeat: int, output: Path) -> None:
    found = causes(rows)
    lines = [
        "# Conformité sur les schémas nationaux de schema.data.gouv.fr (issue #15)",
        "",
        f"Produit par `.venv/bin/python bench/national_schemas.py` le {date.today().isoformat()} "
        f"(frictionless {frictionless.__version__}, Python {platform.python_version()}, "
        f"notre code : {head_commit()}). Corpus : `tests/data/national_schemas/` "
        "(provenance et licences dans son `SOURCES.md`).",
        "",
        "Pour chaque exemple : frictionless (`Resource(...).validate()`) et notre contrôle "
        "(`check_schema_descriptor`, `read_source`, `validate`) sur le même fichier et le même "
        "schéma. Les erreurs sont comparées comme multiensembles de (type d'erreur frictionless, "
        "ligne, champ), nos règles étant traduites par `FRICTIONLESS_TYPES`. Temps : médiane de "
        f"{repeat} passages, lecture du schéma comprise, sans le démarrage de l'interpréteur. "
        "Aucune connexion réseau n'est permise pendant le passage. Machine : 2 cœurs partagés.",
        "",
        "## Résumé",
        "",
        *summary_lines(rows, attempts, repeat),
        "",
        "## Tableau",
        "",
        *table_lines(rows),
        "",
        "## Causes des désaccords",
        "",
        "| cause | nombre | documentée |",
        "|---|---:|---|",
        *[
            f"| {escape(cause)} | {n} | {'oui' if cause in DOCUMENTED else '**non**'} |"
            for cause, n in found.most_common()
        ],
        "",
        "## Écarts voulus",
        "",
        *[f"- **{cause}** — {why}" for cause, why in DOCUMENTED.items()],
        "- **Ordre des colonnes** — nos colonnes s'apparient par leur nom dans n'importe quel "
        "ordre (`fieldsMatch: equal` par défaut) ; frictionless et Table Schema v2 attendent "
        "le même ordre (`exact`) par défaut. Aucun exemple national n'est concerné ; un "
        "schéma qui veut l'ordre l'écrit (`fieldsMatch: exact`), et nous le suivons alors.",
        "- **Géométries** — frictionless ne juge que la structure JSON d'un `geojson` et la "
        "forme d'un `geopoint` ; l'étape géographique refuse en plus une géométrie invalide "
        "au sens OGC ou des coordonnées inversées (voir « Cartes »).",
        f"- Causes non documentées : **{sum(1 for c in found if c not in DOCUMENTED)}**.",
        "",
        "## Désaccords",
        *disagreement_lines(rows),
        "",
        "## Cartes",
        "",
        "Les exemples dont les positions (colonnes géographiques, `geopoint`, `geojson`) font "
        "une carte : ce que l'étape géographique en tire (type de géométrie, système de "
        "coordonnées reconnu, objets positionnés), ou pourquoi elle refuse. Frictionless ne "
        "juge pas les géométries : un refus ici est un désaccord voulu (géométrie invalide au "
        "sens OGC, coordonnées inversées), que le rapport de dépôt explique en français.",
        "",
        *map_lines(rows),
        "",
        "## Schémas",
        "",
        *schema_lines(CORPUS),
        "",
    ]
    if attempts:
        lines += ["## Connexions refusées", "", *[f"- `{a}`" for a in attempts[:50]], ""]
    output.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    attempts: list[str] = []
    rows = []
    with offline(attempts):
        for example in corpus_examples():
            theirs = timed(run_frictionless, example.path, example.schema_path, args.repeat)
            ours = timed(run_ours, example.path, example.schema_path, args.repeat)
            rows.append(Row(example, theirs, ours))
            print(
                f"{example.name} {example.version} {example.path.name}: frictionless "
                f"{theirs.verdict}, nous {ours.verdict}",
                flush=True,
            )
        write_report(rows, attempts, args.repeat, args.output)
    print(f"{args.output}: {len(rows)} exemples, {len(attempts)} connexion(s)")


if __name__ == "__main__":
    main()
