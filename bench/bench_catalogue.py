"""Catalogues of any size for the scale benchmarks: 100, 1,000 or 10,000 datasets.

The bundled samples are published once through the real pipeline (they are the templates:
tables, points, lines, an XLSX); every generated dataset is then one of them under a new
name, commune, theme and description, switched in through the store's own `publish` (the
template's files hard-linked into the staging folder, so 10,000 releases cost little disk).
Titles and descriptions are drawn from a list of real dataset titles of French metropolitan
portals, so that search sees realistic French text; the 58 communes of the Métropole are the
producers (written as a producers file, `write_producers`).

    from bench_catalogue import open_bench_catalogue
    settings, store, slugs = open_bench_catalogue(Path("/tmp/cat"), 1000)

Importing this module does nothing; `python bench/bench_catalogue.py --count 1000 DIR` builds one.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from catalog.store import CatalogStore  # noqa: E402
from core import clock  # noqa: E402
from core.records import NewRelease, Release, SubmissionRecord  # noqa: E402
from core.settings import Settings, load_settings  # noqa: E402
from core.vocabularies import normalise_label  # noqa: E402

COMMUNES = ROOT / "catalog" / "static" / "carte" / "communes-metropole-lyon.geojson"
SAMPLES = ROOT / "samples" / "inbox"
THEMES = ["REGI", "TRAN", "ENVI", "EDUC", "SOCI", "GOVE", "ECON", "HEAL", "ENER", "AGRI"]
# Real dataset titles of French metropolitan open-data portals (Lyon, Nantes, Rennes,
# Bordeaux, Toulouse), with the keywords their records carry.
SUBJECTS: list[tuple[str, list[str]]] = [
    ("Arbres d'alignement", ["arbres", "nature en ville", "patrimoine végétal"]),
    ("Bancs publics", ["mobilier urbain", "bancs", "espace public"]),
    ("Bornes de recharge pour véhicules électriques", ["mobilité", "énergie", "recharge"]),
    ("Stationnements vélos", ["vélo", "mobilité douce", "stationnement"]),
    ("Pistes cyclables", ["vélo", "aménagements cyclables", "voirie"]),
    ("Toilettes publiques", ["sanitaires", "équipements", "espace public"]),
    ("Fontaines d'eau potable", ["eau", "fontaines", "santé"]),
    ("Équipements sportifs", ["sport", "gymnases", "stades"]),
    ("Aires de jeux", ["enfance", "jeux", "parcs"]),
    ("Parcs et jardins", ["espaces verts", "nature", "loisirs"]),
    ("Écoles maternelles et élémentaires", ["éducation", "écoles", "enfance"]),
    ("Menus des cantines scolaires", ["restauration scolaire", "alimentation", "écoles"]),
    ("Subventions aux associations", ["associations", "subventions", "budget"]),
    ("Budget primitif", ["finances", "budget", "comptes"]),
    ("Délibérations du conseil municipal", ["conseil municipal", "délibérations", "élus"]),
    ("Marchés publics attribués", ["commande publique", "marchés", "achats"]),
    ("Bureaux de vote", ["élections", "vote", "citoyenneté"]),
    ("Résultats des élections municipales", ["élections", "résultats", "vote"]),
    ("Points d'apport volontaire du verre", ["déchets", "recyclage", "verre"]),
    ("Collecte des ordures ménagères", ["déchets", "collecte", "propreté"]),
    ("Défibrillateurs cardiaques", ["santé", "secours", "défibrillateurs"]),
    ("Places de stationnement PMR", ["accessibilité", "handicap", "stationnement"]),
    ("Travaux sur la voirie", ["chantiers", "voirie", "circulation"]),
    ("Horaires des équipements municipaux", ["horaires", "services publics", "accueil"]),
    ("Bibliothèques et médiathèques", ["culture", "lecture", "bibliothèques"]),
    ("Prénoms des nouveau-nés", ["état civil", "naissances", "prénoms"]),
    ("Consommation d'énergie des bâtiments communaux", ["énergie", "bâtiments", "climat"]),
    ("Qualité de l'air", ["air", "pollution", "environnement"]),
    ("Marchés alimentaires", ["commerce", "marchés", "alimentation"]),
    ("Terrasses autorisées", ["commerce", "espace public", "autorisations"]),
    ("Signalements sur l'espace public", ["propreté", "signalements", "voirie"]),
    ("Arrêts de transport en commun", ["transport", "bus", "tramway"]),
    ("Crèches et établissements d'accueil du jeune enfant", ["petite enfance", "crèches"]),
    ("Permis de construire délivrés", ["urbanisme", "permis", "logement"]),
    ("Zones de rencontre et zones 30", ["circulation", "sécurité routière", "vitesse"]),
    ("Équipements culturels", ["culture", "musées", "salles de spectacle"]),
    ("Fréquentation des piscines", ["sport", "piscines", "fréquentation"]),
    ("Jardins partagés", ["jardins", "nature en ville", "participation"]),
    ("Éclairage public", ["éclairage", "énergie", "voirie"]),
    ("Caméras de vidéoprotection", ["sécurité", "vidéoprotection", "espace public"]),
]
ANGLES = [
    "Inventaire tenu à jour par les services techniques de {commune}",
    "Données issues du système d'information géographique de {commune}",
    "Liste publiée par la mairie de {commune} après chaque mise à jour",
    "Recensement réalisé sur le territoire de {commune}",
]


def communes() -> list[tuple[str, str, str]]:
    """(slug, name, INSEE code) of the Métropole's communes, from the shipped outlines."""
    features = json.loads(COMMUNES.read_text(encoding="utf-8"))["features"]
    found = []
    for feature in features:
        name = feature["properties"]["nom"]
        slug = normalise_label(name).replace(" ", "-").replace("'", "-")
        found.append((slug, name, feature["properties"]["code_insee"]))
    return sorted(found)


