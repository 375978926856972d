"""Benchmark: a 10,000,000-row × 12-column CSV (≈1.3 GB) through the real pipeline.

Generated in a temporary folder (never committed), in chunks, with its Table Schema; and a
smaller map (points from longitude/latitude columns) for the map formats. Measured, each
heavy step in its own process:

- the publication (`opendata soumettre`): time and peak memory, the process tree's
  resident memory polled from /proc (children included) and the kernel's max RSS; then
  the peak after each stage (`--stages`, in process), to say where it comes from;
- the references on the same file: a streaming pyarrow read (`open_csv`, batch by batch)
  and a whole-file `read_csv`, time and max RSS;
- every download format over HTTP from `opendata servir`: the server's resident memory
  before and after, and its peak (VmHWM) while the file is derived (first download) and
  streamed; the answer is read in 1 MB chunks;
- the rows API's first request after publication against a later one (the copy is
  written at publication, so they should cost the same), and the time the copy would have
  taken on a first request (`write_copy` alone).

    .venv/bin/python bench/big_file.py [--rows 10000000] [--map-rows 1000000]

Figures go to bench/BIG_FILE_RESULTS.md (by hand, from the printed table).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import requests

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OPENDATA = Path(sys.executable).parent / "opendata"
CHUNK = 500_000
COMMUNES = ["Lyon", "Villeurbanne", "Vénissieux", "Écully", "Vaulx-en-Velin", "Bron", "Caluire"]
CATEGORIES = ["voirie", "propreté", "éclairage", "espaces verts", "stationnement"]
MB = 1024 * 1024
EXCEL_ROWS = 1_048_576


def table_schema(geographic: bool) -> dict:
    """12 columns of every type; the map's two last numbers are its positions."""
    first, second = ("longitude", "latitude") if geographic else ("mesure_min", "mesure_max")
    return {
        "fields": [
            {"name": "id", "type": "integer", "constraints": {"required": True}},
            {"name": "commune", "type": "string", "constraints": {"enum": COMMUNES}},
            {"name": "code_insee", "type": "string", "constraints": {"pattern": "69[0-9]{3}"}},
            {"name": "date_releve", "type": "date"},
            {"name": "horodatage", "type": "datetime"},
            {"name": "valeur", "type": "number"},
            {"name": "quantite", "type": "integer", "constraints": {"minimum": 0}},
            {"name": "categorie", "type": "string", "constraints": {"enum": CATEGORIES}},
            {"name": "actif", "type": "boolean"},
            {"name": first, "type": "number"},
            {"name": second, "type": "number"},
            {"name": "libelle", "type": "string", "constraints": {"maxLength": 60}},
        ],
        "primaryKey": ["id"],
    }


def generate(path: Path, rows: int, geographic: bool, seed: int = 20261207) -> None:
    """The CSV, written chunk by chunk (the generator's memory stays flat too)."""
    rng = np.random.default_rng(seed)
    names = [f["name"] for f in table_schema(geographic)["fields"]]
    writer = None
    for start in range(0, rows, CHUNK):
        n = min(CHUNK, rows - start)
        days = np.datetime64("2015-01-01") + rng.integers(0, 3650, n).astype("timedelta64[D]")
        seconds = rng.integers(0, 86400, n).astype("timedelta64[s]")
        stamps = days.astype("datetime64[s]") + seconds
        ids = np.arange(start + 1, start + n + 1)
        x, y = (
            (rng.uniform(4.7, 5.0, n), rng.uniform(45.6, 45.9, n))
            if geographic
            else (rng.normal(10, 3, n), rng.normal(30, 3, n))
        )
        columns = [
            pa.array(ids),
            pa.array(np.array(COMMUNES)[rng.integers(0, len(COMMUNES), n)]),
            pa.array(np.char.add("69", np.char.zfill(rng.integers(1, 999, n).astype(str), 3))),
            pa.array(days.astype(str)),
            pa.array(np.char.replace(stamps.astype(str), " ", "T")),
            pa.array(np.round(rng.normal(100, 30, n), 3)),
            pa.array(rng.integers(0, 500, n)),
            pa.array(np.array(CATEGORIES)[rng.integers(0, len(CATEGORIES), n)]),
            pa.array(rng.integers(0, 2, n).astype(bool)),
            pa.array(np.round(x, 6)),
            pa.array(np.round(y, 6)),
            pa.array(np.char.add("Relevé de la station n° ", ids.astype(str))),
        ]
        table = pa.Table.from_arrays(columns, names=names)
        if writer is None:
            options = pacsv.WriteOptions(quoting_style="needed")
            writer = pacsv.CSVWriter(path, table.schema, write_options=options)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def submission_folder(folder: Path, identifier: str, rows: int, geographic: bool) -> Path:
    inbox = folder / "inbox" / "lyon" / identifier
    inbox.mkdir(parents=True)
    generate(inbox / f"{identifier}.csv", rows, geographic)
    (inbox / "schema.json").write_text(json.dumps(table_schema(geographic)), encoding="utf-8")
    (inbox / "metadata.yaml").write_text(
        f"identifiant: {identifier}\ntitre: Relevés de mesure {identifier}\n"
        "description: Relevés générés pour le banc d'essai des gros fichiers.\n"
        "licence: etalab-2.0\nfrequence: quotidienne\nmodalites_livraison: Dépôt quotidien.\n"
        "date_mise_a_jour: 2026-11-01\nmots_cles: [mesures]\n"
        "contact: {nom: Banc d'essai, email: banc@exemple.fr}\nschema: schema.json\n",
        encoding="utf-8",
    )
    return inbox


