"""Generate the sample submissions of `samples/inbox/` and `samples/invalid/`.

Deterministic (fixed seeds, no network, fixed timestamps inside the zip and
XLSX containers): running it twice gives byte-identical files. Every value is
fictitious: facility, association and fountain names are invented, and the
only contacts are generic service addresses.

    .venv/bin/python samples/make_samples.py           # (re)write the samples
    .venv/bin/python samples/make_samples.py --check   # … then read them back and validate

Submissions written (one folder each: a data file, `metadata.yaml`, optionally
`schema.json`, a Frictionless Table Schema):

    inbox/ecully/equipements-sportifs/        CSV  `;` Windows-1252, decimal comma, CRLF
    inbox/ecully/bancs-publics/               GeoJSON points in EPSG:3946 (legacy `crs` member)
    inbox/vaulx-en-velin/pistes-cyclables/    zipped Shapefile, lines in EPSG:2154
    inbox/vaulx-en-velin/subventions-associations/  XLSX, real Excel dates
    inbox/lyon/fontaines-eau-potable/         CSV `,` UTF-8 with BOM
    invalid/lyon/fontaines-eau-potable/       same dataset, CSV with documented errors
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import random
import re
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

SAMPLES = Path(__file__).resolve().parent
INBOX = SAMPLES / "inbox"
INVALID = SAMPLES / "invalid"

SEED = 20261115
# Fixed timestamp written inside zip containers (shapefile zip, XLSX) so that
# re-running the generator does not change the bytes.
ZIP_TIMESTAMP = (2026, 10, 1, 8, 0, 0)

# WGS84 centres (lon, lat) of the communes.
ECULLY_CENTRE = (4.777, 45.776)
VAULX_CENTRE = (4.925, 45.778)


def rng_for(name: str) -> random.Random:
    """One independent generator per dataset: changing one sample leaves the others unchanged."""
    return random.Random(f"{SEED}-{name}")


def submission_dir(root: Path, commune: str, dataset: str) -> Path:
    folder = root / commune / dataset
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


def write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def write_text(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8"))  # LF line endings whatever the platform


def random_date(rng: random.Random, start: date, end: date) -> date:
    return start + timedelta(days=rng.randint(0, (end - start).days))


def decimal_comma(value: float, digits: int) -> str:
    return f"{value:.{digits}f}".replace(".", ",")


def csv_text(header: list[str], rows: list[list[object]], delimiter: str, newline: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def rezip(data: bytes, rewrite: dict[str, callable] | None = None) -> bytes:
    """Copy a zip archive with fixed entry timestamps (and optional content rewrites)."""
    rewrite = rewrite or {}
    output = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(output, "w") as target:
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename in rewrite:
                content = rewrite[info.filename](content)
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_TIMESTAMP)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, content)
    return output.getvalue()


# --------------------------------------------------------------------------- #
# 1. Écully — équipements sportifs (CSV ; Windows-1252, decimal comma, CRLF)
# --------------------------------------------------------------------------- #

EQUIPEMENTS = [
    # (nom, type_equipement, adresse)
    ("Gymnase du Pérollier", "gymnase", "12 chemin du Pérollier"),
    ("Stade Intercommunal", "stade", "3 chemin de la Forestière"),
    ("Piscine municipale des Sources", "piscine", "21 chemin des Sources"),
    ("Gymnase des Cerisiers", "gymnase", "8 chemin des Cerisiers"),
    ("Courts de tennis du Randin", "tennis", "45 chemin du Randin"),
    ("City-stade de la Sauvegarde", "city-stade", "2 place de la Sauvegarde"),
    ("Salle polyvalente du Centre", "salle-polyvalente", "5 place de la Libération"),
    ("Stade de la Charrière Blanche", "stade", "30 chemin de Charrière Blanche"),
    ("Gymnase de la Plaine", "gymnase", "14 avenue de la Plaine"),
    ("Tennis couverts des Greffières", "tennis", "9 chemin des Greffières"),
    ("City-stade du Parc de la Mairie", "city-stade", "1 place de l'Église"),
    ("Salle des fêtes de Montlouis", "salle-polyvalente", "17 chemin de Montlouis"),
    ("Dojo municipal", "salle-polyvalente", "6 rue du Stade"),
    ("Stade synthétique des Hauts d'Écully", "stade", "40 chemin des Hauts d'Écully"),
    ("Gymnase du Lycée", "gymnase", "25 avenue de Verdun"),
    ("Courts de tennis extérieurs de la Forestière", "tennis", "5 chemin de la Forestière"),
    ("City-stade des Noyeraies", "city-stade", "11 allée des Noyeraies"),
    ("Salle de danse de la Maison des Sociétés", "salle-polyvalente", "3 rue du Marché"),
    ("Bassin d'apprentissage", "piscine", "19 chemin des Sources"),
    ("Terrain de football de Villeneuve", "stade", "52 chemin de Villeneuve"),
    ("Gymnase des Tournelles", "gymnase", "7 rue des Tournelles"),
    ("Padel et tennis du Pérollier", "tennis", "14 chemin du Pérollier"),
    ("City-stade du Vieux Bourg", "city-stade", "4 montée des Roches"),
    ("Salle d'escalade Écully Vertical", "salle-polyvalente", "10 chemin de la Bruyère"),
    ("Piste d'athlétisme du Stade Intercommunal", "stade", "3 bis chemin de la Forestière"),
]

SURFACES = {  # plausible useful surface range in m², per type
    "gymnase": (850, 1900),
    "stade": (6200, 9800),
    "piscine": (450, 2400),
    "tennis": (620, 2600),
    "city-stade": (380, 620),
    "salle-polyvalente": (180, 750),
}


def equipements_sportifs() -> Path:
    rng = rng_for("equipements-sportifs")
    folder = submission_dir(INBOX, "ecully", "equipements-sportifs")
    header = [
        "identifiant", "nom", "type_equipement", "adresse", "surface_m2",
        "accessible_pmr", "date_mise_en_service", "latitude", "longitude",
    ]  # fmt: skip
    rows = []
    for index, (nom, kind, adresse) in enumerate(EQUIPEMENTS, start=1):
        low, high = SURFACES[kind]
        surface = round(rng.uniform(low, high), 1)
        opened = random_date(rng, date(1968, 1, 1), date(2025, 12, 31))
        pmr = opened.year >= 2005 or rng.random() < 0.6
        lon = ECULLY_CENTRE[0] + rng.uniform(-0.012, 0.012)
        lat = ECULLY_CENTRE[1] + rng.uniform(-0.008, 0.008)
        rows.append([
            100 + index, nom, kind, f"{adresse}, 69130 Écully",
            decimal_comma(surface, 1), "true" if pmr else "false", opened.isoformat(),
            decimal_comma(lat, 4), decimal_comma(lon, 4),
        ])  # fmt: skip
    path = folder / "equipements-sportifs.csv"
    path.write_bytes(csv_text(header, rows, ";", "\r\n").encode("cp1252"))

    number = {"type": "number", "decimalChar": ","}
    write_json(folder / "schema.json", {
        "fields": [
            {"name": "identifiant", "title": "Identifiant", "type": "integer",
             "description": "Identifiant de l'équipement dans l'inventaire communal.",
             "constraints": {"required": True, "unique": True, "minimum": 1}},
            {"name": "nom", "title": "Nom", "type": "string",
             "constraints": {"required": True}},
            {"name": "type_equipement", "title": "Type d'équipement", "type": "string",
             "constraints": {"required": True, "enum": [
                 "gymnase", "stade", "piscine", "tennis", "city-stade", "salle-polyvalente"]}},
            {"name": "adresse", "title": "Adresse", "type": "string",
             "constraints": {"required": True}},
            {"name": "surface_m2", "title": "Surface utile (m²)", **number,
             "constraints": {"required": True, "minimum": 0}},
            {"name": "accessible_pmr", "title": "Accessible aux personnes à mobilité réduite",
             "type": "boolean", "constraints": {"required": True}},
            {"name": "date_mise_en_service", "title": "Date de mise en service", "type": "date"},
            {"name": "latitude", "title": "Latitude (WGS84)", **number,
             "constraints": {"required": True, "minimum": -90, "maximum": 90}},
            {"name": "longitude", "title": "Longitude (WGS84)", **number,
             "constraints": {"required": True, "minimum": -180, "maximum": 180}},
        ],
        "primaryKey": ["identifiant"],
    })  # fmt: skip

    write_text(
        folder / "metadata.yaml",
        """\
