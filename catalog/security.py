"""Hostile input at the edge of the catalog: security headers and per-client rate limits.

`install(app, store)` adds these ASGI middlewares to the catalog application (and
`catalog.refusals.RequestContext`, which tells the audit log of refusals the client's
address, as below, and the path):

- `SecurityHeaders`: every response gets `X-Content-Type-Options: nosniff`, a
  `Referrer-Policy`, a `Permissions-Policy` and a Content-Security-Policy chosen by what it
  is. The portal's pages get a strict one (scripts and styles from the catalog's own
  `/static` only, nothing inline); the embeddable component (`/integration/<commune>`) the
  same, but may be framed by any site (`OPENDATA_EMBED_FRAME_ANCESTORS`); pygeoapi's HTML
  pages under `/ogc` (the catalog's templates, `catalog/ogc/templates`: no inline script,
  nothing from another host) the portal's, with inline styles for the Swagger UI of its
  API definition; the API's documentation (`/docs`, Swagger UI packaged with
  the catalog) its own files and the hash of its fixed inline script; anything else (JSON,
  XML, files)
  `default-src 'none'`. Violations are reported to `/api/securite/csp` and logged.
- pygeoapi's templates get HTML-safe JSON in their scripts (`harden_pygeoapi_templates`):
  pygeoapi 0.21 writes features there unescaped, and a value holding `</script>` ended the
  script, the rest of the value being read as HTML.
- `RateLimit`: requests to the APIs and services (`/api/`, `/dcat/`, the Atom feed, `/ogc`,
  `/wms`, `/wfs`, `/csw`; never `/static` nor the portal's pages: the prefixes the web
  services' table declares, `catalog.web.registry`) are counted per client
  with the `limits` library (sliding window counter): per authenticated principal when the
  request carries valid credentials, else per client IP address. `X-Forwarded-For` is read
  only when the connection comes from a trusted proxy (`OPENDATA_TRUSTED_PROXIES`). Over the
  limit: 429 with `Retry-After` and a French JSON message. Counters live in memory (one
  process) or in Redis (`OPENDATA_RATE_LIMIT_STORAGE=redis://…`, shared by every worker);
  when Redis cannot be reached, requests are served (the limit fails open) and it is logged.

Environment variables:

- `OPENDATA_RATE_LIMIT`: anonymous callers' limits per IP address, `limits` notation, `;`
  between several (default `50/second`, the per-address limit of the State's geo.api.gouv.fr); `off`
  turns rate limiting off;
- `OPENDATA_RATE_LIMIT_AUTHENTICATED`: authenticated callers' (default `100/second`);
- `OPENDATA_RATE_LIMIT_STORAGE`: `memory://` (default) or `redis://host:port/db`;
- `OPENDATA_RATE_LIMIT_EXEMPT`: client networks never limited (default loopback:
  `127.0.0.0/8,::1`, the machine's own jobs and benchmarks); empty for none;
- `OPENDATA_TRUSTED_PROXIES`: addresses or networks of the reverse proxies whose
  `X-Forwarded-For` is believed (default none; a connection over a Unix socket, which has no
  address, comes from the local proxy and is trusted). `opendata servir` gives uvicorn the
  same list (its `forwarded_allow_ips`), empty by default: no forwarded header is believed;
- `OPENDATA_EMBED_FRAME_ANCESTORS`: who may frame `/integration/<commune>` (default `*`);
- `OPENDATA_MAP_BACKGROUND` (`core.settings.map_background`): the origin of the portal map's
  background tiles joins the portal's `img-src`, only when one is configured.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import math
import os
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from catalog import accounts, api_docs, principal
from catalog.bodies import BodyTooLarge, read_bounded
from catalog.clients import Network, client_address, parse_networks, within
from catalog.refusals import RequestContext
from core.access import ANONYMOUS, Principal
from core.settings import map_background

LOG = logging.getLogger("catalog.security")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# --- settings ---------------------------------------------------------------------------------

DEFAULT_LIMITS = "50/second"
DEFAULT_AUTHENTICATED_LIMITS = "100/second"
LOOPBACK = "127.0.0.0/8,::1"
OFF = {"off", "non", "aucune", "0"}


@dataclass(frozen=True)
class SecuritySettings:
    limits: str = DEFAULT_LIMITS  # empty: no rate limiting
    authenticated_limits: str = DEFAULT_AUTHENTICATED_LIMITS
    storage: str = "memory://"
    exempt: tuple[Network, ...] = ()
    trusted_proxies: tuple[Network, ...] = ()
    embed_frame_ancestors: str = "*"
    namespace: str = "opendata"  # prefix of the counters' keys (shared Redis)
    # where the portal map's background tiles come from (OPENDATA_MAP_BACKGROUND), if set
    map_images: str = ""

    @classmethod
    def from_env(cls) -> SecuritySettings:
        limits = os.environ.get("OPENDATA_RATE_LIMIT", DEFAULT_LIMITS).strip()
        return cls(
            limits="" if limits.lower() in OFF else limits,
            authenticated_limits=os.environ.get(
                "OPENDATA_RATE_LIMIT_AUTHENTICATED", DEFAULT_AUTHENTICATED_LIMITS
            ).strip(),
            storage=os.environ.get("OPENDATA_RATE_LIMIT_STORAGE", "memory://").strip(),
            exempt=parse_networks(os.environ.get("OPENDATA_RATE_LIMIT_EXEMPT", LOOPBACK)),
            trusted_proxies=parse_networks(os.environ.get("OPENDATA_TRUSTED_PROXIES", "")),
            embed_frame_ancestors=os.environ.get("OPENDATA_EMBED_FRAME_ANCESTORS", "*").strip()
            or "*",
            map_images=background.image_source if (background := map_background()) else "",
        )


def install(
    app: FastAPI,
    store: Any = None,
    settings: SecuritySettings | None = None,
    *,
    limited: tuple[str, ...],
) -> None:
    """Add the security headers and the rate limiter to `app` (before it serves).

    `store` is the catalog store, to recognise API tokens (rate limits per principal);
    `limited` the path prefixes the rate limiter counts (`catalog.web.registry`)."""
    settings = settings or SecuritySettings.from_env()
    reports = CspReports()
    app.state.csp_reports = reports
    app.add_api_route(
        CSP_REPORT_PATH,
        reports.endpoint,
        methods=["POST"],
        include_in_schema=False,
        status_code=204,
    )
    harden_pygeoapi_templates()
    if settings.limits:
        app.add_middleware(
            RateLimit, limiter=ClientLimiter(settings), store=store, prefixes=limited
        )
    app.add_middleware(SecurityHeaders, settings=settings, docs=DocsScripts(app))
    # outermost: the refusals of every layer within know the request's client and path
    app.add_middleware(RequestContext, trusted_proxies=settings.trusted_proxies)


# --- security headers -------------------------------------------------------------------------

CSP_REPORT_PATH = "/api/securite/csp"
EMBED_PREFIX = "/integration/"
OGC_PREFIX = "/ogc"
DOCS_PATHS = ("/docs", "/redoc")
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "publickey-credentials-get",
        "screen-wake-lock",
        "usb",
        "xr-spatial-tracking",
    )
)
COMMON_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "permissions-policy": PERMISSIONS_POLICY,
}
# Images may come from https: the communes' logos are URLs of their own sites.
PORTAL_DIRECTIVES = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data: https:",
    "connect-src": "'self'",
    "font-src": "'self'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
    "report-uri": CSP_REPORT_PATH,
}
# pygeoapi's pages, rendered from the catalog's templates (`catalog.ogc.api.TEMPLATES`):
# the portal's stylesheet, the vendored Leaflet and our scripts, all from our origin; inline
# styles for the Swagger UI of `/ogc/openapi` (as on `/docs`), and its workers.
OGC_DIRECTIVES = {
    **PORTAL_DIRECTIVES,
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "worker-src": "'self' blob:",
}
# Swagger UI (`catalog.api_docs`): its packaged files, its inline styles, one inline script
DOCS_DIRECTIVES = {
    **PORTAL_DIRECTIVES,
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",
    "worker-src": "'self' blob:",
}
DATA_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
INLINE_SCRIPT = re.compile(r"<script(\s[^>]*)?>(.*?)</script\s*>", re.DOTALL | re.IGNORECASE)


def policy(directives: dict[str, str], **changes: str) -> str:
    merged = {**directives, **{k.replace("_", "-"): v for k, v in changes.items()}}
    return "; ".join(f"{name} {value}" for name, value in merged.items())


def script_hash(source: str) -> str:
    """The CSP source expression allowing exactly this inline script."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def inline_scripts(html: str) -> list[str]:
    """The contents of the inline (no `src`) scripts of an HTML page or template."""
    return [
        body
        for attributes, body in INLINE_SCRIPT.findall(html)
        if "src=" not in (attributes or "").lower()
    ]


