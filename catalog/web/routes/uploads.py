"""Submissions over HTTP, beside the drop folder and the command line (issue #9).

An upload becomes a drop folder `inbox/<commune>/<identifiant>/`, so the commune's DAG
processes it exactly as a dropped one: both follow the inbox's folder protocol
(`core.inbox`); same stages, same report, same archive. The folder is written in
`inbox/.televersements/` (the same file system, a folder no DAG reads) and renamed into
place: the DAG never sees a half-written folder. When the dataset's folder already exists
with only the previous submission's reports in it, the files are renamed into it one by
one, the metadata last: a folder without its metadata is not ready, so the DAG still never
takes it early. A folder that still holds a submission waiting for the DAG, or a declared
source, is left alone (409). A marker (`.depot`, `core.inbox.UPLOAD_MARKER`) gives the
submission the upload's id, which the status URL follows.

- `POST /api/communes/<commune>/depots` (multipart): `fichier` (the data file),
  `metadonnees` (metadata.yaml), optionally `schema` (Table Schema, saved as
  `schema.json`) and `jeu` (the identifier, when metadata.yaml has no `identifiant`); or
  `televersement` (a completed resumable upload) instead of `fichier`. Its content is
  checked at once (`core.deposit_checks`: metadata, licence, identifier, declared schema,
  a CSV's head and header against the schema), in the pipeline's own words: 422 with
  every problem in one French report (`problemes`, `rapport`), nothing written (a
  resumable upload is kept, to deposit again with corrected metadata); 202 with the
  upload's id, its status URL and when the commune's DAG should process it.
- `GET /api/communes/<commune>/depots/<id>`: waiting, with the expected processing time
  (`traitement_prevu`: the next run of the commune's `planification`, `core.schedule`),
  or the outcome with its report. The agent who deposited is mailed the outcome
  (`pipelines.notify.tell_depositor`; `courriel_envoye_le`).
- Resumable upload of big files, after tus 1.0 (core protocol, checksum extension):
  `POST …/televersements` (`Upload-Length`, `Upload-Metadata: filename <base64>,sha256
  <base64 of the hex digest>`) answers 201 with its URL; `PATCH <url>` appends a chunk
  (`Upload-Offset`, `Content-Type: application/offset+octet-stream`, optional
  `Upload-Checksum: sha256 <base64 digest>`, 460 when it does not match); `HEAD <url>`
  gives the offset to resume from after an interruption; `DELETE <url>` abandons it.
  The file's SHA-256 is checked once it is complete. Uploads idle for 7 days are removed.

Limits (bytes, from the environment): `OPENDATA_UPLOAD_MAX_BYTES` (default 100 Mio) for
one request (a file sent in one go, or one chunk), `OPENDATA_UPLOAD_MAX_FILE_BYTES`
(default 20 Gio) for a file sent in chunks; 413 with a French message beyond them.

The former paths `/api/producteurs/<commune>/…` answer the same for one release,
deprecated (`catalog.web.aliases`).

Only the commune's agents and the data team may upload for a commune (401, 403); every
upload is written to the audit log.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect

from catalog import accounts
from catalog.site import public_url
from catalog.store import CatalogStore
from catalog.web.aliases import route
from catalog.web.context import Web
from core import clock
from core.access import Principal
from core.deposit_checks import HEAD_BYTES, Received, check_deposit
from core.inbox import (
    METADATA_NAMES,
    NOT_DATA,
    REPORTS,
    SCHEMA_NAME,
    SUBMISSION_ID,
    UPLOAD_MARKER,
    deposit_mail_key,
    file_sha256,
    new_submission_id,
    upload_marker,
)
from core.input_formats import FORMAT_BY_SUFFIX
from core.problems import Report
from core.schedule import expected_processing
from core.settings import Settings
from core.urls import dataset_api, dataset_page, download

STAGING = ".televersements"  # under the inbox: same file system as the drop folders
DEFAULT_REQUEST_MAX = 100 * 2**20
DEFAULT_FILE_MAX = 20 * 2**30
METADATA_MAX = 2**20
IDLE_DAYS = 7
TUS_VERSION = "1.0.0"
CHUNK_TYPE = "application/offset+octet-stream"
CHECKSUM_MISMATCH = 460  # tus checksum extension
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
WRITE_BUFFER = 2**20
FIELDS = {"fichier", "metadonnees", "schema", "jeu", "televersement"}
SERVED = {"publiee", "confirmee"}  # outcomes after which the dataset is served
STATUS_LABELS = {
    "en-attente": "Reçu, en attente de traitement par la chaîne de publication (ou en cours).",
    "publiee": "Publié.",
    "confirmee": "Contenu identique à la version diffusée : aucune nouvelle version ; la date "
    "de mise à jour des données est celle des métadonnées déposées.",
    "refusee": "Refusé : voir le rapport.",
}


@dataclass(frozen=True)
class Limits:
    request: int  # one request: a file sent in one go, or one chunk
    file: int  # a file sent in chunks

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            request=int(os.environ.get("OPENDATA_UPLOAD_MAX_BYTES", DEFAULT_REQUEST_MAX)),
            file=int(os.environ.get("OPENDATA_UPLOAD_MAX_FILE_BYTES", DEFAULT_FILE_MAX)),
        )


def size_text(count: int) -> str:
    """A size in French: octets, Kio, Mio, Gio."""
    value = float(count)
    for unit in ("octets", "Kio", "Mio"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "octets" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} Gio"


def too_large(message: str) -> HTTPException:
    return HTTPException(413, detail=message)


# --- where things are written -------------------------------------------------------------------


def staging_root(settings: Settings) -> Path:
    return settings.inbox_dir / STAGING


def upload_dir(settings: Settings, upload_id: str) -> Path:
    return staging_root(settings) / "morceaux" / upload_id


def status_path(commune: str, deposit_id: str) -> str:
    return f"/api/communes/{commune}/depots/{deposit_id}"


def upload_path(commune: str, upload_id: str) -> str:
    return f"/api/communes/{commune}/televersements/{upload_id}"


@contextmanager
def locked(path: Path, *, wait: bool = True) -> Iterator[None]:
    """An exclusive lock (flock) on `path`: across requests, workers and processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError as error:
            raise HTTPException(
                423, detail="Un autre envoi est en cours pour ce téléversement : attendez sa fin."
            ) from error
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_json(path: Path, content: dict[str, Any]) -> None:
    """Write a JSON file atomically (temporary file, then rename)."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    temporary.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    os.replace(temporary, path)


# --- a submission's files -----------------------------------------------------------------------


def data_name(filename: str | None) -> str:
    """A safe name for the data file, keeping its extension (which tells its format)."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in FORMAT_BY_SUFFIX:
        accepted = ", ".join(sorted(FORMAT_BY_SUFFIX))
        raise HTTPException(
            415,
            detail=f"Fichier de données « {name or '(sans nom)'} » : format non accepté. "
            f"Extensions acceptées : {accepted}.",
        )
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", PurePosixPath(name).stem).strip("-") or "donnees"
    safe = f"{stem[:80]}{suffix}"
    return f"donnees{suffix}" if safe.lower() in NOT_DATA | set(METADATA_NAMES) else safe


