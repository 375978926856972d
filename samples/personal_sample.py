"""Fictitious personal data (Faker fr_FR plus French formats written here), deterministic.

Used for the sample submission with personal fields (Lyon's reports on public space,
published anonymised) and by the tests that prove no personal value is ever published.
"""

from __future__ import annotations

import json
import random
import unicodedata
from datetime import date, timedelta
from pathlib import Path

from faker import Faker

SIV_LETTERS = "ABCDEFGHJKLMNPQRSTVWXYZ"  # no I, O, U on French plates
STREET_TYPES = ["rue", "avenue", "boulevard", "chemin", "place", "impasse", "quai"]
CATEGORIES = ["voirie", "proprete", "eclairage", "stationnement", "espaces-verts"]


def ascii_lower(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def phone(rng: random.Random) -> str:
    first = rng.choice(["6", "7", "4", "9"])
    pairs = [f"{rng.randint(10, 99)}" for _ in range(4)]
    style = rng.randrange(5)
    if style == 0:
        return f"0{first} " + " ".join(pairs)
    if style == 1:
        return f"0{first}" + "".join(pairs)
    if style == 2:
        return f"0{first}." + ".".join(pairs)
    if style == 3:
        return f"+33 {first} " + " ".join(pairs)
    return f"+33{first}" + "".join(pairs)


def plate(rng: random.Random) -> str:
    letters = lambda: "".join(rng.choice(SIV_LETTERS) for _ in range(2))  # noqa: E731
    return f"{letters()}-{rng.randint(100, 999)}-{letters()}"


def personal_records(count: int, seed: int) -> list[dict]:
    """People with every kind of personal data, including inside a free-text column."""
    fake = Faker("fr_FR")
    fake.seed_instance(seed)
    rng = random.Random(seed)
    records = []
    for number in range(1, count + 1):
        first, last = fake.first_name(), fake.last_name()
        email = f"{ascii_lower(first)}.{ascii_lower(last)}{rng.randint(1, 99)}@exemple.fr"
        email = email.replace(" ", "-").replace("'", "")
        phone_number, vehicle = phone(rng), plate(rng)
        street = f"{rng.choice(STREET_TYPES)} {fake.last_name()}"
        address = f"{rng.randint(1, 180)} {street}"
        born = date(1940, 1, 1) + timedelta(days=rng.randint(0, 25000))
        records.append(
            {
                "id_signalement": number,
                "date_signalement": (
                    date(2026, 1, 1) + timedelta(days=rng.randint(0, 300))
                ).isoformat(),
                "categorie": rng.choice(CATEGORIES),
                "arrondissement": rng.randint(1, 9),
                "declarant": f"{first} {last}",
                "courriel": email,
                "telephone": phone_number,
                "nir": fake.ssn(),
                "iban": fake.iban(),
                "date_naissance": born.isoformat(),
                "adresse": address,
                "plaque": vehicle,
                "description": (
                    f"Signalé par {first} {last} ({phone_number}, {email}) : le véhicule "
                    f"{vehicle} est stationné devant le {address} depuis une semaine."
                ),
                "longitude": round(4.835 + rng.uniform(-0.03, 0.03), 6),
                "latitude": round(45.76 + rng.uniform(-0.02, 0.02), 6),
            }
        )
    return records


PERSONAL_FIELDS = (
    "declarant",
    "courriel",
    "telephone",
    "nir",
    "iban",
    "date_naissance",
    "adresse",
    "plaque",
)

SIGNALEMENTS_METADATA = """\
identifiant: signalements-espace-public
titre: Signalements sur l'espace public
description: >-
  Signalements d'anomalies sur l'espace public (voirie, propreté, éclairage,
  stationnement, espaces verts) reçus par la ville de Lyon, avec leur date,
  leur catégorie, leur arrondissement et leur localisation. Les données
  personnelles des déclarants sont anonymisées ou pseudonymisées avant
  publication.
producteur: lyon
licence: etalab-2.0
frequence: mensuelle
modalites_livraison: >-
  Export mensuel de l'outil de gestion des signalements, déposé par la
  direction de la relation aux usagers.
date_mise_a_jour: 2026-11-01
mots_cles: [signalements, espace public, voirie, propreté]
theme: [REGI]
contact:
  nom: Direction de la relation aux usagers
  email: relation-usagers@mairie-lyon.fr
systeme_coordonnees: EPSG:4326
couverture_spatiale: Lyon
donnees_personnelles:
  declarant: {traitement: pseudonymiser}
  courriel: {traitement: supprimer}
  telephone: {traitement: supprimer}
  nir: {traitement: supprimer}
  iban: {traitement: supprimer}
  date_naissance: {traitement: generaliser, niveau: annee}
  adresse: {traitement: generaliser}
  plaque: {traitement: pseudonymiser}
  description: {traitement: masquer}
  geometry: {traitement: generaliser, grille_m: 200}
k_anonymat:
  quasi_identifiants: [arrondissement]
  k: 11
"""


def write_signalements(folder: Path, count: int = 240, seed: int = 69123) -> Path:
    """Lyon's reports on public space: a GeoJSON (WGS84) full of personal data."""
    features = []
    for record in personal_records(count, seed):
        lon, lat = record.pop("longitude"), record.pop("latitude")
        features.append(
            {
                "type": "Feature",
                "properties": record,
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
            }
        )
    path = folder / "signalements-espace-public.geojson"
    path.write_text(
        json.dumps(
            {"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=1
        ),
        encoding="utf-8",
    )
    (folder / "metadata.yaml").write_text(SIGNALEMENTS_METADATA, encoding="utf-8")
    return path
