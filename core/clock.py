"""The platform's one clock.

Every rule that depends on time (30-day notices, parallel diffusion, staleness, freshness)
reads the time here. `OPENDATA_NOW` (an ISO 8601 date or instant, UTC when no zone is
given) sets it, so tests, and the Airflow tasks they run, replay years in seconds.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime


def now() -> datetime:
    """The current instant, in UTC, without time zone (as the store keeps it), to the second."""
    fixed = os.environ.get("OPENDATA_NOW")
    if fixed:
        moment = datetime.fromisoformat(fixed.replace("Z", "+00:00"))
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC)
        return moment.replace(tzinfo=None, microsecond=0)
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def today() -> date:
    return now().date()
