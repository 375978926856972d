"""What an SSRF attacker aims at, for the tests of the egress guard (`core.netguard`,
issue #16): an HTTP server on loopback standing for the platform's internal network, which
records every request it gets (the tests prove it gets none), and a DNS resolver the test
controls.

The resolver replaces `socket.getaddrinfo` for one host name only: real DNS cannot be made
to answer a public address first and 127.0.0.1 next (rebinding), nor to fail then succeed,
and every resolution in the process (the guard's, urllib3's, httpcore's, rdflib's urllib)
goes through `socket.getaddrinfo`. Other names and IP literals get the real answer.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

# A JSON-LD context as a remote server would serve it (what rdflib would fetch).
CONTEXT = {
    "@context": {
        "dcat": "http://www.w3.org/ns/dcat#",
        "dct": "http://purl.org/dc/terms/",
    }
}
PUBLIC_ADDRESS = "93.184.215.14"  # a global unicast IPv4 address (not the platform's)


@dataclass
class Attacker:
    """The internal service: every request is recorded as (method, path, Host)."""

    port: int = 0
    received: list[tuple[str, str, str]] = field(default_factory=list)

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@contextmanager
def attacker_server() -> Iterator[Attacker]:
    state = Attacker()

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            state.received.append((self.command, self.path, self.headers.get("Host", "")))
            body = json.dumps(CONTEXT).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/ld+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_HEAD = answer  # noqa: N815 - http.server's names

        def log_message(self, *_args: Any) -> None:
            pass

    with loopback_server(Handler) as port:
        state.port = port
        yield state


@contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[int]:
    """`handler` served on a free loopback port, in a thread; yields the port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def fake_resolver(
    monkeypatch: pytest.MonkeyPatch, name: str, answers: Sequence[str | None]
) -> list[str]:
    """`name` resolves to `answers[0]` on the first lookup, `answers[1]` on the second…
    (the last one from then on); None: the name does not resolve. Returns the list of
    lookups of `name`, appended to as they happen."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != name:
            return real(host, port, *args, **kwargs)
        lookups.append(host)
        answer = answers[min(len(lookups), len(answers)) - 1]
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        number = int(port) if port else 0
        if ":" in answer:
            return [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (answer, number, 0, 0))]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer, number))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return lookups
