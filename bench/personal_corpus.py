"""Generated personal corpus: French personal data with known labels, for measuring detectors.

Every table holds personal columns of one theme beside non-personal control columns
(montant, date_depot, categorie, commune, statut). Each table exists twice with the same
values: once with explicit column names (`nom`, `telephone`, `latitude`…) and once with
neutral names (`c01`, `c02`… in a shuffled order), so that the effect of the header alone
can be measured. Free-text columns also record, row by row, the exact name strings that
were inserted into each sentence, so that recall on names inside text can be measured.

    from bench.personal_corpus import generated_corpus
    for item in generated_corpus(seed=7): ...

Deterministic: the same seed gives the same corpus (seeded `random.Random` and Faker).
"""

from __future__ import annotations

import datetime as dt
import random
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
from faker import Faker
from faker.providers.person.fr_FR import Provider as FrenchNames
from stdnum.fr import nir as std_nir

# --- labels -----------------------------------------------------------------------------------

KINDS = (
    "nom",
    "prenom",
    "nom_complet",
    "courriel",
    "telephone",
    "nir",
    "iban",
    "date_naissance",
    "adresse_domicile",
    "coordonnees_domicile",
    "plaque",
    "texte_libre",
    "quasi_identifiant",
)
CONTROL_COLUMNS = ("montant", "date_depot", "categorie", "commune", "statut")


@dataclass
class CorpusTable:
    name: str
    table: pa.Table
    # Column -> expected kind (one of KINDS), or None for a non-personal control column.
    expected: dict[str, str | None]
    # Free-text column -> for each row, the exact name strings inserted into it.
    free_text_names: dict[str, list[list[str]]]
    # Column -> the shape of its values ("texte 06 12 34 56 78", "int64 9 chiffres"…).
    variants: dict[str, str] = field(default_factory=dict)
    # "explicite" or "neutre": how the columns are named.
    headers: str = "explicite"
    # Free-text column -> for each row, what each inserted name is, in the same order as
    # free_text_names: "prénom", "nom", "NOM" (in capitals) or "second prénom".
    free_text_roles: dict[str, list[list[str]]] = field(default_factory=dict)


# --- name lists -------------------------------------------------------------------------------

