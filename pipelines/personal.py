"""Detect personal data in every column of a table: names and values, whole columns.

Each detector is a vectorised Arrow regular expression over the column, whose
candidate matches are then confirmed by the library that knows the rule
(python-stdnum for NIR, IBAN, SIREN/SIRET; phonenumbers for French numbers).
Detection fails closed: a column is personal as soon as one value is, and
only a producer's declaration, with its justification, says otherwise.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from stdnum import iban as std_iban
from stdnum.fr import nir as std_nir
from stdnum.fr import siren as std_siren
from stdnum.fr import siret as std_siret

# At most this many distinct candidates of a column are confirmed one by one.
MAX_CONFIRMED_CANDIDATES = 200_000

STREET_WORDS = (
    "rue|avenue|av|boulevard|bd|place|chemin|allee|allée|impasse|quai|route|cours|square|"
    "montee|montée|passage|voie|sentier|cite|cité|residence|résidence|lotissement|hameau|"
    "promenade|esplanade|rond-point|parvis|traverse|ruelle|faubourg"
)
# Words after which a first name is part of a place's name, not a person's.
PLACE_WORDS = {
    "rue",
    "avenue",
    "boulevard",
    "place",
    "chemin",
    "allee",
    "impasse",
    "quai",
    "route",
    "cours",
    "square",
    "montee",
    "passage",
    "parc",
    "jardin",
    "gymnase",
    "stade",
    "ecole",
    "college",
    "lycee",
    "groupe",
    "scolaire",
    "salle",
    "centre",
    "maison",
    "espace",
    "piscine",
    "mediatheque",
    "bibliotheque",
    "hopital",
    "clinique",
    "residence",
    "cite",
    "pont",
    "port",
    "fontaine",
    "theatre",
    "musee",
    "eglise",
    "chapelle",
    "halle",
    "marche",
    "gare",
    "station",
    "saint",
    "sainte",
    "st",
    "ste",
    "pres",
    "de",
    "du",
    "des",
    "la",
    "le",
    "les",
    "l",
}


@dataclass(frozen=True)
class Kind:
    code: str
    label: str  # French, for reports
    pattern: str  # RE2, searched inside the text
    confirm: Callable[[str], bool] | None = None
    redaction: str = "[donnée personnelle masquée]"
    canonical: str | None = None  # a match of this exact form is confirmed without a check


def _valid_phone(text: str) -> bool:
    try:
        number = phonenumbers.parse(text, "FR")
    except phonenumbers.NumberParseException:
        return False
    # "Possible" (the length of a French number), not "valid": a number outside the ranges
    # allocated today is still someone's number as far as publication goes.
    return number.country_code == 33 and phonenumbers.is_possible_number(number)


def _valid_nir(text: str) -> bool:
    return std_nir.is_valid(re.sub(r"[\s.-]", "", text))


def _valid_iban(text: str) -> bool:
    return std_iban.is_valid(text)


KINDS = {
    kind.code: kind
    for kind in (
        Kind(
            "courriel",
            "adresses électroniques",
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
            redaction="[courriel masqué]",
        ),
        Kind(
            "telephone",
            "numéros de téléphone",
            r"(\+33\s?\(?0?\)?\s?|0033\s?|\b0)[1-9]([\s.-]?\d{2}){4}\b",
            _valid_phone,
            redaction="[téléphone masqué]",
            canonical=r"^(0|\+33\s?|0033\s?)[1-9]([\s.-]?\d{2}){4}$",
        ),
        Kind(
            "nir",
            "numéros de sécurité sociale (NIR)",
            r"\b[12][\s.]?\d{2}[\s.]?(0[1-9]|1[0-2]|[2-9]\d)[\s.]?(\d{2}|2[AB])[\s.]?\d{3}"
            r"[\s.]?\d{3}[\s.]?\d{2}\b",
            _valid_nir,
            redaction="[NIR masqué]",
        ),
        Kind(
            "iban",
            "IBAN",
            r"\b[A-Z]{2}\d{2}(\s?[A-Z0-9]{4}){2,7}(\s?[A-Z0-9]{1,4})?\b",
            _valid_iban,
            redaction="[IBAN masqué]",
        ),
        Kind(
            "plaque",
            "plaques d'immatriculation",
            r"\b[A-HJ-NP-TV-Z]{2}[\s-]?\d{3}[\s-]?[A-HJ-NP-TV-Z]{2}\b",
            redaction="[plaque masquée]",
        ),
        Kind(
            "adresse",
            "adresses postales avec numéro",
            rf"(?i)\b\d{{1,4}}\s?(bis|ter|b)?,?\s+({STREET_WORDS})\b\.?\s+\S+",
            redaction="[adresse masquée]",
        ),
        Kind(
            "date-naissance",
            "dates de naissance",
            r"(?i)\bn[ée]e?s?\s+le\s+(\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}-\d{2}-\d{2})",
            redaction="[date de naissance masquée]",
        ),
        Kind("nom", "noms et prénoms de personnes", "", redaction="[nom masqué]"),
        Kind("siret-entrepreneur", "SIREN/SIRET d'entrepreneurs individuels", ""),
        Kind("coordonnees-individuelles", "coordonnées précises rattachées à des personnes", ""),
    )
}

# Column names that say what a column holds (compared without accents, lower case).
NAME_HINTS = {
    "courriel": ("email", "e_mail", "mail", "courriel", "adresse_electronique"),
    "telephone": ("tel", "telephone", "portable", "mobile", "phone", "fax", "gsm"),
    "nir": ("nir", "secu", "securite_sociale", "num_ss", "numero_ss"),
    "iban": ("iban", "rib"),
    "plaque": ("immatriculation", "plaque", "immat"),
    "date-naissance": ("naissance", "date_naissance", "ddn", "birth", "birthdate", "ne_le"),
    "adresse": ("adresse", "address", "domicile"),
}
# What a value of a column named for a kind looks like, checked or not.
SHAPED_BY_NAME = {
    "nir": r"^\s*[12]([\s.]?[\dAB]){12,14}\s*$",
    "iban": r"^\s*[A-Z]{2}\d{2}[\sA-Z0-9]{10,}$",
    "date-naissance": r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}-\d{2}-\d{2}",
    "telephone": r"^\s*(\+\d{2}|0)[\d\s.()-]{8,16}$",
    "plaque": r"^\s*[A-Z]{2}[\s-]?\d{3}[\s-]?[A-Z]{2}\s*$|^\s*\d{1,4}\s?[A-Z]{1,3}\s?\d{2}\s*$",
}
PERSON_NAME_HINTS = (
    "prenom",
    "nom_prenom",
    "prenom_nom",
    "firstname",
    "first_name",
    "lastname",
    "last_name",
    "patronyme",
    "nom_famille",
    "nom_de_famille",
    "nom_usage",
    "demandeur",
    "titulaire",
    "beneficiaire",
    "proprietaire",
    "declarant",
    "requerant",
    "locataire",
    "agent",
    "eleve",
    "patient",
    "usager",
    "signataire",
    "nom_naissance",
)
AMBIGUOUS_NAME_HINTS = ("nom", "name", "contact", "auteur", "responsable", "personne")
SOLE_TRADER_PATTERN = (
    r"(?i)\b(entrepreneur individuel|entreprise individuelle|micro-?entrepr\w*|"
    r"auto-?entrepr\w*|EIRL|EI)\b|^1000$"
)
PERSON_LEVEL_KINDS = {"courriel", "telephone", "nir", "iban", "nom", "date-naissance", "plaque"}


@dataclass(frozen=True)
class Finding:
    column: str
    kind: str
    count: int  # values where it was found
    by_name: bool = False  # found from the column's name

    @property
    def label(self) -> str:
        return KINDS[self.kind].label


def plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def column_tokens(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", plain(name)).strip("_")


@cache
def first_names() -> frozenset[str]:
    """French first names, from Faker's fr_FR lists (data shipped in the package)."""
    from faker.providers.person.fr_FR import Provider

    names = set(Provider.first_names_male) | set(Provider.first_names_female)
    return frozenset(plain(n) for n in names)


