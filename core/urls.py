"""The platform's public addresses, built in one place (as datasette's `Urls`): the portal's
pages and the API's stable links, from the public base URL (`OPENDATA_PUBLIC_URL`, or ""
for a path on the same site). Pages, feeds, mails, DCAT, CSW and the OGC API link here."""

from __future__ import annotations

from urllib.parse import urlencode

ISO_19139 = "http://www.isotc211.org/2005/gmd"  # CSW output schema of ISO 19139 records


def dataset_page(base: str, slug: str) -> str:
    """The dataset's page on the portal."""
    return f"{base}/jeux-de-donnees/{slug}"


def dataset_resource(base: str, slug: str) -> str:
    """The dataset itself, as metadata names it (DCAT node, ISO resource identifier)."""
    return f"{dataset_page(base, slug)}#jeu"


def dataset_api(base: str, slug: str, version: int | None = None) -> str:
    """The dataset's metadata in the API; with `version`, its structure version's stable
    root (`…/v2`), kept while that structure is served."""
    return f"{base}/api/datasets/{slug}" + (f"/v{version}" if version is not None else "")


def download(base: str, slug: str, fmt: str, version: int | None = None) -> str:
    """A download of the current release (of structure `version` when given)."""
    return f"{dataset_api(base, slug, version)}/download/{fmt}"


def dataset_feed(base: str, slug: str) -> str:
    """The dataset's Atom feed of changes."""
    return f"{dataset_api(base, slug)}/changements.atom"


def iso_record(base: str, slug: str) -> str:
    """The dataset's ISO 19139 record, from the CSW (GetRecordById): the MetadataURL of
    its layers in WMS and WFS."""
    query = urlencode(
        {
            "service": "CSW",
            "version": "2.0.2",
            "request": "GetRecordById",
            "id": slug,
            "outputSchema": ISO_19139,
            "elementSetName": "full",
        }
    )
    return f"{base.rstrip('/')}/csw?{query}"


OGC_SERVICE_VERSIONS = {"WMS": "1.3.0", "WFS": "2.0.0"}  # the versions the portal advertises


def ogc_service(base: str, service: str) -> str:
    """A MapServer service's address (`WMS`, `WFS`): what a GIS connection asks for."""
    return f"{base.rstrip('/')}/{service.lower()}"


def capabilities(base: str, service: str) -> str:
    """The capabilities document of a MapServer service (`WMS`, `WFS`)."""
    query = urlencode(
        {"SERVICE": service, "VERSION": OGC_SERVICE_VERSIONS[service], "REQUEST": "GetCapabilities"}
    )
    return f"{ogc_service(base, service)}?{query}"


def ogc_api(base: str) -> str:
    """The OGC API's landing page (Features and Records)."""
    return f"{base.rstrip('/')}/ogc"


def ogc_collection(base: str, layer: str) -> str:
    """A layer's collection in OGC API – Features."""
    return f"{ogc_api(base)}/collections/{layer}"
