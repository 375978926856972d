"""Endpoints that take a body stop reading it at their bound: a client cannot make the
catalog hold an arbitrarily large request in memory."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from catalog.web.app import create_app

BIG = 4 * 2**20


def endless(total: int = BIG) -> Iterator[bytes]:
    """A body sent in chunks, with no Content-Length: only reading it tells its size."""
    sent = 0
    while sent < total:
        sent += 65_536
        yield b"x" * 65_536


@pytest.mark.parametrize("path", ["/api/securite/csp", "/api/abonnements"])
def test_an_oversized_body_is_refused_whether_declared_or_streamed(store, path: str) -> None:
    with TestClient(create_app(store, services=[])) as http:
        declared = http.post(path, content=b"x" * (BIG // 4))
        streamed = http.post(path, content=endless())
    assert declared.status_code == 413
    assert streamed.status_code == 413
