"""Downloads of a release, with its licence and source in every answer.

- `GET /api/datasets/<slug>/download/<format>`: the current release;
- `GET /api/datasets/<slug>/v<N>/download/<format>`: the current release of structure
  version N, so a link a reuser keeps never changes meaning silently.

`?crs=` asks for another coordinate system. Formats the release does not hold are derived
once from its Parquet and kept beside it (`catalog.store.downloads`; releases are immutable).
Every download has a strong ETag and Last-Modified (304 on revalidation), honours byte
ranges, and carries `Link: <licence>; rel="license"`, `X-Licence`, `X-Licence-Mention`,
`X-Source`, `X-Date-Mise-A-Jour` and `X-Version`; the structure's deprecation headers
when it is going away (`catalog.lifecycle.version_headers`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, Response

from catalog import lifecycle
from catalog.conditional import none_match
from catalog.store import CatalogStore, downloads
from catalog.visibility import CALLER
from catalog.web.context import Web, add_headers
from catalog.web.views import is_open, published_schema
from core.access import Principal
from core.dates import release_updated
from core.licences import fill_notice
from core.records import Dataset, Release

URL_SAFE = ":/?#[]@!$&'()*+,;=%~"  # kept as they are when a URL goes into a header


def router(web: Web) -> APIRouter:
    api = APIRouter()

    # The alias (current structure) and the stable versioned URL share one handler each;
    # without {version} in the path, `version` stays None: the current structure.
    @api.get("/api/datasets/{slug}/download/{fmt}", summary="Télécharger la version courante")
    @api.get(
        "/api/datasets/{slug}/v{version}/download/{fmt}",
        summary="Télécharger une version de structure précise",
    )
    @api.head("/api/datasets/{slug}/download/{fmt}", include_in_schema=False)
    @api.head("/api/datasets/{slug}/v{version}/download/{fmt}", include_in_schema=False)
    def download(
        request: Request,
        slug: str,
        fmt: str,
        version: int | None = None,
        crs: int | None = None,
        principal: Principal = CALLER,
    ) -> Response:
        dataset = web.dataset_or_404(slug, principal)
        release = web.release_or_404(slug, version)
        response = file_response(request, web.store, dataset, release, fmt, crs)
        add_headers(
            response,
            lifecycle.version_headers(
                web.store, dataset, release.structure_version, f"download/{fmt}"
            ),
        )
        web.counter.count(slug, "telechargement")
        return response

    return api


def date_fields(store: CatalogStore, release: Release) -> frozenset[str]:
    """The names of the release's Table Schema `date` fields."""
    fields = published_schema(store, release)["fields"]
    return frozenset(f["name"] for f in fields if f.get("type") == "date")


def file_response(
    request: Request,
    store: CatalogStore,
    dataset: Dataset,
    release: Release,
    fmt: str,
    crs: int | None,
) -> Response:
    """The release's file in `fmt` (and `crs`), derived once when the release lacks it."""
    geographic = release.distribution("geojson") is not None
    try:
        spec = downloads.check_request(fmt, crs, geographic)
    except downloads.FormatError as error:
        raise HTTPException(error.status, detail=str(error)) from error
    source = release.metadata.get("publisher_name", dataset.producer)
    updated = release_updated(dataset, release).isoformat()  # the reference (core.dates)
    notice = fill_notice(release.licence["notice"], source, updated)
    path = served_file(store, release, fmt, crs, notice)
    assert path is not None  # built when missing
    etag = f'"{release.id}-{fmt}-{crs or "natif"}"'
    headers = {
        "etag": etag,
        "last-modified": format_datetime(release.published_at.replace(tzinfo=UTC), usegmt=True),
        "cache-control": f"{'public' if is_open(dataset) else 'private'}, max-age=300",
        "Link": f'<{quote(release.licence["url"], safe=URL_SAFE)}>; rel="license"',
        "X-Licence": release.licence["id"],
        "X-Licence-Mention": quote(notice),
        "X-Source": quote(source),
        "X-Date-Mise-A-Jour": updated,
        "X-Version": release.id,
    }
    if not_modified(request, etag, release.published_at):
        return Response(status_code=304, headers=headers)
    suffix = f"-epsg{crs}" if crs else ""
    filename = f"{dataset.slug}-v{release.structure_version}{suffix}.{spec.extension}"
    return FileResponse(path, media_type=spec.media_type, filename=filename, headers=headers)


def ready_files(
    store: CatalogStore, release: Release, formats: list[str]
) -> dict[str, Path | None]:
    """The file each format's download would serve now; None for a file made on the first
    download (the portal shows the sizes of the files that exist, and builds none)."""
    dates = date_fields(store, release)
    return {fmt: served_file(store, release, fmt, None, None, dates) for fmt in formats}


def served_file(
    store: CatalogStore,
    release: Release,
    fmt: str,
    crs: int | None,
    notice: str | None,
    dates: frozenset[str] | None = None,
) -> Path | None:
    """The file a download of `fmt` (in `crs`) serves: a stored one, else derived from the
    Parquet, built now when `notice` is given; without it, None when not built yet.
    `dates`: the release's date fields, when known."""
    dates = date_fields(store, release) if dates is None else dates
    stored_format = "parquet" if fmt == "geoparquet" else fmt
    stored = release.distribution(stored_format)
    parquet = store.release_path(release, "parquet")
    reusable = stored is not None and crs in (None, stored.crs)
    # a Parquet keeps its dates typed; the other stored files are checked (once per file)
    if reusable and (
        stored_format == "parquet" or not downloads.dates_as_timestamps(parquet, dates)
    ):
        return store.release_path(release, stored_format)
    crs_or_default = crs or (4326 if fmt == "csv" else None)
    if notice is None:
        target = downloads.derived_path(parquet, fmt, crs_or_default) if parquet else None
        return target if target is not None and target.is_file() else None
    return downloads.derived_file(parquet, fmt, crs_or_default, notice, dates)


def not_modified(request: Request, etag: str, published_at: datetime) -> bool:
    """Whether the caller's copy is still the release's (If-None-Match, If-Modified-Since)."""
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        return none_match(if_none_match, etag)
    if_modified_since = request.headers.get("if-modified-since")
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:  # "-0000": UTC, without saying so
            since = since.replace(tzinfo=UTC)
        return published_at.replace(tzinfo=UTC) <= since
    return False