HTML_SAFE_JSON = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "'": "\\u0027"}


def harden_pygeoapi_templates() -> None:
    """pygeoapi 0.21 writes features into its pages' scripts with `to_json | safe`: a value
    holding `</script>` ends the script and the rest of it is read as HTML. Its templates'
    `to_json` becomes HTML-safe JSON (as Jinja's `tojson`): the same JSON value, with `<`,
    `>`, `&` and `'` as \\u escapes, which cannot end a script nor open a tag. pygeoapi looks
    the filter up when it renders a page; its JSON responses keep their own serialiser."""
    from pygeoapi import util  # heavy: imported when the catalog is built, not before

    original = util.to_json
    if getattr(original, "html_safe", False):
        return

    @functools.wraps(original)
    def html_safe_to_json(dict_: Any, pretty: bool = False) -> str:
        text = original(dict_, pretty)
        for character, escape in HTML_SAFE_JSON.items():
            text = text.replace(character, escape)
        return text

    html_safe_to_json.html_safe = True  # type: ignore[attr-defined]
    util.to_json = html_safe_to_json


class DocsScripts:
    """Hashes of the inline script of the API's documentation page, rendered as its route
    renders it (its text depends only on the application's settings and root path)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._cache: dict[str, str] = {}

    def sources(self, root_path: str) -> str:
        if root_path not in self._cache:
            html = bytes(api_docs.page(self.app, root_path).body).decode()
            hashes = {script_hash(script) for script in inline_scripts(html)}
            self._cache[root_path] = " ".join(sorted(hashes))
        return self._cache[root_path]


class SecurityHeaders:
    """Adds the security headers to every response (a header already set is kept)."""

    def __init__(self, app: App, settings: SecuritySettings, docs: DocsScripts) -> None:
        self.app = app
        self.docs = docs
        portal = dict(PORTAL_DIRECTIVES)
        if settings.map_images:  # the configured map background's tile server, and no other
            portal["img-src"] = f"{portal['img-src']} {settings.map_images}"
        self.portal = policy(portal)
        self.embed = policy(portal, frame_ancestors=settings.embed_frame_ancestors)
        self.ogc = policy(OGC_DIRECTIVES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._headers(scope, list(message.get("headers", [])))
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _headers(self, scope: Scope, raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        present = {name.lower() for name, _ in raw}
        content_type = next((v for n, v in raw if n.lower() == b"content-type"), b"")
        html = content_type.startswith(b"text/html")
        path = scope.get("path", "")
        wanted = dict(COMMON_HEADERS)
        wanted["content-security-policy"] = self._policy(scope, path, html)
        embeddable = html and path.startswith(EMBED_PREFIX)
        if not embeddable:
            wanted["x-frame-options"] = "DENY"
        if html:
            wanted["cross-origin-opener-policy"] = "same-origin"
        if scope.get("scheme") == "https":
            wanted["strict-transport-security"] = "max-age=31536000"
        for name, value in wanted.items():
            if name.encode() not in present:
                raw.append((name.encode(), value.encode()))
        return raw

    def _policy(self, scope: Scope, path: str, html: bool) -> str:
        if not html:
            return DATA_POLICY
        if path.startswith(EMBED_PREFIX):
            return self.embed
        if path == OGC_PREFIX or path.startswith(OGC_PREFIX + "/"):
            return self.ogc
        if path in DOCS_PATHS or path.startswith("/docs/"):
            scripts = (
                f"{DOCS_DIRECTIVES['script-src']} {self.docs.sources(scope.get('root_path', ''))}"
            )
            return policy(DOCS_DIRECTIVES, script_src=scripts.strip())
        return self.portal


class CspReports:
    """Violations browsers report (`report-uri`): logged, the latest kept for the data team."""

    MAX_BODY = 16_384

    def __init__(self) -> None:
        self.count = 0
        self.latest: deque[dict[str, Any]] = deque(maxlen=50)

    async def endpoint(self, request: Request) -> Response:
        try:
            body = await read_bounded(request, self.MAX_BODY)
        except BodyTooLarge:
            return Response(status_code=413)
        try:
            report = json.loads(body).get("csp-report", {})
        except (ValueError, AttributeError):
            report = {}
        if not isinstance(report, dict):
            report = {}
        kept = {
            key: str(report.get(key, ""))[:500]
            for key in ("document-uri", "violated-directive", "blocked-uri", "source-file")
        }
        self.count += 1
        self.latest.append(kept)
        LOG.warning("Violation de la politique de sécurité du contenu : %s", kept)
        return Response(status_code=204)


# --- rate limiting ----------------------------------------------------------------------------

STORAGE_ERROR_LOG_INTERVAL = 60.0


@dataclass
class Verdict:
    allowed: bool
    retry_after: int = 0
    limit: str = ""


@dataclass
class ClientLimiter:
    """Counts requests per client key against the configured limits (`limits` library)."""

    settings: SecuritySettings
    anonymous: list[RateLimitItem] = field(init=False)
    authenticated: list[RateLimitItem] = field(init=False)

    def __post_init__(self) -> None:
        self.anonymous = parse_many(self.settings.limits)
        self.authenticated = parse_many(self.settings.authenticated_limits or self.settings.limits)
        self.strategy = SlidingWindowCounterRateLimiter(_async_storage(self.settings.storage))
        self._last_error_logged = 0.0

    async def check(self, key: str, authenticated: bool) -> Verdict:
        """Count one request of `key`; the verdict says whether it may be served."""
        items = self.authenticated if authenticated else self.anonymous
        try:
            for item in items:
                if not await self.strategy.hit(item, self.settings.namespace, key):
                    stats = await self.strategy.get_window_stats(item, self.settings.namespace, key)
                    wait = max(1, math.ceil(stats.reset_time - time.time()))
                    return Verdict(False, wait, _describe(item))
        except Exception as error:  # the storage is down: serve, and say so
            self._log_storage_error(error)
        return Verdict(True)

    def _log_storage_error(self, error: Exception) -> None:
        moment = time.monotonic()
        if moment - self._last_error_logged >= STORAGE_ERROR_LOG_INTERVAL:
            self._last_error_logged = moment
            LOG.error(
                "Limitation de débit inopérante (stockage %s injoignable : %s) : les "
                "requêtes sont servies sans limite.",
                _redacted(self.settings.storage),
                error,
            )


def _async_storage(uri: str) -> Any:
    """`memory://` or `redis://…` as the `limits` library's asyncio storage."""
    scheme = uri.split("://", 1)[0].lower()
    if scheme == "memory":
        return storage_from_string("async+memory://")
    if scheme in {"redis", "rediss"}:
        return storage_from_string(
            f"async+{uri}",
            implementation="redispy",
            key_prefix="opendata-limites",
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
        )
    raise ValueError(
        f"OPENDATA_RATE_LIMIT_STORAGE « {_redacted(uri)} » : memory:// ou redis://hôte:port/base."
    )


