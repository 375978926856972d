"""The egress guard (issue #16): one decision for every request the platform makes.

Address ranges and URL syntax are checked on their own (cheap, parametrized); the two
transports (requests for sources and webhooks, httpx for OpenID Connect) against a loopback
"internal service" that records every request, with a resolver the test controls
(`tests/attacker.py`). Each caller's own tests are in test_sources.py, test_notify.py and
test_oidc.py.
"""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from attacker import PUBLIC_ADDRESS, Attacker, attacker_server, fake_resolver
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.netguard import (
    GuardedSession,
    Policy,
    Refused,
    check,
    httpx_client,
    parse_url,
    special_purpose,
)

NOTHING_ALLOWED = Policy()

# One address in each special-purpose range (IANA IPv4 and IPv6 registries), multicast,
# and the IPv6 forms of an internal IPv4 address.
SPECIAL = [
    "0.0.0.0",  # this network
    "0.1.2.3",
    "10.1.2.3",  # private
    "100.64.0.1",  # shared address space (CGNAT)
    "100.127.255.254",
    "127.0.0.1",  # loopback
    "127.255.255.254",
    "169.254.169.254",  # link-local: cloud metadata
    "172.16.0.1",  # private
    "172.31.255.254",
    "192.0.0.9",  # IETF protocol assignments
    "192.0.0.170",  # NAT64/DNS64 discovery
    "192.0.2.1",  # documentation
    "192.31.196.1",  # AS112-v4
    "192.52.193.1",  # AMT
    "192.88.99.1",  # 6to4 relay anycast
    "192.168.1.1",  # private
    "192.175.48.1",  # AS112 direct delegation
    "198.18.0.1",  # benchmarking
    "198.19.255.254",
    "198.51.100.1",  # documentation
    "203.0.113.1",  # documentation
    "224.0.0.1",  # multicast
    "239.255.255.250",  # multicast (SSDP)
    "240.0.0.1",  # reserved
    "255.255.255.255",  # limited broadcast
    "::",  # unspecified
    "::1",  # loopback
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "::8.8.8.8",  # IPv4-compatible, even of a public address
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "::ffff:10.0.0.1",  # IPv4-mapped private
    "::ffff:169.254.169.254",  # IPv4-mapped metadata service
    "64:ff9b::7f00:1",  # NAT64 well-known prefix, embedding 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64, embedding 169.254.169.254
    "64:ff9b:1::1",  # local-use NAT64 (RFC 8215)
    "100::1",  # discard-only
    "2001::1",  # Teredo
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo (a real-looking one)
    "2001:2::1",  # benchmarking
    "2001:20::1",  # ORCHIDv2
    "2001:db8::1",  # documentation
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:808:808::1",  # 6to4 of a public address: a tunnel all the same
    "2620:4f:8000::1",  # AS112
    "3fff::1",  # documentation (RFC 9637)
    "5f00::1",  # SRv6 SIDs
    "fc00::1",  # unique local
    "fd12:3456:789a::1",
    "fe80::1",  # link-local
    "fe80::1%1",  # with a zone
    "fec0::1",  # site-local (deprecated)
    "ff02::1",  # multicast
    "ff05::1:3",
]
PUBLIC = ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", SPECIAL)
def test_every_special_purpose_address_is_refused(address: str) -> None:
    assert special_purpose(address)
    literal = f"[{address}]" if ":" in address else address
    if "%" not in address:  # a zone cannot be written in a URL (`%` is refused anyway)
        with pytest.raises(Refused) as refused:
            check(f"http://{literal}:8080/x", NOTHING_ALLOWED)
        assert refused.value.rule == "adresse-interne"
        assert "réseau interne" in refused.value.message


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert not special_purpose(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1\\/x",
        "http://127.0.0.1:8080\\@public.example/x",
        "http://public.example\\@127.0.0.1/x",
        "http://public.example/\\..\\x",
        "http://user:secret@public.example/x",
        "http://public.example@127.0.0.1/x",
        "http://127.0.0.1%2f@public.example/",
        "http://%31%32%37.0.0.1/x",
        "http://public.example\t/x",
        "http://public.example\n.attacker/x",
        "http://pub lic.example/x",
        "http://public.example:99999/x",
        "http://public.example:0/x",
        "http://[fe80::1%25eth0]/x",
        "http://[not-ipv6]/x",
        "http:///x",
        "ftp://public.example/x",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_INFO",
        "http://exa$mple.org/",
        "",
    ],
)
def test_urls_parsers_disagree_on_are_refused(url: str) -> None:
    with pytest.raises(Refused) as refused:
        parse_url(url)
    assert refused.value.rule == "adresse-invalide"


def test_international_names_are_read_as_their_ascii_form() -> None:
    assert parse_url("https://mairie-écully.fr/données.csv") == (
        "https",
        "xn--mairie-cully-heb.fr",
        443,
    )


def test_a_name_that_does_not_resolve_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_resolver(monkeypatch, "nulle-part.example", [None])
    with pytest.raises(Refused) as refused:
        check("https://nulle-part.example/x", NOTHING_ALLOWED)
    assert refused.value.rule == "hote-inconnu"


