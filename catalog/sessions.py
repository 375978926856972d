"""The portal's sessions, kept server-side (issue #16).

The session cookie (`opendata_session`: Starlette's `SessionMiddleware`, signed with
itsdangerous) holds, once the person is signed in, a random identifier only:
`{"sid": "<256 random bits>"}`. (While a sign-in is under way, until the provider sends the
browser back, it holds that login instead: `state`, `nonce`, PKCE code verifier, return
path; nothing about the person.) Their name, first name, e-mail, agent flag and ID token
are in the store (`portal_sessions`), under the SHA-256 of the identifier: reading the
table gives no cookie.

Signing out deletes the row: the cookie, kept or replayed, opens nothing afterwards; nor
does it past the session's end (`OPENDATA_SESSION_HOURS`, by the platform's clock). Either
way the request is anonymous, the refusal goes to the audit log (`catalog.refusals`) and
the browser is told to drop the cookie. Expired rows are deleted at each sign-in.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from core import clock
from core.records import PortalSession

SESSION_ID = "sid"  # the session's identifier, in the cookie


def digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def open_session(
    store: Any, issuer: str, person: dict[str, Any], id_token: str | None, hours: float
) -> str:
    """Keep a signed-in person's session; the identifier for their cookie."""
    moment = clock.now()
    store.purge_sessions(moment)
    session_id = secrets.token_urlsafe(32)
    store.add_session(
        PortalSession(
            id_sha256=digest(session_id),
            issuer=issuer,
            subject=str(person.get("sub", "")),
            person={k: v for k, v in person.items() if k not in ("iss", "sub")},
            created_at=moment,
            expires_at=moment + timedelta(hours=hours),
            id_token=id_token,
        )
    )
    return session_id


def find(store: Any, session_id: Any) -> tuple[PortalSession | None, str]:
    """The live session named by a cookie's identifier; otherwise None and why
    (`session-inconnue`: signed out or never opened; `session-expiree`)."""
    if not isinstance(session_id, str) or store is None:
        return None, "session-inconnue"
    found = store.portal_session(digest(session_id))
    if found is None:
        return None, "session-inconnue"
    if not found.active(clock.now()):
        return None, "session-expiree"
    return found, ""


def close(store: Any, session_id: Any) -> PortalSession | None:
    """End a session (signing out): what it was, when it was still there."""
    if not isinstance(session_id, str) or store is None:
        return None
    found = store.portal_session(digest(session_id))
    store.delete_session(digest(session_id))
    return found