RARE_SURNAMES = [
    "Le Goff",
    "De La Fontaine",
    "N'Diaye",
    "Le Floc'h",
    "Kerhervé",
    "Abgrall",
    "Quéméneur",
    "Vandenbroucke",
    "Etcheverry",
    "Zimmermann",
    "Ould Ahmed",
    "Ben Salah",
    "Van der Berg",
    "D'Arcy",
    "L'Hermitte",
    "Le Bihan",
    "Diallo",
    "Traoré",
    "Nguyen",
    "Tran",
    "Benali",
    "Haddad",
    "Kowalski",
    "Ferreira",
    "Pham",
    "Cissé",
    "Bouaziz",
    "Mbappé",
    "Ortega y Gasset",
    "Du Plessis",
    "Saint-Cyr",
    "Lacroix-Riz",
    "Puech d'Alissac",
    "Guérin-Boutaud",
    "Poulain-Grandjean",
    "Chapuis",
    "Tardy",
    "Brossard",
    "Coquard",
    "Vuillermoz",
    "Grosjean",
    "Perrachon",
    "Mouterde",
    "Thévenet",
    "Jacquemet",
    "Bourgeat",
    "Reboul",
    "Jourdanet",
    "Achard",
    "Dufournel",
    "Yilmaz",
    "Öztürk",
    "Mendes",
    "Khelifi",
    "Chaouch",
    "Mansouri",
    "Ait Ouali",
    "Essafi",
    "Le Meur",
    "Pellerin",
]
COMPOSED_MALE = [
    "Jean-Pierre",
    "Jean-Luc",
    "Jean-Baptiste",
    "Pierre-Louis",
    "Jean-Christophe",
    "Jean-Marc",
    "Paul-Henri",
    "Jean-François",
    "Marc-Antoine",
    "Louis-Marie",
]
COMPOSED_FEMALE = [
    "Marie-Claire",
    "Anne-Sophie",
    "Marie-Thérèse",
    "Marie-Hélène",
    "Anne-Laure",
    "Marie-Christine",
    "Marie-Pierre",
    "Anne-Charlotte",
    "Marie-José",
    "Lou-Ann",
]
RARE_MALE = [
    "Gaspard",
    "Anatole",
    "Ghislain",
    "Enguerrand",
    "Marceau",
    "Aurèle",
    "Eudes",
    "Théophraste",
    "Gonzague",
    "Évariste",
    "Isidore",
    "Barnabé",
]
RARE_FEMALE = [
    "Philomène",
    "Eulalie",
    "Hortense",
    "Bertille",
    "Gwenaëlle",
    "Maïwenn",
    "Solène",
    "Apolline",
    "Ysaline",
    "Clothilde",
    "Séverine",
    "Azilis",
]
FOREIGN_MALE = [
    "Mohamed",
    "Karim",
    "Moussa",
    "Mamadou",
    "Ibrahim",
    "Youssef",
    "Rayan",
    "Sofiane",
    "Adama",
    "Samir",
    "Mehdi",
    "Wei",
    "Minh",
    "Oussama",
    "Ilyes",
    "Kevin",
    "Dylan",
    "Enzo",
    "Bilal",
    "Hamza",
    "Nikola",
    "Giovanni",
    "Joao",
]
FOREIGN_FEMALE = [
    "Yasmine",
    "Fatima",
    "Nour",
    "Inès",
    "Aya",
    "Aminata",
    "Kenza",
    "Lina",
    "Leïla",
    "Fatoumata",
    "Mei",
    "Thi Thu",
    "Awa",
    "Samira",
    "Nadia",
    "Jessica",
    "Ana",
    "Oksana",
    "Mariam",
    "Salomé",
    "Kadiatou",
    "Djeneba",
]

CIVILITY = {"M": ["M.", "Monsieur"], "F": ["Mme", "Madame"]}

MAIL_DOMAINS = [
    "gmail.com",
    "orange.fr",
    "free.fr",
    "laposte.net",
    "hotmail.fr",
    "yahoo.fr",
    "sfr.fr",
    "outlook.fr",
    "wanadoo.fr",
    "icloud.com",
    "protonmail.com",
]

COMMUNES = {
    # INSEE code -> (name, postcodes)
    "69123": (
        "Lyon",
        ["69001", "69002", "69003", "69004", "69005", "69006", "69007", "69008", "69009"],
    ),
    "69266": ("Villeurbanne", ["69100"]),
    "69259": ("Vénissieux", ["69200"]),
    "69290": ("Saint-Priest", ["69800"]),
    "69034": ("Caluire-et-Cuire", ["69300"]),
    "69029": ("Bron", ["69500"]),
    "69256": ("Vaulx-en-Velin", ["69120"]),
    "69286": ("Rillieux-la-Pape", ["69140"]),
    "69149": ("Oullins-Pierre-Bénite", ["69600", "69310"]),
    "69081": ("Écully", ["69130"]),
    "69244": ("Tassin-la-Demi-Lune", ["69160"]),
    "69282": ("Meyzieu", ["69330"]),
    "69275": ("Décines-Charpieu", ["69150"]),
    "69091": ("Givors", ["69700"]),
    "69204": ("Saint-Genis-Laval", ["69230"]),
    "69202": ("Sainte-Foy-lès-Lyon", ["69110"]),
    "69273": ("Corbas", ["69960"]),
    "69283": ("Mions", ["69780"]),
    "69043": ("Charbonnières-les-Bains", ["69260"]),
    "69089": ("Francheville", ["69340"]),
    "69152": ("Pierre-Bénite", ["69310"]),
    "69199": ("Saint-Fons", ["69190"]),
    "69250": ("Neuville-sur-Saône", ["69250"]),
    "69168": ("La Mulatière", ["69350"]),
    "69271": ("Chassieu", ["69680"]),
    "69040": ("Champagne-au-Mont-d'Or", ["69410"]),
}
CATEGORIES = [
    "voirie",
    "propreté",
    "éclairage public",
    "espaces verts",
    "stationnement",
    "bruit",
    "périscolaire",
    "logement",
    "aide sociale",
    "culture",
    "sport",
]
STATUSES = ["déposé", "en cours", "instruit", "accepté", "refusé", "clos"]
STREET_TYPES = [
    "rue",
    "avenue",
    "boulevard",
    "chemin",
    "impasse",
    "place",
    "allée",
    "quai",
    "cours",
    "montée",
    "route",
    "passage",
]
STREET_NAMES = [
    "des Lilas",
    "Victor Hugo",
    "de la République",
    "Jean Jaurès",
    "des Tilleuls",
    "du Commandant Charcot",
    "Paul Bert",
    "de la Soie",
    "Garibaldi",
    "Pasteur",
    "des Acacias",
    "de Champagne",
    "Marietton",
    "du Bourbonnais",
    "Tronchet",
    "Duguesclin",
    "Antoine Charial",
    "des Érables",
    "de Saint-Cyr",
    "du Lac",
]


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


