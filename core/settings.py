"""Where things live, from environment variables with embedded defaults."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# schema.data.gouv.fr's catalogue of national schemas (issue #15).
NATIONAL_SCHEMAS_CATALOGUE = "https://schema.data.gouv.fr/schemas.json"
# The catalog's public base URL, the only origin of the absolute links it writes (issue #16:
# never the request's Host). Default: where the embedded deployment serves it.
PUBLIC_URL_VARIABLE = "OPENDATA_PUBLIC_URL"
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
PUBLIC_URL = re.compile(
    r"https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+)(:[0-9]{1,5})?(/[A-Za-z0-9._~\-/]*)?"
)

# The portal map's background (issue #19): none by default, the communes' outlines shipped
# with the catalog drawn instead. An XYZ tile template ({z}, {x}, {y}; a WMTS in the
# GoogleMapsCompatible tile matrix set written as one) or, with a layer, a WMS base URL.
MAP_BACKGROUND_VARIABLE = "OPENDATA_MAP_BACKGROUND"
MAP_BACKGROUND_LAYER_VARIABLE = "OPENDATA_MAP_BACKGROUND_LAYER"
MAP_BACKGROUND_ATTRIBUTION_VARIABLE = "OPENDATA_MAP_BACKGROUND_ATTRIBUTION"
TILE_PLACEHOLDERS = ("{z}", "{x}", "{y}")
# scheme, host (its first label may be Leaflet's {s} subdomains), port; then anything
BACKGROUND_URL = re.compile(
    r"(?P<origin>https?://(?P<host>(\{s\}\.)?[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?)"
    r"(?P<rest>[/?][^\s#]*)?"
)

# The embedded deployment's OGC servers (MapServer, pycsw): resident processes by default.
RESIDENT_VARIABLE = "OPENDATA_OGC_RESIDENT"
PROCESSES_VARIABLE = "OPENDATA_OGC_PROCESSES"
DEFAULT_PROCESSES = 2


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    inbox_dir: Path
    licenses_dir: Path
    producers_file: Path
    store_url: str
    secrets_file: Path  # pseudonymisation keys; never beside the data
    # Days a raw submission holding personal data stays in the archive (RGPD minimisation).
    raw_personal_retention_days: int = 30
    # Local registry of national schemas (issue #15); None: <data_dir>/schemas-nationaux.
    national_schemas_registry: Path | None = None
    national_schemas_catalogue: str = NATIONAL_SCHEMAS_CATALOGUE
    # Base of every absolute link (OPENDATA_PUBLIC_URL), without a trailing slash.
    public_url: str = DEFAULT_PUBLIC_URL

    @property
    def files_dir(self) -> Path:
        """Root of published distributions (one folder per release)."""
        return self.data_dir / "files"

    @property
    def services_dir(self) -> Path:
        """Files the OGC services read: map files, the CSW repository, their configs."""
        return self.data_dir / "services"

    @property
    def archive_dir(self) -> Path:
        """Processed drop folders: what each commune sent, with its report."""
        return self.data_dir / "archive"

    @property
    def national_schemas_dir(self) -> Path:
        """The national schemas registry: one folder per schema and version, read offline."""
        return self.national_schemas_registry or self.data_dir / "schemas-nationaux"

    @property
    def work_dir(self) -> Path:
        """Scratch space where DAG tasks hand a submission to the next stage."""
        return self.data_dir / "work"


def load_settings() -> Settings:
    data_dir = Path(os.environ.get("OPENDATA_DATA_DIR", PROJECT_ROOT / "var" / "data"))
    return Settings(
        data_dir=data_dir,
        inbox_dir=Path(os.environ.get("OPENDATA_INBOX_DIR", PROJECT_ROOT / "var" / "inbox")),
        licenses_dir=Path(os.environ.get("OPENDATA_LICENSES_DIR", PROJECT_ROOT / "licenses")),
        producers_file=Path(
            os.environ.get("OPENDATA_PRODUCERS_FILE", PROJECT_ROOT / "config" / "producers.yaml")
        ),
        store_url=os.environ.get("OPENDATA_STORE_URL", f"sqlite:///{data_dir / 'catalog.db'}"),
        secrets_file=Path(
            os.environ.get(
                "OPENDATA_SECRETS_FILE", data_dir.parent / "secrets" / "pseudonymes.yaml"
            )
        ),
        raw_personal_retention_days=int(
            os.environ.get("OPENDATA_RETENTION_DONNEES_BRUTES_JOURS", "30")
        ),
        national_schemas_registry=_optional_path("OPENDATA_NATIONAL_SCHEMAS_DIR"),
        national_schemas_catalogue=os.environ.get(
            "OPENDATA_NATIONAL_SCHEMAS_CATALOGUE", NATIONAL_SCHEMAS_CATALOGUE
        ),
        public_url=configured_public_url(),
    )


def configured_public_url(environ: Mapping[str, str] | None = None) -> str:
    """`OPENDATA_PUBLIC_URL` without its trailing slash (DEFAULT_PUBLIC_URL when unset);
    ValueError unless it is an http(s) URL with a host, an optional port and path, and
    nothing else (no credentials, query or fragment)."""
    env = os.environ if environ is None else environ
    value = (env.get(PUBLIC_URL_VARIABLE) or "").strip().rstrip("/") or DEFAULT_PUBLIC_URL
    if not PUBLIC_URL.fullmatch(value):
        raise ValueError(
            f"{PUBLIC_URL_VARIABLE} : adresse publique du catalogue invalide ({value!r}) ; "
            "attendu http(s)://hôte[:port][/chemin], par exemple https://donnees.exemple.fr."
        )
    return value


def resident_services(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the catalog keeps MapServer and pycsw running between requests
    (`OPENDATA_OGC_RESIDENT`, on by default); "0" runs a process per request (CGI)."""
    env = os.environ if environ is None else environ
    return (env.get(RESIDENT_VARIABLE) or "1").strip().lower() not in {"0", "non", "false"}


