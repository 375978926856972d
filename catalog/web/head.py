"""HEAD on every GET route (RFC 9110 §9.3.2): the GET's status and headers, no body.

FastAPI answers 405 to a HEAD on a route declared for GET only. This middleware runs such
a HEAD as a GET and drops the body, so that `Content-Length`, `ETag`, `Last-Modified` and
the licence headers are what a GET gets. Routes with a HEAD of their own (downloads,
which answer it without reading the file) keep it.
"""

from __future__ import annotations

from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD" or self._has_own_head(scope):
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)
            elif not message.get("more_body", False):
                await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, headers_only)

    def _has_own_head(self, scope: Scope) -> bool:
        """A route that matches the request fully, HEAD included (Starlette's FULL match)."""
        return any(route.matches(scope)[0] == Match.FULL for route in self.router.routes)
