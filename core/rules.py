"""The partnership's dates (annex data.grandlyon.com, §3.2): when a dataset not updated is
depublished, and when its producer is warned before. Pure rules, read by the governance
job that applies them and by the pages and health checks that show them."""

from __future__ import annotations

from datetime import date

STALE_YEARS = 3  # a dataset not updated for three years is depublished
WARNING_DAYS = (90, 30)  # days before that date when the producer is warned


def depublication_date(last_update: date) -> date:
    """Three years after the last update (a 29 February falls back to the 28th)."""
    try:
        return last_update.replace(year=last_update.year + STALE_YEARS)
    except ValueError:
        return last_update.replace(year=last_update.year + STALE_YEARS, day=28)
