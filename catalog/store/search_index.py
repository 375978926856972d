"""The catalogue's search index, kept by the store beside the datasets it describes.

One row per dataset the portal may list (published, with a current release) in
`search_entries`: its facets as columns (commune, licence, geographic, access level), its
sort keys (folded title, date of the data's last update) and the day its next update is
due (the `statut` facet compares it with today in SQL). Its themes are rows of
`search_themes`. Its words are in a full-text index: an FTS5 table on SQLite
(`search_text`), a weighted `tsvector` with a GIN index on PostgreSQL
(`search_entries.document`). A search is then a few SQL statements whatever the size of
the catalogue: the matching set, facet counts by GROUP BY, one page of slugs.

The words are analysed here, in Python, for both backends, so that both find exactly the
same datasets: folded (no accent, lower case, ligatures spelt out), without their plural
« s » or « x », and stemmed by the French Snowball stemmer (the one PostgreSQL's `french`
configuration uses). A query word finds a word of the same stem, or a word it begins
(« sport » finds « sportifs »); its articles and short prepositions are ignored unless
nothing else is left; every word must be found. Pertinence weighs where each word is
found: title 3, keywords 2, description 1.

The index follows every write of a dataset (publication, confirmation of the same content
with new metadata, depublication, republication) in the same transaction; a store opened
on a catalogue indexed by an older `INDEX_VERSION` (or none) rebuilds it.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

import snowballstemmer
import sqlalchemy as sa

from catalog.store.downloads import FORMATS
from catalog.store.tables import (
    datasets_table,
    search_entries_table,
    search_state_table,
    search_themes_table,
    structures_table,
)
from core.dates import dates_of
from core.records import Dataset
from core.vocabularies import normalise_label

INDEX_VERSION = 2  # raise it when the index changes: stores rebuild it at opening
CACHE_SIZE = 256  # answers kept per store, each for one state of the index
FACETS = ("commune", "theme", "licence", "format", "geographique", "statut")
SORTS = ("pertinence", "mise-a-jour", "titre")
BY_SLUG = "identifiant"  # the order of a commune's page (not offered to the API)
FIELDS = ("title", "keywords", "description")
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
class SearchQuery:
    text: str = ""
    filters: dict[str, str] = field(default_factory=dict)
    sort: str = "pertinence"
    page: int = 1
    size: int = 20


@dataclass(frozen=True)
class Readers:
    """Which datasets a caller may list: those of these access levels, those of these
    communes (the ones it acts for), or every one."""

    levels: tuple[str, ...] = ("public",)
    communes: tuple[str, ...] = ()
    everything: bool = False


@dataclass
class SearchPage:
    total: int
    facets: dict[str, dict[str, int]]
    slugs: list[str]  # the page, in order
    scores: dict[str, int]


@dataclass(frozen=True)
class Word:
    """A word as search compares it: folded (no accent, lower case, singular) and stemmed."""

    form: str
    stem: str


def words(text: str) -> list[str]:
    folded = normalise_label(text.translate(LIGATURES))
    return [w for w in re.split(r"[^a-z0-9]+", folded) if w]


@lru_cache(maxsize=65_536)
def word(folded: str) -> Word:
    """`folded` (from `words`) without its plural « s » or « x », and its French stem."""
    if len(folded) > 3 and folded[-1] in "sx" and folded[-2] != "s":
        folded = folded[:-1]
    with _STEMMER_LOCK:
        stem = _STEMMER.stemWord(folded)
    return Word(folded, stem)


def query_terms(text: str) -> list[Word]:
    found = [w for w in words(text) if len(w) > 1]
    meaningful = [w for w in found if w not in STOP_WORDS] or found
    return [word(w) for w in dict.fromkeys(meaningful)]


def field_words(dataset: Dataset) -> dict[str, list[Word]]:
    metadata = dataset.metadata
    texts = {
        "title": metadata["title"],
        "keywords": " ".join(metadata.get("keywords", [])),
        "description": metadata.get("description", ""),
    }
    return {name: [word(w) for w in words(text)] for name, text in texts.items()}


# --- the full-text part of each backend ----------------------------------------------------------


class SqliteText:
    """SQLite: an FTS5 table whose rowid is the entry's, forms and stems in their own
    columns (a query word is a prefix of a form, or equal to a stem)."""

    COLUMNS = tuple(f"{name}_{kind}" for name in FIELDS for kind in ("forms", "stems"))

    def create(self, conn: sa.Connection) -> None:
        conn.exec_driver_sql(
            "CREATE VIRTUAL TABLE IF NOT EXISTS search_text USING fts5("
            + ", ".join(self.COLUMNS)
            + ", tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3 4')"
        )

    def write(self, conn: sa.Connection, entry: int, fields: dict[str, list[Word]]) -> None:
        values = {"rowid": entry}
        for name, found in fields.items():
            values[f"{name}_forms"] = " ".join(w.form for w in found)
            values[f"{name}_stems"] = " ".join(w.stem for w in found)
        names = ", ".join(values)
        conn.execute(
            sa.text(f"INSERT INTO search_text ({names}) VALUES (:{', :'.join(values)})"), values
        )

    def delete(self, conn: sa.Connection, entries: list[int]) -> None:
        for entry in entries:
            conn.execute(sa.text("DELETE FROM search_text WHERE rowid = :e"), {"e": entry})

    def clear(self, conn: sa.Connection) -> None:
        conn.exec_driver_sql("DROP TABLE IF EXISTS search_text")

    def matches(self, param: str) -> str:
        return f"e.id IN (SELECT rowid FROM search_text WHERE search_text MATCH :{param})"

    def expression(self, terms: list[Word], fields: tuple[str, ...] = FIELDS) -> str:
        forms = " ".join(f"{name}_forms" for name in fields)
        stems = " ".join(f"{name}_stems" for name in fields)
        return " AND ".join(
            f'({{{forms}}} : "{t.form}" * OR {{{stems}}} : "{t.stem}")' for t in terms
        )


class PostgresText:
    """PostgreSQL: a `tsvector` per entry, forms and stems (marked « = ») weighted A, B, C
    by field, under a GIN index."""

    LABELS = {"title": "A", "keywords": "B", "description": "C"}
    POSITIONS = {"A": 1, "B": 2, "C": 3}

    def create(self, conn: sa.Connection) -> None:
        """The migrations create the column and its index."""

    def write(self, conn: sa.Connection, entry: int, fields: dict[str, list[Word]]) -> None:
        labels: dict[str, set[str]] = {}
        for name, found in fields.items():
            for w in found:
                labels.setdefault(w.form, set()).add(self.LABELS[name])
                labels.setdefault(f"={w.stem}", set()).add(self.LABELS[name])
        document = " ".join(
            f"'{lexeme}':" + ",".join(f"{self.POSITIONS[x]}{x}" for x in sorted(weights))
            for lexeme, weights in labels.items()
        )
        conn.execute(
            sa.text("UPDATE search_entries SET document = CAST(:d AS tsvector) WHERE id = :e"),
            {"d": document, "e": entry},
        )

    def delete(self, conn: sa.Connection, entries: list[int]) -> None:
        """The document goes with its entry."""

    def clear(self, conn: sa.Connection) -> None:
        """The documents go with their entries."""

    def matches(self, param: str) -> str:
        return f"e.document @@ CAST(:{param} AS tsquery)"

    def expression(self, terms: list[Word], fields: tuple[str, ...] = FIELDS) -> str:
        weights = "".join(self.LABELS[name] for name in fields)
        restrict = "" if fields == FIELDS else weights
        return " & ".join(f"('{t.form}':*{restrict} | '={t.stem}':{restrict})" for t in terms)


TextIndex = SqliteText | PostgresText


# --- keeping the index ---------------------------------------------------------------------------


def refresh(conn: sa.Connection, text: TextIndex, slug: str) -> None:
    """Index the dataset as it is now in the catalogue, or take it out of the index."""
    _remove(conn, text, slug)
    row = conn.execute(sa.select(datasets_table).where(datasets_table.c.slug == slug)).first()
    if row is None or row.status != "publie" or not _has_current_release(conn, row):
        return
    _insert(conn, text, Dataset(**row._mapping))


def rebuild(conn: sa.Connection, text: TextIndex) -> None:
    """Index every listed dataset again (a store indexed by another version, or by none)."""
    text.clear(conn)
    tables = [search_themes_table, search_entries_table]
    for table in tables:  # derived: dropped and made again as this version defines them
        table.drop(conn, checkfirst=True)
    for table in reversed(tables):
        table.create(conn)
    text.create(conn)
    current = (
        sa.select(datasets_table)
        .join(
            structures_table,
            sa.and_(
                structures_table.c.dataset == datasets_table.c.slug,
                structures_table.c.version == datasets_table.c.current_version,
            ),
        )
        .where(datasets_table.c.status == "publie", structures_table.c.current_release.is_not(None))
    )
    for row in conn.execute(current).mappings().all():
        _insert(conn, text, Dataset(**row))
    conn.execute(search_state_table.delete())
    conn.execute(search_state_table.insert().values(name="version", value=INDEX_VERSION))


def up_to_date(conn: sa.Connection) -> bool:
    query = sa.select(search_state_table.c.value).where(search_state_table.c.name == "version")
    return conn.execute(query).scalar() == INDEX_VERSION


def ensure(engine: sa.Engine, text: TextIndex) -> None:
    """Create the index where it is missing, and rebuild it when built by another version."""
    with engine.begin() as conn:
        text.create(conn)
        if not up_to_date(conn):
            rebuild(conn, text)


def _remove(conn: sa.Connection, text: TextIndex, slug: str) -> None:
    entries = list(
        conn.execute(
            sa.select(search_entries_table.c.id).where(search_entries_table.c.slug == slug)
        ).scalars()
    )
    if not entries:
        return
    text.delete(conn, entries)
    conn.execute(search_themes_table.delete().where(search_themes_table.c.entry.in_(entries)))
    conn.execute(search_entries_table.delete().where(search_entries_table.c.id.in_(entries)))


def _has_current_release(conn: sa.Connection, row: Any) -> bool:
    query = sa.select(structures_table.c.current_release).where(
        structures_table.c.dataset == row.slug,
        structures_table.c.version == row.current_version,
    )
    return conn.execute(query).scalar() is not None


def _insert(conn: sa.Connection, text: TextIndex, dataset: Dataset) -> None:
    metadata = dataset.metadata
    dates = dates_of(dataset)
    inserted = conn.execute(
        search_entries_table.insert().values(
            slug=dataset.slug,
            producer=dataset.producer,
            access=str(metadata.get("access", "public")),
            licence=str(dataset.licence["id"]),
            geographic=bool(metadata.get("crs")),
            title_sort=normalise_label(metadata["title"]),
            updated=dates.data_updated,
            next_due=dates.next_expected,
        )
    )
    entry = inserted.inserted_primary_key[0]
    themes = list(dict.fromkeys(metadata.get("themes", [])))
    if themes:
        conn.execute(search_themes_table.insert(), [{"entry": entry, "theme": t} for t in themes])
    text.write(conn, entry, field_words(dataset))


# --- searching -----------------------------------------------------------------------------------


def generation(conn: sa.Connection) -> tuple[int, int]:
    """The index's state: entries are only inserted (under ids never reused) or deleted, so
    the greatest id and the count change with every change, and never come back."""
    latest, count = conn.execute(sa.text("SELECT max(id), count(*) FROM search_entries")).one()
    return int(latest or 0), int(count)


class AnswerCache:
    """The latest answers of one store, each valid for the state of the index it was
    computed on (`generation`): a change of any dataset makes every one of them stale."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._answers: OrderedDict[Any, SearchPage] = OrderedDict()
        self._lock = threading.Lock()

    def search(
        self,
        conn: sa.Connection,
        text: TextIndex,
        query: SearchQuery,
        readers: Readers,
        today: date,
    ) -> SearchPage:
        if self.size <= 0:
            return search(conn, text, query, readers, today)
        key = (generation(conn), repr(query), readers, today)
        with self._lock:
            known = self._answers.get(key)
            if known is not None:
                self._answers.move_to_end(key)
                return known
        answer = search(conn, text, query, readers, today)
        with self._lock:
            self._answers[key] = answer
            while len(self._answers) > self.size:
                self._answers.popitem(last=False)
        return answer


