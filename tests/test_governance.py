"""The governance job never depublishes a dataset whose producer was not warned in time."""

from __future__ import annotations

from pipelines import governance

from backends import on_both_backends

pytest_plugins = ["backends"]  # the `backend` fixture: sqlite, postgis
settings, store = on_both_backends()  # every test here runs on both backends


def test_a_job_down_during_the_warnings_postpones_depublication(
    submit, dataset_folder, store, monkeypatch
) -> None:
    monkeypatch.setenv("OPENDATA_NOW", "2027-01-10T09:00:00")
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    # the job did not run between the publication and three years later
    monkeypatch.setenv("OPENDATA_NOW", "2030-01-15T06:00:00")
    report = governance.run(store)
    assert report.depublished == [] and report.warned == ["ecully-arbres (30 j)"]
    assert store.get_dataset("ecully-arbres").status == "publie"
    warning = next(e for e in store.events("ecully-arbres") if e.kind.startswith("avertissement"))
    assert warning.details["depublication_effective_le"] == "2030-02-14"
    monkeypatch.setenv("OPENDATA_NOW", "2030-02-13T06:00:00")
    assert governance.run(store).depublished == []
    monkeypatch.setenv("OPENDATA_NOW", "2030-02-14T06:00:00")
    assert governance.run(store).depublished == ["ecully-arbres"]
    assert store.get_dataset("ecully-arbres").status == "depublie"
    assert governance.run(store).depublished == []  # idempotent: told once


def test_a_depublished_dataset_comes_back_in_a_new_structure_without_notice(
    submit, dataset_folder, store, monkeypatch
) -> None:
    monkeypatch.setenv("OPENDATA_NOW", "2027-01-10T09:00:00")
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    store.set_status("ecully-arbres", "depublie")
    monkeypatch.setenv("OPENDATA_NOW", "2030-06-01T09:00:00")
    data = dataset_folder("arbres.csv", "id;essence\r\n1;Platane\r\n")  # a column renamed
    outcome = submit(data, data.parent / "metadata.yaml")
    assert outcome.status == "publiee" and outcome.structure_version == 2
    dataset = store.get_dataset("ecully-arbres")
    assert dataset.status == "publie" and dataset.current_version == 2
    retired = [n for n in store.notices("ecully-arbres") if n.retired_at]
    assert [n.from_version for n in retired] == [1]  # v1 answers 410 with a link to v2
    kinds = [e.kind for e in store.events("ecully-arbres")]
    assert "republication" in kinds
