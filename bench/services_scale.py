"""The OGC services at catalogue scale (issue #20): 100, 1,000 and 10,000 datasets.

`measure_services(store_url, files_dir)` serves a store's catalogue as the catalog does
(uvicorn, the OGC services resident, their refresher running) and measures, medians of
repeated requests:

- GetCapabilities of WMS 1.3.0, WFS 2.0.0 and CSW 2.0.2: time and size;
- a GetMap of one layer (256 × 256 PNG);
- the first page of `/ogc/collections` (JSON): time and size;
- the refresher's check when nothing changed (what each worker pays every two seconds);
- from `store.publish` of a new dataset to it being listed by WMS, WFS, OGC API and CSW.

`bench/scale.py` imports `measure_services`; importing this module does nothing.
`python bench/services_scale.py [--counts 100,1000,10000] [--folder DIR]` builds each
catalogue (`bench_catalogue.build_catalogue`), measures it and prints the growth of each
figure from the smallest catalogue.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

REPEATS = 15
REFERENCE_UP_TO = 1000
VISIBLE_TIMEOUT = 120.0  # seconds a new release may take to appear before giving up
POLL = 0.1


def measure_services(store_url: str, files_dir: Path, reference: bool = True) -> dict[str, Any]:
    """The services' figures on the catalogue of this store (see the module's doc); with
    `reference`, also the time MapServer takes to write the capabilities of the whole map
    file (what every GetCapabilities cost before issue #20), once."""
    import requests
    import uvicorn

    from catalog.ogc.layers import published_datasets
    from catalog.store import open_store
    from catalog.web.app import create_app
    from catalog.web.registry import ogc_services

    store = open_store(store_url, files_dir)
    derive_layer_files(store)
    services_dir = files_dir.parent / f"services-bench-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    app = create_app(store, producers={}, services=ogc_services(services_dir), public_url=base)
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", workers=1))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    session = requests.Session()
    try:
        _wait_until(lambda: _ok(session, f"{base}/ogc"), 3600)
        # the CSW repository is built in the background of the first refresh's services
        _wait_until(lambda: _ok(session, f"{base}/csw?service=CSW&request=GetCapabilities"), 3600)
        figures: dict[str, Any] = {
            "datasets": len(published_datasets(store)),
            "startup_s": time.perf_counter() - started,
        }
        layer = _a_layer(session, base)
        figures["layers"] = _count(session, f"{base}/ogc/collections?f=json&limit=1")
        requests_ = {
            "wms_capabilities": f"{base}/wms?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0",
            "wfs_capabilities": f"{base}/wfs?SERVICE=WFS&REQUEST=GetCapabilities&VERSION=2.0.0",
            "csw_capabilities": f"{base}/csw?service=CSW&request=GetCapabilities&version=2.0.2",
            "getmap": f"{base}/wms?SERVICE=WMS&REQUEST=GetMap&VERSION=1.3.0&LAYERS={layer}"
            "&STYLES=&CRS=EPSG:4326&BBOX=45.55,4.65,45.95,5.10&WIDTH=256&HEIGHT=256"
            "&FORMAT=image/png",
            "ogc_collections": f"{base}/ogc/collections?f=json",
        }
        for name, url in requests_.items():
            seconds, size, first_byte = _timed(session, url)
            figures[f"{name}_ms"] = seconds * 1000
            figures[f"{name}_first_byte_ms"] = first_byte * 1000
            figures[f"{name}_bytes"] = size
        figures["refresh_check_ms"] = _refresh_check(app) * 1000
        if reference:
            figures.update(_whole_map_capabilities(app))
        figures.update(_visibility(store, session, base))
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        store.close()
        shutil.rmtree(services_dir, ignore_errors=True)
    return figures


def _whole_map_capabilities(app: Any) -> dict[str, float]:
    """MapServer's own GetCapabilities on the whole catalogue's map file, timed once."""
    from catalog.ogc.mapserver import MapServerService

    tiered = next(
        s
        for s in app.state.refresher.services
        if isinstance(getattr(s, "public", None), MapServerService)
    )
    service = tiered.public
    names = list(service.layer_names or ())
    found = {}
    for kind, query in (
        ("wms", "SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0"),
        ("wfs", "SERVICE=WFS&REQUEST=GetCapabilities&VERSION=2.0.0"),
    ):
        started = time.perf_counter()
        service.timeout = 1200.0
        service.run_capabilities(names, query, True)
        found[f"reference_{kind}_capabilities_ms"] = (time.perf_counter() - started) * 1000
    return found


def derive_layer_files(store: Any) -> None:
    """Each geographic release's GeoPackage, as made at its publication: the bench's
    copies share their template's files (hard links), so the template's is linked in."""
    from catalog.ogc.layers import dataset_layers, published_datasets
    from catalog.store import downloads

    made: dict[int, Path] = {}  # the Parquet's inode -> its GeoPackage
    for dataset in published_datasets(store):
        release = store.current_release(dataset.slug)
        parquet = store.release_path(release, "parquet") if release else None
        structure = store.structure_versions(dataset.slug)[-1].structure
        if parquet is None or not structure.get("geometry_type"):
            continue
        target = downloads.derived_path(parquet, "gpkg", 4326)
        inode = parquet.stat().st_ino
        if target.exists():
            made.setdefault(inode, target)
        elif inode in made:
            target.parent.mkdir(exist_ok=True)
            os.link(made[inode], target)
        else:
            dataset_layers(store, dataset)  # derives it
            if target.exists():
                made[inode] = target


def _refresh_check(app: Any) -> float:
    """The refresher's check when nothing changed (median)."""
    refresher = app.state.refresher
    refresher.refresh()
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        refresher.refresh()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _visibility(store: Any, session: Any, base: str) -> dict[str, float]:
    """Seconds from the publication of a new geographic dataset to its listing by each
    service (polled every POLL seconds)."""
    slug = f"nouveau-{uuid.uuid4().hex[:8]}"
    checks: dict[str, Callable[[], bool]] = {
        "visible_wms_s": lambda: (
            f"<Name>{slug}</Name>".encode()
            in _get(session, f"{base}/wms?SERVICE=WMS&REQUEST=GetCapabilities&VERSION=1.3.0")
        ),
        "visible_wfs_s": lambda: (
            f"ms:{slug}<".encode()
            in _get(session, f"{base}/wfs?SERVICE=WFS&REQUEST=GetCapabilities&VERSION=2.0.0")
        ),
        "visible_ogc_api_s": lambda: _ok(session, f"{base}/ogc/collections/{slug}?f=json"),
        "visible_csw_s": lambda: (
            f"<dc:identifier>{slug}</dc:identifier>".encode()
            in _get(
                session,
                f"{base}/csw?service=CSW&version=2.0.2&request=GetRecordById&id={slug}",
            )
        ),
    }
    publish_copy(store, slug)
    published = time.perf_counter()
    found: dict[str, float] = {}
    while len(found) < len(checks) and time.perf_counter() - published < VISIBLE_TIMEOUT:
        for name, check in checks.items():
            if name not in found and check():
                found[name] = time.perf_counter() - published
        time.sleep(POLL)
    return {name: found.get(name, float("inf")) for name in checks}


def publish_copy(store: Any, slug: str) -> None:
    """A new geographic dataset: a copy of a published one's current release, through
    `store.publish` (its GeoPackage is made by the services, as for any new release)."""
    from core import clock
    from core.records import NewRelease, SubmissionRecord

    source = next(
        d
        for d in store.list_datasets()
        if d.status == "publie"
        and store.structure_versions(d.slug)[-1].structure.get("geometry_type")
    )
    release = store.current_release(source.slug)
    staged = store.staging_dir()
    for distribution in release.distributions:
        path = store.release_path(release, distribution.format)
        if path is not None and path.is_file() and not (staged / path.name).exists():
            os.link(path, staged / path.name)
    new = NewRelease(
        dataset=slug,
        producer=source.producer,
        content_hash=uuid.uuid4().hex,
        row_count=release.row_count,
        distributions=list(release.distributions),
        metadata={**release.metadata, "title": f"Nouveau jeu {slug}"},
        licence=release.licence,
        structure=store.structure_versions(source.slug)[-1].structure,
        structure_version=1,
        anonymisation=release.anonymisation,
    )
    submission = SubmissionRecord(
        id=uuid.uuid4().hex,
        producer=source.producer,
        dataset=slug,
        channel="ligne-de-commande",
        received_at=clock.now(),
        status="publiee",
        release=None,
    )
    store.publish(new, staged, submission)


# --- HTTP ------------------------------------------------------------------------------------


def _timed(session: Any, url: str) -> tuple[float, int, float]:
    """Median seconds of REPEATS requests (after one warm-up) until the whole answer is read
    (decompressed), the answer's size, and the median seconds until its headers arrived."""
    size = len(_get(session, url, check=True))
    samples, first_bytes = [], []
    for _ in range(REPEATS):
        started = time.perf_counter()
        answer = session.get(url, timeout=600)
        len(answer.content)
        samples.append(time.perf_counter() - started)
        first_bytes.append(answer.elapsed.total_seconds())
    return statistics.median(samples), size, statistics.median(first_bytes)


def _get(session: Any, url: str, check: bool = False) -> bytes:
    answer = session.get(url, timeout=600)
    if check and answer.status_code != 200:
        raise RuntimeError(f"{url} : {answer.status_code} {answer.text[:300]}")
    return answer.content if answer.status_code == 200 else b""


def _ok(session: Any, url: str) -> bool:
    try:
        return session.get(url, timeout=600).status_code == 200
    except OSError:
        return False


def _a_layer(session: Any, base: str) -> str:
    document = json.loads(_get(session, f"{base}/ogc/collections?f=json&limit=5", check=True))
    return next(c["id"] for c in document["collections"] if c.get("itemType") == "feature")


def _count(session: Any, url: str) -> int:
    return int(json.loads(_get(session, url, check=True))["numberMatched"]) - 1  # catalogue


def _wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("le catalogue n'a pas démarré")
        time.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- main ------------------------------------------------------------------------------------

SHOWN = [
    ("wms_capabilities_ms", "WMS GetCapabilities (ms)"),
    ("wms_capabilities_first_byte_ms", "WMS GetCapabilities, en-têtes reçus (ms)"),
    ("wms_capabilities_bytes", "WMS GetCapabilities (octets)"),
    ("wfs_capabilities_ms", "WFS GetCapabilities (ms)"),
    ("wfs_capabilities_first_byte_ms", "WFS GetCapabilities, en-têtes reçus (ms)"),
    ("wfs_capabilities_bytes", "WFS GetCapabilities (octets)"),
    ("reference_wms_capabilities_ms", "référence : MapServer, WMS du fichier entier (ms)"),
    ("reference_wfs_capabilities_ms", "référence : MapServer, WFS du fichier entier (ms)"),
    ("csw_capabilities_ms", "CSW GetCapabilities (ms)"),
    ("getmap_ms", "GetMap d'une couche (ms)"),
    ("ogc_collections_ms", "/ogc/collections, 1re page (ms)"),
    ("ogc_collections_bytes", "/ogc/collections, 1re page (octets)"),
    ("refresh_check_ms", "vérification du rafraîchissement (ms)"),
    ("visible_wms_s", "nouvelle version visible en WMS (s)"),
    ("visible_wfs_s", "… en WFS (s)"),
    ("visible_ogc_api_s", "… en OGC API (s)"),
    ("visible_csw_s", "… en CSW (s)"),
    ("startup_s", "démarrage (s)"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="100,1000,10000")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/opendata-services-scale"))
    parser.add_argument("--store-url", default=None, help="PostgreSQL URL (default: SQLite)")
    parser.add_argument("--json", type=Path, help="write the figures there too")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the catalogues already in FOLDER/<count>"
    )
    args = parser.parse_args()
    from bench_catalogue import bench_settings, open_bench_catalogue

    results: dict[int, dict[str, Any]] = {}
    for count in (int(c) for c in args.counts.split(",")):
        started = time.perf_counter()
        folder = args.folder / str(count)
        if args.reuse and (folder / "data").is_dir():
            settings = bench_settings(folder, args.store_url)
        else:
            settings, store, _ = open_bench_catalogue(folder, count, args.store_url)
            store.close()
        built = time.perf_counter() - started
        print(f"{count} jeux publiés en {built:.0f} s ; mesures…", flush=True)
        # MapServer on the whole map file grows quadratically (88 s for 10,000 layers on an
        # idle machine): timed up to REFERENCE_UP_TO datasets only
        reference = count <= REFERENCE_UP_TO
        results[count] = measure_services(settings.store_url, settings.files_dir, reference)
        print(json.dumps(results[count], indent=1), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    _print_table(results)
    return 0


def _print_table(results: dict[int, dict[str, Any]]) -> None:
    counts = sorted(results)
    first = counts[0]
    print("| mesure | " + " | ".join(f"{c} jeux" for c in counts) + " | croissance |")
    print("|---|" + "---|" * (len(counts) + 1))
    for key, label in SHOWN:
        values = [results[c].get(key, float("nan")) for c in counts]
        growth = values[-1] / values[0] if values[0] else float("nan")
        cells = " | ".join(f"{v:,.1f}" if isinstance(v, float) else f"{v:,}" for v in values)
        print(f"| {label} | {cells} | ×{growth:.2f} ({counts[-1] // first}× les jeux) |")


if __name__ == "__main__":
    raise SystemExit(main())
