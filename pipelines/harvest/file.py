"""Source type `fichier`: a file at an http(s) URL (also what a CKAN or DCAT catalog
points to).

The format is the declared one, else the file name the server gives, the URL's extension,
or the Content-Type; a complete body is still refused when it is an HTML page or does not
start as its format does.
"""

from __future__ import annotations

from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.input_formats import DESCRIPTIONS, FORMAT_BY_MEDIA_TYPE, FORMAT_BY_SUFFIX
from core.records import SourceState
from core.sources import Source, check_source_url
from pipelines.harvest.changes import conditional_headers, keep, same_validators, unchanged
from pipelines.harvest.contract import Fetching, FetchResult
from pipelines.harvest.errors import SourceError
from pipelines.harvest.http import Answer, HttpClient

# What a fetched file's format is known by: its input format's description (core.input_formats).
EXTENSIONS = {d.name: d.usual_extension for d in DESCRIPTIONS}
CONTENT_TYPES = FORMAT_BY_MEDIA_TYPE
MAGIC = {d.name: d.magic for d in DESCRIPTIONS if d.magic}


class FileSource:
    """`type: fichier`: the file at `url`, in its `format` when declared."""

    name = "fichier"

    def fetch(self, source: Source, state: SourceState | None, fetching: Fetching) -> FetchResult:
        return fetch_file(
            fetching.client, source.url, source.format, state, fetching.target_dir, fetching.name
        )


def fetch_file(
    client: HttpClient,
    url: str,
    declared_format: str | None,
    state: SourceState | None,
    target_dir: Path,
    name: str,
) -> FetchResult:
    what = "Téléchargement du fichier de la commune"
    part = target_dir / f".{name}.part"
    response = client.download(url, what, part, conditional_headers(state))
    etag, modified = response.header("etag"), response.header("last-modified")
    if response.status == 304:
        assert state is not None
        return unchanged("304", url, state, etag or state.etag, modified or state.last_modified)
    try:
        same = same_validators(state, etag, modified)
        if same is not None:
            assert state is not None
            return unchanged(same, url, state, etag, modified)
        fmt = declared_format or _format_of(response, url)
        _check_content(part, fmt, response, url)
        return keep(part, target_dir / f"{name}{EXTENSIONS[fmt]}", state, url, etag, modified)
    finally:
        part.unlink(missing_ok=True)


def _format_of(response: Answer, url: str) -> str:
    """The format from the file name the server gives, else from the URL's extension, else
    from Content-Type (last: an XLSX is often served as application/zip)."""
    names = [urlsplit(response.url or url).path]
    disposition = response.header("content-disposition")
    if disposition:
        message = Message()
        message["content-disposition"] = disposition
        names.insert(0, message.get_filename() or "")
    for name in names:
        if Path(name).suffix.lower() in FORMAT_BY_SUFFIX:
            return FORMAT_BY_SUFFIX[Path(name).suffix.lower()]
    if response.media_type in CONTENT_TYPES:
        return CONTENT_TYPES[response.media_type]
    raise SourceError(
        "format-indetermine",
        f"Format du fichier indéterminé (type « {response.media_type or 'absent'} », sans "
        f"extension connue) : précisez « format: » dans la source ({', '.join(EXTENSIONS)})",
        url,
    )


def _check_content(path: Path, fmt: str, response: Answer, url: str) -> None:
    """A complete body may still not be data: an HTML page, or another format."""
    with path.open("rb") as handle:
        head = handle.read(1024)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not text:
        raise SourceError("reponse-vide", "Le serveur a envoyé une réponse vide", url)
    if response.media_type in {"text/html", "application/xhtml+xml"} or text.startswith(
        (b"<!doctype html", b"<html")
    ):
        raise SourceError(
            "page-html",
            f"Le serveur a envoyé une page HTML au lieu de données au format {fmt.upper()} "
            "(page d'erreur, de connexion ou de maintenance ?)",
            url,
        )
    expected = MAGIC.get(fmt)
    if expected and not (head if fmt != "geojson" else text).startswith(expected):
        raise SourceError(
            "contenu-inattendu",
            f"Le contenu reçu n'est pas un fichier {fmt.upper()} (début : {head[:40]!r})",
            url,
        )


def public_url(value: Any, url: str) -> str:
    try:
        return check_source_url(value or "")
    except ValueError as error:
        raise SourceError("adresse-invalide", str(error), url) from error
