"""The governance job never depublishes a dataset whose producer was not warned in time."""

from __future__ import annotations

import os
import time

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


def test_the_job_sweeps_what_interrupted_publications_left_and_nothing_served(
    submit, dataset_folder, store, monkeypatch
) -> None:
    monkeypatch.setenv("OPENDATA_NOW", "2027-01-10T09:00:00")
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    served = store.current_release("ecully-arbres")
    served_csv = store.release_path(served, "csv").read_bytes()
    root = store.files_dir
    day_old = time.time() - 2 * 86400
    staged, orphan, unknown = (
        root / ".staging" / "abandonne",
        root / "ecully-arbres" / "version-jamais-basculee",
        root / "ecully-inconnu" / "premiere-version",
    )
    fresh = root / ".staging" / "en-cours"
    for folder in (staged, orphan, unknown, fresh):
        folder.mkdir(parents=True)
        (folder / "donnees.csv").write_text("id\n1\n")
    for folder in (staged, orphan, unknown):
        os.utime(folder, (day_old, day_old))
    os.utime(store.release_path(served, "csv").parent, (day_old, day_old))  # old but served

    report = governance.run(store)
    assert report.swept == sorted(str(f.relative_to(root)) for f in (staged, orphan, unknown))
    assert "Dossiers abandonnés supprimés : 3" in report.to_text()
    assert fresh.is_dir()  # a publication may be writing it
    assert store.release_path(served, "csv").read_bytes() == served_csv
    assert governance.run(store).swept == []
