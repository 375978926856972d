"""The data team's health page (issue #19), on both store backends: each commune's deposits
from real submissions through the pipeline, repeated refusals, filters and sorting without
JavaScript, and « Avertissement transmis autrement » holding or releasing a depublication
(through a real SMTP relay, down then acknowledged). Airflow's part: test_health_airflow.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lxml.html
import mail_relay
import pytest
from fastapi.testclient import TestClient

from catalog import accounts
from catalog.web.app import create_app
from pipelines import governance, notify

from backends import on_both_backends
from conftest import write_submission

pytest_plugins = ["backends"]  # the `backend` fixture: sqlite, postgis
settings, store = on_both_backends()  # every test here runs on both backends

PAGE = "/equipe-data/sante"
API = "/api/equipe-data/sante"


@pytest.fixture
def team(store) -> Callable[[], dict[str, str]]:
    """A data-team token valid at the platform's clock (the tests replay years)."""

    def headers() -> dict[str, str]:
        token = accounts.create_token(store, "equipe-data", "data@grandlyon.com").token
        return {"Authorization": f"Bearer {token}"}

    return headers


@pytest.fixture
def http(store, monkeypatch) -> TestClient:
    monkeypatch.delenv("OPENDATA_AIRFLOW_URL", raising=False)  # Airflow: not configured here
    with TestClient(create_app(store, services=[])) as client:
        yield client


@pytest.fixture
def deposit(submit, tmp_path, monkeypatch):
    """A deposit processed by the pipeline on `day`: valid, or refused for its licence."""

    def run(commune: str, day: str, name: str, *, refused: bool = False, expected: str = "") -> str:
        monkeypatch.setenv("OPENDATA_NOW", f"{day}T10:00:00")
        data = write_submission(
            tmp_path / "depots" / commune / name,
            "arbres.csv",
            "id;espece\r\n1;Platane\r\n",
            licence="licence-maison" if refused else "etalab-2.0",
            modified=day,  # data updated on the day they are deposited
        )
        outcome = submit(data, data.parent / "metadata.yaml", producer=commune)
        expected = expected or ("refusee" if refused else "publiee")
        assert outcome.status == expected, outcome.summary()
        return outcome.submission

    return run


def page_rows(html: str, table: str) -> dict[str, Any]:
    """The rows of a table of the page, by their header cell's first line."""
    tree = lxml.html.fromstring(html)
    return {
        row.xpath("normalize-space(./th)").split(" ")[0]: row
        for row in tree.xpath(f'//table[@id="{table}"]/tbody/tr')
    }


def test_each_commune_s_deposits_over_30_days_and_repeated_refusals(
    deposit, http, team, monkeypatch
) -> None:
    deposit("lyon", "2027-02-20", "arbres", refused=True)  # 49 days before: outside the window
    deposit("lyon", "2027-03-20", "arbres")
    deposit("ecully", "2027-03-15", "arbres")
    deposit("ecully", "2027-03-20", "arbres", expected="confirmee")  # the same content again
    for day in ("2027-04-01", "2027-04-05"):
        deposit("ecully", day, "arbres", refused=True)
    last = deposit("ecully", "2027-04-08", "parcs", refused=True)
    # Vaulx-en-Velin: refused, published, refused twice: 3 refusals in 30 days, 2 in a row
    deposit("vaulx-en-velin", "2027-03-25", "arbres", refused=True)
    deposit("vaulx-en-velin", "2027-03-26", "arbres")
    deposit("vaulx-en-velin", "2027-04-02", "arbres", refused=True)
    deposit("vaulx-en-velin", "2027-04-09", "arbres", refused=True)

    monkeypatch.setenv("OPENDATA_NOW", "2027-04-10T12:00:00")
    report = http.get(API, headers=team()).json()
    communes = {c["slug"]: c for c in report["communes"]}
    ecully = communes["ecully"]["depots"]
    assert (ecully["recus_30_jours"], ecully["publies_30_jours"]) == (5, 1)
    assert (ecully["confirmes_30_jours"], ecully["refuses_30_jours"]) == (1, 3)
    assert ecully["alerte_refus"] == "3 refus de suite"
    assert ecully["dernier_refus"]["depot"] == last
    assert ecully["dernier_refus"]["jeu_de_donnees"] == "ecully-parcs"
    assert ecully["dernier_refus"]["recu_le"].startswith("2027-04-08")
    lyon = communes["lyon"]["depots"]
    assert (lyon["recus_30_jours"], lyon["publies_30_jours"], lyon["refuses_30_jours"]) == (
        1,
        1,
        0,
    )
    assert lyon["alerte_refus"] is None
    assert lyon["dernier_refus"]["recu_le"].startswith("2027-02-20")  # older, still shown
    vaulx = communes["vaulx-en-velin"]["depots"]
    assert (vaulx["refuses_30_jours"], vaulx["refus_de_suite"]) == (3, 2)
    assert vaulx["alerte_refus"] == "3 refus en 30 jours"
    assert report["resume"]["communes_refus_repetes"] == 2

    page = http.get(PAGE, headers=team())
    rows = page_rows(page.text, "table-communes")
    assert "refus répétés : 3 refus de suite" in rows["Écully"].text_content()
    assert "refus répétés" not in rows["Lyon"].text_content()
    # the last refusal links to its French report, the one the commune received
    link = rows["Écully"].xpath('.//a[starts-with(., "rapport du refus")]/@href')[0]
    assert link == f"{PAGE}/depots/{last}"
    refusal = http.get(link, headers=team())
    assert refusal.status_code == 200
    assert "La soumission est refusée : 1 problème(s) détecté(s)." in refusal.text
    assert "licence-maison" in refusal.text and "Écully" in refusal.text

    # failing only: the communes whose refusals repeat
    failing = page_rows(http.get(f"{PAGE}?en_echec=1", headers=team()).text, "table-communes")
    assert sorted(failing) == ["Vaulx-en-Velin", "Écully"]


