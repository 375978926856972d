"""One date model (issue #19, `core.dates`): the date of the data's last update declared by
the producer is the reference of the next expected update, of the late flag and of the
3-year depublication count, and every view — dataset page, cards, API, DCAT, the data
team's health view, the governance job — reads it; the platform's publication date is
shown beside it, labelled. Replayed with the platform clock, on both store backends."""

from __future__ import annotations

from datetime import date, datetime
from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from mail_relay import relay_up
from rdflib import Graph, Literal
from rdflib.namespace import DCAT, DCTERMS, RDF, XSD

from catalog import accounts
from catalog.web.app import create_app
from core.dates import DatasetDates, dates_of
from core.records import Dataset
from core.vocabularies import find_frequency
from pipelines import governance, notify

from backends import on_both_backends

pytest_plugins = ["backends"]  # the `backend` fixture: sqlite, postgis
settings, store = on_both_backends()  # every test here that uses them runs on both backends

SLUG = "ecully-arbres"
BLOCKS = {"br", "p", "div", "li", "td", "th", "tr", "h1", "h2", "h3", "section", "title"}


class VisibleText(HTMLParser):
    """A page's text as a reader sees it (no markup, scripts or styles), spaces collapsed."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hidden += tag in {"script", "style"}
        if tag in BLOCKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in {"script", "style"}
        if tag in BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)

    @classmethod
    def of(cls, html: str) -> str:
        parser = cls()
        parser.feed(html)
        return " ".join("".join(parser.parts).split())


def at(monkeypatch: pytest.MonkeyPatch, moment: str) -> None:
    monkeypatch.setenv("OPENDATA_NOW", moment)


def deposit(submit, dataset_folder, modified: str, frequency: str = "mensuelle") -> str:
    """The same trees deposited by Écully, their data updated on `modified`."""
    data = dataset_folder("arbres.csv", "id;espece\r\n1;Platane\r\n", modified=modified)
    metadata = data.parent / "metadata.yaml"
    text = metadata.read_text(encoding="utf-8")
    metadata.write_text(text.replace("frequence: annuelle", f"frequence: {frequency}"), "utf-8")
    return submit(data, metadata).status


def team(store) -> dict[str, str]:
    token = accounts.create_token(store, "equipe-data", "data@grandlyon.com").token
    return {"Authorization": f"Bearer {token}"}


def views(store, slug: str = SLUG) -> dict[str, Any]:
    """What the dataset page, the cards, the API, DCAT and the health view say, now."""
    with TestClient(create_app(store, services=[])) as http:
        headers = team(store)
        health = http.get("/api/equipe-data/sante", headers=headers).json()
        health_page = http.get("/equipe-data/sante", headers=headers).text
        return {
            "page": VisibleText.of(http.get(f"/jeux-de-donnees/{slug}").text),
            "home": VisibleText.of(http.get("/").text),
            "api": http.get(f"/api/datasets/{slug}").json(),
            "dcat": Graph().parse(data=http.get(f"/api/datasets/{slug}/dcat.ttl").text),
            "health": next(r for r in health["jeux_de_donnees"] if r["slug"] == slug),
            "health_page": VisibleText.of(health_page),
        }


def daily_job(store, settings, monkeypatch, moment: str) -> governance.GovernanceReport:
    at(monkeypatch, moment)
    report = governance.run(store)
    notify.notify_pending(store, settings)
    return report


def test_monthly_data_updated_on_1_october_published_in_december_are_late_everywhere(
    submit, dataset_folder, settings, store, monkeypatch
) -> None:
    """The issue's example: monthly data last updated by the commune on 1 October and
    published on 3 December are late (expected by 1 November) on the dataset page, the
    cards, the API, the health view and for the governance job; depositing them again
    unchanged, with the same date, changes nothing; they are depublished 3 years after
    1 October."""
    at(monkeypatch, "2026-12-03T09:00:00")
    assert deposit(submit, dataset_folder, "2026-10-01") == "publiee"

    seen = views(store)
    page = seen["page"]
    assert "Données mises à jour par le producteur le 1er octobre 2026" in page
    assert "Publiées sur la plateforme le 3 décembre 2026" in page
    assert "au plus tard le 1er novembre 2026 (mensuelle" in page and "(en retard)" in page
    assert "Sans mise à jour des données, le jeu sera dépublié le 1er octobre 2029" in page
    assert "Données mises à jour le 1er octobre 2026 (en retard)" in seen["home"]
    api = seen["api"]
    assert (api["date_mise_a_jour"], api["prochaine_mise_a_jour"]) == ("2026-10-01", "2026-11-01")
    assert api["statut_mise_a_jour"] == "en-retard" and api["dates"]["en_retard"] is True
    assert api["dates"]["publiees_sur_la_plateforme_le"] == "2026-12-03"
    assert api["cycle_de_vie"]["depublication_prevue_le"] == "2029-10-01"
    assert "1er octobre 2026" in api["licence"]["mention"]  # Licence Ouverte: the data's date
    dataset = next(seen["dcat"].subjects(RDF.type, DCAT.Dataset))
    assert seen["dcat"].value(dataset, DCTERMS.modified) == Literal("2026-10-01", datatype=XSD.date)
    health = seen["health"]
    assert health["derniere_mise_a_jour"] == "2026-10-01" and health["publiee_le"] == "2026-12-03"
    assert health["prochaine_mise_a_jour"] == "2026-11-01" and health["en_retard"] is True
    assert health["depublication_prevue_le"] == "2029-10-01"
    assert "données : 01/10/2026 publiées : 03/12/2026 01/11/2026 en retard" in seen["health_page"]

    report = governance.run(store)
    assert report.late == [SLUG]
    late = next(e for e in store.events(SLUG) if e.kind == "retard")
    assert late.details["attendue_le"] == "2026-11-01"
    assert late.details["derniere_mise_a_jour"] == "2026-10-01"

    # The same data deposited again with the same date: a republication, not an update.
    at(monkeypatch, "2026-12-05T09:00:00")
    assert deposit(submit, dataset_folder, "2026-10-01") == "confirmee"
    seen = views(store)
    assert seen["api"]["statut_mise_a_jour"] == "en-retard"
    assert "dernier_depot_le" in seen["api"]["dates"]
    assert seen["health"]["depublication_prevue_le"] == "2029-10-01"
    assert governance.run(store).late == []  # told once per expected date

    # The 3-year count runs from 1 October 2026: warned 90 and 30 days before, then gone.
    with relay_up(monkeypatch) as relay:
        assert daily_job(store, settings, monkeypatch, "2029-07-02T06:00:00").warned == []
        assert daily_job(store, settings, monkeypatch, "2029-07-03T06:00:00").warned == [
            f"{SLUG} (90 j)"
        ]
        assert daily_job(store, settings, monkeypatch, "2029-09-01T06:00:00").warned == [
            f"{SLUG} (30 j)"
        ]
        assert daily_job(store, settings, monkeypatch, "2029-09-30T06:00:00").depublished == []
        gone = daily_job(store, settings, monkeypatch, "2029-10-01T06:00:00")
    assert gone.depublished == [SLUG]
    assert sum("Dépublication dans" in s for s in relay.subjects) == 2, relay.subjects
    event = store.events(SLUG, limit=1)[0]
    assert event.kind == "depublication" and event.details["derniere_mise_a_jour"] == "2026-10-01"
    at(monkeypatch, "2029-10-02T09:00:00")
    with TestClient(create_app(store, services=[])) as http:
        answer = http.get(f"/jeux-de-donnees/{SLUG}")
    assert answer.status_code == 410
    assert "ses données n'ont pas été mises à jour depuis le 1er octobre 2026" in VisibleText.of(
        answer.text
    )


def test_unchanged_data_declared_exact_on_a_new_date_are_up_to_date(
    submit, dataset_folder, settings, store, monkeypatch
) -> None:
    """A commune whose data have not changed deposits them again with the day's date: the
    data count as updated that day; the platform still says when it published them."""
    at(monkeypatch, "2026-12-03T09:00:00")
    assert deposit(submit, dataset_folder, "2026-10-01") == "publiee"
    at(monkeypatch, "2026-12-05T09:00:00")
    assert deposit(submit, dataset_folder, "2026-12-05") == "confirmee"

    seen = views(store)
    assert "Données mises à jour par le producteur le 5 décembre 2026" in seen["page"]
    assert (
        "Publiées sur la plateforme le 3 décembre 2026, confirmées par un nouveau dépôt "
        "identique le 5 décembre 2026" in seen["page"]
    )
    assert "au plus tard le 5 janvier 2027" in seen["page"] and "en retard" not in seen["page"]
    assert seen["api"]["statut_mise_a_jour"] == "a-jour"
    assert seen["health"]["en_retard"] is False
    assert seen["health"]["depublication_prevue_le"] == "2029-12-05"
    assert governance.run(store).late == []


def test_a_dataset_without_periodic_commitment_is_never_late_and_stays_3_years_after_a_deposit(
    submit, dataset_folder, settings, store, monkeypatch
) -> None:
    """An archive (irregular updates) published with data of 2019: nothing was committed,
    so it is never late (annex §3.2: data « not updated as committed »); the « 3 ans
    d'inactivité » count from its last deposit, not from its 2019 data."""
    at(monkeypatch, "2026-12-03T09:00:00")
    assert deposit(submit, dataset_folder, "2019-03-15", frequency="irrégulière") == "publiee"
    seen = views(store)
    assert "Données mises à jour par le producteur le 15 mars 2019" in seen["page"]
    assert "aucune : fréquence non périodique (irrégulière)" in seen["page"]
    assert seen["health"]["en_retard"] is False
    assert seen["health"]["depublication_prevue_le"] == "2029-12-03"
    report = daily_job(store, settings, monkeypatch, "2028-06-01T06:00:00")
    assert report.late == report.warned == report.depublished == []
    assert store.get_dataset(SLUG).status == "publie"
    report = daily_job(store, settings, monkeypatch, "2029-09-10T06:00:00")
    assert report.warned and report.depublished == []


