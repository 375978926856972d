"""A geographic file's CRS: the EPSG code of what GDAL says, checked against the accepted
systems and against the metadata's `systeme_coordonnees`, which names it when the file
does not.
"""

from __future__ import annotations

from pyproj import CRS

from core.metadata_checks import accepted_crs_list, crs_code
from core.problems import reject
from pipelines.read import STAGE


def crs_of(text: str | None) -> int | None | str:
    """The EPSG code of GDAL's CRS description; the text itself when it has none."""
    if not text:
        return None
    try:
        crs = CRS.from_user_input(text)
    except Exception:  # pyproj raises CRSError, and more for odd input
        return text
    if crs.is_geographic and len(crs.axis_info) == 3:
        crs = crs.to_2d()  # GDAL says EPSG:4979 for a GeoJSON with heights: WGS 84 in 3D
    code = crs.to_epsg()
    if code is None:
        code = crs.to_epsg(min_confidence=50)
    return code if code is not None else text


def resolve_crs(found: int | str | None, declared: int | None, filename: str) -> int:
    if isinstance(found, str):
        raise reject(
            STAGE,
            "crs-non-accepte",
            f"Le système de coordonnées de {filename} n'est pas identifiable à un code EPSG "
            f"accepté. Systèmes acceptés : {accepted_crs_list()}.",
        )
    if found is None and declared is None:
        raise reject(
            STAGE,
            "crs-inconnu",
            f"Le système de coordonnées de {filename} est inconnu : "
            f"déclarez-le dans les métadonnées (« systeme_coordonnees »). Systèmes "
            f"acceptés : {accepted_crs_list()}.",
        )
    if found is not None and crs_code(found) is None:
        raise reject(
            STAGE,
            "crs-non-accepte",
            f"Le système de coordonnées EPSG:{found} de "
            f"{filename} n'est pas accepté. Systèmes acceptés : {accepted_crs_list()}.",
        )
    if found is not None and declared is not None and found != declared:
        raise reject(
            STAGE,
            "crs-incoherent",
            f"Le fichier {filename} est en EPSG:{found} mais "
            f"les métadonnées déclarent EPSG:{declared}.",
        )
    return found if found is not None else declared  # type: ignore[return-value]
