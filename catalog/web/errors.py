"""French error pages (issue #19): a browser that asks for a page that does not exist (404),
with a method it does not answer (405), or that meets an unexpected error (500) gets a
French HTML page in the portal's look (`erreur.html`, on `base.html`). The APIs and services
(`/api/`, OGC, DCAT… every prefix the rate limiter counts, and `/static/`) keep their JSON
errors, in French too, whatever the caller accepts.

A request is a browser's when it accepts `text/html` (`curl` and HTTP clients send
`*/*` and get JSON). A 410 Gone keeps its own page (`catalog.web.context.gone_answer`).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from catalog.web.pages import TEMPLATES

LOG = logging.getLogger(__name__)
STATIC_PREFIX = "/static/"
TITLES = {
    404: "Page introuvable",
    405: "Action impossible sur cette page",
    500: "Erreur interne",
}
INTERNAL = (
    "Une erreur inattendue s'est produite de notre côté ; elle est consignée dans le journal "
    "du serveur. Réessayez dans quelques instants."
)


def _french(status: int, request: Request) -> str:
    """The French explanation of a status whose detail is Starlette's English default
    (« Not Found »: an address no route answers)."""
    if status == 404:
        return (
            f"L'adresse « {request.url.path} » ne correspond à aucune page du portail : elle "
            "a peut-être changé, ou ce qu'elle désignait n'est pas (ou plus) publié."
        )
    if status == 405:
        return f"L'adresse « {request.url.path} » ne répond pas à la méthode {request.method}."
    return INTERNAL


class ErrorPages:
    def __init__(self, machine_prefixes: tuple[str, ...]) -> None:
        self.machine_prefixes = (*machine_prefixes, STATIC_PREFIX)

    def wants_page(self, request: Request) -> bool:
        path = request.url.path
        if any(path.startswith(prefix) for prefix in self.machine_prefixes):
            return False
        return "text/html" in request.headers.get("accept", "")

    def answer(
        self, request: Request, status: int, detail: Any, headers: dict[str, str] | None
    ) -> Response:
        """`detail`: the route's own (French) explanation; None for the status's default."""
        message = _french(status, request) if detail is None else detail
        if not self.wants_page(request):
            return JSONResponse({"detail": message}, status_code=status, headers=headers)
        context = {"titre": TITLES.get(status, HTTPStatus(status).phrase), "message": message}
        return TEMPLATES.TemplateResponse(
            request, "erreur.html", context, status_code=status, headers=headers
        )

    async def http_error(self, request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        status = error.status_code
        if status not in TITLES:  # 401, 403, 400…: the routes' JSON, as before
            return await http_exception_handler(request, error)
        default = error.detail == HTTPStatus(status).phrase
        return self.answer(request, status, None if default else error.detail, error.headers)

    async def internal_error(self, request: Request, error: Exception) -> Response:
        """Starlette logs the exception and re-raises it after this answer."""
        try:
            return self.answer(request, 500, None, None)
        except Exception:  # the page itself failed: a plain French answer still
            LOG.exception("page d'erreur impossible à produire")
            return HTMLResponse(f"<!doctype html><p>{INTERNAL}</p>", status_code=500)


def install(app: FastAPI, machine_prefixes: tuple[str, ...]) -> None:
    pages = ErrorPages(machine_prefixes)
    app.add_exception_handler(StarletteHTTPException, pages.http_error)
    app.add_exception_handler(500, pages.internal_error)
