"""The governance job never depublishes a dataset whose producer was not warned in time."""

from __future__ import annotations

from pipelines import governance


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
