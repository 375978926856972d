"""A publication killed at any stage never damages what is served (issue #9).

The real `opendata soumettre` (and `opendata traiter-depots`) runs in a subprocess through the
wrapper at the bottom of this file: it instruments the stage boundaries (read, validate,
anonymise, publish, the files staged, inside the switch's transaction, after the switch,
after the lifecycle events), writes a marker when the chosen one is reached and pauses
there. The test then kills the process with a real SIGKILL and reads the catalog through
its running HTTP service: before the switch commits, the previous version is still served
byte for byte (download and rows API); after it, the new one is served whole. A rerun of
the same command then completes.

    python tests/test_fault_injection.py <stage> <marker file> <opendata arguments…>
"""

from __future__ import annotations

import functools
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

STAGES = (
    "avant-lecture",
    "avant-validation",
    "avant-anonymisation",
    "avant-publication",
    "fichiers-prepares",  # every distribution written in the staging folder
    "bascule-en-cours",  # inside the switch's transaction, before it commits
    "apres-bascule",  # committed; the lifecycle events not yet recorded
    "apres-evenements",  # events recorded; the old structure not yet fed
)
BEFORE_THE_SWITCH = STAGES[:6]
AFTER_THE_SWITCH = STAGES[6:]
SLUG = "ecully-compteurs"
ROWS = 3000
STAGE_TIMEOUT = 60


# --- the wrapper, run as a script in the killed process ---------------------------------------


def pause_at(stage: str, marker: Path) -> None:
    """Tell the test where the process stands, then wait for the SIGKILL."""
    marker.write_text(f"{stage} {os.getpid()}\n", encoding="utf-8")
    while True:
        time.sleep(1)


def instrumented(function: Callable[..., Any], stage: str, stop: str, marker: Path) -> Any:
    """`function`, pausing before it runs when `stage` is where to stop."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if stage == stop:
            pause_at(stage, marker)
        return function(*args, **kwargs)

    return wrapper


def in_transaction(function: Callable[..., Any], stop: str, marker: Path) -> Any:
    """The switch's statements run, then a pause before the transaction commits."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        if stop == "bascule-en-cours":
            pause_at("bascule-en-cours", marker)
        return result

    return wrapper


def run_instrumented(stop: str, marker: Path, arguments: list[str]) -> int:
    from catalog.store import sql as store
    from opendata import cli
    from pipelines import lifecycle, submission

    for stage, module, name in (
        ("avant-lecture", submission, "stage_read"),
        ("avant-validation", submission, "stage_structure"),
        ("avant-anonymisation", submission, "stage_anonymise"),
        ("avant-publication", submission, "stage_publish"),
        ("fichiers-prepares", store.SqlCatalogStore, "publish"),
        ("apres-bascule", lifecycle, "after_publication"),
        ("apres-evenements", lifecycle, "feed_old_structure"),
    ):
        setattr(module, name, instrumented(getattr(module, name), stage, stop, marker))
    store.SqlCatalogStore._switch = in_transaction(store.SqlCatalogStore._switch, stop, marker)
    return cli.main(arguments)


# --- the tests --------------------------------------------------------------------------------


def counts_csv(variant: int) -> str:
    """A counting-station file; `variant` changes every count, so every content differs."""
    lines = ["id,station,passages"]
    lines += [f"{n},station-{n % 37},{(n * 7 + variant * 13) % 1000}" for n in range(ROWS)]
    return "\r\n".join(lines) + "\r\n"


METADATA = """\
titre: Compteurs de passages
description: Passages comptés par station, chaque jour.
licence: etalab-2.0
frequence: quotidienne
modalites_livraison: Dépôt quotidien du fichier par le service mobilités.
date_mise_a_jour: 2026-10-01
mots_cles: [comptages, mobilité]
theme: TRAN
contact: {nom: Service mobilités, email: mobilites@mairie-ecully.fr}
"""