# --- into the drop folder -----------------------------------------------------------------------


def pending_files(folder: Path) -> list[str]:
    """What a drop folder holds besides the previous submission's reports."""
    return sorted(p.name for p in folder.iterdir() if p.name not in REPORTS)


def place(staged: Path, target: Path, lock: Path) -> None:
    """Move a complete staged folder into the inbox, never visible half-written."""
    with locked(lock):
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staged, target)
            return
        waiting = pending_files(target)
        if waiting:
            raise _not_free(target, waiting)
        # Only the reports of the previous submission: the files go in one by one, the
        # metadata last, so the folder is not ready before it is complete.
        for path in sorted(staged.iterdir(), key=lambda p: p.name in METADATA_NAMES):
            os.rename(path, target / path.name)
        staged.rmdir()


def _not_free(target: Path, waiting: list[str]) -> HTTPException:
    return HTTPException(
        409,
        detail=f"Le dossier de dépôt « {target.parent.name}/{target.name} » n'est pas libre "
        f"({', '.join(n for n in waiting if not n.startswith('.'))}) : un dépôt y attend son "
        "traitement, ou le jeu est alimenté par une source déclarée. Réessayez une fois le "
        "dépôt traité (suivez son URL d'état).",
    )


@dataclass(frozen=True)
class Deposit:
    """What a depot request brought, checked; its files are written by `write_deposit`."""

    commune: str
    identifier: str
    metadata: bytes
    schema: bytes | None
    data_name: str
    data_file: UploadFile | None  # sent in one go
    upload_id: str | None  # or a completed resumable upload


