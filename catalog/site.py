"""The catalog's public base URL: the only origin of the absolute links it writes.

Every absolute link of every document (WMS/WFS/CSW capabilities, OGC API links, Atom
feeds, DCAT, the embed snippet, the paging links of the rows API…) starts with
`OPENDATA_PUBLIC_URL` (`core.settings.configured_public_url`, default
http://127.0.0.1:8000), never with the request's `Host` or `X-Forwarded-*` headers: a
forged header must not end up in an answer that a cache in front of the catalog keeps and
hands to everyone else (issue #16).

`create_app` keeps the URL on the application (`install`); the routes and the OGC
services mounted on it read it back with `public_url(request)` or `of_app(app)`. The
redirects the framework itself builds from the request (Starlette's trailing-slash ones)
are moved onto the public URL by `PublicRedirects`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request

from core.settings import configured_public_url


def install(app: Any, url: str) -> None:
    """Serve `app`'s absolute links from `url` (checked like OPENDATA_PUBLIC_URL)."""
    app.state.public_url = configured_public_url({"OPENDATA_PUBLIC_URL": url})


def of_app(app: Any) -> str:
    """The application's public base URL; the configured one for an app without its own."""
    state = getattr(app, "state", None)
    return getattr(state, "public_url", None) or configured_public_url()


def public_url(request: Request) -> str:
    """The base of the absolute links of an answer to `request`, whatever its headers say."""
    return of_app(request.app)


Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class PublicRedirects:
    """ASGI middleware: a `Location` on the request's own origin (the Host it was sent
    with) is rewritten onto the public URL. Starlette builds its trailing-slash redirects
    from the Host: a forged one would send the client away, and behind a proxy that passes
    its own Host the redirect would name the proxy's upstream."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        asked = str(Request(scope).base_url)  # scheme, Host and root path, with a "/"

        async def send_public(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (name, _on_public(value, asked, scope) if name == b"location" else value)
                    for name, value in message.get("headers", [])
                ]
            await send(message)

        await self.app(scope, receive, send_public)


def _on_public(location: bytes, asked: str, scope: Message) -> bytes:
    text = location.decode("latin-1")
    if not text.startswith(asked):
        return location
    return (of_app(scope.get("app")) + "/" + text[len(asked) :]).encode("latin-1")


def cgi_server(url: str) -> dict[str, str]:
    """The CGI server variables (SERVER_NAME, SERVER_PORT, HTTPS) of a public base URL,
    for the programs (MapServer, pycsw) that build links from them."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    return {
        "SERVER_NAME": parts.hostname or "localhost",
        "SERVER_PORT": str(parts.port or (443 if https else 80)),
        "HTTPS": "on" if https else "off",
    }
