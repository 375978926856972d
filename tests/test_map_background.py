"""The portal map's background (issue #19): which addresses the catalog accepts for it, and
the tile server it lets the portal's pages load images from (nothing more when unset).
The map itself, in Chromium, is in tests/test_portal_browser.py."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from catalog.security import SecurityHeaders, SecuritySettings
from core.settings import PROJECT_ROOT, MapBackground, map_background

GRAND_LYON_WMS = "https://download.data.grandlyon.com/wms/grandlyon"


def configured(url: str, layer: str = "", attribution: str = "") -> MapBackground | None:
    return map_background(
        {
            "OPENDATA_MAP_BACKGROUND": url,
            "OPENDATA_MAP_BACKGROUND_LAYER": layer,
            "OPENDATA_MAP_BACKGROUND_ATTRIBUTION": attribution,
        }
    )


def test_no_background_unless_configured():
    assert map_background({}) is None
    assert configured("  ") is None


def test_an_xyz_template_and_a_wms_are_backgrounds():
    xyz = configured(
        "https://{s}.tuiles.exemple.fr/plan/{z}/{x}/{y}.png", attribution=" Plan  IGN "
    )
    assert xyz is not None and xyz.kind == "xyz" and xyz.attribution == "Plan IGN"
    assert xyz.image_source == "https://*.tuiles.exemple.fr"
    wms = configured(GRAND_LYON_WMS, layer="plan_guide")
    assert wms is not None and (wms.kind, wms.layer) == ("wms", "plan_guide")
    assert wms.image_source == "https://download.data.grandlyon.com"
    wmts = configured(  # a WMTS in the GoogleMapsCompatible matrix set, as a template
        "http://127.0.0.1:8123/wmts?SERVICE=WMTS&REQUEST=GetTile&LAYER=plan"
        "&TILEMATRIXSET=GoogleMapsCompatible&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}"
    )
    assert wmts is not None and wmts.image_source == "http://127.0.0.1:8123"


@pytest.mark.parametrize(
    ("url", "layer", "message"),
    [
        ("https://tuiles.exemple.fr/plan", "", r"\{z\}, \{x\} et \{y\}"),
        ("https://tuiles.exemple.fr/{z}/{x}.png", "", r"\{z\}, \{x\} et \{y\}"),
        ("https://tuiles.exemple.fr/{z}/{x}/{y}.png", "plan", "sans {z}"),
        ("ftp://tuiles.exemple.fr/{z}/{x}/{y}.png", "", "adresse du fond de plan invalide"),
        ("https://moi:secret@tuiles.exemple.fr/{z}/{x}/{y}", "", "sans identifiants"),
        ("https://tuiles.exemple.fr/{z}/{x}/{y}#carte", "", "adresse du fond de plan invalide"),
        ("javascript:alert(1)//{z}/{x}/{y}", "", "adresse du fond de plan invalide"),
    ],
)
def test_an_unusable_background_gets_a_french_error(url, layer, message):
    with pytest.raises(ValueError, match=message):
        configured(url, layer)


def img_src(settings: SecuritySettings) -> Iterator[list[str]]:
    headers = SecurityHeaders(app=None, settings=settings, docs=None)  # type: ignore[arg-type]
    for policy in (headers.portal, headers.embed):
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        yield directives["img-src"].split()


def test_the_pages_may_load_tiles_from_the_configured_server_only():
    for sources in img_src(SecuritySettings()):
        assert sources == ["'self'", "data:", "https:"]  # no plain-http server when unset
    background = configured("http://127.0.0.1:8123/tuiles/{z}/{x}/{y}.png")
    assert background is not None
    for sources in img_src(SecuritySettings(map_images=background.image_source)):
        assert sources == ["'self'", "data:", "https:", "http://127.0.0.1:8123"]


def test_the_shipped_outlines_are_the_metropole_s_communes():
    path = PROJECT_ROOT / "catalog" / "static" / "carte" / "communes-metropole-lyon.geojson"
    assert path.stat().st_size < 200_000
    communes = json.loads(path.read_text(encoding="utf-8"))["features"]
    codes = {c["properties"]["code_insee"] for c in communes}
    assert len(codes) == len(communes) == 58  # 59 until Oullins-Pierre-Bénite (2024)
    assert {"69123", "69081", "69256", "69149"} <= codes  # Lyon, Écully, Vaulx, Oullins-P.-B.
    assert all(code.startswith("69") for code in codes)
    names = {c["properties"]["nom"] for c in communes}
    assert {"Lyon", "La Mulatière", "Oullins-Pierre-Bénite"} <= names
    for commune in communes:  # each label inside the Métropole's box, in lon/lat order
        lon, lat = commune["properties"]["etiquette"]
        assert 4.6 < lon < 5.1 and 45.5 < lat < 46.0
