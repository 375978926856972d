"""The governance job never depublishes a dataset whose producer was not warned in time:
a warning counts once its mail has left, through a real SMTP relay (aiosmtpd)."""

from __future__ import annotations

import os
import time
from typing import Any

import mail_relay
import pytest
from fastapi.testclient import TestClient
from mail_relay import relay_up

from catalog import accounts
from catalog.web.app import create_app
from pipelines import governance, notify

from backends import on_both_backends

pytest_plugins = ["backends"]  # the `backend` fixture: sqlite, postgis
settings, store = on_both_backends()  # every test here runs on both backends


def daily_job(store, settings, monkeypatch, moment: str) -> governance.GovernanceReport:
    """The governance DAG's day: the rules, then the mails of what they decided."""
    monkeypatch.setenv("OPENDATA_NOW", moment)
    report = governance.run(store)
    notify.notify_pending(store, settings)
    return report


@pytest.fixture
def relay_down(monkeypatch: pytest.MonkeyPatch) -> None:
    mail_relay.relay_down(monkeypatch)


def test_a_job_down_during_the_warnings_postpones_depublication(
    submit, dataset_folder, settings, store, relay_down, monkeypatch
) -> None:
    monkeypatch.setenv("OPENDATA_NOW", "2027-01-10T09:00:00")
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    # the job did not run between the publication and three years later
    with relay_up(monkeypatch) as relay:
        report = daily_job(store, settings, monkeypatch, "2030-01-15T06:00:00")
    assert any("Dépublication dans 30 jours" in s for s in relay.subjects), relay.subjects
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


def test_no_depublication_while_the_last_warning_has_not_left(
    submit, dataset_folder, settings, store, relay_down, monkeypatch
) -> None:
    """Replayed with the platform clock: the relay is down for the 90- and 30-day warnings
    and on the announced date; the dataset stays published until a warning has left 30
    days before the date it announces."""
    monkeypatch.setenv("OPENDATA_NOW", "2027-01-10T09:00:00")
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n", modified="2027-01-10")
    assert submit(data, data.parent / "metadata.yaml").status == "publiee"
    for day in ("2029-10-12", "2029-12-11"):  # 90 and 30 days before 2030-01-10
        assert daily_job(store, settings, monkeypatch, f"{day}T06:00:00").warned
    for day in ("2030-01-10", "2030-01-15"):
        report = daily_job(store, settings, monkeypatch, f"{day}T06:00:00")
        assert report.depublished == [] and report.held == ["ecully-arbres"]
        assert (
            "Dépublications suspendues (dernier avertissement pas encore remis) : "
            "ecully-arbres" in report.to_text()
        )
    assert store.get_dataset("ecully-arbres").status == "publie"
    waiting = health(store)["courriels_en_attente"]
    assert [(m["evenement"], m["le"][:10], m["suspend_la_depublication"]) for m in waiting] == [
        ("Mise à jour en retard", "2029-10-12", False),
        ("Dépublication prochaine", "2029-10-12", True),
        ("Dépublication prochaine", "2029-12-11", True),
    ]

    with relay_up(monkeypatch) as relay:  # the relay is back: the waiting mails leave
        assert daily_job(store, settings, monkeypatch, "2030-01-20T06:00:00").held
        report = daily_job(store, settings, monkeypatch, "2030-01-21T06:00:00")
        assert report.warned == ["ecully-arbres (30 j)"] and report.depublished == []
        warning = store.events("ecully-arbres", limit=1)[0]
        assert warning.details["depublication_effective_le"] == "2030-02-20"
        assert sum("Dépublication dans" in s for s in relay.subjects) == 3, relay.subjects
        assert daily_job(store, settings, monkeypatch, "2030-02-19T06:00:00").depublished == []
        report = daily_job(store, settings, monkeypatch, "2030-02-20T06:00:00")
    assert report.depublished == ["ecully-arbres"]
    assert store.get_dataset("ecully-arbres").status == "depublie"
    assert health(store)["courriels_en_attente"] == []


def health(store) -> dict[str, Any]:
    """The data team's health view (JSON), as its page shows it."""
    token = accounts.create_token(store, "equipe-data", "data@grandlyon.com").token
    with TestClient(create_app(store, services=[])) as http:
        headers = {"Authorization": f"Bearer {token}"}
        page = http.get("/equipe-data/sante", headers=headers)
        response = http.get("/api/equipe-data/sante", headers=headers)
    assert response.status_code == 200 and page.status_code == 200, response.text
    report = response.json()
    waiting = report["resume"]["courriels_en_attente"]
    assert f"{waiting} courriel(s) aux communes en attente d'envoi" in page.text
    assert ("dépublication suspendue" in page.text) == any(
        m["suspend_la_depublication"] for m in report["courriels_en_attente"]
    )
    return report


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