def write_producers(path: Path) -> None:
    """A producers file naming every commune (one DAG each in production)."""
    entries = [
        {
            "slug": slug,
            "nom": name,
            "insee": insee,
            "courriel": f"donnees-ouvertes@{slug}.example.org",
            "planification": "@daily",
        }
        for slug, name, insee in communes()
    ]
    path.write_text(yaml.safe_dump({"producteurs": entries}, allow_unicode=True), "utf-8")


def bench_settings(folder: Path, store_url: str | None = None) -> Settings:
    """Settings of a scratch instance in `folder` (SQLite unless `store_url` is given)."""
    folder.mkdir(parents=True, exist_ok=True)
    producers = folder / "producers.yaml"
    write_producers(producers)
    os.environ["OPENDATA_DATA_DIR"] = str(folder / "data")
    os.environ["OPENDATA_INBOX_DIR"] = str(folder / "inbox")
    os.environ["OPENDATA_PRODUCERS_FILE"] = str(producers)
    if store_url:
        os.environ["OPENDATA_STORE_URL"] = store_url
    return load_settings()


def publish_templates(settings: Settings, store: CatalogStore) -> list[Release]:
    """The bundled samples published through the real pipeline: one release each."""
    from pipelines.submission import Submission, run_submission

    templates = []
    for metadata in sorted(SAMPLES.glob("*/*/metadata.yaml")):
        data = next(
            p
            for p in metadata.parent.iterdir()
            if p.name not in {"metadata.yaml"} and p.suffix != ".json"
        )
        producer = metadata.parent.parent.name
        submission = Submission.new(producer, data, metadata, "ligne-de-commande")
        outcome = run_submission(submission, settings, store)
        if outcome.status != "publiee" or outcome.dataset is None:
            raise RuntimeError(f"{metadata.parent.name} : {outcome.summary()}")
        release = store.current_release(outcome.dataset)
        assert release is not None
        templates.append(release)
    return templates


def build_catalogue(
    settings: Settings, store: CatalogStore, count: int, seed: int = 20
) -> list[str]:
    """Publish `count` datasets (templates included) into `store`; their slugs."""
    templates = publish_templates(settings, store)
    slugs = [t.dataset for t in templates]
    draw = random.Random(seed)
    places = communes()
    for number in range(count - len(templates)):
        template = templates[number % len(templates)]
        slug, name, _ = places[draw.randrange(len(places))]
        subject, keywords = SUBJECTS[draw.randrange(len(SUBJECTS))]
        dataset = f"{slug}-{normalise_label(subject).replace(' ', '-').replace(chr(39), '-')}"
        dataset = f"{dataset[:73]}-{number:05d}"  # slugs fit the catalogue's 80 characters
        metadata = {
            **template.metadata,
            "title": f"{subject} — {name}",
            "description": f"{draw.choice(ANGLES).format(commune=name)} : "
            f"{subject.lower()}, {', '.join(keywords)}.",
            "keywords": keywords,
            "themes": [draw.choice(THEMES)],
            "producer": slug,
        }
        _publish_copy(store, template, dataset, slug, metadata)
        slugs.append(dataset)
    return slugs


def _publish_copy(
    store: CatalogStore, template: Release, dataset: str, producer: str, metadata: dict
) -> None:
    source = store.release_path(template, template.distributions[0].format)
    assert source is not None
    staged = store.staging_dir()
    for path in source.parent.iterdir():
        if path.is_file():
            os.link(path, staged / path.name)
    structure = store.structure_versions(template.dataset)[-1].structure
    new = NewRelease(
        dataset=dataset,
        producer=producer,
        content_hash=uuid.uuid4().hex,
        row_count=template.row_count,
        distributions=list(template.distributions),
        metadata=metadata,
        licence=template.licence,
        structure=structure,
        structure_version=1,
        anonymisation=template.anonymisation,
    )
    submission = SubmissionRecord(
        id=uuid.uuid4().hex,
        producer=producer,
        dataset=dataset,
        channel="ligne-de-commande",
        received_at=clock.now(),
        status="publiee",
        release=None,
    )
    store.publish(new, staged, submission)


def open_bench_catalogue(
    folder: Path, count: int, store_url: str | None = None
) -> tuple[Settings, CatalogStore, list[str]]:
    """A fresh instance in `folder` holding `count` datasets."""
    from pipelines.submission import open_settings_store

    if folder.exists():
        shutil.rmtree(folder)
    settings = bench_settings(folder, store_url)
    store = open_settings_store(settings)
    return settings, store, build_catalogue(settings, store, count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--store-url", default=None)
    args = parser.parse_args()
    started = time.perf_counter()
    _, _, slugs = open_bench_catalogue(args.folder, args.count, args.store_url)
    print(f"{len(slugs)} jeux publiés en {time.perf_counter() - started:.1f} s dans {args.folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
