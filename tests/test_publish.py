"""Publication: immutable releases, atomic switch; identical content only confirms."""

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point

from catalog.store.sql import SqlCatalogStore

CSV_V1 = "id;espece;hauteur\r\n1;Platane;12,5\r\n2;Tilleul;8\r\n"
CSV_V2 = "id;espece;hauteur\r\n1;Platane;13\r\n2;Tilleul;8,5\r\n3;Érable;4\r\n"
CSV_BAD = "id;espece;hauteur\r\n1;Platane;treize\r\nx;Tilleul;8,5\r\n"


def served_csv(store, slug: str) -> str:
    release = store.current_release(slug)
    return store.release_path(release, "csv").read_text(encoding="utf-8")


def test_first_publication_creates_a_versioned_release(submit, dataset_folder, store):
    data = dataset_folder("arbres.csv", CSV_V1, encoding="cp1252")
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "publiee" and outcome.dataset == "ecully-arbres"
    release = store.current_release("ecully-arbres")
    assert release.row_count == 2 and release.structure_version == 1
    assert len(release.content_hash) == 64
    assert {d.format for d in release.distributions} == {"csv", "parquet"}
    assert served_csv(store, "ecully-arbres").splitlines()[1] == '1,"Platane",12.5'
    parquet = pd.read_parquet(store.release_path(release, "parquet"))
    assert parquet["hauteur"].tolist() == [12.5, 8.0]
    dataset = store.get_dataset("ecully-arbres")
    assert dataset.metadata["publisher_name"] == "Écully"
    assert dataset.licence["id"] == "etalab-2.0"


def test_identical_content_confirms_without_a_new_version(submit, dataset_folder, store):
    data = dataset_folder("arbres.csv", CSV_V1, encoding="cp1252")
    first = submit(data, data.parent / "metadata.yaml")
    # Same content in another dialect is the same content.
    again = dataset_folder("arbres.csv", CSV_V1.replace(";", ",").replace("12,5", "12.5"))
    second = submit(again, again.parent / "metadata.yaml")
    assert second.status == "confirmee" and second.release == first.release
    assert len(store.releases("ecully-arbres")) == 1
    statuses = [s.status for s in store.submissions("ecully")]
    assert statuses == ["publiee", "confirmee"]


def test_new_content_is_a_new_release_and_old_ones_stay(submit, dataset_folder, store):
    data = dataset_folder("arbres.csv", CSV_V1)
    first = submit(data, data.parent / "metadata.yaml")
    data = dataset_folder("arbres.csv", CSV_V2)
    second = submit(data, data.parent / "metadata.yaml")
    assert second.status == "publiee" and second.release != first.release
    releases = store.releases("ecully-arbres")
    assert [r.id for r in releases] == [first.release, second.release]
    assert store.release_path(releases[0], "csv").is_file()
    assert "Érable" in served_csv(store, "ecully-arbres")


def test_invalid_submission_publishes_nothing(submit, dataset_folder, store):
    data = dataset_folder("arbres.csv", CSV_V1)
    submit(data, data.parent / "metadata.yaml")
    before = served_csv(store, "ecully-arbres")
    data = dataset_folder("arbres.csv", CSV_BAD)
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    text = outcome.summary()
    assert "ligne 2, colonne « hauteur » : « treize » n'est pas un nombre" in text
    assert "ligne 3, colonne « id » : « x » n'est pas un nombre entier." in text
    assert "la version précédente reste diffusée" in text
    assert served_csv(store, "ecully-arbres") == before
    assert len(store.releases("ecully-arbres")) == 1
    assert store.submissions("ecully")[-1].status == "refusee"


def test_interrupted_switch_leaves_the_previous_release_served(
    submit, dataset_folder, store, monkeypatch
):
    data = dataset_folder("arbres.csv", CSV_V1)
    submit(data, data.parent / "metadata.yaml")
    before = store.current_release("ecully-arbres")
    real_switch = SqlCatalogStore._switch

    def switch_then_crash(self, conn, *args):
        real_switch(self, conn, *args)  # every write done, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(SqlCatalogStore, "_switch", switch_then_crash)
    data = dataset_folder("arbres.csv", CSV_V2)
    with pytest.raises(KeyboardInterrupt):
        submit(data, data.parent / "metadata.yaml")
    after = store.current_release("ecully-arbres")
    assert after == before
    assert store.release_path(after, "csv").read_text().count("\n") == 3
    release_dirs = list((store.files_dir / "ecully-arbres").iterdir())
    assert [d.name for d in release_dirs] == [before.id]
    assert not any((store.files_dir / ".staging").iterdir())


def test_declared_schema_is_kept_and_a_structure_change_is_refused(submit, dataset_folder, store):
    schema = (
        '{"fields": [{"name": "id", "type": "integer"}, {"name": "espece", "type": "string"},'
        ' {"name": "hauteur", "type": "number", "decimalChar": ","}], "primaryKey": "id"}'
    )
    data = dataset_folder("arbres.csv", CSV_V1, schema=schema)
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    kept = store.structure_versions("ecully-arbres")[0].structure["schema"]
    assert kept["primaryKey"] == "id"
    renamed = CSV_V2.replace("espece", "essence")
    data = dataset_folder("arbres.csv", renamed)
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "refusee"
    assert (
        "annoncé au moins 30 jours" in outcome.summary()
        or "La colonne « espece » prévue par le schéma est absente" in outcome.summary()
    )


def test_geographic_release_has_every_map_format(submit, dataset_folder, store, tmp_path: Path):
    frame = gpd.GeoDataFrame(
        {"id_banc": [1, 2], "materiau": ["bois", "métal"]},
        geometry=[Point(4.777, 45.776), Point(4.780, 45.778)],
        crs="EPSG:4326",
    ).to_crs("EPSG:3946")
    source = tmp_path / "bancs.geojson"
    frame.to_file(source, driver="GeoJSON")
    data = dataset_folder(
        "bancs.geojson",
        source.read_bytes(),
        name="bancs",
        extra_metadata="systeme_coordonnees: EPSG:3946\n",
    )
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "publiee", outcome.summary()
    release = store.current_release("ecully-bancs")
    formats = {d.format: d for d in release.distributions}
    assert set(formats) == {"csv", "parquet", "geojson", "gpkg"}
    geojson = gpd.read_file(store.release_path(release, "geojson"))
    assert geojson.crs.to_epsg() == 4326
    assert geojson.geometry.x.round(3).tolist() == [4.777, 4.78]
    gpkg = gpd.read_file(store.release_path(release, "gpkg"))
    assert gpkg.crs.to_epsg() == 3946 and formats["gpkg"].crs == 3946
    geoparquet = gpd.read_parquet(store.release_path(release, "parquet"))
    assert geoparquet.crs.to_epsg() == 3946
    csv_lines = store.release_path(release, "csv").read_text().splitlines()
    assert csv_lines[0].endswith('"geometry"') and "POINT (4.777" in csv_lines[1]
    structure = store.structure_versions("ecully-bancs")[0].structure
    assert structure["geometry_type"] == "Point" and structure["crs"] == 3946