def resident_processes(environ: Mapping[str, str] | None = None) -> int:
    """Resident processes of each OGC server (`OPENDATA_OGC_PROCESSES`, 2 by default)."""
    env = os.environ if environ is None else environ
    value = (env.get(PROCESSES_VARIABLE) or str(DEFAULT_PROCESSES)).strip()
    if not value.isdigit() or not 1 <= int(value) <= 64:
        raise ValueError(f"{PROCESSES_VARIABLE} : nombre de processus invalide ({value!r}).")
    return int(value)


def _optional_path(variable: str) -> Path | None:
    value = os.environ.get(variable)
    return Path(value) if value else None


@dataclass(frozen=True)
class MapBackground:
    """The portal map's background: an XYZ tile template, or a WMS base URL and its layer."""

    url: str
    layer: str = ""  # WMS layer name(s), comma-separated; empty for an XYZ template
    attribution: str = ""  # plain text shown in the map's corner

    @property
    def kind(self) -> str:
        return "wms" if self.layer else "xyz"

    @property
    def image_source(self) -> str:
        """The CSP source expression that lets the portal load its tiles (img-src)."""
        origin = BACKGROUND_URL.match(self.url)
        assert origin is not None  # checked by map_background
        return origin["origin"].replace("{s}", "*")


def map_background(environ: Mapping[str, str] | None = None) -> MapBackground | None:
    """The configured map background (`OPENDATA_MAP_BACKGROUND`, `_LAYER`, `_ATTRIBUTION`), or
    None when unset; ValueError (French) for an URL the portal could not use."""
    env = os.environ if environ is None else environ
    url = (env.get(MAP_BACKGROUND_VARIABLE) or "").strip()
    layer = (env.get(MAP_BACKGROUND_LAYER_VARIABLE) or "").strip()
    attribution = " ".join((env.get(MAP_BACKGROUND_ATTRIBUTION_VARIABLE) or "").split())
    if not url:
        return None
    if not BACKGROUND_URL.fullmatch(url):
        raise ValueError(
            f"{MAP_BACKGROUND_VARIABLE} : adresse du fond de plan invalide ({url!r}) ; "
            "attendu http(s)://hôte[:port]/chemin, sans identifiants ni fragment."
        )
    placeholders = [p for p in TILE_PLACEHOLDERS if p in url]
    if layer and placeholders:
        raise ValueError(
            f"{MAP_BACKGROUND_VARIABLE} : un service WMS ({MAP_BACKGROUND_LAYER_VARIABLE} donnée) "
            "s'adresse par son URL de base, sans {z}, {x} ni {y}."
        )
    if not layer and len(placeholders) != len(TILE_PLACEHOLDERS):
        raise ValueError(
            f"{MAP_BACKGROUND_VARIABLE} : un gabarit de tuiles XYZ contient {{z}}, {{x}} et {{y}} "
            f"({url!r}) ; pour un service WMS, donnez aussi {MAP_BACKGROUND_LAYER_VARIABLE}."
        )
    return MapBackground(url=url, layer=layer, attribution=attribution)
