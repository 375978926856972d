"""Pull delivery (issue #7) through the real commune DAG.

The commune's DAG (`commune_ecully`: find_sources → pull_source) runs on real Airflow with
dag.test(), in the long-lived driver of tests/test_lifecycle.py, with `OPENDATA_NOW` set per
run. The commune's infrastructure is real and on loopback: the plain HTTP server of
tests/test_sources.py (ETag, injectable faults), and another deployment of the platform
as the commune's GIS (MapServer's WFS). The SSRF guard lets the DAG reach 127.0.0.1 only
because the run's environment allows it (`OPENDATA_SOURCES_ALLOW`); the retries of the
default policy wait 0.05 s, 0.1 s, 0.2 s (`OPENDATA_SOURCES_RETRY_DELAY`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from test_dags import airflow_home  # noqa: F401 - fixture
from test_lifecycle import PRODUCER_MAIL, TEAM_MAIL, DagDriver, dags, mailbox  # noqa: F401
from test_sources import (  # noqa: F401 - commune: fixture
    BANCS,
    MORE_TREES,
    RENAMED,
    TREES,
    CommuneServer,
    Route,
    commune,
)

from catalog import accounts
from catalog.store import CatalogStore
from catalog.web.app import create_app
from core.settings import Settings
from pipelines.harvest.http import USER_AGENT, HttpClient, RetryPolicy

from backends import on_both_backends
from conftest import METADATA_TEMPLATE, SAMPLES, Deployment, deployment, running_catalog

pytest_plugins = ["backends"]  # the `backend` fixture: sqlite, postgis
settings, store = on_both_backends()  # every test here runs on both backends

SLUG = "ecully-arbres"
RUN_ENV = {"OPENDATA_SOURCES_ALLOW": "127.0.0.1", "OPENDATA_SOURCES_RETRY_DELAY": "0.05"}
PULL = "pull_source[0]"


# --- helpers ----------------------------------------------------------------------------------


def declare(settings: Settings, name: str, source: dict[str, Any], frequency: str) -> Path:
    """A declared-source folder of Écully's inbox: its metadata.yaml only."""
    folder = settings.inbox_dir / "ecully" / name
    folder.mkdir(parents=True, exist_ok=True)
    metadata = METADATA_TEMPLATE.format(licence="etalab-2.0").replace(
        "frequence: annuelle", f"frequence: {frequency}"
    )
    metadata += f"source: {json.dumps(source)}\n"
    (folder / "metadata.yaml").write_text(metadata, encoding="utf-8")
    return folder


def pull_run(dags: DagDriver, settings: Settings, now: str, **env: str) -> dict[str, Any]:  # noqa: F811
    """One run of Écully's DAG at `now`; its pull tasks' states under `pulls`."""
    result = dags.run("commune_ecully", settings, now, **RUN_ENV, **env)
    pulls = {k: v for k, v in result["tasks"].items() if k.startswith("pull_source")}
    return {**result, "pulls": pulls}


def report(folder: Path) -> str:
    return (folder / "rapport.txt").read_text(encoding="utf-8")


def served_csv(store: CatalogStore) -> bytes:
    return store.release_path(store.current_release(SLUG), "csv").read_bytes()


def catalog(store: CatalogStore) -> TestClient:
    return TestClient(create_app(store, services=[]))


def api_rows(store: CatalogStore) -> list[list[str]]:
    with catalog(store) as http:
        response = http.get(f"/api/datasets/{SLUG}/download/csv")
    assert response.status_code == 200, response.text
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def health(store: CatalogStore, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], str]:
    """The data team's health view: JSON report and HTML page."""
    token = accounts.create_token(store, "equipe-data", "data@grandlyon.com").token
    team = {"Authorization": f"Bearer {token}"}
    with catalog(store) as http:
        data = http.get("/api/equipe-data/sante", headers=team)
        page = http.get("/equipe-data/sante", headers=team)
    assert data.status_code == 200 and page.status_code == 200, data.text
    return data.json(), page.text


def health_source(report_: dict[str, Any]) -> dict[str, Any]:
    return next(r for r in report_["jeux_de_donnees"] if r["slug"] == SLUG)["source"]


def at(monkeypatch: pytest.MonkeyPatch, moment: str) -> None:
    monkeypatch.setenv("OPENDATA_NOW", moment)


@pytest.fixture(scope="module")
def sig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Deployment]]:
    """Another deployment of the platform as the commune's GIS: MapServer's WFS."""
    with deployment(tmp_path_factory, "sig-commune") as published:
        published.publish_sample(SAMPLES / "inbox" / "ecully" / "bancs-publics")
        with running_catalog(published.store) as base:
            yield base, published