identifiant: equipements-sportifs
titre: Équipements sportifs municipaux
description: >-
  Liste des équipements sportifs gérés par la commune d'Écully : gymnases,
  stades, piscines, courts de tennis, city-stades et salles polyvalentes.
  Pour chaque équipement sont indiqués son adresse, sa surface utile en mètres
  carrés, son accessibilité aux personnes à mobilité réduite, sa date de mise
  en service et sa position (latitude et longitude en WGS84).
producteur: ecully
licence: etalab-2.0
frequence: annuelle
modalites_livraison: >-
  Dépôt du fichier par le service des sports chaque année en janvier, après la
  mise à jour de l'inventaire du patrimoine sportif.
date_mise_a_jour: 2026-10-15
mots_cles: [sport, équipements, loisirs, gymnases, accessibilité]
theme: [EDUC]
contact:
  nom: Service des sports
  email: sports@mairie-ecully.fr
couverture_spatiale: Écully
schema: schema.json
donnees_personnelles:
  adresse:
    traitement: non-personnel
    justification: Adresse d'un équipement sportif public, pas d'une personne.
""",
    )
    return path


# --------------------------------------------------------------------------- #
# 2. Écully — bancs publics (GeoJSON points in EPSG:3946 with a legacy crs member)
# --------------------------------------------------------------------------- #


def bancs_publics() -> Path:
    from pyproj import Transformer

    rng = rng_for("bancs-publics")
    folder = submission_dir(INBOX, "ecully", "bancs-publics")
    to_cc46 = Transformer.from_crs("EPSG:4326", "EPSG:3946", always_xy=True)
    features = []
    for id_banc in range(1, 61):
        # Points in an ellipse around the centre of Écully (about 1.8 km x 1.8 km).
        angle, radius = rng.uniform(0, 2 * math.pi), math.sqrt(rng.random())
        lon = ECULLY_CENTRE[0] + 0.011 * radius * math.cos(angle)
        lat = ECULLY_CENTRE[1] + 0.008 * radius * math.sin(angle)
        x, y = to_cc46.transform(lon, lat)
        materiau = rng.choices(["bois", "métal", "béton"], weights=[5, 4, 2])[0]
        pose = random_date(rng, date(1995, 1, 1), date(2026, 9, 30))
        age = 2026 - pose.year
        etat = rng.choices(
            ["bon", "moyen", "mauvais"],
            weights=[8, 2, 0.5] if age < 8 else [3, 4, 2] if age < 20 else [1, 3, 4],
        )[0]
        features.append({
            "type": "Feature",
            "properties": {
                "id_banc": id_banc, "materiau": materiau,
                "date_pose": pose.isoformat(), "etat": etat,
            },
            "geometry": {"type": "Point", "coordinates": [round(x, 2), round(y, 2)]},
        })  # fmt: skip
    collection = {
        "type": "FeatureCollection",
        "name": "bancs-publics",
        "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3946"}},
        "features": features,
    }
    path = folder / "bancs-publics.geojson"
    # One feature per line: readable and diff-friendly.
    lines = [json.dumps(feature, ensure_ascii=False) for feature in features]
    head = json.dumps({k: v for k, v in collection.items() if k != "features"}, ensure_ascii=False)
    text = head[:-1] + ',\n"features": [\n' + ",\n".join(lines) + "\n]\n}\n"
    assert json.loads(text) == collection
    write_text(path, text)

    write_text(
        folder / "metadata.yaml",
        """\
