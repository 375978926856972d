"""Declared sources (pull delivery, issue #7): what a `source:` block of metadata says.

A dataset's metadata may declare a `source` instead of a file: a file at an http(s) URL, a
WFS layer, an OGC API – Features collection, or a resource of a CKAN or DCAT catalog. This
module holds the words both the metadata check and the harvester (`pipelines.harvest`)
speak about it, without fetching anything; it imports nothing of the project but the
network guard's address check.

- `SOURCE_KINDS` is the source types' registry, in pygeoapi's shape: one `SourceKind` per
  type, with its French label, the keys its block takes, the keys naming what is taken
  there, and its implementation named by a dotted path (`"pipelines.harvest.wfs:WfsSource"`,
  a `pipelines.harvest.contract.SourceType`), which `pipelines.harvest.registry` loads the
  first time a source of that type is fetched. Adding a source type: its module in
  `pipelines/harvest/` and one `SourceKind` below (docs/source-types.md).
- `check_source`: a `source:` block normalised, or the French problems found in it;
  `check_source_url`: a public http(s) address, without credentials nor secrets.
- `Source`: a declared source as `check_source` normalised it; `source_endpoint`: its
  canonical endpoint (a change of it follows the 30-day rule, annex §3.2).
- `SOURCE_FAILURE_KIND`: the event recorded when a source cannot be fetched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from core.input_formats import FORMAT_BY_NAME, accepted_names

SOURCE_FAILURE_KIND = "source-en-echec"  # for the commune and the data team only


@dataclass(frozen=True)
class SourceKind:
    """One source type as metadata declares it (`type: <name>` and its keys), and what
    fetches it."""

    name: str
    label: str  # French, as a sentence names it: « service WFS »
    fetcher: str  # "module:Class" of its SourceType (pipelines.harvest.contract)
    required: tuple[str, ...]  # `url` included
    optional: tuple[str, ...] = ()
    endpoint: tuple[str, ...] = ()  # the keys naming what is taken at the URL
    defaults: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()  # other names accepted for `type:`

    @property
    def keys(self) -> tuple[str, ...]:
        return (*self.required, *self.optional)


SOURCE_KINDS: dict[str, SourceKind] = {
    kind.name: kind
    for kind in (
        SourceKind(
            name="fichier",
            label="fichier",
            fetcher="pipelines.harvest.file:FileSource",
            required=("url",),
            optional=("format",),
            aliases=("file", "http", "url"),
        ),
        SourceKind(
            name="wfs",
            label="service WFS",
            fetcher="pipelines.harvest.wfs:WfsSource",
            required=("url", "couche"),
            optional=("version",),
            endpoint=("couche",),
            defaults={"version": "2.0.0"},
        ),
        SourceKind(
            name="ogcapi",
            label="service OGC API – Features",
            fetcher="pipelines.harvest.ogcapi:OgcApiSource",
            required=("url", "collection"),
            endpoint=("collection",),
        ),
        SourceKind(
            name="ckan",
            label="catalogue CKAN",
            fetcher="pipelines.harvest.ckan:CkanSource",
            required=("url", "jeu", "ressource"),
            endpoint=("jeu", "ressource"),
        ),
        SourceKind(
            name="dcat",
            label="catalogue DCAT",
            fetcher="pipelines.harvest.dcat:DcatSource",
            required=("url", "jeu", "format"),
            endpoint=("jeu", "format"),
        ),
    )
}
TYPE_NAMES = {
    alias: kind.name for kind in SOURCE_KINDS.values() for alias in (kind.name, *kind.aliases)
}
WFS_VERSIONS = {"2.0.0": "2.0.0", "2.0": "2.0.0", "2": "2.0.0", "1.1.0": "1.1.0", "1.1": "1.1.0"}
# Query parameters that carry a secret: a declared URL is public, it must hold none.
SECRET_PARAMETERS = {
    "token",
    "access_token",
    "apikey",
    "api_key",
    "key",
    "password",
    "passwd",
    "pwd",
    "secret",
    "auth",
    "signature",
}
MAX_TEXT = 2_000  # as any text of metadata (pipelines.metadata)


# --- a declared source ----------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A declared source, as `check_source` normalised it."""

    type: str
    url: str
    format: str | None = None
    couche: str | None = None
    version: str | None = None
    collection: str | None = None
    jeu: str | None = None
    ressource: str | None = None

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> Source:
        names = cls.__dataclass_fields__
        return cls(**{k: str(v) for k, v in record.items() if k in names and v is not None})

    @property
    def label(self) -> str:
        kind = SOURCE_KINDS.get(self.type)
        return kind.label if kind is not None else self.type


def as_source(source: Source | Mapping[str, Any]) -> Source:
    return source if isinstance(source, Source) else Source.from_dict(source)