def _redacted(uri: str) -> str:
    """A storage URI without its password, for logs and messages."""
    return re.sub(r"://[^@/]*@", "://***@", uri)


UNITS = {"second": "seconde", "minute": "minute", "hour": "heure", "day": "jour"}


def _describe(item: RateLimitItem) -> str:
    unit = UNITS.get(item.GRANULARITY.name, item.GRANULARITY.name)
    per = f"{item.multiples} {unit}s" if item.multiples > 1 else unit
    return f"{item.amount} requêtes par {per}"


class RateLimit:
    """Answers 429 to a client over its limits on the APIs and services: the paths under
    `prefixes` (the web services' table, `catalog.web.registry.limited_prefixes`)."""

    def __init__(
        self,
        app: App,
        limiter: ClientLimiter,
        store: Any = None,
        prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.store = store
        self.prefixes = prefixes
        self._warned_forwarded = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        key, authenticated = await self._client_key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        verdict = await self.limiter.check(key, authenticated)
        if verdict.allowed:
            await self.app(scope, receive, send)
            return
        await too_many_requests(verdict)(scope, receive, send)

    async def _client_key(self, scope: Scope) -> tuple[str | None, bool]:
        """Who to count: the authenticated principal, else the client's address (None for
        an exempt address)."""
        caller = await self._principal(scope)
        if caller.authenticated:
            return f"principal:{caller.kind}:{caller.subject or caller.label}", True
        settings = self.limiter.settings
        address = client_address(scope, settings.trusted_proxies)
        self._warn_untrusted_forwarding(scope, address)
        if not address or within(address, settings.exempt):
            return None, False
        return f"ip:{address}", False

    async def _principal(self, scope: Scope) -> Principal:
        request = Request(scope)
        if self.store is None or principal.bearer_token(request.headers) is None:
            return ANONYMOUS
        return await run_in_threadpool(accounts.identify, request, self.store)

    def _warn_untrusted_forwarding(self, scope: Scope, address: str) -> None:
        """An X-Forwarded-For from an address that is not a trusted proxy is ignored; a
        proxy in front of the catalog that is not declared makes every client one."""
        if self._warned_forwarded or not within(address, self.limiter.settings.exempt):
            return
        if any(name == b"x-forwarded-for" for name, _ in scope.get("headers", [])):
            self._warned_forwarded = True
            LOG.warning(
                "X-Forwarded-For reçu de %s, qui n'est pas un proxy de confiance : en-tête "
                "ignoré. Déclarez le proxy dans OPENDATA_TRUSTED_PROXIES.",
                address,
            )


def too_many_requests(verdict: Verdict) -> Response:
    message = (
        f"Trop de requêtes : la limite de {verdict.limit} est atteinte pour ce client. "
        f"Réessayez dans {verdict.retry_after} s, ou espacez vos requêtes ; pour un usage "
        "intensif, téléchargez le fichier complet du jeu de données."
    )
    return Response(
        json.dumps(
            {"detail": message, "reessayer_dans_secondes": verdict.retry_after}, ensure_ascii=False
        ),
        status_code=429,
        media_type="application/json",
        headers={"Retry-After": str(verdict.retry_after)},
    )