def write_deposit(
    store: CatalogStore, settings: Settings, deposit: Deposit, principal: Principal
) -> dict[str, Any]:
    """Stage the files, move them into the commune's inbox, record who did it."""
    deposit_id = new_submission_id()
    target = settings.inbox_dir / deposit.commune / deposit.identifier
    if target.is_dir() and pending_files(target):  # checked again, under the lock
        raise _not_free(target, pending_files(target))
    staged = staging_root(settings) / "depots" / deposit_id
    staged.mkdir(parents=True)
    try:
        size, digest = _stage_data(settings, deposit, staged)
        (staged / "metadata.yaml").write_bytes(deposit.metadata)
        if deposit.schema is not None:
            (staged / SCHEMA_NAME).write_bytes(deposit.schema)
        marker = {
            "id": deposit_id,
            "recu_le": clock.now().isoformat(),
            "par": principal.label,
            "jeton": principal.subject,
            "courriel": principal.email or None,  # told the outcome (pipelines.notify)
            "fichier": deposit.data_name,
            "taille": size,
            "sha256": digest,
        }
        write_json(staged / UPLOAD_MARKER, marker)  # the submission's id (see module doc)
        lock = staging_root(settings) / "verrous" / f"{deposit.commune}--{deposit.identifier}"
        place(staged, target, lock)
    except BaseException:
        _give_back(settings, deposit, staged)
        raise
    finally:
        shutil.rmtree(staged, ignore_errors=True)  # gone already once placed
    if deposit.upload_id:
        shutil.rmtree(upload_dir(settings, deposit.upload_id), ignore_errors=True)
    slug = f"{deposit.commune}-{deposit.identifier}"
    received = {"fichier": deposit.data_name, "taille": size, "sha256": digest}
    mode = "morceaux" if deposit.upload_id else "direct"
    details = {"depot": deposit_id, **received, "mode": mode}
    accounts.audit(
        store, principal, "depot-recu", commune=deposit.commune, target=slug, details=details
    )
    return {
        "depot": deposit_id,
        "statut": "en-attente",
        "libelle": STATUS_LABELS["en-attente"],
        "jeu_de_donnees": slug,
        **received,
        "url_statut": status_path(deposit.commune, deposit_id),
    }


def _give_back(settings: Settings, deposit: Deposit, staged: Path) -> None:
    """A resumable upload's file goes back to its upload when the deposit fails."""
    data = staged / deposit.data_name
    if deposit.upload_id and data.exists():
        os.rename(data, upload_dir(settings, deposit.upload_id) / "donnees")


async def receive_deposit(
    store: CatalogStore, settings: Settings, form: FormData, commune: str, principal: Principal
) -> dict[str, Any]:
    """A deposit the way the API takes it (`collect_deposit`: the request's parts and every
    check of their content; then `write_deposit`), for the portal's form (« Mes dépôts »):
    the same checks, the same drop folder, the same audit log. The API's 202 body."""
    try:
        checked = await collect_deposit(form, commune, settings)
    except DepositRefused as refused:
        rules = sorted({p.rule for p in refused.report.problems})
        details = {"problemes": refused.report.total, "regles": rules}
        accounts.audit(store, principal, "depot-refuse", commune=commune, details=details)
        raise
    return await run_in_threadpool(write_deposit, store, settings, checked, principal)


