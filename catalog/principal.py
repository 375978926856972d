"""Who is calling, and what they may read.

Every request of the catalog (API, downloads, DCAT, OGC services, portal pages) is made by a
`Principal`:

- `anonyme`: no credentials; sees public datasets only.
- `usager`: a person signed in through an OpenID Connect provider (ProConnect for public
  agents, GrandLyon Connect for others), identified by a verified bearer JWT (see
  `catalog.oidc`). Only their name, first name and e-mail are read from the token; `agent`
  is true when the token carries the agents claim or group.
- `producteur`: a commune agent with an API token (see `catalog.accounts`); acts on their
  own commune's datasets only.
- `equipe-data`: the Métropole's data team, with an API token; acts on every dataset.

Invalid credentials never fall back to `anonyme` silently in the APIs that need them; but
for reading, an invalid token gets exactly what an anonymous caller gets, so a forged or
expired token learns nothing more, not even whether a restricted dataset exists.
"""

from __future__ import annotations

from typing import Any

from core.access import ANONYMOUS, Principal

BEARER_STATE = "opendata_bearer_principal"  # identify()'s answer, in the scope's state
API_TOKEN_PREFIX = "odl_"  # platform API tokens (producers, data team); anything else is a JWT


def bearer_token(headers: Any) -> str | None:
    """The bearer token of an `Authorization` header, if any."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def identify(request: Any, store: Any) -> Principal:
    """The caller of `request`: an API token (catalog.accounts), an OIDC bearer JWT
    (the verifier in `request.app.state.oidc`, see catalog.oidc), or anonymous.

    An unknown, revoked, expired or forged credential is anonymous here, and written to the
    audit log (`catalog.refusals`, rate-limited); endpoints that require credentials answer
    401 themselves. Reading endpoints use
    `catalog.visibility.caller`, which also knows the portal's signed session (sign-in
    through `catalog.login`); endpoints that change something use bearer credentials only.

    Worked out once per request (the rate limiter, then the endpoint, ask again): kept in
    the request's scope state, which every `Request` of that scope shares."""
    state = request.scope.setdefault("state", {})
    known = state.get(BEARER_STATE)
    if known is None:
        known = state[BEARER_STATE] = _bearer_principal(request, store)
    return known


def _bearer_principal(request: Any, store: Any) -> Principal:
    token = bearer_token(request.headers)
    if token is None:
        return ANONYMOUS
    from catalog import accounts, refusals  # noqa: PLC0415 - they need the store module

    if token.startswith(API_TOKEN_PREFIX):
        check = accounts.check_api_token(store, token)
        if check.principal is not None:
            return check.principal
        refusals.authentication_refused(
            store, check.reason, token_id=check.token_id, commune=check.commune, scope=request.scope
        )
        return ANONYMOUS
    verifier = getattr(request.app.state, "oidc", None)
    found = verifier.principal(token) if verifier is not None else None
    if found is None:
        refusals.authentication_refused(store, "jeton-oidc-invalide", scope=request.scope)
    return found or ANONYMOUS
