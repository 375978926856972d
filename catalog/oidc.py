"""OpenID Connect: who a bearer JWT says the caller is (ProConnect, GrandLyon Connect).

`OidcVerifier.principal(token)` checks a JWT issued by one of the configured providers and
returns the `usager` it names, or None. A token is accepted only when all of these hold:

- its header's `alg` is in the allow-list (asymmetric algorithms only: `none` and the HMAC
  family are refused, so a token "signed" with a provider's public key as an HMAC secret
  is refused before any key is looked at);
- its `iss` is a configured issuer, whose metadata is read from
  `<issuer>/.well-known/openid-configuration` (the document's `issuer` must be the same);
- its `kid` names a signing key of that issuer's JWKS (`jwks_uri`, cached; an unknown `kid`
  refreshes it at most once per `KEYS_COOLDOWN`), of a type matching `alg`; without `kid`,
  the JWKS must hold one key only (OpenID Connect Core §10.1), and that key is used;
- the signature is valid, `aud` holds one of the accepted audiences (and `azp` is one of
  them when there are several), `exp`, `iat` and `sub` are present, and `exp`/`nbf`/`iat`
  hold with a small leeway.

Only the person's name (`family_name`, or ProConnect's `usual_name`), first name
(`given_name`) and e-mail are read, with `sub` for the audit log and the agents claim. The
`jku`, `x5u` and `jwk` headers are never followed: keys only come from the issuer's JWKS.
Every request to a provider (discovery, JWKS, token, userinfo) goes through the SSRF guard
(`core.netguard`): the configured issuers' hosts are the operator's choice, any other
host a discovery document names must resolve to public addresses only.

Expiry is checked against the real time, not `core.clock` (`OPENDATA_NOW` replays
the platform's rules, never a provider's tokens).

Configuration (environment):

- `OPENDATA_OIDC_ISSUERS`: comma-separated issuer URLs, each optionally named
  (`proconnect=https://…,grandlyon=https://…`); unset: no OIDC (every bearer JWT is
  anonymous);
- `OPENDATA_OIDC_AUDIENCE`: comma-separated accepted audiences (default: the client ids);
- `OPENDATA_OIDC_ALGORITHMS`: default `RS256,ES256,PS256`;
- `OPENDATA_OIDC_LEEWAY`: seconds of clock skew tolerated (default 30);
- `OPENDATA_OIDC_AGENT_CLAIM` and `OPENDATA_OIDC_AGENT_VALUE`: the claim (and the value it
  holds, or one of its list items) that makes a user a public agent; without a value, the
  claim must be `true`;
- `OPENDATA_OIDC_AGENT_ISSUERS`: names of the issuers whose every user is a public agent;
- for the portal's login (`catalog.login`), per issuer name `<NAME>` (upper case, `-` as
  `_`): `OPENDATA_OIDC_CLIENT_ID_<NAME>`, `OPENDATA_OIDC_CLIENT_SECRET_<NAME>`,
  `OPENDATA_OIDC_SCOPES_<NAME>` (default `openid email profile`) and
  `OPENDATA_OIDC_LABEL_<NAME>` (the button's label).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt

from core.access import Principal
from core.netguard import Policy, Refused, httpx_client, parse_url

LOGGER = logging.getLogger(__name__)

ISSUERS_VARIABLE = "OPENDATA_OIDC_ISSUERS"
AUDIENCE_VARIABLE = "OPENDATA_OIDC_AUDIENCE"
ALGORITHMS_VARIABLE = "OPENDATA_OIDC_ALGORITHMS"
LEEWAY_VARIABLE = "OPENDATA_OIDC_LEEWAY"
AGENT_CLAIM_VARIABLE = "OPENDATA_OIDC_AGENT_CLAIM"
AGENT_VALUE_VARIABLE = "OPENDATA_OIDC_AGENT_VALUE"
AGENT_ISSUERS_VARIABLE = "OPENDATA_OIDC_AGENT_ISSUERS"
CLIENT_PREFIX = "OPENDATA_OIDC_"

DEFAULT_ALGORITHMS = ("RS256", "ES256", "PS256")
# The only algorithms that may be allowed: public-key signatures. `none` and HS* never.
ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
KEY_TYPES = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
CURVES = {"ES256": {"P-256"}, "ES384": {"P-384"}, "ES512": {"P-521"}, "EdDSA": {"Ed25519", "Ed448"}}
DEFAULT_LEEWAY = 30
DEFAULT_SCOPES = "openid email profile"
KNOWN_LABELS = {"proconnect": "ProConnect", "grandlyon": "GrandLyon Connect"}
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]
USERINFO_CLAIMS = ["iss", "aud", "sub"]
PERSON_CLAIMS = ("family_name", "usual_name", "given_name", "email")  # all that is read
MAX_TOKEN_LENGTH = 16_384
VERIFIED_SECONDS = 60  # a verified token is trusted this long without a new check
VERIFIED_MAX = 4096
HTTP_TIMEOUT = 5.0
MAX_DOCUMENT_BYTES = 1_000_000
METADATA_LIFESPAN = 24 * 3600.0  # seconds a discovery document is kept
KEYS_LIFESPAN = 3600.0  # seconds a JWKS is kept
KEYS_COOLDOWN = 30.0  # at least this long between two fetches of one JWKS
RETRY_AFTER = 30.0  # after a failed fetch, the provider is not asked again before this
LOOPBACK_NAMES = {"localhost"}

Fetch = Callable[[str], dict[str, Any]]


class InvalidToken(Exception):
    """The token is refused (the message is for the logs, never for the caller)."""


class ProviderUnavailable(Exception):
    """The provider's metadata or keys could not be read."""


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Provider:
    """One configured OpenID Connect issuer."""

    name: str
    issuer: str
    label: str
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    scopes: str = DEFAULT_SCOPES
    all_agents: bool = False  # every user of this issuer is a public agent


