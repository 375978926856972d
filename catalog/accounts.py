"""Producer and data-team accounts: API tokens, the guards of the APIs, the audit log.

Tokens (issue #9). Each commune agent, and each member of the data team, gets their own
token from the operator (`opendata jetons creer`), shown once:

    odl_<id>_<secret>

`id` (12 hex digits) names the token in listings and in the audit log; `secret` holds 256
random bits. The store keeps the SHA-256 of the secret only (a salt or a slow hash adds
nothing to a random 256-bit secret), compared in constant time. A token expires (at most
`MAX_DAYS` after creation, by the platform's clock) and can be revoked at any time
(`opendata jetons revoquer <id>`); either way it stops working at once.

Guards. `authenticated`, `acting_for` and `data_team` answer 401 without credentials or
with an unknown, expired or revoked token, and 403 when the caller may not act on that
commune (another commune's agent) or is not the data team. Refused credentials (on any
endpoint) and 403s are written to the audit log, rate-limited per client
(`catalog.refusals`).

Audit log. Every action on the platform is recorded with who, what and when
(`audit`): tokens created and revoked, uploads, submission outcomes (by the store, with
the outcome), change notices, reads of statistics, of the health view and of the log
itself, backups and restores, refused authentications and reads. The data team reads it
at `GET /api/equipe-data/journal` (filter by commune, action, date) or with `opendata
journal`. Names and values come from callers and identity providers: `audit_json` and the
command line show their control characters escaped (`printable`), never raw.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request

from catalog import refusals
from catalog.principal import API_TOKEN_PREFIX, bearer_token
from catalog.store import Accounts
from core import clock
from core.access import ANONYMOUS, Principal
from core.producers import load_producers
from core.records import ApiToken, AuditEntry
from core.settings import load_settings
from core.vocabularies import EMAIL_PATTERN
from core.wording import short_moment

KINDS = ("producteur", "equipe-data")
DEFAULT_DAYS = 90
MAX_DAYS = 365
ID_HEX = 12
TOKEN_PATTERN = re.compile(rf"^{API_TOKEN_PREFIX}([0-9a-f]{{{ID_HEX}}})_([A-Za-z0-9_-]{{43}})$")
USE_RESOLUTION = timedelta(minutes=5)  # `last_used_at` is written at most this often
JOURNAL_MAX = 1000
STATE_LABELS = {"actif": "actif", "expire": "expiré", "revoque": "révoqué"}

AUDIT_ACTIONS = {
    "jeton-cree": "Jeton d'API créé",
    "jeton-revoque": "Jeton d'API révoqué",
    "acces-refuse": "Accès refusé (autre commune ou rôle insuffisant)",
    "authentification-refusee": "Authentification refusée (jeton ou session invalide, expiré "
    "ou révoqué)",
    "lecture-refusee": "Lecture refusée (jeu de données restreint, répondu comme introuvable)",
    "refus-non-detailles": "Refus suivants de ce client non détaillés (limite du journal)",
    "televersement-cree": "Téléversement par morceaux commencé",
    "televersement-abandonne": "Téléversement par morceaux abandonné",
    "depot-recu": "Dépôt reçu par l'API, placé dans le dossier de dépôt",
    "depot-refuse": "Dépôt refusé par l'API à la réception (rapport en français, rien d'écrit)",
    "soumission-publiee": "Soumission publiée",
    "soumission-confirmee": "Soumission identique à la version diffusée (données confirmées)",
    "soumission-refusee": "Soumission refusée",
    "avis-annonce": "Changement de structure annoncé",
    "statistiques-consultees": "Statistiques d'usage consultées",
    "sante-consultee": "Vue santé consultée",
    "traitement-relance": "Traitement d'une commune relancé dans Airflow (vue santé)",
    "avertissement-acquitte": "Avertissement de dépublication transmis autrement (vue santé)",
    "journal-consulte": "Journal d'audit consulté",
    "sauvegarde": "Sauvegarde écrite",
    "restauration": "Sauvegarde restaurée",
}


class AccountError(ValueError):
    """A token that cannot be created or revoked; the message is French."""


@dataclass(frozen=True)
class Actor:
    """Who acts, as the audit log names them."""

    label: str
    kind: str
    id: str

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(principal.label, principal.kind, principal.subject)


def operator() -> Actor:
    """The person running the command line (the operator of the platform)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = "inconnu"
    return Actor(f"operateur:{user}", "operateur", user)


