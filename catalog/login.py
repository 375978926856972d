"""The portal's sign-in: OpenID Connect authorization code flow with PKCE (S256).

Enabled when `OPENDATA_OIDC_ISSUERS` names at least one provider with a client id
(`OPENDATA_OIDC_CLIENT_ID_<NAME>`, see `catalog.oidc`) and `OPENDATA_SESSION_SECRET` is
set (32 characters at least):

- `GET /connexion?retour=/chemin`: the providers to choose from (straight to the provider
  when there is only one);
- `GET /connexion/<fournisseur>?retour=/chemin`: to the provider's authorization endpoint;
  a random `state`, `nonce` and PKCE code verifier wait in the session;
- `GET /connexion/retour?code=…&state=…`: back from the provider; the code is exchanged
  at the token endpoint (client secret, code verifier) for an ID token, verified like any
  bearer token (`OidcVerifier.claims`) with its nonce, issued by the provider the login
  started with, for its client id. The store then keeps the user's session (name, first
  name, e-mail, `sub`, agent flag, ID token, an expiry: `OPENDATA_SESSION_HOURS`, default
  8), and the cookie gets its random identifier only (`catalog.sessions`);
- `GET /deconnexion`: the session is deleted from the store (its cookie, even replayed,
  opens nothing any more) and cleared, then the browser goes to the provider's
  `end_session_endpoint` (or back to the portal). A link rather than a form: the portal's
  CSP (`form-action 'self'`) would stop a form's redirection to the provider, and a forged
  request can do no more than sign the user out.

The session cookie is Starlette's `SessionMiddleware` cookie (`opendata_session`), signed
with itsdangerous, HttpOnly, SameSite=Lax, Secure unless `OPENDATA_SESSION_SECURE=0` (plain
http on a developer's machine): the session's identifier once signed in, the login under
way before. It is read for reading data (`visibility.caller`) and for the portal's reserved
pages and their forms (`catalog.web.people`: a role from `catalog.roles`, a CSRF token per
session from `catalog.csrf`); the APIs that change something take bearer credentials only.
Besides the names and e-mail, the session keeps the claims the habilitations read
(`revendications`: ProConnect's `siret`…, from the ID token or the userinfo endpoint).
Every page's header gets « Se connecter » or the person's name, with « Mes dépôts » for a
commune's agent and « Santé des jeux » for the data team (`portal_context`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from catalog import csrf, sessions, site
from catalog.accounts import printable
from catalog.oidc import (
    PERSON_CLAIMS,
    InvalidToken,
    OidcVerifier,
    Provider,
    ProviderUnavailable,
    check_url,
)
from catalog.roles import VERIFIED_CLAIM
from catalog.visibility import SESSION_COOKIE, caller

LOGGER = logging.getLogger(__name__)
SECRET_VARIABLE = "OPENDATA_SESSION_SECRET"
HOURS_VARIABLE = "OPENDATA_SESSION_HOURS"
SECURE_VARIABLE = "OPENDATA_SESSION_SECURE"
PUBLIC_URL_VARIABLE = "OPENDATA_PUBLIC_URL"
MIN_SECRET_LENGTH = 32
DEFAULT_HOURS = 8.0
PENDING = "connexion"  # the login under way, in the session
PENDING_SECONDS = 600  # a login must come back from the provider within this time
CALLBACK_PATH = "/connexion/retour"
SAFE_RETURN = re.compile(r"/(?![/\\])[^\s]*")  # fullmatch: no newline at the end
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


@dataclass(frozen=True)
class LoginSettings:
    secret: str
    hours: float = DEFAULT_HOURS
    secure: bool = True
    public_url: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LoginSettings | None:
        env = os.environ if environ is None else environ
        secret = env.get(SECRET_VARIABLE, "")
        if not secret:
            return None
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"{SECRET_VARIABLE} : {MIN_SECRET_LENGTH} caractères au moins.")
        return cls(
            secret=secret,
            hours=float(env.get(HOURS_VARIABLE, DEFAULT_HOURS)),
            secure=env.get(SECURE_VARIABLE, "1").strip().lower() not in {"0", "non", "false"},
            public_url=(env.get(PUBLIC_URL_VARIABLE) or "").rstrip("/") or None,
        )


class LoginFailed(Exception):
    """The sign-in did not succeed (the message, in French, is shown to the user)."""


def install(app: FastAPI, verifier: OidcVerifier | None) -> bool:
    """Add the session and the login routes when configured; whether they were added."""
    settings = LoginSettings.from_env()
    providers = [p for p in verifier.providers if p.client_id] if verifier else []
    if settings is None or verifier is None or not providers:
        app.state.login = None
        return False
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret,
        session_cookie=SESSION_COOKIE,
        max_age=int(settings.hours * 3600),
        same_site="lax",
        https_only=settings.secure,
    )
    app.state.login = settings
    app.include_router(router(verifier, providers, settings))
    return True


def portal_context(request: Request) -> dict[str, Any]:
    """For every portal page: whether sign-in is offered, who is signed in and their pages,
    and the session's CSRF token for the forms (`csrf`)."""
    if getattr(request.app.state, "login", None) is None:
        return {"compte": None, "csrf": ""}
    principal = caller(request)
    name = " ".join(p for p in (principal.given_name, principal.family_name) if p)
    producer = principal.kind == "producteur" and principal.commune
    return {
        "compte": {
            "connecte": principal.signed_in or principal.kind == "usager",
            "nom": printable(name or principal.email),  # names come from the provider
            "retour": request.url.path,
            "depots": f"/communes/{principal.commune}/depots" if producer else None,
            "sante": principal.kind == "equipe-data",
        },
        "csrf": csrf.token(request),
    }


