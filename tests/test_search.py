"""Search: full text without accents, facets, filters, sort, pages, freshness; the same
answers on both backends (SQLite FTS5, PostgreSQL full-text), an index that follows every
change of a dataset, and what a caller may not read never listed."""

import secrets
from datetime import date, timedelta

import pytest
import requests
import sqlalchemy as sa

from catalog.search import Query, readers_of
from catalog.store import open_store
from catalog.store.search_index import Readers
from catalog.store.tables import search_state_table
from core.access import ANONYMOUS, Principal
from core.rules import freshness
from core.settings import PROJECT_ROOT

from backends import on_both_backends
from conftest import Deployment, running_catalog, write_submission

pytest_plugins = ["backends"]  # the `backend` fixture: sqlite, postgis
settings, store = on_both_backends()  # the tests that use them run on both backends

SAMPLES = sorted(p for p in (PROJECT_ROOT / "samples" / "inbox").glob("*/*") if p.is_dir())


@pytest.fixture(scope="module")
def search_database(request):
    """A PostGIS database of the module's own: the per-test `backend` one is emptied
    after every test, while the module's catalogue lives on."""
    server = request.getfixturevalue("postgis_database").rsplit("/", 1)[0]
    name = f"opendata_search_{secrets.token_hex(6)}"
    admin = sa.create_engine(
        f"{server}/postgres", isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        database = sa.create_engine(f"{server}/{name}", poolclass=sa.pool.NullPool)
        with database.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
        yield f"{server}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module", params=["sqlite", "postgis"])
def catalog(request, tmp_path_factory):
    url = request.getfixturevalue("search_database") if request.param == "postgis" else None
    patch = pytest.MonkeyPatch()
    if url:
        patch.setenv("OPENDATA_STORE_URL", url)
    else:
        patch.delenv("OPENDATA_STORE_URL", raising=False)
    deployed = Deployment(tmp_path_factory.mktemp(f"search-{request.param}"))
    try:
        for folder in SAMPLES:
            deployed.publish_sample(folder)
        with running_catalog(deployed.store) as base:
            yield base, deployed.store
    finally:
        deployed.close()
        deployed.store.close()
        patch.undo()


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


def test_a_search_reads_only_the_page_not_the_catalogue(catalog, monkeypatch):
    """The index answers: the catalogue's datasets are not all read to search them."""
    base, store = catalog

    def refused(*_args, **_kwargs):
        raise AssertionError("the whole catalogue was read")

    for reading in ("list_datasets", "current_releases"):
        monkeypatch.setattr(store, reading, refused)
    assert get(base, q="vélo")["total"] == 1
    assert get(base, commune="lyon")["total"] == 2
    home = requests.get(f"{base}/", timeout=10)
    assert home.status_code == 200 and "Aménagements cyclables" in home.text


def test_the_status_facet_follows_the_day(catalog):
    _, store = catalog
    dataset = store.get_dataset("lyon-fontaines-eau-potable")  # monthly
    due = date.fromisoformat(freshness(dataset)["prochaine"])
    before = store.search(Query(), Readers(), due)
    after = store.search(Query(), Readers(), due + timedelta(days=1))
    late_before = before.facets["statut"].get("en-retard", 0)
    assert after.facets["statut"]["en-retard"] >= late_before + 1
    late = store.search(Query(filters={"statut": "en-retard"}), Readers(), due + timedelta(days=1))
    assert "lyon-fontaines-eau-potable" in late.slugs
    assert late.total == after.facets["statut"]["en-retard"]


def publish_trees(submit, folder, name: str, title: str, **options) -> None:
    data = write_submission(folder / name, f"{name}.csv", "id;espece\r\n1;Platane\r\n", **options)
    metadata = data.parent / "metadata.yaml"
    text = metadata.read_text(encoding="utf-8").replace("Arbres d'alignement", title)
    metadata.write_text(text, encoding="utf-8")
    assert submit(data, metadata).status in ("publiee", "confirmee")


def found(store, text: str, readers: Readers | None = None) -> list[str]:
    return store.search(Query(text), readers or Readers(), date(2026, 12, 1)).slugs


def test_the_index_follows_publication_metadata_and_depublication(submit, store, tmp_path):
    publish_trees(submit, tmp_path, "platanes", "Platanes remarquables")
    assert found(store, "platane") == ["ecully-platanes"]
    # the same content deposited again with a new title: the index follows the metadata
    publish_trees(submit, tmp_path, "platanes", "Tilleuls remarquables")
    assert found(store, "platane") == [] and found(store, "tilleuls") == ["ecully-platanes"]
    store.set_status("ecully-platanes", "depublie")
    assert found(store, "tilleul") == []
    assert store.search(Query(), Readers(), date(2026, 12, 1)).total == 0
    store.set_status("ecully-platanes", "publie")
    assert found(store, "tilleul") == ["ecully-platanes"]


def test_restricted_datasets_are_listed_only_to_who_may_read_them(submit, store, tmp_path):
    publish_trees(submit, tmp_path, "ouverts", "Arbres ouverts")
    publish_trees(submit, tmp_path, "agents", "Arbres des agents", extra_metadata="acces: agents\n")
    publish_trees(
        submit, tmp_path, "restreints", "Arbres restreints", extra_metadata="acces: restreint\n"
    )
    everyone = ["ecully-agents", "ecully-ouverts", "ecully-restreints"]
    assert found(store, "arbres", readers_of(ANONYMOUS)) == ["ecully-ouverts"]
    person = Principal(kind="usager", subject="alice", signed_in=True)
    assert found(store, "arbres", readers_of(person)) == ["ecully-ouverts", "ecully-restreints"]
    agent = Principal(kind="usager", subject="bob", signed_in=True, agent=True)
    assert found(store, "arbres", readers_of(agent)) == everyone
    for principal in (
        Principal(kind="producteur", commune="ecully", subject="ecully"),
        Principal(kind="equipe-data", subject="equipe"),
    ):
        assert found(store, "arbres", readers_of(principal)) == everyone, principal
    other = Principal(kind="producteur", commune="lyon", subject="lyon")
    assert found(store, "arbres", readers_of(other)) == ["ecully-ouverts"]
    facets = store.search(Query(), readers_of(ANONYMOUS), date(2026, 12, 1)).facets
    assert facets["commune"] == {"ecully": 1}  # the counts never tell what is hidden


def test_a_store_indexed_by_another_version_is_indexed_again(submit, store, settings, tmp_path):
    publish_trees(submit, tmp_path, "platanes", "Platanes remarquables")
    with store.engine.begin() as conn:
        conn.execute(search_state_table.delete())
        conn.execute(sa.text("DELETE FROM search_themes"))
        conn.execute(sa.text("DELETE FROM search_entries"))
    assert found(store, "platane") == []
    reopened = open_store(settings.store_url, settings.files_dir)
    try:
        assert found(reopened, "platane") == ["ecully-platanes"]
    finally:
        reopened.close()
