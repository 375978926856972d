"""Controlled vocabularies used in metadata: EU frequencies and EU data themes.

Codes are those of the EU Publications Office authority tables, so the DCAT
export uses their URIs as they are.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# A dataset's or commune's identifier, and an e-mail address, as the platform accepts them.
SLUG_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

FREQUENCY_BASE_URI = "http://publications.europa.eu/resource/authority/frequency/"
THEME_BASE_URI = "http://publications.europa.eu/resource/authority/data-theme/"


@dataclass(frozen=True)
class Frequency:
    code: str
    label: str
    days: float | None  # expected interval between updates; None when not periodic
    synonyms: tuple[str, ...] = ()
    months: int | None = None  # the interval in calendar months, when counted in months

    @property
    def uri(self) -> str:
        return FREQUENCY_BASE_URI + self.code


FREQUENCIES = [
    Frequency("UPDATE_CONT", "mise à jour continue", 1, ("temps reel", "temps réel", "realtime")),
    Frequency("CONT", "continue", 1, ("continuous", "en continu")),
    Frequency("HOURLY", "toutes les heures", 1 / 24, ("horaire", "hourly")),
    Frequency("DAILY", "quotidienne", 1, ("quotidien", "journaliere", "daily")),
    Frequency("WEEKLY", "hebdomadaire", 7, ("weekly",)),
    Frequency("BIWEEKLY", "bimensuelle", 14, ("tous les quinze jours", "biweekly")),
    Frequency("MONTHLY", "mensuelle", 31, ("mensuel", "monthly"), months=1),
    Frequency("BIMONTHLY", "bimestrielle", 62, ("bimonthly",), months=2),
    Frequency("QUARTERLY", "trimestrielle", 92, ("trimestriel", "quarterly"), months=3),
    Frequency("ANNUAL_2", "semestrielle", 183, ("semestriel", "semiannual"), months=6),
    Frequency("ANNUAL", "annuelle", 366, ("annuel", "annual", "yearly"), months=12),
    Frequency("BIENNIAL", "biennale", 731, ("tous les deux ans", "biennial"), months=24),
    Frequency("TRIENNIAL", "triennale", 1096, ("tous les trois ans", "triennial"), months=36),
    Frequency("IRREG", "irrégulière", None, ("irregulier", "irregular", "ponctuelle")),
    Frequency("NEVER", "jamais", None, ("aucune", "never")),
    Frequency("UNKNOWN", "inconnue", None, ("unknown",)),
    Frequency("OTHER", "autre", None, ("other",)),
]

# EU frequency -> ISO 19115 MD_MaintenanceFrequencyCode, and the period when the code
# alone is coarser than the frequency (ISO 19115:2003 has no hourly, bimonthly or biennial).
ISO_MAINTENANCE: dict[str, tuple[str, str | None]] = {
    "UPDATE_CONT": ("continual", None),
    "CONT": ("continual", None),
    "HOURLY": ("continual", "PT1H"),
    "DAILY": ("daily", None),
    "WEEKLY": ("weekly", None),
    "BIWEEKLY": ("fortnightly", None),
    "MONTHLY": ("monthly", None),
    "BIMONTHLY": ("irregular", "P2M"),
    "QUARTERLY": ("quarterly", None),
    "ANNUAL_2": ("biannually", None),
    "ANNUAL": ("annually", None),
    "BIENNIAL": ("irregular", "P2Y"),
    "TRIENNIAL": ("irregular", "P3Y"),
    "IRREG": ("irregular", None),
    "NEVER": ("notPlanned", None),
    "UNKNOWN": ("unknown", None),
    "OTHER": ("unknown", None),
}

THEMES = {
    "AGRI": "Agriculture, pêche, sylviculture et alimentation",
    "ECON": "Économie et finances",
    "EDUC": "Éducation, culture et sport",
    "ENER": "Énergie",
    "ENVI": "Environnement",
    "GOVE": "Gouvernement et secteur public",
    "HEAL": "Santé",
    "INTR": "Questions internationales",
    "JUST": "Justice, système juridique et sécurité publique",
    "REGI": "Régions et villes",
    "SOCI": "Population et société",
    "TECH": "Science et technologie",
    "TRAN": "Transports",
}


def normalise_label(text: str) -> str:
    """Lower case, no accents, single spaces: how labels are compared."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.lower().replace("_", " ").replace("-", " ").split())


def _frequency_index() -> dict[str, Frequency]:
    index = {}
    for frequency in FREQUENCIES:
        for name in (frequency.code, frequency.label, frequency.uri, *frequency.synonyms):
            index[normalise_label(name)] = frequency
    return index


_FREQUENCY_INDEX = _frequency_index()
_THEME_INDEX = (
    {normalise_label(k): k for k in THEMES}
    | {normalise_label(v): k for k, v in THEMES.items()}
    | {normalise_label(THEME_BASE_URI + k): k for k in THEMES}
)


def find_frequency(value: str) -> Frequency | None:
    return _FREQUENCY_INDEX.get(normalise_label(value))


def find_theme(value: str) -> str | None:
    return _THEME_INDEX.get(normalise_label(value))


def frequency_choices() -> str:
    return ", ".join(f.label for f in FREQUENCIES)


def theme_choices() -> str:
    return ", ".join(f"{code} ({label})" for code, label in THEMES.items())
