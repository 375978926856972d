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

API_TOKEN_PREFIX = "odl_"  # platform API tokens (producers, data team); anything else is a JWT


def bearer_token(headers: Any) -> str | None:
    """The bearer token of an `Authorization` header, if any."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
