"""The KML reader: an XML document without DTD whose root is `kml`, holding its features
itself (no network link); its folders are one dataset."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines import safety
from pipelines.read.geographic import GeographicReader, not_the_format, refuse_pattern, xml_root

NETWORK_LINK = re.compile(rb"<(?:[\w.-]+:)?NetworkLink[\s>/]")


def _network_link_message(filename: str) -> str:
    return (
        f"Le fichier KML {filename} contient un lien réseau (« NetworkLink ») : ses données "
        "viendraient d'ailleurs, et la plateforme ne suit aucun lien d'un fichier déposé. "
        "Déposez un KML qui contient lui-même ses objets."
    )


class KmlReader(GeographicReader):
    """KML documents (`.kml`); every folder is read, as one layer."""

    name = "kml"
    all_layers = True

    def prepare(self, path: Path, work: Path) -> tuple[str, dict[str, str]]:
        root = xml_root(path)
        if safety.local_name(root) != "kml":
            raise not_the_format(path.name, "KML", f"élément racine « {root} »")
        refuse_pattern(path, NETWORK_LINK, "kml-lien-reseau", _network_link_message)
        return str(path), {}