TEMPLATES.context_processors.append(portal_context)


def router(verifier: OidcVerifier, providers: list[Provider], settings: LoginSettings) -> APIRouter:
    routes = APIRouter(include_in_schema=False)
    by_name = {p.name: p for p in providers}

    @routes.get(CALLBACK_PATH)
    async def come_back(request: Request) -> Response:
        try:
            user, id_token = await run_in_threadpool(finish_login, request, verifier, settings)
        except LoginFailed as error:
            request.session.pop(PENDING, None)
            return failure_page(request, str(error))
        pending = request.session.get(PENDING, {})
        session_id = await run_in_threadpool(
            sessions.open_session,
            request.app.state.store,
            str(user["iss"]),
            user,
            id_token,
            settings.hours,
        )
        request.session.clear()  # a new session for the signed-in user: its identifier only
        request.session[sessions.SESSION_ID] = session_id
        return RedirectResponse(safe_return(pending.get("retour")), status_code=303)

    @routes.get("/connexion")
    def choose(request: Request, retour: str = "/") -> Response:
        if len(providers) == 1:
            query = urlencode({"retour": safe_return(retour)})
            return RedirectResponse(f"/connexion/{providers[0].name}?{query}", status_code=303)
        context = {"fournisseurs": providers, "retour": safe_return(retour)}
        return TEMPLATES.TemplateResponse(request, "connexion.html", context)

    @routes.get("/connexion/{fournisseur}")
    async def start(request: Request, fournisseur: str, retour: str = "/") -> Response:
        provider = by_name.get(fournisseur)
        if provider is None:
            return failure_page(request, f"Fournisseur d'identité « {fournisseur} » inconnu.", 404)
        try:
            document = await run_in_threadpool(verifier.metadata(provider).document)
            endpoint = check_url(str(document["authorization_endpoint"]))
        except (ProviderUnavailable, KeyError, ValueError):
            LOGGER.warning("Connexion impossible : %s injoignable", provider.issuer, exc_info=True)
            return failure_page(request, f"{provider.label} ne répond pas ; réessayez plus tard.")
        location = begin_login(request, provider, endpoint, settings, safe_return(retour))
        return RedirectResponse(location, status_code=303)

    @routes.get("/deconnexion")
    async def sign_out(request: Request) -> Response:
        ended = await run_in_threadpool(
            sessions.close, request.app.state.store, request.session.get(sessions.SESSION_ID)
        )
        request.session.clear()
        provider = next((p for p in providers if ended and p.issuer == ended.issuer), None)
        location = "/"
        if provider is not None and ended is not None and ended.id_token:
            location = await run_in_threadpool(
                provider_logout,
                verifier,
                provider,
                ended.id_token,
                callback_base(request, settings),
            )
        return RedirectResponse(location, status_code=303)

    return routes


