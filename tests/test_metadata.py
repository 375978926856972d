from datetime import date, timedelta

import pytest

from core.problems import SubmissionRejected
from pipelines.metadata import DCAT_TERMS, parse_metadata

VALID = {
    "titre": "Bancs publics",
    "description": "Bancs installés sur l'espace public.",
    "producteur": "ecully",
    "licence": "etalab-2.0",
    "frequence": "Trimestrielle",
    "modalites_livraison": "Dépôt trimestriel.",
    "date_mise_a_jour": "15/10/2026",
    "mots_cles": "bancs, mobilier urbain",
    "theme": ["Régions et villes"],
    "contact": {"nom": "Service voirie", "email": "voirie@mairie-ecully.fr"},
    "systeme_coordonnees": "CC46",
}


def rejection(document: dict) -> str:
    with pytest.raises(SubmissionRejected) as caught:
        parse_metadata(document, "ecully", "bancs-publics")
    return caught.value.report.to_text()


def test_french_keys_are_mapped_onto_dcat_terms() -> None:
    metadata = parse_metadata(VALID, "ecully", "bancs-publics")
    dcat = metadata.to_dcat()
    assert set(dcat) == set(DCAT_TERMS.values())
    assert dcat["dct:title"] == "Bancs publics"
    assert dcat["dct:accrualPeriodicity"] == "QUARTERLY"
    assert dcat["dct:modified"] == "2026-10-15"
    assert dcat["dcat:keyword"] == ["bancs", "mobilier urbain"]
    assert dcat["dcat:theme"] == ["REGI"]
    assert dcat["dct:conformsTo"] == 3946
    assert dcat["dct:identifier"] == "bancs-publics"


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("annuelle", "ANNUAL"),
        ("annual", "ANNUAL"),
        ("Hebdomadaire", "WEEKLY"),
        ("irrégulière", "IRREG"),
        ("continue", "CONT"),
        ("quotidienne", "DAILY"),
        ("http://publications.europa.eu/resource/authority/frequency/MONTHLY", "MONTHLY"),
    ],
)
def test_frequency_accepts_the_eu_vocabulary_in_french_or_english(written: str, code: str) -> None:
    metadata = parse_metadata({**VALID, "frequence": written}, "ecully", "bancs")
    assert metadata.accrual_periodicity == code


def test_every_missing_required_field_is_named_in_french() -> None:
    text = rejection({"titre": "Bancs"})
    for key in (
        "description",
        "licence",
        "frequence",
        "modalites_livraison",
        "date_mise_a_jour",
        "mots_cles",
        "contact",
    ):
        assert f"« {key} » est obligatoire" in text


def test_unknown_frequency_lists_the_accepted_values() -> None:
    text = rejection({**VALID, "frequence": "de temps en temps"})
    assert "Fréquence « de temps en temps » inconnue" in text
    assert "hebdomadaire" in text and "annuelle" in text


def test_misspelt_key_is_reported_rather_than_ignored() -> None:
    text = rejection({**VALID, "titr": "Bancs"})
    assert "Clé « titr » inconnue" in text


def test_a_commune_cannot_publish_for_another() -> None:
    text = rejection({**VALID, "producteur": "lyon"})
    assert "n'est pas la commune qui soumet" in text


def test_future_update_date_and_bad_contact_are_rejected() -> None:
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    text = rejection({**VALID, "date_mise_a_jour": tomorrow, "contact": "voirie"})
    assert "dans le futur" in text
    assert "adresse électronique valide" in text


def test_unaccepted_crs_lists_the_accepted_ones() -> None:
    text = rejection({**VALID, "systeme_coordonnees": "EPSG:27572"})
    assert "EPSG:2154" in text and "EPSG:3946" in text and "EPSG:4171" in text
