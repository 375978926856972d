"""Geometries and coordinates of a geographic table, checked, never repaired.

A geometry GEOS cannot build, non-finite coordinates and invalid geometries (OGC rules) are
reported with their feature; coordinates in the wrong order or in another CRS than the one
declared are recognised against the metropolis' window, and refused with the reading that
fits. A repaired polygon can change type or shape, and what is published must be what the
commune validated.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd
import shapely
from pyproj import Transformer

from core.metadata_checks import ACCEPTED_CRS
from core.problems import Problem, reject
from pipelines.read import STAGE
from pipelines.read.table import SourceTable

MAX_LISTED_GEOMETRY_PROBLEMS = 1000


# Where the platform's data lie: the metropolis (4.68–5.07 E, 45.55–45.95 N) and about
# 25 km around it, in WGS 84. Used only to recognise coordinates given in the wrong order
# or the wrong CRS, never to refuse data that are simply elsewhere.
LYON_WINDOW = (4.35, 45.35, 5.40, 46.15)
GEOGRAPHIC_CRS = {4326, 4171}
PROJECTED_CRS = {2154, 3946}
MOSTLY = 0.9


def decode_geometries(wkb: np.ndarray, source: SourceTable, filename: str) -> np.ndarray:
    """Shapely geometries; a geometry GEOS cannot even build (a line of one point, a ring
    not closed) is reported with its feature."""
    if wkb.size == 0 or all(value is None for value in wkb):
        if source.table.num_rows:
            raise reject(
                STAGE,
                "geo-sans-geometrie",
                f"Le fichier {filename} ne contient pas de géométries.",
            )
        return np.array([], dtype=object)
    geometries = shapely.from_wkb(wkb, on_invalid="ignore")
    broken = np.flatnonzero(pd.notna(wkb) & shapely.is_missing(geometries))
    if broken.size:
        problems = [
            Problem(
                STAGE,
                "geometrie-illisible",
                "Géométrie impossible à construire (ligne d'un seul "
                "point, anneau de polygone non fermé ou trop court…). Corrigez-la puis déposez "
                "à nouveau le fichier.",
                row=int(source.row_number(np.array([index]))[0]),
                column="geometrie",
                feature=source.feature(int(index)),
            )
            for index in broken[:MAX_LISTED_GEOMETRY_PROBLEMS]
        ]
        source.problems.add_many(problems, total=int(broken.size))
    return geometries


def check_geography(source: SourceTable, filename: str) -> None:
    """Every geographic table's checks: valid geometries, coordinates in the declared CRS."""
    _check_geometries(source)
    _check_coordinates(source, filename)


GEOS_REASONS = (
    ("Ring Self-intersection", "un anneau se recoupe lui-même"),
    ("Self-intersection", "le contour se recoupe lui-même"),
    ("Too few points", "trop peu de points"),
    ("Hole lies outside shell", "un trou est en dehors du contour extérieur"),
    ("Nested holes", "des trous sont imbriqués"),
    ("Nested shells", "des polygones sont imbriqués"),
    ("Interior is disconnected", "l'intérieur du polygone est coupé en morceaux"),
    ("Duplicate Rings", "un anneau est en double"),
    ("Invalid Coordinate", "une coordonnée est invalide"),
    ("Ring is not closed", "un anneau n'est pas fermé"),
)


def _check_geometries(source: SourceTable) -> None:
    """Non-finite coordinates and invalid geometries (OGC rules), each with its feature."""
    geometries = np.asarray(source.geometry.values, dtype=object)
    coordinates, owners = shapely.get_coordinates(geometries, return_index=True)
    non_finite = np.zeros(len(geometries), dtype=bool)
    non_finite[owners[~np.isfinite(coordinates).all(axis=1)]] = True
    _add_geometry_problems(
        source,
        np.flatnonzero(non_finite),
        "coordonnees-non-finies",
        lambda _index: "coordonnées non numériques ou infinies",
    )
    present = ~shapely.is_missing(geometries) & ~non_finite
    invalid = np.flatnonzero(present & ~shapely.is_valid(geometries))
    reasons = dict(zip(invalid.tolist(), shapely.is_valid_reason(geometries[invalid]), strict=True))
    _add_geometry_problems(
        source, invalid, "geometrie-invalide", lambda index: _french_reason(reasons[index])
    )


def _add_geometry_problems(
    source: SourceTable, indexes: np.ndarray, rule: str, reason: Callable[[int], str]
) -> None:
    if indexes.size == 0:
        return
    rows = source.row_number(indexes[:MAX_LISTED_GEOMETRY_PROBLEMS])
    problems = [
        Problem(
            STAGE,
            rule,
            f"Géométrie invalide ({reason(int(index))}). Corrigez-la "
            "(par exemple avec « Réparer les géométries » de QGIS) puis déposez à nouveau le "
            "fichier.",
            row=int(row),
            column="geometrie",
            feature=source.feature(int(index)),
        )
        for index, row in zip(indexes[:MAX_LISTED_GEOMETRY_PROBLEMS], rows, strict=True)
    ]
    source.problems.add_many(problems, total=int(indexes.size))