@dataclass(frozen=True)
class OidcSettings:
    providers: tuple[Provider, ...]
    audiences: tuple[str, ...]
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway: int = DEFAULT_LEEWAY
    agent_claim: str | None = None
    agent_value: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OidcSettings | None:
        """The settings from the environment; None when no issuer is configured."""
        env = os.environ if environ is None else environ
        entries = _split(env.get(ISSUERS_VARIABLE, ""))
        if not entries:
            return None
        agent_issuers = {name.lower() for name in _split(env.get(AGENT_ISSUERS_VARIABLE, ""))}
        providers = tuple(
            _provider(entry, index, env, agent_issuers) for index, entry in enumerate(entries, 1)
        )
        if len({p.name for p in providers}) != len(providers):
            raise ValueError(f"{ISSUERS_VARIABLE} : deux fournisseurs portent le même nom.")
        audiences = tuple(_split(env.get(AUDIENCE_VARIABLE, ""))) or tuple(
            p.client_id for p in providers if p.client_id
        )
        if not audiences:
            raise ValueError(
                f"{ISSUERS_VARIABLE} est défini mais aucune audience : définissez "
                f"{AUDIENCE_VARIABLE} (ou les identifiants de client)."
            )
        return cls(
            providers=providers,
            audiences=audiences,
            algorithms=parse_algorithms(env.get(ALGORITHMS_VARIABLE, "")),
            leeway=int(env.get(LEEWAY_VARIABLE, DEFAULT_LEEWAY)),
            agent_claim=env.get(AGENT_CLAIM_VARIABLE) or None,
            agent_value=env.get(AGENT_VALUE_VARIABLE) or None,
        )