def _stage_data(settings: Settings, deposit: Deposit, staged: Path) -> tuple[int, str]:
    target = staged / deposit.data_name
    if deposit.data_file is not None:
        digest = hashlib.sha256()
        deposit.data_file.file.seek(0)
        with target.open("wb") as out:
            while piece := deposit.data_file.file.read(WRITE_BUFFER):
                digest.update(piece)
                out.write(piece)
        return target.stat().st_size, digest.hexdigest()
    folder = upload_dir(settings, str(deposit.upload_id))
    with locked(folder / ".verrou", wait=False):
        info = _completed(folder)
        os.rename(folder / "donnees", target)
    return info["taille"], info["empreinte"]


def _completed(folder: Path) -> dict[str, Any]:
    info = read_upload(folder)
    received = (folder / "donnees").stat().st_size
    if not info.get("empreinte") and received == info["taille"]:
        finish_if_complete(folder, received)  # the last chunk's check was interrupted
        info = read_upload(folder)
    if not info.get("empreinte"):
        raise HTTPException(
            409,
            detail=f"Téléversement incomplet : {received} octets reçus sur {info['taille']}. "
            "Reprenez l'envoi (HEAD pour connaître le décalage) puis redemandez le dépôt.",
        )
    return info


# --- resumable uploads --------------------------------------------------------------------------


def read_upload(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "info.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise HTTPException(
            404,
            detail="Téléversement introuvable (terminé, abandonné ou "
            "expiré après 7 jours sans envoi).",
        ) from error


def upload_or_404(settings: Settings, commune: str, upload_id: str) -> Path:
    folder = upload_dir(settings, upload_id)
    if not UPLOAD_ID.fullmatch(upload_id) or read_upload(folder).get("commune") != commune:
        raise HTTPException(404, detail=f"Téléversement « {upload_id} » introuvable.")
    return folder