def test_the_dag_runs_backoff_is_set_by_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENDATA_SOURCES_RETRY_DELAY", raising=False)
    assert HttpClient().policy == RetryPolicy() and RetryPolicy().base_delay == 2.0
    monkeypatch.setenv("OPENDATA_SOURCES_RETRY_DELAY", RUN_ENV["OPENDATA_SOURCES_RETRY_DELAY"])
    policy = HttpClient().policy
    assert policy.base_delay == 0.05 and policy.attempts == RetryPolicy().attempts
    assert [policy.backoff(n) for n in (1, 2, 3)] == [0.05, 0.1, 0.2]
    for wrong in ("deux", "-1", "nan", "3600"):
        monkeypatch.setenv("OPENDATA_SOURCES_RETRY_DELAY", wrong)
        with pytest.raises(ValueError, match=f"un nombre de secondes .* « {wrong} » reçu"):
            HttpClient()


# --- first, unchanged, not due, changed -------------------------------------------------------


def test_a_file_source_is_published_confirmed_left_alone_then_updated(
    dags: DagDriver,  # noqa: F811
    commune: CommuneServer,  # noqa: F811
    settings: Settings,
    store: CatalogStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    route = commune.routes["/donnees/arbres.csv"] = Route(TREES.encode())
    source = {"type": "fichier", "url": commune.url("/donnees/arbres.csv")}
    folder = declare(settings, "arbres", source, "hebdomadaire")

    first = pull_run(dags, settings, "2026-11-02T08:00:00Z")
    assert first["state"] == "success", first
    assert first["tasks"]["find_sources[-1]"] == "success" and first["pulls"] == {PULL: "success"}
    text = report(folder)
    assert ": publiee" in text and f"« {SLUG} » publié" in text
    assert (folder / "metadata.yaml").is_file()  # kept: the source is fetched again
    assert store.submissions("ecully")[-1].channel == "moissonnage"
    assert {s.headers["user-agent"] for s in commune.seen} == {USER_AGENT}
    at(monkeypatch, "2026-11-02T09:00:00Z")
    assert api_rows(store) == [["numero", "espece", "hauteur"], *csv_body(TREES)]

    # A week later (the declared periodicity): a conditional GET, 304, a confirmation.
    unchanged = pull_run(dags, settings, "2026-11-09T08:00:00Z")
    assert unchanged["state"] == "success" and unchanged["pulls"] == {PULL: "success"}, unchanged
    request = commune.requests_to("/donnees/arbres.csv")[-1]
    assert request.headers["if-none-match"] == route.etag and request.status == 304
    assert len(store.releases(SLUG)) == 1
    assert store.get_dataset(SLUG).last_confirmed_at == datetime(2026, 11, 9, 8)
    assert ": confirmee" in report(folder) and "aucune nouvelle version" in report(folder)

    # Within the period: the pull task is not run, the commune's server is not called.
    asked = len(commune.seen)
    early = pull_run(dags, settings, "2026-11-15T20:00:00Z")
    assert early["state"] == "success", early
    assert early["pulls"] == {"pull_source[-1]": "skipped"}
    assert len(commune.seen) == asked

    # Changed content, next period: a new version.
    route.content = MORE_TREES.encode()
    changed = pull_run(dags, settings, "2026-11-16T08:00:00Z")
    assert changed["state"] == "success" and changed["pulls"] == {PULL: "success"}, changed
    assert [r.row_count for r in store.releases(SLUG)] == [3, 4]
    assert commune.requests_to("/donnees/arbres.csv")[-1].status == 200
    assert store.source_state(SLUG).etag == route.etag
    at(monkeypatch, "2026-11-16T09:00:00Z")
    assert api_rows(store)[1:] == csv_body(MORE_TREES)


def csv_body(text: str) -> list[list[str]]:
    return [line.split(",") for line in text.splitlines()[1:]]


# --- faults -----------------------------------------------------------------------------------


def test_faults_fail_the_pull_keep_the_version_and_are_shown_then_a_recovery_resets(
    dags: DagDriver,  # noqa: F811
    commune: CommuneServer,  # noqa: F811
    mailbox: Any,  # noqa: F811
    settings: Settings,
    store: CatalogStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = "/arbres.csv"
    url = commune.url(path)
    route = commune.routes[path] = Route(TREES.encode())
    folder = declare(settings, "arbres", {"type": "fichier", "url": url}, "quotidienne")
    assert pull_run(dags, settings, "2026-11-02T08:00:00Z")["state"] == "success"
    published, published_csv = store.current_release(SLUG), served_csv(store)

    # 500 forever: 4 attempts, a failed task, a French report naming the URL and the rule.
    route.fault = "statut:500"
    before = len(commune.requests_to(path))
    failed = pull_run(dags, settings, "2026-11-03T08:00:00Z")
    assert failed["state"] == "failed" and failed["pulls"] == {PULL: "failed"}, failed
    assert len(commune.requests_to(path)) - before == 4
    text = report(folder)
    assert ": refusee" in text and "la version précédente reste diffusée" in text
    assert "règle « erreur-serveur »" in text and url in text and "500" in text
    assert "après 4 tentative(s)" in text and "Échecs consécutifs : 1" in text
    assert "erreur-serveur" in failed["output"]  # the task failed with the report
    assert store.current_release(SLUG) == published and served_csv(store) == published_csv

    at(monkeypatch, "2026-11-03T08:30:00Z")
    data, page = health(store, monkeypatch)
    source = health_source(data)
    assert source["en_echec"] and source["etat"] == "source en échec"
    assert source["echecs_consecutifs"] == 1 and "500" in source["derniere_erreur"]
    assert source["point_de_livraison"] == f"fichier {url}"
    assert source["dernier_succes"] == "2026-11-02T08:00:00"
    assert source["derniere_verification"] == source["en_echec_depuis"] == "2026-11-03T08:00:00"
    assert [s["slug"] for s in data["sources_en_echec"]] == [SLUG]
    assert data["resume"]["sources_en_echec"] == 1
    assert "source en échec" in page and "03/11/2026 à 8 h 00 (UTC)" in page
    assert "le serveur a répondu 500" in page and "Sources en échec" in page

    # The governance DAG mails the commune, the data team in copy.
    told = dags.run("gouvernance", settings, "2026-11-03T08:30:00Z", **mailbox.env())
    assert told["state"] == "success", told
    mails = [m for m in mailbox.messages if "Source injoignable" in m["Subject"]]
    assert len(mails) == 1 and PRODUCER_MAIL in mails[0]["To"] and TEAM_MAIL in mails[0]["Cc"]
    assert url in mails[0].get_content()

    # An HTML page instead of data: a definitive answer, not retried.
    route.fault = "html"
    before = len(commune.requests_to(path))
    html = pull_run(dags, settings, "2026-11-03T09:00:00Z")
    assert html["state"] == "failed" and html["pulls"] == {PULL: "failed"}, html
    assert len(commune.requests_to(path)) - before == 1
    assert "règle « page-html »" in report(folder) and "page HTML" in report(folder)

    # Failing: the next try waits a growing delay (2 h after the second failure).
    asked = len(commune.seen)
    waiting = pull_run(dags, settings, "2026-11-03T10:00:00Z")
    assert waiting["pulls"] == {"pull_source[-1]": "skipped"} and len(commune.seen) == asked

    # A truncated body (fewer bytes than Content-Length): retried, then refused.
    route.fault = "tronque"
    before = len(commune.requests_to(path))
    cut = pull_run(dags, settings, "2026-11-03T11:00:00Z")
    assert cut["state"] == "failed" and cut["pulls"] == {PULL: "failed"}, cut
    assert len(commune.requests_to(path)) - before == 4
    text = report(folder)
    assert "règle « corps-tronque »" in text and "Échecs consécutifs : 3" in text
    assert store.current_release(SLUG) == published and served_csv(store) == published_csv
    assert store.source_state(SLUG).consecutive_failures == 3

    # The server recovers: the next due run succeeds and the failures are reset.
    route.fault = None
    back = pull_run(dags, settings, "2026-11-03T15:00:00Z")
    assert back["state"] == "success" and back["pulls"] == {PULL: "success"}, back
    assert ": confirmee" in report(folder)
    state = store.source_state(SLUG)
    assert state.consecutive_failures == 0 and state.last_error is None
    assert state.failing_since is None and state.last_success_at == datetime(2026, 11, 3, 15)
    assert len(store.releases(SLUG)) == 1
    at(monkeypatch, "2026-11-03T15:30:00Z")
    data, page = health(store, monkeypatch)
    source = health_source(data)
    assert not source["en_echec"] and source["etat"] == "source joignable"
    assert data["sources_en_echec"] == [] and "source en échec" not in page
    assert "Aucune : toutes les sources déclarées ont répondu" in page


def test_a_first_fetch_that_fails_is_listed_among_the_failing_sources(
    dags: DagDriver,  # noqa: F811
    commune: CommuneServer,  # noqa: F811
    settings: Settings,
    store: CatalogStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = commune.url("/absent.csv")  # 404: never published
    declare(settings, "arbres", {"type": "fichier", "url": url}, "quotidienne")
    failed = pull_run(dags, settings, "2026-11-02T08:00:00Z")
    assert failed["pulls"] == {PULL: "failed"}, failed
    assert store.get_dataset(SLUG) is None
    at(monkeypatch, "2026-11-02T09:00:00Z")
    data, page = health(store, monkeypatch)
    assert data["jeux_de_donnees"] == []
    (row,) = data["sources_en_echec"]
    assert (row["slug"], row["commune"], row["au_catalogue"]) == (SLUG, "ecully", False)
    assert row["dernier_succes"] is None and "404" in row["derniere_erreur"]
    assert "(jamais publié)" in page and "jamais" in page and url in page


# --- structure and endpoint changes without notice -------------------------------------------


def test_a_renamed_column_or_a_new_endpoint_without_notice_is_refused_old_version_kept(
    dags: DagDriver,  # noqa: F811
    commune: CommuneServer,  # noqa: F811
    settings: Settings,
    store: CatalogStore,
) -> None:
    route = commune.routes["/arbres.csv"] = Route(TREES.encode())
    first = {"type": "fichier", "url": commune.url("/arbres.csv")}
    folder = declare(settings, "arbres", first, "quotidienne")
    assert pull_run(dags, settings, "2026-11-02T08:00:00Z")["state"] == "success"
    published, published_csv = store.current_release(SLUG), served_csv(store)
    endpoint = store.source_state(SLUG).endpoint

    route.content = RENAMED.encode()  # « espece » renamed « essence » at the source
    renamed = pull_run(dags, settings, "2026-11-03T08:00:00Z")
    assert renamed["state"] == "failed" and renamed["pulls"] == {PULL: "failed"}, renamed
    text = report(folder)
    assert "règle « changement-cassant-sans-avis »" in text and "« espece »" in text
    assert "avis de changement" in text and "la version précédente reste diffusée" in text
    assert store.current_release(SLUG) == published and served_csv(store) == published_csv

    # The same data at another address of the commune's server: a new delivery endpoint.
    route.content = TREES.encode()
    commune.routes["/v2/arbres.csv"] = Route(TREES.encode())
    moved = {"type": "fichier", "url": commune.url("/v2/arbres.csv")}
    declare(settings, "arbres", moved, "quotidienne")
    refused = pull_run(dags, settings, "2026-11-04T08:00:00Z")
    assert refused["state"] == "failed" and refused["pulls"] == {PULL: "failed"}, refused
    assert [s.status for s in commune.requests_to("/v2/arbres.csv")] == [200]
    text = report(folder)
    assert "règle « changement-cassant-sans-avis »" in text and "point de livraison" in text
    assert commune.url("/v2/arbres.csv") in text and "30 jours" in text
    assert store.current_release(SLUG) == published and served_csv(store) == published_csv
    assert len(store.releases(SLUG)) == 1
    assert store.source_state(SLUG).endpoint == endpoint  # the accepted endpoint is kept


# --- the commune's GIS ------------------------------------------------------------------------


def test_a_wfs_layer_of_the_communes_gis_is_pulled_and_published_whole(
    dags: DagDriver,  # noqa: F811
    sig: tuple[str, Deployment],
    settings: Settings,
    store: CatalogStore,
) -> None:
    base, gis = sig
    source = {"type": "wfs", "url": f"{base}/wfs", "couche": f"ms:{BANCS}"}
    folder = declare(settings, "bancs-sig", source, "mensuelle")
    result = pull_run(dags, settings, "2026-11-02T08:00:00Z")
    assert result["state"] == "success" and result["pulls"] == {PULL: "success"}, result
    assert ": publiee" in report(folder)
    expected = gis.store.current_release(BANCS)
    pulled = store.current_release("ecully-bancs-sig")
    assert pulled.row_count == expected.row_count == 60
    assert store.source_state("ecully-bancs-sig").endpoint == f"wfs {base}/wfs couche=ms:{BANCS}"
    pulled_rows = csv_records(store.release_path(pulled, "csv"))
    expected_rows = csv_records(gis.store.release_path(expected, "csv"))
    assert sorted(int(r["id_banc"]) for r in pulled_rows) == list(range(1, 61))
    assert {(r["id_banc"], r["materiau"]) for r in pulled_rows} == {
        (r["id_banc"], r["materiau"]) for r in expected_rows
    }


def csv_records(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
