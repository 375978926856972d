"""The structure check reports what frictionless (the reference) reports, in French."""

import json
from pathlib import Path

import frictionless
import pytest

from pipelines.read.stage import read_source
from pipelines.validate import FRICTIONLESS_TYPES, validate

SCHEMA = {
    "fields": [
        {"name": "id", "type": "integer", "constraints": {"required": True}},
        {"name": "nom", "type": "string", "constraints": {"required": True, "maxLength": 12}},
        {"name": "n", "type": "integer", "constraints": {"minimum": 0, "maximum": 10}},
        {"name": "x", "type": "number", "constraints": {"minimum": 0}},
        {"name": "d", "type": "date", "constraints": {"minimum": "2020-01-01"}},
        {"name": "b", "type": "boolean"},
        {
            "name": "code",
            "type": "string",
            "constraints": {
                "pattern": "[A-Z]{2}",
                "unique": True,
                "enum": ["AB", "CD", "EF", "GH"],
            },
        },
        {"name": "ts", "type": "datetime"},
        {"name": "an", "type": "year"},
    ],
    "primaryKey": ["id"],
}

CASES = {
    "valide": """\
id,nom,n,x,d,b,code,ts,an
1,Gymnase,5,1.5,2024-01-01,true,AB,2024-01-01T10:00:00,2020
2,Stade,0,2,2024-02-29,FALSE,CD,2024-01-01T10:00:00Z,1999
""",
    "erreurs": """\
id,nom,n,x,d,b,code,ts,an
1,Gymnase,5,1.5,2024-01-01,true,AB,2024-01-01T10:00:00,2020
2,,12,abc,2024-13-01,peut-être,ab,hier,20
2,Stade,x,0,2024-02-30,false,CD,2024-01-01 10:00,2021
,Piscine,-1,3,2019-12-31,1,EF,2024-01-01T10:00:00,2022
5,Un nom beaucoup trop long,7,4.0,01/02/2024,0,GH,2024-01-01T10:00:00,2023
6,Tennis,8,5e3,2024-03-03,TRUE,GH,2024-01-01T10:00:00,2024
""",
    "decimales_et_vides": """\
id,nom,n,x,d,b,code,ts,an
1,A,,,,,,,
2,B,3,.5,2020-01-01,0,AB,,
3,C,3,-1,2020-01-01,0,CD,,
""",
}


def frictionless_errors(path: Path, schema: dict) -> set[tuple]:
    resource = frictionless.Resource(
        path=path.name,
        basepath=str(path.parent),
        schema=frictionless.Schema.from_descriptor(schema),
    )
    report = resource.validate(limit_errors=100_000)
    return {
        (
            e.type,
            e.row_number,
            None if e.type == "primary-key" else (getattr(e, "field_name", None) or None),
        )
        for task in report.tasks
        for e in task.errors
    }


def our_errors(path: Path, schema: dict) -> set[tuple]:
    result = validate(read_source(path), schema)
    errors = set()
    for problem in result.report.problems:
        kind = FRICTIONLESS_TYPES[problem.rule]
        column = None if kind == "primary-key" else problem.column
        errors.add((kind, problem.row, column))
    return errors


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_errors_as_frictionless(tmp_path: Path, case: str) -> None:
    path = tmp_path / f"{case}.csv"
    path.write_text(CASES[case], encoding="utf-8")
    assert our_errors(path, SCHEMA) == frictionless_errors(path, SCHEMA)


# Cases found in review, each once different from frictionless.
PARITY_CASES = {
    "entier-signe": (
        "id,hauteur\n1,+5\n2,-7\n3,x\n",
        {"fields": [{"name": "id", "type": "integer"}, {"name": "hauteur", "type": "integer"}]},
    ),
    "cle-vide": (
        "id,v\n,1\n2,2\n2,3\n",
        {
            "fields": [{"name": "id", "type": "integer"}, {"name": "v", "type": "integer"}],
            "primaryKey": "id",
        },
    ),
    "cle-composite-partielle": (
        "a,b\n1,\n,y\n1,x\n",
        {
            "fields": [{"name": "a", "type": "integer"}, {"name": "b", "type": "string"}],
            "primaryKey": ["a", "b"],
        },
    ),
    "date-format-minimum": (
        "d\n15/01/2024\n02/02/2024\n",
        {
            "fields": [
                {
                    "name": "d",
                    "type": "date",
                    "format": "%d/%m/%Y",
                    "constraints": {"minimum": "01/02/2024"},
                }
            ]
        },
    ),
}


