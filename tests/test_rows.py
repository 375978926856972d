"""Rows API: every operator against pandas, keyset pages in both directions, formats."""

import io
import random
from pathlib import Path

import pandas as pd
import pytest
import requests

from catalog.store import rows_copy

from conftest import deployment, running_catalog, write_submission

ROWS = 1_000


def generated_csv() -> str:
    rng = random.Random(5)
    lines = ["id;quartier;surface;ouverture;accessible;note"]
    for i in range(1, ROWS + 1):
        surface = "" if i % 50 == 0 else f"{rng.uniform(10, 500):.1f}".replace(".", ",")
        lines.append(
            ";".join(
                [
                    str(i),
                    rng.choice(["Centre", "Gare", "Mairie", "Écoles"]),
                    surface,
                    f"20{rng.randint(10, 25)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                    rng.choice(["true", "false"]),
                    rng.choice(["bon état", "à réparer", ""]),
                ]
            )
        )
    return "\r\n".join(lines) + "\r\n"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    with deployment(tmp_path_factory, "rows") as deployed:
        data = write_submission(deployed.root / "equipements", "equipements.csv", generated_csv())
        deployed.publish(data)
        release = deployed.store.current_release("ecully-equipements")
        frame = pd.read_parquet(deployed.store.release_path(release, "parquet"))
        with running_catalog(deployed.store) as base:
            yield f"{base}/api/datasets/ecully-equipements", frame


def fetch(url: str, **params) -> dict:
    response = requests.get(url + "/rows", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def all_pages(url: str, **params) -> list[dict]:
    rows, page = [], fetch(url, **params)
    while True:
        rows.extend(page["lignes"])
        if not page["suivant"]:
            return rows
        page = requests.get(page["suivant"], timeout=30).json()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"quartier": "Gare"}, lambda f: f[f.quartier == "Gare"]),
        ({"quartier__ne": "Gare"}, lambda f: f[f.quartier != "Gare"]),
        ({"surface__gt": "250,5"}, lambda f: f[f.surface > 250.5]),
        ({"surface__lte": "100"}, lambda f: f[f.surface <= 100]),
        ({"id__gte": "990"}, lambda f: f[f.id >= 990]),
        ({"id__lt": "5"}, lambda f: f[f.id < 5]),
        ({"quartier__in": "Centre,Écoles"}, lambda f: f[f.quartier.isin(["Centre", "Écoles"])]),
        ({"note__contains": "REPARER"}, lambda f: f[f.note.fillna("").str.contains("réparer")]),
        ({"accessible": "true"}, lambda f: f[f.accessible]),
        (
            {"ouverture__gte": "2020-01-01"},
            lambda f: f[f.ouverture >= pd.Timestamp("2020-01-01").date()],
        ),
    ],
)
def test_each_operator_returns_what_pandas_computes(catalog, params, expected):
    url, frame = catalog
    rows = all_pages(url, _taille=97, _total=1, **params)
    assert [r["id"] for r in rows] == expected(frame)["id"].tolist()
    assert fetch(url, _taille=1, _total=1, **params)["total"] == len(rows)


@pytest.mark.parametrize("sort", ["surface", "-surface", "quartier", "-ouverture", "-id"])
def test_keyset_pages_walk_every_row_once_in_order(catalog, sort):
    url, frame = catalog
    rows = all_pages(url, _tri=sort, _taille=128)
    assert len(rows) == ROWS and len({r["id"] for r in rows}) == ROWS
    column, descending = sort.lstrip("-"), sort.startswith("-")
    expected = frame.assign(_k=frame[column]).sort_values(
        ["_k", "id"],
        ascending=not descending,
        na_position="last" if descending else "first",
        kind="stable",
    )
    assert [r["id"] for r in rows] == expected["id"].tolist()


