"""No request of the platform's own making may reach inside its network (SSRF): webhooks
to reusers' URLs, sources declared by communes. Loopback, private, link-local, reserved
and multicast addresses are refused, unless an operator allows them."""

from __future__ import annotations

import ipaddress
import os
import socket
from urllib.parse import urlsplit

WEBHOOKS_INTERNAL = "OPENDATA_WEBHOOKS_INTERNAL"  # "1": webhooks may reach internal addresses
SOURCES_ALLOW = "OPENDATA_SOURCES_ALLOW"  # comma-separated host names, IPs or networks


def reaches_internal_network(url: str, allowed: str = "") -> bool:
    """Whether `url`'s host is, or resolves to, a non-public address and is not in the
    operator's `allowed` list (host names compared literally, IPs against networks)."""
    host = urlsplit(url).hostname or ""
    if _allowed(host, allowed):
        return False
    try:
        addresses = {info[4][0].split("%")[0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError, ValueError):
        return False  # unresolvable now: the request fails on its own
    return any(not ipaddress.ip_address(address).is_global for address in addresses)


def webhook_blocked(url: str) -> bool:
    return os.environ.get(WEBHOOKS_INTERNAL) != "1" and reaches_internal_network(url)


def source_blocked(url: str) -> bool:
    return reaches_internal_network(url, os.environ.get(SOURCES_ALLOW, ""))


def outside_allowed_hosts(url: str, allowed: str) -> bool:
    """Whether `url` is not an http(s) URL on one of the `allowed` hosts: for requests
    that may only reach known hosts (the national schemas catalogue, issue #15)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return True
    return not _allowed(parts.hostname, allowed)


def _allowed(host: str, allowed: str) -> bool:
    for entry in (e.strip() for e in allowed.split(",") if e.strip()):
        if host.lower() == entry.lower():
            return True
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False
