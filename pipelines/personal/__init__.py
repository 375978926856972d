"""Personal data in a table: decided per column, from its header, its values and the rows.

A column is personal when its values are identifiers of people (e-mail, phone, NIR,
IBAN, plate…), names of people (INSEE name lists and a French named-entity model, read
on distinct values), or, in rows about persons, addresses, coordinates and combinations
of quasi-identifiers. Names carried by a place (Gymnase Jean Moulin, rue du Docteur…)
are places; an address, a phone number or a position in rows that describe facilities
belong to the facility. Detection fails closed: the stage refuses to run without its
references, and a personal column can only be published treated or declared.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from stdnum.fr import siren as std_siren
from stdnum.fr import siret as std_siret

from core import clock
from pipelines.personal import names, quasi
from pipelines.personal.identifiers import (
    ANY_IDENTIFIER,
    IDENTIFIER_CODES,
    KINDS,
    MOBILE_PATTERN,
    NAME_HINTS,
    SHAPED_BY_NAME,
    Kind,
    any_match,
    digits_as_typed,
    first_distinct,
    matching_mask,
    numbers_as_text,
    python_regex,
)
from pipelines.personal.names import DetectorUnavailable, check_references
from pipelines.personal.words import (
    PERSONAL_CIVILITIES,
    PLACE_WORDS,
    STREET_WORDS,
    completed_tokens,
    hinted,
    plain,
)

__all__ = [
    "KINDS",
    "STREET_WORDS",
    "DetectorUnavailable",
    "Finding",
    "Kind",
    "check_references",
    "coordinate_axis",
    "detect",
    "digests_evidence",
    "is_coordinate_column",
    "matching_mask",
    "person_like_columns",
    "person_name_spans",
    "plain",
    "python_regex",
    "scan",
]

# Distinct values of a column read for names (identifiers are read in every value).
NAME_SAMPLE = 2_000
TREATED_SAMPLE = 20_000  # rows read of a column with a declared treatment
FULL_NAME_SHARE = 0.3  # of a column's distinct labels, to make it a column of names
SINGLE_NAME_SHARE = 0.6  # a column of lone surnames or first names
SINGLE_NAME_MIN_DISTINCT = 8
FREE_TEXT_WORDS = 6  # mean words per value beyond which a column is free text
SENTENCE_WORDS = 4  # an identifier beside this many words is written in a sentence
PERSON_LEVEL_KINDS = {"nir", "iban", "nom", "date-naissance", "plaque"}
ROW_DEPENDENT_KINDS = {"courriel", "telephone", "adresse"}
# Headers that say a column holds people's names…
PERSON_NAME_HINTS = (
    "prenom", "prenoms", "nom_prenom", "prenom_nom", "firstname", "first_name", "lastname",
    "last_name", "surname", "patronyme", "nom_famille", "nom_de_famille", "nom_usage",
    "nom_naissance", "nom_complet_personne", "identite",
)  # fmt: skip
# …or a role that people, but also organisations, hold: the values must look like names.
PERSON_ROLE_HINTS = (
    "demandeur", "titulaire", "beneficiaire", "proprietaire", "declarant", "requerant",
    "locataire", "agent", "eleve", "patient", "usager", "signataire", "contact", "responsable",
    "referent", "auteur_signalement", "personne", "habitant", "president", "gerant",
)  # fmt: skip
# Where names are those of people acting in public (candidates, elected officials, artists,
# authors, film directors): published as such, like the heritage files that cite them.
PUBLIC_ROLE_HINTS = (
    "candidat", "candidats", "voix", "exprimes", "inscrits", "votants", "nuance", "sieges",
    "elu", "elus", "mandat", "scrutin", "artiste", "artistes", "auteur", "auteurs",
    "realisateur", "producteur", "personnage", "personnage_phare", "oeuvre", "oeuvres",
    "inventaire", "collection", "collections", "compositeur", "editeur", "musee",
)  # fmt: skip
PLACE_HEADER_HINTS = (
    "voie", "rue", "lieu", "lieux", "quartier", "arrondissement", "commune", "communes", "ville",
    "region", "departement", "pays", "site", "station", "equipement", "etablissement", "parking",
    "parc", "ecole", "cantine", "gare", "arret", "compteur", "espece", "essence", "genre",
    "type", "categorie", "nature", "adresse", "localisation", "secteur", "langue", "langues",
    "organisation", "organisme", "structure", "association", "entreprise", "societe",
    "operateur", "amenageur", "enseigne", "raison_sociale", "tournage", "titre", "plat",
)  # fmt: skip
# Headers of a column that names or locates what each row is, when it is a place.
PLACE_SUBJECT_HINTS = (
    "voie", "rue", "lieu", "lieux", "site", "station", "equipement", "etablissement", "parking",
    "adresse", "localisation", "offre", "borne", "point_de_charge", "pdc", "arret", "gare",
)  # fmt: skip
# A column of lone first names beside counts is a statistic of names, not of people.
COUNT_HINTS = ("nombre", "nb", "effectif", "effectifs", "total", "occurrences", "count")
# Single words the hints above are made of: what a header cut by the Shapefile format is
# completed with.
HEADER_WORDS = frozenset(
    word
    for hints in (
        PERSON_NAME_HINTS, PERSON_ROLE_HINTS, PUBLIC_ROLE_HINTS, PLACE_HEADER_HINTS,
        PLACE_SUBJECT_HINTS, COUNT_HINTS, tuple(PLACE_WORDS),
    )  # fmt: skip
    for word in hints
    if "_" not in word
)


def header_tokens(name: str) -> str:
    return completed_tokens(name, HEADER_WORDS)

DATE_TEXT = r"^\s*(\d{1,2}[/.-]\d{1,2}[/.-]\d{4}|\d{4}-\d{2}-\d{2})\s*$"
WEAK_NAME_SHARE = 0.1  # of a free-text column's values, to make it personal on its own
SOLE_TRADER_PATTERN = (
    r"(?i)\b(entrepreneur individuel|entreprise individuelle|micro-?entrepr\w*|"
    r"auto-?entrepr\w*|EIRL)\b|\bEI\b"
)
# INSEE's legal category 1000 (entrepreneur individuel), in a column that holds categories.
LEGAL_CATEGORY_HINTS = ("categorie_juridique", "forme_juridique", "cat_jur", "nature_juridique")
ANY_IDENTIFIER_OR_MARK = f"{ANY_IDENTIFIER}|{SOLE_TRADER_PATTERN.replace('(?i)', '(?i:', 1)})"
GENERIC_MAILBOXES = re.compile(
    r"^(contact|accueil|info|infos|information|mairie|secretariat|direction|service|standard|"
    r"communication|webmaster|admin|bonjour|courrier|reservation|inscription|noreply|no-reply|"
    r"support|presse|rh|dpo|cnil|police|urbanisme|culture|sport|sports|jeunesse|"
    r"[a-z]*\.?(mairie|ville|commune))[._-]?\w*@",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Finding:
    column: str
    kind: str
    count: int  # values where it was found
    by_name: bool = False  # found from the column's name
    detail: str | None = None  # French: why (which column makes rows about persons, k…)
    in_sentences: bool = False  # found inside free text (to be masked, not removed)
    proposal: str | None = None  # the declaration that treats it (quasi-identifiers)

    @property
    def label(self) -> str:
        return KINDS[self.kind].label


@dataclass
class _Evidence:
    """What one column showed, before the rows' nature is known."""

    counts: dict[str, int] = field(default_factory=dict)
    by_name: set[str] = field(default_factory=set)
    mobiles: int = 0
    personal_mailboxes: int = 0
    in_sentences: dict[str, int] = field(default_factory=dict)  # found inside free text
    weak_names: int = 0  # a few names in sentences: personal in rows about persons only
    free_text: bool = False  # sentences, not labels
    one_per_row: dict[str, bool] = field(default_factory=dict)  # mostly distinct identifiers
    single_names_only: bool = False  # lone first names or surnames, never a full name
    role: str | None = None  # quasi-identifier role
    sole_trader_mark: bool = False  # says "entrepreneur individuel" (or its legal category)