def safe_return(path: Any) -> str:
    """A path on this site to come back to; anything else (another site…) is the home page."""
    return path if isinstance(path, str) and SAFE_RETURN.fullmatch(path) else "/"


def callback_base(request: Request, settings: LoginSettings) -> str:
    return settings.public_url or site.public_url(request)  # never the request's Host


def begin_login(
    request: Request, provider: Provider, endpoint: str, settings: LoginSettings, retour: str
) -> str:
    """Keep state, nonce and code verifier in the session; the authorization URL."""
    verifier = secrets.token_urlsafe(48)
    state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    request.session[PENDING] = {
        "fournisseur": provider.name,
        "state": state,
        "nonce": nonce,
        "verifier": verifier,
        "retour": retour,
        "debut": time.time(),
    }
    query = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": callback_base(request, settings) + CALLBACK_PATH,
        "scope": provider.scopes,
        "state": state,
        "nonce": nonce,
        "code_challenge": pkce_challenge(verifier),
        "code_challenge_method": "S256",
    }
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def finish_login(
    request: Request, verifier: OidcVerifier, settings: LoginSettings
) -> tuple[dict[str, Any], str]:
    """The signed-in user (for the session) and their ID token; LoginFailed otherwise."""
    pending = request.session.get(PENDING)
    params = request.query_params
    if not isinstance(pending, dict) or time.time() - pending.get("debut", 0) > PENDING_SECONDS:
        raise LoginFailed("Aucune connexion en cours (ou elle a expiré) : recommencez.")
    given = params.get("state", "").encode("utf-8")
    if not hmac.compare_digest(given, str(pending["state"]).encode("utf-8")):
        raise LoginFailed("Réponse du fournisseur d'identité invalide : recommencez.")
    if "error" in params or "code" not in params:
        raise LoginFailed("Le fournisseur d'identité a refusé la connexion.")
    provider = next(p for p in verifier.providers if p.name == pending["fournisseur"])
    redirect_uri = callback_base(request, settings) + CALLBACK_PATH
    tokens = exchange_code(verifier, provider, params["code"], pending["verifier"], redirect_uri)
    id_token = tokens["id_token"]
    try:
        claims = verifier.claims(id_token, nonce=pending["nonce"])
    except (InvalidToken, jwt.PyJWTError, ProviderUnavailable) as error:
        LOGGER.warning("Jeton d'identité refusé à la connexion : %s", error)
        raise LoginFailed("Le jeton d'identité reçu est invalide.") from error
    audience = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if claims["iss"] != provider.issuer or provider.client_id not in audience:
        raise LoginFailed("Le jeton d'identité ne vient pas du fournisseur choisi.")
    wanted = role_claims(request)
    looked_for = [name for name in wanted if name != VERIFIED_CLAIM]  # may well be absent
    if not all(claims.get(name) for name in ("given_name", "email", *looked_for)):
        found = userinfo(verifier, provider, tokens.get("access_token"), claims, wanted)
        claims = {**claims, **found}
    principal = verifier.principal_from_claims(claims)
    user = {
        "iss": provider.issuer,
        "sub": principal.subject,
        "family_name": principal.family_name,
        "given_name": principal.given_name,
        "email": principal.email,
        "agent": principal.agent,
        "revendications": {name: claims[name] for name in wanted if _small(claims.get(name))},
    }
    return user, id_token


