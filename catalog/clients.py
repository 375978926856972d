"""Who is calling at the network level: the client's address, behind the trusted proxies
(nginx) whose `X-Forwarded-For` is believed. Read by the rate limiter (catalog.security)
and by the refusals' audit log (catalog.refusals)."""

from __future__ import annotations

import functools
import ipaddress

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """`10.0.0.1, 192.168.0.0/16, ::1` as networks; ValueError on a malformed entry."""
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    )


def client_address(scope: Scope, trusted: tuple[Network, ...]) -> str:
    """The caller's IP address: the connection's, or, when that is a trusted proxy, the
    nearest address of `X-Forwarded-For` (read from the right) that is not a trusted proxy.
    A connection without an address (a Unix socket) is the local proxy's; "" when nothing
    tells who the caller is then (a local caller)."""
    connection = scope.get("client")
    peer = connection[0] if connection else ""
    if peer and not within(peer, trusted):
        return peer
    forwarded = [
        hop.strip()
        for name, value in scope.get("headers", [])
        if name == b"x-forwarded-for"
        for hop in value.decode("latin-1").split(",")
        if hop.strip()
    ]
    client = peer
    for hop in reversed(forwarded):
        client = hop
        if not within(hop, trusted):
            break
    return client


@functools.lru_cache(maxsize=4096)  # asked on every request: a client's address, parsed once
def within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
