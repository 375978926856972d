"""Pull: one declared-source folder of a commune's inbox through the pipeline of an upload
(channel « moissonnage »).

Unchanged content is a confirmation (the dataset counts as current); new content goes
through the checks and publication of an upload; an unreachable source is a French
refusal, counted in the source's state, and an event (`core.sources.SOURCE_FAILURE_KIND`)
tells the data team once per failure streak.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from catalog.store import CatalogStore
from core.inbox import METADATA_NAMES
from core.problems import Problem, Report, SubmissionRejected, reject
from core.records import SourceState, SubmissionRecord
from core.settings import Settings
from core.sources import SOURCE_FAILURE_KIND, Source, source_endpoint
from core.wording import short_moment
from pipelines.harvest.contract import DEFAULT_PAGE_SIZE, FetchResult
from pipelines.harvest.errors import SourceError
from pipelines.harvest.http import HttpClient
from pipelines.harvest.registry import fetch
from pipelines.harvest.state import failed, succeeded
from pipelines.submission import (
    Outcome,
    Submission,
    dataset_slug,
    record_rejection,
    run_submission,
    stage_metadata,
)

CHANNEL = "moissonnage"
STAGE = "source"


def pull(
    store: CatalogStore,
    settings: Settings,
    producer: str,
    folder: Path,
    *,
    client: HttpClient | None = None,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> Outcome:
    """Fetch the source declared in `folder`'s metadata and run it through the pipeline:
    unchanged → a confirmation (the dataset counts as current); new → the checks and
    publication of an upload; unreachable → a French refusal, and the data team told."""
    metadata_path = next((folder / n for n in METADATA_NAMES if (folder / n).is_file()), None)
    submission = Submission.new(
        producer, folder, metadata_path or folder / METADATA_NAMES[0], CHANNEL
    )
    try:
        metadata = stage_metadata(submission, settings)
        if not metadata.get("source"):
            raise reject(
                "metadonnees",
                "source-absente",
                "Ce dossier ne contient ni fichier de données ni source déclarée "
                "(« source: {type: …, url: …} » dans les métadonnées).",
            )
    except SubmissionRejected as error:
        return record_rejection(submission, error, store)
    source = Source.from_dict(metadata["source"])
    slug = dataset_slug(producer, metadata["identifier"])
    previous = store.source_state(slug)
    known = previous if _can_skip(store, slug, previous, source, metadata) else None
    target = settings.work_dir / CHANNEL / submission.id
    name, crs = metadata["identifier"], metadata.get("crs")
    try:
        try:
            result = fetch(
                source, known, target, client=client, page_size=page_size, name=name, crs=crs
            )
        except SourceError as error:
            return _record_failure(store, submission, slug, metadata, source, previous, error)
        if not result.changed:
            return _confirm_unchanged(store, submission, slug, previous, result)
        return _run_fetched(store, settings, submission, slug, source, previous, result)
    finally:
        shutil.rmtree(target, ignore_errors=True)  # the fetched file is in the release now


def _can_skip(
    store: CatalogStore,
    slug: str,
    state: SourceState | None,
    source: Source,
    metadata: dict[str, Any],
) -> bool:
    """Whether validators and checksum of the last accepted content may skip the pipeline:
    same endpoint, a published current release, metadata unchanged (else the content
    is fetched in full and goes through every check, as an upload would)."""
    if state is None or state.sha256 is None or state.endpoint != source_endpoint(source):
        return False
    dataset = store.get_dataset(slug)
    if dataset is None or dataset.status != "publie" or store.current_release(slug) is None:
        return False
    return _same_metadata(dataset.metadata, metadata)


def _same_metadata(stored: dict[str, Any], submitted: dict[str, Any]) -> bool:
    def canonical(value: Any) -> str:
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)

    return all(
        canonical(stored.get(key)) == canonical(value)
        for key, value in submitted.items()
        if not (key == "crs" and value is None)  # the stored CRS is the file's own
    )


def _confirm_unchanged(
    store: CatalogStore,
    submission: Submission,
    slug: str,
    previous: SourceState | None,
    result: FetchResult,
) -> Outcome:
    """The published content is still the source's: the dataset counts as current."""
    dataset = store.get_dataset(slug)
    release = store.current_release(slug)
    assert dataset is not None and release is not None and previous is not None
    report = Report(rows_checked=release.row_count)
    record = SubmissionRecord(
        id=submission.id,
        producer=submission.producer,
        dataset=slug,
        channel=CHANNEL,
        received_at=datetime.fromisoformat(submission.received_at),
        status="",
        release=release.id,
        report={**report.to_dict(), "source": {"inchange": result.reason, "detail": result.detail}},
    )
    store.confirm(slug, record, dataset.metadata, dataset.licence)
    store.record_source_check(slug, succeeded(previous, result, accepted=True))
    return Outcome(
        submission=submission.id,
        status="confirmee",
        dataset=slug,
        release=release.id,
        structure_version=dataset.current_version,
        report=report,
    )


def _run_fetched(
    store: CatalogStore,
    settings: Settings,
    submission: Submission,
    slug: str,
    source: Source,
    previous: SourceState | None,
    result: FetchResult,
) -> Outcome:
    """The fetched file through the checks and publication of an upload."""
    assert result.path is not None
    fetched = replace(submission, data_path=str(result.path.resolve()))
    outcome = run_submission(fetched, settings, store)
    base = previous or SourceState(dataset=slug, endpoint=source_endpoint(source))
    accepted = outcome.status in {"publiee", "confirmee"}
    if accepted:
        base = replace(base, endpoint=source_endpoint(source))
    store.record_source_check(slug, succeeded(base, result, accepted=accepted))
    return outcome


def _record_failure(
    store: CatalogStore,
    submission: Submission,
    slug: str,
    metadata: dict[str, Any],
    source: Source,
    previous: SourceState | None,
    error: SourceError,
) -> Outcome:
    """Count the failure, tell the data team once per failure streak, refuse in French."""
    base = previous or SourceState(dataset=slug, endpoint=source_endpoint(source))
    state = failed(base, error)
    since = state.failing_since
    assert since is not None  # a failure always starts or continues a streak
    store.record_source_check(slug, state)
    store.record_event(
        slug,
        SOURCE_FAILURE_KIND,
        f"La source de « {metadata['title']} » ({source.label}) est injoignable depuis le "
        f"{short_moment(since)}",
        {
            "source": source_endpoint(source),
            "regle": error.rule,
            "erreur": str(error),
            "depuis": since.isoformat(),
        },
        key=f"{SOURCE_FAILURE_KIND}:{slug}:{since.isoformat()}",
    )
    report = Report()
    report.add(
        Problem(
            stage=STAGE,
            rule=error.rule,
            message=f"Récupération de la source ({source.label}) impossible : {error}. "
            f"Échecs consécutifs : {state.consecutive_failures}.",
        )
    )
    return record_rejection(submission, SubmissionRejected(report), store, metadata)