class Platform:
    """A deployment, its catalog served over HTTP, and the commands a commune runs."""

    def __init__(self, root: Path, base: str, store: Any) -> None:
        self.root = root
        self.base = base
        self.store = store
        self.environment = {**os.environ, "OPENDATA_DATA_DIR": str(root / "data")}
        self.environment["OPENDATA_INBOX_DIR"] = str(root / "inbox")

    def submission(self, variant: int, folder: Path | None = None) -> list[str]:
        folder = folder or self.root / "depots" / f"v{variant}" / "compteurs"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "compteurs.csv").write_text(counts_csv(variant), encoding="utf-8")
        (folder / "metadata.yaml").write_text(METADATA, encoding="utf-8")
        data, metadata = folder / "compteurs.csv", folder / "metadata.yaml"
        return ["soumettre", str(data), "--producteur", "ecully", "--metadonnees", str(metadata)]

    def kill_at(self, stage: str, arguments: list[str]) -> None:
        marker = self.root / f"marqueur-{stage}"
        marker.unlink(missing_ok=True)
        script = Path(__file__).resolve()
        process = subprocess.Popen(
            [sys.executable, str(script), stage, str(marker), *arguments],
            env=self.environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + STAGE_TIMEOUT
        while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not marker.exists():
            process.kill()
            output = process.communicate()[0].decode(errors="replace")
            raise AssertionError(f"{stage} never reached: {output[-2000:]}")
        assert marker.read_text().split()[0] == stage
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(30) == -signal.SIGKILL
        process.stdout.close()

    def rerun(self, arguments: list[str]) -> str:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "opendata"), *arguments],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def served(self) -> dict[str, str]:
        """What reusers get now, as checksums: the CSV download and a page of rows."""
        download = requests.get(f"{self.base}/api/datasets/{SLUG}/download/csv", timeout=60)
        rows = requests.get(
            f"{self.base}/api/datasets/{SLUG}/rows",
            params={"_taille": 1000, "_tri": "-id", "_total": 1},
            timeout=60,
        )
        assert download.status_code == 200 and rows.status_code == 200
        return {
            "telechargement": hashlib.sha256(download.content).hexdigest(),
            "lignes": hashlib.sha256(rows.content).hexdigest(),
            "version": download.headers["x-version"],
            "total": str(rows.json()["total"]),
            "premiere_ligne": str(rows.json()["lignes"][0]),
        }

    def check_integrity(self) -> None:
        """The SQLite catalog is sound, and the served CSV is the release's, byte for byte."""
        with sqlite3.connect(self.root / "data" / "catalog.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        release = self.store.current_release(SLUG)
        assert self.served()["telechargement"] == release.content_hash
        assert self.served()["version"] == release.id


def first_row(variant: int) -> str:
    n = ROWS - 1
    return str({"id": n, "station": f"station-{n % 37}", "passages": (n * 7 + variant * 13) % 1000})


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    from catalog.web.app import create_app

    from conftest import deployment, serving

    with (
        deployment(tmp_path_factory, "pannes") as deployed,
        serving(create_app(deployed.store, services=[])) as base,
    ):
        platform = Platform(deployed.root, base, deployed.store)
        assert "publié" in platform.rerun(platform.submission(0))
        yield platform


@pytest.mark.slow
def test_killed_before_the_switch_the_previous_version_stays_served(platform: Platform) -> None:
    previous = platform.served()
    assert previous["premiere_ligne"] == first_row(0)
    arguments = platform.submission(1)
    for stage in BEFORE_THE_SWITCH:
        platform.kill_at(stage, arguments)
        assert platform.served() == previous, stage
        platform.check_integrity()
    assert "publié" in platform.rerun(arguments)
    now = platform.served()
    assert now["version"] != previous["version"] and now["premiere_ligne"] == first_row(1)
    assert now["total"] == str(ROWS)
    platform.check_integrity()


@pytest.mark.parametrize("stage", AFTER_THE_SWITCH)
def test_killed_after_the_switch_the_new_version_is_served_whole(
    platform: Platform, stage: str
) -> None:
    variant = 2 + AFTER_THE_SWITCH.index(stage)
    previous = platform.served()
    arguments = platform.submission(variant)
    platform.kill_at(stage, arguments)
    now = platform.served()
    assert now["version"] != previous["version"] and now["premiere_ligne"] == first_row(variant)
    platform.check_integrity()
    assert "Contenu identique" in platform.rerun(arguments)  # it confirms, publishes nothing
    assert platform.served() == now
    platform.check_integrity()


def test_a_drop_folder_killed_in_the_switch_is_processed_again(platform: Platform) -> None:
    previous = platform.served()
    inbox = platform.root / "inbox" / "ecully" / "compteurs"
    platform.submission(9, folder=inbox)
    platform.kill_at("bascule-en-cours", ["traiter-depots", "--producteur", "ecully"])
    assert platform.served() == previous
    platform.check_integrity()
    assert (inbox / "compteurs.csv").exists()  # still waiting in the drop folder
    output = platform.rerun(["traiter-depots", "--producteur", "ecully"])
    assert "publié" in output
    assert platform.served()["premiere_ligne"] == first_row(9)
    assert not (inbox / "compteurs.csv").exists() and (inbox / "rapport.txt").exists()
    platform.check_integrity()


def test_a_release_switched_in_before_the_kill_is_announced(platform: Platform) -> None:
    arguments = platform.submission(10)
    platform.kill_at("apres-bascule", arguments)
    platform.rerun(arguments)
    announced = {e.details.get("version") for e in platform.store.events(SLUG, limit=1000)}
    served = {r.id for r in platform.store.releases(SLUG)}
    assert served <= announced


if __name__ == "__main__":
    sys.exit(run_instrumented(sys.argv[1], Path(sys.argv[2]), sys.argv[3:]))