def detect(
    table: pa.Table, geometry_present: bool = False, not_personal: frozenset[str] = frozenset()
) -> list[Finding]:
    """Every personal finding in `table`, one per (column, kind).

    Columns in `not_personal` (declared so by the producer) are still scanned, but do not
    make the rows person-level data whose coordinates would then be personal too.
    """
    findings: list[Finding] = []
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if pa.types.is_string(column.type):
            findings.extend(_detect_column(name, column))
        elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            findings.extend(_detect_column(name, _long_numbers_as_text(column)))
        elif _is_temporal(column.type) and _hinted(
            column_tokens(name), NAME_HINTS["date-naissance"]
        ):
            count = len(column) - column.null_count
            findings.append(Finding(name, "date-naissance", count, by_name=True))
    findings.extend(_sole_trader_ids(table))
    personal_rows = [f for f in findings if f.column not in not_personal]
    findings.extend(_individual_coordinates(table, personal_rows, geometry_present))
    return findings


def _long_numbers_as_text(column: pa.Array) -> pa.Array:
    """Whole numbers of 9 digits or more, as text: a phone number, NIR or SIRET typed as a
    number (by a spreadsheet, or read as one) is still one, its leading 0 lost."""
    if pa.types.is_floating(column.type):
        whole = pc.equal(pc.floor(column), column)
        column = pc.filter(
            column, pc.and_(pc.fill_null(whole, False), pc.less(pc.abs(column), 1e18))
        )
        column = pc.cast(column, pa.int64())
    long_numbers = pc.filter(column, pc.greater_equal(pc.abs(column), 10**8))
    digits = pc.cast(long_numbers, pa.string())
    # A nine-digit number is a French phone number whose leading 0 was lost.
    return pc.if_else(
        pc.match_substring_regex(digits, r"^[1-9]\d{8}$"),
        pc.binary_join_element_wise("0", digits, ""),
        digits,
    )