def detect(
    table: pa.Table, geometry_present: bool = False, not_personal: frozenset[str] = frozenset()
) -> list[Finding]:
    """Every personal finding in `table`, one per (column, kind).

    Columns in `not_personal` (declared so by the producer) are still scanned, but do not
    make the rows person-level data whose addresses and coordinates would then be personal.
    """
    return scan(table, geometry_present, not_personal).findings


@dataclass
class Scan:
    """A table's findings, and what each column showed (to rescan only what changed)."""

    findings: list[Finding]
    evidence: dict[str, _Evidence]


def scan(
    table: pa.Table,
    geometry_present: bool = False,
    not_personal: frozenset[str] = frozenset(),
    unchanged: dict[str, _Evidence] | None = None,
    treated: frozenset[str] = frozenset(),
) -> Scan:
    """`detect`, reusing the evidence of columns known `unchanged` since an earlier scan.

    Columns the producer declared a treatment for (`treated`) are read on their first rows
    only: they are treated whatever they hold, and the scan after the treatments reads
    every value of what they became; what they show here only says whether the rows are
    about persons."""
    check_references()
    read = {}
    for name in table.column_names:
        column = table.column(name)
        if name in treated:
            column = column.slice(0, TREATED_SAMPLE)
        read[name] = (unchanged or {}).get(name) or _column_evidence(name, column)
    findings = _findings(table, geometry_present, not_personal, read)
    return Scan(findings, read)


