"""Table Schema types written as text with an inner structure: geopoint, geojson, array,
object, yearmonth and duration.

Semantics follow frictionless 5 (the reference validator of schema.data.gouv.fr): a cell
is valid when frictionless would read it. The text is kept as the typed value (these
types have no Arrow counterpart reusers could rely on); geopoints are also decoded into
longitudes and latitudes for the geographic stage. JSON is parsed once per distinct
value, so a column of repeated values costs one parse per value.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import isodate
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

GEOPOINT_FORMATS = ("default", "array", "object")


def keep_valid(text: pa.Array, accepts: Callable[[str], bool]) -> pa.Array:
    """The cells `accepts` takes, null elsewhere; each distinct value is judged once."""
    distinct = pc.unique(text.drop_null()).to_pylist()
    good = pa.array([value for value in distinct if accepts(value)], type=pa.string())
    return pc.if_else(pc.is_in(text, value_set=good), text, pa.scalar(None, pa.string()))


# --- geopoint --------------------------------------------------------------------------------


def geopoint(text: str, fmt: str = "default") -> tuple[float, float] | None:
    """(longitude, latitude) of a geopoint cell, or None when frictionless would refuse it."""
    try:
        lon, lat = _geopoint_parts(text, fmt)
        lon_value, lat_value = Decimal(str(lon).strip()), Decimal(str(lat).strip())
        if not (-180 <= lon_value <= 180 and -90 <= lat_value <= 90):
            return None
    except (ValueError, TypeError, KeyError, InvalidOperation, json.JSONDecodeError):
        return None
    return float(lon_value), float(lat_value)


def _geopoint_parts(text: str, fmt: str) -> tuple[Any, Any]:
    if fmt == "array":
        value = json.loads(text)
        if not isinstance(value, list):
            raise ValueError(text)
        lon, lat = value
        return lon, lat
    if fmt == "object":
        value = json.loads(text)
        if not isinstance(value, dict) or len(value) != 2:
            raise ValueError(text)
        return value["lon"], value["lat"]
    lon, lat = text.split(",")
    return lon, lat


def cast_geopoint(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    fmt = spec.get("format", "default")
    return keep_valid(text, lambda value: geopoint(value, fmt) is not None)


def geopoint_coordinates(text: pa.Array, fmt: str) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes of a geopoint column, NaN where a cell is empty or invalid."""
    distinct = pc.unique(text.drop_null()).to_pylist()
    decoded = {value: geopoint(value, fmt) for value in distinct}
    points = [decoded.get(value) if value is not None else None for value in text.to_pylist()]
    lon = np.array([p[0] if p else np.nan for p in points], dtype=float)
    lat = np.array([p[1] if p else np.nan for p in points], dtype=float)
    return lon, lat


# --- JSON types ------------------------------------------------------------------------------


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def cast_geojson(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    """GeoJSON as frictionless checks it (its JSON Schema of GeoJSON): the structure, not
    the geometry's validity, which the geographic stage judges for map data."""
    import frictionless  # only for GeoJSON cells: not loaded to read a plain table

    field = frictionless.Field.from_descriptor({**spec, "name": "cellule"})
    return keep_valid(text, lambda value: field.read_cell(value)[1] is None)


def cast_array(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    return keep_valid(text, lambda value: isinstance(_json(value), list))


def cast_object(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    return keep_valid(text, lambda value: isinstance(_json(value), dict))


# --- calendar types --------------------------------------------------------------------------


def is_yearmonth(text: str) -> bool:
    parts = text.split("-")
    if len(parts) != 2:
        return False
    try:
        int(parts[0])
        return 1 <= int(parts[1]) <= 12
    except ValueError:
        return False


def cast_yearmonth(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    return keep_valid(text, is_yearmonth)


def is_duration(text: str) -> bool:
    try:
        isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError, TypeError, OverflowError):
        return False
    return True


def cast_duration(text: pa.Array, spec: dict[str, Any]) -> pa.Array:
    return keep_valid(text, is_duration)
