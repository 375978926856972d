"""Who may see which dataset, for every endpoint that reads the catalog.

- `caller(request)`: the request's `Principal`, worked out once per request: a bearer
  credential (`catalog.accounts.identify`: API token or OIDC JWT), else the portal's
  session (`catalog.login`; the signed cookie names a session kept in the store,
  `catalog.sessions`; with the role `catalog.roles` gives the person: a commune's agent,
  the data team), else anonymous. The APIs that change something use `identify` (bearer
  credentials), never the session cookie; the portal's pages and forms use
  `catalog.web.people.page_principal` (a session, with a CSRF token for its forms).
- `may_see(principal, dataset)`: whether the caller may know that the dataset exists and
  read it (`Principal.may_read` of its access level). Every other caller gets what it would
  get for a dataset that does not exist; `may_see_or_refuse` also writes that refused read
  to the audit log (`catalog.refusals`), for the endpoints that name one dataset.
- `PrivateWhenAuthenticated`: responses to a request with credentials are never stored by
  a shared cache, and every response varies on them.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from catalog import refusals, sessions
from catalog.accounts import identify
from catalog.principal import bearer_token
from catalog.roles import NOBODY
from core.access import ANONYMOUS, Principal, may_see
from core.records import Dataset

SESSION_COOKIE = "opendata_session"
STATE_KEY = "principal"


def caller(request: Request) -> Principal:
    """Who makes this request (for reading); computed once, kept on `request.state`."""
    known = getattr(request.state, STATE_KEY, None)
    if known is None:
        known = _identify(request)
        setattr(request.state, STATE_KEY, known)
    return known


def _identify(request: Request) -> Principal:
    if bearer_token(request.headers) is not None:
        return identify(request, getattr(request.app.state, "store", None))
    return session_principal(request) or ANONYMOUS


def session_principal(request: Request) -> Principal | None:
    """The user signed in on the portal, while their session lasts in the store and their
    provider is still configured. A cookie that cannot be read, or that names a session
    that is over (signed out, expired), is refused: in the audit log, and dropped."""
    session = request.scope.get("session")
    if not isinstance(session, dict):
        return None
    store = getattr(request.app.state, "store", None)
    if sessions.SESSION_ID not in session:
        if not session and _has_session_cookie(request.scope):  # bad signature, too old
            refusals.authentication_refused(store, "session-illisible", scope=request.scope)
        return None
    found, reason = sessions.find(store, session.get(sessions.SESSION_ID))
    if found is None:
        refusals.authentication_refused(store, reason, scope=request.scope)
        session.clear()  # the answer tells the browser to drop the cookie
        return None
    verifier = getattr(request.app.state, "oidc", None)
    provider = next(
        (p for p in (verifier.providers if verifier else ()) if p.issuer == found.issuer), None
    )
    if provider is None:
        return None
    person = found.person
    principal = Principal(
        kind="usager",
        subject=found.subject,
        family_name=str(person.get("family_name", "")),
        given_name=str(person.get("given_name", "")),
        email=str(person.get("email", "")),
        agent=bool(person.get("agent", False)),
        signed_in=True,
    )
    roles = getattr(request.app.state, "roles", None) or NOBODY
    return roles.apply(principal, person, provider.name)


def _has_session_cookie(scope: Scope) -> bool:
    return any(
        name == b"cookie" and SESSION_COOKIE.encode() + b"=" in value
        for name, value in scope.get("headers", [])
    )


async def caller_dependency(request: Request) -> Principal:
    """`caller` as an endpoint's dependency: a request without credentials (no
    Authorization header, no session cookie) is anonymous at once, in the event loop; the
    others are identified in the thread pool (the store is read). FastAPI would run a
    plain function in the thread pool for every request: a thread hop more for each."""
    known = getattr(request.state, STATE_KEY, None)
    if known is not None:
        return known
    if not _has_credentials(request.scope):
        setattr(request.state, STATE_KEY, ANONYMOUS)
        return ANONYMOUS
    return await run_in_threadpool(caller, request)


CALLER: Any = Depends(caller_dependency)  # an endpoint's `principal: Principal = CALLER`


def may_see_or_refuse(store: Any, principal: Principal, dataset: Dataset | None) -> bool:
    """`may_see`, for a request that names the dataset: when it exists but is not for this
    caller (who gets a 404, as for a missing one), the refused read goes to the audit log."""
    if may_see(principal, dataset):
        return True
    if dataset is not None:
        refusals.read_refused(store, principal, dataset)
    return False


class PrivateWhenAuthenticated:
    """ASGI middleware: `Cache-Control: private` on the answers to requests that carry
    credentials (a bearer token or the session cookie), `Vary` on both for every answer, so
    that no shared cache gives one caller's restricted data to another."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        credentials = _has_credentials(scope)

        async def send_private(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.add_vary_header("Authorization")
                headers.add_vary_header("Cookie")
                if credentials:
                    headers["Cache-Control"] = "private, no-cache"
            await send(message)

        await self.app(scope, receive, send_private)


def _has_credentials(scope: Scope) -> bool:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for name, value in headers:
        if name == b"authorization":
            return True
        if name == b"cookie" and SESSION_COOKIE.encode() + b"=" in value:
            return True
    return False