def _findings(
    table: pa.Table,
    geometry_present: bool,
    not_personal: frozenset[str],
    read: dict[str, _Evidence],
) -> list[Finding]:
    evidence = {name: copy.deepcopy(item) for name, item in read.items()}
    public_roles = _public_role_context(table)
    if public_roles or _name_statistics(table, evidence):
        for item in evidence.values():
            item.counts.pop("nom", None)
            item.weak_names = 0
    roles = quasi.roles_of(table, {name: item.role for name, item in evidence.items()})
    if public_roles:
        roles = {}  # the sex and age of candidates or elected officials are published
    places = _describes_places(table)
    person_columns = [
        name
        for name, item in evidence.items()
        if name not in not_personal and _makes_rows_personal(item, places)
    ]
    about_persons = bool(person_columns) or quasi.is_about_persons(
        {c: r for c, r in roles.items() if c not in not_personal}
    )
    findings = []
    for name, item in evidence.items():
        findings.extend(_column_findings(name, item, about_persons))
    if any(item.sole_trader_mark for item in evidence.values()):
        findings.extend(_sole_trader_ids(table))
    if about_persons:
        findings.extend(_birth_dates_by_value(table, evidence))
        reason = person_columns[0] if person_columns else next(iter(roles))
        findings.extend(_individual_coordinates(table, geometry_present, reason))
        measured = quasi.measure(table, {c: r for c, r in roles.items() if c not in not_personal})
        if measured is not None:
            plan = measured.plan or {}
            findings.extend(
                Finding(
                    column,
                    "quasi-identifiants",
                    table.num_rows,
                    detail=measured.message(),
                    proposal=plan.get(column),
                )
                for column in measured.roles
            )
    return findings


def _birth_dates_by_value(table: pa.Table, evidence: dict[str, _Evidence]) -> list[Finding]:
    """In rows about persons, dates that all lie 15 years back or more and span decades are
    birth dates, whatever the header."""
    findings = []
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if "date-naissance" in evidence[name].counts:
            continue
        years = _years(column)
        if years is None:
            continue
        if len(years) < 2:
            continue
        oldest, newest = pc.min(years).as_py(), pc.max(years).as_py()
        if newest <= clock.today().year - 15 and newest - oldest >= 20:
            findings.append(Finding(name, "date-naissance", len(years)))
    return findings