identifiant: bancs-publics
titre: Bancs publics
description: >-
  Inventaire des bancs installés sur l'espace public de la commune d'Écully
  (places, parcs, abords des écoles et arrêts de bus). Chaque banc est
  localisé par un point en coordonnées RGF93 / CC46 et décrit par son
  matériau, sa date de pose et l'état constaté lors de la dernière tournée
  d'inspection.
producteur: ecully
licence: etalab-2.0
frequence: semestrielle
modalites_livraison: >-
  Export GeoJSON du SIG communal déposé par le service voirie et espaces
  publics après chaque tournée d'inspection, en avril et en octobre.
date_mise_a_jour: 2026-10-28
mots_cles: [mobilier urbain, bancs, espace public, voirie]
theme: [REGI]
contact:
  nom: Service voirie et espaces publics
  email: espaces-publics@mairie-ecully.fr
systeme_coordonnees: EPSG:3946
couverture_spatiale: Écully
""",
    )
    return path


# --------------------------------------------------------------------------- #
# 3. Vaulx-en-Velin — pistes cyclables (zipped Shapefile, lines in EPSG:2154)
# --------------------------------------------------------------------------- #

VOIES_VAULX = [
    "Avenue du 8 Mai 1945",
    "Rue de la République",
    "Chemin du Grand Bois",
    "Promenade du Canal de Jonage",
    "Rue des Verchères",
    "Avenue de Bohlen",
    "Rue du Canal",
    "Allée du Mas du Taureau",
    "Chemin de la Ferme",
    "Rue de la Grappinière",
    "Avenue des Noirettes",
    "Boulevard urbain Est",
    "Rue du Pré de l'Herpe",
    "Chemin de l'Écoin",
    "Rue des Cervelières",
    "Allée du Parc des Droits de l'Homme",
    "Rue de la Poudrette",
    "Avenue du Village",
    "Chemin des Rizières",
    "Rue du Lycée",
]
AMENAGEMENTS = ["piste", "bande", "voie-verte", "double-sens-cyclable"]
# DBF field names are limited to 10 characters: `type_amenagement` cannot be
# stored in a shapefile, so the attribute is written `type_amgt`.
SHAPEFILE_PARTS = (".shp", ".shx", ".dbf", ".prj", ".cpg")


def pistes_cyclables() -> Path:
    import geopandas as gpd
    from pyproj import Transformer
    from shapely.geometry import LineString

    rng = rng_for("pistes-cyclables")
    folder = submission_dir(INBOX, "vaulx-en-velin", "pistes-cyclables")
    cx, cy = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True).transform(*VAULX_CENTRE)
    half_width, half_height = 1600.0, 1100.0  # box kept well inside the commune
    records = []
    for id_troncon in range(1, 31):
        x, y = cx + rng.uniform(-1200, 1200), cy + rng.uniform(-800, 800)
        heading = rng.choice([0, 90, 180, 270]) + rng.uniform(-25, 25)
        points = [(x, y)]
        for _ in range(rng.randint(1, 5)):
            heading += rng.uniform(-35, 35)
            step = rng.uniform(60, 320)
            x += step * math.cos(math.radians(heading))
            y += step * math.sin(math.radians(heading))
            x = min(max(x, cx - half_width), cx + half_width)
            y = min(max(y, cy - half_height), cy + half_height)
            points.append((x, y))
        line = LineString([(round(px, 2), round(py, 2)) for px, py in points])
        if line.length < 40:  # a step clipped against the box: push the line away from it
            line = LineString([*line.coords[:1], (line.coords[0][0] + 150.0, line.coords[0][1])])
        records.append({
            "id_troncon": id_troncon,
            "nom_voie": rng.choice(VOIES_VAULX),
            "type_amgt": rng.choices(AMENAGEMENTS, weights=[4, 3, 2, 2])[0],
            "longueur_m": round(line.length, 1),
            "annee": rng.randint(2008, 2026),
            "geometry": line,
        })  # fmt: skip
    frame = gpd.GeoDataFrame(records, geometry="geometry", crs="EPSG:2154")

    path = folder / "pistes-cyclables.zip"
    with tempfile.TemporaryDirectory() as tmp:
        shapefile = Path(tmp) / "pistes-cyclables.shp"
        frame.to_file(shapefile, driver="ESRI Shapefile", encoding="UTF-8")
        # The DBF header carries the date of writing (bytes 1-3: YY-1900, MM, DD):
        # pin it so that the zip is the same whatever day the generator runs.
        dbf = shapefile.with_suffix(".dbf")
        content = bytearray(dbf.read_bytes())
        content[1:4] = bytes([ZIP_TIMESTAMP[0] - 1900, ZIP_TIMESTAMP[1], ZIP_TIMESTAMP[2]])
        dbf.write_bytes(bytes(content))
        with zipfile.ZipFile(path, "w") as archive:
            for suffix in SHAPEFILE_PARTS:
                part = shapefile.with_suffix(suffix)
                entry = zipfile.ZipInfo(part.name, date_time=ZIP_TIMESTAMP)
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = 0o644 << 16
                archive.writestr(entry, part.read_bytes())

    write_text(
        folder / "metadata.yaml",
        """\
