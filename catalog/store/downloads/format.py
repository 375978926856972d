"""What a download format is (`Format`): a name reusers ask for, a file extension and media
type, whether only maps have it, and the function that writes it from a release's Parquet."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# (release's Parquet, target file, CRS asked or None, licence notice, date columns)
Writer = Callable[[Path, Path, "int | None", str, frozenset[str]], None]


@dataclass(frozen=True)
class Format:
    name: str
    label: str  # French, as the portal lists it
    extension: str
    media_type: str
    write: Writer
    geographic_only: bool = False
    fixed_crs: int | None = None  # KML and RFC 7946 GeoJSON are WGS84 by definition
