"""Change detection: has the source changed since the content last taken into the catalog?

A conditional GET (If-None-Match / If-Modified-Since) where the server gives validators;
the same strong ETag or Last-Modified from a server that ignored the condition; then the
SHA-256 of the complete content. A HEAD request is not made: a conditional GET already
carries the validators, and an equal length never proves equal content.
"""

from __future__ import annotations

from pathlib import Path

from core.inbox import file_sha256
from core.records import SourceState
from pipelines.harvest.contract import FetchResult


def conditional_headers(state: SourceState | None) -> dict[str, str]:
    headers = {}
    if state is not None and state.etag:
        headers["If-None-Match"] = state.etag
    if state is not None and state.last_modified:
        headers["If-Modified-Since"] = state.last_modified
    return headers


def same_validators(
    state: SourceState | None, etag: str | None, modified: str | None
) -> str | None:
    """A server that ignored the conditional request but sent the same validator."""
    if state is None or state.sha256 is None:
        return None
    if etag and state.etag and etag == state.etag and not etag.startswith("W/"):
        return "etag"
    if not etag and not state.etag and modified and modified == state.last_modified:
        return "last-modified"
    return None


def keep(
    part: Path,
    final: Path,
    state: SourceState | None,
    url: str,
    etag: str | None,
    modified: str | None,
    pages: int = 0,
) -> FetchResult:
    """The complete content: unchanged when its checksum is the last accepted one."""
    digest = file_sha256(part)
    length = part.stat().st_size
    if state is not None and state.sha256 == digest:
        return unchanged("somme-de-controle", url, state, etag, modified, length, pages)
    part.replace(final)
    first = state is None or state.sha256 is None
    return FetchResult(
        status="nouveau",
        reason="premiere" if first else "modifie",
        detail="première récupération" if first else "contenu modifié depuis la dernière fois",
        url=url,
        path=final,
        sha256=digest,
        etag=etag,
        last_modified=modified,
        length=length,
        pages=pages,
    )


UNCHANGED_DETAILS = {
    "304": "le serveur indique que la ressource n'a pas changé (304 Not Modified)",
    "etag": "même ETag que le contenu diffusé",
    "last-modified": "même date Last-Modified que le contenu diffusé",
    "somme-de-controle": "contenu identique au contenu diffusé (même longueur, même SHA-256)",
}


def unchanged(
    reason: str,
    url: str,
    state: SourceState,
    etag: str | None,
    modified: str | None,
    length: int | None = None,
    pages: int = 0,
) -> FetchResult:
    return FetchResult(
        status="inchange",
        reason=reason,
        detail=UNCHANGED_DETAILS[reason],
        url=url,
        sha256=state.sha256,
        etag=etag,
        last_modified=modified,
        length=length if length is not None else state.length,
        pages=pages,
    )
