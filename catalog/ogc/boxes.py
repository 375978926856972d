"""An OGC API items request's box in its own CRS (Part 2 `bbox-crs`), tested exactly.

pygeoapi 0.21 hands a provider the box in the storage CRS (CRS84) as the box of its two
reprojected corners: a box in EPSG:2154 is a quadrilateral in longitude and latitude, and
that box misses part of it and holds more. The OGC API route (`catalog.ogc.api`) keeps
the request's own box and CRS in `REQUESTED` for the providers, which take the
candidates with their spatial index (R-tree, GiST) from the CRS84 envelope of the whole
box (edges densified) and keep those whose geometry, in the box's CRS, meets the box.
"""

from __future__ import annotations

import dataclasses
import functools
from contextvars import ContextVar

import numpy as np
import shapely
from pygeoapi.util import get_crs_from_uri
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EDGE_POINTS = 64  # densified edges: the envelope of the box's curved edges in CRS84
ENVELOPE_MARGIN = 1e-7  # degrees (about a centimetre): the prefilter only, never the test


@dataclasses.dataclass(frozen=True)
class Region:
    """A box in a CRS, in that CRS's axis order (EPSG:4326: latitude first)."""

    crs: str  # a CRS URI
    box: tuple[float, float, float, float]

    @property
    def is_crs84(self) -> bool:
        return self.crs == CRS84

    def envelope(self) -> tuple[float, float, float, float]:
        """The box's envelope in CRS84 (longitude, latitude), a little larger."""
        if self.is_crs84:
            return self.box
        west, south, east, north = _to_crs84(self.crs).transform_bounds(
            *self.box, densify_pts=EDGE_POINTS
        )
        m = ENVELOPE_MARGIN
        return (west - m, south - m, east + m, north + m)

    def meets(self, geometries: np.ndarray) -> np.ndarray:
        """Which CRS84 geometries meet the box, tested in the box's CRS (their vertices
        reprojected, as a GIS reprojects a layer)."""
        if not self.is_crs84:
            transformer = _from_crs84(self.crs)
            geometries = shapely.transform(
                geometries, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))
            )
        return shapely.intersects(geometries, shapely.box(*self.box))

    def xy(self) -> tuple[int, tuple[float, float, float, float]]:
        """The box as PostGIS takes it: an EPSG code and the box with x first (EPSG:4326
        in PostGIS is longitude first, as is CRS84)."""
        if self.is_crs84:
            return 4326, self.box
        crs = _crs(self.crs)
        code = crs.to_epsg()
        if code is None:
            raise ValueError(f"CRS sans code EPSG : {self.crs}")
        a0, b0, a1, b1 = self.box
        if crs.axis_info[0].direction in ("north", "south"):
            return code, (b0, a0, b1, a1)
        return code, self.box


REQUESTED: ContextVar[Region | None] = ContextVar("ogc_api_requested_box", default=None)


def requested_region(bbox: str | None, bbox_crs: str | None) -> Region | None:
    """The request's box when it names a CRS other than CRS84 (None otherwise, or when
    pygeoapi will refuse the request: a bad box or CRS)."""
    if not bbox or not bbox_crs or bbox_crs == CRS84:
        return None
    try:
        values = [float(v) for v in bbox.split(",")]
        get_crs_from_uri(bbox_crs)
    except (ValueError, CRSError):
        return None
    if len(values) == 6:  # a 3D box: its horizontal part
        values = [values[0], values[1], values[3], values[4]]
    if len(values) != 4 or not all(np.isfinite(values)):
        return None
    return Region(bbox_crs, (values[0], values[1], values[2], values[3]))


def region_of(bbox: list[float]) -> Region:
    """The box a provider is asked to filter by: the request's own (`REQUESTED`), else
    pygeoapi's, in CRS84."""
    region = REQUESTED.get()
    if region is not None:
        return region
    corners = bbox if len(bbox) == 4 else [bbox[0], bbox[1], bbox[3], bbox[4]]
    west, south, east, north = (float(v) for v in corners)
    return Region(CRS84, (west, south, east, north))


@functools.lru_cache(maxsize=16)
def _to_crs84(crs: str) -> Transformer:
    return Transformer.from_crs(_crs(crs), _crs(CRS84))


@functools.lru_cache(maxsize=16)
def _from_crs84(crs: str) -> Transformer:
    return Transformer.from_crs(_crs(CRS84), _crs(crs))


def _crs(uri: str) -> CRS:
    return get_crs_from_uri(uri)
