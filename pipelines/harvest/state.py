"""What the catalog remembers of a source after each check (`core.records.SourceState`).

A success resets the failure streak; validators and checksum are kept only for content
the catalog took (refused content is fetched and checked again next time). A failure
counts the streak and remembers when it started (the data team is told once per streak).
"""

from __future__ import annotations

from dataclasses import replace

from core import clock
from core.records import SourceState
from pipelines.harvest.contract import FetchResult
from pipelines.harvest.errors import SourceError


def succeeded(state: SourceState, result: FetchResult, *, accepted: bool) -> SourceState:
    """The source answered; its validators are kept only for content the catalog took
    (refused content is fetched and checked again next time)."""
    moment = clock.now()
    state = replace(
        state,
        last_checked_at=moment,
        last_success_at=moment,
        consecutive_failures=0,
        last_error=None,
        failing_since=None,
    )
    if not accepted:
        return state
    return replace(
        state,
        etag=result.etag,
        last_modified=result.last_modified,
        length=result.length,
        sha256=result.sha256,
    )


def failed(state: SourceState, error: SourceError) -> SourceState:
    """The source could not be fetched: one more failure in its streak."""
    moment = clock.now()
    return replace(
        state,
        last_checked_at=moment,
        consecutive_failures=state.consecutive_failures + 1,
        last_error=str(error),
        failing_since=state.failing_since or moment,
    )
