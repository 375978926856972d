"""Search the catalog: full text, facets, filters, sort and pages, in French.

The catalog holds datasets by the hundred or thousand, not by the million: searching
the published records in memory answers in milliseconds and keeps exact totals and
facet counts. (PostgreSQL full-text search can take over behind the same function.)

Words are compared without accents or case, singular and plural alike, by their French
Snowball stem: « vélos », « VELO » and « velo » find « Vélo » and « vélos »; a query word
also finds the words it begins (« sport » finds « sportifs »). The query's articles and
short prepositions are ignored unless nothing else is left.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import snowballstemmer

from catalog.store.downloads import offered
from core.dates import dates_of
from core.records import Dataset, Release
from core.rules import freshness
from core.vocabularies import normalise_label

FACETS = ("commune", "theme", "licence", "format", "geographique", "statut")
SORTS = ("pertinence", "mise-a-jour", "titre")
WEIGHTS = {"title": 3, "keywords": 2, "description": 1}
# Ignored in queries (not in texts): they would only demand a word found everywhere.
STOP_WORDS = frozenset(
    {"au", "aux", "de", "des", "du", "en", "et", "la", "le", "les", "un", "une", "ou", "par"}
    | {"pour", "sur", "dans", "avec"}
)
LIGATURES = str.maketrans({"œ": "oe", "Œ": "OE", "æ": "ae", "Æ": "AE", "ß": "ss"})
_STEMMER = snowballstemmer.stemmer("french")
_STEMMER_LOCK = threading.Lock()  # a Snowball stemmer keeps state: one word at a time


@dataclass
class Query:
    text: str = ""
    filters: dict[str, str] = field(default_factory=dict)
    sort: str = "pertinence"
    page: int = 1
    size: int = 20


@dataclass
class Hit:
    dataset: Dataset
    release: Release
    score: int


def facet_values(dataset: Dataset, release: Release) -> dict[str, list[str]]:
    return {
        "commune": [dataset.producer],
        "theme": list(dataset.metadata.get("themes", [])),
        "licence": [dataset.licence["id"]],
        "format": offered(bool(dataset.metadata.get("crs"))),
        "geographique": ["oui" if dataset.metadata.get("crs") else "non"],
        "statut": [freshness(dataset)["statut"]],
    }


def search(entries: list[tuple[Dataset, Release]], query: Query) -> dict[str, Any]:
    terms = _terms(query.text)
    hits = []
    for dataset, release in entries:
        score = _score(dataset, terms)
        if terms and score == 0:
            continue
        values = facet_values(dataset, release)
        if all(wanted in values.get(name, []) for name, wanted in query.filters.items()):
            hits.append(Hit(dataset, release, score))
    facets = {name: Counter() for name in FACETS}
    for hit in hits:
        for name, values in facet_values(hit.dataset, hit.release).items():
            facets[name].update(values)
    hits.sort(key=_sort_key(query.sort if terms or query.sort != "pertinence" else "titre"))
    start = (query.page - 1) * query.size
    return {
        "total": len(hits),
        "page": query.page,
        "taille": query.size,
        "facettes": {name: dict(counter.most_common()) for name, counter in facets.items()},
        "hits": hits[start : start + query.size],
    }


@dataclass(frozen=True)
class Word:
    """A word as search compares it: folded (no accent, lower case, singular) and stemmed."""

    form: str
    stem: str

    def found_by(self, term: Word) -> bool:
        return self.stem == term.stem or self.form.startswith(term.form)


def _words(text: str) -> list[str]:
    folded = normalise_label(text.translate(LIGATURES))
    return [w for w in re.split(r"[^a-z0-9]+", folded) if w]


@lru_cache(maxsize=65_536)
def _word(folded: str) -> Word:
    """`folded` (from `_words`) without its plural « s » or « x », and its French stem."""
    if len(folded) > 3 and folded[-1] in "sx" and folded[-2] != "s":
        folded = folded[:-1]
    with _STEMMER_LOCK:
        stem = _STEMMER.stemWord(folded)
    return Word(folded, stem)


@lru_cache(maxsize=16_384)
def _indexed(text: str) -> tuple[Word, ...]:
    """A field's words, computed once per distinct text (titles and descriptions repeat
    from one search to the next)."""
    return tuple(_word(w) for w in _words(text))


def _terms(text: str) -> list[Word]:
    words = [w for w in _words(text) if len(w) > 1]
    meaningful = [w for w in words if w not in STOP_WORDS] or words
    return [_word(w) for w in dict.fromkeys(meaningful)]


def _score(dataset: Dataset, terms: list[Word]) -> int:
    if not terms:
        return 0
    fields = {
        "title": _indexed(dataset.metadata["title"]),
        "keywords": _indexed(" ".join(dataset.metadata["keywords"])),
        "description": _indexed(dataset.metadata["description"]),
    }
    score = 0
    for term in terms:
        found = sum(
            WEIGHTS[name] * sum(1 for word in words if word.found_by(term))
            for name, words in fields.items()
        )
        if found == 0:
            return 0  # every term must be found somewhere
        score += found
    return score


def _sort_key(sort: str):
    if sort == "mise-a-jour":  # most recent first
        return lambda hit: (
            -dates_of(hit.dataset).data_updated.toordinal(),
            hit.dataset.slug,
        )
    if sort == "titre":
        return lambda hit: normalise_label(hit.dataset.metadata["title"])
    return lambda hit: (-hit.score, normalise_label(hit.dataset.metadata["title"]))
