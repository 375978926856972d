"""Every request the platform makes on its own initiative goes through this module (SSRF,
issue #16): pulled sources, webhooks to reusers' URLs, OpenID Connect discovery, JWKS,
token and userinfo requests.

One decision, `check(url, policy)`:

1. the URL is parsed once, by `urllib.parse.urlsplit`, after refusing what URL parsers
   disagree on (backslashes, spaces and control characters, credentials or `%` in the
   authority, a host that is neither a DNS name nor an IP literal);
2. the host is resolved once (`socket.getaddrinfo`); a name that resolves to nothing is
   refused;
3. every resolved address is checked against the IANA special-purpose registries (IPv4
   and IPv6), multicast, and the IPv6 ranges that embed an IPv4 address; one such address
   is enough to refuse (a name answering both a public and an internal address is the
   usual rebinding trick);
4. the connection is then made to the addresses that were checked, never to a new
   resolution: the requests adapter (`GuardedSession`) and the httpx transport
   (`GuardedTransport`) connect to `Target.addresses` while TLS (SNI, certificate) and the
   `Host` header keep the host name. A connection for any other host than the checked one
   is refused (fail closed). Redirects are requests too: each hop is checked again.

Operators may let hosts through (`Policy.allowed`: host names compared literally, IP
literals against networks) or, for webhooks only, every address (`Policy.internal`); an
allowed host still has to parse and resolve, and is still connected to at the addresses
resolved for the check.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import ssl
import sys
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx
import idna
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError
from urllib3.util.connection import create_connection

WEBHOOKS_INTERNAL = "OPENDATA_WEBHOOKS_INTERNAL"  # "1": webhooks may reach internal addresses
SOURCES_ALLOW = "OPENDATA_SOURCES_ALLOW"  # comma-separated host names, IPs or networks
SCHEMES = {"http": 80, "https": 443}
HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?")
MAX_URL_LENGTH = 8192
INTERNAL = (
    "adresse du réseau interne de la plateforme ou à usage réservé (boucle locale, réseau "
    "privé, lien local, multidiffusion, plage spéciale de l'IANA ou IPv6 embarquant une "
    "telle adresse IPv4) : refusée"
)

# IANA IPv4 Special-Purpose Address Registry, with multicast and the reserved 240/4
# (which holds the limited broadcast address).
IPV4_SPECIAL = tuple(
    ipaddress.IPv4Network(network)
    for network in (
        "0.0.0.0/8",  # "this network" (RFC 791)
        "10.0.0.0/8",  # private (RFC 1918)
        "100.64.0.0/10",  # shared address space, carrier-grade NAT (RFC 6598)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local: cloud metadata services (RFC 3927)
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments (RFC 6890)
        "192.0.2.0/24",  # documentation TEST-NET-1 (RFC 5737)
        "192.31.196.0/24",  # AS112-v4 (RFC 7535)
        "192.52.193.0/24",  # AMT (RFC 7450)
        "192.88.99.0/24",  # deprecated 6to4 relay anycast (RFC 7526)
        "192.168.0.0/16",  # private
        "192.175.48.0/24",  # direct delegation AS112 (RFC 7534)
        "198.18.0.0/15",  # benchmarking (RFC 2544)
        "198.51.100.0/24",  # documentation TEST-NET-2
        "203.0.113.0/24",  # documentation TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved (RFC 1112), and 255.255.255.255 broadcast
    )
)
# Only the global unicast space 2000::/3 may be reached natively (outside it: ::/128, ::1,
# IPv4-compatible ::/96, 64:ff9b:1::/48 local NAT64, 100::/64 discard, 5f00::/16 SRv6,
# fc00::/7 unique local, fe80::/10 link-local, fec0::/10 site-local, ff00::/8 multicast),
# minus the special-purpose blocks inside it:
IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
IPV6_SPECIAL = tuple(
    ipaddress.IPv6Network(network)
    for network in (
        "2001::/23",  # IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID…
        "2001:db8::/32",  # documentation (RFC 3849)
        "2002::/16",  # 6to4 (RFC 3056): tunnels to any IPv4 address
        "2620:4f:8000::/48",  # direct delegation AS112 (RFC 7534)
        "3fff::/20",  # documentation (RFC 9637)
    )
)
# IPv6 addresses that stand for an IPv4 address: checked as that address.
IPV4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: IPv4 in the last 32 bits


class Refused(ValueError):
    """A request the guard refuses: `rule` (a short French code), `message` (French)."""

    def __init__(self, rule: str, message: str, url: str) -> None:
        self.rule = rule
        self.message = message
        self.url = url
        super().__init__(f"{message} — adresse : {url[:200]} (règle « {rule} »)")


class RefusedRequest(Refused, requests.RequestException):
    """A refusal raised from inside a `requests` session (a RequestException too)."""

    def __init__(self, refused: Refused, request: Any = None) -> None:
        super().__init__(refused.rule, refused.message, refused.url)
        self.request = request
        self.response = None


@dataclass(frozen=True)
class Policy:
    """What the operator lets through: hosts (names compared literally, IP literals
    against networks), or every address (`internal`, for webhooks on an internal network)."""

    allowed: str = ""
    internal: bool = False


def sources_policy() -> Policy:
    return Policy(allowed=os.environ.get(SOURCES_ALLOW, ""))


def webhooks_policy() -> Policy:
    return Policy(internal=os.environ.get(WEBHOOKS_INTERNAL) == "1")


@dataclass(frozen=True)
class Target:
    """A checked request: where it may connect (`addresses`, in the resolver's order)."""

    url: str
    scheme: str
    host: str  # lower case, ASCII (IDNA), without brackets
    port: int
    addresses: tuple[str, ...]
    allowed: bool  # let through by the operator's policy, not by the address check


# The target checked for the request being sent in this thread (or task): the only one a
# connection may be opened to.
_PINNED: ContextVar[Target | None] = ContextVar("netguard_pinned", default=None)


# --- the decision ----------------------------------------------------------------------------


def parse_url(url: str) -> tuple[str, str, int]:
    """Scheme, host and port of an http(s) URL, or Refused (`adresse-invalide`) for anything
    two URL parsers might read differently."""
    if not isinstance(url, str) or not url:
        raise Refused("adresse-invalide", "adresse absente", str(url))
    if len(url) > MAX_URL_LENGTH:
        raise Refused("adresse-invalide", "adresse trop longue", url)
    if any(c == "\\" or c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise Refused(
            "adresse-invalide",
            "adresse invalide : barre oblique inverse, espace ou caractère de contrôle "
            "(une espace s'écrit %20)",
            url,
        )
    try:
        parts = urlsplit(url)
    except ValueError as error:  # an invalid bracketed host
        raise Refused("adresse-invalide", "adresse invalide", url) from error
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise Refused(
            "adresse-invalide", "seules les adresses http:// et https:// sont admises", url
        )
    if "@" in parts.netloc:
        raise Refused(
            "adresse-invalide", "adresse invalide : identifiants dans l'adresse (« @ »)", url
        )
    if "%" in parts.netloc:
        raise Refused("adresse-invalide", "adresse invalide : « % » dans le nom d'hôte", url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError as error:
        raise Refused("adresse-invalide", "adresse invalide : port incorrect", url) from error
    if not host:
        raise Refused("adresse-invalide", "adresse invalide : nom d'hôte absent", url)
    if parts.netloc.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError as error:
            raise Refused("adresse-invalide", "adresse IPv6 invalide", url) from error
    else:
        if not host.isascii():
            try:
                host = idna.encode(host, uts46=True).decode("ascii")
            except idna.IDNAError as error:
                raise Refused(
                    "adresse-invalide", "nom d'hôte international invalide", url
                ) from error
        if not HOST_NAME.fullmatch(host):
            raise Refused("adresse-invalide", f"nom d'hôte « {host[:100]} » invalide", url)
    if port == 0:
        raise Refused("adresse-invalide", "adresse invalide : port 0", url)
    return scheme, host, port or SCHEMES[scheme]


def check(url: str, policy: Policy) -> Target:
    """The target of `url` if the platform may send it a request; Refused otherwise."""
    scheme, host, port = parse_url(url)
    addresses = resolve(host, port, url)
    allowed = policy.internal or _allowed(host, policy.allowed)
    if not allowed and any(special_purpose(address) for address in addresses):
        raise Refused("adresse-interne", INTERNAL, url)
    return Target(url, scheme, host, port, addresses, allowed)


def screen(url: str, policy: Policy) -> Refused | None:
    """Why `url` will be refused, checked ahead of time (a webhook subscription): as
    `check`, except that a host that does not resolve yet is not refused here (it will be
    at the time of the request)."""
    try:
        check(url, policy)
    except Refused as refused:
        return None if refused.rule == "hote-inconnu" else refused
    return None


def resolve(host: str, port: int, url: str) -> tuple[str, ...]:
    """The host's addresses, resolved once; Refused (`hote-inconnu`) when there are none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:  # socket.gaierror is an OSError
        raise Refused(
            "hote-inconnu", f"le nom d'hôte « {host} » ne correspond à aucune adresse", url
        ) from error
    addresses = tuple(
        dict.fromkeys(
            str(info[4][0]) for info in infos if info[0] in (socket.AF_INET, socket.AF_INET6)
        )
    )
    if not addresses:
        raise Refused(
            "hote-inconnu", f"le nom d'hôte « {host} » ne correspond à aucune adresse", url
        )
    return addresses


def special_purpose(address: str) -> bool:
    """Whether `address` is one the platform must not reach: every IANA special-purpose
    range, multicast, and IPv6 outside the global unicast space; the IPv6 forms of an IPv4
    address (IPv4-mapped, NAT64 well-known prefix) are judged as that IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return _special_ipv4(embedded)
        return (
            ip not in IPV6_GLOBAL_UNICAST
            or any(ip in network for network in IPV6_SPECIAL)
            or _special_by_python(ip)
        )
    return _special_ipv4(ip)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip in IPV4_MAPPED or ip in NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _special_ipv4(ip: ipaddress.IPv4Address) -> bool:
    return any(ip in network for network in IPV4_SPECIAL) or _special_by_python(ip)


def _special_by_python(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """The standard library's view, as a second opinion (its tables vary by version)."""
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


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


# --- callers' shortcuts ----------------------------------------------------------------------


def webhook_refusal(url: str) -> Refused | None:
    """Why a webhook subscription's URL will never be delivered to, or None."""
    return screen(url, webhooks_policy())


def webhook_blocked(url: str) -> bool:
    return webhook_refusal(url) is not None


def outside_allowed_hosts(url: str, allowed: str) -> bool:
    """Whether `url` is not an http(s) URL on one of the `allowed` hosts: for requests
    that may only reach known hosts (the national schemas catalogue, issue #15)."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        return True
    return not _allowed(parts.hostname, allowed)


# --- connecting to the checked addresses: requests (urllib3) --------------------------------


def _pinned_target(host: str, port: int | None) -> Target | None:
    """The target checked for this request, if the connection is for its host."""
    target = _PINNED.get()
    if target is None or host.rstrip(".") != target.host.rstrip(".") or port != target.port:
        return None
    return target


def _connect(connection: HTTPConnection) -> socket.socket:
    """urllib3's `_new_conn`, to the checked addresses instead of a new resolution."""
    target = _pinned_target(connection.host, connection.port)
    if target is None:
        raise NewConnectionError(
            connection, "connexion refusée : hôte non vérifié par le garde-fou réseau"
        )
    failure: OSError | None = None
    for address in target.addresses:
        try:
            sock = create_connection(
                (address, connection.port),
                connection.timeout,
                source_address=connection.source_address,
                socket_options=connection.socket_options,
            )
        except OSError as error:  # timeouts included: the next address may answer
            failure = error
            continue
        sys.audit("http.client.connect", connection, connection.host, connection.port)
        return sock
    if isinstance(failure, TimeoutError):
        message = (
            f"Connection to {connection.host} timed out. (connect timeout={connection.timeout})"
        )
        raise ConnectTimeoutError(connection, message) from failure
    raise NewConnectionError(
        connection, f"Failed to establish a new connection: {failure}"
    ) from failure


class _PinnedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _connect(self)


class _PinnedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _connect(self)


class _PinnedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """Checks every request it sends (redirect hops included) and connects to the checked
    addresses; never through a proxy."""

    def __init__(self, policy: Callable[[], Policy], **kwargs: Any) -> None:
        self._policy = policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _PinnedHTTPConnectionPool,
            "https": _PinnedHTTPSConnectionPool,
        }

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        try:
            target = check(request.url or "", self._policy())
        except Refused as refused:
            raise RefusedRequest(refused, request) from refused
        token = _PINNED.set(target)
        try:
            return super().send(request, *args, **kwargs)
        finally:
            _PINNED.reset(token)


class GuardedSession(requests.Session):
    """A requests session whose every request goes through `check(url, policy())`: the URL
    as given first (so that no other parser gets to read a refused one), then each request
    as sent, redirect hops included. No proxy, no .netrc: nothing from the environment."""

    def __init__(self, policy: Callable[[], Policy]) -> None:
        super().__init__()
        self.trust_env = False
        self._policy = policy
        adapter = GuardedAdapter(policy)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        text = url.decode("utf-8", "replace") if isinstance(url, bytes) else str(url)
        try:
            parse_url(text)
        except Refused as refused:
            raise RefusedRequest(refused) from refused
        return super().request(method, url, *args, **kwargs)


# --- connecting to the checked addresses: httpx (httpcore) ----------------------------------


class _PinnedBackend(httpcore.SyncBackend):
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        target = _pinned_target(host, port)
        if target is None:
            raise httpcore.ConnectError("connexion refusée : hôte non vérifié par le garde-fou")
        failure: Exception | None = None
        for address in target.addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure


class GuardedTransport(httpx.HTTPTransport):
    """An httpx transport that checks every request and connects to the checked addresses
    (TLS and `Host` keep the host name); no proxy, nothing from the environment."""

    def __init__(self, policy: Callable[[], Policy], verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        self._policy = policy
        # httpx keeps its httpcore pool in `_pool`: the same pool, given the pinned backend
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            network_backend=_PinnedBackend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            target = check(str(request.url), self._policy())
        except Refused as refused:
            raise httpx.ConnectError(str(refused), request=request) from refused
        token = _PINNED.set(target)
        try:
            return super().handle_request(request)
        finally:
            _PINNED.reset(token)


def httpx_client(
    policy: Callable[[], Policy], timeout: float, verify: ssl.SSLContext | bool = True
) -> httpx.Client:
    """An httpx client through the guard, following no redirect."""
    return httpx.Client(
        transport=GuardedTransport(policy, verify),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
