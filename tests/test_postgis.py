"""The store, the pipeline and the API on both backends (SQLite and PostGIS), and what
PostGIS adds: one table per structure version with a spatial index, the alias view, COPY
loads in the switch's transaction, Alembic migrations, and GDAL reading the view."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient

from catalog import rows
from catalog.store import open_store, postgis, rows_copy
from catalog.store.sql import SqlCatalogStore
from catalog.store.tables import datasets_table
from catalog.web.app import create_app
from catalog.web.views import published_schema
from core import clock
from core.records import ChangeNotice, NewRelease, Release, SourceState, SubmissionRecord
from core.settings import PROJECT_ROOT
from pipelines.submission import Outcome, Submission, run_submission

from conftest import write_submission

if TYPE_CHECKING:
    from backends import Backend

pytest_plugins = ["backends"]  # the `backend` fixture: sqlite, postgis

SAMPLE = PROJECT_ROOT / "samples" / "inbox" / "ecully" / "bancs-publics"
SLUG = "ecully-bancs-publics"
SAMPLE_ROWS = 60


def submit_sample(backend: Backend, tmp_path: Path, keep: int | None = None) -> Outcome:
    """The Écully benches sample, with only its first `keep` features when given."""
    folder = tmp_path / "depot" / "bancs-publics"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(SAMPLE, folder)
    data = folder / "bancs-publics.geojson"
    if keep is not None:
        collection = json.loads(data.read_text(encoding="utf-8"))
        collection["features"] = collection["features"][:keep]
        data.write_text(json.dumps(collection), encoding="utf-8")
    submission = Submission.new("ecully", data, folder / "metadata.yaml", "test")
    return run_submission(submission, backend.settings, backend.store)


def scalar(backend: Backend, query: str, **params: object) -> object:
    with backend.engine.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


def served_rows(backend: Backend, relation: str) -> int:
    return scalar(backend, f'SELECT count(*) FROM donnees."{relation}"')  # type: ignore[return-value]


def view_version(backend: Backend) -> str:
    return scalar(  # type: ignore[return-value]
        backend, "SELECT pg_get_viewdef(CAST(:v AS regclass))", v=f'donnees."{SLUG}"'
    )


# --- store and pipeline, both backends ---------------------------------------------------------


def test_open_store_follows_the_url(backend: Backend) -> None:
    expected = postgis.PostgisCatalogStore if backend.name == "postgis" else SqlCatalogStore
    assert type(backend.store) is expected


def test_sample_published_with_its_current_release(backend: Backend, tmp_path: Path) -> None:
    outcome = submit_sample(backend, tmp_path)
    assert outcome.status == "publiee", outcome.summary()
    release = backend.store.current_release(SLUG)
    assert release is not None and release.id == outcome.release
    assert release.row_count == SAMPLE_ROWS
    assert [v.version for v in backend.store.structure_versions(SLUG)] == [1]
    assert [d.slug for d in backend.store.list_datasets()] == [SLUG]
    assert backend.store.current_releases()[SLUG].id == release.id
    assert backend.store.release_path(release, "parquet").is_file()
    if backend.name == "postgis":
        assert served_rows(backend, f"{SLUG}__v1") == SAMPLE_ROWS
        assert served_rows(backend, SLUG) == SAMPLE_ROWS
        assert list(postgis.data_tables(backend.engine)) == [f"{SLUG}__v1"]
        index = scalar(
            backend,
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'donnees' AND tablename = :t"
            " AND indexdef LIKE '%gist%'",
            t=f"{SLUG}__v1",
        )
        assert index is not None and "(geometry)" in str(index)
        srid = scalar(backend, f'SELECT DISTINCT ST_SRID(geometry) FROM donnees."{SLUG}"')
        assert srid == 3946


def test_new_release_replaces_the_rows(backend: Backend, tmp_path: Path) -> None:
    first = submit_sample(backend, tmp_path)
    second = submit_sample(backend, tmp_path, keep=50)
    assert second.status == "publiee" and second.release != first.release
    assert backend.store.current_release(SLUG).row_count == 50
    assert [r.id for r in backend.store.releases(SLUG)] == [first.release, second.release]
    if backend.name == "postgis":
        assert served_rows(backend, SLUG) == 50
        # the loading table was renamed in place: no leftover, one table per version
        assert list(postgis.data_tables(backend.engine)) == [f"{SLUG}__v1"]


def test_same_content_is_a_confirmation(backend: Backend, tmp_path: Path) -> None:
    first = submit_sample(backend, tmp_path)
    again = submit_sample(backend, tmp_path)
    assert again.status == "confirmee"
    assert [r.id for r in backend.store.releases(SLUG)] == [first.release]
    statuses = [s.status for s in backend.store.submissions("ecully")]
    assert statuses == ["publiee", "confirmee"]
    if backend.name == "postgis":
        assert served_rows(backend, SLUG) == SAMPLE_ROWS


def test_failed_switch_leaves_the_previous_release_served(
    backend: Backend,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = submit_sample(backend, tmp_path)
    switch = type(backend.store)._switch

    def failing(self, conn, *args) -> None:  # noqa: ANN001
        switch(self, conn, *args)  # everything done, PostGIS load included…
        raise RuntimeError("panne simulée")  # …then the transaction fails

    monkeypatch.setattr(type(backend.store), "_switch", failing)
    with pytest.raises(RuntimeError, match="panne simulée"):
        submit_sample(backend, tmp_path, keep=50)
    current = backend.store.current_release(SLUG)
    assert current.id == first.release and current.row_count == SAMPLE_ROWS
    assert [r.id for r in backend.store.releases(SLUG)] == [first.release]
    assert sorted(p.name for p in (backend.settings.files_dir / SLUG).iterdir()) == [first.release]
    if backend.name == "postgis":
        assert served_rows(backend, SLUG) == SAMPLE_ROWS
        assert list(postgis.data_tables(backend.engine)) == [f"{SLUG}__v1"]


def test_structure_versions_and_alias(backend: Backend, tmp_path: Path) -> None:
    """A v2 (after a notice) becomes the alias; v1 fed later stays beside it."""
    submit_sample(backend, tmp_path)
    store = backend.store
    old = store.current_release(SLUG)
    structure = store.structure_versions(SLUG)[0].structure
    v2 = store.publish(_again(backend, old, 2, structure), _staged(backend, old), _record())
    assert [v.version for v in store.structure_versions(SLUG)] == [1, 2]
    assert store.get_dataset(SLUG).current_version == 2
    assert store.current_release(SLUG).id == v2.id
    assert store.current_release(SLUG, 1).id == old.id
    fed = store.publish(_again(backend, old, 1, structure), _staged(backend, old), _record())
    assert store.current_release(SLUG, 1).id == fed.id
    assert store.current_release(SLUG).id == v2.id  # an older version leaves the alias
    if backend.name == "postgis":
        assert list(postgis.data_tables(backend.engine)) == [f"{SLUG}__v1", f"{SLUG}__v2"]
        assert f"{SLUG}__v2" in view_version(backend)
        assert served_rows(backend, SLUG) == served_rows(backend, f"{SLUG}__v1") == SAMPLE_ROWS


def _staged(backend: Backend, release: Release) -> Path:
    staged = backend.store.staging_dir()
    for distribution in release.distributions:
        shutil.copy(backend.store.release_path(release, distribution.format), staged)
    return staged


def _again(
    backend: Backend,
    release: Release,
    version: int,
    structure: dict,
) -> NewRelease:
    dataset = backend.store.get_dataset(SLUG)
    return NewRelease(
        dataset=SLUG,
        producer="ecully",
        content_hash=f"{version}{release.content_hash}"[:64],
        row_count=release.row_count,
        distributions=release.distributions,
        metadata=dataset.metadata,
        licence=dataset.licence,
        structure=structure,
        structure_version=version,
    )


def _record() -> SubmissionRecord:
    return SubmissionRecord(
        id=uuid.uuid4().hex,
        producer="ecully",
        dataset=SLUG,
        channel="test",
        received_at=clock.now(),
        status="publiee",
        release=None,
    )


def test_lifecycle_records_round_trip(backend: Backend, tmp_path: Path) -> None:
    submit_sample(backend, tmp_path)
    store = backend.store
    subscription = store.add_subscription("https://exemple.fr/hook", SLUG)
    event = store.record_event(SLUG, "publication", "Publié", {"version": 1}, key="test-k1")
    assert event is not None and event.id is not None
    assert store.record_event(SLUG, "publication", "Publié", {}, key="test-k1") is None
    newest = store.events(SLUG)[0]
    assert (newest.id, newest.title, newest.details) == (event.id, "Publié", {"version": 1})
    notice = ChangeNotice(
        id="avis-1",
        dataset=SLUG,
        from_version=1,
        structure={"fields": []},
        effective_date=date.today() + timedelta(days=31),
        description="Renommage d'une colonne.",
        mapping={"etat": {"colonne": "etat_constate"}},
        announced_at=clock.now(),
    )
    store.add_notice(notice)
    store.mark_notice("avis-1", switched_at=clock.now())
    (stored,) = store.notices(SLUG)
    assert stored.mapping == notice.mapping and stored.switched_at is not None
    later = clock.now() + timedelta(hours=1)
    due = [(e.id, s.id, n) for e, s, n in store.due_deliveries(later, max_attempts=5)]
    assert (event.id, subscription.id, 0) in due
    store.record_delivery(
        event.id, subscription.id, delivered=True, error=None, next_attempt_at=None
    )
    assert event.id not in [e.id for e, _, _ in store.due_deliveries(later, max_attempts=5)]
    store.add_usage({(SLUG, date.today(), "api"): 2})
    store.add_usage({(SLUG, date.today(), "api"): 3})
    assert store.usage([SLUG], date.today()) == [(SLUG, date.today(), "api", 5)]
    assert not store.mail_sent("m1")
    store.record_mail("m1", ["a@exemple.fr"], "Objet")
    assert store.mail_sent("m1")
    state = SourceState(
        dataset=SLUG, endpoint="https://exemple.fr/bancs.geojson", consecutive_failures=0
    )
    store.record_source_check(SLUG, state)
    store.record_source_check(SLUG, replace(state, consecutive_failures=2))
    assert store.source_state(SLUG).consecutive_failures == 2
    store.set_status(SLUG, "depublie")
    assert store.get_dataset(SLUG).status == "depublie"


def test_api_serves_the_dataset_and_its_rows(backend: Backend, tmp_path: Path) -> None:
    submit_sample(backend, tmp_path)
    with TestClient(create_app(backend.store, services=[])) as client:
        listing = client.get("/api/datasets").json()
        assert [d["slug"] for d in listing["jeux_de_donnees"]] == [SLUG]
        detail = client.get(f"/api/datasets/{SLUG}").json()
        assert detail["systeme_coordonnees"] == "EPSG:3946"
        rows = client.get(f"/api/datasets/{SLUG}/rows", params={"_total": 1}).json()
        assert rows["total"] == SAMPLE_ROWS
        geojson = client.get(f"/api/datasets/{SLUG}/download/geojson").json()
        assert len(geojson["features"]) == SAMPLE_ROWS


def test_rows_follow_every_change_of_the_catalogue_made_elsewhere(
    backend: Backend, tmp_path: Path
) -> None:
    """The rows API keeps its look-ups of a release from request to request (issue #20);
    a change another process makes (here another store on the same database) shows at the
    next request: depublished, its rows stop; restricted, an anonymous caller gets a 404;
    a new release is served at once."""
    submit_sample(backend, tmp_path)
    elsewhere = open_store(backend.settings.store_url, backend.settings.files_dir)
    url = f"/api/datasets/{SLUG}/rows"
    try:
        with TestClient(create_app(backend.store, services=[])) as client:
            assert client.get(url, params={"_total": 1}).json()["total"] == SAMPLE_ROWS
            elsewhere.set_status(SLUG, "depublie")
            assert client.get(url).status_code == 410
            elsewhere.set_status(SLUG, "publie")
            assert client.get(url, params={"_total": 1}).json()["total"] == SAMPLE_ROWS
            metadata = elsewhere.get_dataset(SLUG).metadata
            with elsewhere.engine.begin() as conn:  # as any writer would: the triggers tell
                conn.execute(
                    datasets_table.update()
                    .where(datasets_table.c.slug == SLUG)
                    .values(metadata={**metadata, "access": "restreint"})
                )
            assert client.get(url).status_code == 404
            with elsewhere.engine.begin() as conn:
                conn.execute(
                    datasets_table.update()
                    .where(datasets_table.c.slug == SLUG)
                    .values(metadata=metadata)
                )
            assert client.get(url).status_code == 200
            submit_sample(backend, tmp_path, keep=50)  # a new release of the same structure
            assert client.get(url, params={"_total": 1}).json()["total"] == 50
            assert len(client.get(url, params={"_taille": 1000}).json()["lignes"]) == 50
    finally:
        elsewhere.close()


# --- PostGIS only ------------------------------------------------------------------------------


@pytest.fixture
def on_postgis(backend: Backend) -> Backend:
    return backend


postgis_only = pytest.mark.parametrize("backend", ["postgis"], indirect=True)


@postgis_only
@pytest.mark.parametrize("step", ["_csv_chunk", "replace_alias_view"])
def test_failed_load_leaves_the_previous_data(
    on_postgis: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """The COPY failing midway, or the view failing after the table was replaced."""
    first = submit_sample(on_postgis, tmp_path)

    def broken(*args, **kwargs) -> None:  # noqa: ANN002, ANN003
        raise OSError("chargement interrompu")

    monkeypatch.setattr(postgis, step, broken)
    with pytest.raises(OSError, match="chargement interrompu"):
        submit_sample(on_postgis, tmp_path, keep=50)
    assert on_postgis.store.current_release(SLUG).id == first.release
    assert served_rows(on_postgis, SLUG) == SAMPLE_ROWS
    assert list(postgis.data_tables(on_postgis.engine)) == [f"{SLUG}__v1"]


@postgis_only
def test_migrations_create_the_store_tables(on_postgis: Backend) -> None:
    with on_postgis.engine.connect() as conn:
        context = MigrationContext.configure(conn)
        assert context.get_current_revision() == "0007"  # the catalog's generation
        diff = compare_metadata(context, datasets_table.metadata)
    assert [d for d in diff if d[0] != "remove_table"] == []
    # opening again is a no-op (the revision is already the head)
    reopened = open_store(on_postgis.settings.store_url, on_postgis.settings.files_dir)
    reopened.engine.dispose()


@postgis_only
def test_gdal_reads_the_alias_view(on_postgis: Backend, tmp_path: Path) -> None:
    submit_sample(on_postgis, tmp_path)
    summary = subprocess.run(
        ["ogrinfo", "-ro", "-so", on_postgis.ogr_source(), f"donnees.{SLUG}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert f"Feature Count: {SAMPLE_ROWS}" in summary
    assert "3946" in summary
    exported = tmp_path / "export.geojson"
    subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", str(exported), on_postgis.ogr_source(), f"donnees.{SLUG}"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert len(json.loads(exported.read_text())["features"]) == SAMPLE_ROWS


@postgis_only
def test_datetime_columns_are_paged_from_postgis_as_the_copy_pages_them(
    on_postgis: Backend, tmp_path: Path
) -> None:
    folder = tmp_path / "depot" / "releves"
    lines = ["id;horodatage;valeur"]
    moments = ["2026-03-01T08:00:00", "2026-03-01T08:00:01", "2025-12-31T23:59:59", ""]
    lines += [f"{i};{moments[i % 4]};{i * 1.5}" for i in range(1, 41)]
    write_submission(
        folder,
        "releves.csv",
        "\r\n".join(lines) + "\r\n",
        schema=json.dumps(
            {
                "fields": [
                    {"name": "id", "type": "integer"},
                    {"name": "horodatage", "type": "datetime"},
                    {"name": "valeur", "type": "number"},
                ]
            }
        ),
    )
    submission = Submission.new("ecully", folder / "releves.csv", folder / "metadata.yaml", "test")
    outcome = run_submission(submission, on_postgis.settings, on_postgis.store)
    assert outcome.status == "publiee", outcome.summary()
    slug = "ecully-releves"
    release = on_postgis.store.current_release(slug)
    schema = published_schema(on_postgis.store, release)
    copy = rows.rows_database(on_postgis.store.release_path(release, "parquet"), schema)
    for query in (
        rows.RowQuery(sort="horodatage", size=7),
        rows.RowQuery(sort="-horodatage", size=6),
        rows.RowQuery(filters=[("horodatage__gte", "2026-03-01T08:00:01")], total=True),
    ):
        cursor, pages = None, 0
        while True:
            page = rows.run_postgis(
                on_postgis.engine, release, schema, replace(query, cursor=cursor)
            )
            reference = rows.run(copy, schema, replace(query, cursor=cursor))
            assert page is not None, query  # answered by PostGIS, not the copy
            assert (page.rows, page.next_cursor, page.total) == (
                reference.rows,
                reference.next_cursor,
                reference.total,
            ), query
            cursor, pages = page.next_cursor, pages + 1
            if cursor is None:
                break
        assert pages >= 1


def test_the_rows_copy_is_written_at_publication_on_both_backends(
    backend: Backend, tmp_path: Path
) -> None:
    """On PostGIS too (text search and the types PostgreSQL cannot match exactly are
    answered by the copy): no rows request waits for it."""
    assert submit_sample(backend, tmp_path).status == "publiee"
    release = backend.store.current_release(SLUG)
    assert release is not None
    copy = rows_copy.copy_path(backend.store.release_path(release, "parquet"))
    assert copy.is_file()
    schema = published_schema(backend.store, release)
    page = rows.run(copy, schema, rows.RowQuery(size=3))
    assert len(page.rows) == 3 and page.geometries and page.geometries[0].startswith("{")
