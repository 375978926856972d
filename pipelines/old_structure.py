"""The old structure fed from new data during the parallel diffusion (annex
data.grandlyon.com, §3.2): the notice's mapping (`correspondance`), checked when the
notice was announced (`core.changes.check_mapping`), evaluated here on the columns."""

from __future__ import annotations

import ast
from typing import Any

import geopandas as gpd
import pyarrow as pa
import pyarrow.compute as pc

from core.structure import Structure

OPERATORS = {ast.Add: pc.add, ast.Sub: pc.subtract, ast.Mult: pc.multiply, ast.Div: pc.divide}


def derive_old(
    table: pa.Table,
    geometry: gpd.GeoSeries | None,
    mapping: dict[str, Any],
    old: Structure,
) -> tuple[pa.Table, gpd.GeoSeries | None]:
    """The old structure's columns computed from data in the new structure."""
    columns = {}
    for field_ in old.schema["fields"]:
        name = field_["name"]
        rule = mapping.get(name, {"colonne": name})
        ((kind, value),) = rule.items()
        if kind == "colonne":
            columns[name] = table.column(value)
        elif kind == "valeur":
            columns[name] = pa.array([value] * table.num_rows)
        else:
            columns[name] = _evaluate(ast.parse(str(value), mode="eval").body, table)
    derived = pa.table(columns)
    if geometry is not None and old.crs and geometry.crs and geometry.crs.to_epsg() != old.crs:
        geometry = geometry.to_crs(old.crs)
    return derived, geometry


def _evaluate(node: ast.AST, table: pa.Table) -> Any:
    if isinstance(node, ast.Name):
        return pc.cast(table.column(node.id), pa.float64())
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp):
        return pc.negate(_evaluate(node.operand, table))
    if isinstance(node, ast.BinOp):
        function = OPERATORS[type(node.op)]
        return function(_evaluate(node.left, table), _evaluate(node.right, table))
    raise ValueError(f"expression non admise : {ast.dump(node)}")  # checked at notice time