def _is_temporal(kind: pa.DataType) -> bool:
    return pa.types.is_date(kind) or pa.types.is_timestamp(kind)


def _as_text(column: pa.ChunkedArray) -> pa.Array:
    array = column.combine_chunks()
    if not pa.types.is_string(array.type):
        array = pc.cast(array, pa.string())
    return array


def _detect_column(name: str, text: pa.Array) -> list[Finding]:
    findings = []
    tokens = column_tokens(name)
    values = pc.drop_null(text)
    for code in ("courriel", "telephone", "nir", "iban", "plaque", "adresse", "date-naissance"):
        count = count_matches(values, code)
        hinted = _hinted(tokens, NAME_HINTS.get(code, ()))
        if hinted and code in SHAPED_BY_NAME:
            # Named so, and shaped so, even when the value itself fails its check (fail closed).
            shaped = pc.sum(pc.match_substring_regex(values, SHAPED_BY_NAME[code])).as_py()
            count = max(count, shaped or 0)
        if count:
            findings.append(Finding(name, code, count, by_name=hinted))
    person_names = count_person_names(values, tokens)
    if person_names:
        findings.append(
            Finding(name, "nom", person_names, by_name=_hinted(tokens, PERSON_NAME_HINTS))
        )
    return findings


def _hinted(tokens: str, hints: tuple[str, ...]) -> bool:
    parts = tokens.split("_")
    return any(h == tokens or h in parts or tokens.startswith(h + "_") for h in hints)


def matching_mask(values: pa.Array, code: str) -> pa.Array:
    """Boolean mask: the values containing a confirmed match of kind `code`."""
    kind = KINDS[code]
    candidates = pc.fill_null(pc.match_substring_regex(values, kind.pattern), False)
    if kind.confirm is None or not pc.any(candidates).as_py():
        return candidates
    unsure = candidates
    confirmed_fast = pa.array([False] * len(values))
    if kind.canonical:
        # A first match in canonical form needs no library check (vectorised fast path).
        whole = re.sub(r"(?<!\\)\((?!\?)", "(?:", kind.pattern)  # Arrow wants named groups
        first = pc.struct_field(pc.extract_regex(values, f"(?P<m>{whole})"), "m")
        confirmed_fast = pc.fill_null(pc.match_substring_regex(first, kind.canonical), False)
        unsure = pc.and_(candidates, pc.invert(confirmed_fast))
        if not pc.any(unsure).as_py():
            return confirmed_fast
    regex = re.compile(_python_pattern(kind.pattern))
    distinct = pc.unique(pc.filter(values, unsure)).to_pylist()
    checked = distinct[:MAX_CONFIRMED_CANDIDATES]
    confirmed = [v for v in checked if any(kind.confirm(m.group(0)) for m in regex.finditer(v))]
    mask = pc.or_(confirmed_fast, pc.is_in(values, value_set=pa.array(confirmed, pa.string())))
    if len(distinct) > len(checked):  # fail closed beyond what was checked one by one
        beyond = pc.invert(pc.is_in(values, value_set=pa.array(checked, pa.string())))
        mask = pc.or_(mask, pc.and_(unsure, beyond))
    return mask


def count_matches(values: pa.Array, code: str) -> int:
    return pc.sum(matching_mask(values, code)).as_py() or 0


def _python_pattern(pattern: str) -> str:
    return pattern.replace("(?i)", "")


def python_regex(code: str) -> re.Pattern[str]:
    pattern = KINDS[code].pattern
    flags = re.IGNORECASE if pattern.startswith("(?i)") else 0
    return re.compile(_python_pattern(pattern), flags)


# --- names of people -------------------------------------------------------------------------

_WORD = r"[A-ZÀ-ÖØ-Ý][A-Za-zÀ-ÖØ-öø-ÿ'’-]+"
CIVILITY_PATTERN = rf"\b(M\.|Mme|Mlle|Monsieur|Madame|Mademoiselle|Dr|Docteur|Maître|Me)\s+{_WORD}"


