"""A CSV's dialect: its delimiter (`core.csv_head`: the one giving the most columns,
consistently, over the first lines), whether its decimals are written with a comma, and how
a French message names them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from core.csv_head import DELIMITER_NAMES


@dataclass
class CsvDialect:
    encoding: str
    delimiter: str
    decimal_comma: bool

    def describe(self) -> str:
        decimal = "virgule" if self.decimal_comma else "point"
        return (
            f"{self.encoding}, séparateur {DELIMITER_NAMES[self.delimiter]}, "
            f"décimales à la {decimal}"
        )


def uses_decimal_comma(table: pa.Table, delimiter: str) -> bool:
    if delimiter == "," or table.num_rows == 0:
        return False
    head = table.slice(0, 1000)
    for column in head.columns:
        if pc.any(pc.match_substring_regex(column, r"^-?\d+,\d+$")).as_py():
            return True
    return False