@dataclass(frozen=True)
class IssuedToken:
    record: ApiToken
    token: str  # the full token: shown once, never stored


# --- tokens -------------------------------------------------------------------------------------


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def parse_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token."""
    match = TOKEN_PATTERN.fullmatch(token)
    return (match.group(1), match.group(2)) if match else None


def create_token(
    store: Accounts,
    kind: str,
    agent: str,
    commune: str | None = None,
    days: int = DEFAULT_DAYS,
    by: Actor | None = None,
) -> IssuedToken:
    """A new token for a commune agent (`producteur`) or a data-team member."""
    agent = agent.strip().lower()
    _check_request(kind, agent, commune, days)
    secret = secrets.token_urlsafe(32)
    moment = clock.now()
    record = ApiToken(
        id=secrets.token_hex(ID_HEX // 2),
        secret_sha256=secret_digest(secret),
        kind=kind,
        commune=commune if kind == "producteur" else None,
        agent=agent,
        created_at=moment,
        expires_at=moment + timedelta(days=days),
    )
    store.add_token(record)
    details = {"agent": agent, "type": kind, "expire_le": record.expires_at.isoformat()}
    audit(
        store,
        by or operator(),
        "jeton-cree",
        commune=record.commune,
        target=record.id,
        details=details,
    )
    return IssuedToken(record, f"{API_TOKEN_PREFIX}{record.id}_{secret}")


def _check_request(kind: str, agent: str, commune: str | None, days: int) -> None:
    if kind not in KINDS:
        raise AccountError(f"Type de jeton « {kind} » inconnu : {', '.join(KINDS)}.")
    if not EMAIL_PATTERN.fullmatch(agent):
        raise AccountError(
            f"Agent « {agent} » : indiquez son adresse électronique (ex. prenom.nom@ville.fr)."
        )
    if not 1 <= days <= MAX_DAYS:
        raise AccountError(f"Durée de validité : de 1 à {MAX_DAYS} jours (demandé : {days}).")
    if kind == "equipe-data":
        if commune is not None:
            raise AccountError("Un jeton de l'équipe data ne se rattache à aucune commune.")
        return
    communes = load_producers(load_settings().producers_file)
    if commune not in communes:
        raise AccountError(
            f"Commune « {commune} » inconnue. Communes partenaires : {', '.join(sorted(communes))}."
        )


def revoke_token(store: Accounts, token_id: str, by: Actor | None = None) -> ApiToken:
    """Revoke a token: it stops working at once. Returns it as it was before."""
    record = store.token(token_id)
    if record is None:
        raise AccountError(f"Jeton « {token_id} » introuvable (voir « opendata jetons lister »).")
    if record.revoked_at is not None:
        raise AccountError(
            f"Jeton « {token_id} » déjà révoqué le {short_moment(record.revoked_at)}."
        )
    store.revoke_token(token_id, clock.now())
    audit(
        store,
        by or operator(),
        "jeton-revoque",
        commune=record.commune,
        target=token_id,
        details={"agent": record.agent, "type": record.kind},
    )
    return record


_DUMMY_DIGEST = secret_digest("jeton-inexistant")


@dataclass(frozen=True)
class TokenCheck:
    """What a presented API token is worth: its principal, or why it is refused."""

    principal: Principal | None
    reason: str = ""  # jeton-mal-forme | jeton-inconnu | jeton-expire | jeton-revoque
    token_id: str | None = None  # the token it names, when it names a stored one
    commune: str | None = None


def check_api_token(store: Accounts, token: str) -> TokenCheck:
    """The principal of a valid token; otherwise why it is not (malformed, unknown or wrong
    secret, expired, revoked)."""
    parsed = parse_token(token)
    if parsed is None:
        return TokenCheck(None, "jeton-mal-forme")
    token_id, secret = parsed
    record = store.token(token_id)
    expected = record.secret_sha256 if record else _DUMMY_DIGEST
    matches = hmac.compare_digest(secret_digest(secret), expected)
    moment = clock.now()
    if record is None or not matches:
        return TokenCheck(None, "jeton-inconnu")
    if not record.active(moment):
        reason = "jeton-revoque" if record.revoked_at is not None else "jeton-expire"
        return TokenCheck(None, reason, record.id, record.commune)
    if record.last_used_at is None or moment - record.last_used_at >= USE_RESOLUTION:
        store.token_used(record.id, moment)
    principal = Principal(
        kind="producteur" if record.kind == "producteur" else "equipe-data",
        subject=record.id,
        email=record.agent,
        commune=record.commune,
    )
    return TokenCheck(principal, token_id=record.id, commune=record.commune)


def principal_for_api_token(store: Accounts, token: str) -> Principal | None:
    """The principal of a valid token; None when it is malformed, unknown, expired or
    revoked."""
    return check_api_token(store, token).principal


def token_json(record: ApiToken, moment: datetime | None = None) -> dict[str, Any]:
    """A token as listings show it (never its secret nor its digest)."""
    state = record.state(moment or clock.now())
    return {
        "id": record.id,
        "type": record.kind,
        "commune": record.commune,
        "agent": record.agent,
        "cree_le": record.created_at.isoformat(),
        "expire_le": record.expires_at.isoformat(),
        "revoque_le": record.revoked_at.isoformat() if record.revoked_at else None,
        "dernier_usage": record.last_used_at.isoformat() if record.last_used_at else None,
        "etat": state,
        "etat_libelle": STATE_LABELS[state],
    }


# --- audit log ----------------------------------------------------------------------------------


def audit(
    store: Accounts,
    who: Actor | Principal,
    action: str,
    *,
    commune: str | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    actor = who if isinstance(who, Actor) else Actor.of(who)
    store.record_audit(
        AuditEntry(
            at=clock.now(),
            actor=actor.label,
            actor_kind=actor.kind,
            actor_id=actor.id,
            action=action,
            commune=commune,
            target=target,
            details=details or {},
        )
    )


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """An entry as the journal shows it: every text with its control characters escaped."""
    return printable_values(
        {
            "id": entry.id,
            "date": entry.at.isoformat(),
            "qui": entry.actor,
            "type_acteur": entry.actor_kind,
            "id_acteur": entry.actor_id,
            "action": entry.action,
            "libelle": AUDIT_ACTIONS.get(entry.action, entry.action),
            "commune": entry.commune,
            "objet": entry.target,
            "details": entry.details,
        }
    )


# C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional overrides
# and isolates (which reorder what a terminal or a page shows).
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` with its control characters written as escapes (`\\x1b`, `\\n` as
    `\\x0a`, `\\u202e`): a terminal or a page shows them, never obeys them."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable_values(value: Any) -> Any:
    """`value` (JSON-like) with `printable` applied to every string, keys included."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_values(k): printable_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable_values(v) for v in value]
    return value