def search(
    conn: sa.Connection, text: TextIndex, query: SearchQuery, readers: Readers, today: date
) -> SearchPage:
    """The matching datasets' total, facets and one page of slugs (best first)."""
    terms = query_terms(query.text)
    where, params = _conditions(text, terms, query.filters, readers)
    params["today"] = today
    late = "CASE WHEN e.next_due IS NOT NULL AND e.next_due < :today THEN 1 ELSE 0 END"
    groups = conn.execute(
        _statement(
            f"SELECT e.producer, e.licence, e.geographic, {late} AS late, count(*) "
            f"FROM search_entries e WHERE {where} GROUP BY 1, 2, 3, 4"
        ),
        params,
    ).all()
    themes = conn.execute(
        _statement(
            "SELECT t.theme, count(*) FROM search_themes t JOIN search_entries e "
            f"ON e.id = t.entry WHERE {where} GROUP BY t.theme"
        ),
        params,
    ).all()
    facets = _facets(groups, themes)
    total = sum(count for *_, count in groups)
    score, order = _order(text, terms, query.sort, params)
    start = (query.page - 1) * query.size
    page = conn.execute(
        _statement(
            f"SELECT e.slug, {score} AS score FROM search_entries e WHERE {where} "
            f"ORDER BY {order} LIMIT :limit OFFSET :offset"
        ),
        {**params, "limit": query.size, "offset": start},
    ).all()
    return SearchPage(
        total=total,
        facets=facets,
        slugs=[slug for slug, _ in page],
        scores={slug: int(value) for slug, value in page},
    )


