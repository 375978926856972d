"""Benchmark: personal-data detection + treatment on a 1,000,000-row file, as a ratio to
the bare structure check (read + Table Schema validation) of the same file, in the same run.

The file is bench/check_publish.py's 12 ordinary columns plus 5 personal ones generated
with numpy (names from Faker's French lists, e-mails, phones, birth dates, and a
free-text comment carrying a phone number or an e-mail in about one row out of five).
Both are run `--repeat` times, alternated; the ratio reported is the median.

    .venv/bin/python bench/anonymise.py [--rows 1000000] [--repeat 3]

Figures go to bench/ANONYMISE_RESULTS.md.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from check_publish import SCHEMA, generate  # noqa: E402

DECLARATIONS = {
    "personal": {
        "declarant": {"traitement": "pseudonymiser"},
        "courriel": {"traitement": "supprimer"},
        "telephone": {"traitement": "supprimer"},
        "date_naissance": {"traitement": "generaliser", "niveau": "annee"},
        "commentaire": {"traitement": "masquer"},
        "latitude": {"traitement": "generaliser", "grille_m": 200},
        "longitude": {"traitement": "generaliser", "grille_m": 200},
    },
    "k_anonymity": None,
}


def add_personal_columns(source: Path, target: Path, seed: int = 11) -> None:
    from faker.providers.person.fr_FR import Provider

    as_text = {f["name"]: pa.string() for f in SCHEMA["fields"]}
    table = pacsv.read_csv(source, convert_options=pacsv.ConvertOptions(column_types=as_text))
    rows = table.num_rows
    rng = np.random.default_rng(seed)
    firsts = np.array(Provider.first_names_male + Provider.first_names_female)
    lasts = np.array(Provider.last_names)
    first, last = (
        firsts[rng.integers(0, len(firsts), rows)],
        lasts[rng.integers(0, len(lasts), rows)],
    )
    numbers = rng.integers(10_000_000, 99_999_999, rows).astype(str)
    phones = np.char.add("06", numbers)
    emails = np.char.add(
        np.char.add(np.char.lower(first.astype(str)), "."),
        np.char.add(rng.integers(1, 10**6, rows).astype(str), "@exemple.fr"),
    )
    births = (
        np.datetime64("1940-01-01") + rng.integers(0, 25_000, rows).astype("timedelta64[D]")
    ).astype(str)
    comments = np.where(
        rng.random(rows) < 0.1,
        np.char.add("Rappeler au ", phones),
        np.where(rng.random(rows) < 0.1, np.char.add("Écrire à ", emails), "Intervention réalisée"),
    )
    table = (
        table.append_column("declarant", pa.array(np.char.add(np.char.add(first, " "), last)))
        .append_column("courriel", pa.array(emails))
        .append_column("telephone", pa.array(phones))
        .append_column("date_naissance", pa.array(births))
        .append_column("commentaire", pa.array(comments))
    )
    pacsv.write_csv(table, target, write_options=pacsv.WriteOptions(quoting_style="needed"))


def schema_with_personal_columns() -> dict:
    extra = [{"name": n, "type": "string"} for n in ("declarant", "courriel", "telephone")]
    extra += [{"name": "date_naissance", "type": "date"}, {"name": "commentaire", "type": "string"}]
    return {**SCHEMA, "fields": SCHEMA["fields"] + extra}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from pipelines.anonymise import anonymise
    from pipelines.publish import CheckedData
    from pipelines.read.stage import read_source
    from pipelines.validate import validate

    with tempfile.TemporaryDirectory() as folder:
        plain, personal = Path(folder) / "plain.csv", Path(folder) / "personal.csv"
        print(f"Generating {args.rows:,} rows…", flush=True)
        generate(plain, args.rows)
        add_personal_columns(plain, personal)
        checks, treatments, ratios = [], [], []
        for _ in range(args.repeat):  # alternated, so that both see the same machine
            started = time.perf_counter()
            source = read_source(personal)
            result = validate(source, schema_with_personal_columns())
            checks.append(time.perf_counter() - started)
            assert result.report.valid, result.report.to_text()[:2000]
            started = time.perf_counter()
            treated, report = anonymise(
                CheckedData(result.typed, None, None), DECLARATIONS, b"bench-key"
            )
            treatments.append(time.perf_counter() - started)
            ratios.append(treatments[-1] / checks[-1])
        check_seconds, anonymise_seconds = statistics.median(checks), statistics.median(treatments)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    changed = {c.colonne: c.valeurs_modifiees for c in report.colonnes}
    text = (
        "\n".join(
            [
                f"# Anonymisation benchmark ({args.rows:,} rows × 17 columns, 5 of them personal)",
                "",
                "| run | time (s) |",
                "|---|---:|",
                f"| structure check (read + Table Schema validation) | {check_seconds:.2f} |",
                f"| detection + treatment (anonymise stage) | {anonymise_seconds:.2f} |",
                "",
                f"- detection + treatment costs **{statistics.median(ratios):.1f}×** "
                f"the bare structure check of the same file (median of {args.repeat} "
                f"alternated runs; ratios {', '.join(f'{r:.2f}' for r in ratios)}); "
                "times above are medians.",
                f"- values changed per column: {changed}; published columns: "
                f"{len(treated.typed.column_names)}.",
                f"- peak memory of the whole run (max RSS): {peak:.0f} MB. Machine: 2 cores.",
            ]
        )
        + "\n"
    )
    (HERE / "ANONYMISE_RESULTS.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