def start_of(day: date | None) -> datetime | None:
    return datetime.combine(day, time.min) if day else None


# --- guards of the HTTP APIs --------------------------------------------------------------------


def unauthorised(message: str, *, invalid: bool = False) -> HTTPException:
    challenge = 'Bearer error="invalid_token"' if invalid else "Bearer"
    return HTTPException(401, detail=message, headers={"WWW-Authenticate": challenge})


def authenticated(request: Request, store: Accounts) -> Principal:
    """The caller, who must hold valid bearer credentials (401 otherwise)."""
    if bearer_token(request.headers) is None:
        return require_authenticated(request, Principal())
    return require_authenticated(request, identify(request, store))


def require_authenticated(request: Request, principal: Principal) -> Principal:
    """`principal` (the request's caller), when authenticated (401 otherwise)."""
    if principal.authenticated:
        return principal
    if bearer_token(request.headers) is None:
        raise unauthorised(
            "Authentification requise : en-tête « Authorization: Bearer <jeton> » (jeton "
            "d'API remis par l'équipe data)."
        )
    raise unauthorised("Jeton inconnu, expiré ou révoqué.", invalid=True)


def acting_for(request: Request, store: Accounts, commune: str, what: str) -> Principal:
    """The caller, who must act for `commune`: its own agents or the data team (403 for
    anyone else). `what` names the action in French, for the refusal."""
    return require_commune(store, authenticated(request, store), commune, what)


