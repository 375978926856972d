"""Who a person signed in on the portal acts for: a commune, or the Métropole's data team.

A person signed in through OpenID Connect (`catalog.login`: ProConnect for public agents)
is a `usager`: they read what signed-in users read. The habilitations file gives some of
them a role, with the pages that go with it (« Mes dépôts » and the upload form of their
commune; the data team's health page). It is `config/habilitations.yaml`
(`OPENDATA_HABILITATIONS_FILE`), written by the Métropole's administrator:

    # Whose identities these roles trust (names of OPENDATA_OIDC_ISSUERS; default: all).
    fournisseurs: [proconnect]
    equipe-data:
      courriels: [camille.leroy@grandlyon.com]
    communes:
      ecully:
        domaines: [ville-ecully.fr]        # every address …@ville-ecully.fr
        siret: ["21690081500019"]          # ProConnect: the organisation chosen at sign-in
      lyon:
        courriels: [marie.durand@mairie-lyon.fr]
        revendications:                    # any other claim of the provider
          organizational_unit: [Direction de l'innovation]

An entry (`equipe-data`, or a commune's slug of `config/producers.yaml`) matches a person by

- `courriels`: their e-mail address, exactly (case does not matter);
- `domaines`: the domain of their e-mail address, exactly (a sub-domain is another domain);
- `siret`: ProConnect's `siret` claim (14 digits), the organisation they signed in for:
  ask for it with the `siret` scope (`OPENDATA_OIDC_SCOPES_PROCONNECT="openid email
  given_name usual_name siret"`);
- `revendications`: other claims of the ID token or userinfo, each with its accepted values
  (a claim holding a list matches when one of its items is accepted).

An address the provider says is not verified (`email_verified: false`) matches nothing by
`courriels` or `domaines`. The data team wins over a commune; a person matching two
communes gets neither (and the log says why). The file is read when the catalog starts: an
unknown commune, key or provider, a malformed address, domain or SIRET, or one address,
domain or SIRET given to two communes stops it with a French message. The role is not
kept in the session but worked out at every request from what it keeps (e-mail, claims):
someone removed from the file loses their pages when the catalog restarts, without waiting
for their session to end. No file: nobody has a role (the data team and the communes'
agents keep their API tokens, `catalog.accounts`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from core.access import Principal
from core.settings import PROJECT_ROOT
from core.vocabularies import EMAIL_PATTERN

LOGGER = logging.getLogger(__name__)
FILE_VARIABLE = "OPENDATA_HABILITATIONS_FILE"
DEFAULT_FILE = PROJECT_ROOT / "config" / "habilitations.yaml"
DATA_TEAM = "equipe-data"
SIRET_CLAIM = "siret"
VERIFIED_CLAIM = "email_verified"
TOP_KEYS = {"fournisseurs", DATA_TEAM, "communes"}
ENTRY_KEYS = {"courriels", "domaines", "siret", "revendications"}
LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
DOMAIN_PATTERN = re.compile(rf"^(?=.{{1,253}}$)(?:{LABEL}\.)+[a-z]{{2,63}}$")
SIRET_PATTERN = re.compile(r"^\d{14}$")
CLAIM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")


class RolesError(ValueError):
    """The habilitations file cannot be used; the message is French."""


@dataclass(frozen=True)
class Entry:
    """How the people of one role are recognised."""

    emails: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()
    sirets: frozenset[str] = frozenset()
    claims: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def matches(self, person: Mapping[str, Any]) -> bool:
        email = str(person.get("email") or "").strip().lower()
        claims = person.get("revendications") or {}
        verified = claims.get(VERIFIED_CLAIM) is not False
        if verified and email and email in self.emails:
            return True
        if verified and email and email.rpartition("@")[2] in self.domains:
            return True
        if self.sirets and _values(claims.get(SIRET_CLAIM)) & self.sirets:
            return True
        return any(_values(claims.get(name)) & accepted for name, accepted in self.claims.items())


def _values(claim: Any) -> set[str]:
    items = claim if isinstance(claim, list) else [claim]
    return {str(item).strip() for item in items if isinstance(item, str | int) and item != ""}


@dataclass(frozen=True)
class Role:
    kind: str  # producteur | equipe-data
    commune: str | None = None


@dataclass(frozen=True)
class Roles:
    """The habilitations: who, signed in, acts for a commune or as the data team."""

    providers: frozenset[str] | None = None  # None: every configured provider
    data_team: Entry = Entry()
    communes: Mapping[str, Entry] = field(default_factory=dict)

    @property
    def claims(self) -> tuple[str, ...]:
        """The claims the roles read, besides the e-mail: kept in the session at sign-in."""
        names = set()
        for entry in (self.data_team, *self.communes.values()):
            names |= set(entry.claims)
            if entry.sirets:
                names.add(SIRET_CLAIM)
            if entry.emails or entry.domains:
                names.add(VERIFIED_CLAIM)
        return tuple(sorted(names))

    def role_of(self, person: Mapping[str, Any], provider: str) -> Role | None:
        """The role of a signed-in person (their session's person), or None."""
        if self.providers is not None and provider not in self.providers:
            return None
        if self.data_team.matches(person):
            return Role(DATA_TEAM)
        communes = sorted(slug for slug, entry in self.communes.items() if entry.matches(person))
        if len(communes) > 1:
            LOGGER.warning(
                "Habilitations : %s correspond à plusieurs communes (%s), aucune n'est retenue",
                person.get("email") or "une personne connectée",
                ", ".join(communes),
            )
            return None
        return Role("producteur", communes[0]) if communes else None

    def apply(self, principal: Principal, person: Mapping[str, Any], provider: str) -> Principal:
        """`principal` (a signed-in `usager`) with their role, when they have one."""
        role = self.role_of(person, provider)
        if role is None:
            return principal
        return dataclasses.replace(principal, kind=role.kind, commune=role.commune)


NOBODY = Roles()


def roles_file(environ: Mapping[str, str] | None = None) -> tuple[Path, bool]:
    """The habilitations file, and whether it was named explicitly (then it must exist)."""
    env = os.environ if environ is None else environ
    named = env.get(FILE_VARIABLE, "").strip()
    return (Path(named), True) if named else (DEFAULT_FILE, False)


def load_roles(
    communes: Collection[str],
    providers: Collection[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Roles:
    """The habilitations of the file (`roles_file`), checked against the communes of
    `config/producers.yaml` and the configured providers' names; RolesError otherwise."""
    path, named = roles_file(environ)
    if not path.is_file():
        if named:
            raise RolesError(f"{FILE_VARIABLE} : fichier d'habilitations introuvable ({path}).")
        return NOBODY
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise RolesError(f"{path.name} : fichier YAML illisible ({error}).") from error
    return parse_roles(document, communes, providers, path.name)


def parse_roles(
    document: Any,
    communes: Collection[str],
    providers: Collection[str] | None = None,
    where: str = "habilitations.yaml",
) -> Roles:
    if document is None:
        return NOBODY
    if not isinstance(document, dict):
        raise RolesError(f"{where} : des paires « clé: valeur » sont attendues.")
    _known_keys(document, TOP_KEYS, where)
    chosen = _providers(document.get("fournisseurs"), providers, where)
    team = _entry(document.get(DATA_TEAM) or {}, f"{where}, {DATA_TEAM}")
    listed = document.get("communes") or {}
    if not isinstance(listed, dict):
        raise RolesError(f"{where}, communes : une entrée par identifiant de commune attendue.")
    entries = {}
    for slug, entry in listed.items():
        if slug not in communes:
            known = ", ".join(sorted(communes))
            raise RolesError(
                f"{where} : commune « {slug} » inconnue de config/producers.yaml "
                f"(communes : {known})."
            )
        entries[str(slug)] = _entry(entry or {}, f"{where}, commune « {slug} »")
    _no_shared_rule(entries, where)
    return Roles(chosen, team, entries)


def _known_keys(mapping: dict[Any, Any], known: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in mapping if k not in known)
    if unknown:
        raise RolesError(
            f"{where} : clé(s) inconnue(s) {', '.join(unknown)} ; "
            f"clés possibles : {', '.join(sorted(known))}."
        )


def _providers(value: Any, configured: Collection[str] | None, where: str) -> frozenset[str] | None:
    if value is None:
        return None
    names = _texts(value, f"{where}, fournisseurs")
    unknown = sorted(n for n in names if configured is not None and n not in configured)
    if unknown:
        raise RolesError(
            f"{where}, fournisseurs : {', '.join(unknown)} inconnu(s) d'OPENDATA_OIDC_ISSUERS "
            f"(fournisseurs : {', '.join(sorted(configured or [])) or 'aucun'})."
        )
    return frozenset(names)


def _entry(value: Any, where: str) -> Entry:
    if not isinstance(value, dict):
        raise RolesError(f"{where} : des clés courriels, domaines, siret ou revendications.")
    _known_keys(value, ENTRY_KEYS, where)
    emails = {e.lower() for e in _texts(value.get("courriels"), f"{where}, courriels")}
    for email in sorted(emails):
        if not EMAIL_PATTERN.fullmatch(email):
            raise RolesError(f"{where} : adresse électronique « {email} » invalide.")
    domains = {d.lower().lstrip("@") for d in _texts(value.get("domaines"), f"{where}, domaines")}
    for domain in sorted(domains):
        if not DOMAIN_PATTERN.fullmatch(domain):
            raise RolesError(
                f"{where} : domaine « {domain} » invalide (ex. « ville-ecully.fr », sans « @ »)."
            )
    sirets = {s.replace(" ", "") for s in _texts(value.get("siret"), f"{where}, siret")}
    for siret in sorted(sirets):
        if not SIRET_PATTERN.fullmatch(siret):
            raise RolesError(f"{where} : SIRET « {siret} » invalide (14 chiffres).")
    return Entry(frozenset(emails), frozenset(domains), frozenset(sirets), _claims(value, where))


def _claims(value: dict[str, Any], where: str) -> dict[str, frozenset[str]]:
    claims = value.get("revendications") or {}
    if not isinstance(claims, dict):
        raise RolesError(f"{where}, revendications : « nom: [valeurs acceptées] » attendu.")
    checked = {}
    for name, accepted in claims.items():
        if not isinstance(name, str) or not CLAIM_NAME.fullmatch(name):
            raise RolesError(f"{where}, revendications : nom de revendication « {name} » invalide.")
        if name in {"email", SIRET_CLAIM, VERIFIED_CLAIM}:
            raise RolesError(
                f"{where}, revendications : « {name} » se règle par courriels, domaines ou siret."
            )
        checked[name] = frozenset(_texts(accepted, f"{where}, revendications, {name}"))
    return checked


def _texts(value: Any, where: str) -> list[str]:
    """A list of non-empty texts (numbers written without quotes are read as texts)."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    texts = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int) or not str(item).strip():
            raise RolesError(f"{where} : une liste de textes est attendue (lu : {item!r}).")
        texts.append(str(item).strip())
    return texts


def _no_shared_rule(entries: dict[str, Entry], where: str) -> None:
    """One address, domain or SIRET belongs to one commune only."""
    for label, values in (
        ("adresse", lambda e: e.emails),
        ("domaine", lambda e: e.domains),
        ("SIRET", lambda e: e.sirets),
    ):
        owner: dict[str, str] = {}
        for slug, entry in sorted(entries.items()):
            for value in sorted(values(entry)):
                if value in owner:
                    raise RolesError(
                        f"{where} : {label} « {value} » donné(e) à deux communes "
                        f"(« {owner[value]} » et « {slug} »)."
                    )
                owner[value] = slug
