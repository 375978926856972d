"""When a commune's DAG next looks at its drop folder, so a depositor knows when to expect
the outcome of a deposit.

A commune's schedule is its `planification` in config/producers.yaml (`Producer.schedule`),
the very setting dags/communes.py gives Airflow: a cron expression or one of Airflow's
presets (`@hourly`…). Airflow 3 fires a cron schedule at the cron's instants, in UTC (the
DAGs' time zone), and computes them with croniter; so does `next_run`. A period in seconds
(`"20s"`, the demo's `OPENDATA_PLANIFICATION`) fires every period: the next run comes at
the latest one period later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter

from core.producers import schedule as parse_schedule
from core.wording import french_moment, rfc3339

# Airflow's cron presets (airflow.utils.dates); @once, @continuous and None have no instant.
PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def cron_of(schedule: str | None) -> str | None:
    """The cron expression of a schedule; None when it has no regular instants."""
    text = (schedule or "").strip()
    cron = PRESETS.get(text.lower(), text)
    return cron if cron and croniter.is_valid(cron) else None


def written(schedule: str | timedelta) -> str:
    """A schedule as `planification` writes it (`*/15 * * * *`, `20s`)."""
    if isinstance(schedule, timedelta):
        return f"{round(schedule.total_seconds())}s"
    return schedule


def next_run(schedule: str | timedelta | None, after: datetime) -> datetime | None:
    """The first instant of `schedule` strictly after `after` (naive UTC, as the store keeps
    instants); None for a schedule without regular instants."""
    parsed = schedule if isinstance(schedule, timedelta) else parse_schedule(schedule)
    if isinstance(parsed, timedelta):  # a period: the next run comes within one period
        return after.replace(microsecond=0) + parsed
    cron = cron_of(parsed)
    if cron is None:
        return None
    return croniter(cron, after.replace(microsecond=0)).get_next(datetime)


@dataclass(frozen=True)
class ExpectedProcessing:
    """When a waiting deposit should be processed, and how the platform says it."""

    at: datetime  # naive UTC
    schedule: str
    label: str

    def to_dict(self) -> dict[str, str]:
        return {"le": rfc3339(self.at), "planification": self.schedule, "libelle": self.label}


def expected_processing(
    schedule: str | timedelta | None, received: datetime, now: datetime
) -> ExpectedProcessing | None:
    """The run of the commune's DAG that takes a deposit received at `received`: the first
    one after it; when that one is already past (running, or late), the next one."""
    first = next_run(schedule, received)
    if first is None or schedule is None:
        return None
    if first > now:
        label = (
            "Traitement prévu au prochain passage de la chaîne de publication de la commune, "
            f"le {french_moment(first)}, {_in(first - now)} ; le résultat suit en quelques "
            "minutes."
        )
        return ExpectedProcessing(first, written(schedule), label)
    following = next_run(schedule, now)
    assert following is not None
    label = (
        f"Le passage de la chaîne de publication du {french_moment(first)} traite ce dépôt "
        "(ou a pris du retard) ; sinon il sera traité au passage suivant, le "
        f"{french_moment(following)}, {_in(following - now)}."
    )
    return ExpectedProcessing(following, written(schedule), label)


def _in(delay: timedelta) -> str:
    """`dans moins d'une minute`, `dans 7 min`, `dans 2 h 05`, `dans 3 jours`."""
    if delay < timedelta(minutes=1):
        return "dans moins d'une minute"
    minutes = max(1, round(delay.total_seconds() / 60))
    if minutes < 60:
        return f"dans {minutes} min environ"
    if minutes < 48 * 60:
        return f"dans {minutes // 60} h {minutes % 60:02d} environ"
    return f"dans {round(minutes / 1440)} jours environ"
