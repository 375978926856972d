"""Partner communes, read from the producers configuration file.

A commune's `planification` (how often its DAG looks at its drop folder) is a cron
expression or preset, or a number of seconds (`"20s"`, below the minute cron allows).
`OPENDATA_PLANIFICATION`, when set, replaces every commune's: the demo sets it short so that
a deposit is published within a minute; production keeps each commune's own."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import yaml

SCHEDULE_VARIABLE = "OPENDATA_PLANIFICATION"
SECONDS = re.compile(r"^\s*(\d+)\s*s\s*$")


@dataclass(frozen=True)
class Producer:
    slug: str
    name: str
    insee: str
    schedule: str | timedelta | None  # a cron expression or preset, a period, None: never
    colour: str
    centre: tuple[float, float] | None = None  # longitude, latitude of the town hall
    description: str = ""  # shown on the commune's portal page
    logo: str | None = None  # URL of the commune's logo
    email: str | None = None  # where lifecycle notices go (else each dataset's contact)
    deadline_minutes: float | None = None  # a run unfinished by then is late (else the default)


def dag_id(slug: str) -> str:
    """The Airflow DAG that processes a commune's drop folder (`dags/communes.py`)."""
    return f"commune_{slug.replace('-', '_')}"


def load_producers(path: Path) -> dict[str, Producer]:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    override = os.environ.get(SCHEDULE_VARIABLE, "").strip()
    producers = {}
    for entry in document.get("producteurs", []):
        producer = Producer(
            slug=entry["slug"],
            name=entry["nom"],
            insee=str(entry.get("insee", "")),
            schedule=schedule(override or entry.get("planification", "@hourly")),
            colour=entry.get("couleur", "#1d4ed8"),
            centre=tuple(entry["centre"]) if entry.get("centre") else None,
            description=" ".join(str(entry.get("description", "")).split()),
            logo=entry.get("logo"),
            email=entry.get("courriel") or None,
            deadline_minutes=_minutes(entry.get("delai_execution_minutes")),
        )
        producers[producer.slug] = producer
    return producers


def schedule(value: str | None) -> str | timedelta | None:
    """A `planification`: a number of seconds (`"20s"`) as a period, else as written."""
    if value is None:
        return None
    seconds = SECONDS.match(str(value))
    if seconds is None:
        return str(value)
    if int(seconds[1]) <= 0:
        raise ValueError(f"planification doit être une durée positive (lu : {value}).")
    return timedelta(seconds=int(seconds[1]))


def _minutes(value: object) -> float | None:
    if value is None:
        return None
    minutes = float(value)  # type: ignore[arg-type]
    if minutes <= 0:
        raise ValueError(f"delai_execution_minutes doit être positif (lu : {value}).")
    return minutes
