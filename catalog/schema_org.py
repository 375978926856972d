"""schema.org `Dataset` view of a dataset, for search engines (Google Dataset Search…).

The dataset's page carries it in its head as JSON-LD (`<script type="application/ld+json">`,
a data block: browsers never run it, and the CSP's `script-src` does not apply to it). Like
DCAT and ISO 19139, it is a rendering of `catalog.description.describe`, never of the
stored metadata itself. The template writes it with Jinja's `tojson`, which escapes `<`,
`>`, `&` and `'`: a title holding `</script>` cannot end the block.

Only public datasets get one: a restricted dataset's page is shown to the callers who may
read it, never to a search engine.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from catalog.description import DOWNLOAD, Description
from catalog.store import downloads

CONTEXT = "https://schema.org/"
CATALOGUE_NAME = "Données ouvertes des communes de la Métropole de Lyon"


def dataset(description: Description, base: str) -> dict[str, Any]:
    """The JSON-LD object (schema.org `Dataset`) of `description`; links start with `base`."""
    commune = _organisation(description)
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "@type": "Dataset",
        "@id": description.uri,
        "name": description.title,
        "description": description.abstract,
        "url": description.page,
        "identifier": description.identifier,
        "inLanguage": "fr",
        "isAccessibleForFree": True,
        "license": description.licence.uri,
        "creator": commune,
        "publisher": commune,
        "dateCreated": description.created.isoformat(),
        "datePublished": description.published.isoformat(),
        "dateModified": description.revised.isoformat(),
        "keywords": [*description.keywords, *description.themes.values()],
        "includedInDataCatalog": {
            "@type": "DataCatalog",
            "name": CATALOGUE_NAME,
            "url": f"{base}/",
        },
        "distribution": [
            {
                "@type": "DataDownload",
                "name": downloads.FORMATS[link.name].label,
                "encodingFormat": downloads.FORMATS[link.name].media_type,
                "contentUrl": link.url,
            }
            for link in description.links
            if link.protocol == DOWNLOAD and link.name in downloads.FORMATS
        ],
    }
    coverage = _spatial_coverage(description)
    if coverage:
        document["spatialCoverage"] = coverage
    temporal = _temporal_coverage(description.extent.start, description.extent.end)
    if temporal:
        document["temporalCoverage"] = temporal
    return document


def _organisation(description: Description) -> dict[str, Any]:
    contact = description.contact
    return {
        "@type": "Organization",
        "name": contact.organisation,
        "url": contact.page,
        "contactPoint": {
            "@type": "ContactPoint",
            "name": contact.service,
            "email": contact.email,
            "contactType": "données ouvertes",
        },
    }


def _spatial_coverage(description: Description) -> dict[str, Any] | None:
    """The commune (its INSEE code) and, for map data, the data's box in WGS84."""
    place: dict[str, Any] = {"@type": "Place"}
    if description.commune is not None:
        place["name"] = description.commune.name
        place["sameAs"] = description.commune.uri
    bbox = description.extent.bbox
    if bbox is not None:
        west, south, east, north = bbox
        # schema.org's box: the lower corner then the upper one, each "latitude longitude"
        corners = " ".join(f"{value:.6f}" for value in (south, west, north, east))
        place["geo"] = {"@type": "GeoShape", "box": corners}
    return place if len(place) > 1 else None


def _temporal_coverage(start: date | None, end: date | None) -> str | None:
    """ISO 8601 interval of the data's dates (`2017-09-02/2026-10-01`)."""
    if start is None or end is None:
        return None
    return f"{start.isoformat()}/{end.isoformat()}"
