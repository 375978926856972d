"""The catalog's look-ups of one request, kept from request to request while they stay true.

A release never changes once published; its dataset, its structure versions and its change
notices change only through the store, which then moves its generation (`store.generation()`,
moved by triggers in whatever process writes). `CachedLookups.view()` reads the generation
once per request and gives a `LookupView`: the store's reads that the rows API, the
downloads and the dataset's routes start with (dataset, current release, structure versions,
notices, published schema), answered from memory while the generation is the one they were
read at, from the store otherwise. Every other method goes to the store.

What is kept is what was read, never a decision: who may see a dataset, whether it is
depublished or its structure retired, are decided again on every request from it
(`catalog.web.context.Web`), so a depublished or hidden dataset stops being served at the
next request after the change, in every process.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from catalog.store import CatalogStore
from catalog.web import views
from core.records import ChangeNotice, Dataset, Release, StructureVersion

MAX_ENTRIES = 20_000  # a few per dataset: the whole catalogue at 10,000 datasets
_MISSING = object()


class LookupView:
    """The store as one request reads it: cached reads of one generation, the rest direct."""

    def __init__(
        self, store: CatalogStore, entries: dict[Hashable, Any], generation: int, checked: bool
    ) -> None:
        self._store = store
        self._entries = entries
        self.at_generation = generation
        self.checked = checked  # False: the last generation known, to be checked by the reader

    def is_current(self) -> bool:
        """Whether the catalogue is still at this view's generation (one read of it)."""
        return self._store.generation() == self.at_generation

    def __getattr__(self, name: str) -> Any:  # every other read or write: the store's
        return getattr(self._store, name)

    def _kept(self, key: Hashable, read: Callable[[], Any]) -> Any:
        value = self._entries.get(key, _MISSING)
        if value is _MISSING:
            value = read()
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = value
        return value

    def get_dataset(self, slug: str) -> Dataset | None:
        return self._kept(("dataset", slug), lambda: self._store.get_dataset(slug))

    def current_release(self, slug: str, version: int | None = None) -> Release | None:
        return self._kept(
            ("release", slug, version), lambda: self._store.current_release(slug, version)
        )

    def structure_versions(self, slug: str) -> list[StructureVersion]:
        return self._kept(("structures", slug), lambda: self._store.structure_versions(slug))

    def notices(self, slug: str) -> list[ChangeNotice]:
        return self._kept(("notices", slug), lambda: self._store.notices(slug))

    def published_schema(self, release: Release) -> dict[str, Any]:
        """The Table Schema of what the release publishes (`views.published_schema`, read
        through this view's kept structure versions)."""
        return self._kept(("schema", release.id), lambda: views.published_schema(self, release))

    def remember(self, key: Hashable, read: Callable[[], Any]) -> Any:
        """Anything else derived from this generation's catalogue, under `key`."""
        return self._kept(("derived", key), read)


class CachedLookups:
    """One per application: the look-ups of the current generation."""

    def __init__(self, store: CatalogStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._generation: int | None = None
        self._entries: dict[Hashable, Any] = {}

    def view(self, checked: bool = True) -> LookupView:
        """The catalogue as of now: one read of the generation. Unchecked, the last one
        read, for a reader that checks it in the snapshot it reads the data in (the rows
        API on PostGIS: `catalog.rows.run_postgis`), and reads anew when it moved."""
        if not checked:
            with self._lock:
                generation, entries = self._generation, self._entries
            if generation is not None:
                return LookupView(self.store, entries, generation, checked=False)
        generation = self.store.generation()
        with self._lock:
            if generation != self._generation:
                self._generation, self._entries = generation, {}
            entries = self._entries
        return LookupView(self.store, entries, generation, checked=True)
