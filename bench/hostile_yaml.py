"""YAML bombs and hostile files: time and peak memory of their refusal (issue #16).

Each case runs in a child process (its peak RSS is its own, `ru_maxrss`), median of 3:
- PyYAML's `safe_load` on the "billion laughs" cut to 5, 6 and 7 levels, then its title
  as text, as the metadata reader did before (the reference; 9 levels would take minutes
  and gigabytes);
- our reader (`pipelines.metadata.read_metadata_file`) on the full 9-level bomb;
- the read stage on the hostile files the issue lists (GeoJSON linked CRS, KML
  NetworkLink, GeoPackage trigger, XLSX macros, zip polyglot).
Writes bench/HOSTILE_RESULTS.md (French). Target: the bomb refused in under 100 ms.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "bench" / "HOSTILE_RESULTS.md"
RUNS = 3


def bomb(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        refs = ",".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


# --- in the child ----------------------------------------------------------------------------


def child(kind: str, path: str) -> None:
    """One case; imports first, so that only the reading is timed."""
    import yaml

    from core.problems import SubmissionRejected
    from pipelines.metadata import read_metadata_file
    from pipelines.read.stage import read_source

    started = time.perf_counter()
    outcome = "lu"
    try:
        if kind == "pyyaml":
            # what the metadata reader did before: safe_load, then the title as text
            document = yaml.safe_load(Path(path).read_text())
            outcome = f"lu, titre de {len(str(document['titre']))} caractères"
        elif kind == "metadata":
            read_metadata_file(Path(path), "lyon", "bombe")
        else:
            read_source(Path(path))
    except SubmissionRejected as error:
        outcome = error.report.problems[0].rule
    elapsed = time.perf_counter() - started
    print(json.dumps({"seconds": elapsed, "peak_mb": _peak_mb(), "outcome": outcome}))


def _peak_mb() -> float:
    """VmHWM: this process's own peak (ru_maxrss would include the parent's, from fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- in the parent ---------------------------------------------------------------------------


def measure(kind: str, path: Path) -> dict:
    runs = []
    for _ in range(RUNS):
        result = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
            timeout=600,
        )
        runs.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "peak_mb": statistics.median(r["peak_mb"] for r in runs),
        "outcome": runs[-1]["outcome"],
    }


def hostile_files(folder: Path) -> dict[str, Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    from test_egress_and_bombs import geopackage, workbook

    files = {}
    linked = {
        "type": "FeatureCollection",
        "crs": {"type": "link", "properties": {"href": "http://127.0.0.1:9/crs"}},
        "features": [],
    }
    files["GeoJSON, crs « link »"] = folder / "lien.geojson"
    files["GeoJSON, crs « link »"].write_text(json.dumps(linked))
    kml = (
        '<kml xmlns="http://www.opengis.net/kml/2.2"><Document><NetworkLink><Link>'
        "<href>http://127.0.0.1:9/x.kml</href></Link></NetworkLink></Document></kml>"
    )
    files["KML, NetworkLink"] = folder / "lien.kml"
    files["KML, NetworkLink"].write_text(kml)
    files["GeoPackage, déclencheur"] = folder / "declencheur.gpkg"
    trigger = "CREATE TRIGGER t AFTER UPDATE ON bancs BEGIN DELETE FROM bancs; END"
    files["GeoPackage, déclencheur"].write_bytes(geopackage(folder, trigger))
    files["XLSX, macros"] = folder / "macros.xlsx"
    files["XLSX, macros"].write_bytes(workbook("xl/vbaProject.bin"))
    return files


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        for levels in (5, 6, 7):
            path = folder / f"bombe-{levels}.yaml"
            path.write_text(bomb(levels) + f"titre: *a{levels - 1}\n")
            rows.append((f"PyYAML safe_load, bombe à {levels} niveaux", path, "pyyaml"))
        full = folder / "metadata.yaml"
        full.write_text(bomb(9) + "titre: *a8\n")
        rows.append(("notre lecture, bombe à 9 niveaux", full, "metadata"))
        for label, path in hostile_files(folder).items():
            rows.append((f"étape de lecture, {label}", path, "read"))
        results = [(label, path.stat().st_size, measure(kind, path)) for label, path, kind in rows]
    lines = [
        "# Bombes YAML et fichiers hostiles : coût du refus (issue #16)",
        "",
        f"Produit par `.venv/bin/python bench/hostile_yaml.py` ; médiane de {RUNS} passages, "
        "chacun dans son processus (mémoire de pointe `VmHWM`, interpréteur et imports "
        "compris ; temps de la lecture seule). Machine : 2 cœurs. Objectif : la bombe "
        "refusée en moins de 100 ms.",
        "",
        "| cas | taille (octets) | issue | temps (ms) | mémoire de pointe (Mo) |",
        "|---|---:|---|---:|---:|",
    ]
    for label, size, result in results:
        lines.append(
            f"| {label} | {size} | {result['outcome']} | {result['seconds'] * 1000:.1f} | "
            f"{result['peak_mb']:.0f} |"
        )
    OUTPUT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.path.insert(0, str(ROOT))
        child(sys.argv[2], sys.argv[3])
    else:
        main()
