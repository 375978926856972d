"""Check licence: a dataset carries one homologated licence or a declared sector licence."""

from __future__ import annotations

import difflib
import re
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from core.problems import reject
from core.vocabularies import normalise_label

STAGE = "licence"

# Terms that make a licence incompatible with open data (annex §3.2: no restriction of reuse).
# An http(s) URL without the characters that break HTTP headers, RDF or HTML.
LICENCE_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
RESTRICTIVE_TERMS = re.compile(
    r"\b(nc|nd|non commercial|noncommercial|pas d.utilisation commerciale|"
    r"pas de modification|no derivatives|proprietaire|proprietary|tous droits reserves|"
    r"all rights reserved)\b"
)


@dataclass(frozen=True)
class Licence:
    id: str
    name: str
    short_name: str
    url: str
    uri: str
    homologated: bool
    obligations: dict[str, bool] = field(default_factory=dict)
    notice: str = ""
    sector: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> Licence:
        return cls(**record)

    def notice_for(self, source: str, modified: str) -> str:
        return fill_notice(self.notice, source, modified)


def fill_notice(notice: str, source: str, modified: str) -> str:
    """The licence's notice for a dataset. Not str.format: a declared licence's name and
    URL come from the producer and may hold braces."""
    return notice.replace("{source}", source).replace("{date_mise_a_jour}", modified)


@cache
def load_licences(directory: Path) -> dict[str, Licence]:
    licences = {}
    for path in sorted(directory.glob("*.yaml")):
        entry = yaml.safe_load(path.read_text(encoding="utf-8"))
        licence = Licence(
            id=entry["id"],
            name=entry["nom"],
            short_name=entry.get("nom_court", entry["nom"]),
            url=entry["url"],
            uri=entry.get("uri", entry["url"]),
            homologated=bool(entry.get("homologuee", False)),
            obligations=dict(entry.get("obligations", {})),
            notice=" ".join(str(entry.get("mention", "")).split()),
        )
        licences[licence.id] = licence
        for alias in [licence.id, licence.url, licence.uri, *entry.get("alias", [])]:
            licences.setdefault(normalise_label(str(alias)), licence)
    return licences


def accepted_list(licences: dict[str, Licence]) -> str:
    unique = {lic.id: lic for lic in licences.values()}
    names = [f"{lic.short_name} (« {lic.id} »)" for lic in unique.values()]
    return ", ".join(names) + ", ou une licence sectorielle déclarée avec son nom et son URL"


def check_licence(declared: Any, directory: Path) -> Licence:
    """Resolve the licence a producer declared, or raise SubmissionRejected."""
    licences = load_licences(directory)
    if isinstance(declared, dict):
        return _sector_licence(declared, licences)
    text = str(declared).strip()
    licence = licences.get(text) or licences.get(normalise_label(text))
    if licence is None:
        meant = closest_licence(text, licences)
        hint = f" : vouliez-vous dire « {meant.id} » ({meant.short_name}) ?" if meant else "."
        raise reject(
            STAGE,
            "licence-non-acceptee",
            f"Licence « {text} » non acceptée{hint} Licences acceptées : "
            f"{accepted_list(licences)}.",
            column="licence",
            value=text,
            suggestion=meant.id if meant else None,
        )
    return licence


def closest_licence(text: str, licences: dict[str, Licence]) -> Licence | None:
    """The accepted licence a misspelt name most looks like (its id, URL or an alias)."""
    if RESTRICTIVE_TERMS.search(normalise_label(text)):
        return None  # « CC-BY-NC » is not a misspelt CC-BY: no open licence is suggested
    found = difflib.get_close_matches(normalise_label(text), list(licences), n=1, cutoff=0.7)
    return licences[found[0]] if found else None


def _sector_licence(declared: dict[str, Any], licences: dict[str, Licence]) -> Licence:
    kind = normalise_label(str(declared.get("type", "")))
    name = str(declared.get("nom") or declared.get("name") or "").strip()
    url = str(declared.get("url") or "").strip()
    if kind not in {"sectorielle", "sector", "sectoral"}:
        raise reject(
            STAGE,
            "licence-non-acceptee",
            "Une licence décrite en détail doit être déclarée « type: sectorielle ». "
            f"Licences acceptées : {accepted_list(licences)}.",
            column="licence",
        )
    if not name or not LICENCE_URL.fullmatch(url):
        raise reject(
            STAGE,
            "licence-sectorielle-incomplete",
            "Une licence sectorielle doit être déclarée avec son nom (« nom ») et l'URL de son "
            "texte (« url », en http ou https).",
            column="licence",
        )
    if RESTRICTIVE_TERMS.search(normalise_label(name)):
        raise reject(
            STAGE,
            "licence-restrictive",
            f"La licence « {name} » restreint la réutilisation (usage commercial ou modification "
            f"interdits, ou droits réservés), ce qui est contraire à l'ouverture des données. "
            f"Licences acceptées : {accepted_list(licences)}.",
            column="licence",
            value=name,
        )
    slug = "-".join(re.findall(r"[a-z0-9]+", normalise_label(name)))[:60]
    return Licence(
        id=f"sectorielle-{slug}",
        name=name,
        short_name=name,
        url=url,
        uri=url,
        homologated=False,
        obligations={"attribution": True},
        notice=f"Données diffusées sous la licence sectorielle « {name} » ({url}) : "
        "mentionnez la source ({source}).",
        sector=True,
    )
