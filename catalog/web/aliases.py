"""Old API paths kept for one release, answered exactly as the paths that replace them.

The API paths are French, in the words of the people who type them: everything of one
commune is under `/api/communes/<commune>/…` (its usage statistics, its deposits, its
resumable uploads), as its page is under `/communes/<commune>`. The paths they replace
(`RENAMED`) stay served for one release by the same handlers, with the same answers;
they are marked `deprecated` in the OpenAPI document, and their answers (errors apart)
say so: `Deprecation` (RFC 9745, the date of the renaming) and
`Link: <the new path>; rel="successor-version"`.

A router registers an endpoint under its new path and its old names at once with
`route(api, methods, path, …)`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.routing import APIRoute

from catalog import site

RENAMED = {"/api/communes/": "/api/producteurs/"}  # new prefix -> old prefix, for one release
DEPRECATED_SINCE = datetime(2026, 12, 7, tzinfo=UTC)  # when the old names were deprecated

Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def old_names(path: str) -> list[str]:
    """The old names of `path` (a route's path template)."""
    return [old + path[len(new) :] for new, old in RENAMED.items() if path.startswith(new)]


def successor(request: Request) -> str:
    """The new URL of a request made on an old path (on the public URL)."""
    path = request.url.path
    new, old = next((new, old) for new, old in RENAMED.items() if path.startswith(old))
    return f"{site.public_url(request)}{new}{path[len(old) :]}"


class DeprecatedAlias(APIRoute):
    """A route under an old name: its answers say it is deprecated, and what replaces it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def announced(request: Request) -> Response:
            response = await handler(request)
            response.headers["Deprecation"] = f"@{int(DEPRECATED_SINCE.timestamp())}"
            link = f'<{successor(request)}>; rel="successor-version"'
            if "link" in response.headers:  # a licence, a next page…: kept
                link = f"{response.headers['link']}, {link}"
            response.headers["Link"] = link
            return response

        return announced


def route(
    api: APIRouter, methods: list[str], path: str, **options: Any
) -> Callable[[Endpoint], Endpoint]:
    """Register the endpoint under `path` and, deprecated, under each of its old names."""

    def register(endpoint: Endpoint) -> Endpoint:
        api.add_api_route(path, endpoint, methods=methods, **options)
        summary = options.get("summary")
        for old_path in old_names(path):
            api.add_api_route(
                old_path,
                endpoint,
                methods=methods,
                deprecated=True,
                route_class_override=DeprecatedAlias,
                **{**options, "summary": f"{summary} (obsolète : {path})" if summary else None},
            )
        return endpoint

    return register
