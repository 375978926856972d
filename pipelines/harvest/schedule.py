"""When a declared source is fetched: on its declared periodicity, and after a failure
with a growing delay (an hour, doubled at each consecutive failure, up to a day and never
beyond the periodicity)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import yaml

from catalog.store import SourceChecks
from core import clock
from core.inbox import METADATA_NAMES
from core.records import SourceState
from core.safe_yaml import read_producer_yaml
from core.settings import Settings
from core.vocabularies import find_frequency
from pipelines.harvest.folders import source_folders
from pipelines.submission import dataset_slug

RETRY_AFTER_FAILURE = timedelta(hours=1)  # doubled at each consecutive failure…
MAX_RETRY_DELAY = timedelta(days=1)  # …up to a day, and never beyond the periodicity


def is_due(state: SourceState | None, frequency_days: float | None, moment: datetime) -> bool:
    """Whether a source is to be fetched now, on its declared periodicity: never fetched;
    its period elapsed since the last success; or failing, after a growing delay."""
    if state is None or state.last_checked_at is None:
        return True
    period = timedelta(days=frequency_days) if frequency_days else timedelta(days=1)
    if state.consecutive_failures:
        delay = min(
            RETRY_AFTER_FAILURE * 2 ** (state.consecutive_failures - 1), MAX_RETRY_DELAY, period
        )
        return moment - state.last_checked_at >= delay
    last = state.last_success_at or state.last_checked_at
    return moment - last >= period


def due_folders(store: SourceChecks, settings: Settings, producer: str) -> list[Path]:
    """The commune's declared-source folders whose fetch is due now."""
    due = []
    for folder in source_folders(settings.inbox_dir, producer):
        metadata_path = next(folder / n for n in METADATA_NAMES if (folder / n).is_file())
        try:
            document = read_producer_yaml(metadata_path)
        except (OSError, ValueError, yaml.YAMLError):  # unsafe or unreadable
            due.append(folder)  # the pull reports the unreadable metadata
            continue
        identifier = str(document.get("identifiant") or folder.name)
        frequency = find_frequency(str(document.get("frequence", "")))
        state = store.source_state(dataset_slug(producer, identifier))
        if is_due(state, frequency.days if frequency else None, clock.now()):
            due.append(folder)
    return due