def test_a_deposit_report_is_the_data_team_s_only(deposit, store, http, team) -> None:
    refused = deposit("ecully", "2027-04-01", "arbres", refused=True)
    producer = accounts.create_token(store, "producteur", "agent@ecully.fr", "ecully").token
    answers = [
        http.get(f"{PAGE}/depots/{refused}"),
        http.get(f"{PAGE}/depots/{refused}", headers={"Authorization": f"Bearer {producer}"}),
        http.get(f"{PAGE}/depots/inconnu", headers=team()),
    ]
    assert [a.status_code for a in answers] == [401, 403, 404]
    assert answers[2].json()["detail"] == "Dépôt « inconnu » introuvable."


def test_filters_and_sorting_work_as_links_and_forms(deposit, store, http, team, monkeypatch):
    deposit("ecully", "2027-01-10", "arbres")
    deposit("ecully", "2027-05-10", "parcs")
    deposit("lyon", "2027-03-10", "bancs")
    deposit("vaulx-en-velin", "2027-02-10", "pistes")
    store.set_status("vaulx-en-velin-pistes", "depublie")
    monkeypatch.setenv("OPENDATA_NOW", "2028-03-01T09:00:00")  # the 2027-01-10 one is late

    def datasets(query: str) -> list[str]:
        page = http.get(f"{PAGE}{query}", headers=team())
        assert page.status_code == 200, page.text
        tree = lxml.html.fromstring(page.text)
        return [c.strip() for c in tree.xpath('//table[@id="sante"]/tbody/tr/th/code/text()')]

    assert datasets("") == [
        "ecully-arbres",
        "ecully-parcs",
        "lyon-bancs",
        "vaulx-en-velin-pistes",
    ]
    assert datasets("?commune=ecully") == ["ecully-arbres", "ecully-parcs"]
    assert datasets("?statut=depublie") == ["vaulx-en-velin-pistes"]
    assert datasets("?en_retard=1") == ["ecully-arbres"]
    assert datasets("?en_echec=1") == []  # no failing source
    assert datasets("?tri=derniere_mise_a_jour&ordre=decroissant") == [
        "ecully-parcs",
        "lyon-bancs",
        "vaulx-en-velin-pistes",
        "ecully-arbres",
    ]
    # the API takes the same parameters
    api = http.get(f"{API}?commune=lyon", headers=team()).json()
    assert [d["slug"] for d in api["jeux_de_donnees"]] == ["lyon-bancs"]
    assert [c["slug"] for c in api["communes"]] == ["lyon"]

    # the sorted column says so (aria-sort), its link sorts the other way, filters kept
    page = http.get(f"{PAGE}?commune=ecully&tri=derniere_mise_a_jour", headers=team())
    tree = lxml.html.fromstring(page.text)
    sorted_header = tree.xpath('//table[@id="sante"]//th[@aria-sort]')
    assert len(sorted_header) == 1 and sorted_header[0].get("aria-sort") == "ascending"
    assert "Dernière mise à jour" in sorted_header[0].text_content()
    link = sorted_header[0].xpath(".//a/@href")[0]
    assert link == "?commune=ecully&tri=derniere_mise_a_jour&ordre=decroissant"
    assert datasets(link) == ["ecully-parcs", "ecully-arbres"]
    # the filter form keeps the sort, and shows the filter chosen
    form = tree.xpath('//form[@method="get"]')[0]
    assert form.xpath('.//input[@name="tri"]/@value') == ["derniere_mise_a_jour"]
    assert form.xpath('.//select[@name="commune"]/option[@selected]/text()') == ["Écully"]

    # unknown values: a French 400, nothing guessed
    wrong = [
        http.get(f"{PAGE}?commune=paris", headers=team()),
        http.get(f"{PAGE}?statut=brouillon", headers=team()),
        http.get(f"{PAGE}?tri=taille", headers=team()),
        http.get(f"{API}?en_retard=peut-etre", headers=team()),
    ]
    assert [w.status_code for w in wrong] == [400] * 4
    assert wrong[0].json()["detail"] == "Commune « paris » inconnue."
    assert "publie ou depublie" in wrong[1].json()["detail"]


