"""The OGC services follow the store's change log (issue #20), on both store backends: a
check with nothing new touches no service, a change rebuilds only its dataset's layer and
entry, and a publication or a withdrawal reaches the services at the next check."""

from __future__ import annotations

import shutil
from pathlib import Path

from catalog.ogc.layers import Entry, Layer
from catalog.ogc.services import ServicesRefresher
from catalog.store import CatalogStore
from core.settings import Settings
from pipelines.submission import Submission, run_submission

from backends import on_both_backends

pytest_plugins = ["backends"]  # the `backend` fixture: sqlite, postgis
settings, store = on_both_backends()

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "inbox"


class Recorder:
    """A service that keeps what it was given (the interface every OGC service has)."""

    def __init__(self) -> None:
        self.updates: list[tuple[list[Layer], list[Entry]]] = []

    def update(self, layers: list[Layer], entries: list[Entry]) -> None:
        self.updates.append((layers, entries))

    def mount(self, app: object) -> None:
        return None


def publish(settings: Settings, store: CatalogStore, producer: str, name: str) -> None:
    folder = settings.data_dir.parent / "depots" / name
    shutil.copytree(SAMPLES / producer / name, folder)
    data = next(p for p in folder.iterdir() if p.suffix not in (".yaml", ".json"))
    outcome = run_submission(
        Submission.new(producer, data, folder / "metadata.yaml", "test"), settings, store
    )
    assert outcome.status == "publiee", outcome.summary()


def test_services_follow_the_change_log_and_rebuild_only_what_changed(
    settings: Settings, store: CatalogStore
) -> None:
    publish(settings, store, "ecully", "bancs-publics")
    service = Recorder()
    refresher = ServicesRefresher(store, [service])
    assert refresher.refresh()
    (layers, entries) = service.updates[-1]
    assert [layer.name for layer in layers] == ["ecully-bancs-publics"]
    bancs = layers[0]

    assert not refresher.refresh()  # nothing new: no service called
    assert len(service.updates) == 1

    publish(settings, store, "lyon", "fontaines-eau-potable")
    assert refresher.refresh()
    layers, entries = service.updates[-1]
    assert {entry.slug for entry in entries} == {
        "ecully-bancs-publics",
        "lyon-fontaines-eau-potable",
    }
    assert next(layer for layer in layers if layer.name == "ecully-bancs-publics") is bancs

    store.set_status("ecully-bancs-publics", "depublie")
    assert refresher.refresh()
    layers, entries = service.updates[-1]
    assert "ecully-bancs-publics" not in {layer.name for layer in layers}
    assert "ecully-bancs-publics" not in {entry.slug for entry in entries}


def test_the_change_log_numbers_each_change_after_the_last_one_read(
    settings: Settings, store: CatalogStore
) -> None:
    publish(settings, store, "ecully", "bancs-publics")
    seen = store.changes(0)
    assert [slug for _, slug in seen] == ["ecully-bancs-publics"]
    store.set_status("ecully-bancs-publics", "depublie")
    after = store.changes(seen[-1][0])
    assert [slug for _, slug in after] == ["ecully-bancs-publics"]
    assert after[0][0] > seen[-1][0]
    assert store.changes(after[-1][0]) == []
