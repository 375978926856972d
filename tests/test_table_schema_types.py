"""Every Table Schema type the national schemas use reads cells as frictionless does.

The reference is frictionless itself (schema.data.gouv.fr's validator builds on it): for
each type and format, the same cells are valid and invalid for both.
"""

from __future__ import annotations

import frictionless
import pyarrow as pa
import pytest

from core.problems import SubmissionRejected
from core.structure import check_schema_descriptor
from pipelines.read.table import SourceTable
from pipelines.validate import validate

CELLS = {
    ("geopoint", "default"): ["4.83, 45.76", "4.83,45.76", "200, 1", "4.83", "a, b", "4,8;45"],
    ("geopoint", "array"): ["[4.83, 45.76]", "[4.83]", "[200, 45]", "4.83, 45.76", "{}"],
    ("geopoint", "object"): ['{"lon": 4.83, "lat": 45.76}', '{"lat": 45.76}', "[4.83, 45.76]"],
    ("geojson", "default"): [
        '{"type": "Point", "coordinates": [4.83, 45.76]}',
        '{"type": "Feature", "geometry": null, "properties": {}}',
        '{"type": "Cercle"}',
        "POINT (4.83 45.76)",
    ],
    ("yearmonth", "default"): ["2024-01", "2024-12", "2024-13", "2024", "2024-1", "janv-24"],
    ("duration", "default"): ["P1Y2M", "PT30M", "PT", "P", "P1W", "-P1D", "30 min"],
    ("array", "default"): ["[1, 2]", "[]", '["a"]', "{}", "1, 2", "[1,"],
    ("object", "default"): ['{"a": 1}', "{}", "[1]", "a=1", '{"a":'],
    ("time", "%H:%M"): ["10:30", "23:59", "24:00", "10:30:00", "1030"],
    ("date", "%d/%m/%Y"): ["22/03/2016", "31/02/2016", "2016-03-22", "1/3/2016"],
    ("datetime", "%d/%m/%Y %H:%M"): ["22/03/2016 10:30", "22/03/2016", "2016-03-22T10:30:00"],
}


def _frictionless_valid(spec: dict, cell: str) -> bool:
    _value, notes = frictionless.Field.from_descriptor(spec).read_cell(cell)
    return notes is None


@pytest.mark.parametrize(("kind", "fmt"), list(CELLS), ids=[f"{k}-{f}" for k, f in CELLS])
def test_cells_are_read_as_frictionless_reads_them(kind: str, fmt: str) -> None:
    spec = {"name": "valeur", "type": kind, "format": fmt}
    schema = check_schema_descriptor({"fields": [spec]}, "schema.json")
    cells = CELLS[(kind, fmt)]
    source = SourceTable(table=pa.table({"valeur": cells}), source_format="csv")
    refused_rows = {p.row for p in validate(source, schema).report.problems if p.rule == "type"}
    ours = {cell: index + 2 not in refused_rows for index, cell in enumerate(cells)}
    reference = {cell: _frictionless_valid(spec, cell) for cell in cells}
    assert ours == reference
    assert any(reference.values()) and not all(reference.values())  # the cases can fail


def test_a_refused_cell_says_what_was_expected_in_french() -> None:
    schema = {"fields": [{"name": "coordonneesXY", "type": "geopoint", "format": "array"}]}
    source = SourceTable(table=pa.table({"coordonneesXY": ["4.83, 45.76"]}), source_format="csv")
    (problem,) = validate(source, schema).report.problems
    assert (problem.row, problem.column, problem.rule) == (2, "coordonneesXY", "type")
    assert problem.message == (
        "« 4.83, 45.76 » n'est pas un point [longitude, latitude] (par exemple [4.83, 45.76])."
    )


def _labels(header: list[str], match: str | None) -> list[tuple[str, str | None]]:
    schema: dict = {"fields": [{"name": n} for n in ("id", "nom", "commune")]}
    if match:
        schema["fieldsMatch"] = match
    source = SourceTable(table=pa.table({n: ["1"] for n in header}), source_format="csv")
    return [(p.rule, p.column) for p in validate(source, schema).report.problems]


def test_columns_match_by_name_in_any_order_unless_the_schema_says_exact() -> None:
    assert _labels(["nom", "id", "commune"], None) == []
    assert _labels(["nom", "id", "commune"], "equal") == []
    assert _labels(["nom", "id", "commune"], "exact") == [
        ("colonne-mal-placee", "nom"),
        ("colonne-mal-placee", "id"),
    ]
    assert _labels(["id", "nom"], None) == [("colonne-manquante", "commune")]
    assert _labels(["id", "nom", "commune", "x"], None) == [("colonne-en-trop", "x")]
    assert _labels(["id", "nom", "commune", "x"], "subset") == []
    assert _labels(["id", "nom"], "superset") == []
    assert _labels(["id", "nom", "x"], "superset") == [("colonne-en-trop", "x")]
    assert _labels(["x", "y"], "partial") == [("aucune-colonne-du-schema", None)]


def test_a_foreign_key_within_the_file_names_the_row_that_points_nowhere() -> None:
    schema = {
        "fields": [{"name": "id", "type": "integer"}, {"name": "parent", "type": "integer"}],
        "primaryKey": "id",
        "foreignKeys": [{"fields": "parent", "reference": {"resource": "", "fields": "id"}}],
    }
    table = pa.table({"id": ["1", "2", "3"], "parent": [None, "1", "7"]})
    report = validate(SourceTable(table=table, source_format="csv"), schema).report
    assert [(p.rule, p.row, p.column) for p in report.problems] == [("cle-etrangere", 4, "parent")]
    resource = frictionless.Resource(
        data=[["id", "parent"], [1, None], [2, 1], [3, 7]], schema=frictionless.Schema(schema)
    )
    errors = resource.validate().flatten(["rowNumber", "type"])
    assert errors == [[4, "foreign-key"]]


def test_an_unknown_fields_match_is_a_schema_error() -> None:
    with pytest.raises(SubmissionRejected) as refused:
        check_schema_descriptor({"fields": [{"name": "a"}], "fieldsMatch": "ordre"}, "s.json")
    assert "« fieldsMatch: ordre » inconnu" in refused.value.report.problems[0].message