class _People:
    """Draws French people: surname, first name and sex, from common and rare lists."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.common_surnames = list(FrenchNames.last_names)
        self.male = list(FrenchNames.first_names_male)
        self.female = list(FrenchNames.first_names_female)

    def surname(self, rare_share: float = 0.35) -> str:
        draw = self.rng.random()
        if draw < rare_share * 0.6:
            return self.rng.choice(RARE_SURNAMES)
        if draw < rare_share:
            # A double surname, as registered since 2005 or used by married people.
            first, second = self.rng.sample(self.common_surnames + RARE_SURNAMES[:20], 2)
            return f"{first}-{second}" if " " not in first + second else f"{first} {second}"
        return self.rng.choice(self.common_surnames)

    def first_name(self, sex: str | None = None) -> tuple[str, str]:
        sex = sex or self.rng.choice("MF")
        draw = self.rng.random()
        if draw < 0.15:
            pool = COMPOSED_MALE if sex == "M" else COMPOSED_FEMALE
        elif draw < 0.25:
            pool = RARE_MALE if sex == "M" else RARE_FEMALE
        elif draw < 0.45:
            pool = FOREIGN_MALE if sex == "M" else FOREIGN_FEMALE
        else:
            pool = self.male if sex == "M" else self.female
        return self.rng.choice(pool), sex

    def person(self) -> tuple[str, str, str]:
        """(first name, surname, sex)."""
        first, sex = self.first_name()
        return first, self.surname(), sex


def _initials(first: str) -> str:
    """'Jean-Pierre' -> 'J.-P.', 'Marie' -> 'M.'."""
    return "-".join(part[0] + "." for part in first.split("-"))


FULL_NAME_SHAPES: dict[str, Callable[[str, str], str]] = {
    "NOM Prénom": lambda first, last: f"{last.upper()} {first}",
    "Prénom NOM": lambda first, last: f"{first} {last.upper()}",
    "Prénom Nom": lambda first, last: f"{first} {last}",
    "P. Nom": lambda first, last: f"{first[0]}. {last}",
    "Nom, Prénom": lambda first, last: f"{last}, {first}",
    "initiales J.-P. Nom": lambda first, last: f"{_initials(first)} {last}",
}


# --- value generators -------------------------------------------------------------------------


def _email(rng: random.Random, first: str, last: str) -> str:
    f = _ascii(first).lower().replace(" ", "").replace("'", "")
    la = _ascii(last).lower().replace(" ", "").replace("'", "")
    local = rng.choice(
        [
            f"{f}.{la}",
            f"{f[0]}{la}",
            f"{f}.{la}{rng.randint(1, 99)}",
            f"{la}.{f}",
            f"{f}_{la}",
            f"{la}{f[0]}{rng.randint(60, 99)}",
            f"{f}{rng.randint(1960, 2005)}",
        ]
    )
    return f"{local}@{rng.choice(MAIL_DOMAINS)}"


def _phone_digits(rng: random.Random) -> str:
    """Nine national digits (after the 0): mobiles 6/7 and Lyon landlines 4."""
    lead = rng.choice("66674")
    return lead + "".join(rng.choice(string.digits) for _ in range(8))


PHONE_SHAPES: dict[str, Callable[[str], str]] = {
    "texte 06 12 34 56 78": lambda d: " ".join(
        ["0" + d[0]] + [d[i : i + 2] for i in range(1, 9, 2)]
    ),
    "texte 06.12.34.56.78": lambda d: ".".join(
        ["0" + d[0]] + [d[i : i + 2] for i in range(1, 9, 2)]
    ),
    "texte 0612345678": lambda d: "0" + d,
    "texte +33 6 12 34 56 78": lambda d: (
        "+33 " + d[0] + " " + " ".join(d[i : i + 2] for i in range(1, 9, 2))
    ),
    "texte +33612345678": lambda d: "+33" + d,
    "texte 0033…": lambda d: (
        "0033" + d
        if int(d[-1]) % 2
        else "0033 " + d[0] + " " + " ".join(d[i : i + 2] for i in range(1, 9, 2))
    ),
}


def _nir_body(rng: random.Random) -> str:
    """13 digits: sex, year, month, department, commune, order."""
    sex = rng.choice("12")
    year = f"{rng.randint(30, 99):02d}" if rng.random() < 0.8 else f"{rng.randint(0, 10):02d}"
    month = f"{rng.randint(1, 12):02d}"
    department = rng.choice(["69", "69", "69", "75", "13", "38", "42", "01", "99", "71", "59"])
    commune = f"{rng.randint(1, 390):03d}"
    order = f"{rng.randint(1, 999):03d}"
    return sex + year + month + department + commune + order


def _nir_spaced(text: str) -> str:
    parts = [text[0], text[1:3], text[3:5], text[5:7], text[7:10], text[10:13]]
    if len(text) == 15:
        parts.append(text[13:15])
    return " ".join(parts)


def _iban(faker: Faker) -> str:
    return faker.iban()  # French IBAN (FR + 2 check digits + 23), valid checksum


def _spaced4(text: str) -> str:
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def _address(rng: random.Random, faker: Faker) -> str:
    number = rng.randint(1, 180)
    suffix = rng.choice(["", "", "", "", " bis", " ter", "B"])
    if rng.random() < 0.5:
        street = f"{rng.choice(STREET_TYPES)} {rng.choice(STREET_NAMES)}"
    else:
        street = faker.street_name()
    shape = rng.random()
    if shape < 0.6:
        return f"{number}{suffix} {street}"
    if shape < 0.8:
        return f"{number}, {street}"
    if shape < 0.9:
        return f"Bât. {rng.choice('ABCD')}, apt {rng.randint(1, 120)}, {number} {street}"
    code, (commune, postcodes) = rng.choice(list(COMMUNES.items()))
    return f"{number} {street}, {rng.choice(postcodes)} {commune}"


def _plate(rng: random.Random) -> str:
    letters = "ABCDEFGHJKLMNPQRSTVWXYZ"  # no I, O, U in the SIV system
    return (
        f"{rng.choice(letters)}{rng.choice(letters)}-{rng.randint(1, 999):03d}-"
        f"{rng.choice(letters)}{rng.choice(letters)}"
    )


def _birth_date(rng: random.Random) -> dt.date:
    return dt.date(1930, 1, 1) + dt.timedelta(days=rng.randint(0, 80 * 365))


def _controls(rng: random.Random, rows: int) -> dict[str, pa.Array]:
    start = dt.date(2023, 1, 1)
    return {
        "montant": pa.array([round(rng.uniform(5, 5000), 2) for _ in range(rows)], pa.float64()),
        "date_depot": pa.array(
            [start + dt.timedelta(days=rng.randint(0, 1000)) for _ in range(rows)], pa.date32()
        ),
        "categorie": pa.array([rng.choice(CATEGORIES) for _ in range(rows)], pa.string()),
        "commune": pa.array([rng.choice(list(COMMUNES.values()))[0] for _ in range(rows)]),
        "statut": pa.array([rng.choice(STATUSES) for _ in range(rows)], pa.string()),
    }


# --- free text --------------------------------------------------------------------------------

MONTHS = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
]

# Placeholders: {civ} civility, {P} first name, {N} surname, {NU} SURNAME in capitals,
# {P2} another first name, {I} initial of {P}; {tel}, {date}, {jour}, {age}, {adr}, {mail}.
# Only {P}, {N}, {NU} and {P2} are recorded as inserted names.
NAME_ROLES = {"P": "prénom", "N": "nom", "NU": "NOM", "P2": "second prénom"}
TEMPLATES = [
    "Signalement fait par {civ} {N}.",
    "{civ} {P} {N} a appelé le {jour} pour un dépôt sauvage.",
    "Rencontré {P} {N} devant l'école.",
    "Le dossier de {P} {N} est complet.",
    "Contacter {P} au {tel} avant vendredi.",
    "{N} {P} : demande de rendez-vous pour le {date}.",
    "{NU} {P} signale un lampadaire en panne.",
    "Appel de {civ} {N} concernant le bruit du voisinage.",
    "Vu avec {P} ce matin, à rappeler la semaine prochaine.",
    "Plainte de {P} {N} ({age} ans) pour stationnement gênant.",
    "Dossier transmis par {P} {N} au service urbanisme.",
    "RDV annulé par {civ} {N}, à reprogrammer.",
    "Les enfants de {civ} {N} sont inscrits à la cantine.",
    "Courrier adressé à {civ} {P} {NU} le {date}.",
    "Selon {P}, le trottoir est encombré depuis trois jours.",
    "{P} {N} demande l'élagage de l'arbre devant chez lui.",
    "Mail reçu de {P} ({mail}), réponse envoyée.",
    "Intervention chez {civ} {N} au {adr}.",
    "Réclamation déposée le {date} par {N}, {P}.",
    "Famille {N} relogée temporairement.",
    "À joindre : {P} {N}, tél. {tel}.",
    "Merci de rappeler {civ} {N} au {tel}.",
    "{civ} {P} {N} et son fils {P2} se sont présentés à l'accueil.",
    "Chien errant signalé par une habitante, {P} {N}.",
    "En l'absence de {civ} {N}, le colis a été déposé en mairie.",
    "Visite à domicile de {P} {N} prévue le {date}.",
    "{I}. {N} a signé le registre.",
    "Témoin : {NU} {P}, {age} ans.",
    "Le conseil a reçu {P} et {P2} {N} au sujet du jardin partagé.",
    "Nuisances sonores : le voisin de {civ} {N} a été averti.",
    "Demande d'aide de {P} transmise au CCAS.",
    "Accident sans gravité, conducteur : {N} ({P}).",
]


def _sentence(
    rng: random.Random, people: _People, faker: Faker, template: str
) -> tuple[str, list[str], list[str]]:
    first, last, sex = people.person()
    second, _ = people.first_name("M" if "son fils" in template else None)
    values = {
        "civ": rng.choice(CIVILITY[sex]),
        "P": first,
        "N": last,
        "NU": last.upper(),
        "P2": second,
        "I": first[0],
        "tel": PHONE_SHAPES[rng.choice(list(PHONE_SHAPES))](_phone_digits(rng)),
        "date": _birth_date(rng).replace(year=rng.choice([2024, 2025])).strftime("%d/%m/%Y"),
        "jour": f"{rng.randint(1, 28)} {rng.choice(MONTHS)}",
        "age": str(rng.randint(18, 92)),
        "adr": _address(rng, faker),
        "mail": _email(rng, first, last),
    }
    keys = [key for key in NAME_ROLES if "{" + key + "}" in template]
    return template.format(**values), [values[k] for k in keys], [NAME_ROLES[k] for k in keys]


# --- tables -----------------------------------------------------------------------------------


@dataclass
class _Draft:
    """A table before its neutral twin is made: columns with their kind and shape."""

    name: str
    columns: dict[str, pa.Array] = field(default_factory=dict)
    expected: dict[str, str | None] = field(default_factory=dict)
    variants: dict[str, str] = field(default_factory=dict)
    free_text_names: dict[str, list[list[str]]] = field(default_factory=dict)
    free_text_roles: dict[str, list[list[str]]] = field(default_factory=dict)

    def add(self, name: str, values: pa.Array, kind: str | None, variant: str = "") -> None:
        self.columns[name] = values
        self.expected[name] = kind
        if variant:
            self.variants[name] = variant


def _etat_civil(rng: random.Random, people: _People, rows: int) -> _Draft:
    draft = _Draft("inscriptions_periscolaire")
    persons = [people.person() for _ in range(rows)]
    draft.add(
        "nom", pa.array([last for _, last, _ in persons]), "nom", "noms courants, rares et composés"
    )
    draft.add(
        "nom_usage",
        pa.array([people.surname(rare_share=1.0) for _ in range(rows)]),
        "nom",
        "noms rares et composés seulement",
    )
    draft.add(
        "prenom",
        pa.array([first for first, _, _ in persons]),
        "prenom",
        "prénoms courants, composés, rares, étrangers",
    )
    births = [_birth_date(rng) for _ in range(rows)]
    draft.add("date_naissance", pa.array(births, pa.date32()), "date_naissance", "type date")
    draft.add(
        "date_de_naissance",
        pa.array([d.strftime("%d/%m/%Y") for d in births]),
        "date_naissance",
        "texte jj/mm/aaaa",
    )
    draft.add(
        "courriel",
        pa.array([_email(rng, f, la) for f, la, _ in persons]),
        "courriel",
        "adresses personnelles",
    )
    return draft


def _contacts(rng: random.Random, people: _People, rows: int) -> _Draft:
    draft = _Draft("annuaire_contacts")
    headers = [
        "telephone",
        "tel_portable",
        "mobile",
        "telephone_international",
        "tel_intl",
        "telephone_0033",
    ]
    for header, (shape, render) in zip(headers, PHONE_SHAPES.items(), strict=True):
        draft.add(
            header, pa.array([render(_phone_digits(rng)) for _ in range(rows)]), "telephone", shape
        )
    draft.add(
        "num_telephone",
        pa.array([int(_phone_digits(rng)) for _ in range(rows)], pa.int64()),
        "telephone",
        "int64 9 chiffres (0 perdu)",
    )
    draft.add(
        "telephone_e164",
        pa.array([int("33" + _phone_digits(rng)) for _ in range(rows)], pa.int64()),
        "telephone",
        "int64 33612345678",
    )
    draft.add(
        "email",
        pa.array([_email(rng, *people.person()[:2]) for _ in range(rows)]),
        "courriel",
        "adresses personnelles",
    )
    return draft


def _identifiants(rng: random.Random, faker: Faker, rows: int) -> _Draft:
    draft = _Draft("aides_sociales")

    def nirs(with_key: bool) -> list[str]:
        bodies = [_nir_body(rng) for _ in range(rows)]
        return [b + std_nir.calc_check_digits(b) if with_key else b for b in bodies]

    draft.add(
        "nir", pa.array([_nir_spaced(n) for n in nirs(True)]), "nir", "texte 15 chiffres espacé"
    )
    draft.add("numero_securite_sociale", pa.array(nirs(True)), "nir", "texte 15 chiffres")
    draft.add("nir_sans_cle", pa.array(nirs(False)), "nir", "texte 13 chiffres sans clé")
    draft.add(
        "num_secu",
        pa.array([_nir_spaced(n) for n in nirs(False)]),
        "nir",
        "texte 13 chiffres espacé sans clé",
    )
    draft.add(
        "nir_numerique",
        pa.array([int(n) for n in nirs(True)], pa.int64()),
        "nir",
        "int64 15 chiffres",
    )
    draft.add(
        "secu_numerique",
        pa.array([int(n) for n in nirs(False)], pa.int64()),
        "nir",
        "int64 13 chiffres sans clé",
    )
    ibans = [[_iban(faker) for _ in range(rows)] for _ in range(4)]
    draft.add("iban", pa.array(ibans[0]), "iban", "majuscules non espacé")
    draft.add(
        "iban_beneficiaire",
        pa.array([_spaced4(i) for i in ibans[1]]),
        "iban",
        "majuscules espacé par 4",
    )
    draft.add("rib_iban", pa.array([i.lower() for i in ibans[2]]), "iban", "minuscules non espacé")
    draft.add(
        "iban_titulaire",
        pa.array([_spaced4(i).lower() for i in ibans[3]]),
        "iban",
        "minuscules espacé par 4",
    )
    return draft


def _noms_complets(rng: random.Random, people: _People, rows: int) -> _Draft:
    draft = _Draft("demandes_logement")
    headers = ["nom_complet", "demandeur", "nom_prenom", "titulaire", "identite", "signataire"]
    for header, (shape, render) in zip(headers, FULL_NAME_SHAPES.items(), strict=True):
        values = [render(*people.person()[:2]) for _ in range(rows)]
        draft.add(header, pa.array(values), "nom_complet", shape)
    return draft


def _domiciles(rng: random.Random, faker: Faker, rows: int) -> _Draft:
    draft = _Draft("stationnement_residents")
    draft.add(
        "immatriculation", pa.array([_plate(rng) for _ in range(rows)]), "plaque", "AB-123-CD"
    )
    draft.add(
        "adresse",
        pa.array([_address(rng, faker) for _ in range(rows)]),
        "adresse_domicile",
        "numéro et voie",
    )
    _add_home_coordinates(draft, rng, rows, "")
    return draft


def _geolocalisation(rng: random.Random, rows: int) -> _Draft:
    """Home coordinates alone (with controls): nothing else says the rows are people."""
    draft = _Draft("signalements_domicile_geolocalises")
    _add_home_coordinates(draft, rng, rows, " seules")
    return draft


def _add_home_coordinates(draft: _Draft, rng: random.Random, rows: int, note: str) -> None:
    for header, low, high, shape in (
        ("latitude", 45.70, 45.80, "float64 45.7x"),
        ("longitude", 4.78, 4.90, "float64 4.8x"),
    ):
        values = [round(rng.uniform(low, high), 6) for _ in range(rows)]
        draft.add(header, pa.array(values, pa.float64()), "coordonnees_domicile", shape + note)


def _texte_libre(rng: random.Random, people: _People, faker: Faker, rows: int) -> _Draft:
    draft = _Draft("mains_courantes")
    sentences, names, roles = [], [], []
    for row in range(rows):
        # Every template is used, in turn, then at random.
        template = TEMPLATES[row] if row < len(TEMPLATES) else rng.choice(TEMPLATES)
        sentence, inserted, inserted_roles = _sentence(rng, people, faker, template)
        sentences.append(sentence)
        names.append(inserted)
        roles.append(inserted_roles)
    draft.add("observation", pa.array(sentences), "texte_libre", "phrases avec noms")
    draft.free_text_names["observation"] = names
    draft.free_text_roles["observation"] = roles
    return draft


def _quasi_age(rng: random.Random, rows: int) -> _Draft:
    draft = _Draft("enquete_satisfaction")
    draft.add(
        "age",
        pa.array([rng.randint(16, 95) for _ in range(rows)], pa.int64()),
        "quasi_identifiant",
        "âge en années",
    )
    draft.add("sexe", pa.array([rng.choice("FM") for _ in range(rows)]), "quasi_identifiant", "F/M")
    postcodes = sorted({p for _, codes in COMMUNES.values() for p in codes})
    draft.add(
        "code_postal",
        pa.array([rng.choice(postcodes) for _ in range(rows)]),
        "quasi_identifiant",
        "code postal",
    )
    return draft


def _quasi_birth_year(rng: random.Random, rows: int) -> _Draft:
    draft = _Draft("recensement_activites")
    draft.add(
        "annee_naissance",
        pa.array([rng.randint(1930, 2010) for _ in range(rows)], pa.int64()),
        "quasi_identifiant",
        "année de naissance",
    )
    draft.add(
        "sexe",
        pa.array([rng.choice(["Femme", "Homme"]) for _ in range(rows)]),
        "quasi_identifiant",
        "Femme/Homme",
    )
    draft.add(
        "code_insee",
        pa.array([rng.choice(list(COMMUNES)) for _ in range(rows)]),
        "quasi_identifiant",
        "code INSEE",
    )
    return draft


def _finish(draft: _Draft, rng: random.Random) -> CorpusTable:
    rows = len(next(iter(draft.columns.values())))
    for name, values in _controls(rng, rows).items():
        draft.add(name, values, None)
    return CorpusTable(
        name=draft.name,
        table=pa.table(draft.columns),
        expected=dict(draft.expected),
        free_text_names=dict(draft.free_text_names),
        variants=dict(draft.variants),
        headers="explicite",
        free_text_roles=dict(draft.free_text_roles),
    )


def neutral_twin(item: CorpusTable, rng: random.Random) -> CorpusTable:
    """The same values under neutral names c01, c02… in a shuffled order."""
    order = list(item.table.column_names)
    rng.shuffle(order)
    names = {old: f"c{i:02d}" for i, old in enumerate(order, start=1)}
    table = pa.table({names[old]: item.table.column(old) for old in order})
    return CorpusTable(
        name=f"{item.name}_neutre",
        table=table,
        expected={names[c]: kind for c, kind in item.expected.items()},
        free_text_names={names[c]: rows for c, rows in item.free_text_names.items()},
        variants={names[c]: v for c, v in item.variants.items()},
        headers="neutre",
        free_text_roles={names[c]: rows for c, rows in item.free_text_roles.items()},
    )


def generated_corpus(seed: int = 7) -> list[CorpusTable]:
    """The generated personal corpus: each table with explicit headers, then its neutral twin."""
    rng = random.Random(seed)
    faker = Faker("fr_FR")
    faker.seed_instance(seed)
    people = _People(rng)

    def rows(low: int, high: int) -> int:
        return rng.randint(low, high)

    drafts = [
        _etat_civil(rng, people, rows(600, 1200)),
        _contacts(rng, people, rows(1000, 2000)),
        _identifiants(rng, faker, rows(300, 800)),
        _noms_complets(rng, people, rows(500, 1500)),
        _domiciles(rng, faker, rows(400, 900)),
        _geolocalisation(rng, rows(200, 600)),
        _texte_libre(rng, people, faker, rows(360, 480)),
        _quasi_age(rng, rows(300, 700)),
        _quasi_birth_year(rng, rows(200, 500)),
    ]
    corpus = []
    for draft in drafts:
        explicit = _finish(draft, rng)
        corpus.extend([explicit, neutral_twin(explicit, rng)])
    return corpus


def k_anonymity_share(item: CorpusTable, threshold: int = 11) -> float | None:
    """Share of the rows whose quasi-identifier combination is held by fewer than `threshold`
    rows (None for a table without quasi-identifiers)."""
    columns = [c for c, kind in item.expected.items() if kind == "quasi_identifiant"]
    if not columns:
        return None
    keys = list(zip(*(item.table.column(c).to_pylist() for c in columns), strict=True))
    counts: dict[tuple[object, ...], int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return sum(1 for key in keys if counts[key] < threshold) / len(keys)


if __name__ == "__main__":
    for corpus_table in generated_corpus():
        personal = sum(1 for kind in corpus_table.expected.values() if kind)
        print(
            f"{corpus_table.name}: {corpus_table.table.num_rows} rows, "
            f"{personal} personal / {corpus_table.table.num_columns} columns"
        )
