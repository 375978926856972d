"""The inbox's folder protocol, which the upload API, the pull of sources and the pipeline
all follow.

A submission is a drop folder `inbox/<commune>/<dataset>/` holding one metadata file (one
of `METADATA_NAMES`) and one data file (an input format's extension, `core.input_formats`),
optionally `schema.json`. The pipeline leaves its report beside them (`rapport.txt`,
`rapport.json`) and moves the rest to the archive. The upload API (`catalog.web.routes.uploads`)
writes a marker (`.depot`) beside the files of a folder it fills: the submission keeps the
upload's id, so the upload's status URL finds the outcome, and the depositor's address,
mailed the outcome once (`deposit_mail_key`, by `pipelines.notify`). Files are compared by
their SHA-256 (`file_sha256`).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from core import clock
from core.input_formats import FORMAT_BY_SUFFIX

METADATA_NAMES = ("metadata.yaml", "metadata.yml", "metadonnees.yaml", "metadonnees.yml")
SCHEMA_NAME = "schema.json"
UPLOAD_MARKER = ".depot"
SUBMISSION_ID = re.compile(r"^\d{14}-[0-9a-f]{8}$")
REPORT_TEXT = "rapport.txt"
REPORT_JSON = "rapport.json"
REPORTS = frozenset({REPORT_TEXT, REPORT_JSON})
NOT_DATA = frozenset({REPORT_TEXT, REPORT_JSON, SCHEMA_NAME})
HASH_CHUNK = 4 * 1024 * 1024


def new_submission_id() -> str:
    """A submission's id: when it was received (UTC, to the second) and 8 random digits."""
    return f"{clock.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"


def deposit_mail_key(deposit_id: str) -> str:
    """The store's key of the mail telling a depositor the outcome of their deposit."""
    return f"depot:{deposit_id}"


def metadata_file(folder: Path) -> Path | None:
    """The folder's metadata file, if it has one."""
    return next((folder / n for n in METADATA_NAMES if (folder / n).is_file()), None)


def data_files(folder: Path) -> list[Path]:
    """The folder's files that an input format reads (a ready folder has exactly one)."""
    return [
        path
        for path in folder.iterdir()
        if path.suffix.lower() in FORMAT_BY_SUFFIX and path.name not in NOT_DATA and path.is_file()
    ]


def upload_marker(folder: Path) -> dict[str, Any] | None:
    """The upload API's marker of a drop folder, when there is a valid one."""
    try:
        marker = json.loads((folder / UPLOAD_MARKER).read_text(encoding="utf-8"))
        datetime.fromisoformat(marker["recu_le"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    valid = isinstance(marker, dict) and SUBMISSION_ID.fullmatch(str(marker.get("id", "")))
    return marker if valid else None


def file_sha256(path: Path) -> str:
    """The file's SHA-256, hexadecimal, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