# --- memory of a process tree ------------------------------------------------------------


def _status(pid: int, field: str) -> int:
    """A /proc/<pid>/status field in bytes (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _tree(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except FileNotFoundError:
            continue
        todo.extend(int(c) for c in children)
    return found


class TreePeak:
    """The peak of the summed resident memory of a process and its children, polled."""

    def __init__(self, pid: int, every: float = 0.05) -> None:
        self.pid, self.every, self.peak = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            total = sum(_status(p, "VmRSS") for p in _tree(self.pid))
            self.peak = max(self.peak, total)
            time.sleep(self.every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def measured(command: list[str], env: dict[str, str] | None = None) -> dict:
    """Run `command`; its time, the polled peak of its tree and the kernel's max RSS."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    poller = TreePeak(process.pid)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    peak = poller.stop()
    out, err = process.stdout.read().decode(), process.stderr.read().decode()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{command} failed:\n{out}\n{err}")
    return {"s": elapsed, "tree_peak": peak, "maxrss": usage.ru_maxrss * 1024, "out": out}


# --- the references ----------------------------------------------------------------------


def _reference(mode: str, csv_path: str) -> None:
    """Child process: pyarrow reading the CSV, streamed or whole."""
    started = time.perf_counter()
    if mode == "stream":
        rows = 0
        options = pacsv.ReadOptions(block_size=16 * MB)
        with pacsv.open_csv(csv_path, read_options=options) as reader:
            for batch in reader:
                rows += batch.num_rows
    else:
        rows = pacsv.read_csv(csv_path).num_rows
    print(json.dumps({"rows": rows, "s": time.perf_counter() - started}))


def _stages(csv_path: str, metadata_path: str) -> None:
    """Child process: the pipeline's stages one by one, the peak (max RSS) after each."""
    from core.settings import load_settings
    from pipelines import submission as sub

    settings = load_settings()
    store = sub.open_settings_store(settings)
    submission = sub.Submission.new("lyon", Path(csv_path), Path(metadata_path), "banc")
    peaks: list[tuple[str, float, int, int]] = []

    def mark(stage: str, started: float) -> None:
        rss = _status(os.getpid(), "VmRSS")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        peaks.append((stage, time.perf_counter() - started, rss, peak))

    t = time.perf_counter()
    metadata = sub.stage_metadata(submission, settings)
    licence = sub.stage_licence(metadata, settings)
    mark("métadonnées, licence", t)
    t = time.perf_counter()
    source = sub.stage_read(submission, metadata)
    mark("lecture", t)
    t = time.perf_counter()
    checked, structure, version = sub.stage_structure(submission, metadata, source, store)
    del source
    mark("structure", t)
    t = time.perf_counter()
    checked, structure, anonymisation = sub.stage_anonymise(
        submission, metadata, checked, structure, settings
    )
    mark("données personnelles", t)
    t = time.perf_counter()
    outcome = sub.stage_publish(
        submission, metadata, licence, checked, structure, version, store, anonymisation, settings
    )
    mark("publication", t)
    assert outcome.status == "publiee", outcome.summary()
    print(json.dumps(peaks))


def _copy_alone(parquet: str, target: str, dates: str) -> None:
    """Child process: the rows copy alone, as a first rows request used to write it."""
    from catalog.store.rows_copy import write_copy

    started = time.perf_counter()
    write_copy(Path(parquet), Path(target), set(json.loads(dates)))
    print(json.dumps({"s": time.perf_counter() - started}))