# --- « Avertissement transmis autrement » --------------------------------------------------------


def daily_job(store, settings, monkeypatch, moment: str) -> governance.GovernanceReport:
    """The governance DAG's day: the rules, then the mails of what they decided."""
    monkeypatch.setenv("OPENDATA_NOW", moment)
    report = governance.run(store)
    notify.notify_pending(store, settings)
    return report


def test_an_acknowledged_warning_counts_as_delivered_30_days_on(
    deposit, store, settings, http, team, monkeypatch
) -> None:
    """The relay is down for every warning: depublication is held until the data team says
    the commune was told otherwise; it then happens 30 days after that, the mail never left."""
    mail_relay.relay_down(monkeypatch)
    deposit("ecully", "2027-01-10", "arbres")
    for day in ("2029-10-12", "2029-12-11", "2030-01-10"):  # -90, -30 days, the date
        report = daily_job(store, settings, monkeypatch, f"{day}T06:00:00")
    assert report.held == ["ecully-arbres"] and report.depublished == []

    monkeypatch.setenv("OPENDATA_NOW", "2030-01-12T10:00:00")
    health = http.get(API, headers=team()).json()
    [warning] = health["avertissements_non_remis"]
    assert warning["slug"] == "ecully-arbres" and warning["suspend_la_depublication"]
    assert warning["depublication_annoncee_le"] == "2030-01-10"
    assert warning["depublication_au_plus_tot_le"] == "2030-02-11"  # told today: 30 days on
    assert warning["transmis_autrement"] is None
    page = http.get(PAGE, headers=team()).text
    form = lxml.html.fromstring(page).xpath('//table[@id="table-avertissements"]//form')[0]
    assert form.get("action") == f"{PAGE}/jeux/ecully-arbres/avertissement"
    assert form.xpath('.//input[@name="csrf"]') and form.xpath(".//textarea[@required]")

    fields = {"avertissement": str(warning["avertissement"]), "csrf": ""}
    producer = accounts.create_token(store, "producteur", "agent@ecully.fr", "ecully").token
    refused = [
        http.post(form.get("action"), data=fields, headers=team()),  # no reason
        http.post(form.get("action"), data={**fields, "motif": "   "}, headers=team()),
        http.post(form.get("action"), data={**fields, "motif": "x" * 1001}, headers=team()),
        http.post(
            form.get("action"),
            data={**fields, "motif": "Appel"},
            headers={"Authorization": f"Bearer {producer}"},
        ),
        http.post(form.get("action"), data={**fields, "motif": "Appel"}),
        http.post(
            form.get("action"),
            data={**fields, "avertissement": "1", "motif": "Appel"},
            headers=team(),
        ),
        http.post(
            f"{PAGE}/jeux/ecully-inconnu/avertissement",
            data={**fields, "motif": "Appel"},
            headers=team(),
        ),
    ]
    assert [r.status_code for r in refused] == [400, 400, 400, 403, 401, 409, 404]
    assert refused[0].json()["detail"] == (
        "Indiquez comment la commune a été prévenue (motif obligatoire)."
    )
    assert "rechargez-la" in refused[5].json()["detail"]
    assert (
        http.get(API, headers=team()).json()["avertissements_non_remis"][0]["transmis_autrement"]
        is None
    )  # nothing changed

    done = http.post(
        form.get("action"),
        data={**fields, "motif": "Prévenue par téléphone (Mme Martin, service espaces verts)"},
        headers=team(),
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert done.headers["location"] == f"{PAGE}?acquitte=ecully-arbres#avertissements"
    again = http.post(form.get("action"), data={**fields, "motif": "Encore"}, headers=team())
    assert again.status_code == 409
    shown = http.get(done.headers["location"], headers=team()).text
    assert "Avertissement indiqué comme transmis autrement" in shown
    assert "Prévenue par téléphone (Mme Martin, service espaces verts)" in shown
    assert "Dépublication au plus tôt le 11/02/2030." in shown
    health = http.get(API, headers=team()).json()
    acknowledged = health["avertissements_non_remis"][0]
    assert acknowledged["transmis_autrement"]["par"] == "equipe-data:data@grandlyon.com"
    assert not acknowledged["suspend_la_depublication"]
    assert health["resume"]["avertissements_non_remis"] == 0
    # its mail still waits for the relay, without holding anything
    waiting = health["courriels_en_attente"][-1]
    assert (waiting["evenement"], waiting["le"]) == (
        "Dépublication prochaine",
        acknowledged["decide_le"],
    )
    assert waiting["transmis_autrement_le"].startswith("2030-01-12")
    assert not waiting["suspend_la_depublication"]
    [entry] = store.audit_log(action="avertissement-acquitte")
    assert (entry.commune, entry.target) == ("ecully", "ecully-arbres")
    assert entry.details["motif"].startswith("Prévenue par téléphone")

    # the rule: no longer held, and depublished 30 days after the acknowledgement
    report = daily_job(store, settings, monkeypatch, "2030-01-13T06:00:00")
    assert report.held == [] and report.depublished == [] and report.warned == []
    assert daily_job(store, settings, monkeypatch, "2030-02-10T06:00:00").depublished == []
    report = daily_job(store, settings, monkeypatch, "2030-02-11T06:00:00")
    assert report.depublished == ["ecully-arbres"]
    assert store.get_dataset("ecully-arbres").status == "depublie"
    assert http.get(API, headers=team()).json()["avertissements_non_remis"] == []


def test_acknowledged_in_time_the_announced_date_holds(
    deposit, store, settings, http, team, monkeypatch
) -> None:
    """Told otherwise more than 30 days before the announced date: depublished on that date."""
    mail_relay.relay_down(monkeypatch)
    deposit("ecully", "2027-01-10", "arbres")
    daily_job(store, settings, monkeypatch, "2029-10-12T06:00:00")  # the 90-day warning
    daily_job(store, settings, monkeypatch, "2029-12-01T06:00:00")
    monkeypatch.setenv("OPENDATA_NOW", "2029-12-01T10:00:00")
    [warning] = http.get(API, headers=team()).json()["avertissements_non_remis"]
    assert not warning["suspend_la_depublication"]  # the date has not come yet
    answer = http.post(
        f"{API}/jeux/ecully-arbres/avertissement",
        json={"motif": "Courrier recommandé du 28/11", "avertissement": warning["avertissement"]},
        headers=team(),
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["motif"] == "Courrier recommandé du 28/11"
    # the 30-day warning is a new one, mailed (or acknowledged) in its turn
    daily_job(store, settings, monkeypatch, "2029-12-11T06:00:00")
    report = daily_job(store, settings, monkeypatch, "2030-01-10T06:00:00")
    assert report.held == ["ecully-arbres"]
    [latest] = http.get(API, headers=team()).json()["avertissements_non_remis"]
    assert latest["avertissement"] != warning["avertissement"]
    assert latest["transmis_autrement"] is None
    http.post(
        f"{API}/jeux/ecully-arbres/avertissement",
        json={"motif": "Rappel téléphonique le 11/12"},
        headers=team(),
    )
    # acknowledged on 2030-01-10: 30 days on
    assert daily_job(store, settings, monkeypatch, "2030-02-08T06:00:00").depublished == []
    report = daily_job(store, settings, monkeypatch, "2030-02-09T06:00:00")
    assert report.depublished == ["ecully-arbres"]
