"""Who may open a portal page or post its form: a signed-in person with the right role.

The portal's reserved pages (« Mes dépôts » of a commune, the data team's health page) are
opened in a browser, through the sign-in (`catalog.login`, ProConnect for public agents):
the person's role comes from the habilitations file (`catalog.roles`). Every such route
starts with one call:

    principal = people.page_principal(request, store, "de consulter la vue santé",
                                      data_team=True)          # or commune="ecully"
    # a form: principal = people.page_principal(..., form=await request.form())

- a browser without a session (or whose session is over) is sent to the sign-in, which
  brings it back: 303 to `/connexion?retour=<page>` (a form: back to the page it was
  posted from); without a configured sign-in, a French 401 page;
- a signed-in person without the role gets a French 403 page (the refusal is in the audit
  log): another commune's agent, a person the habilitations do not name;
- a request that changes something (POST…) authenticated by the session must carry the
  session's CSRF token in its form's `csrf` field (`catalog.csrf`; templates get it as
  `{{ csrf }}`, routes as `csrf_token(request)`); without it, a French 403 page;
- a request with an `Authorization: Bearer` header is a machine: its API token (or OIDC
  JWT) decides, a bad one gets the APIs' JSON 401, no CSRF token is asked.

The JSON APIs keep their own guards (`catalog.accounts`): bearer credentials only, 401 in
JSON. A route that must not read a body before knowing who sends it (an upload) calls
`authorised` first, then `check_csrf` on the form it read.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from catalog import accounts, csrf
from catalog.principal import bearer_token
from catalog.roles import RolesError, load_roles
from catalog.visibility import caller
from catalog.web.pages import TEMPLATES
from core.access import Principal

SIGN_IN_PATH = "/connexion"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class SignInRequired(Exception):
    """The browser must sign in, then come back to `back` (a path of this site)."""

    def __init__(self, back: str) -> None:
        super().__init__(back)
        self.back = back


class PageRefused(Exception):
    """A French page explains the refusal (401 or 403)."""

    def __init__(self, status: int, message: str, *, sign_in: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.sign_in = sign_in  # a link to sign in with another account, when it helps


def install(app: FastAPI, communes: Collection[str]) -> None:
    """The habilitations (read now: a wrong file stops the catalog with a French message)
    and the answers of the pages' refusals."""
    verifier = getattr(app.state, "oidc", None)
    providers = [p.name for p in verifier.providers] if verifier is not None else None
    try:
        app.state.roles = load_roles(communes, providers)
    except RolesError as error:
        raise SystemExit(f"Habilitations : {error}") from error
    app.add_exception_handler(SignInRequired, _sign_in_answer)
    app.add_exception_handler(PageRefused, _refusal_answer)


def csrf_token(request: Request) -> str:
    """The CSRF token for the forms of a page (templates already have it as `csrf`)."""
    return csrf.token(request)


def page_principal(
    request: Request,
    store: Any,
    what: str,
    *,
    commune: str | None = None,
    data_team: bool = False,
    form: Mapping[str, Any] | None = None,
) -> Principal:
    """Who opens this page or posts this form, when they may (see the module's doc):
    the data team (`data_team`), or `commune`'s agents and the data team (`commune`), or
    anyone signed in. `what` names the action in French (« de consulter … »), for the
    refusal; `form` is the posted form, for its CSRF token."""
    principal = authorised(request, store, what, commune=commune, data_team=data_team)
    check_csrf(request, store, principal, what, form, commune)
    return principal


def authorised(
    request: Request,
    store: Any,
    what: str,
    *,
    commune: str | None = None,
    data_team: bool = False,
) -> Principal:
    """`page_principal` without the CSRF check (call `check_csrf` once the form is read)."""
    if bearer_token(request.headers) is not None:  # a machine: the APIs' answers
        principal = accounts.require_authenticated(request, accounts.identify(request, store))
    else:
        principal = caller(request)
        if not principal.authenticated:
            raise _sign_in(request)
    if data_team and principal.kind != "equipe-data":
        accounts.refuse(store, principal, what, None)
        raise PageRefused(
            403,
            f"Réservé à l'équipe data de la Métropole ({what}). {_whose(principal)}",
            sign_in=_other_account(request, principal),
        )
    if commune is not None and not principal.acts_for(commune):
        accounts.refuse(store, principal, what, commune)
        raise PageRefused(
            403,
            f"Réservé aux agents de la commune « {commune} » et à l'équipe data ({what}). "
            f"{_whose(principal)}",
            sign_in=_other_account(request, principal),
        )
    return principal


def check_csrf(
    request: Request,
    store: Any,
    principal: Principal,
    what: str,
    form: Mapping[str, Any] | None,
    commune: str | None = None,
) -> None:
    """A request that changes something, by session, must carry the session's token."""
    if request.method in SAFE_METHODS or bearer_token(request.headers) is not None:
        return
    if not csrf.valid(request, form):
        accounts.refuse(store, principal, f"{what} (jeton anti-falsification invalide)", commune)
        raise PageRefused(
            403,
            "Formulaire refusé : son jeton de sécurité (csrf) est absent ou ne correspond pas "
            "à votre session (envoyé depuis un autre site, ou après une nouvelle connexion). "
            "Rechargez la page et renvoyez le formulaire.",
        )


def _sign_in(request: Request) -> Exception:
    if getattr(request.app.state, "login", None) is None:
        return PageRefused(
            401,
            "Page réservée aux personnes habilitées, mais la connexion au portail n'est pas "
            "configurée sur cette plateforme : présentez un jeton d'API (en-tête "
            "« Authorization: Bearer <jeton> »).",
        )
    if request.method in SAFE_METHODS:
        query = request.url.query
        return SignInRequired(request.url.path + (f"?{query}" if query else ""))
    referer = urlsplit(request.headers.get("referer", ""))  # the page of the form
    return SignInRequired(referer.path or "/")


def _sign_in_answer(request: Request, error: Exception) -> Response:
    assert isinstance(error, SignInRequired)
    return RedirectResponse(
        f"{SIGN_IN_PATH}?{urlencode({'retour': error.back})}",
        status_code=303,
        headers={"Cache-Control": "no-store"},
    )


def _refusal_answer(request: Request, error: Exception) -> Response:
    assert isinstance(error, PageRefused)
    context = {"message": error.message, "autre_compte": error.sign_in}
    headers = {"Cache-Control": "no-store"}
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return TEMPLATES.TemplateResponse(
        request, "acces.html", context, status_code=error.status, headers=headers
    )


def _whose(principal: Principal) -> str:
    who = accounts.printable(principal.email or principal.label)  # from the provider
    if principal.kind == "producteur":
        return f"Votre compte ({who}) est rattaché à la commune « {principal.commune} »."
    if principal.kind == "usager":
        return (
            f"Votre compte ({who}) n'est rattaché à aucune commune ni à l'équipe data : "
            "demandez à l'équipe data de la Métropole de vous ajouter aux habilitations."
        )
    return ""


def _other_account(request: Request, principal: Principal) -> str | None:
    """Signing out lets a person sign in with another account (a session only)."""
    signed_in = principal.signed_in and getattr(request.app.state, "login", None) is not None
    return "/deconnexion" if signed_in else None