def parse_upload_metadata(header: str) -> dict[str, str]:
    """tus `Upload-Metadata`: `key base64value,key base64value`."""
    values = {}
    for pair in filter(None, (p.strip() for p in header.split(","))):
        key, _, encoded = pair.partition(" ")
        try:
            values[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise HTTPException(
                400, detail=f"Upload-Metadata : valeur de « {key} » illisible (base64 attendu)."
            ) from error
    return values


def header_int(request: Request, name: str) -> int:
    try:
        value = int(request.headers[name])
    except (KeyError, ValueError) as error:
        raise HTTPException(400, detail=f"En-tête « {name} » requis : un entier.") from error
    if value < 0:
        raise HTTPException(400, detail=f"En-tête « {name} » : un entier positif.")
    return value


def remove_idle_uploads(settings: Settings) -> None:
    """Uploads without a chunk for `IDLE_DAYS` days are abandoned."""
    limit = time.time() - IDLE_DAYS * 86400
    root = staging_root(settings) / "morceaux"
    for folder in root.glob("*/") if root.is_dir() else []:
        data = folder / "donnees"
        last = data.stat().st_mtime if data.exists() else folder.stat().st_mtime
        if last < limit:
            shutil.rmtree(folder, ignore_errors=True)


def create_upload(
    settings: Settings, commune: str, length: int, metadata: dict[str, str], principal: Principal
) -> str:
    limits = Limits.from_env()
    if length < 1:
        raise HTTPException(400, detail="« Upload-Length » : la taille du fichier, en octets.")
    if length > limits.file:
        raise too_large(
            f"Fichier trop volumineux : {size_text(length)} annoncés, au plus "
            f"{size_text(limits.file)} acceptés (OPENDATA_UPLOAD_MAX_FILE_BYTES)."
        )
    expected = metadata.get("sha256", "").lower()
    if expected and not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise HTTPException(400, detail="Upload-Metadata « sha256 » : 64 chiffres hexadécimaux.")
    name = data_name(metadata.get("filename"))
    remove_idle_uploads(settings)
    root = staging_root(settings) / "morceaux"
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if length > free:
        raise HTTPException(
            507, detail=f"Espace disque insuffisant pour {size_text(length)} : réessayez plus tard."
        )
    upload_id = uuid.uuid4().hex
    folder = root / upload_id
    folder.mkdir()
    (folder / "donnees").touch()
    info = {
        "id": upload_id,
        "commune": commune,
        "taille": length,
        "nom": name,
        "sha256": expected or None,
        "empreinte": None,
        "cree_le": clock.now().isoformat(),
        "par": principal.label,
    }
    write_json(folder / "info.json", info)
    return upload_id


def chunk_checksum(request: Request) -> bytes | None:
    """The digest of `Upload-Checksum: sha256 <base64>`, if given."""
    header = request.headers.get("upload-checksum")
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm.lower() != "sha256":
        raise HTTPException(400, detail="Upload-Checksum : seul « sha256 » est accepté.")
    try:
        return base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error as error:
        raise HTTPException(
            400, detail="Upload-Checksum : empreinte en base64 attendue."
        ) from error


async def append_chunk(request: Request, folder: Path, limit: int) -> int:
    """Append the request's body at the upload's offset; the new offset."""
    info = read_upload(folder)
    data = folder / "donnees"
    offset = data.stat().st_size
    given = header_int(request, "upload-offset")
    if given != offset:
        raise HTTPException(
            409,
            detail=f"Décalage {given} inattendu : le serveur a reçu {offset} octets. Reprenez "
            "à ce décalage.",
            headers={"Upload-Offset": str(offset), "Tus-Resumable": TUS_VERSION},
        )
    expected = chunk_checksum(request)
    try:
        written, digest = await _receive(request, data, limit, info["taille"] - offset)
    except ClientDisconnect:
        if expected is not None:  # a partial chunk cannot be checked: it is dropped
            _truncate(data, offset)
        return data.stat().st_size
    except HTTPException:
        _truncate(data, offset)
        raise
    if expected is not None and digest != expected:
        _truncate(data, offset)
        raise HTTPException(
            CHECKSUM_MISMATCH,
            detail="Morceau altéré en route (empreinte SHA-256 différente) : renvoyez-le.",
            headers={"Upload-Offset": str(offset)},
        )
    return offset + written


async def _receive(request: Request, data: Path, limit: int, left: int) -> tuple[int, bytes]:
    room = min(limit, left)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > room:
        raise _chunk_too_large(limit, left)
    digest = hashlib.sha256()
    written = 0
    buffer = bytearray()
    with data.open("ab") as out:
        try:
            async for piece in request.stream():
                written += len(piece)
                if written > room:
                    raise _chunk_too_large(limit, left)
                digest.update(piece)
                buffer += piece
                if len(buffer) >= WRITE_BUFFER:
                    await run_in_threadpool(out.write, bytes(buffer))
                    buffer.clear()
        finally:
            out.write(bytes(buffer))  # what arrived before an interruption is kept
    return written, digest.digest()


def _chunk_too_large(limit: int, left: int) -> HTTPException:
    if left < limit:
        return too_large(
            f"Morceau trop grand : il ne reste que {left} octets à envoyer sur la taille "
            "annoncée du fichier."
        )
    return too_large(
        f"Morceau trop grand : au plus {size_text(limit)} par requête "
        "(OPENDATA_UPLOAD_MAX_BYTES) ; envoyez des morceaux plus petits."
    )


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(size)


def finish_if_complete(folder: Path, offset: int) -> None:
    """Once every byte is there, check the file's SHA-256 (and drop the upload if wrong)."""
    info = read_upload(folder)
    if offset < info["taille"] or info.get("empreinte"):
        return
    actual = file_sha256(folder / "donnees")
    if info.get("sha256") and actual != info["sha256"]:
        shutil.rmtree(folder, ignore_errors=True)
        raise HTTPException(
            CHECKSUM_MISMATCH,
            detail=f"Fichier reçu différent de l'original (SHA-256 {actual}, attendu "
            f"{info['sha256']}) : le téléversement est abandonné, recommencez-le.",
        )
    write_json(folder / "info.json", {**info, "empreinte": actual})


OPENAPI_DEPOSIT = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["metadonnees"],
                    "properties": {
                        "fichier": {"type": "string", "format": "binary"},
                        "metadonnees": {"type": "string", "format": "binary"},
                        "schema": {"type": "string", "format": "binary"},
                        "jeu": {"type": "string"},
                        "televersement": {"type": "string"},
                    },
                }
            }
        },
    },
    "responses": {
        "422": {
            "description": "Dépôt refusé à la réception : chaque problème des métadonnées, de "
            "la licence, du schéma déclaré ou de l'en-tête du fichier, en français "
            "(« problemes » : étape, règle, message, ligne, colonne, suggestion ; « rapport » : "
            "le même en texte). Rien n'est enregistré.",
        }
    },
}


