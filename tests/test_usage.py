"""Usage statistics: counted per dataset and day, seen by the commune, nothing on callers."""

import sqlite3

import requests

from catalog import accounts

from conftest import running_catalog


def test_downloads_and_api_calls_are_counted_per_dataset_and_day(
    submit, dataset_folder, store, settings
):
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    token = accounts.create_token(store, "producteur", "marie@ecully.fr", "ecully").token
    commune = {"Authorization": f"Bearer {token}"}  # statistics: the commune's agents only
    with running_catalog(store) as base:
        dataset = f"{base}/api/datasets/ecully-arbres"
        for _ in range(3):
            requests.get(
                f"{dataset}/download/csv",
                timeout=5,
                headers={"User-Agent": "Navigateur-Secret/1.0"},
            )
        requests.get(f"{dataset}/rows", timeout=5)
        requests.get(dataset, timeout=5)
        requests.get(f"{base}/jeux-de-donnees/ecully-arbres", timeout=5)
        requests.get(f"{dataset}/download/inconnu", timeout=5)  # a 404 counts nothing
        stats = requests.get(
            f"{base}/api/communes/ecully/statistiques", headers=commune, timeout=5
        ).json()
        page = requests.get(f"{base}/communes/ecully", headers=commune, timeout=5).text
    entry = stats["jeux_de_donnees"][0]
    assert (entry["telechargements"], entry["appels_api"], entry["consultations"]) == (3, 2, 1)
    assert list(entry["par_jour"].values()) == [
        {"telechargements": 3, "appels_api": 2, "consultations": 1}
    ]
    assert "<td>Arbres d&#39;alignement</td><td>3</td><td>2</td><td>1</td>" in page
    database = settings.data_dir / "catalog.db"
    with sqlite3.connect(database) as conn:
        dump = "\n".join(conn.iterdump())
    assert "127.0.0.1" not in dump and "Navigateur-Secret" not in dump
    assert "usage_daily" in dump