def parse_algorithms(text: str) -> tuple[str, ...]:
    """The allow-list; anything but a public-key signature algorithm is a configuration error."""
    algorithms = tuple(_split(text)) or DEFAULT_ALGORITHMS
    refused = [a for a in algorithms if a not in ASYMMETRIC]
    if refused:
        raise ValueError(
            f"{ALGORITHMS_VARIABLE} : algorithme(s) refusé(s) {', '.join(refused)} ; "
            f"acceptés : {', '.join(sorted(ASYMMETRIC))}."
        )
    return algorithms


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _provider(entry: str, index: int, env: Mapping[str, str], agent_issuers: set[str]) -> Provider:
    name, separator, url = entry.partition("=")
    if not separator:
        name, url = f"fournisseur{index}", entry
    name, url = name.strip().lower(), url.strip()
    check_url(url)
    suffix = name.upper().replace("-", "_")
    return Provider(
        name=name,
        issuer=url,
        label=env.get(f"{CLIENT_PREFIX}LABEL_{suffix}") or KNOWN_LABELS.get(name, name),
        client_id=env.get(f"{CLIENT_PREFIX}CLIENT_ID_{suffix}") or None,
        client_secret=env.get(f"{CLIENT_PREFIX}CLIENT_SECRET_{suffix}") or None,
        scopes=env.get(f"{CLIENT_PREFIX}SCOPES_{suffix}") or DEFAULT_SCOPES,
        all_agents=name in agent_issuers,
    )


def check_url(url: str) -> str:
    """A provider URL: https, or http on the loopback interface only (local providers);
    read as the SSRF guard reads it (`core.netguard.parse_url`)."""
    try:
        parse_url(url)
    except Refused as refused:
        raise ValueError(
            f"Adresse de fournisseur OpenID Connect refusée ({refused.message}) : {url}"
        ) from refused
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _loopback(parts.hostname):
        return url
    raise ValueError(f"Adresse de fournisseur OpenID Connect refusée (https attendu) : {url}")


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- provider metadata and keys --------------------------------------------------------------


def issuers_policy(providers: Iterable[Provider]) -> Policy:
    """The SSRF guard's policy for the providers: the configured issuers' hosts are the
    operator's choice (an identity provider on the internal network, a local one on
    loopback); any other host their documents name (jwks_uri, token or userinfo endpoint)
    must be public."""
    hosts = {urlsplit(p.issuer).hostname or "" for p in providers}
    return Policy(allowed=",".join(sorted(h for h in hosts if h)))


def guarded_client(policy: Policy) -> httpx.Client:
    """An httpx client through the SSRF guard (`core.netguard`), no redirect."""
    return httpx_client(lambda: policy, HTTP_TIMEOUT)


def fetch_json(url: str, policy: Policy | None = None) -> dict[str, Any]:
    """A JSON object from a provider (no redirect followed, bounded size and time), through
    the SSRF guard (nothing internal unless `policy` allows its host)."""
    check_url(url)
    try:
        with (
            guarded_client(policy or Policy()) as client,
            client.stream("GET", url, headers={"Accept": "application/json"}) as response,
        ):
            if response.status_code != 200:
                raise ProviderUnavailable(f"{url} : HTTP {response.status_code}")
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    raise ProviderUnavailable(f"{url} : document trop volumineux")
    except httpx.HTTPError as error:
        raise ProviderUnavailable(f"{url} : {error}") from error
    try:
        document = httpx.Response(200, content=body).json()
    except ValueError as error:
        raise ProviderUnavailable(f"{url} : JSON invalide") from error
    if not isinstance(document, dict):
        raise ProviderUnavailable(f"{url} : objet JSON attendu")
    return document


class Cached:
    """A document fetched again after `lifespan`, and not asked for again within
    `RETRY_AFTER` of a failure (a provider down does not get one request per API call)."""

    def __init__(self, load: Callable[[], dict[str, Any]], lifespan: float) -> None:
        self._load = load
        self._lifespan = lifespan
        self._value: dict[str, Any] | None = None
        self._fetched_at = 0.0
        self._failed_at: float | None = None
        self._lock = threading.Lock()

    def get(self, refresh: bool = False, cooldown: float = 0.0) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            stale = self._value is None or now - self._fetched_at > self._lifespan
            wanted = stale or (refresh and now - self._fetched_at >= cooldown)
            if wanted and not self._failing(now):
                try:
                    self._value, self._fetched_at, self._failed_at = self._load(), now, None
                except ProviderUnavailable:
                    self._failed_at = now
                    if self._value is None:
                        raise
                    LOGGER.warning("Fournisseur OIDC injoignable, clés gardées", exc_info=True)
            if self._value is None:
                raise ProviderUnavailable("fournisseur injoignable (nouvel essai plus tard)")
            return self._value

    def _failing(self, now: float) -> bool:
        return self._failed_at is not None and now - self._failed_at < RETRY_AFTER


