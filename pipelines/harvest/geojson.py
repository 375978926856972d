"""JSON answers read strictly, and features written as one GeoJSON file (WFS, OGC API)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.harvest.errors import SourceError


def json_document(content: bytes, url: str) -> dict[str, Any]:
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError) as error:
        head = content.lstrip()[:15].lower()
        if head.startswith((b"<!doctype html", b"<html")):
            raise SourceError(
                "page-html", "Le serveur a envoyé une page HTML au lieu de JSON", url
            ) from error
        raise SourceError("contenu-inattendu", f"Réponse JSON illisible ({error})", url) from error
    if not isinstance(document, dict):
        raise SourceError("contenu-inattendu", "Réponse JSON inattendue (pas un objet)", url)
    return document


def json_features(content: bytes, url: str) -> list[dict[str, Any]]:
    features = json_document(content, url).get("features")
    if not isinstance(features, list):
        raise SourceError("contenu-inattendu", "Réponse GeoJSON sans « features »", url)
    return features


def write_geojson(features: list[dict[str, Any]], epsg: int, path: Path, url: str) -> None:
    """One FeatureCollection, written the same way for the same features (checksum)."""
    if not features:
        raise SourceError("reponse-vide", "La source ne contient aucun objet", url)
    collection: dict[str, Any] = {"type": "FeatureCollection"}
    if epsg != 4326:
        collection["crs"] = {
            "type": "name",
            "properties": {"name": f"urn:ogc:def:crs:EPSG::{epsg}"},
        }
    collection["features"] = [
        {k: f[k] for k in ("type", "id", "properties", "geometry") if k in f} for f in features
    ]
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
