"""Search: full text without accents, facets, filters, sort, pages, freshness."""

from datetime import date

import pytest
import requests

from core.rules import freshness
from core.settings import PROJECT_ROOT

from conftest import deployment, running_catalog

SAMPLES = sorted(p for p in (PROJECT_ROOT / "samples" / "inbox").glob("*/*") if p.is_dir())


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    with deployment(tmp_path_factory, "search") as deployed:
        for folder in SAMPLES:
            deployed.publish_sample(folder)
        with running_catalog(deployed.store) as base:
            yield base, deployed.store


def get(base: str, **params) -> dict:
    response = requests.get(f"{base}/api/datasets", params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def slugs(result: dict) -> list[str]:
    return [d["slug"] for d in result["jeux_de_donnees"]]


def test_full_text_ignores_accents_and_case(catalog):
    base, _ = catalog
    assert slugs(get(base, q="EQUIPEMENTS sportifs")) == ["ecully-equipements-sportifs"]
    assert slugs(get(base, q="vélo")) == ["vaulx-en-velin-pistes-cyclables"]
    assert get(base, q="sport inexistantmot")["total"] == 0


def test_title_matches_rank_before_description_matches(catalog):
    base, _ = catalog
    found = slugs(get(base, q="espace public"))
    assert found[0] == "lyon-signalements-espace-public"  # in its title
    assert "ecully-bancs-publics" in found[1:]  # in its description only


def test_facets_count_the_results_and_filters_narrow_them(catalog):
    base, _ = catalog
    everything = get(base)
    assert everything["total"] == len(SAMPLES)
    facets = everything["facettes"]
    assert facets["commune"] == {"ecully": 2, "lyon": 2, "vaulx-en-velin": 2}
    # latitude/longitude columns make maps of Écully's equipments and Lyon's fountains
    assert facets["geographique"] == {"oui": 5, "non": 1}
    assert facets["licence"]["odbl-1.0"] == 1
    assert facets["format"]["kml"] == 5 and facets["format"]["csv"] == 6
    vaulx_maps = get(base, commune="vaulx-en-velin", geographique="oui")
    assert slugs(vaulx_maps) == ["vaulx-en-velin-pistes-cyclables"]
    assert get(base, theme="TRAN", licence="odbl-1.0")["total"] == 1


def test_sort_and_pages(catalog):
    base, _ = catalog
    by_title = get(base, tri="titre", taille=2)
    assert by_title["total"] == len(SAMPLES) and len(by_title["jeux_de_donnees"]) == 2
    titles = [d["titre"] for d in get(base, tri="titre")["jeux_de_donnees"]]
    assert titles[0] == "Aménagements cyclables"
    page_two = get(base, tri="titre", taille=2, page=2)
    assert slugs(page_two)[0] not in slugs(by_title)
    dates = [d["date_mise_a_jour"] for d in get(base, tri="mise-a-jour")["jeux_de_donnees"]]
    assert dates == sorted(dates, reverse=True)
    bad = requests.get(f"{base}/api/datasets", params={"tri": "hasard"}, timeout=5)
    assert bad.status_code == 400 and "pertinence" in bad.json()["detail"]


def test_freshness_follows_the_committed_frequency(catalog):
    _, store = catalog
    dataset = store.get_dataset("lyon-fontaines-eau-potable")  # monthly
    current = freshness(dataset, today=date.fromisoformat(dataset.metadata["modified"]))
    assert current["statut"] == "a-jour" and current["prochaine"] is not None
    late = freshness(dataset, today=date(2027, 6, 1))
    assert late["statut"] == "en-retard"
    detail = requests.get(f"{catalog[0]}/api/datasets/lyon-fontaines-eau-potable", timeout=5).json()
    assert detail["prochaine_mise_a_jour"] == current["prochaine"]
    assert detail["versions_structure"][0]["actuelle"] is True
    assert len(detail["historique"]) == 1


def test_plurals_accents_and_case_find_the_same_words(submit, dataset_folder, store):
    data = dataset_folder("places.csv", "id;places\n1;12\n", name="stationnements-velos")
    metadata = data.parent / "metadata.yaml"
    text = metadata.read_text(encoding="utf-8")
    metadata.write_text(text.replace("Arbres d'alignement", "Stationnements vélos"), "utf-8")
    assert submit(data, metadata).status == "publiee"
    found = ["ecully-stationnements-velos"]
    with running_catalog(store) as base:
        for query in ("velo", "vélo", "VELOS", "vélos", "stationnement", "Stationnement vélo"):
            assert slugs(get(base, q=query)) == found, query  # in the title
        # singular in the keywords (« nature ») and the description (« espèce », « hauteur »)
        for query in ("natures", "ESPECES", "leurs hauteurs", "l'arbre"):
            assert slugs(get(base, q=query)) == found, query
        assert get(base, q="velodrome")["total"] == 0  # a longer word is not found