def _french_reason(reason: str) -> str:
    where = re.search(r"\[([-+\d.eE]+) ([-+\d.eE]+)", reason)
    at = f" au point ({where.group(1)}, {where.group(2)})" if where else ""
    for english, french in GEOS_REASONS:
        if reason.startswith(english):
            return french + at
    return f"règle OGC non respectée : {reason}"


@lru_cache(maxsize=16)
def to_wgs84(code: int) -> Transformer:
    return Transformer.from_crs(f"EPSG:{code}", "EPSG:4326", always_xy=True)


def _inside(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    west, south, east, north = LYON_WINDOW
    with np.errstate(invalid="ignore"):
        return (x >= west) & (x <= east) & (y >= south) & (y <= north)


def inside_as(code: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        lon, lat = to_wgs84(code).transform(x, y, errcheck=False)
    return _inside(np.asarray(lon), np.asarray(lat))


def _check_coordinates(source: SourceTable, filename: str) -> None:
    """Coordinates in the wrong order or in another CRS than the one declared: refused when
    another reading (axes swapped, metres, the other projection) puts the data on the
    metropolis and the declared one does not. Data simply elsewhere are not refused."""
    geometries = np.asarray(source.geometry.values, dtype=object)
    bounds = shapely.bounds(geometries)
    x = (bounds[:, 0] + bounds[:, 2]) / 2
    y = (bounds[:, 1] + bounds[:, 3]) / 2
    known = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    if known.size == 0:
        return
    x, y = x[known], y[known]
    code = int(source.crs)  # type: ignore[arg-type]
    if code in GEOGRAPHIC_CRS:
        _check_geographic(source, filename, code, known, x, y)
    elif code in PROJECTED_CRS:
        _check_projected(source, filename, code, known, x, y)


def _crs_label(code: int) -> str:
    return f"EPSG:{code} ({ACCEPTED_CRS[code][0]})"


def _check_geographic(
    source: SourceTable, filename: str, code: int, known: np.ndarray, x: np.ndarray, y: np.ndarray
) -> None:
    domain = (np.abs(x) <= 180) & (np.abs(y) <= 90)
    inside = domain & inside_as(code, x, y)
    swapped = domain & ~inside & inside_as(code, y, x)
    if inside.mean() < 0.5:
        for other in sorted(PROJECTED_CRS):
            if inside_as(other, x, y).mean() >= MOSTLY:
                raise reject(
                    STAGE,
                    "crs-metres-declares-en-degres",
                    f"Les coordonnées de {filename} sont en mètres ({_crs_label(other)}) alors "
                    f"que le fichier est déclaré en degrés, {_crs_label(code)}. Déclarez le bon "
                    "système de coordonnées (fichier .prj, métadonnées « systeme_coordonnees »).",
                )
        if swapped.mean() >= MOSTLY:
            raise reject(
                STAGE,
                "coordonnees-inversees",
                f"Les coordonnées de {filename} sont dans l'ordre latitude, longitude : en "
                f"{_crs_label(code)}, l'ordre attendu est longitude (x), puis latitude (y).",
            )
    _row_problems(
        source,
        known[~domain],
        "coordonnees-hors-domaine",
        f"coordonnées hors des limites des degrés (±180, ±90) en {_crs_label(code)}",
    )
    _row_problems(
        source,
        known[swapped],
        "coordonnees-inversees",
        "latitude et longitude inversées (l'ordre attendu est longitude, latitude)",
    )


def _check_projected(
    source: SourceTable, filename: str, code: int, known: np.ndarray, x: np.ndarray, y: np.ndarray
) -> None:
    degrees = (np.abs(x) <= 180) & (np.abs(y) <= 90) & (_inside(x, y) | _inside(y, x))
    if inside_as(code, x, y).mean() < 0.5:
        if degrees.mean() >= MOSTLY:
            raise reject(
                STAGE,
                "crs-degres-declares-en-metres",
                f"Les coordonnées de {filename} sont en degrés (longitude, latitude) alors que "
                f"le fichier est déclaré en {_crs_label(code)}, en mètres. Déclarez EPSG:4326 "
                "(WGS 84) ou reprojetez le fichier.",
            )
        for other in sorted(PROJECTED_CRS - {code}):
            if inside_as(other, x, y).mean() >= MOSTLY:
                raise reject(
                    STAGE,
                    "crs-incoherent-coordonnees",
                    f"Les coordonnées de {filename} correspondent à {_crs_label(other)}, pas à "
                    f"{_crs_label(code)} déclaré : corrigez la déclaration du système de "
                    "coordonnées (fichier .prj, métadonnées).",
                )
    _row_problems(
        source,
        known[degrees],
        "coordonnees-en-degres",
        f"coordonnées en degrés dans un fichier en mètres ({_crs_label(code)})",
    )


def _row_problems(source: SourceTable, indexes: np.ndarray, rule: str, what: str) -> None:
    if indexes.size == 0:
        return
    listed = indexes[:MAX_LISTED_GEOMETRY_PROBLEMS]
    rows = source.row_number(listed)
    problems = [
        Problem(
            STAGE,
            rule,
            f"{what[0].upper()}{what[1:]}.",
            row=int(row),
            column="geometrie",
            feature=source.feature(int(index)),
        )
        for index, row in zip(listed, rows, strict=True)
    ]
    source.problems.add_many(problems, total=int(indexes.size))