# --- HTTP ---------------------------------------------------------------------------------------


def router(web: Web) -> APIRouter:
    api = APIRouter()
    store, settings = web.store, web.settings

    def producer(request: Request, commune: str, what: str) -> tuple[Principal, Settings]:
        principal = accounts.authenticated(request, store)
        if commune not in web.producers:
            raise HTTPException(404, detail=f"Commune « {commune} » inconnue.")
        return accounts.require_commune(store, principal, commune, what), settings

    @route(
        api,
        ["POST"],
        "/api/communes/{commune}/depots",
        status_code=202,
        summary="Déposer un jeu de données (multipart : fichier + metadata.yaml)",
        openapi_extra=OPENAPI_DEPOSIT,
    )
    async def deposit(request: Request, commune: str) -> JSONResponse:
        principal, settings = producer(request, commune, "de déposer des données")
        form = await read_form(request, Limits.from_env().request)
        try:
            result = await receive_deposit(store, settings, form, commune, principal)
        except DepositRefused as refused:
            return JSONResponse(refusal_answer(refused.report), status_code=422)
        finally:
            await form.close()
        moment = clock.now()
        result["traitement_prevu"] = expected_time(web.producers[commune].schedule, moment, moment)
        return JSONResponse(result, status_code=202, headers={"Location": result["url_statut"]})

    @route(
        api,
        ["GET"],
        "/api/communes/{commune}/depots/{depot}",
        summary="État d'un dépôt : en attente, ou son résultat et son rapport",
    )
    def deposit_status(request: Request, commune: str, depot: str) -> dict[str, Any]:
        _, settings = producer(request, commune, "de suivre un dépôt")
        schedule = web.producers[commune].schedule
        return deposit_state(store, settings, commune, depot, public_url(request), schedule)

    @route(
        api,
        ["POST"],
        "/api/communes/{commune}/televersements",
        status_code=201,
        summary="Commencer un téléversement par morceaux (tus : Upload-Length, Upload-Metadata)",
    )
    def start_upload(request: Request, commune: str) -> JSONResponse:
        principal, settings = producer(request, commune, "de déposer des données")
        length = header_int(request, "upload-length")
        metadata = parse_upload_metadata(request.headers.get("upload-metadata", ""))
        upload_id = create_upload(settings, commune, length, metadata, principal)
        accounts.audit(
            store,
            principal,
            "televersement-cree",
            commune=commune,
            target=upload_id,
            details={"taille": length, "fichier": metadata.get("filename")},
        )
        url = upload_path(commune, upload_id)
        headers = {"Location": url, "Upload-Offset": "0", "Tus-Resumable": TUS_VERSION}
        body = {"televersement": upload_id, "url": url, "taille": length, "decalage": 0}
        return JSONResponse(body, status_code=201, headers=headers)

    @route(
        api,
        ["HEAD"],
        "/api/communes/{commune}/televersements/{upload}",
        include_in_schema=False,
    )
    def upload_offset(request: Request, commune: str, upload: str) -> Response:
        _, settings = producer(request, commune, "de déposer des données")
        folder = upload_or_404(settings, commune, upload)
        info = read_upload(folder)
        headers = {
            "Upload-Offset": str((folder / "donnees").stat().st_size),
            "Upload-Length": str(info["taille"]),
            "Tus-Resumable": TUS_VERSION,
            "Cache-Control": "no-store",
        }
        return Response(status_code=200, headers=headers)

    @route(
        api,
        ["PATCH"],
        "/api/communes/{commune}/televersements/{upload}",
        status_code=204,
        summary="Envoyer un morceau (Upload-Offset, application/offset+octet-stream)",
    )
    async def upload_chunk(request: Request, commune: str, upload: str) -> Response:
        _, settings = producer(request, commune, "de déposer des données")
        folder = upload_or_404(settings, commune, upload)
        if request.headers.get("content-type", "").split(";")[0].strip() != CHUNK_TYPE:
            raise HTTPException(415, detail=f"Content-Type attendu : {CHUNK_TYPE}.")
        with locked(folder / ".verrou", wait=False):
            offset = await append_chunk(request, folder, Limits.from_env().request)
            await run_in_threadpool(finish_if_complete, folder, offset)
        headers = {"Upload-Offset": str(offset), "Tus-Resumable": TUS_VERSION}
        return Response(status_code=204, headers=headers)

    @route(
        api,
        ["DELETE"],
        "/api/communes/{commune}/televersements/{upload}",
        status_code=204,
        summary="Abandonner un téléversement par morceaux",
    )
    def abandon_upload(request: Request, commune: str, upload: str) -> Response:
        principal, settings = producer(request, commune, "de déposer des données")
        folder = upload_or_404(settings, commune, upload)
        with locked(folder / ".verrou", wait=False):
            shutil.rmtree(folder)
        accounts.audit(store, principal, "televersement-abandonne", commune=commune, target=upload)
        return Response(status_code=204, headers={"Tus-Resumable": TUS_VERSION})

    return api