def _statement(sql: str) -> sa.TextClause:
    statement = sa.text(sql)
    if ":today" in sql:
        statement = statement.bindparams(sa.bindparam("today", type_=sa.Date))
    return statement


def _conditions(
    text: TextIndex, terms: list[Word], filters: dict[str, str], readers: Readers
) -> tuple[str, dict[str, Any]]:
    params: dict[str, Any] = {}
    where = [_visibility(readers, params)]
    for name, value in filters.items():
        where.append(_filter(name, value, len(params), params))
    if terms:
        params["text_all"] = text.expression(terms)
        where.append(text.matches("text_all"))
    return " AND ".join(where), params


def _visibility(readers: Readers, params: dict[str, Any]) -> str:
    if readers.everything:
        return "1 = 1"
    allowed = []
    for index, level in enumerate(readers.levels):
        params[f"level_{index}"] = level
        allowed.append(f"e.access = :level_{index}")
    for index, commune in enumerate(readers.communes):
        params[f"acting_{index}"] = commune
        allowed.append(f"e.producer = :acting_{index}")
    return "(" + (" OR ".join(allowed) or "1 = 0") + ")"


def _filter(name: str, value: str, index: int, params: dict[str, Any]) -> str:
    param = f"filter_{index}"
    params[param] = value
    if name == "commune":
        return f"e.producer = :{param}"
    if name == "licence":
        return f"e.licence = :{param}"
    if name == "theme":
        return f"e.id IN (SELECT entry FROM search_themes WHERE theme = :{param})"
    if name == "geographique":
        return {"oui": "e.geographic = true", "non": "e.geographic = false"}.get(value, "1 = 0")
    if name == "format":
        spec = FORMATS.get(value)
        if spec is None:
            return "1 = 0"
        return "e.geographic = true" if spec.geographic_only else "1 = 1"
    if name == "statut":
        late = "(e.next_due IS NOT NULL AND e.next_due < :today)"
        return {"en-retard": late, "a-jour": f"NOT {late}"}.get(value, "1 = 0")
    return "1 = 0"  # a facet the index does not know matches nothing


