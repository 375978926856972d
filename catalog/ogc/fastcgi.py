"""The web server's side of FastCGI 1.0 (the responder role), over a local socket.

No FastCGI client library on PyPI is both maintained and asyncio-friendly (flup's client is
WSGI-only and unmaintained, fcgi-client has one release, fcgiproto is the application's
side), and the part a web server needs is small: one request per connection, its
parameters and body as records, the application's standard output and error read back
until FCGI_END_REQUEST. https://fastcgi-archives.github.io/FastCGI_Specification.html
"""

from __future__ import annotations

import asyncio
import dataclasses
import struct
from collections.abc import Iterator, Mapping

VERSION = 1
BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST = 1, 2, 3
PARAMS, STDIN, STDOUT, STDERR = 4, 5, 6, 7
RESPONDER = 1
REQUEST_COMPLETE = 0
REQUEST_ID = 1  # one request per connection
MAX_CONTENT = 65535
HEADER = struct.Struct("!BBHHBx")  # version, type, request id, content length, padding
BEGIN_BODY = struct.Struct("!HB5x")  # role, flags (no FCGI_KEEP_CONN: the app closes)
END_BODY = struct.Struct("!IB3x")  # application status, protocol status


class ProtocolError(Exception):
    """The application answered something that is not FastCGI."""


@dataclasses.dataclass(frozen=True)
class Reply:
    """What the application sent back. `complete`: it ended the request (FCGI_END_REQUEST);
    False when the connection closed before, as when the process died."""

    stdout: bytes
    stderr: bytes
    complete: bool
    app_status: int = 0
    protocol_status: int = REQUEST_COMPLETE


def record(kind: int, content: bytes = b"") -> bytes:
    padding = -len(content) % 8
    return HEADER.pack(VERSION, kind, REQUEST_ID, len(content), padding) + content + bytes(padding)


def stream(kind: int, data: bytes) -> Iterator[bytes]:
    """A stream's records, the empty record that ends it last."""
    for start in range(0, len(data), MAX_CONTENT):
        yield record(kind, data[start : start + MAX_CONTENT])
    yield record(kind)


def _length(size: int) -> bytes:
    return bytes([size]) if size < 128 else struct.pack("!I", size | 0x80000000)


def encode_params(params: Mapping[str, str]) -> bytes:
    pairs = []
    for name, value in params.items():
        key, data = name.encode("latin-1"), value.encode("latin-1", "replace")
        pairs.append(_length(len(key)) + _length(len(data)) + key + data)
    return b"".join(pairs)


def request_bytes(params: Mapping[str, str], body: bytes) -> bytes:
    """A whole responder request: begin, parameters, standard input."""
    begin = record(BEGIN_REQUEST, BEGIN_BODY.pack(RESPONDER, 0))
    return b"".join([begin, *stream(PARAMS, encode_params(params)), *stream(STDIN, body)])


async def read_reply(reader: asyncio.StreamReader) -> Reply:
    """The application's records up to FCGI_END_REQUEST (or the end of the connection)."""
    out: list[bytes] = []
    err: list[bytes] = []
    while True:
        try:
            header = await reader.readexactly(HEADER.size)
        except asyncio.IncompleteReadError as ended:
            if ended.partial:
                raise ProtocolError("en-tête FastCGI tronqué") from None
            return Reply(b"".join(out), b"".join(err), complete=False)
        version, kind, _request, length, padding = HEADER.unpack(header)
        if version != VERSION:
            raise ProtocolError(f"version FastCGI inconnue : {version}")
        try:
            content = await reader.readexactly(length + padding)
        except asyncio.IncompleteReadError:
            return Reply(b"".join(out), b"".join(err), complete=False)
        content = content[:length]
        if kind == STDOUT:
            out.append(content)
        elif kind == STDERR:
            err.append(content)
        elif kind == END_REQUEST:
            if length < END_BODY.size:
                raise ProtocolError("fin de requête FastCGI tronquée")
            status, protocol = END_BODY.unpack(content[: END_BODY.size])
            return Reply(b"".join(out), b"".join(err), True, status, protocol)
        else:
            raise ProtocolError(f"enregistrement FastCGI inattendu : type {kind}")


async def exchange(path: str, params: Mapping[str, str], body: bytes = b"") -> Reply:
    """One request to the application listening on the Unix socket `path`.

    ConnectionRefusedError / FileNotFoundError: nobody listens there (the process is gone),
    so the request was not handled and may go to another process."""
    reader, writer = await asyncio.open_unix_connection(path, limit=2**20)
    try:
        writer.write(request_bytes(params, body))
        await writer.drain()
        return await read_reply(reader)
    finally:
        writer.close()