# --- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [str(OPENDATA), "servir", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/api/datasets", timeout=5).status_code < 500:
                return server, url
        except requests.RequestException:
            time.sleep(0.5)
    server.kill()
    raise RuntimeError("opendata servir did not come up")


def reset_peak(pid: int) -> None:
    """VmHWM back to the current RSS (Linux ≥ 4.0), so each download has its own peak."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def download(url: str, pid: int) -> dict:
    """One download, read in 1 MB chunks; the server's memory around it."""
    reset_peak(pid)
    before = _status(pid, "VmRSS")
    started = time.perf_counter()
    size, chunks, first = 0, 0, None
    with requests.get(url, stream=True, timeout=3600) as response:
        response.raise_for_status()
        for chunk in response.iter_content(MB):
            if first is None:
                first = time.perf_counter() - started
            size += len(chunk)
            chunks += 1
    return {
        "s": time.perf_counter() - started,
        "first_byte_s": first,
        "bytes": size,
        "chunks": chunks,
        "rss_before": before,
        "rss_after": _status(pid, "VmRSS"),
        "peak": _status(pid, "VmHWM"),
    }


def rows_timings(url: str, slug: str, later: int = 5) -> dict:
    """The first rows request after publication, then the median of later ones."""
    page = f"{url}/api/datasets/{slug}/rows?_taille=100"
    started = time.perf_counter()
    requests.get(page, timeout=3600).raise_for_status()
    first = time.perf_counter() - started
    times = []
    for _ in range(later):
        started = time.perf_counter()
        requests.get(page, timeout=60).raise_for_status()
        times.append(time.perf_counter() - started)
    return {"first_s": first, "later_s": statistics.median(times)}


# --- the run -------------------------------------------------------------------------------


def gb(value: float) -> str:
    return f"{value / 1024**3:.2f} Go"


def mb(value: float) -> str:
    return f"{value / MB:.0f} Mo"


def note(label: str, value: object) -> object:
    """A figure printed as soon as it is measured: a long run cut short keeps its figures."""
    print(f"MESURE {label} {json.dumps(value, default=str)}", flush=True)
    return value


def publish_and_measure(folder: Path, inbox: Path, env: dict[str, str]) -> dict:
    csv_path = inbox / f"{inbox.name}.csv"
    me = [sys.executable, __file__]
    stream = note("flux", measured(me + ["_reference", "stream", str(csv_path)]))
    whole = note("entier", measured(me + ["_reference", "whole", str(csv_path)]))
    submit = measured(
        [
            str(OPENDATA),
            "soumettre",
            str(csv_path),
            "--producteur",
            "lyon",
            "--metadonnees",
            str(inbox / "metadata.yaml"),
        ],
        env,
    )
    note("soumettre", submit)
    return {"file": csv_path.stat().st_size, "stream": stream, "whole": whole, "submit": submit}


def stage_peaks(folder: Path, inbox: Path) -> list:
    env = {**os.environ, "OPENDATA_DATA_DIR": str(folder / "stages")}
    csv_path = inbox / f"{inbox.name}.csv"
    run = measured(
        [sys.executable, __file__, "_stages", str(csv_path), str(inbox / "metadata.yaml")], env
    )
    return json.loads(run["out"])