async def read_form(request: Request, limit: int) -> FormData:
    """The multipart body, at most `limit` bytes (413 beyond, before reading when declared)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _single_too_large(int(declared), limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise HTTPException(415, detail="Corps attendu : multipart/form-data.")
    received = 0
    receive = request.receive

    async def capped() -> Any:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > limit:
            raise _BodyTooLarge
        return message

    try:
        return await Request(request.scope, capped).form(max_files=3, max_fields=4)
    except _BodyTooLarge as error:
        raise _single_too_large(received, limit) from error


class _BodyTooLarge(Exception):
    pass


def _single_too_large(size: int, limit: int) -> HTTPException:
    return too_large(
        f"Envoi trop volumineux pour une seule requête ({size_text(size)} ; au plus "
        f"{size_text(limit)}, OPENDATA_UPLOAD_MAX_BYTES) : envoyez le fichier par morceaux "
        "(POST …/televersements), ce que fait « opendata deposer »."
    )


async def collect_deposit(form: FormData, commune: str, settings: Settings) -> Deposit:
    """The request's parts (400, 413, 415 when the request itself is wrong), then every
    check of their content at once (`core.deposit_checks`): `DepositRefused` with the French
    report when one fails, before anything is written."""
    unknown = set(form.keys()) - FIELDS
    if unknown:
        raise HTTPException(
            400,
            detail=f"Champ(s) inconnu(s) : {', '.join(sorted(unknown))}. Champs : fichier, "
            "metadonnees, schema (facultatif), jeu (facultatif), televersement (au lieu de "
            "fichier).",
        )
    metadata_part = form.get("metadonnees")
    if not isinstance(metadata_part, UploadFile):
        raise HTTPException(400, detail="Champ « metadonnees » requis : le fichier metadata.yaml.")
    metadata_bytes = await metadata_part.read(METADATA_MAX + 1)
    if len(metadata_bytes) > METADATA_MAX:
        raise too_large(f"metadata.yaml dépasse {size_text(METADATA_MAX)}.")
    schema_part = form.get("schema")
    schema = (
        await schema_part.read(METADATA_MAX + 1) if isinstance(schema_part, UploadFile) else None
    )
    if schema is not None and len(schema) > METADATA_MAX:
        raise too_large(f"Le schéma dépasse {size_text(METADATA_MAX)}.")
    data_part = form.get("fichier")
    upload_id = form.get("televersement")
    if isinstance(data_part, UploadFile) == isinstance(upload_id, str):
        raise HTTPException(
            400,
            detail="Joignez le fichier de données (champ « fichier ») ou donnez l'identifiant "
            "d'un téléversement par morceaux terminé (champ « televersement »), pas les deux.",
        )
    if isinstance(upload_id, str):
        upload_id = upload_id.strip()
        folder = upload_or_404(settings, commune, upload_id)
        info = read_upload(folder)
        name, size = info["nom"], int(info["taille"])
        head = await run_in_threadpool(_file_head, folder / "donnees")
    else:
        assert isinstance(data_part, UploadFile)
        name = data_name(data_part.filename)
        head = await data_part.read(HEAD_BYTES)
        await data_part.seek(0)
        size = data_part.size if data_part.size is not None else len(head)
        upload_id = None
    jeu = form.get("jeu")
    received = Received(
        commune, metadata_bytes, schema, name, head, size, jeu if isinstance(jeu, str) else None
    )
    verdict = await run_in_threadpool(check_deposit, received, settings.licenses_dir)
    if not verdict.report.valid or verdict.identifier is None:
        raise DepositRefused(verdict.report)
    data_file = data_part if isinstance(data_part, UploadFile) else None
    return Deposit(commune, verdict.identifier, metadata_bytes, schema, name, data_file, upload_id)


def _file_head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(HEAD_BYTES)


class DepositRefused(Exception):
    """A deposit whose content fails a check: nothing is written; its French report."""

    def __init__(self, report: Report) -> None:
        super().__init__(report.to_text())
        self.report = report


def refusal_answer(report: Report) -> dict[str, Any]:
    """The 422 body: every problem, in French, as a list and as a text."""
    return {
        "detail": f"Dépôt refusé : {report.total} problème(s) à corriger (liste dans "
        "« problemes »). Rien n'a été enregistré : corrigez-les puis déposez à nouveau.",
        "statut": "refuse",
        "nombre_problemes": report.total,
        "problemes": [problem.to_dict() for problem in report.problems],
        "rapport": report.to_text(),
    }


def deposit_state(
    store: CatalogStore,
    settings: Settings,
    commune: str,
    deposit_id: str,
    base: str,
    schedule: str | timedelta | None = None,
) -> dict[str, Any]:
    """Waiting in the inbox, with when the commune's DAG should take it (`traitement_prevu`,
    from its `schedule`), or the submission's outcome; once the data are served, where
    (`liens`: the dataset's page, its metadata API, its CSV), and when the depositor was
    mailed the outcome (`courriel_envoye_le`)."""
    unknown = HTTPException(404, detail=f"Dépôt « {deposit_id} » introuvable pour {commune}.")
    if not SUBMISSION_ID.fullmatch(deposit_id):
        raise unknown
    record = store.submission(deposit_id)
    if record is not None and record.producer == commune:
        mailed = store.mail_sent_at(deposit_mail_key(deposit_id))
        return {
            "depot": deposit_id,
            "statut": record.status,
            "libelle": STATUS_LABELS.get(record.status, record.status),
            "jeu_de_donnees": record.dataset,
            "version": record.release,
            "recu_le": record.received_at.isoformat(),
            "rapport": record.report,
            "liens": served_links(base, record.dataset) if record.status in SERVED else None,
            "traitement_prevu": None,
            "courriel_envoye_le": mailed.isoformat() if mailed else None,
        }
    for folder in sorted((settings.inbox_dir / commune).glob("*/")):
        marker = upload_marker(folder)
        if marker is not None and marker["id"] == deposit_id:
            received = datetime.fromisoformat(marker["recu_le"])
            return {
                "depot": deposit_id,
                "statut": "en-attente",
                "libelle": STATUS_LABELS["en-attente"],
                "jeu_de_donnees": f"{commune}-{folder.name}",
                "version": None,
                "recu_le": marker["recu_le"],
                "rapport": None,
                "liens": None,
                "traitement_prevu": expected_time(schedule, received, clock.now()),
                "courriel_envoye_le": None,
            }
    raise unknown


def expected_time(
    schedule: str | timedelta | None, received: datetime, now: datetime
) -> dict[str, str] | None:
    """When the commune's DAG should take a deposit (`core.schedule`): an ISO instant and a
    French sentence; None for a schedule without regular runs."""
    expected = expected_processing(schedule, received, now)
    return expected.to_dict() if expected else None


def served_links(base: str, slug: str) -> dict[str, str]:
    return {
        "page": dataset_page(base, slug),
        "api": dataset_api(base, slug),
        "csv": download(base, slug, "csv"),
    }
