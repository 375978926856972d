"""Partner communes, read from the producers configuration file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml


@dataclass(frozen=True)
class Producer:
    slug: str
    name: str
    insee: str
    schedule: str
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
    producers = {}
    for entry in document.get("producteurs", []):
        producer = Producer(
            slug=entry["slug"],
            name=entry["nom"],
            insee=str(entry.get("insee", "")),
            schedule=entry.get("planification", "@hourly"),
            colour=entry.get("couleur", "#1d4ed8"),
            centre=tuple(entry["centre"]) if entry.get("centre") else None,
            description=" ".join(str(entry.get("description", "")).split()),
            logo=entry.get("logo"),
            email=entry.get("courriel") or None,
            deadline_minutes=_minutes(entry.get("delai_execution_minutes")),
        )
        producers[producer.slug] = producer
    return producers


def _minutes(value: object) -> float | None:
    if value is None:
        return None
    minutes = float(value)  # type: ignore[arg-type]
    if minutes <= 0:
        raise ValueError(f"delai_execution_minutes doit être positif (lu : {value}).")
    return minutes
