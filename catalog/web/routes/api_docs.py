"""`/docs`: the API's documentation (Swagger UI) with its packaged assets
(`catalog.api_docs`); `/redoc`, which needed a CDN, leads there."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from catalog import api_docs
from catalog.web.context import Web

CACHE = "public, max-age=86400"  # the files change only with the package's version


def router(web: Web) -> APIRouter:
    api = APIRouter()

    @api.get(api_docs.PATH, response_class=HTMLResponse, include_in_schema=False)
    def documentation(request: Request) -> HTMLResponse:
        return api_docs.page(request.app, request.scope.get("root_path", ""))

    @api.get(api_docs.ASSETS_PATH + "/{fichier}", include_in_schema=False)
    def asset(fichier: str) -> FileResponse:
        path = api_docs.asset(fichier)
        if path is None:
            raise HTTPException(404, "Fichier inconnu de la documentation de l'API.")
        media_type = api_docs.ASSETS[fichier]
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": CACHE})

    @api.get("/redoc", include_in_schema=False)
    def redoc() -> RedirectResponse:
        return RedirectResponse(api_docs.PATH, status_code=308)

    return api
