"""What a source type promises (`SourceType`), what it is given and what it gives back.

A source type (named in `core.sources.SOURCE_KINDS`, loaded by
`pipelines.harvest.registry`) fetches one declared source
into a local file: it is given the source, the state of the content last taken into the
catalog and a `Fetching` (the HTTP client, where to write, how to page); it returns a
`FetchResult` (new content in a file, or unchanged and why) or raises `SourceError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from core.records import SourceState
from core.sources import Source
from pipelines.harvest.http import HttpClient

DEFAULT_PAGE_SIZE = 1000


@dataclass(frozen=True)
class FetchResult:
    """`inchange`: nothing to publish (why in `reason`); `nouveau`: `path` holds the content."""

    status: str  # inchange | nouveau
    reason: str  # 304 | etag | last-modified | somme-de-controle | premiere | modifie
    detail: str  # the reason in French
    url: str  # the address of the content (the file a catalog pointed to)
    path: Path | None = None
    sha256: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    length: int | None = None
    pages: int = 0  # requests of features (WFS, OGC API)

    @property
    def changed(self) -> bool:
        return self.status == "nouveau"


@dataclass(frozen=True)
class Fetching:
    """Where and how one fetch runs: the HTTP client, the folder and the file name (without
    extension) to write, the page size for services that page, the CRS wanted from those
    that offer several."""

    client: HttpClient
    target_dir: Path
    name: str = "donnees"
    page_size: int = DEFAULT_PAGE_SIZE
    crs: int | None = None


class SourceType(Protocol):
    """How to fetch one type of declared source (`type:` of a metadata `source:` block)."""

    name: str  # as in core.sources.SOURCE_KINDS

    def fetch(self, source: Source, state: SourceState | None, fetching: Fetching) -> FetchResult:
        """The content of `source` in `fetching.target_dir`, or unchanged since `state`
        (the content last taken into the catalog); raise SourceError."""
        ...