def role_claims(request: Request) -> tuple[str, ...]:
    """The claims the habilitations read (`catalog.roles`), kept in the session."""
    roles = getattr(request.app.state, "roles", None)
    return roles.claims if roles is not None else ()


def _small(value: Any) -> bool:
    """A claim worth keeping: a short text, a number, a boolean, or a short list of them."""
    items = value if isinstance(value, list) else [value]
    scalars = all(isinstance(i, str | int | bool) and len(str(i)) <= 200 for i in items)
    return value is not None and scalars and len(items) <= 50


def exchange_code(
    verifier: OidcVerifier, provider: Provider, code: str, code_verifier: str, redirect_uri: str
) -> dict[str, Any]:
    """The provider's token response for this code (with an `id_token`)."""
    try:
        document = verifier.metadata(provider).document()
        endpoint = check_url(str(document["token_endpoint"]))
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
            "client_id": provider.client_id or "",
        }
        methods = document.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
        auth = None
        if provider.client_secret and "client_secret_basic" in methods:
            auth = httpx.BasicAuth(provider.client_id or "", provider.client_secret)
        elif provider.client_secret:
            form["client_secret"] = provider.client_secret
        with verifier.http_client() as client:  # through the SSRF guard
            response = client.post(endpoint, data=form, auth=auth)
        answer = response.json() if response.status_code == 200 else {}
    except (ProviderUnavailable, KeyError, ValueError, httpx.HTTPError) as error:
        LOGGER.warning("Échange du code impossible auprès de %s : %s", provider.issuer, error)
        raise LoginFailed("Le fournisseur d'identité ne répond pas ; réessayez.") from error
    if not isinstance(answer, dict) or not isinstance(answer.get("id_token"), str):
        LOGGER.warning(
            "Échange du code refusé par %s : HTTP %s", provider.issuer, response.status_code
        )
        raise LoginFailed("Le fournisseur d'identité a refusé la connexion.")
    return answer


def userinfo(
    verifier: OidcVerifier,
    provider: Provider,
    access_token: Any,
    identity: dict[str, Any],
    extra: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The person's names and e-mail (and the `extra` claims the habilitations read) from
    the userinfo endpoint, when the ID token lacks them (ProConnect answers a signed JWT;
    others, JSON): nothing else is kept, and nothing at all unless it is about the same
    `sub`."""
    endpoint = verifier.metadata(provider).document().get("userinfo_endpoint")
    if not isinstance(endpoint, str) or not isinstance(access_token, str):
        return {}
    try:
        with verifier.http_client() as client:  # through the SSRF guard
            response = client.get(
                check_url(endpoint), headers={"Authorization": f"Bearer {access_token}"}
            )
        response.raise_for_status()
        if response.headers.get("content-type", "").startswith("application/jwt"):
            claims = verifier.userinfo_claims(response.text.strip())
        else:
            claims = response.json()
    except (httpx.HTTPError, ValueError, InvalidToken, jwt.PyJWTError, ProviderUnavailable):
        LOGGER.warning("Userinfo illisible chez %s", provider.issuer, exc_info=True)
        return {}
    if not isinstance(claims, dict) or claims.get("sub") != identity["sub"]:
        return {}
    wanted = (*PERSON_CLAIMS, verifier.settings.agent_claim, *extra)
    return {name: claims[name] for name in wanted if name and name in claims}


def provider_logout(verifier: OidcVerifier, provider: Provider, id_token: str, base: str) -> str:
    """Where to send the browser to sign out of the provider too (the portal if none)."""
    try:
        endpoint = verifier.metadata(provider).document().get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return "/"
        check_url(endpoint)
    except (ProviderUnavailable, ValueError):
        return "/"
    query = urlencode(
        {
            "id_token_hint": id_token,
            "post_logout_redirect_uri": base + "/",
            "state": secrets.token_urlsafe(16),
        }
    )
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def failure_page(request: Request, message: str, status: int = 400) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request, "connexion.html", {"erreur": message, "fournisseurs": []}, status_code=status
    )
