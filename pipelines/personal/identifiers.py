"""Identifiers of people, found by shape and confirmed by the library that knows the rule.

Each kind is a vectorised Arrow regular expression over the column, whose candidate
matches are confirmed one distinct value at a time (python-stdnum for NIR and IBAN,
phonenumbers for French numbers). Numbers typed as numbers (by a spreadsheet, or read
as such) are turned back into the text they were: a phone number that lost its leading
0, `33…` for `+33…`, a NIR with or without its key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
from stdnum import iban as std_iban
from stdnum.fr import nir as std_nir
from stdnum.fr import siren as std_siren

from pipelines.personal.words import STREET_WORDS

# At most this many distinct candidates of a column are confirmed one by one.
MAX_CONFIRMED_CANDIDATES = 200_000
NIR_MONTHS = r"(0[1-9]|1[0-2]|[2-9]\d)"
NIR_DEPARTMENTS = r"(\d{2}|2[AB])"


# Not glued to a digit, a letter (hexadecimal identifiers) or a decimal part ("3.", ",5").
_BEFORE = r"(^|[^\w.,]|(^|[^\d])[.,])"
_AFTER = r"($|[^\w.,]|[.,]($|[^\d]))"


def _standalone(number: str) -> str:
    """A number not glued to other digits or to a decimal part (coordinates, lengths): RE2
    has no look-behind, so the neighbours are matched and the number is the group `id`."""
    return rf"{_BEFORE}(?P<id>{number}){_AFTER}"


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
    compact = re.sub(r"[\s.-]", "", text).upper()
    if len(compact) == 13:  # without its key: the rest of the number must hold
        return bool(re.fullmatch(rf"[12]\d{{2}}(0[1-9]|1[0-2]){NIR_DEPARTMENTS}\d{{6}}", compact))
    return std_nir.is_valid(compact)


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
            _standalone(r"(\+33\s?\(?0?\)?\s?|0033\s?|0)[1-9]([\s.-]?\d{2}){4}"),
            _valid_phone,
            redaction="[téléphone masqué]",
            canonical=r"^(0|\+33\s?|0033\s?)[1-9]([\s.-]?\d{2}){4}$",
        ),
        Kind(
            "nir",
            "numéros de sécurité sociale (NIR)",
            "(?i)"
            + _standalone(
                rf"[12]\s?\d{{2}}\s?{NIR_MONTHS}\s?{NIR_DEPARTMENTS}\s?"
                r"\d{3}\s?\d{3}(\s?\d{2})?"
            ),
            _valid_nir,
            redaction="[NIR masqué]",
        ),
        Kind(
            "iban",
            "IBAN",
            r"(?i)\b[A-Z]{2}\d{2}(\s?[A-Z0-9]{4}){2,7}(\s?[A-Z0-9]{1,4})?\b",
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
            rf"(?i)\b\d{{1,4}}\s?(bis|ter|b)?,?\s+({STREET_WORDS})\b\.?"
            # the street's name: its particles and every word up to a lower-case one
            r"((\s+(de|du|des|la|le|les))*\s+(d'|l'|d’|l’)?\S+)(?-i:(\s+((de|du|des|la|le|les)\s+|d'|l'|d’|l’)?[A-ZÀ-Ý0-9]\S*)*)",
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
        Kind("quasi-identifiants", "combinaisons de quasi-identifiants (k < 11)", ""),
    )
}
IDENTIFIER_CODES = ("courriel", "telephone", "nir", "iban", "plaque", "adresse", "date-naissance")
MOBILE_PATTERN = r"^\s*(\+33\s?\(?0?\)?\s?|0033\s?|0)[67]"

# Column names that say what a column holds (compared without accents, lower case).
NAME_HINTS = {
    "courriel": ("email", "e_mail", "mail", "courriel", "adresse_electronique"),
    "telephone": ("tel", "telephone", "portable", "mobile", "phone", "fax", "gsm"),
    "nir": ("nir", "secu", "securite_sociale", "num_ss", "numero_ss", "insee_personne"),
    "iban": ("iban", "rib"),
    "plaque": ("immatriculation", "plaque", "immat"),
    "date-naissance": ("naissance", "date_naissance", "ddn", "birth", "birthdate", "ne_le"),
    "adresse": ("adresse", "address", "domicile"),
}
# What a value of a column named for a kind looks like, checked or not.
SHAPED_BY_NAME = {
    "nir": r"^\s*[12]([\s.]?[\dAB]){12,14}\s*$",
    "iban": r"(?i)^\s*[A-Z]{2}\d{2}[\sA-Z0-9]{10,}$",
    "date-naissance": r"\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}-\d{2}-\d{2}",
    "telephone": r"^\s*(\+\d{2}|0)[\d\s.()-]{8,16}$",
    "plaque": r"^\s*[A-Z]{2}[\s-]?\d{3}[\s-]?[A-Z]{2}\s*$|^\s*\d{1,4}\s?[A-Z]{1,3}\s?\d{2}\s*$",
}


def _any_identifier_pattern() -> str:
    """One pattern for every identifier kind: a column where it finds nothing is read once."""
    parts = []
    for code in IDENTIFIER_CODES:
        pattern = KINDS[code].pattern.replace("(?P<id>", "(")
        if pattern.startswith("(?i)"):
            pattern = f"(?i:{pattern[4:]})"
        parts.append(f"(?:{pattern})")
    return "|".join(parts)


ANY_IDENTIFIER = _any_identifier_pattern()


# A column whose first rows repeat a few values (communes, categories, codes) is read on its
# distinct values: the same answer as reading every row, for a fraction of the work.
LABELS_HEAD = 10_000
LABELS_SHARE = 0.1  # distinct values among the first rows, at most, to read a column so


def is_label_column(values: pa.Array) -> bool:
    head = values.slice(0, LABELS_HEAD)
    return len(values) > LABELS_HEAD and len(pc.unique(head)) <= LABELS_SHARE * len(head)


def any_match(values: pa.Array, pattern: str) -> bool:
    """Whether any value holds a match of `pattern` (a label column: any distinct value)."""
    if is_label_column(values):
        values = pc.unique(values)
    return bool(pc.any(pc.match_substring_regex(values, pattern)).as_py())


def matching_share(values: pa.Array, pattern: str) -> float:
    """The share of `values` (not empty) that match `pattern` from start to end as written."""
    if len(values) == 0:
        return 0.0
    if not is_label_column(values):
        return (pc.sum(pc.match_substring_regex(values, pattern)).as_py() or 0) / len(values)
    counted = pc.value_counts(values)
    matches = pc.match_substring_regex(counted.field("values"), pattern)
    return (pc.sum(pc.filter(counted.field("counts"), matches)).as_py() or 0) / len(values)


def first_distinct(values: pa.Array, limit: int) -> list[str]:
    """The first `limit` distinct values, in order of appearance (as `pc.unique(values)`
    sliced), reading only as many rows as it takes: a column of a million identifiers
    is not hashed whole to read its first two thousand."""
    rows = 8 * limit
    while True:
        distinct = pc.unique(values.slice(0, rows))
        if len(distinct) >= limit or rows >= len(values):
            return distinct.slice(0, limit).to_pylist()
        rows *= 8


def numbers_as_text(column: pa.Array, phones_named: bool = False) -> pa.Array:
    """Whole numbers of 9 digits or more, as the text they were typed from: a phone number
    that lost its leading 0 (`612345678`) or its `+` (`33612345678`), a NIR or SIRET."""
    if pa.types.is_floating(column.type):
        whole = pc.equal(pc.floor(column), column)
        column = pc.filter(
            column, pc.and_(pc.fill_null(whole, False), pc.less(pc.abs(column), 1e18))
        )
        column = pc.cast(column, pa.int64())
    long_numbers = pc.filter(column, pc.greater_equal(pc.abs(column), 10**8))
    return digits_as_typed(pc.cast(long_numbers, pa.string()), phones_named)


def digits_as_typed(values: pa.Array, phones_named: bool = False) -> pa.Array:
    """Digits that a spreadsheet stripped of a phone number's leading 0 or `+`, back as the
    number they were; only where the column is named for phones or the numbers vary as
    phone numbers do (codes such as IRIS share their first digits: 751010101, 751010102…)."""
    if not (phones_named or _varied_like_phones(values)):
        return values
    values = pc.replace_substring_regex(values, r"^\s*([1-9]\d{8})\s*$", r"0\1")
    return pc.replace_substring_regex(values, r"^\s*(33[1-9]\d{8})\s*$", r"+\1")


def _varied_like_phones(values: pa.Array) -> bool:
    shape = r"^\s*(33)?[1-9]\d{8}\s*$"
    if not pc.any(pc.match_substring_regex(values.slice(0, 1000), shape)).as_py():
        return False  # a column is typed one way: its first rows say which
    nine = pc.filter(values, pc.match_substring_regex(values, shape))
    distinct = pc.unique(pc.utf8_trim_whitespace(nine))
    if len(distinct) == 0:
        return False
    prefixes = pc.unique(pc.utf8_slice_codeunits(distinct, 0, 4))
    if len(prefixes) < min(20, 0.5 * len(distinct)):
        return False
    # SIREN numbers vary too, but carry a Luhn key (one phone number in ten does, by chance).
    sample = distinct.slice(0, 200).to_pylist()
    if len(sample) < 10:
        return True  # too few numbers to tell keys from chance
    return sum(std_siren.is_valid(v) for v in sample) < 0.5 * len(sample)


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
        first = pc.struct_field(pc.extract_regex(values, whole), "id")
        confirmed_fast = pc.fill_null(pc.match_substring_regex(first, kind.canonical), False)
        unsure = pc.and_(candidates, pc.invert(confirmed_fast))
        if not pc.any(unsure).as_py():
            return confirmed_fast
    regex = python_regex(code)
    distinct = pc.unique(pc.filter(values, unsure)).to_pylist()
    checked = distinct[:MAX_CONFIRMED_CANDIDATES]
    confirmed = [v for v in checked if any(kind.confirm(identifier(m)) for m in regex.finditer(v))]
    mask = pc.or_(confirmed_fast, pc.is_in(values, value_set=pa.array(confirmed, pa.string())))
    if len(distinct) > len(checked):  # fail closed beyond what was checked one by one
        beyond = pc.invert(pc.is_in(values, value_set=pa.array(checked, pa.string())))
        mask = pc.or_(mask, pc.and_(unsure, beyond))
    return mask


def identifier(match: re.Match[str]) -> str:
    """The identifier itself in a match (without the neighbours a standalone number needs)."""
    return match.group("id") if "id" in match.re.groupindex else match.group(0)


def count_matches(values: pa.Array, code: str) -> int:
    return pc.sum(matching_mask(values, code)).as_py() or 0


def python_regex(code: str) -> re.Pattern[str]:
    """The kind's pattern for Python, whose look-arounds keep neighbours out of the match."""
    pattern = KINDS[code].pattern.replace(_BEFORE, r"(?<!\w)(?<!\d[.,])")
    pattern = pattern.replace(_AFTER, r"(?!\w)(?![.,]\d)")
    flags = re.IGNORECASE if pattern.startswith("(?i)") else 0
    return re.compile(pattern.replace("(?i)", ""), flags)