identifiant: pistes-cyclables
titre: Aménagements cyclables
description: >-
  Tronçons d'aménagements cyclables de la commune de Vaulx-en-Velin : pistes,
  bandes, voies vertes et double-sens cyclables. Chaque tronçon est une ligne
  en Lambert-93 décrite par le nom de la voie, le type d'aménagement
  (attribut type_amgt), sa longueur en mètres et l'année de sa réalisation.
producteur: vaulx-en-velin
licence: odbl-1.0
frequence: semestrielle
modalites_livraison: >-
  Shapefile zippé exporté du SIG communal et déposé par le service mobilités
  en janvier et en juillet.
date_mise_a_jour: 2026-07-06
mots_cles: [vélo, mobilité, pistes cyclables, aménagements cyclables]
theme: [TRAN]
contact:
  nom: Service mobilités
  email: mobilites@mairie-vaulx-en-velin.fr
systeme_coordonnees: EPSG:2154
couverture_spatiale: Vaulx-en-Velin
""",
    )
    return path


# --------------------------------------------------------------------------- #
# 4. Vaulx-en-Velin — subventions aux associations (XLSX, real Excel dates)
# --------------------------------------------------------------------------- #

ASSOCIATIONS = [
    # (association, secteur, objets possibles)
    (
        "Association sportive du Mas du Taureau",
        "sport",
        ["Fonctionnement de la section football", "Tournoi de quartier de l'été"],
    ),
    (
        "Les Amis de la Médiathèque",
        "culture",
        ["Rencontres autour du livre jeunesse", "Fonctionnement annuel"],
    ),
    (
        "Vaulx Basket Avenir",
        "sport",
        ["Fonctionnement de l'école de basket", "Déplacements en championnat régional"],
    ),
    (
        "Compagnie théâtrale Les Tréteaux de l'Est",
        "culture",
        ["Création d'un spectacle en résidence", "Ateliers de théâtre pour les collégiens"],
    ),
    (
        "Entraide et Solidarité Vaudaise",
        "social",
        ["Épicerie solidaire", "Accompagnement administratif des familles"],
    ),
    ("Club de judo du Village", "sport", ["Fonctionnement annuel", "Stage de printemps"]),
    (
        "Atelier de couture de la Grappinière",
        "social",
        ["Ateliers intergénérationnels", "Achat de machines à coudre"],
    ),
    (
        "Réussite Éducative aux Noirettes",
        "éducation",
        ["Accompagnement à la scolarité", "Sorties éducatives des vacances"],
    ),
    (
        "Harmonie municipale de Vaulx-en-Velin",
        "culture",
        ["Concert de la fête de la musique", "Fonctionnement de l'école de musique"],
    ),
    (
        "Les Jardins partagés de l'Écoin",
        "social",
        ["Aménagement des parcelles collectives", "Animations de quartier"],
    ),
    (
        "Association des parents d'élèves du Pré de l'Herpe",
        "éducation",
        ["Fête de fin d'année scolaire", "Bourse aux fournitures"],
    ),
    (
        "Vaulx Natation",
        "sport",
        ["Apprentissage de la natation pour les enfants", "Fonctionnement annuel"],
    ),
    ("Ciné-club du Canal", "culture", ["Projections en plein air", "Festival du court métrage"]),
    (
        "Maison des Jeunes des Cervelières",
        "éducation",
        ["Aide aux devoirs", "Séjour éducatif d'été"],
    ),
    ("Cyclo-club vaudais", "sport", ["Randonnée cyclotouriste du canal", "Fonctionnement annuel"]),
    (
        "Alphabétisation et Savoirs",
        "éducation",
        ["Cours de français pour adultes", "Ateliers numériques"],
    ),
    (
        "Banque alimentaire de quartier",
        "social",
        ["Collecte et distribution alimentaire", "Achat d'un véhicule frigorifique"],
    ),
    (
        "Collectif Hip-Hop du Sud",
        "culture",
        ["Battle annuel de danse", "Ateliers de danse hip-hop"],
    ),
]
SEANCES_CONSEIL = [  # dates of the municipal council's sessions
    date(2024, 2, 8), date(2024, 3, 28), date(2024, 6, 27), date(2024, 9, 26),
    date(2024, 12, 12), date(2025, 2, 6), date(2025, 3, 27), date(2025, 6, 26),
    date(2025, 9, 25), date(2025, 12, 11), date(2026, 2, 5), date(2026, 3, 26),
    date(2026, 6, 25), date(2026, 9, 24),
]  # fmt: skip


def subventions_associations() -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    rng = rng_for("subventions-associations")
    folder = submission_dir(INBOX, "vaulx-en-velin", "subventions-associations")
    rows = []
    for _ in range(40):
        association, secteur, objets = rng.choice(ASSOCIATIONS)
        seance = rng.choice(SEANCES_CONSEIL)
        if rng.random() < 0.55:  # round amounts are the most common…
            montant = float(rng.randrange(300, 18000, 50))
        else:  # … but some are computed to the cent
            montant = round(rng.uniform(250, 15000), 2)
        rows.append([seance.year, association, rng.choice(objets), montant, seance, secteur])
    rows.sort(key=lambda row: (row[4], row[1]))

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Subventions"
    header = ["annee", "association", "objet", "montant_eur", "date_deliberation", "secteur"]
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(row)
    for row in sheet.iter_rows(min_row=2):
        row[3].number_format = "#,##0.00"
        row[4].number_format = "DD/MM/YYYY"
    for column, width in zip("ABCDEF", (8, 48, 48, 14, 18, 12), strict=True):
        sheet.column_dimensions[column].width = width
    sheet.freeze_panes = "A2"
    workbook.properties.creator = "Service de la vie associative"
    workbook.properties.title = "Subventions aux associations"

    buffer = io.BytesIO()
    workbook.save(buffer)

    def pin_dates(xml: bytes) -> bytes:  # created/modified timestamps of docProps/core.xml
        stamp = "2026-10-05T08:00:00Z"
        text = xml.decode("utf-8")
        for tag in ("dcterms:created", "dcterms:modified"):
            text = re.sub(rf"(<{tag}[^>]*>)[^<]*(</{tag}>)", rf"\g<1>{stamp}\g<2>", text)
        return text.encode("utf-8")

    path = folder / "subventions-associations.xlsx"
    path.write_bytes(rezip(buffer.getvalue(), {"docProps/core.xml": pin_dates}))

    write_text(
        folder / "metadata.yaml",
        """\