@pytest.mark.parametrize("case", sorted(PARITY_CASES))
def test_review_cases_match_frictionless(tmp_path: Path, case: str) -> None:
    text, schema = PARITY_CASES[case]
    path = tmp_path / f"{case}.csv"
    path.write_text(text, encoding="utf-8")
    assert our_errors(path, schema) == frictionless_errors(path, schema)


def test_decimal_comma_is_decided_per_column(tmp_path: Path) -> None:
    path = tmp_path / "mixte.csv"
    path.write_text("id;lots;surface;taux\n1;12,14;3.5;1,5\n2;3;4.25;2,5\n", encoding="utf-8")
    schema = {
        "fields": [
            {"name": "id", "type": "integer"},
            {"name": "lots", "type": "number"},
            {"name": "surface", "type": "number"},
            {"name": "taux", "type": "number", "constraints": {"enum": [1.5]}},
        ]
    }
    result = validate(read_source(path), schema)
    assert [(p.row, p.column, p.rule) for p in result.report.problems] == [(3, "taux", "enum")]
    assert result.typed.column("surface").to_pylist() == [3.5, 4.25]
    assert result.typed.column("lots").to_pylist() == [12.14, 3.0]


def test_each_error_has_row_column_rule_and_value_in_french(tmp_path: Path) -> None:
    path = tmp_path / "erreurs.csv"
    path.write_text(CASES["erreurs"], encoding="utf-8")
    report = validate(read_source(path), SCHEMA).report
    assert not report.valid
    by_key = {(p.row, p.column, p.rule): p for p in report.problems}
    assert by_key[(3, "n", "maximum")].value == "12"
    assert "supérieur au maximum autorisé (10)" in by_key[(3, "n", "maximum")].message
    assert (
        by_key[(4, "d", "type")].message
        == "« 2024-02-30 » n'est pas une date au format AAAA-MM-JJ."
    )
    assert by_key[(3, "nom", "obligatoire")].message.startswith("Valeur manquante")
    assert (
        "ne fait pas partie des valeurs autorisées : AB, CD, EF, GH"
        in by_key[(3, "code", "enum")].message
    )
    assert "(id) = (2) est déjà utilisée" in by_key[(4, "id", "cle-primaire")].message
    text = report.to_text()
    assert "ligne 3, colonne « n » : « 12 » est supérieur au maximum autorisé (10)." in text
    payload = json.loads(report.to_json())
    assert payload["valide"] is False
    keys = {"etape", "regle", "message", "ligne", "colonne", "valeur", "objet"}  # French only
    assert set(payload["problemes"][0]) == keys


def test_valid_table_is_cast_to_its_types(tmp_path: Path) -> None:
    path = tmp_path / "valide.csv"
    path.write_text(CASES["valide"], encoding="utf-8")
    result = validate(read_source(path), SCHEMA)
    assert result.report.valid
    typed = result.typed.to_pylist()
    assert typed[0]["id"] == 1 and typed[0]["x"] == 1.5 and typed[0]["b"] is True
    assert typed[1]["d"].isoformat() == "2024-02-29" and typed[1]["b"] is False


def test_decimal_comma_and_grouping_follow_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "montants.csv"
    path.write_text("ref;montant\nA;1 234,50\nB;12,5\nC;12.5\n", encoding="utf-8")
    schema = {
        "fields": [
            {"name": "ref", "type": "string"},
            {"name": "montant", "type": "number", "decimalChar": ",", "groupChar": " "},
        ]
    }
    result = validate(read_source(path), schema)
    assert [p.row for p in result.report.problems] == [4]  # a point is not the decimal mark
    assert result.typed.column("montant").to_pylist()[:2] == [1234.5, 12.5]


def test_columns_missing_or_not_in_the_schema_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "colonnes.csv"
    path.write_text("id,autre\n1,a\n", encoding="utf-8")
    schema = {"fields": [{"name": "id", "type": "integer"}, {"name": "nom", "type": "string"}]}
    text = validate(read_source(path), schema).report.to_text()
    assert "La colonne « nom » prévue par le schéma est absente du fichier." in text
    assert "La colonne « autre » n'est pas prévue par le schéma" in text


def test_error_counts_stay_exact_beyond_the_listed_problems(tmp_path: Path) -> None:
    path = tmp_path / "gros.csv"
    rows = "\n".join(f"{i},x" for i in range(25_000))
    path.write_text("id,n\n" + rows + "\n", encoding="utf-8")
    schema = {"fields": [{"name": "id", "type": "integer"}, {"name": "n", "type": "integer"}]}
    report = validate(read_source(path), schema).report
    assert report.total == 25_000
    assert len(report.problems) == 10_000
    assert report.to_dict()["liste_tronquee"] is True
    assert report.problems[-1].row == 10_001
