"""Minimisation of raw submissions: what a commune sent with personal data in it is kept
in the archive for a retention period only (`OPENDATA_RETENTION_DONNEES_BRUTES_JOURS`,
30 days by default), then its data files are deleted. The reports stay: they quote no
value of a personal column. Published releases hold only treated data and are kept.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from core import clock

MARKER = "DONNEES_PERSONNELLES.json"
KEPT = {"rapport.txt", "rapport.json", MARKER}


def mark_personal(archive: Path, retention_days: int) -> None:
    """Say, beside an archived submission, that its raw files hold personal data and until
    when they are kept."""
    received = clock.now()
    payload = {
        "recu_le": received.isoformat(),
        "supprime_apres": (received + timedelta(days=retention_days)).isoformat(),
        "motif": "Le fichier déposé contient des données personnelles : il n'est conservé "
        f"que {retention_days} jours (minimisation, RGPD art. 5).",
    }
    (archive / MARKER).write_text(json.dumps(payload, ensure_ascii=False, indent=2), "utf-8")


def purge_expired(archive_root: Path, moment: datetime | None = None) -> list[str]:
    """Delete the raw files of archived submissions whose retention has run out; the folder
    keeps its reports and a marker saying when the files were deleted."""
    moment = moment or clock.now()
    purged = []
    for marker in sorted(archive_root.glob(f"*/*/*/{MARKER}")):
        payload = json.loads(marker.read_text("utf-8"))
        due = datetime.fromisoformat(payload["supprime_apres"])
        if payload.get("supprime_le") or due > moment:
            continue
        for path in marker.parent.iterdir():
            if path.name not in KEPT:
                _remove(path)
        payload["supprime_le"] = moment.isoformat()
        marker.write_text(json.dumps(payload, ensure_ascii=False, indent=2), "utf-8")
        purged.append(str(marker.parent.relative_to(archive_root)))
    return purged


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
