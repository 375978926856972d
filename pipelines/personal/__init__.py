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

import re
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from stdnum.fr import siren as std_siren
from stdnum.fr import siret as std_siret

from pipelines.personal import names, quasi
from pipelines.personal.identifiers import (
    IDENTIFIER_CODES,
    KINDS,
    MOBILE_PATTERN,
    NAME_HINTS,
    SHAPED_BY_NAME,
    Kind,
    count_matches,
    matching_mask,
    numbers_as_text,
    python_regex,
)
from pipelines.personal.names import DetectorUnavailable, check_references
from pipelines.personal.words import STREET_WORDS, column_tokens, hinted, plain

__all__ = [
    "KINDS",
    "STREET_WORDS",
    "DetectorUnavailable",
    "Finding",
    "Kind",
    "check_references",
    "coordinate_axis",
    "detect",
    "is_coordinate_column",
    "matching_mask",
    "person_name_spans",
    "plain",
    "python_regex",
]

# Distinct values of a column read for names (identifiers are read in every value).
NAME_SAMPLE = 5_000
FULL_NAME_SHARE = 0.3  # of a column's distinct labels, to make it a column of names
SINGLE_NAME_SHARE = 0.6  # a column of lone surnames or first names
SINGLE_NAME_MIN_DISTINCT = 8
FREE_TEXT_WORDS = 6  # mean words per value beyond which a column is free text
SENTENCE_WORDS = 6  # an identifier in a value of this many words is written in a sentence
PERSON_LEVEL_KINDS = {"telephone-mobile", "nir", "iban", "nom", "date-naissance", "plaque"}
ROW_DEPENDENT_KINDS = {"courriel", "telephone", "adresse"}
PERSON_NAME_HINTS = (
    "prenom", "prenoms", "nom_prenom", "prenom_nom", "firstname", "first_name", "lastname",
    "last_name", "surname", "patronyme", "nom_famille", "nom_de_famille", "nom_usage",
    "demandeur", "titulaire", "beneficiaire", "proprietaire", "declarant", "requerant",
    "locataire", "agent", "eleve", "patient", "usager", "signataire", "nom_naissance",
    "nom_complet", "identite", "contact", "responsable", "referent", "auteur_signalement",
)  # fmt: skip
# Where names are those of people acting in public (candidates, elected officials).
PUBLIC_ROLE_HINTS = (
    "candidat", "candidats", "voix", "exprimes", "inscrits", "votants", "nuance", "sieges",
    "elu", "elus", "mandat", "liste", "scrutin",
)  # fmt: skip
PLACE_HEADER_HINTS = (
    "voie", "rue", "lieu", "quartier", "arrondissement", "commune", "ville", "site", "station",
    "equipement", "etablissement", "parking", "parc", "ecole", "espece", "essence", "genre",
    "type", "categorie", "nature", "libelle_voie", "adresse", "localisation", "secteur",
)  # fmt: skip
SOLE_TRADER_PATTERN = (
    r"(?i)\b(entrepreneur individuel|entreprise individuelle|micro-?entrepr\w*|"
    r"auto-?entrepr\w*|EIRL|EI)\b|^1000$"
)
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


def detect(
    table: pa.Table, geometry_present: bool = False, not_personal: frozenset[str] = frozenset()
) -> list[Finding]:
    """Every personal finding in `table`, one per (column, kind).

    Columns in `not_personal` (declared so by the producer) are still scanned, but do not
    make the rows person-level data whose addresses and coordinates would then be personal.
    """
    check_references()
    evidence = {name: _column_evidence(name, table.column(name)) for name in table.column_names}
    public_roles = _public_role_context(table)
    if public_roles:
        for item in evidence.values():
            if "nom" in item.counts and not item.counts.keys() & {"nir", "iban"}:
                item.counts.pop("nom")
    roles = quasi.roles_of(table)
    person_columns = [
        name
        for name, item in evidence.items()
        if name not in not_personal and _makes_rows_personal(item)
    ]
    about_persons = bool(person_columns) or quasi.is_about_persons(
        {c: r for c, r in roles.items() if c not in not_personal}
    )
    findings = []
    for name, item in evidence.items():
        findings.extend(_column_findings(name, item, about_persons))
    findings.extend(_sole_trader_ids(table))
    if about_persons:
        reason = person_columns[0] if person_columns else next(iter(roles))
        findings.extend(_individual_coordinates(table, geometry_present, reason))
        measured = quasi.measure(table, {c: r for c, r in roles.items() if c not in not_personal})
        if measured is not None:
            first = next(iter(measured.roles))
            findings.append(
                Finding(first, "quasi-identifiants", table.num_rows, detail=measured.message())
            )
    return findings


def _public_role_context(table: pa.Table) -> bool:
    tokens = [column_tokens(n) for n in table.column_names]
    return sum(hinted(t, PUBLIC_ROLE_HINTS) for t in tokens) >= 2


def _makes_rows_personal(item: _Evidence) -> bool:
    kinds = set(item.counts) & PERSON_LEVEL_KINDS
    return bool(kinds or item.mobiles or item.personal_mailboxes)