identifiant: subventions-associations
titre: Subventions aux associations
description: >-
  Subventions de fonctionnement et de projet attribuées par la commune de
  Vaulx-en-Velin aux associations, par délibération du conseil municipal.
  Chaque ligne indique l'année, l'association bénéficiaire, l'objet de la
  subvention, son montant en euros, la date de la délibération et le secteur
  (culture, sport, social, éducation).
producteur: vaulx-en-velin
licence: etalab-2.0
frequence: trimestrielle
modalites_livraison: >-
  Tableau XLSX déposé par le service de la vie associative à la fin de chaque
  trimestre, avec les subventions votées lors des conseils municipaux du
  trimestre.
date_mise_a_jour: 2026-10-05
mots_cles: [associations, subventions, vie associative, budget]
theme: [GOVE, SOCI]
contact:
  nom: Service de la vie associative
  email: vie-associative@mairie-vaulx-en-velin.fr
couverture_spatiale: Vaulx-en-Velin
""",
    )
    return path


# --------------------------------------------------------------------------- #
# 5. Lyon — fontaines d'eau potable (CSV , UTF-8 with BOM) and 6. its invalid twin
# --------------------------------------------------------------------------- #

ARRONDISSEMENTS = {  # approximate WGS84 centre (lon, lat) and a few public places
    1: (
        (4.8300, 45.7690),
        [
            "place des Terreaux",
            "jardin des Chartreux",
            "place de la Comédie",
            "montée de la Grande Côte",
            "quai de la Pêcherie",
        ],
    ),
    2: (
        (4.8290, 45.7510),
        [
            "place Bellecour",
            "place des Célestins",
            "place des Jacobins",
            "place de la République",
            "quai des Célestins",
        ],
    ),
    3: (
        (4.8560, 45.7590),
        [
            "jardin de la Part-Dieu",
            "place du Lac",
            "place de la Ferrandière",
            "square de Montchat",
            "place du Château",
        ],
    ),
    4: (
        (4.8270, 45.7790),
        [
            "place de la Croix-Rousse",
            "boulevard de la Croix-Rousse",
            "place des Tapis",
            "place Bellevue",
            "Gros Caillou",
        ],
    ),
    5: (
        (4.8150, 45.7600),
        [
            "place Saint-Jean",
            "jardin du Rosaire",
            "parc des Hauteurs",
            "place Saint-Paul",
            "place du Change",
        ],
    ),
    6: (
        (4.8530, 45.7710),
        [
            "parc de la Tête d'Or",
            "boulevard des Belges",
            "place de l'Europe",
            "square des Brotteaux",
            "Cité internationale",
        ],
    ),
    7: (
        (4.8420, 45.7440),
        [
            "parc de Gerland",
            "berges du Rhône",
            "place des Pavillons",
            "jardin des Girondins",
            "place de la Guillotière",
        ],
    ),
    8: (
        (4.8700, 45.7360),
        [
            "parc des États-Unis",
            "place du Huit-Mai-1945",
            "square du Bachut",
            "parc du Clos Layat",
            "square de Monplaisir",
        ],
    ),
    9: (
        (4.8060, 45.7740),
        [
            "place de Valmy",
            "parc de la Cressonnière",
            "quai de Saône",
            "place de la Duchère",
            "parc du Vallon",
        ],
    ),
}
MODELES = ["Bayard", "Wallace", "autre"]
FONTAINES_HEADER = [
    "id_fontaine", "nom", "arrondissement", "modele", "en_service", "latitude", "longitude",
]  # fmt: skip


def fontaine_rows(rng: random.Random, count: int) -> list[list[object]]:
    rows = []
    for number in range(1, count + 1):
        arrondissement = rng.randint(1, 9)
        (lon, lat), places = ARRONDISSEMENTS[arrondissement]
        modele = rng.choices(MODELES, weights=[6, 2, 2])[0]
        kind = {"Bayard": "Borne-fontaine Bayard", "Wallace": "Fontaine Wallace",
                "autre": "Fontaine à boire"}[modele]  # fmt: skip
        rows.append([
            f"F{number:04d}", f"{kind}, {rng.choice(places)}", arrondissement, modele,
            "true" if rng.random() < 0.88 else "false",
            f"{lat + rng.uniform(-0.004, 0.004):.6f}", f"{lon + rng.uniform(-0.005, 0.005):.6f}",
        ])  # fmt: skip
    return rows


FONTAINES_SCHEMA = {
    "fields": [
        {"name": "id_fontaine", "title": "Identifiant de la fontaine", "type": "string",
         "description": "F suivi de quatre chiffres, ex. F0042.",
         "constraints": {"required": True, "pattern": r"^F\d{4}$"}},
        {"name": "nom", "title": "Nom", "type": "string", "constraints": {"required": True}},
        {"name": "arrondissement", "title": "Arrondissement", "type": "integer",
         "constraints": {"required": True, "minimum": 1, "maximum": 9}},
        {"name": "modele", "title": "Modèle", "type": "string",
         "constraints": {"required": True, "enum": MODELES}},
        {"name": "en_service", "title": "En service", "type": "boolean",
         "constraints": {"required": True}},
        {"name": "latitude", "title": "Latitude (WGS84)", "type": "number",
         "constraints": {"required": True, "minimum": 45.70, "maximum": 45.82}},
        {"name": "longitude", "title": "Longitude (WGS84)", "type": "number",
         "constraints": {"required": True, "minimum": 4.77, "maximum": 4.90}},
    ],
    "primaryKey": ["id_fontaine"],
}  # fmt: skip

FONTAINES_METADATA = """\
identifiant: fontaines-eau-potable
titre: Fontaines d'eau potable
description: >-
  Fontaines et bornes-fontaines d'eau potable accessibles au public dans les
  neuf arrondissements de Lyon. Pour chaque fontaine sont indiqués son
  identifiant, son nom, l'arrondissement, le modèle (Bayard, Wallace ou autre),
  si elle est en service et sa position (latitude et longitude en WGS84).
