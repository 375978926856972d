"""The GeoPackage reader: a SQLite base with GeoPackage's application id, tables only (no
view, which may run a query without end) and only the standard's triggers."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from pathlib import Path
from urllib.request import pathname2url

from core.problems import reject
from pipelines.read import STAGE
from pipelines.read.geographic import GeographicReader, not_the_format

GPKG_APPLICATION_IDS = {b"GPKG", b"GP10", b"GP11"}


def _check_geopackage(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(100)
    if not head.startswith(b"SQLite format 3\x00"):
        raise not_the_format(path.name, "GeoPackage", "ce n'est pas une base SQLite")
    if head[68:72] not in GPKG_APPLICATION_IDS:
        raise not_the_format(
            path.name, "GeoPackage", "base SQLite sans l'identifiant d'application GeoPackage"
        )
    views, triggers = _geopackage_code(path)
    if views:
        raise reject(
            STAGE,
            "gpkg-vue-refusee",
            f"Le GeoPackage {path.name} contient une vue SQL ({', '.join(sorted(views)[:5])}) : "
            "seules les tables sont acceptées (une vue peut exécuter une requête sans fin).",
        )
    if triggers:
        raise reject(
            STAGE,
            "gpkg-declencheur-refuse",
            f"Le GeoPackage {path.name} contient des déclencheurs SQL qui ne sont pas ceux du "
            f"standard ({', '.join(sorted(triggers)[:5])}) : ils s'exécuteraient chez chaque "
            "utilisateur qui modifie le fichier. Exportez la couche dans un nouveau GeoPackage.",
        )


# Triggers the GeoPackage standard and GDAL create: spatial index, feature counts, tiles.
STANDARD_TRIGGER = re.compile(r"^(rtree_.+|gpkg_.+|trigger_(insert|delete)_feature_count_.+)$")


def _geopackage_code(path: Path) -> tuple[set[str], set[str]]:
    """Every view (listed in gpkg_contents or hidden), and every non-standard trigger."""
    uri = f"file:{pathname2url(str(path.resolve()))}?mode=ro&immutable=1"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
            connection.text_factory = lambda raw: raw.decode("utf-8", errors="replace")
            connection.execute("PRAGMA trusted_schema = OFF")
            rows = connection.execute(
                "SELECT type, name FROM sqlite_master WHERE type IN ('view', 'trigger')"
            ).fetchall()
    except (sqlite3.Error, UnicodeDecodeError) as error:  # a corrupt schema's error message
        raise reject(
            STAGE,
            "gpkg-illisible",
            f"Le GeoPackage {path.name} est illisible : base SQLite corrompue ou tronquée.",
        ) from error
    views = {str(name) for kind, name in rows if kind == "view"}
    triggers = {str(n) for kind, n in rows if kind == "trigger" and not STANDARD_TRIGGER.match(n)}
    return views, triggers


class GeoPackageReader(GeographicReader):
    """GeoPackages (`.gpkg`): the one spatial layer holding features."""

    name = "gpkg"

    def prepare(self, path: Path, work: Path) -> tuple[str, dict[str, str]]:
        _check_geopackage(path)
        return str(path), {}
