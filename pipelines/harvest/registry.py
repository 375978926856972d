"""The source types' implementations, in pygeoapi's shape: a small Protocol and one table.

The table is `core.sources.SOURCE_KINDS`: each source type's description names its
implementation by a dotted path (`"pipelines.harvest.wfs:WfsSource"`), loaded here the
first time a source of that type is fetched. An implementation is any class whose
instances answer `contract.SourceType`. `fetch` fetches any declared source.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from core.plugins import load
from core.records import SourceState
from core.sources import SOURCE_KINDS, Source, as_source
from pipelines.harvest.contract import DEFAULT_PAGE_SIZE, Fetching, FetchResult, SourceType
from pipelines.harvest.errors import SourceError
from pipelines.harvest.http import HttpClient


@cache
def source_type(name: str) -> SourceType:
    """The implementation of the source type `name` (a key of `core.sources.SOURCE_KINDS`)."""
    implementation: SourceType = load(SOURCE_KINDS[name].fetcher)()
    if implementation.name != name:
        raise ValueError(f"{SOURCE_KINDS[name].fetcher} fetches {implementation.name}, not {name}")
    return implementation


def fetch(
    source: Source | dict[str, Any],
    state: SourceState | None,
    target_dir: Path,
    *,
    client: HttpClient | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
    name: str = "donnees",
    crs: int | None = None,
) -> FetchResult:
    """Fetch `source` into `target_dir` (file `name` + extension), or tell it is unchanged
    since `state` (the content last taken into the catalog); raise SourceError."""
    source = as_source(source)
    client = client or HttpClient()
    target_dir.mkdir(parents=True, exist_ok=True)
    if source.type not in SOURCE_KINDS:
        raise SourceError("type-inconnu", f"Type de source « {source.type} » inconnu", source.url)
    fetching = Fetching(client, target_dir, name, page_size, crs)
    return source_type(source.type).fetch(source, state, fetching)
