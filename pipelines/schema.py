"""A dataset's structure: its Frictionless Table Schema plus, for maps, geometry type and CRS.

The schema is declared by the producer (a JSON or YAML Table Schema file, e.g.
a national schema from schema.data.gouv.fr vendored into the submission) or
inferred from the first publication, then kept as the dataset's structure.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from core.problems import reject
from core.safe_yaml import read_producer_yaml
from core.structure import Structure, check_schema_descriptor, read_json_schema
from pipelines.personal.words import column_tokens
from pipelines.read.table import SourceTable

STAGE = "structure"
INFERENCE_SAMPLE_ROWS = 100_000

# Headers of codes written with digits: never numbers, whatever their cells look like
# (a SIRET read as a number becomes 2,16901E+13 in a spreadsheet; a code loses its 0).
IDENTIFIER_HEADER = re.compile(
    r"(^|_)(siret|siren|insee|code_?insee|code_?postal|cp|code_?commune|code_?departement|"
    r"code_?region|code_?iris|iris|uai|finess|rna|tel|telephone|portable|mobile|fax|"
    r"num_?tel|numero_?tel|ean|nir|iban)($|_)"
)
CODE_LENGTH = 9  # digits that, when every cell has the same count, make a code

# Patterns that decide the inferred type of a text column, most specific first.
_INFERENCE_RULES: list[tuple[str, str, dict[str, Any]]] = [
    ("integer", r"^[+-]?(0|[1-9]\d{0,17})$", {}),
    # A leading zero ("0612345678", "01000") makes a code, not a number.
    ("number", r"^[+-]?(0|[1-9]\d*)(\.\d+)?$", {}),
    ("boolean", r"^(true|false|TRUE|FALSE|True|False)$", {}),
    ("date", r"^\d{4}-\d{2}-\d{2}$", {}),
    ("date", r"^\d{2}/\d{2}/\d{4}$", {"format": "%d/%m/%Y"}),
    ("datetime", r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})?$", {}),
]


def load_schema_file(path: Path) -> dict[str, Any]:
    """Read and check a Table Schema descriptor (JSON or YAML)."""
    if not path.is_file():
        raise reject(STAGE, "schema-absent", f"Fichier de schéma introuvable : {path.name}")
    if path.suffix == ".json":
        return read_json_schema(path.read_bytes(), path.name)  # as the upload API reads it
    try:
        descriptor = read_producer_yaml(path)
    except (ValueError, yaml.YAMLError) as error:  # UTF-8 and unsafe YAML errors
        raise reject(
            STAGE, "schema-illisible", f"Le schéma {path.name} est illisible : {error}"
        ) from error
    return check_schema_descriptor(descriptor, path.name)


def infer_schema(source: SourceTable) -> dict[str, Any]:
    """Infer a Table Schema from the text cells (types only; constraints are the producer's)."""
    sample = source.table.slice(0, INFERENCE_SAMPLE_ROWS)
    if source.dialect is not None and source.dialect.decimal_comma:
        # The decimal mark belongs to the file's dialect, not to the structure.
        sample = pa.table(
            {
                n: pc.replace_substring(c, ",", ".")
                for n, c in zip(sample.column_names, sample.columns, strict=True)
            }
        )
    fields = [_infer_field(name, sample.column(name)) for name in sample.column_names]
    return {"fields": fields, "missingValues": [""]}


def _infer_field(name: str, column: pa.ChunkedArray) -> dict[str, Any]:
    values = pc.drop_null(column)
    if len(values) == 0:
        return {"name": name, "type": "string"}
    for type_name, pattern, options in _INFERENCE_RULES:
        if pc.all(pc.match_substring_regex(values, pattern)).as_py():
            if type_name == "integer" and _is_code(name, values):
                break
            return {"name": name, "type": type_name, **options}
    return {"name": name, "type": "string"}


def _is_code(name: str, values: pa.ChunkedArray) -> bool:
    """Digits that identify (SIRET, INSEE code, phone…) rather than count."""
    if IDENTIFIER_HEADER.search(column_tokens(name)):
        return True
    lengths = pc.utf8_length(values)
    shortest = pc.min(lengths).as_py()
    return shortest >= CODE_LENGTH and shortest == pc.max(lengths).as_py()


# shapely's type ids, in order (`shapely.get_type_id`), named as GeoPandas' `geom_type`.
GEOMETRY_TYPES = (
    "Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
    "MultiPolygon", "GeometryCollection",
)  # fmt: skip


def _type_ids(source: SourceTable) -> set[int]:
    """The kinds of the file's geometries, read in one vectorised pass (a million Python
    strings, one per row, took a second)."""
    import numpy as np
    import shapely

    assert source.geometry is not None
    ids = np.unique(shapely.get_type_id(np.asarray(source.geometry.array)))
    return {int(i) for i in ids if i >= 0}  # -1: no geometry


def structure_of(
    source: SourceTable, schema: dict[str, Any], geometry_columns: dict[str, str] | None = None
) -> Structure:
    geometry_type = None
    if source.geometry is not None:
        kinds = sorted({GEOMETRY_TYPES[i].replace("Multi", "") for i in _type_ids(source)})
        geometry_type = kinds[0] if len(kinds) == 1 else "Geometry"
    return Structure(
        schema=schema,
        geometry_type=geometry_type,
        crs=source.crs,
        source_format=source.source_format,
        geometry_columns=geometry_columns,
    )
