"""A small but real OpenID Connect provider on loopback, for the tests.

`OidcProvider` is an HTTP server (a thread of this process) serving what the catalog reads
from ProConnect or GrandLyon Connect:

- `/.well-known/openid-configuration`: discovery;
- `/jwks`: its public keys, an RSA key (`kid` rsa-1, RS256 and PS256) and an EC P-256 key
  (`kid` ec-1, ES256);
- `/authorize`: the authorization endpoint of the code flow, which signs in at once the
  user the test chose (`next_user`) and sends the browser back with a code;
- `/token`: the token endpoint, which checks the client's secret, the redirect URI and the
  PKCE code verifier (S256) before giving an ID token with the login's nonce;
- `/userinfo`: the person's names as a signed JWT (ProConnect's way), when
  `names_in_userinfo` keeps them out of the ID token;
- `/logout`: the end-session endpoint.

`token(...)` issues a JWT with chosen claims; `forged`, `unsigned` and `hmac_with_public_key`
make the classic bad ones. Two instances make an issuer and a wrong issuer.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

RSA_KID = "rsa-1"
EC_KID = "ec-1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class Login:
    user: dict[str, Any]
    client_id: str
    redirect_uri: str
    nonce: str
    challenge: str


@dataclass
class OidcProvider:
    """An issuer on 127.0.0.1; `client_id`/`client_secret` is the catalog's client."""

    client_id: str = "catalogue-communes"
    client_secret: str = "secret-du-client-catalogue"
    rsa_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    ec_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    next_user: dict[str, Any] = field(default_factory=dict)  # who /authorize signs in
    logins: dict[str, Login] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)  # paths asked for, in order
    issuer: str = ""
    names_in_userinfo: bool = False  # ProConnect: the ID token without names, a signed userinfo
    access_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)

    # --- tokens ----------------------------------------------------------------------------

    def token(
        self,
        algorithm: str = "RS256",
        *,
        lifetime: int = 300,
        issued: float | None = None,
        headers: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """A JWT signed with this provider's key for `algorithm`; claims override the
        defaults (iss, aud = the client id, sub, iat, exp, names and e-mail)."""
        now = time.time() if issued is None else issued
        payload = {
            "iss": self.issuer,
            "aud": self.client_id,
            "sub": "usager-0001",
            "iat": int(now),
            "exp": int(now + lifetime),
            "given_name": "Camille",
            "family_name": "Martin",
            "email": "camille.martin@example.org",
            **claims,
        }
        payload = {k: v for k, v in payload.items() if v is not None}
        key, kid = (self.ec_key, EC_KID) if algorithm.startswith("ES") else (self.rsa_key, RSA_KID)
        return jwt.encode(
            payload, key, algorithm=algorithm, headers={"kid": kid, **(headers or {})}
        )

    def raw(self, payload: dict[str, Any]) -> str:
        """Any JSON payload, signed RS256 as it is (no claim checked, whatever its types)."""
        body = json.dumps(payload).encode()
        return jwt.api_jws.encode(body, self.rsa_key, algorithm="RS256", headers={"kid": RSA_KID})

    def forged(self, **claims: Any) -> str:
        """Signed by another RSA key, under this provider's key id."""
        other = OidcProvider(client_id=self.client_id)
        other.issuer = self.issuer
        other.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return other.token(**claims)

    def unsigned(self, **claims: Any) -> str:
        """`alg: none`, no signature."""
        body = jwt.decode(self.token(**claims), options={"verify_signature": False})
        header = {"alg": "none", "typ": "JWT", "kid": RSA_KID}
        return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}."

    def hmac_with_public_key(self, **claims: Any) -> str:
        """HS256 with the provider's public key (PEM) as the HMAC secret: the key confusion
        attack on verifiers that take the algorithm from the token."""
        body = jwt.decode(self.token(**claims), options={"verify_signature": False})
        header = {"alg": "HS256", "typ": "JWT", "kid": RSA_KID}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(body).encode())}"
        pem = self.rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64(signature)}"

    # --- documents ---------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "end_session_endpoint": f"{self.issuer}/logout",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "PS256", "ES256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    def jwks(self) -> dict[str, Any]:
        rsa_jwk = json.loads(RSAAlgorithm.to_jwk(self.rsa_key.public_key()))
        ec_jwk = json.loads(ECAlgorithm.to_jwk(self.ec_key.public_key()))
        return {
            "keys": [
                {**rsa_jwk, "kid": RSA_KID, "use": "sig"},
                {**ec_jwk, "kid": EC_KID, "use": "sig", "alg": "ES256"},
            ]
        }

    # --- the code flow -----------------------------------------------------------------------

    def authorize(self, query: dict[str, str]) -> str:
        """Sign `next_user` in; the redirection back to the client, with a code."""
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            raise ValueError("bad authorization request")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            raise ValueError("PKCE required")
        code = secrets.token_urlsafe(24)
        self.logins[code] = Login(
            user=dict(self.next_user),
            client_id=query["client_id"],
            redirect_uri=query["redirect_uri"],
            nonce=query.get("nonce", ""),
            challenge=query["code_challenge"],
        )
        back = {"code": code, "state": query.get("state", "")}
        return f"{query['redirect_uri']}?{urlencode(back)}"

    def exchange(self, form: dict[str, str], authorization: str) -> dict[str, Any] | None:
        """The token response for a code, or None (invalid_grant)."""
        login = self.logins.pop(form.get("code", ""), None)
        client, secret = form.get("client_id"), form.get("client_secret")
        if authorization.startswith("Basic "):
            client, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        verifier = form.get("code_verifier", "")
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        if (
            login is None
            or client != self.client_id
            or secret != self.client_secret
            or form.get("redirect_uri") != login.redirect_uri
            or not hmac.compare_digest(challenge, login.challenge)
        ):
            return None
        person = {"given_name": None, "family_name": None, "email": None}
        id_token = self.token(
            nonce=login.nonce, **{**login.user, **(person if self.names_in_userinfo else {})}
        )
        access_token = secrets.token_urlsafe(16)
        self.access_tokens[access_token] = dict(login.user)
        return {"id_token": id_token, "access_token": access_token, "token_type": "Bearer"}

    def userinfo(self, authorization: str) -> str | None:
        """ProConnect's userinfo: a JWT signed by the provider, `usual_name` for the name."""
        user = self.access_tokens.get(authorization.removeprefix("Bearer "))
        if user is None:
            return None
        claims = {"usual_name": "Martin", "family_name": None, **user}
        return self.token(exp=None, iat=None, **claims)

    # --- serving ---------------------------------------------------------------------------

    @contextmanager
    def serving(self) -> Iterator[OidcProvider]:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.issuer = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(10)


def _handler(provider: OidcProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            provider.requests.append(url.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif url.path == "/jwks":
                self._json(200, provider.jwks())
            elif url.path == "/authorize":
                try:
                    self._redirect(provider.authorize(query))
                except (KeyError, ValueError) as error:
                    self._json(400, {"error": "invalid_request", "error_description": str(error)})
            elif url.path == "/userinfo":
                signed = provider.userinfo(self.headers.get("Authorization", ""))
                if signed is None:
                    self._json(401, {"error": "invalid_token"})
                else:
                    self._send(200, "application/jwt", signed.encode())
            elif url.path == "/logout":
                self._redirect(query.get("post_logout_redirect_uri", "/"))
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            provider.requests.append(self.path)
            length = int(self.headers.get("Content-Length", "0"))
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            answer = provider.exchange(form, self.headers.get("Authorization", ""))
            if self.path != "/token" or answer is None:
                self._json(400, {"error": "invalid_grant"})
            else:
                self._json(200, answer)

        def _json(self, status: int, body: dict[str, Any]) -> None:
            self._send(status, "application/json", json.dumps(body).encode())

        def _send(self, status: int, media_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _redirect(self, location: str) -> None:
            self.send_response(302)
            self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler
