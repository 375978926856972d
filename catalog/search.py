"""Search the catalog: full text, facets, filters, sort and pages, in French.

The store keeps a search index of the datasets the portal lists
(`catalog.store.search_index`: SQLite FTS5, PostgreSQL full-text), so that a search costs a
few SQL statements, whatever the size of the catalogue, and keeps exact totals and facet
counts. Only the page's datasets are read from the catalogue.

Words are compared without accents or case, singular and plural alike, by their French
Snowball stem: « vélos », « VELO » and « velo » find « Vélo » and « vélos »; a query word
also finds the words it begins (« sport » finds « sportifs »). The query's articles and
short prepositions are ignored unless nothing else is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from catalog.store import Search
from catalog.store.search_index import BY_SLUG, FACETS, SORTS, Readers, SearchQuery
from core import clock
from core.access import Principal
from core.records import Dataset, Release

__all__ = ["BY_SLUG", "FACETS", "SORTS", "Hit", "Query", "readers_of", "search"]

Query = SearchQuery
ACCESS_LEVELS = ("public", "restreint", "agents")


@dataclass
class Hit:
    dataset: Dataset
    release: Release
    score: int


def readers_of(principal: Principal) -> Readers:
    """What `principal` may list, as the index filters it (`Principal.may_read`)."""
    nobody = "\0"  # a commune no one acts for: the levels open to the caller as such
    levels = tuple(level for level in ACCESS_LEVELS if principal.may_read(level, nobody))
    if principal.acts_for(nobody):
        return Readers(levels, (), everything=True)
    communes = (principal.commune,) if principal.kind == "producteur" and principal.commune else ()
    return Readers(levels, communes)


def search(
    store: Search, principal: Principal, query: Query, today: date | None = None
) -> dict[str, Any]:
    found = store.search(query, readers_of(principal), today or clock.today())
    hits = [Hit(d, r, found.scores.get(d.slug, 0)) for d, r in store.listed(found.slugs)]
    return {
        "total": found.total,
        "page": query.page,
        "taille": query.size,
        "facettes": found.facets,
        "hits": hits,
    }