def _years(column: pa.Array) -> pa.Array | None:
    """The years of a date column, or of a text column of dates (31/12/1985, 1985-12-31)."""
    if _is_temporal(column.type):
        return pc.drop_null(pc.year(column))
    if not pa.types.is_string(column.type):
        return None
    values = pc.drop_null(column)
    head = pc.all(pc.match_substring_regex(values.slice(0, 100), DATE_TEXT)).as_py()
    if len(values) == 0 or not head:
        return None
    if not pc.all(pc.match_substring_regex(values, DATE_TEXT)).as_py():
        return None
    found = pc.extract_regex(values, r"(?P<y>\d{4})")
    return pc.cast(pc.struct_field(found, "y"), pa.int32())


def _public_role_context(table: pa.Table) -> bool:
    tokens = [header_tokens(n) for n in table.column_names]
    return sum(hinted(t, PUBLIC_ROLE_HINTS) for t in tokens) >= 2


def _name_statistics(table: pa.Table, evidence: dict[str, _Evidence]) -> bool:
    """Lone first names (or surnames) counted: how often a name was given, not to whom."""
    named = [item for item in evidence.values() if "nom" in item.counts]
    counted = any(hinted(header_tokens(n), COUNT_HINTS) for n in table.column_names)
    return counted and bool(named) and all(item.single_names_only for item in named)


def _describes_places(table: pa.Table) -> bool:
    """A column names or locates the thing each row is (a station, a site, an address)."""
    return any(
        hinted(tokens, PLACE_SUBJECT_HINTS) or bool(set(tokens.split("_")) & PLACE_WORDS)
        for tokens in (header_tokens(n) for n in table.column_names)
    )


def _makes_rows_personal(item: _Evidence, places: bool = False) -> bool:
    """Names, NIR, IBAN, birth dates, plates say the rows are about persons; so do personal
    mobiles or mailboxes that differ from row to row (one person per row), unless the rows
    describe places: then they are contacts, personal themselves, but the rows still
    describe charging stations or museums, whose addresses and positions stay public."""
    if set(item.counts) & PERSON_LEVEL_KINDS:
        return True
    if places:
        return False
    mailboxes = item.personal_mailboxes >= 0.5 * item.counts.get("courriel", 0) > 0
    own = (_mostly_mobiles(item) and item.one_per_row.get("telephone")) or (
        mailboxes and item.one_per_row.get("courriel")
    )
    return bool(own)


def _mostly_mobiles(item: _Evidence) -> bool:
    """A column of mobile numbers is people's; one mobile among switchboards, a facility's."""
    return bool(item.mobiles) and item.mobiles >= 0.5 * item.counts.get("telephone", 0)


def _column_findings(name: str, item: _Evidence, about_persons: bool) -> list[Finding]:
    findings = []
    counts = dict(item.counts)
    if about_persons and item.weak_names and "nom" not in counts:
        counts["nom"] = item.weak_names
    for code, count in counts.items():
        if code in ROW_DEPENDENT_KINDS and not about_persons:
            # A facility's switchboard, mailbox or address is not personal; the same
            # identifiers written in a comment or a sentence are someone's.
            mobiles = item.mobiles if _mostly_mobiles(item) else 0
            own = {"telephone": mobiles, "courriel": item.personal_mailboxes}.get(code, 0)
            count = max(own, item.in_sentences.get(code, 0))
        if count:
            findings.append(
                Finding(name, code, count, code in item.by_name, in_sentences=item.free_text)
            )
    return findings


def _column_evidence(name: str, chunked: pa.ChunkedArray) -> _Evidence:
    column = chunked.combine_chunks()
    tokens = header_tokens(name)
    item = _Evidence(role=quasi.column_role(name, chunked))
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        values = pc.drop_null(column.cast(pa.string()))
        named = hinted(tokens, NAME_HINTS["telephone"])
        typed = digits_as_typed(values, named)
        # One pass says whether any identifier or sole-trader mention is there at all.
        if any_match(typed, ANY_IDENTIFIER_OR_MARK):
            item.sole_trader_mark = _sole_trader_mark(tokens, column)
            _identifiers(typed, tokens, item, prefiltered=True)
        elif any(hinted(tokens, NAME_HINTS[c]) for c in SHAPED_BY_NAME):
            _identifiers(typed, tokens, item, prefiltered=True)
        _names(values, tokens, item)
    elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        named = hinted(tokens, NAME_HINTS["telephone"])
        _identifiers(numbers_as_text(column, named), tokens, item)
        item.sole_trader_mark = _sole_trader_mark(tokens, column)
    elif _is_temporal(column.type) and hinted(tokens, NAME_HINTS["date-naissance"]):
        item.counts["date-naissance"] = len(column) - column.null_count
        item.by_name.add("date-naissance")
    return item