def release_parquet(data: Path, slug: str) -> Path:
    return next((data / "files" / slug).glob("*/*.parquet"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--map-rows", type=int, default=1_000_000)
    parser.add_argument("--no-stages", action="store_true", help="skip the per-stage run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gros-fichier-", dir=ROOT / "var") as name:
        folder = Path(name)
        env = {**os.environ, "OPENDATA_DATA_DIR": str(folder / "data")}
        print(f"Génération : {args.rows} lignes, carte {args.map_rows} lignes…", flush=True)
        table_inbox = submission_folder(folder, "releves", args.rows, geographic=False)
        map_inbox = submission_folder(folder, "releves-carte", args.map_rows, geographic=True)
        results = {"rows": args.rows, "map_rows": args.map_rows}
        print("Publication du tableau…", flush=True)
        results["table"] = publish_and_measure(folder, table_inbox, env)
        print("Publication de la carte…", flush=True)
        results["map"] = publish_and_measure(folder, map_inbox, env)
        if not args.no_stages:
            print("Pic par étape…", flush=True)
            results["stages"] = stage_peaks(folder, table_inbox)
        data = folder / "data"
        server, url = serve(env)
        try:
            time.sleep(2)
            results["server_idle"] = _status(server.pid, "VmRSS")
            results["rows_table"] = note("lignes", rows_timings(url, "lyon-releves"))
            results["rows_map"] = note("lignes-carte", rows_timings(url, "lyon-releves-carte"))
            results["downloads"] = {}
            # XLSX holds 1,048,576 rows a sheet: offered for the smaller files only
            spreadsheet = ["xlsx"] if args.rows < EXCEL_ROWS else []
            for slug, formats in (
                ("lyon-releves", ["csv", "parquet", "json", *spreadsheet]),
                (
                    "lyon-releves-carte",
                    ["csv", "parquet", "geojson", "gpkg", "kml", "shp", "geoparquet"],
                ),
            ):
                for fmt in formats:
                    link = f"{url}/api/datasets/{slug}/download/{fmt}"
                    if fmt == "geoparquet":
                        link += "?crs=2154"
                    print(f"Téléchargement {slug} {fmt}…", flush=True)
                    first = download(link, server.pid)
                    again = download(link, server.pid)
                    results["downloads"][f"{slug} {fmt}"] = {"first": first, "again": again}
                    note(f"{slug}-{fmt}", {"first": first, "again": again})
        finally:
            server.terminate()
            server.wait(30)
        parquet = release_parquet(data, "lyon-releves")
        alone = measured(
            [
                sys.executable,
                __file__,
                "_copy",
                str(parquet),
                str(folder / "copie.sqlite"),
                json.dumps(["date_releve"]),
            ]
        )
        results["copy_alone"] = json.loads(alone["out"])["s"]
        results["copy_alone_maxrss"] = alone["maxrss"]
        report(results)


def report(r: dict) -> None:
    print(json.dumps(r, indent=1, default=str))
    for kind in ("table", "map"):
        m = r[kind]
        sub = m["submit"]
        print(
            f"\n## {kind} ({r['rows'] if kind == 'table' else r['map_rows']} lignes, "
            f"{mb(m['file'])})"
        )
        print("| mesure | durée | pic (arbre /proc) | max RSS noyau |")
        print("|---|---|---|---|")
        for label, run in (
            ("opendata soumettre", sub),
            ("pyarrow open_csv (flux)", m["stream"]),
            ("pyarrow read_csv (entier)", m["whole"]),
        ):
            print(f"| {label} | {run['s']:.1f} s | {gb(run['tree_peak'])} | {gb(run['maxrss'])} |")
        peak = max(sub["tree_peak"], sub["maxrss"])
        print(
            f"pic / taille du fichier : {peak / m['file']:.2f} ; "
            f"pic / read_csv entier : {peak / m['whole']['maxrss']:.2f} ; "
            f"pic / flux pyarrow : {peak / m['stream']['maxrss']:.2f} ; "
            f"objectif < 2 Go : {'atteint' if peak < 2 * 1024**3 else 'non atteint'}"
        )
    if "stages" in r:
        print("\n| étape | durée | RSS après | pic cumulé |\n|---|---|---|---|")
        for stage, seconds, rss, peak in r["stages"]:
            print(f"| {stage} | {seconds:.1f} s | {gb(rss)} | {gb(peak)} |")
    print(f"\nserveur au repos : {mb(r['server_idle'])}")
    print(
        "| téléchargement | taille | 1er (dérivé) | pic serveur 1er | "
        "2e | pic serveur 2e | RSS avant → après (2e) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, d in r["downloads"].items():
        f, a = d["first"], d["again"]
        print(
            f"| {name} | {mb(a['bytes'])} | {f['s']:.1f} s | +{mb(f['peak'] - f['rss_before'])} "
            f"| {a['s']:.1f} s | +{mb(a['peak'] - a['rss_before'])} | "
            f"{mb(a['rss_before'])} → {mb(a['rss_after'])} |"
        )
    for kind in ("rows_table", "rows_map"):
        t = r[kind]
        print(
            f"{kind}: 1re requête {1000 * t['first_s']:.1f} ms, suivantes "
            f"{1000 * t['later_s']:.1f} ms, rapport {t['first_s'] / t['later_s']:.2f}"
        )
    print(
        f"copie des lignes seule (ce qu'attendait le 1er réutilisateur) : "
        f"{r['copy_alone']:.1f} s, max RSS {mb(r['copy_alone_maxrss'])}"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_reference":
        _reference(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "_stages":
        _stages(sys.argv[2], sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "_copy":
        _copy_alone(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