def record(modified: str, published: str, deposited: str, *, source: bool) -> Dataset:
    metadata: dict[str, Any] = {"modified": modified, "accrual_periodicity": "MONTHLY"}
    if source:
        metadata["source"] = {"type": "fichier", "url": "https://commune.example/arbres.csv"}
    return Dataset(
        slug=SLUG,
        producer="ecully",
        metadata=metadata,
        licence={},
        current_version=1,
        status="publie",
        first_published_at=datetime.fromisoformat("2026-01-05T08:00:00"),
        last_published_at=datetime.fromisoformat(published),
        last_confirmed_at=datetime.fromisoformat(deposited),
    )


def dates(modified: str, published: str, deposited: str, *, source: bool) -> DatasetDates:
    return dates_of(record(modified, published, deposited, source=source))


def test_data_pulled_from_the_commune_server_date_from_the_day_new_content_was_found() -> None:
    """For a declared source (issue #7) the commune updates its server: new content found
    there is the update; a check finding the same content is not."""
    pulled = dates("2026-01-05", "2026-12-02T06:00:00", "2026-12-07T06:00:00", source=True)
    assert pulled.data_updated == date(2026, 12, 2) and pulled.found_at_source
    assert pulled.next_expected == date(2027, 1, 2) and not pulled.late(date(2026, 12, 7))
    uploaded = dates("2026-01-05", "2026-12-02T06:00:00", "2026-12-07T06:00:00", source=False)
    assert uploaded.data_updated == date(2026, 1, 5) and uploaded.late(date(2026, 12, 7))
    # a declared date later than the deposit that carried it vouches for no more than it
    ahead = dates("2026-12-31", "2026-12-02T06:00:00", "2026-12-02T06:00:00", source=False)
    assert ahead.data_updated == date(2026, 12, 2)
    assert find_frequency("MONTHLY") == ahead.frequency


@pytest.mark.parametrize(
    ("updated", "frequency", "expected"),
    [
        ("2026-10-01", "ANNUAL", "2027-10-01"),  # not 366 days: 2 October
        ("2026-10-28", "ANNUAL_2", "2027-04-28"),  # not 183 days: 29 April
        ("2026-01-31", "MONTHLY", "2026-02-28"),  # the month's last day
        ("2026-11-30", "QUARTERLY", "2027-02-28"),
        ("2026-10-01", "WEEKLY", "2026-10-08"),  # counted in days
    ],
)
def test_the_next_expected_update_counts_calendar_months(updated, frequency, expected) -> None:
    dataset = record(updated, updated + "T09:00:00", updated + "T09:00:00", source=False)
    dataset.metadata["accrual_periodicity"] = frequency
    assert dates_of(dataset).next_expected == date.fromisoformat(expected)
