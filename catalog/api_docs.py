"""The API's documentation page (`/docs`, Swagger UI), from assets packaged with the
catalog (those of fastapi-offline: Swagger UI 5.32, which reads OpenAPI 3.1 as FastAPI
writes it) rather than from a CDN: it works offline,
and the page loads nothing but the catalog's own files.

`page` renders it; the security headers (`catalog.security`) allow its one inline script
by hash, rendered the same way.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

PATH = "/docs"
ASSETS_PATH = "/docs/fichiers"
ASSETS_DIR = Path(fastapi_offline.__file__).with_name("static")
ASSETS = {  # the files the page loads, and their media types
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
TITLE_SUFFIX = " — documentation de l'API"


def page(app: FastAPI, root_path: str = "") -> HTMLResponse:
    """The Swagger UI page of `app`'s OpenAPI document, its assets from `ASSETS_PATH`."""
    root = root_path.rstrip("/")
    assets = root + ASSETS_PATH
    return get_swagger_ui_html(
        openapi_url=root + (app.openapi_url or ""),
        title=app.title + TITLE_SUFFIX,
        swagger_js_url=f"{assets}/swagger-ui-bundle.js",
        swagger_css_url=f"{assets}/swagger-ui.css",
        swagger_favicon_url=f"{assets}/favicon.png",
        swagger_ui_parameters=app.swagger_ui_parameters,
    )


def asset(name: str) -> Path | None:
    """The packaged file `name` the page loads; None for any other name."""
    return ASSETS_DIR / name if name in ASSETS else None