def digests_evidence(name: str, column: pa.ChunkedArray) -> _Evidence:
    """What a column of pseudonyms (HMAC digests) shows: nothing personal, its role only."""
    return _Evidence(role=quasi.column_role(name, column))


def _is_temporal(kind: pa.DataType) -> bool:
    return pa.types.is_date(kind) or pa.types.is_timestamp(kind)


def _identifiers(
    values: pa.Array, tokens: str, item: _Evidence, prefiltered: bool = False
) -> None:
    if len(values) == 0:
        return
    named_kinds = [c for c in SHAPED_BY_NAME if hinted(tokens, NAME_HINTS.get(c, ()))]
    if not (prefiltered or named_kinds) and not pc.any(
        pc.match_substring_regex(values, ANY_IDENTIFIER)
    ).as_py():
        return  # one pass over the column, not one per kind
    for code in IDENTIFIER_CODES:
        mask = matching_mask(values, code)
        count = pc.sum(mask).as_py() or 0
        named = hinted(tokens, NAME_HINTS.get(code, ()))
        if named and code in SHAPED_BY_NAME:
            # Named so, and shaped so, even when the value itself fails its check (fail closed).
            shaped = pc.sum(pc.match_substring_regex(values, SHAPED_BY_NAME[code])).as_py()
            count = max(count, shaped or 0)
        if not count:
            continue
        item.counts[code] = count
        if named:
            item.by_name.add(code)
        if code in {"telephone", "courriel"}:
            distinct = len(pc.unique(pc.filter(values, mask)))
            item.one_per_row[code] = distinct >= 0.5 * count
            others = pc.replace_substring_regex(values, KINDS[code].pattern, " ")
            in_sentences = pc.and_(mask, pc.greater_equal(_word_counts(others), SENTENCE_WORDS))
            item.in_sentences[code] = pc.sum(in_sentences).as_py() or 0
        if code == "telephone":
            mobiles = pc.and_(mask, pc.match_substring_regex(values, MOBILE_PATTERN))
            item.mobiles = pc.sum(mobiles).as_py() or 0
        elif code == "courriel":
            item.personal_mailboxes = _personal_mailboxes(pc.filter(values, mask))


def _word_counts(values: pa.Array) -> pa.Array:
    return pc.count_substring_regex(values, r"[A-Za-zÀ-ÖØ-öø-ÿ]{2,}")


def _personal_mailboxes(addresses: pa.Array) -> int:
    """E-mail addresses whose mailbox names a person (jeanne.martin@…, jmartin@…)."""
    count = 0
    for address in first_distinct(addresses, NAME_SAMPLE):
        for mailbox in re.findall(r"([A-Za-z0-9._%+-]+)@", address):
            if GENERIC_MAILBOXES.match(mailbox + "@"):
                continue
            parts = [p for p in re.split(r"[._+-]", plain(mailbox)) if p.isalpha()]
            if any(names.is_first_name(p) for p in parts) or (
                len(parts) >= 2 and any(names.is_surname(p, common_only=True) for p in parts)
            ):
                count += 1
                break
    return count


# --- names -------------------------------------------------------------------------------------


def _is_place_header(tokens: str) -> bool:
    parts = set(tokens.split("_"))
    return hinted(tokens, PLACE_HEADER_HINTS) or bool(parts & PLACE_WORDS)


