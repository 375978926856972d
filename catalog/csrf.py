"""The CSRF token of a portal session, for the forms that change something.

A form posted with the session cookie (the upload of « Mes dépôts », the health page's
actions) must carry the hidden field `csrf` with its session's token: every template gets
it as `{{ csrf }}` (`catalog.login.portal_context`):

    <input type="hidden" name="csrf" value="{{ csrf }}">

The token is the HMAC-SHA256, with the session secret (`OPENDATA_SESSION_SECRET`), of the
session's random identifier (`catalog.sessions`): one per session, new at each sign-in,
useless once signed out, never stored. Another site can neither read it (the cookie is
HttpOnly, the page is same-origin) nor compute it. `catalog.web.people.page_principal`
refuses a session's POST without it (403); requests with bearer credentials (machines) do
not need it: a browser never adds them by itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from catalog.sessions import SESSION_ID

FIELD = "csrf"  # the hidden form field
CONTEXT = b"opendata-csrf:"  # the HMAC's input starts with this: no other use of the secret


def token(request: Any) -> str:
    """The CSRF token of the request's signed-in session; "" without one."""
    settings = getattr(request.app.state, "login", None)
    session = request.scope.get("session")
    session_id = session.get(SESSION_ID) if isinstance(session, dict) else None
    if settings is None or not isinstance(session_id, str) or not session_id:
        return ""
    mac = hmac.new(settings.secret.encode("utf-8"), CONTEXT + session_id.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


def valid(request: Any, form: Mapping[str, Any] | None) -> bool:
    """Whether `form` carries the session's CSRF token."""
    expected = token(request)
    given = form.get(FIELD) if form is not None else None
    if not expected or not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("ascii"))