def source_endpoint(source: Source | Mapping[str, Any]) -> str:
    """The canonical endpoint of a source: type, URL and what is taken there. A change of
    it is a change of the infrastructure of diffusion (annex §3.2: 30-day rule)."""
    source = as_source(source)
    parts = [source.type, _canonical_url(source.url)]
    kind = SOURCE_KINDS.get(source.type)
    taken = kind.endpoint if kind is not None else ()
    parts += [f"{key}={getattr(source, key)}" for key in taken]
    return " ".join(parts)


def _canonical_url(url: str) -> str:
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    netloc = host if parts.port in (None, default) else f"{host}:{parts.port}"
    query = "&".join(sorted(p for p in parts.query.split("&") if p))
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", query, ""))


# --- checking a `source:` block -------------------------------------------------------------


def check_source(value: Mapping[str, Any]) -> tuple[dict[str, str] | None, list[str]]:
    """A declared source, normalised, and the French problems found in it."""
    raw = {str(k).strip().lower(): v for k, v in value.items() if v not in (None, "")}
    written = str(raw.pop("type", "")).strip().lower()
    kind = SOURCE_KINDS.get(TYPE_NAMES.get(written, written))
    if kind is None:
        shown = f"« {written} »" if written else "absent"
        return None, [
            f"Type de source {shown} : écrivez « type: » suivi de l'un de "
            f"{', '.join(SOURCE_KINDS)}."
        ]
    problems: list[str] = []
    accepted = ("type", *kind.keys)
    for key in raw:
        if key not in accepted:
            problems.append(
                f"Clé « {key} » inconnue pour une source « {kind.name} ». Clés acceptées : "
                f"{', '.join(accepted)}."
            )
    for key in kind.required:
        if key not in raw:
            problems.append(f"La source « {kind.name} » demande la clé « {key} ».")
    source = {"type": kind.name}
    for key in kind.keys:
        if key not in raw:
            continue
        try:
            source[key] = _PARSERS.get(key, _parse_text)(raw[key])
        except ValueError as error:
            problems.append(str(error))
    for key, default in kind.defaults.items():
        source.setdefault(key, default)
    return (None if problems else source), problems


def check_source_url(value: Any) -> str:
    """An http(s) URL with a host and without credentials; ValueError (French) otherwise."""
    text = str(value).strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise ValueError(
            f"Adresse de source « {text[:200]} » invalide : seules les adresses http:// ou "
            "https:// complètes sont acceptées."
        )
    if parts.username or parts.password:
        raise ValueError(
            f"L'adresse de source sur {parts.hostname} contient un identifiant ou un mot de "
            "passe : une source déclarée doit être publique, sans identifiants dans l'adresse."
        )
    secrets = [k for k, _ in parse_qsl(parts.query) if k.strip().lower() in SECRET_PARAMETERS]
    if secrets:
        raise ValueError(
            f"L'adresse de source sur {parts.hostname} contient un paramètre secret "
            f"(« {secrets[0]} ») : une source déclarée doit être publique, sans jeton ni clé."
        )
    # The guard's HTTP clients load with it: not for every metadata file read (issue #20).
    from core.netguard import Refused, parse_url

    try:
        parse_url(text)  # what the SSRF guard refuses at every fetch, said at once
    except Refused as refused:
        raise ValueError(
            f"Adresse de source « {text[:200]} » refusée : {refused.message}."
        ) from refused
    return text


def _parse_source_format(value: Any) -> str:
    text = str(value).strip().lower().lstrip(".")
    if text not in FORMAT_BY_NAME:
        raise ValueError(
            f"Format de source « {value} » non accepté. Formats acceptés : {accepted_names()}."
        )
    return FORMAT_BY_NAME[text]


def _parse_wfs_version(value: Any) -> str:
    text = str(value).strip()
    if text not in WFS_VERSIONS:
        raise ValueError(f"Version WFS « {text} » non prise en charge : « 2.0.0 » ou « 1.1.0 ».")
    return WFS_VERSIONS[text]


def _parse_text(value: Any) -> str:
    """A text value (layer, collection, dataset, resource), as metadata's texts are read."""
    if isinstance(value, (dict, list)):
        raise ValueError("Un texte est attendu, pas une liste ni un dictionnaire.")
    text = str(value).strip()
    if not text:
        raise ValueError("Texte vide.")
    if len(text) > MAX_TEXT:
        raise ValueError(f"Texte de {len(text)} caractères : {MAX_TEXT} au plus.")
    return text


_PARSERS: dict[str, Callable[[Any], str]] = {
    "url": check_source_url,
    "format": _parse_source_format,
    "version": _parse_wfs_version,
}
