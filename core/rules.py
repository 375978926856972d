"""The partnership's dates (annex data.grandlyon.com, §3.2): when a dataset not updated is
depublished, when its producer is warned before, and whether it is late for the update
frequency it committed to. Pure rules, read by the governance
job that applies them and by the pages and health checks that show them."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from core import clock
from core.records import Dataset
from core.vocabularies import find_frequency

STALE_YEARS = 3  # a dataset not updated for three years is depublished
WARNING_DAYS = (90, 30)  # days before that date when the producer is warned


def depublication_date(last_update: date) -> date:
    """Three years after the last update (a 29 February falls back to the 28th)."""
    try:
        return last_update.replace(year=last_update.year + STALE_YEARS)
    except ValueError:
        return last_update.replace(year=last_update.year + STALE_YEARS, day=28)


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