def test_columns_offset_and_formats(catalog):
    url, frame = catalog
    page = fetch(url, _colonnes="id,quartier", _decalage=500, _taille=3)
    assert page["colonnes"] == ["id", "quartier"] and [r["id"] for r in page["lignes"]] == [
        501,
        502,
        503,
    ]
    text = requests.get(url + "/rows", params={"_format": "csv", "_taille": 1000}, timeout=30)
    assert 'rel="next"' not in text.headers.get("Link", "")
    assert len(pd.read_csv(io.StringIO(text.text))) == ROWS
    assert requests.get(url + "/rows", params={"_format": "geojson"}, timeout=5).status_code == 400


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"_taille": "1001"}, "de 1 à 1000"),
        ({"_taille": "abc"}, "« abc » n'est pas un nombre entier"),
        ({"inconnue": "1"}, "Colonne(s) inconnue(s) : inconnue"),
        ({"id__entre": "1"}, "Opérateur « entre » inconnu"),
        ({"id": "un"}, "n'est pas une valeur de type integer"),
        ({"_apres": "pas-un-curseur"}, "Curseur « _apres » invalide"),
    ],
)
def test_bad_queries_get_a_french_400(catalog, params, message):
    url, _ = catalog
    response = requests.get(url + "/rows", params=params, timeout=5)
    assert response.status_code == 400 and message in response.json()["detail"]


def test_generated_file_shape(catalog):
    _, frame = catalog
    assert len(frame) == ROWS and frame["surface"].isna().sum() == ROWS // 50


def test_contains_ignores_accents_and_case_both_ways(submit, dataset_folder, store):
    names = ["Mérieux", "merieux", "MERIEUX", "Institut Me\u0301rieux", "Mériel", "Autre"]
    lines = "".join(f"{number};{name}\n" for number, name in enumerate(names, 1))
    data = dataset_folder("laboratoires.csv", "id;nom\n" + lines, name="laboratoires")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    with running_catalog(store) as base:
        url = f"{base}/api/datasets/ecully-laboratoires"
        for wanted in ("Mérieux", "merieux", "MERIEUX", "MÉRIEUX", "rieux"):
            found = fetch(url, nom__contains=wanted)["lignes"]
            assert [row["id"] for row in found] == [1, 2, 3, 4], wanted
        assert [r["nom"] for r in fetch(url, nom__contains="MERI")["lignes"]] == names[:5]


def copy_of(store, slug: str) -> Path:
    release = store.current_release(slug)
    return rows_copy.copy_path(store.release_path(release, "parquet"))


def test_the_rows_copy_is_written_at_publication_not_on_the_first_request(
    submit, dataset_folder, store
):
    """The first reuser does not wait for the copy: it exists when the release is switched
    in, and answering the first request leaves it as it was."""
    lines = "".join(f"{n};Quartier {n % 3}\n" for n in range(1, 201))
    data = dataset_folder("salles.csv", "id;quartier\n" + lines, name="salles")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    copy = copy_of(store, "ecully-salles")
    assert copy.is_file()
    written = copy.stat()
    with running_catalog(store) as base:
        page = fetch(f"{base}/api/datasets/ecully-salles", _taille=5, quartier="Quartier 1")
    assert [row["id"] for row in page["lignes"]] == [1, 4, 7, 10, 13]
    # the store's SQLite copy answered (PostGIS answers equalities itself), unchanged
    assert copy.stat().st_mtime_ns == written.st_mtime_ns and copy.stat().st_ino == written.st_ino
    assert sorted(p.name for p in copy.parent.glob("*.sqlite")) == [copy.name]


def test_a_copy_that_fails_leaves_the_previous_release_served(
    submit, dataset_folder, store, monkeypatch
):
    data = dataset_folder("salles.csv", "id;quartier\n1;Gare\n2;Centre\n", name="salles")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    before = store.current_release("ecully-salles")
    copy = copy_of(store, "ecully-salles")
    real_write = rows_copy.write_copy

    def write_then_fail(parquet, database, dates):
        real_write(parquet, database, dates)  # written, then the disk fills up
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rows_copy, "write_copy", write_then_fail)
    data = dataset_folder("salles.csv", "id;quartier\n1;Gare\n2;Centre\n3;Mairie\n", name="salles")
    with pytest.raises(OSError):
        submit(data, data.parent / "metadata.yaml")
    assert store.current_release("ecully-salles") == before
    assert copy_of(store, "ecully-salles") == copy and copy.is_file()
    assert [d.name for d in (store.files_dir / "ecully-salles").iterdir()] == [before.id]
    assert not any((store.files_dir / ".staging").iterdir())
    with running_catalog(store) as base:
        page = fetch(f"{base}/api/datasets/ecully-salles", quartier__contains="mairie")
    assert page["lignes"] == []
