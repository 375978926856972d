"""The partnership's dates (annex data.grandlyon.com, §3.2): when a dataset not updated is
depublished, when its producer is warned before, and whether it is late for the update
frequency it committed to — all counted from the one reference date of `core.dates`.
Pure rules, read by the governance job that applies them and by the pages and health
checks that show them."""

from __future__ import annotations

from datetime import date
from typing import Any

from core import clock
from core.dates import STALE_YEARS, WARNING_DAYS, dates_of, depublication_date
from core.records import Dataset

__all__ = ["STALE_YEARS", "WARNING_DAYS", "depublication_date", "freshness"]


def freshness(dataset: Dataset, today: date | None = None) -> dict[str, Any]:
    """Last update of the data, next expected one from the committed frequency, and
    whether it is late (ISO dates)."""
    today = today or clock.today()
    dates = dates_of(dataset)
    expected = dates.next_expected
    return {
        "derniere": dates.data_updated.isoformat(),
        "prochaine": expected.isoformat() if expected else None,
        "statut": "en-retard" if dates.late(today) else "a-jour",
    }
