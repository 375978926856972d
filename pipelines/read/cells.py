"""A cell of a spreadsheet or a GIS attribute as the text the structure check reads.

Dates without a time as ISO dates, whole floats without their « .0 », booleans as
`true`/`false`, lists as JSON; an empty or blank cell is null.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa


def is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


def cell_to_text(value: Any) -> str | None:
    if value is None or is_nan(value) or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, datetime | pd.Timestamp):
        if value.hour == value.minute == value.second == value.microsecond == 0:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, np.ndarray | list | tuple):
        return json.dumps(np.asarray(value).tolist(), ensure_ascii=False, default=str)
    if isinstance(value, bytes):
        return value.hex()
    text = str(value).strip()
    return text or None


def array_to_text(values: np.ndarray) -> pa.Array:
    return pa.array([cell_to_text(v) for v in values.tolist()], type=pa.string())
