"""Structure changes: what is compatible, what is breaking, and what a notice must hold."""

from __future__ import annotations

import re
from datetime import date

import pyarrow as pa
import pytest
from openpyxl import Workbook

from catalog.store.notices import announce_change
from core import changes
from core.problems import SubmissionRejected
from core.structure import Structure
from pipelines import old_structure

FIELDS = [
    {"name": "id", "type": "integer", "constraints": {"required": True}},
    {"name": "nom_voie", "type": "string"},
    {"name": "longueur_m", "type": "number"},
]
KEPT = Structure(
    schema={"fields": FIELDS}, geometry_type="LineString", crs=2154, source_format="csv"
)


def with_fields(fields: list[dict], **other: object) -> Structure:
    return Structure(
        schema={"fields": fields},
        geometry_type=other.get("geometry_type", "LineString"),
        crs=other.get("crs", 2154),
        source_format=other.get("source_format", "csv"),
    )


@pytest.fixture(autouse=True)
def today(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENDATA_NOW", "2027-03-01T08:00:00")


def test_added_columns_and_relaxed_constraints_are_compatible() -> None:
    relaxed = [{**FIELDS[0], "constraints": {}}, *FIELDS[1:], {"name": "annee", "type": "year"}]
    change = changes.classify(KEPT, with_fields(relaxed))
    assert change.kind == "compatible"
    assert change.compatible == [
        "colonne « annee » ajoutée",
        "colonne « id » : contraintes modifiées",
    ]


@pytest.mark.parametrize(
    ("incoming", "expected"),
    [
        (with_fields(FIELDS[:2]), "colonne « longueur_m » supprimée ou renommée"),
        (
            with_fields([*FIELDS[:2], {"name": "longueur_m", "type": "integer"}]),
            "colonne « longueur_m » : type number devenu integer",
        ),
        (with_fields(FIELDS, geometry_type="Point"), "type de géométrie LineString devenu Point"),
        (with_fields(FIELDS, crs=3946), "système de coordonnées EPSG:2154 devenu EPSG:3946"),
        (with_fields(FIELDS, source_format="xlsx"), "format de fichier csv devenu xlsx"),
    ],
)
def test_what_breaks_reusers_is_breaking(incoming: Structure, expected: str) -> None:
    change = changes.classify(KEPT, incoming)
    assert change.kind == "cassant"
    assert expected in change.breaking


def test_a_notice_less_than_30_days_ahead_is_refused_with_the_earliest_date() -> None:
    renamed = [*FIELDS[:2], {"name": "longueur", "type": "number"}]
    with pytest.raises(SubmissionRejected) as refused:
        changes.new_notice(
            "vaulx-en-velin-pistes", KEPT, 1, {"fields": renamed}, date(2027, 3, 20), "x", None
        )
    assert "Date d'effet la plus proche possible : le 31/03/2027" in str(refused.value)
    notice = changes.new_notice(
        "vaulx-en-velin-pistes",
        KEPT,
        1,
        {"fields": renamed},
        date(2027, 3, 31),
        "longueur_m devient longueur",
        {"longueur_m": {"colonne": "longueur"}},
    )
    assert notice.to_version == 2 and notice.effective_date == date(2027, 3, 31)


def test_a_notice_for_a_compatible_change_is_refused() -> None:
    added = [*FIELDS, {"name": "annee", "type": "integer"}]
    with pytest.raises(SubmissionRejected, match="n'a pas besoin d'avis"):
        changes.new_notice("x", KEPT, 1, {"fields": added}, date(2027, 6, 1), "ajout", None)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        (
            {"nom_voie": {"colonne": "nom_voie"}},
            "ne dit pas comment obtenir la colonne « longueur_m »",
        ),
        ({"longueur_m": {"colonne": "absente"}}, "colonne « absente » absente"),
        ({"longueur_m": {"formule": "__import__('os').getcwd()"}}, "seules + - * /"),
        ({"longueur_m": {"formule": "longueur_km.real"}}, "seules + - * /"),
        ({"longueur_m": {"calcul": "1"}}, "« calcul » inconnu"),
        ({"longueur_m": {"formule": "1000 + 1"}}, "sans colonne"),
        ({"longueur_m": {"colonne": ["longueur_km"]}}, "une valeur simple"),
    ],
)
def test_a_mapping_must_derive_every_old_column_safely(mapping: dict, message: str) -> None:
    renamed = [*FIELDS[:2], {"name": "longueur_km", "type": "number"}]
    with pytest.raises(SubmissionRejected, match=re.escape(message)):
        changes.new_notice("x", KEPT, 1, {"fields": renamed}, date(2027, 6, 1), "km", mapping)


def test_the_old_structure_is_derived_from_new_data() -> None:
    new_data = pa.table({"id": [1, 2], "voie": ["Rue A", "Rue B"], "longueur_km": [0.5, 1.25]})
    old = Structure(
        schema={"fields": [*FIELDS, {"name": "source", "type": "string"}]},
        geometry_type=None,
    )
    mapping = {
        "nom_voie": {"colonne": "voie"},
        "longueur_m": {"formule": "longueur_km * -1000 * -1"},
        "source": {"valeur": "SIG communal"},
    }
    derived, geometry = old_structure.derive_old(new_data, None, mapping, old)
    assert geometry is None
    assert derived.to_pylist() == [
        {"id": 1, "nom_voie": "Rue A", "longueur_m": 500.0, "source": "SIG communal"},
        {"id": 2, "nom_voie": "Rue B", "longueur_m": 1250.0, "source": "SIG communal"},
    ]


def test_a_change_of_file_format_is_breaking_at_submission(submit, dataset_folder) -> None:
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    workbook = Workbook()
    workbook.active.append(["id", "espece"])
    workbook.active.append([2, "Tilleul"])
    xlsx = data.parent / "arbres.xlsx"
    data.unlink()
    workbook.save(xlsx)
    outcome = submit(xlsx, xlsx.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    assert "format de fichier csv devenu xlsx" in outcome.summary()


def test_old_structure_data_is_accepted_while_a_type_change_is_announced(
    submit, dataset_folder, store
) -> None:
    data = dataset_folder("codes.csv", "code;libelle\r\n1;Un\r\n", name="codes")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    schema = {"fields": [{"name": "code", "type": "string"}, {"name": "libelle", "type": "string"}]}
    announce_change(store, "ecully-codes", schema, date(2027, 4, 1), "code en texte")
    data = dataset_folder("codes.csv", "code;libelle\r\n1;Un\r\n2;Deux\r\n", name="codes")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"  # still v1
    assert store.get_dataset("ecully-codes").current_version == 1