def _column_findings(name: str, item: _Evidence, about_persons: bool) -> list[Finding]:
    findings = []
    for code, count in item.counts.items():
        if code in ROW_DEPENDENT_KINDS and not about_persons:
            # A facility's switchboard, mailbox or address is not personal; the same
            # identifiers written in a comment or a sentence are someone's.
            own = {"telephone": item.mobiles, "courriel": item.personal_mailboxes}.get(code, 0)
            count = max(own, item.in_sentences.get(code, 0))
        if count:
            findings.append(Finding(name, code, count, by_name=code in item.by_name))
    return findings


def _column_evidence(name: str, chunked: pa.ChunkedArray) -> _Evidence:
    column = chunked.combine_chunks()
    tokens = column_tokens(name)
    item = _Evidence()
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        values = pc.drop_null(column.cast(pa.string()))
        _identifiers(values, tokens, item)
        _names(values, tokens, item)
    elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        _identifiers(numbers_as_text(column), tokens, item)
    elif _is_temporal(column.type) and hinted(tokens, NAME_HINTS["date-naissance"]):
        item.counts["date-naissance"] = len(column) - column.null_count
        item.by_name.add("date-naissance")
    return item


def _is_temporal(kind: pa.DataType) -> bool:
    return pa.types.is_date(kind) or pa.types.is_timestamp(kind)


def _identifiers(values: pa.Array, tokens: str, item: _Evidence) -> None:
    if len(values) == 0:
        return
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
        if code in ROW_DEPENDENT_KINDS:
            in_sentences = pc.and_(mask, pc.greater_equal(_word_counts(values), SENTENCE_WORDS))
            item.in_sentences[code] = pc.sum(in_sentences).as_py() or 0
        if code == "telephone":
            mobiles = pc.and_(mask, pc.match_substring_regex(values, MOBILE_PATTERN))
            item.mobiles = pc.sum(mobiles).as_py() or 0
        elif code == "courriel":
            item.personal_mailboxes = _personal_mailboxes(pc.filter(values, mask))


def _word_counts(values: pa.Array) -> pa.Array:
    return pc.count_substring_regex(values, r"\S+")


def _personal_mailboxes(addresses: pa.Array) -> int:
    """E-mail addresses whose mailbox names a person (jeanne.martin@…, jmartin@…)."""
    count = 0
    for address in pc.unique(addresses).slice(0, NAME_SAMPLE).to_pylist():
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


def _names(values: pa.Array, tokens: str, item: _Evidence) -> None:
    if len(values) == 0 or hinted(tokens, PLACE_HEADER_HINTS) and not hinted(
        tokens, PERSON_NAME_HINTS
    ):
        return
    distinct = pc.unique(values).slice(0, NAME_SAMPLE).to_pylist()
    words = sum(len(v.split()) for v in distinct) / len(distinct)
    if hinted(tokens, PERSON_NAME_HINTS):
        alphabetic = [v for v in distinct if re.fullmatch(r"[^\d@]{2,60}", v.strip())]
        if len(alphabetic) >= 0.5 * len(distinct):
            item.counts["nom"] = _rows_in(values, alphabetic)
            item.by_name.add("nom")
            return
    if words > FREE_TEXT_WORDS:
        found = names.names_in_texts(distinct)
        if found:
            item.counts["nom"] = _rows_in(values, list(found))
        return
    shapes = {v: names.label_shape(v) for v in distinct}
    full = [v for v, s in shapes.items() if s == "full"]
    single = [v for v, s in shapes.items() if s == "single"]
    civil = [v for v in distinct if re.match(rf"({names.CIVILITIES})\s", v.strip())]
    if civil or (full and len(full) >= FULL_NAME_SHARE * len(distinct)):
        item.counts["nom"] = _rows_in(values, full + civil)
    elif (
        len(distinct) >= SINGLE_NAME_MIN_DISTINCT
        and len(single) + len(full) >= SINGLE_NAME_SHARE * len(distinct)
    ):
        item.counts["nom"] = _rows_in(values, single + full)
    else:
        # Phrases among labels: a name inside one is still a name.
        phrases = [v for v in distinct if shapes[v] is None and len(v.split()) >= 3]
        found = names.names_in_texts(phrases) if phrases else {}
        if found:
            item.counts["nom"] = _rows_in(values, list(found))


def _rows_in(values: pa.Array, chosen: list[str]) -> int:
    return pc.sum(pc.is_in(values, value_set=pa.array(chosen, pa.string()))).as_py() or 0


def person_name_spans(text: str) -> list[tuple[int, int]]:
    """Where names of people stand in one text (the model's entities included)."""
    return names.names_in_texts([text]).get(text, [])


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


def _as_text(column: pa.ChunkedArray) -> pa.Array:
    array = column.combine_chunks()
    if not pa.types.is_string(array.type):
        array = pc.cast(array, pa.string())
    return array


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


def _individual_coordinates(table: pa.Table, geometry_present: bool, reason: str) -> list[Finding]:
    columns = [n for n in table.column_names if is_coordinate_column(n)]
    if geometry_present:
        columns.append("geometry")
    detail = (
        f"Les lignes décrivent des personnes (colonne « {reason} ») : leur position précise "
        "les localise. Généralisez-la (« generaliser » avec « grille_m: 200 » ou « niveau: "
        "commune ») plutôt que de la supprimer."
    )
    return [Finding(n, "coordonnees-individuelles", table.num_rows, detail=detail) for n in columns]
