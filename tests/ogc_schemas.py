"""The official OGC and ISO XML schemas (../shared/standards/ogc-schemas), read offline:
every remote schema location is mapped onto the local copy, so nothing is fetched."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import xmlschema

BASE = (Path(__file__).resolve().parents[2] / "shared" / "standards" / "ogc-schemas").resolve()
HOSTS = {
    "http://schemas.opengis.net": "schemas.opengis.net",
    "https://schemas.opengis.net": "schemas.opengis.net",
    "http://www.w3.org": "www.w3.org",
    "http://www.isotc211.org": "www.isotc211.org",
}


def local(uri: str) -> str:
    for prefix, folder in HOSTS.items():
        if uri.startswith(prefix):
            return (BASE / folder).as_uri() + uri[len(prefix) :]
    return uri


@cache
def official(location: str) -> xmlschema.XMLSchema:
    # GML 3.1.1 (imported by CSW 2.0.2 through Filter 1.1) holds restrictions XSD 1.0
    # processors reject: its own components are built leniently, documents still strictly.
    return xmlschema.XMLSchema(local(location), uri_mapper=local, validation="lax")


def errors(location: str, document: bytes) -> list[str]:
    """The document's violations of the schema at `location` (its official URL)."""
    return [str(e.reason) for e in official(location).iter_errors(document.decode("utf-8"))]


def errors_by_its_own_hints(document: bytes) -> list[str]:
    """The document's violations of the schemas its `xsi:schemaLocation` names: the OGC ones
    read from the local copies, a layer's application schema from the service itself."""
    resource = xmlschema.XMLResource(document.decode("utf-8"))
    schema = xmlschema.XMLSchema(
        local("http://schemas.opengis.net/gml/3.2.1/gml.xsd"),
        uri_mapper=local,
        locations=[(ns, local(url)) for ns, url in resource.get_locations()],
    )
    return [str(e.reason) for e in schema.iter_errors(resource)]


ISO_SCHEMAS = {  # ISO 19139 (2007-04-17): gmd, with gmx for anchors (gmx:Anchor)
    "http://www.isotc211.org/2005/gmd": "http://schemas.opengis.net/iso/19139/20070417/gmd/gmd.xsd",
    "http://www.isotc211.org/2005/gmx": "http://schemas.opengis.net/iso/19139/20070417/gmx/gmx.xsd",
}


@cache
def with_iso(location: str) -> xmlschema.XMLSchema:
    """The schema at `location` with ISO 19139's, for CSW answers holding gmd:MD_Metadata
    (csw:GetRecordByIdResponse and csw:SearchResults take them strictly)."""
    return xmlschema.XMLSchema(
        local(location),
        uri_mapper=local,
        validation="lax",
        locations=[(namespace, local(url)) for namespace, url in ISO_SCHEMAS.items()],
    )


def iso_errors(
    document: bytes, location: str = ISO_SCHEMAS["http://www.isotc211.org/2005/gmd"]
) -> list[str]:
    """The document's violations of ISO 19139 (a gmd:MD_Metadata), or of the schema at
    `location` together with ISO 19139 (a CSW answer holding such records)."""
    return [str(e.reason) for e in with_iso(location).iter_errors(document.decode("utf-8"))]