class IssuerMetadata:
    """An issuer's discovery document and JWKS, fetched when first needed and cached."""

    def __init__(self, provider: Provider, fetch: Fetch) -> None:
        self.provider = provider
        self._fetch = fetch
        self._discovery = Cached(self._load_discovery, METADATA_LIFESPAN)
        self._keys = Cached(lambda: fetch(check_url(self.document()["jwks_uri"])), KEYS_LIFESPAN)

    def document(self) -> dict[str, Any]:
        return self._discovery.get()

    def _load_discovery(self) -> dict[str, Any]:
        issuer = self.provider.issuer
        document = self._fetch(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if document.get("issuer") != issuer:
            raise ProviderUnavailable(f"{issuer} : la découverte annonce {document.get('issuer')}")
        if not isinstance(document.get("jwks_uri"), str):
            raise ProviderUnavailable(f"{issuer} : pas de jwks_uri")
        return document

    def key(self, kid: str) -> dict[str, Any] | None:
        """The JWK named `kid`; an unknown one refreshes the set (at most every cooldown)."""
        found = _find_key(self._keys.get(), kid)
        if found is None:
            found = _find_key(self._keys.get(refresh=True, cooldown=KEYS_COOLDOWN), kid)
        return found

    def only_key(self) -> dict[str, Any] | None:
        """For a token without `kid`: the issuer's one key, None when its JWKS holds several
        (OpenID Connect Core §10.1: `kid` is required only then; oidc-provider-mock, the
        demo's provider, leaves it out)."""
        keys = self._keys.get().get("keys")
        if not isinstance(keys, list) or len(keys) != 1 or not isinstance(keys[0], dict):
            return None
        return keys[0]


def _find_key(jwks: dict[str, Any], kid: str) -> dict[str, Any] | None:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return None
    return next((k for k in keys if isinstance(k, dict) and k.get("kid") == kid), None)


def signing_key(jwk: dict[str, Any], algorithm: str) -> jwt.PyJWK:
    """The JWK as a key for `algorithm`, if it is a signing key of the matching type."""
    if jwk.get("use", "sig") != "sig" or "verify" not in jwk.get("key_ops", ["verify"]):
        raise InvalidToken("la clé n'est pas une clé de signature")
    if jwk.get("alg", algorithm) != algorithm:
        raise InvalidToken(f"la clé est réservée à {jwk.get('alg')}")
    if jwk.get("kty") != KEY_TYPES.get(algorithm[:2]):
        raise InvalidToken(f"type de clé {jwk.get('kty')} incompatible avec {algorithm}")
    if algorithm in CURVES and jwk.get("crv") not in CURVES[algorithm]:
        raise InvalidToken(f"courbe {jwk.get('crv')} incompatible avec {algorithm}")
    try:
        return jwt.PyJWK(jwk, algorithm=algorithm)
    except jwt.PyJWTError as error:
        raise InvalidToken(f"clé illisible : {error}") from error


# --- the verifier ----------------------------------------------------------------------------


class OidcVerifier:
    """Checks the providers' JWTs; `principal(token)` for every request."""

    def __init__(self, settings: OidcSettings, fetch: Fetch | None = None) -> None:
        self.settings = settings
        self.policy = issuers_policy(settings.providers)
        fetch = fetch or partial(fetch_json, policy=self.policy)
        self._issuers = {p.issuer: IssuerMetadata(p, fetch) for p in settings.providers}
        # token -> (principal, until): the rate limiter and the endpoint of one request,
        # and a client's next requests, verify a token's signature once
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._verified_lock = threading.Lock()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OidcVerifier | None:
        settings = OidcSettings.from_env(environ)
        return cls(settings) if settings is not None else None

    @property
    def providers(self) -> tuple[Provider, ...]:
        return self.settings.providers

    def http_client(self) -> httpx.Client:
        """For the providers' token and userinfo endpoints (`catalog.login`)."""
        return guarded_client(self.policy)

    def metadata(self, provider: Provider) -> IssuerMetadata:
        return self._issuers[provider.issuer]

    def principal(self, token: str) -> Principal | None:
        """The user the token names, or None for any token that is not valid."""
        with self._verified_lock:
            known = self._verified.get(token)
        if known is not None and time.time() < known[1]:
            return known[0]
        try:
            claims = self.claims(token)
        except (InvalidToken, jwt.PyJWTError, TypeError, ValueError) as error:
            LOGGER.info("Jeton OIDC refusé : %s", error)  # never the token itself
            return None
        except ProviderUnavailable as error:
            LOGGER.warning("Jeton OIDC non vérifiable : %s", error)
            return None
        principal = self.principal_from_claims(claims)
        self._remember(token, principal, float(claims["exp"]))
        return principal

    def _remember(self, token: str, principal: Principal, expires: float) -> None:
        """Keep a verified token for a minute at most, never past its expiry."""
        until = min(expires, time.time() + VERIFIED_SECONDS)
        with self._verified_lock:
            self._verified[token] = (principal, until)
            self._verified.move_to_end(token)
            while len(self._verified) > VERIFIED_MAX:
                self._verified.popitem(last=False)

    def claims(
        self, token: str, nonce: str | None = None, required: list[str] = REQUIRED_CLAIMS
    ) -> dict[str, Any]:
        """The verified claims of `token` (InvalidToken, or PyJWT's errors, otherwise)."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("jeton trop long")
        header = jwt.get_unverified_header(token)
        algorithm = header.get("alg")
        if algorithm not in self.settings.algorithms:
            raise InvalidToken(f"algorithme {algorithm!r} refusé")
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or not kid):
            raise InvalidToken("kid invalide")
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        metadata = self._issuers.get(issuer) if isinstance(issuer, str) else None
        if metadata is None:
            raise InvalidToken(f"émetteur inconnu {issuer!r}")
        jwk = metadata.key(kid) if kid is not None else metadata.only_key()
        if jwk is None:
            raise InvalidToken(f"clé {kid!r} inconnue de {metadata.provider.issuer}")
        claims = jwt.decode(
            token,
            signing_key(jwk, algorithm),
            algorithms=[algorithm],
            audience=list(self.settings.audiences),
            issuer=metadata.provider.issuer,
            leeway=self.settings.leeway,
            options={"require": required},
        )
        self._check_authorized_party(claims)
        given = str(claims.get("nonce", "")).encode("utf-8")
        if nonce is not None and not hmac.compare_digest(given, nonce.encode("utf-8")):
            raise InvalidToken("nonce différent")
        return claims

    def userinfo_claims(self, token: str) -> dict[str, Any]:
        """A signed userinfo answer (ProConnect's `application/jwt`): the same checks, but
        `exp` and `iat` may be absent."""
        return self.claims(token, required=USERINFO_CLAIMS)

    def _check_authorized_party(self, claims: dict[str, Any]) -> None:
        audience = claims["aud"]
        several = isinstance(audience, list) and len(audience) > 1
        if several and claims.get("azp") not in self.settings.audiences:
            raise InvalidToken("plusieurs audiences sans azp accepté")

    def principal_from_claims(self, claims: dict[str, Any]) -> Principal:
        """Only the name, first name, e-mail (and `sub`, the agents claim) are read."""
        return Principal(
            kind="usager",
            subject=str(claims["sub"]),
            family_name=_text(claims.get("family_name") or claims.get("usual_name")),
            given_name=_text(claims.get("given_name")),
            email=_text(claims.get("email")),
            agent=self._is_agent(claims),
        )

    def _is_agent(self, claims: dict[str, Any]) -> bool:
        metadata = self._issuers.get(claims.get("iss"))
        if metadata is not None and metadata.provider.all_agents:
            return True
        claim, expected = self.settings.agent_claim, self.settings.agent_value
        if claim is None:
            return False
        value = claims.get(claim)
        if expected is None:
            return value is True
        if isinstance(value, list):
            return expected in value
        return value == expected


def _text(value: Any) -> str:
    return value.strip()[:200] if isinstance(value, str) else ""
