"""Request bodies read with a bound: refused on their declared length, or as soon as the
bytes received pass the bound, never held whole in memory first."""

from __future__ import annotations

from starlette.requests import Request


class BodyTooLarge(Exception):
    """The body is longer than the endpoint accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"plus de {limit} octets")
        self.limit = limit


async def read_bounded(request: Request, limit: int) -> bytes:
    """The request's body, or BodyTooLarge beyond `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(limit)
    return bytes(body)