def require_commune(store: Accounts, principal: Principal, commune: str, what: str) -> Principal:
    """`principal`, when they act for `commune` (403 otherwise, written to the audit log)."""
    if not principal.acts_for(commune):
        refuse(store, principal, what, commune)
        raise HTTPException(
            403,
            detail=f"Ce jeton ne permet pas {what} pour la commune « {commune} » : "
            f"{_whose(principal)}.",
        )
    return principal


def data_team(request: Request, store: Accounts, what: str) -> Principal:
    """The caller, who must belong to the data team (403 for anyone else)."""
    principal = authenticated(request, store)
    if principal.kind != "equipe-data":
        refuse(store, principal, what, None)
        raise HTTPException(403, detail=f"Réservé à l'équipe data ({what}).")
    return principal


def refuse(store: Accounts, principal: Principal, what: str, commune: str | None) -> None:
    """A 403, in the audit log (rate-limited per client: `catalog.refusals`)."""
    refusals.access_refused(store, principal, what, commune)


def _whose(principal: Principal) -> str:
    if principal.kind == "producteur":
        return f"il est celui d'un agent de la commune « {principal.commune} »"
    return "il n'est ni celui d'un agent de cette commune ni celui de l'équipe data"


# --- HTTP: the caller's account and the audit log -----------------------------------------------


def router(store: Accounts) -> APIRouter:
    api = APIRouter()

    @api.get("/api/compte", summary="Le compte du jeton présenté (producteur ou équipe data)")
    def account(request: Request) -> dict[str, Any]:
        principal = authenticated(request, store)
        record = store.token(principal.subject) if principal.kind != "usager" else None
        return {
            "type": principal.kind,
            "qui": principal.label,
            "commune": principal.commune,
            "jeton": record.id if record else None,
            "expire_le": record.expires_at.isoformat() if record else None,
        }

    @api.get(
        "/api/equipe-data/journal",
        summary="Journal d'audit : qui a fait quoi, quand (équipe data, jeton requis)",
    )
    def journal(
        request: Request,
        commune: str | None = None,
        action: str | None = None,
        depuis: str | None = None,
        limite: int = 100,
    ) -> dict[str, Any]:
        principal = data_team(request, store, "de lire le journal d'audit")
        since = _day(depuis)
        if not 1 <= limite <= JOURNAL_MAX:
            raise HTTPException(400, detail=f"« limite » va de 1 à {JOURNAL_MAX}.")
        if action is not None and action not in AUDIT_ACTIONS:
            raise HTTPException(
                400, detail=f"Action « {action} » inconnue : {', '.join(AUDIT_ACTIONS)}."
            )
        refusals.flush(request.app)  # the refusals still on their way to the store
        entries = store.audit_log(commune, start_of(since), action, limite)
        filters = {"action": action, "depuis": depuis, "limite": limite}
        audit(store, principal, "journal-consulte", commune=commune, details=filters)
        return {
            "commune": commune,
            "action": action,
            "depuis": since.isoformat() if since else None,
            "entrees": [audit_json(e) for e in entries],
        }

    return api


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise HTTPException(400, detail="« depuis » : une date au format AAAA-MM-JJ.") from error


# --- who calls, from bearer credentials -------------------------------------------------------

BEARER_STATE = "opendata_bearer_principal"  # identify()'s answer, in the scope's state


def identify(request: Any, store: Any) -> Principal:
    """The caller of `request`: an API token (below), an OIDC bearer JWT
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
    if token.startswith(API_TOKEN_PREFIX):
        check = check_api_token(store, token)
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
