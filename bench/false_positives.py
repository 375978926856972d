"""False positives of personal-data detection on ordinary open data.

Runs the detector on (1) every column of the bundled samples that holds no personal
data, and (2) generated columns typical of municipal open data: opening hours, INSEE
codes, postcodes, equipment identifiers, amounts, dates, coordinates of equipment,
street names without numbers, names of facilities named after people, and public
switchboard numbers. A column flagged is a false positive: the producer must then
declare it "non-personnel" with a justification.

    .venv/bin/python bench/false_positives.py

Figures go to bench/FALSE_POSITIVES.md.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa

from pipelines import personal
from pipelines.read import read_source

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent / "samples" / "inbox"
PERSONAL_SAMPLE = "signalements-espace-public"
ROWS = 2_000


def ordinary_columns(rng: random.Random) -> dict[str, list[str]]:
    facilities = [
        "Gymnase Jean Moulin",
        "École Louis Pasteur",
        "Stade Marie-José Pérec",
        "Médiathèque Simone Veil",
        "Piscine Georges Vallerey",
        "Salle Victor Hugo",
        "Parc de la Tête d'Or",
        "Collège Jean Jaurès",
        "Square Émile Zola",
    ]
    streets = [
        "rue Victor Hugo",
        "avenue Jean Jaurès",
        "place Bellecour",
        "cours Lafayette",
        "boulevard des Belges",
        "chemin de la Sauvegarde",
        "quai Claude Bernard",
    ]
    return {
        "horaires": [
            rng.choice(
                [
                    "08:00-12:00",
                    "Lu-Ve 9h-17h30",
                    "14h00 - 18h00",
                    "mar. 10h-19h, sam. 10h-18h",
                    "24h/24",
                ]
            )
            for _ in range(ROWS)
        ],
        "code_insee": [f"69{rng.randint(1, 299):03d}" for _ in range(ROWS)],
        "code_postal": [f"69{rng.randint(0, 9)}{rng.randint(0, 9)}0" for _ in range(ROWS)],
        "identifiant_equipement": [f"EQ-{rng.randint(1, 99999):05d}" for _ in range(ROWS)],
        "numero_parcelle": [f"69081000AB{rng.randint(1, 9999):04d}" for _ in range(ROWS)],
        "montant_eur": [f"{rng.uniform(10, 100000):.2f}" for _ in range(ROWS)],
        "date_ouverture": [
            f"20{rng.randint(0, 26):02d}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
            for _ in range(ROWS)
        ],
        "nom_equipement": [rng.choice(facilities) for _ in range(ROWS)],
        "voie": [rng.choice(streets) for _ in range(ROWS)],
        "capacite": [str(rng.randint(0, 5000)) for _ in range(ROWS)],
        "telephone_standard": [
            rng.choice(["04 72 10 30 30", "04 78 33 64 00", "3939"]) for _ in range(ROWS)
        ],
    }


def main() -> None:
    rows = []
    for folder in sorted(p for p in SAMPLES.glob("*/*") if p.name != PERSONAL_SAMPLE):
        data = next(p for p in folder.iterdir() if p.name not in {"metadata.yaml", "schema.json"})
        table = read_source(data).table
        flagged = {f.column: f for f in personal.detect(table)}
        for name in table.column_names:
            finding = flagged.get(name)
            rows.append((f"sample {folder.name}", name, finding.kind if finding else ""))
    ordinary = pa.table(ordinary_columns(random.Random(3)))
    flagged = {f.column: f for f in personal.detect(ordinary)}
    for name in ordinary.column_names:
        finding = flagged.get(name)
        rows.append(("generated", name, finding.kind if finding else ""))
    positives = [r for r in rows if r[2]]
    lines = [
        "# False positives of personal-data detection on ordinary open data",
        "",
        f"{len(positives)} column(s) flagged out of {len(rows)} ordinary columns "
        f"(**{100 * len(positives) / len(rows):.1f} %**).",
        "",
        "| source | column | flagged as |",
        "|---|---|---|",
        *[f"| {source} | {column} | {kind or '—'} |" for source, column, kind in rows],
        "",
        "Flagged columns are expected where the values are what the kind says (a public "
        "switchboard number is a phone number, an equipment's address has a street number): "
        "the producer declares them `non-personnel` with a justification, recorded in the "
        "release.",
    ]
    text = "\n".join(lines) + "\n"
    (HERE / "FALSE_POSITIVES.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