def _names(values: pa.Array, tokens: str, item: _Evidence) -> None:
    strong = hinted(tokens, PERSON_NAME_HINTS)
    role = hinted(tokens, PERSON_ROLE_HINTS)
    if len(values) == 0 or (_is_place_header(tokens) and not strong and not role):
        return
    distinct = first_distinct(values, NAME_SAMPLE)
    words = sum(len(v.split()) for v in distinct) / len(distinct)
    if strong:
        alphabetic = [v for v in distinct if re.fullmatch(r"[^\d@]{2,60}", v.strip())]
        if len(alphabetic) >= 0.5 * len(distinct):
            item.counts["nom"] = _rows_in(values, alphabetic)
            item.by_name.add("nom")
            item.single_names_only = all(names.label_shape(v) != "full" for v in alphabetic)
            return
    if words > FREE_TEXT_WORDS:
        item.free_text = True
        _names_in_free_text(values, distinct, item)
        return
    shapes = {v: names.label_shape(v) for v in distinct}
    full = [v for v, s in shapes.items() if s == "full"]
    single = [v for v, s in shapes.items() if s == "single"]
    civil = [v for v in distinct if re.match(rf"({PERSONAL_CIVILITIES})\s", v.strip())]
    full_share = FULL_NAME_SHARE / 3 if role else FULL_NAME_SHARE
    enough = len(full) >= (1 if role else 2)  # one odd label is not a column of names
    if civil or (enough and len(full) >= full_share * len(distinct)):
        item.counts["nom"] = _rows_in(values, full + civil)
        item.by_name.update({"nom"} if role else set())
    elif len(distinct) >= SINGLE_NAME_MIN_DISTINCT and len(single) + len(
        full
    ) >= SINGLE_NAME_SHARE * len(distinct):
        item.counts["nom"] = _rows_in(values, single + full)
        item.single_names_only = not full
    else:
        # Phrases among labels: a name inside one is still a name.
        phrases = [v for v in distinct if shapes[v] is None and len(v.split()) >= 3]
        _names_in_free_text(values, phrases, item, len(distinct), FULL_NAME_SHARE)


def _names_in_free_text(
    values: pa.Array,
    distinct: list[str],
    item: _Evidence,
    among: int | None = None,
    share: float = WEAK_NAME_SHARE,
) -> None:
    """Names inside sentences: personal on their own when a civility names someone or when
    they are frequent; otherwise only in rows about persons (a heritage description citing
    a sculptor is not a report citing its author)."""
    found = names.names_in_texts(distinct) if distinct else {}
    if not found:
        return
    count = _rows_in(values, list(found))
    civil = any(
        re.match(rf"({PERSONAL_CIVILITIES})\s", text[start:end])
        for text, spans in found.items()
        for start, end in spans
    )
    if civil or len(found) >= share * (among or len(distinct)):
        item.counts["nom"] = count
    else:
        item.weak_names = count


def _rows_in(values: pa.Array, chosen: list[str]) -> int:
    return pc.sum(pc.is_in(values, value_set=pa.array(chosen, pa.string()))).as_py() or 0


def person_like_columns(table: pa.Table) -> set[str]:
    """Columns with any value shaped like a person's name or identifier, however few: a
    report never quotes their values, even where the column is not refused as personal."""
    scanned = scan(table)
    # Identifiers the scan saw count whatever the rows are about (its findings drop a
    # facility's phone or address); so do a few names in sentences.
    found = {f.column for f in scanned.findings} | {
        name for name, item in scanned.evidence.items() if item.counts or item.weak_names
    }
    for name in table.column_names:
        column = table.column(name).combine_chunks()
        if name in found or not pa.types.is_string(column.type):
            continue
        distinct = first_distinct(pc.drop_null(column), NAME_SAMPLE)
        if any(names.label_shape(v) == "full" for v in distinct):
            found.add(name)
    return found


def person_name_spans(text: str) -> list[tuple[int, int]]:
    """Where names of people stand in one text (the model's entities included)."""
    return names.names_in_texts([text]).get(text, [])


# --- identifiers and places ------------------------------------------------------------------


