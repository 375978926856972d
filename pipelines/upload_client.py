"""The client of the upload API (`opendata deposer`): a commune agent's file to the platform.

A file up to one chunk (`chunk_size`, 8 Mio by default) goes in one multipart request;
a bigger one through a resumable upload (tus, see `catalog.web.routes.uploads`): chunks with their
SHA-256, retried with a growing delay after a network error or a server error, resumed at
the offset the server gives (`HEAD`). The upload's URL is kept in a small state file
(`$XDG_CACHE_HOME/opendata/televersements/`, keyed by the file's SHA-256 and the
commune), so running the same command again after an interruption (network down,
computer restarted) resumes where the server stopped instead of starting again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import requests

DEFAULT_CHUNK = 8 * 2**20
TIMEOUT = (10, 300)  # connect, read (the server checks the whole file after the last chunk)
FIRST_DELAY = 1.0
MAX_DELAY = 30.0
RETRIED_STATUSES = {408, 423, 429, 460, 500, 502, 503, 504}  # 423: a previous send is ending


class UploadError(Exception):
    """The upload cannot go on; the message is French, for the agent."""


@dataclass(frozen=True)
class Upload:
    base_url: str
    token: str
    commune: str
    data: Path
    metadata: Path
    schema: Path | None = None
    identifier: str | None = None
    chunk_size: int = DEFAULT_CHUNK
    attempts: int = 5


def state_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "opendata" / "televersements"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while piece := handle.read(2**20):
            digest.update(piece)
    return digest.hexdigest()


def session(token: str) -> requests.Session:
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    http.headers["User-Agent"] = "opendata-deposer/1.0"
    return http


def whose_token(base_url: str, token: str) -> dict[str, Any]:
    """The account of a token (`GET /api/compte`): its commune for a producer."""
    response = session(token).get(f"{base_url}/api/compte", timeout=TIMEOUT)
    _raise_for(response)
    return response.json()


def deposit(upload: Upload, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Send the submission; the server's answer (202: the deposit's id and status URL)."""
    http = session(upload.token)
    size = upload.data.stat().st_size
    if size <= upload.chunk_size:
        with upload.data.open("rb") as data:
            return _send_deposit(http, upload, {"fichier": (upload.data.name, data)})
    upload_id = Resumable(http, upload, say).run()
    return _send_deposit(http, upload, {}, {"televersement": upload_id})


def _send_deposit(
    http: requests.Session,
    upload: Upload,
    files: dict[str, tuple[str, BinaryIO]],
    fields: dict[str, str] | None = None,
) -> dict[str, Any]:
    fields = dict(fields or {})
    if upload.identifier:
        fields["jeu"] = upload.identifier
    with upload.metadata.open("rb") as metadata:
        parts = {**files, "metadonnees": ("metadata.yaml", metadata)}
        schema = upload.schema.open("rb") if upload.schema else None
        try:
            if schema is not None:
                parts["schema"] = ("schema.json", schema)
            response = http.post(
                f"{upload.base_url}/api/communes/{upload.commune}/depots",
                files=parts,
                data=fields,
                timeout=TIMEOUT,
            )
        finally:
            if schema is not None:
                schema.close()
    _raise_for(response)
    return response.json()


class Resumable:
    """One resumable upload, from its state file (or a new one) to its last byte."""

    def __init__(self, http: requests.Session, upload: Upload, say: Callable[[str], None]):
        self.http = http
        self.upload = upload
        self.say = say
        self.size = upload.data.stat().st_size
        self.sha256 = file_sha256(upload.data)
        self.state = state_dir() / f"{self.sha256}-{upload.commune}.json"

    def run(self) -> str:
        url, offset = self._resume() or self._create()
        failures = 0
        with self.upload.data.open("rb") as data:
            while offset < self.size:
                try:
                    offset = self._send_chunk(data, url, offset)
                    failures = 0
                except (requests.ConnectionError, requests.Timeout, _Retry) as error:
                    failures += 1
                    if failures >= self.upload.attempts:
                        raise UploadError(
                            f"Téléversement interrompu à l'octet {offset} sur {self.size} "
                            f"({error.__class__.__name__}). Relancez la même commande : "
                            "l'envoi reprendra où il s'est arrêté."
                        ) from error
                    time.sleep(min(MAX_DELAY, FIRST_DELAY * 2 ** (failures - 1)))
                    offset = self._offset(url, offset)
                    self.say(f"Reprise du téléversement à l'octet {offset} sur {self.size}.")
        self.state.unlink(missing_ok=True)
        return url.rstrip("/").rsplit("/", 1)[-1]

    def _resume(self) -> tuple[str, int] | None:
        try:
            saved = json.loads(self.state.read_text(encoding="utf-8"))
            url = self.upload.base_url + saved["chemin"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:
            response = self.http.head(url, timeout=TIMEOUT)
        except requests.RequestException:
            return None
        if response.status_code != 200:
            self.state.unlink(missing_ok=True)  # finished, abandoned or expired on the server
            return None
        offset = int(response.headers["Upload-Offset"])
        self.say(f"Reprise du téléversement à l'octet {offset} sur {self.size}.")
        return url, offset

    def _create(self) -> tuple[str, int]:
        metadata = ",".join(
            f"{key} {base64.b64encode(value.encode()).decode()}"
            for key, value in (("filename", self.upload.data.name), ("sha256", self.sha256))
        )
        response = self.http.post(
            f"{self.upload.base_url}/api/communes/{self.upload.commune}/televersements",
            headers={
                "Upload-Length": str(self.size),
                "Upload-Metadata": metadata,
                "Tus-Resumable": "1.0.0",
            },
            timeout=TIMEOUT,
        )
        _raise_for(response)
        path = response.headers["Location"]
        self.state.parent.mkdir(parents=True, exist_ok=True)
        self.state.write_text(json.dumps({"chemin": path}), encoding="utf-8")
        return self.upload.base_url + path, 0

    def _send_chunk(self, data: BinaryIO, url: str, offset: int) -> int:
        data.seek(offset)
        chunk = data.read(self.upload.chunk_size)
        checksum = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
        response = self.http.patch(
            url,
            data=chunk,
            headers={
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": str(offset),
                "Upload-Checksum": f"sha256 {checksum}",
                "Tus-Resumable": "1.0.0",
            },
            timeout=TIMEOUT,
        )
        if response.status_code == 409 and "Upload-Offset" in response.headers:
            return int(response.headers["Upload-Offset"])  # the server knows better
        if response.status_code in RETRIED_STATUSES:
            raise _Retry(response.status_code)
        _raise_for(response)
        return int(response.headers["Upload-Offset"])

    def _offset(self, url: str, known: int) -> int:
        try:
            response = self.http.head(url, timeout=TIMEOUT)
        except requests.RequestException:
            return known
        if response.status_code != 200:
            _raise_for(response)
        return int(response.headers["Upload-Offset"])


class _Retry(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")


def _raise_for(response: requests.Response) -> None:
    if response.status_code < 400:
        return
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    detail = answer.get("detail") if isinstance(answer, dict) else None
    report = answer.get("rapport") if isinstance(answer, dict) else None
    message = f"Refusé par la plateforme (HTTP {response.status_code}) : "
    message += str(detail or response.text[:300])
    if isinstance(report, str):  # a deposit refused at once (422): every problem, in French
        message += "\n\n" + report
    raise UploadError(message)