def test_one_internal_address_among_public_ones_is_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.getaddrinfo

    def two(host: str, port: int, *args: object, **kwargs: object) -> object:
        if host != "double.example":
            return real(host, port, *args, **kwargs)
        return [
            (2, 1, 6, "", (PUBLIC_ADDRESS, port)),
            (2, 1, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", two)
    with pytest.raises(Refused) as refused:
        check("http://double.example/x", NOTHING_ALLOWED)
    assert refused.value.rule == "adresse-interne"


def test_allowed_hosts_are_literal() -> None:
    allowed = Policy(allowed="127.0.0.1, sig.interne.example, 10.0.0.0/8")
    assert check("http://127.0.0.1:8080/x", allowed).allowed
    for url in ("http://localhost/x", "http://127.1/x", "http://[::ffff:127.0.0.1]/x"):
        with pytest.raises(Refused):
            check(url, allowed)


@pytest.fixture
def attacker() -> Iterator[Attacker]:
    with attacker_server() as server:
        yield server


def test_requests_connect_to_the_address_that_was_checked(
    attacker: Attacker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # DNS rebinding: a public address when the guard asks, 127.0.0.1 from then on
    lookups = fake_resolver(monkeypatch, "rebond.example", [PUBLIC_ADDRESS, "127.0.0.1"])
    with (
        GuardedSession(lambda: NOTHING_ALLOWED) as session,
        pytest.raises(requests.RequestException),
    ):
        session.get(attacker.url("/cible", host="rebond.example"), timeout=(0.5, 1))
    assert lookups == ["rebond.example"]  # resolved once, by the guard
    assert attacker.received == []


def test_httpx_connects_to_the_address_that_was_checked(
    attacker: Attacker, monkeypatch: pytest.MonkeyPatch
) -> None:
    lookups = fake_resolver(monkeypatch, "rebond.example", [PUBLIC_ADDRESS, "127.0.0.1"])
    with (
        httpx_client(lambda: NOTHING_ALLOWED, 0.5) as client,
        pytest.raises(httpx.HTTPError),
    ):
        client.get(attacker.url("/cible", host="rebond.example"))
    assert lookups == ["rebond.example"]
    assert attacker.received == []


def test_an_allowed_host_is_reached_by_name_at_its_checked_address(
    attacker: Attacker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the checked address is reachable, any later resolution would not be
    first = fake_resolver(monkeypatch, "sig.interne.example", ["127.0.0.1", "10.9.9.9"])
    allowed = Policy(allowed="sig.interne.example")
    with GuardedSession(lambda: allowed) as session:
        answer = session.get(attacker.url("/a", host="sig.interne.example"), timeout=5)
    second = fake_resolver(monkeypatch, "sig.interne.example", ["127.0.0.1", "10.9.9.9"])
    with httpx_client(lambda: allowed, 5) as client:
        again = client.get(attacker.url("/b", host="sig.interne.example"))
    assert answer.status_code == again.status_code == 200
    assert first == second == ["sig.interne.example"]  # one resolution per request
    host = f"sig.interne.example:{attacker.port}"  # the Host header keeps the name
    assert attacker.received == [("GET", "/a", host), ("GET", "/b", host)]


def test_each_redirect_hop_is_checked(attacker: Attacker) -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{attacker.port}/interne")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    allowed = Policy(allowed="127.0.0.1")  # the first host, by its literal address only
    try:
        with GuardedSession(lambda: allowed) as session, pytest.raises(Refused) as refused:
            session.get(f"http://127.0.0.1:{server.server_address[1]}/x", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert refused.value.rule == "adresse-interne"
    assert refused.value.url.startswith("http://localhost:")
    assert attacker.received == []


def _certificates(directory: Path, name: str) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for `name` only (not for 127.0.0.1) signed by it."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "AC de test")])
    key = ec.generate_private_key(ec.SECP256R1())

    def signed(subject: x509.Name, public: Any, extension: Any, critical: bool) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(hours=1))
            .add_extension(extension, critical=critical)
            .sign(ca_key, hashes.SHA256())
        )

    ca = signed(
        ca_name, ca_key.public_key(), x509.BasicConstraints(ca=True, path_length=None), True
    )
    server = signed(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
        key.public_key(),
        x509.SubjectAlternativeName([x509.DNSName(name)]),
        False,
    )
    paths = directory / "ca.pem", directory / "serveur.pem", directory / "cle.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def test_tls_keeps_the_host_name_while_connecting_to_the_checked_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "sig.interne.example"
    ca, certificate, key = _certificates(tmp_path, name)
    seen: list[tuple[str | None, str]] = []
    names: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            seen.append((names[-1] if names else None, self.headers.get("Host", "")))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: object) -> None:
            pass

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    context.sni_callback = lambda _socket, server_name, _context: names.append(server_name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    port = server.server_address[1]
    allowed = Policy(allowed=name)
    try:
        fake_resolver(monkeypatch, name, ["127.0.0.1", "10.9.9.9"])
        with GuardedSession(lambda: allowed) as session:
            session.verify = str(ca)
            assert session.get(f"https://{name}:{port}/", timeout=5).text == "ok"
        fake_resolver(monkeypatch, name, ["127.0.0.1", "10.9.9.9"])
        verify = ssl.create_default_context(cafile=str(ca))
        with httpx_client(lambda: allowed, 5, verify) as client:
            assert client.get(f"https://{name}:{port}/").text == "ok"
        # the certificate is checked against the name, never against the address
        fake_resolver(monkeypatch, "autre.interne.example", ["127.0.0.1"])
        other = Policy(allowed="autre.interne.example")
        with GuardedSession(lambda: other) as session, pytest.raises(requests.exceptions.SSLError):
            session.verify = str(ca)
            session.get(f"https://autre.interne.example:{port}/", timeout=5)
        with httpx_client(lambda: other, 5, verify) as client, pytest.raises(httpx.ConnectError):
            client.get(f"https://autre.interne.example:{port}/")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert seen == [(name, f"{name}:{port}")] * 2