producteur: lyon
licence: etalab-2.0
frequence: mensuelle
modalites_livraison: >-
  Fichier CSV déposé par la direction de l'eau le premier jour ouvré de chaque
  mois ; les fontaines fermées pour l'hiver y figurent avec en_service à false.
date_mise_a_jour: {date}
mots_cles: [eau potable, fontaines, espace public, santé]
theme: [ENVI, HEAL]
contact:
  nom: Direction de l'eau
  email: eau@mairie-lyon.fr
couverture_spatiale: Lyon
schema: schema.json
"""


def write_fontaines(folder: Path, rows: list[list[object]], updated: date) -> Path:
    path = folder / "fontaines-eau-potable.csv"
    path.write_bytes(csv_text(FONTAINES_HEADER, rows, ",", "\n").encode("utf-8-sig"))
    write_json(folder / "schema.json", FONTAINES_SCHEMA)
    write_text(folder / "metadata.yaml", FONTAINES_METADATA.format(date=updated.isoformat()))
    return path


def fontaines_eau_potable() -> Path:
    folder = submission_dir(INBOX, "lyon", "fontaines-eau-potable")
    rows = fontaine_rows(rng_for("fontaines-eau-potable"), 80)
    return write_fontaines(folder, rows, date(2026, 10, 1))


@dataclass(frozen=True)
class InjectedError:
    index: int  # position among the data rows (0 = first row after the header)
    column: str
    value: str
    rule: str  # what the producer broke, in words
    frictionless: str  # error type frictionless reports

    @property
    def line(self) -> int:  # line number in the file, header = line 1
        return self.index + 2


INJECTED_ERRORS = [
    InjectedError(2, "arrondissement", "douze", "type : entier attendu", "type-error"),
    InjectedError(5, "arrondissement", "12", "contrainte maximum = 9", "constraint-error"),
    InjectedError(8, "nom", "", "contrainte required (valeur obligatoire manquante)",
                  "constraint-error"),
    InjectedError(11, "id_fontaine", "F0004",
                  "clé primaire : identifiant déjà utilisé ligne 5", "primary-key"),
    InjectedError(13, "id_fontaine", "X12", "contrainte pattern `^F\\d{4}$`", "constraint-error"),
    InjectedError(16, "modele", "Inconnu", "contrainte enum (Bayard, Wallace, autre)",
                  "constraint-error"),
    InjectedError(18, "en_service", "peut-être", "type : booléen attendu (true/false)",
                  "type-error"),
]  # fmt: skip


def fontaines_invalid() -> Path:
    folder = submission_dir(INVALID, "lyon", "fontaines-eau-potable")
    # The first 20 fountains of the valid file, with one error injected per faulty row.
    rows = fontaine_rows(rng_for("fontaines-eau-potable"), 80)[:20]
    for error in INJECTED_ERRORS:
        rows[error.index][FONTAINES_HEADER.index(error.column)] = error.value
    path = write_fontaines(folder, rows, date(2026, 11, 2))

    table = "\n".join(
        f"| {e.line} | `{e.column}` | {f'`{e.value}`' if e.value else '(vide)'} | {e.rule} "
        f"| `{e.frictionless}` |"
        for e in INJECTED_ERRORS
    )
    write_text(
        INVALID / "README.md",
        f"""\
