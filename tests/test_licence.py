import pytest

from core.licences import check_licence, load_licences
from core.problems import SubmissionRejected
from core.settings import load_settings

LICENCES = load_settings().licenses_dir


@pytest.mark.parametrize(
    "written",
    [
        "etalab-2.0",
        "Licence Ouverte 2.0",
        "lo-2.0",
        "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
    ],
)
def test_licence_ouverte_is_recognised_however_written(written: str) -> None:
    licence = check_licence(written, LICENCES)
    assert licence.id == "etalab-2.0"
    assert licence.homologated
    assert licence.obligations["attribution"] and licence.obligations["mention_date_mise_a_jour"]


def test_odbl_carries_share_alike_obligations() -> None:
    licence = check_licence("ODbL", LICENCES)
    assert licence.id == "odbl-1.0"
    assert licence.obligations["partage_a_l_identique"] and licence.obligations["base_ouverte"]


def test_licences_are_data_files() -> None:
    ids = {lic.id for lic in load_licences(LICENCES).values()}
    assert ids == {path.stem for path in LICENCES.glob("*.yaml")}


def test_declared_sector_licence_is_accepted() -> None:
    declared = {
        "type": "sectorielle",
        "nom": "Licence IGN données publiques",
        "url": "https://example.org/licence-ign",
    }
    licence = check_licence(declared, LICENCES)
    assert licence.sector and not licence.homologated
    assert licence.url == "https://example.org/licence-ign"


@pytest.mark.parametrize(
    "declared",
    [
        {"type": "sectorielle", "nom": "Licence du SIG"},
        {"type": "sectorielle", "url": "https://example.org/l"},
        {"nom": "Licence du SIG", "url": "https://example.org/l"},
    ],
)
def test_sector_licence_needs_its_declaration_name_and_url(declared: dict) -> None:
    with pytest.raises(SubmissionRejected):
        check_licence(declared, LICENCES)


@pytest.mark.parametrize(
    "written",
    [
        "CC-BY-NC-4.0",
        "CC BY-ND",
        "propriétaire",
        "Tous droits réservés",
        "licence maison",
        "",
    ],
)
def test_other_licences_are_rejected_with_the_accepted_list(written: str) -> None:
    with pytest.raises(SubmissionRejected) as caught:
        check_licence(written, LICENCES)
    text = caught.value.report.to_text()
    assert "non acceptée" in text
    assert "Licence Ouverte 2.0" in text and "ODbL 1.0" in text and "sectorielle" in text


def test_restrictive_sector_licence_is_rejected() -> None:
    declared = {
        "type": "sectorielle",
        "nom": "Licence NC du syndicat",
        "url": "https://example.org/nc",
    }
    with pytest.raises(SubmissionRejected) as caught:
        check_licence(declared, LICENCES)
    assert "restreint la réutilisation" in caught.value.report.to_text()
