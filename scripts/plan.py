"""The README's « Organisation du code » section, generated from the tree.

`python scripts/plan.py` rewrites the section between its two markers in README.md: one row
per package of the project, with its French description (below, `PACKAGES`) and every one
of its modules, found on disk. tests/test_architecture.py fails when the README differs
from what this script writes (a module added, moved or removed without the README
following) or when a package has no description here.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START = "<!-- organisation:début (généré par scripts/plan.py) -->"
END = "<!-- organisation:fin -->"
TOP_LEVEL = ("opendata", "dags", "pipelines", "catalog", "core")

FLOW = """```
dépôts des communes (dossier, API de dépôt, sources moissonnées)
        │
        ▼
opendata/ (ligne de commande) et dags/ (Airflow) ── câblent, sans logique
        │
        ▼
pipelines/ : lecture → métadonnées, licence → structure → données personnelles → publication
        │  (n'entre dans le catalogue que par son magasin)
        ▼
catalog/store/ : jeux, versions, fichiers, événements… (SQLite embarqué, PostGIS en production)
        ▲
        │
catalog/ (côté web) : portail, API, téléchargements, DCAT, OGC (WMS/WFS, OGC API, CSW)

core/ : les mots partagés (horloge, réglages, licences, structure, règles du cycle de vie…),
        importés par tous, n'important rien du projet
```"""

# package (path) → what it holds, in French; every package of the tree must be here
PACKAGES = {
    "opendata": "la ligne de commande `opendata` (et `python -m opendata`) : le bord qui câble le pipeline et le catalogue",
    "dags": "les DAG Airflow, minces, générés depuis `config/producers.yaml` : une tâche par étape",
    "pipelines": "les étapes du traitement d'un dépôt, une par module, enchaînées par `submission` et exposées aux orchestrateurs par `tasks`",
    "pipelines/personal": "la détection des données personnelles : identifiants, noms (listes INSEE de `data/names/`), quasi-identifiants",
    "pipelines/read": "la lecture des fichiers déposés, un module par format d'entrée (registre : `core/input_formats.py`, `registry`)",
    "pipelines/harvest": "le moissonnage des sources déclarées par les communes, un module par type de source",
    "catalog": "le côté web du catalogue : comptes, sessions et connexion, flux, DCAT et fiches ISO 19139 (d’une même description), recherche, cycle de vie affiché, protections",
    "catalog/web": "l'application web : `app` assemble les routeurs et les protections de la table `registry` (services web)",
    "catalog/web/routes": "les routes de l'API et du portail, un module par idée",
    "catalog/ogc": "les services OGC derrière une interface (`services`) : OGC API (pygeoapi), WMS/WFS (MapServer), CSW (pycsw) ; processus résidents de MapServer (FastCGI) et de pycsw (`resident`, `fastcgi`)",
    "catalog/store": "le magasin du catalogue, une interface par préoccupation (`concerns`), SQLite ou PostGIS (table `BACKENDS`)",
    "catalog/store/downloads": "les formats de téléchargement, un module par format (registre : `__init__`)",
    "catalog/store/migrations": "les migrations Alembic du schéma PostgreSQL",
    "catalog/store/migrations/versions": "une révision Alembic par changement de schéma",
    "core": "les mots partagés, qui n'importent rien du projet : horloge, réglages et variables, producteurs, vocabulaires, licences, problèmes et rapports, structure, changements, accès, formulations françaises, adresses publiques",
    "core/lifecycle": "les règles du cycle de vie (annexe §3.2), une par module : événements, courriels, décisions quotidiennes (registre : `__init__`)",
}


def packages() -> list[Path]:
    found = []
    for top in TOP_LEVEL:
        base = ROOT / top
        found += [base, *sorted(p.parent for p in base.rglob("*/__init__.py"))]
    return [p for p in found if "__pycache__" not in p.parts]


def modules(package: Path) -> list[str]:
    return sorted(p.stem for p in package.glob("*.py") if p.stem != "__init__")


def section() -> str:
    rows = ["| dossier | ce qu'il contient | modules |", "|---|---|---|"]
    for package in packages():
        name = package.relative_to(ROOT).as_posix()
        names = ", ".join(f"`{m}`" for m in modules(package)) or "—"
        rows.append(
            f"| `{name}/` | {PACKAGES.get(name, 'À DÉCRIRE dans scripts/plan.py')} | {names} |"
        )
    return "\n".join([START, "", FLOW, "", *rows, "", END])


def rewritten(readme: str) -> str:
    before, _, rest = readme.partition(START)
    _, _, after = rest.partition(END)
    return before + section() + after


def main() -> int:
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        print(f"README.md : marqueurs {START!r} … {END!r} introuvables.", file=sys.stderr)
        return 1
    README.write_text(rewritten(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
