"""Submissions made from the bundled samples for the service-fidelity tests (issue #18):
the first features of a point, a line and a polygon sample, with the cases a service must
carry unchanged: integers left blank, a blank text beside an empty one, a line break
(`\\r\\n`) inside a text, a date and a date-time (one blank each).

GeoJSON keeps `null` and `""` apart, so the published data does too."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

from conftest import SAMPLES, write_submission

ROWS = 12
CRLF_TEXT = "Ligne 1\r\nLigne 2"
KINDS = {  # dataset name -> (sample, integer column, text column)
    "fidelite-points": ("ecully/bancs-publics/bancs-publics.geojson", "id_banc", "materiau"),
    "fidelite-lignes": (
        "vaulx-en-velin/pistes-cyclables/pistes-cyclables.zip",
        "annee",
        "nom_voie",
    ),
    "fidelite-polygones": ("ecully/bancs-publics/bancs-publics.geojson", "id_banc", "etat"),
}
DATETIMES = [f"2026-10-{day:02d}T{day + 6:02d}:15:30" for day in range(1, 13)]


def sample_frame(name: str) -> tuple[gpd.GeoDataFrame, str, str]:
    """The sample's first rows with the cases above; its integer and text columns."""
    sample, integer, text = KINDS[name]
    frame = gpd.read_file(SAMPLES / "inbox" / sample).head(ROWS).reset_index(drop=True)
    if name == "fidelite-polygones":  # benches as 2 m squares: a polygon layer
        frame = frame.set_geometry(frame.geometry.buffer(2, cap_style="square"))
    frame = frame.to_crs(4326)
    for column in frame.columns.drop(frame.geometry.name):
        if pd.api.types.is_datetime64_any_dtype(frame[column]):  # a sample's own dates
            frame[column] = frame[column].dt.strftime("%Y-%m-%d")
    frame[integer] = pd.array(
        [None if i in (1, 4) else int(v) for i, v in enumerate(frame[integer])], dtype="Int64"
    )
    values = frame[text].astype(object).tolist()
    values[2], values[3], values[5] = None, "", CRLF_TEXT
    frame[text] = values
    frame["releve"] = [None if i == 6 else v for i, v in enumerate(DATETIMES[: len(frame)])]
    frame["jour"] = [None if i == 7 else v[:10] for i, v in enumerate(DATETIMES[: len(frame)])]
    return frame, integer, text


def submission(root: Path, name: str, like: str | None = None) -> Path:
    """The submission `name`, made as `like` (one of `KINDS`, by default `name`)."""
    frame, _, _ = sample_frame(like or name)
    return write_submission(
        root / "submissions" / name, f"{name}.geojson", frame.to_json(drop_id=True, na="null")
    )