def _sole_trader_mark(tokens: str, column: pa.Array) -> bool:
    text = pa.types.is_string(column.type)
    if text and _may_name_sole_traders(column):
        return True
    if hinted(tokens, LEGAL_CATEGORY_HINTS):
        return bool(pc.any(pc.equal(pc.cast(column, pa.string()), "1000")).as_py())
    return False


def _may_name_sole_traders(column: pa.Array) -> bool:
    # Plain substring searches first: the regular expression runs on the few that hold one.
    hints = pc.or_(
        pc.match_substring(column, "ntrepr", ignore_case=True),
        pc.match_substring(column, "EI"),
    )
    candidates = pc.filter(column, pc.fill_null(hints, False))
    return bool(pc.any(pc.match_substring_regex(candidates, SOLE_TRADER_PATTERN)).as_py())


def _sole_trader_ids(table: pa.Table) -> list[Finding]:
    """SIREN/SIRET columns of a table that says some of its companies are sole traders."""
    findings = []
    for name in table.column_names:
        values = pc.drop_null(_as_text(table.column(name)))
        sample = [re.sub(r"\s", "", v) for v in values.slice(0, 1000).to_pylist()]
        ids = [v for v in sample if std_siret.is_valid(v) or std_siren.is_valid(v)]
        if sample and len(ids) >= 0.5 * len(sample):
            findings.append(Finding(name, "siret-entrepreneur", len(values)))
    return findings


def _as_text(column: pa.ChunkedArray) -> pa.Array:
    array = column.combine_chunks()
    if not pa.types.is_string(array.type):
        array = pc.cast(array, pa.string())
    return array


LATITUDES, LONGITUDES = (41.0, 51.5), (-5.5, 10.0)  # metropolitan France, in degrees
LATITUDE_TOKENS = {"lat", "latitude", "y", "ycoord", "coord_y"}
LONGITUDE_TOKENS = {"lon", "lng", "long", "longitude", "x", "xcoord", "coord_x"}


def coordinate_axis(name: str) -> str | None:
    """'lat' or 'lon' for a column holding one coordinate (latitude_wgs84, x_l93…)."""
    tokens = header_tokens(name)
    parts = set(tokens.split("_"))
    if tokens in LATITUDE_TOKENS or parts & {"lat", "latitude"} or tokens.startswith("y_"):
        return "lat"
    if tokens in LONGITUDE_TOKENS or parts & {"lon", "lng", "longitude"} or tokens.startswith("x_"):
        return "lon"
    return None


def is_coordinate_column(name: str) -> bool:
    return coordinate_axis(name) is not None


def _coordinates_by_value(column: pa.ChunkedArray) -> bool:
    """A column of decimal degrees within metropolitan France (latitudes or longitudes, with
    more decimals than an amount has), whatever its header says."""
    if not pa.types.is_floating(column.type):
        return False
    values = pc.drop_null(column.combine_chunks())
    if len(values) == 0:
        return False
    low, high = pc.min(values).as_py(), pc.max(values).as_py()
    thousandths = pc.multiply(values, 1000.0)
    precise = pc.any(pc.not_equal(pc.floor(thousandths), thousandths)).as_py()
    latitudes = LATITUDES[0] <= low and high <= LATITUDES[1]
    longitudes = LONGITUDES[0] <= low and high <= LONGITUDES[1]
    return bool(precise and (latitudes or longitudes))


def _individual_coordinates(table: pa.Table, geometry_present: bool, reason: str) -> list[Finding]:
    columns = [
        n
        for n in table.column_names
        if is_coordinate_column(n) or _coordinates_by_value(table.column(n))
    ]
    if geometry_present:
        columns.append("geometry")
    detail = (
        f"Les lignes décrivent des personnes (colonne « {reason} ») : leur position précise "
        "les localise. Généralisez-la (« generaliser » avec « grille_m: 200 » ou « niveau: "
        "commune ») plutôt que de la supprimer."
    )
    return [Finding(n, "coordonnees-individuelles", table.num_rows, detail=detail) for n in columns]
