"""Shared fixtures: an isolated embedded deployment (data, inbox, SQLite store) per test.

Under pytest-xdist (`scripts/test.sh`) each module runs whole on one worker, so a costly
module fixture (a published deployment, Chromium, an Airflow home) is built once; only the
modules of `ONE_BY_ONE` (long tests, cheap fixtures) are spread test by test
(`ModuleScheduling`). What the workers share is named per worker: PostgreSQL databases
and ports are drawn at random, Redis databases come from `redis_database()`. Tests that
use a `browser` fixture are marked `browser`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from xdist.scheduler import LoadFileScheduling

from catalog import site
from catalog.store import CatalogStore
from catalog.web.app import create_app
from core.settings import (
    DEFAULT_PUBLIC_URL,
    PROJECT_ROOT,
    PUBLIC_URL_VARIABLE,
    Settings,
    load_settings,
)
from pipelines.submission import Outcome, Submission, open_settings_store, run_submission

SAMPLES = PROJECT_ROOT / "samples"


def worker_number() -> int:
    """0 for a serial run or xdist's first worker (gw0), 1 for gw1, and so on."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw") or 0)


def redis_database(first: int) -> int:
    """A Redis database number of this worker's own, from `first` up (16 databases)."""
    return (first + worker_number()) % 16


# Modules whose tests are each long (whole Airflow runs) and whose module fixtures are
# cheap: xdist sends their tests one by one instead of the module whole.
ONE_BY_ONE = {"tests/test_dags.py", "tests/test_cli.py"}


class ModuleScheduling(LoadFileScheduling):
    """xdist's `loadfile` distribution, except for the modules of `ONE_BY_ONE`."""

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        return nodeid if module in ONE_BY_ONE else module


@pytest.hookimpl(tryfirst=True)  # before xdist's own choice from --dist
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadFileScheduling | None:
    return ModuleScheduling(config, log) if config.getvalue("dist") == "loadfile" else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "browser" in item.fixturenames:
            item.add_marker(pytest.mark.browser)


def _load_personal_sample():
    spec = importlib.util.spec_from_file_location("personal_sample", SAMPLES / "personal_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The generator of fictitious personal data (samples/personal_sample.py).
personal_sample = _load_personal_sample()

TEMPLATE_MODIFIED = "2026-10-01"  # the template's date of last update
METADATA_TEMPLATE = """\
titre: Arbres d'alignement
description: Arbres plantés le long des voies communales, avec leur espèce et leur hauteur.
licence: {licence}
frequence: annuelle
modalites_livraison: Dépôt annuel du fichier par le service des espaces verts.
date_mise_a_jour: 2026-10-01
mots_cles: [arbres, nature]
theme: ENVI
contact: {{nom: Service espaces verts, email: espaces-verts@mairie-ecully.fr}}
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("OPENDATA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OPENDATA_INBOX_DIR", str(tmp_path / "inbox"))
    return load_settings()


@pytest.fixture
def store(settings: Settings) -> CatalogStore:
    return open_settings_store(settings)


@pytest.fixture
def submit(settings: Settings, store: CatalogStore) -> Callable[..., Outcome]:
    """Submit a data file with its metadata through the whole pipeline, in process."""

    def run(data: Path, metadata: Path, producer: str = "ecully") -> Outcome:
        submission = Submission.new(producer, data, metadata, "ligne-de-commande")
        return run_submission(submission, settings, store)

    return run


def write_submission(
    folder: Path,
    filename: str,
    content: str | bytes,
    *,
    encoding: str = "utf-8",
    licence: str = "etalab-2.0",
    extra_metadata: str = "",
    schema: str | None = None,
    modified: str | None = None,
) -> Path:
    """A submission folder: a data file (text or bytes) and its metadata; the data's path.
    `modified`: the producer's date of last update (`date_mise_a_jour`, ISO), when not the
    template's."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    data = content if isinstance(content, bytes) else content.encode(encoding)
    (folder / filename).write_bytes(data)
    metadata = METADATA_TEMPLATE.format(licence=licence) + extra_metadata
    if modified is not None:
        metadata = metadata.replace(
            f"date_mise_a_jour: {TEMPLATE_MODIFIED}", f"date_mise_a_jour: {modified}"
        )
    if schema is not None:
        (folder / "schema.json").write_text(schema, encoding="utf-8")
        metadata += "schema: schema.json\n"
    (folder / "metadata.yaml").write_text(metadata, encoding="utf-8")
    return folder / filename


@pytest.fixture
def dataset_folder(tmp_path: Path) -> Callable[..., Path]:
    """Write a submission folder named `name` (the dataset's identifier)."""

    def make(filename: str, content: str | bytes, *, name: str = "arbres", **options) -> Path:
        return write_submission(tmp_path / "submissions" / name, filename, content, **options)

    return make


@contextmanager
def running_catalog(store: CatalogStore) -> Iterator[str]:
    """The catalog service run by uvicorn on a free loopback port; yields its base URL."""
    with serving(create_app(store)) as base:
        yield base


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """An application run by uvicorn on a free loopback port; yields its base URL.

    A catalog application left on the default public URL (OPENDATA_PUBLIC_URL unset, no
    `public_url` given) gets the address served, as `opendata servir` does."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    state = getattr(app, "state", None)
    if getattr(state, "public_url", None) == DEFAULT_PUBLIC_URL and not os.environ.get(
        PUBLIC_URL_VARIABLE
    ):
        site.install(app, f"http://127.0.0.1:{port}")
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)  # let the app's shutdown (statistics flush) finish before moving on
        assert not thread.is_alive(), "the server did not stop"


class Deployment:
    """An embedded deployment of its own (data folder, SQLite store), for module fixtures."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._patch = pytest.MonkeyPatch()
        self._patch.setenv("OPENDATA_DATA_DIR", str(root / "data"))
        self.settings = load_settings()
        self.store = open_settings_store(self.settings)

    def publish(self, data: Path, producer: str = "ecully") -> Outcome:
        submission = Submission.new(producer, data, data.parent / "metadata.yaml", "test")
        outcome = run_submission(submission, self.settings, self.store)
        assert outcome.status == "publiee", outcome.summary()
        return outcome

    def publish_sample(self, folder: Path) -> Outcome:
        data = next(p for p in folder.iterdir() if p.name not in {"metadata.yaml", "schema.json"})
        return self.publish(data, producer=folder.parent.name)

    def close(self) -> None:
        self._patch.undo()


@contextmanager
def deployment(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Deployment]:
    created = Deployment(tmp_path_factory.mktemp(name))
    try:
        yield created
    finally:
        created.close()