def _order(
    text: TextIndex, terms: list[Word], sort: str, params: dict[str, Any]
) -> tuple[str, str]:
    """The score expression, and the ORDER BY (the slug last: a stable order)."""
    title, slug = "e.title_sort", "e.slug"  # code point order on both backends
    score = "0"
    if terms:
        parts = []
        for index, term in enumerate(terms):
            for name in FIELDS:
                param = f"text_{index}_{name}"
                params[param] = text.expression([term], (name,))
                parts.append(f"CASE WHEN {text.matches(param)} THEN {WEIGHTS[name]} ELSE 0 END")
        score = " + ".join(parts)
    if sort == "mise-a-jour":
        return score, f"e.updated DESC, {slug} DESC"  # the index, read backwards
    if sort == BY_SLUG:
        return score, slug
    if sort == "titre" or not terms:
        return score, f"{title}, {slug}"
    return score, f"score DESC, {title}, {slug}"


def _facets(groups: list[Any], themes: list[Any]) -> dict[str, dict[str, int]]:
    counters: dict[str, Counter[str]] = {name: Counter() for name in FACETS}
    geographic = Counter[bool]()
    for producer, licence, is_geographic, late, count in groups:
        counters["commune"][producer] += count
        counters["licence"][licence] += count
        counters["geographique"]["oui" if is_geographic else "non"] += count
        counters["statut"]["en-retard" if late else "a-jour"] += count
        geographic[bool(is_geographic)] += count
    for theme, count in themes:
        counters["theme"][theme] += count
    everything = geographic[True] + geographic[False]
    for name, spec in FORMATS.items():
        count = geographic[True] if spec.geographic_only else everything
        if count:
            counters["format"][name] = count
    return {name: dict(counter.most_common()) for name, counter in counters.items()}