def count_person_names(values: pa.Array, tokens: str) -> int:
    if len(values) == 0 or not pa.types.is_string(values.type):
        return 0
    civilities = pc.sum(pc.match_substring_regex(values, CIVILITY_PATTERN)).as_py() or 0
    with_first_name = person_name_mask(values)
    named = pc.sum(with_first_name).as_py() or 0
    if _hinted(tokens, PERSON_NAME_HINTS):
        alphabetic = pc.sum(pc.match_substring_regex(values, r"^[^\d@]{2,60}$")).as_py() or 0
        if alphabetic >= 0.5 * len(values):
            return alphabetic
    # Fail closed: one value naming a person makes the column personal.
    return max(named, civilities)


def person_name_mask(values: pa.Array) -> pa.Array:
    """Values holding 'Prénom Nom' with a known first name not part of a place's name."""
    candidates = pc.fill_null(pc.match_substring_regex(values, rf"{_WORD}\s+{_WORD}"), False)
    if not pc.any(candidates).as_py():
        return candidates
    distinct = pc.unique(pc.filter(values, candidates)).to_pylist()[:MAX_CONFIRMED_CANDIDATES]
    confirmed = [v for v in distinct if person_name_spans(v)]
    return pc.is_in(values, value_set=pa.array(confirmed, type=pa.string()))


def person_name_spans(text: str) -> list[tuple[int, int]]:
    """Where 'Prénom Nom' (or a civility and a name) stands in `text`."""
    spans = [m.span() for m in re.finditer(CIVILITY_PATTERN, text)]
    known = first_names()
    words = list(re.finditer(_WORD, text))
    for position, word in enumerate(words):
        if plain(word.group(0)) not in known:
            continue
        before = plain(text[: word.start()]).split()
        if before and before[-1].strip(".,'’") in PLACE_WORDS:
            continue
        previous = words[position - 1] if position else None
        if (
            previous is not None
            and _uppercase_surname(previous.group(0))
            and (text[previous.end() : word.start()].strip() == "")
        ):
            spans.append((previous.start(), word.end()))  # DUPONT Jean
        following = words[position + 1] if position + 1 < len(words) else None
        if following is not None and text[word.end() : following.start()].strip() == "":
            spans.append((word.start(), following.end()))  # Jean Dupont
    return spans


def _uppercase_surname(word: str) -> bool:
    letters = word.replace("-", "").replace("'", "").replace("’", "")
    return len(letters) >= 2 and letters.isupper() and plain(word) not in PLACE_WORDS


# --- identifiers and places ------------------------------------------------------------------


def _sole_trader_ids(table: pa.Table) -> list[Finding]:
    marked = any(
        pc.any(pc.match_substring_regex(table.column(n), SOLE_TRADER_PATTERN)).as_py()
        for n in table.column_names
        if pa.types.is_string(table.schema.field(n).type)
    )
    if not marked:
        return []
    findings = []
    for name in table.column_names:
        values = pc.drop_null(_as_text(table.column(name)))
        sample = [re.sub(r"\s", "", v) for v in values.slice(0, 1000).to_pylist()]
        ids = [v for v in sample if std_siret.is_valid(v) or std_siren.is_valid(v)]
        if sample and len(ids) >= 0.5 * len(sample):
            findings.append(Finding(name, "siret-entrepreneur", len(values)))
    return findings


LATITUDE_TOKENS = {"lat", "latitude", "y", "ycoord", "coord_y"}
LONGITUDE_TOKENS = {"lon", "lng", "long", "longitude", "x", "xcoord", "coord_x"}


def coordinate_axis(name: str) -> str | None:
    """'lat' or 'lon' for a column holding one coordinate (latitude_wgs84, x_l93…)."""
    tokens = column_tokens(name)
    parts = set(tokens.split("_"))
    if tokens in LATITUDE_TOKENS or parts & {"lat", "latitude"} or tokens.startswith("y_"):
        return "lat"
    if tokens in LONGITUDE_TOKENS or parts & {"lon", "lng", "longitude"} or tokens.startswith("x_"):
        return "lon"
    return None


def is_coordinate_column(name: str) -> bool:
    return coordinate_axis(name) is not None


def _individual_coordinates(
    table: pa.Table, findings: list[Finding], geometry_present: bool
) -> list[Finding]:
    if not any(f.kind in PERSON_LEVEL_KINDS for f in findings):
        return []
    columns = [n for n in table.column_names if is_coordinate_column(n)]
    if geometry_present:
        columns.append("geometry")
    return [Finding(n, "coordonnees-individuelles", table.num_rows) for n in columns]
