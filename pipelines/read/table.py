"""What every reader gives the read stage: a `SourceTable`.

Attribute values as Arrow string columns (empty cells are null), so the structure check
applies one set of vectorised rules whatever the input format; geometries, when the format
has them, as a GeoSeries in the file's own CRS; the line of each row in the file, and the
rows the reader could not take, as problems.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from core.input_formats import is_geographic
from core.problems import Report
from pipelines.read.dialect import CsvDialect

if TYPE_CHECKING:  # a CSV's reading never loads GeoPandas
    import geopandas as gpd

IDENTIFIER_NAME = re.compile(r"^(id|identifiant|gid|objectid|ogc_fid)$|^id[_-]|[_-]id$", re.I)


@dataclass
class SourceTable:
    """A submission's content: text cells, optional geometries, and where rows come from."""

    table: pa.Table
    source_format: str
    geometry: gpd.GeoSeries | None = None
    crs: int | None = None
    dialect: CsvDialect | None = None
    row_numbers: np.ndarray | None = None  # line of each row in the file, when not index + 2
    problems: Report = field(default_factory=Report)  # rows the reader could not take

    @property
    def is_geographic(self) -> bool:
        return self.geometry is not None

    def feature(self, index: int) -> str | None:
        """How a problem names a row of a geographic file: its feature, with its identifier
        where the file has one ("objet n° 3 (id_banc 12)"); None for a table's line."""
        if not is_geographic(self.source_format):
            return None
        label = f"objet n° {index + 1}"
        name = self.identifier_column
        value = None if name is None else self.table.column(name)[index].as_py()
        return label if value is None else f"{label} ({name} {value})"

    @property
    def identifier_column(self) -> str | None:
        return next((n for n in self.table.column_names if IDENTIFIER_NAME.search(n)), None)

    def row_number(self, index: np.ndarray) -> np.ndarray:
        """Line number in the file (header = 1) of the rows at these positions."""
        if self.row_numbers is None:
            return np.asarray(index) + 2
        return self.row_numbers[np.asarray(index)]