# Soumissions invalides

Échantillons **volontairement faux**, pour tester les rapports d'erreur du
pipeline. Ils ne sont pas dans `inbox/` et ne sont donc jamais publiés par la
démonstration. Fichiers générés par `samples/make_samples.py` (ne pas modifier
à la main).

## `lyon/fontaines-eau-potable/`

Même jeu de données que `inbox/lyon/fontaines-eau-potable/` : même
`identifiant`, même `schema.json`, même `metadata.yaml` à l'exception de
`date_mise_a_jour` (2026-11-02, plus récente). Le fichier
`fontaines-eau-potable.csv` (UTF-8 avec BOM, séparateur `,`) reprend les 20
premières fontaines du fichier valide, dans lesquelles {len(INJECTED_ERRORS)}
erreurs ont été injectées, une par ligne fautive. Numéros de ligne du fichier,
l'en-tête étant la ligne 1 (c'est aussi le `rowNumber` de frictionless ;
l'erreur `primary-key` porte sur la ligne entière, sans `fieldName`).

| ligne | colonne | valeur | règle enfreinte | erreur frictionless |
|---|---|---|---|---|
{table}

Toutes les autres lignes sont valides. `frictionless validate` du fichier avec
son `schema.json` rapporte exactement ces {len(INJECTED_ERRORS)} erreurs (vérifié par
`make_samples.py --check`) ; le pipeline doit donc refuser la soumission avec
ces {len(INJECTED_ERRORS)} erreurs et laisser publiée la version précédente.
""",
    )
    return path


# --------------------------------------------------------------------------- #
# Verification (--check)
# --------------------------------------------------------------------------- #

LYON_AREA = {"lon": (4.7, 5.0), "lat": (45.65, 45.85)}


def check() -> list[str]:
    """Read every sample back; return the list of failures (empty when all is well)."""
    import frictionless
    import geopandas as gpd
    import pandas as pd
    import yaml
    from frictionless import formats

    failures: list[str] = []

    def expect(condition: bool, message: str) -> None:
        print(("  ok   " if condition else "  FAIL ") + message)
        if not condition:
            failures.append(message)

    def validate(path: Path, **options: object) -> frictionless.Report:
        """Validate a data file against the schema.json beside it (relative path: frictionless
        refuses absolute paths as unsafe)."""
        descriptor = json.loads(path.with_name("schema.json").read_text(encoding="utf-8"))
        schema = frictionless.Schema.from_descriptor(descriptor)
        resource = frictionless.Resource(
            path.name, basepath=str(path.parent), schema=schema, **options
        )
        return resource.validate()

    def in_lyon_area(lon: pd.Series, lat: pd.Series) -> bool:
        return bool(lon.between(*LYON_AREA["lon"]).all() and lat.between(*LYON_AREA["lat"]).all())

    print("Submission folders")
    expected_files = {
        INBOX / "ecully" / "equipements-sportifs": {"equipements-sportifs.csv", "schema.json"},
        INBOX / "ecully" / "bancs-publics": {"bancs-publics.geojson"},
        INBOX / "vaulx-en-velin" / "pistes-cyclables": {"pistes-cyclables.zip"},
        INBOX / "vaulx-en-velin" / "subventions-associations": {"subventions-associations.xlsx"},
        INBOX / "lyon" / "fontaines-eau-potable": {"fontaines-eau-potable.csv", "schema.json"},
        INVALID / "lyon" / "fontaines-eau-potable": {"fontaines-eau-potable.csv", "schema.json"},
    }
    for folder, files in expected_files.items():
        present = {p.name for p in folder.iterdir()}
        name = folder.relative_to(SAMPLES)
        expect(present == files | {"metadata.yaml"}, f"{name}: {sorted(present)}")
        document = yaml.safe_load((folder / "metadata.yaml").read_text(encoding="utf-8"))
        expect(document["identifiant"] == folder.name, f"  identifiant = {folder.name}")
        expect(document["producteur"] == folder.parent.name, f"  producteur = {folder.parent.name}")
        expect(
            date(2026, 1, 1) <= document["date_mise_a_jour"] < date(2026, 11, 20),
            f"  date_mise_a_jour {document['date_mise_a_jour']} in 2026 before 2026-11-20",
        )
        if (folder / "schema.json").exists():
            descriptor = json.loads((folder / "schema.json").read_text(encoding="utf-8"))
            frictionless.Schema.from_descriptor(descriptor)
            expect(True, "  schema.json loads with frictionless.Schema.from_descriptor")

    print("1. equipements-sportifs.csv")
    path = INBOX / "ecully" / "equipements-sportifs" / "equipements-sportifs.csv"
    raw = path.read_bytes()
    try:
        raw.decode("utf-8")
        expect(False, "does not decode as UTF-8")
    except UnicodeDecodeError:
        expect(True, "does not decode as UTF-8")
    text = raw.decode("cp1252")
    expect("Gymnase du Pérollier" in text and "Stade Intercommunal" in text, "decodes as cp1252")
    expect(text.count("\r\n") == text.count("\n") == 26, "CRLF line endings")
    frame = pd.read_csv(path, sep=";", encoding="cp1252", decimal=",")
    expect(len(frame) == 25 and frame["identifiant"].is_unique, f"{len(frame)} rows")
    expect(in_lyon_area(frame["longitude"], frame["latitude"]), "coordinates in the Lyon area")
    report = validate(path, encoding="cp1252", control=formats.CsvControl(delimiter=";"))
    expect(report.valid, f"frictionless valid ({report.stats['errors']} errors)")

    print("2. bancs-publics.geojson")
    path = INBOX / "ecully" / "bancs-publics" / "bancs-publics.geojson"
    frame = gpd.read_file(path)
    expect(len(frame) == 60, f"{len(frame)} points")
    expect(frame.crs.to_epsg() == 3946, f"CRS EPSG:{frame.crs.to_epsg()}")
    expect(set(frame.geom_type) == {"Point"}, "Point geometries")
    wgs = frame.to_crs(4326)
    expect(in_lyon_area(wgs.geometry.x, wgs.geometry.y), "coordinates in the Lyon area")
    expect(
        wgs.geometry.x.between(4.755, 4.80).all() and wgs.geometry.y.between(45.76, 45.79).all(),
        f"inside Écully: lon {wgs.geometry.x.min():.4f}..{wgs.geometry.x.max():.4f}, "
        f"lat {wgs.geometry.y.min():.4f}..{wgs.geometry.y.max():.4f}",
    )

    print("3. pistes-cyclables.zip")
    path = INBOX / "vaulx-en-velin" / "pistes-cyclables" / "pistes-cyclables.zip"
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
    expect(names == sorted(f"pistes-cyclables{s}" for s in SHAPEFILE_PARTS), f"zip root: {names}")
    frame = gpd.read_file(f"zip://{path}")
    expect(len(frame) == 30, f"{len(frame)} lines")
    expect(frame.crs.to_epsg() == 2154, f"CRS EPSG:{frame.crs.to_epsg()}")
    expect(set(frame.geom_type) == {"LineString"}, "LineString geometries")
    expect((frame.length.round(1) - frame["longueur_m"]).abs().max() < 0.051, "longueur_m = length")
    expect(frame["nom_voie"].str.contains("é").any(), "accented attribute values read back")
    coords = frame.to_crs(4326).get_coordinates()
    expect(in_lyon_area(coords.x, coords.y), "coordinates in the Lyon area")
    expect(
        coords.x.between(4.89, 4.96).all() and coords.y.between(45.76, 45.80).all(),
        f"inside Vaulx-en-Velin: lon {coords.x.min():.4f}..{coords.x.max():.4f}, "
        f"lat {coords.y.min():.4f}..{coords.y.max():.4f}",
    )

    print("4. subventions-associations.xlsx")
    path = INBOX / "vaulx-en-velin" / "subventions-associations" / "subventions-associations.xlsx"
    frame = pd.read_excel(path, sheet_name=0)
    expect(len(frame) == 40, f"{len(frame)} rows")
    expect(str(frame["date_deliberation"].dtype).startswith("datetime64"), "real Excel dates")
    expect(frame["montant_eur"].dtype == float, "montant_eur float")
    expect(set(frame["secteur"]) <= {"culture", "sport", "social", "éducation"}, "secteurs")

    print("5. fontaines-eau-potable.csv")
    path = INBOX / "lyon" / "fontaines-eau-potable" / "fontaines-eau-potable.csv"
    expect(path.read_bytes().startswith(b"\xef\xbb\xbf"), "starts with the UTF-8 BOM")
    frame = pd.read_csv(path, encoding="utf-8-sig")
    expect(len(frame) == 80 and frame["id_fontaine"].is_unique, f"{len(frame)} rows")
    expect(in_lyon_area(frame["longitude"], frame["latitude"]), "coordinates in the Lyon area")
    report = validate(path)
    expect(report.valid, f"frictionless valid ({report.stats['errors']} errors)")

    print("6. invalid/lyon/fontaines-eau-potable.csv")
    path = INVALID / "lyon" / "fontaines-eau-potable" / "fontaines-eau-potable.csv"
    frame = pd.read_csv(path, encoding="utf-8-sig", dtype=str)
    expect(len(frame) == 20, f"{len(frame)} rows")
    report = validate(path)
    found = [(e["type"], e.get("rowNumber"), e.get("fieldName")) for e in
             report.to_descriptor()["tasks"][0]["errors"]]  # fmt: skip
    for error in found:
        print(f"       frictionless: {error}")
    # primary-key is a row error: frictionless gives no fieldName for it.
    expected = [
        (e.frictionless, e.line, None if e.frictionless == "primary-key" else e.column)
        for e in INJECTED_ERRORS
    ]
    expect(found == expected, "frictionless reports exactly the documented errors")
    return failures


def signalements_espace_public() -> Path:
    """The sample with personal data: see samples/personal.py."""
    from personal_sample import write_signalements

    return write_signalements(submission_dir(INBOX, "lyon", "signalements-espace-public"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="read the samples back and validate")
    arguments = parser.parse_args()
    for make in (
        equipements_sportifs, bancs_publics, pistes_cyclables, subventions_associations,
        fontaines_eau_potable, fontaines_invalid, signalements_espace_public,
    ):  # fmt: skip
        path = make()
        print(f"wrote {path.relative_to(SAMPLES.parent)}")
    if arguments.check:
        failures = check()
        print(f"\n{len(failures)} failure(s)" if failures else "\nall checks passed")
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
