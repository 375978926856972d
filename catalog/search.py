"""Search the catalog: full text, facets, filters, sort and pages, in French.

The catalog holds datasets by the hundred or thousand, not by the million: searching
the published records in memory answers in milliseconds and keeps exact totals and
facet counts. (PostgreSQL full-text search can take over behind the same function.)
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from catalog.formats import offered
from catalog.records import Dataset, Release
from pipelines import clock
from pipelines.vocabularies import find_frequency, normalise_label

FACETS = ("commune", "theme", "licence", "format", "geographique", "statut")
SORTS = ("pertinence", "mise-a-jour", "titre")
WEIGHTS = {"title": 3, "keywords": 2, "description": 1}


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


def freshness(dataset: Dataset, today: date | None = None) -> dict[str, Any]:
    """Last update, next expected one from the committed frequency, and whether it is late."""
    today = today or clock.today()
    modified = date.fromisoformat(dataset.metadata["modified"])
    last = max(modified, dataset.last_confirmed_at.date())
    frequency = find_frequency(dataset.metadata["accrual_periodicity"])
    if frequency is None or frequency.days is None:
        return {"derniere": last.isoformat(), "prochaine": None, "statut": "a-jour"}
    expected = last + timedelta(days=max(1, round(frequency.days)))
    return {
        "derniere": last.isoformat(),
        "prochaine": expected.isoformat(),
        "statut": "en-retard" if today > expected else "a-jour",
    }


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


def _terms(text: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", normalise_label(text)) if len(t) > 1]


def _score(dataset: Dataset, terms: list[str]) -> int:
    if not terms:
        return 0
    fields = {
        "title": normalise_label(dataset.metadata["title"]),
        "keywords": normalise_label(" ".join(dataset.metadata["keywords"])),
        "description": normalise_label(dataset.metadata["description"]),
    }
    score = 0
    for term in terms:
        found = sum(WEIGHTS[name] * text.count(term) for name, text in fields.items())
        if found == 0:
            return 0  # every term must be found somewhere
        score += found
    return score


def _sort_key(sort: str):
    if sort == "mise-a-jour":  # most recent first
        return lambda hit: (
            -date.fromisoformat(hit.dataset.metadata["modified"]).toordinal(),
            hit.dataset.slug,
        )
    if sort == "titre":
        return lambda hit: normalise_label(hit.dataset.metadata["title"])
    return lambda hit: (-hit.score, normalise_label(hit.dataset.metadata["title"]))
