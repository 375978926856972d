"""A dataset's description (`catalog.description`) as an ISO 19139 record (gmd:MD_Metadata).

Valid against the official schemas (ISO 19139 of 2007-04-17, GML 3.2: gmd, gco, gmx, gts)
and laid out as GeoNetwork's iso19139 harvester reads it: the commune as point of contact,
the licence as MD_LegalConstraints with an anchor to its URL, the data's CRS, its exact
bounding box (no rounding) and the commune by its INSEE code, the period its dates cover,
keywords and EU themes (with their thesaurus), the maintenance frequency, the lineage, and
links with GeoNetwork's protocol names (OGC:WMS, OGC:WFS, OGC:OGC-API-Features-items,
WWW:DOWNLOAD-1.0-http--download, WWW:LINK).

Written with lxml rather than pygeometa: pygeometa 0.19's iso19139 template writes one CRS
for both the data and its extent (a data CRS other than WGS84 turns the box into a GML
polygon in that CRS), uses the pre-2007 GML namespace for time periods (invalid against the
2007 schemas) and an empty spatialRepresentationInfo for tables.
"""

from __future__ import annotations

from datetime import date

from lxml import etree

from catalog.description import Description, Link
from core.vocabularies import ISO_MAINTENANCE, THEME_BASE_URI

NAMESPACES = {
    "gmd": "http://www.isotc211.org/2005/gmd",
    "gco": "http://www.isotc211.org/2005/gco",
    "gmx": "http://www.isotc211.org/2005/gmx",
    "gts": "http://www.isotc211.org/2005/gts",
    "gml": "http://www.opengis.net/gml/3.2",
    "xlink": "http://www.w3.org/1999/xlink",
}
CODELISTS = "http://standards.iso.org/iso/19139/resources/gmxCodelists.xml"
LANGUAGE = "fre"
THEME_SCHEME = THEME_BASE_URI.rstrip("/")


def record(description: Description) -> etree._Element:
    """The description as a gmd:MD_Metadata element."""
    root = _element("gmd:MD_Metadata", nsmap=NAMESPACES)
    _text(root, "gmd:fileIdentifier", description.identifier)
    _code(_sub(root, "gmd:language"), "gmd:LanguageCode", LANGUAGE, LANGUAGE_LIST)
    _code(_sub(root, "gmd:characterSet"), "gmd:MD_CharacterSetCode", "utf8")
    _code(_sub(root, "gmd:hierarchyLevel"), "gmd:MD_ScopeCode", "dataset")
    _sub(root, "gmd:contact").append(_party(description, "pointOfContact"))
    _sub(_sub(root, "gmd:dateStamp"), "gco:Date").text = description.published.isoformat()
    _text(root, "gmd:metadataStandardName", "ISO 19115:2003/19139")
    _text(root, "gmd:metadataStandardVersion", "1.0")
    _text(root, "gmd:dataSetURI", description.page)
    if description.crs:
        root.append(_reference_system(description.crs))
    _sub(root, "gmd:identificationInfo").append(_identification(description))
    _sub(root, "gmd:distributionInfo").append(_distribution(description))
    _sub(root, "gmd:dataQualityInfo").append(_quality(description))
    return root


def record_xml(description: Description) -> str:
    return etree.tostring(record(description), encoding="unicode")


# --- identification --------------------------------------------------------------------------


def _identification(description: Description) -> etree._Element:
    node = _element("gmd:MD_DataIdentification")
    node.append(_citation(description))
    _text(node, "gmd:abstract", description.abstract)
    _code(_sub(node, "gmd:status"), "gmd:MD_ProgressCode", "onGoing")
    _sub(node, "gmd:pointOfContact").append(_party(description, "pointOfContact"))
    node.append(_maintenance(description))
    if description.keywords:
        node.append(_keywords(description.keywords))
    if description.themes:
        node.append(_themes(description.themes))
    node.append(_licence(description))
    if description.crs:
        _code(
            _sub(node, "gmd:spatialRepresentationType"),
            "gmd:MD_SpatialRepresentationTypeCode",
            "vector",
        )
    _code(_sub(node, "gmd:language"), "gmd:LanguageCode", LANGUAGE, LANGUAGE_LIST)
    _code(_sub(node, "gmd:characterSet"), "gmd:MD_CharacterSetCode", "utf8")
    extent = _extent(description)
    if len(extent):
        _sub(node, "gmd:extent").append(extent)
    return node


def _citation(description: Description) -> etree._Element:
    citation = _sub(_element("gmd:citation"), "gmd:CI_Citation")
    _text(citation, "gmd:title", description.title)
    for kind, moment in (
        ("creation", description.created),
        ("publication", description.published),
        ("revision", description.revised),
    ):
        citation.append(_date(moment, kind))
    identifier = _sub(_sub(citation, "gmd:identifier"), "gmd:MD_Identifier")
    _text(identifier, "gmd:code", description.uri)
    for role in ("originator", "publisher"):
        _sub(citation, "gmd:citedResponsibleParty").append(_party(description, role))
    return citation.getparent()


def _party(description: Description, role: str) -> etree._Element:
    contact = description.contact
    party = _element("gmd:CI_ResponsibleParty")
    _text(party, "gmd:organisationName", contact.organisation)
    _text(party, "gmd:positionName", contact.service)
    info = _sub(_sub(party, "gmd:contactInfo"), "gmd:CI_Contact")
    address = _sub(_sub(info, "gmd:address"), "gmd:CI_Address")
    if description.commune is not None:
        _text(address, "gmd:city", description.commune.name)
    _text(address, "gmd:country", "France")
    _text(address, "gmd:electronicMailAddress", contact.email)
    _sub(info, "gmd:onlineResource").append(
        _online(Link("WWW:LINK", contact.page, contact.organisation, "", "information"))
    )
    _code(_sub(party, "gmd:role"), "gmd:CI_RoleCode", role)
    return party


def _maintenance(description: Description) -> etree._Element:
    code, period = ISO_MAINTENANCE.get(description.frequency.code, ("unknown", None))
    node = _sub(_element("gmd:resourceMaintenance"), "gmd:MD_MaintenanceInformation")
    _code(_sub(node, "gmd:maintenanceAndUpdateFrequency"), "gmd:MD_MaintenanceFrequencyCode", code)
    if period:
        _sub(
            _sub(node, "gmd:userDefinedMaintenanceFrequency"), "gts:TM_PeriodDuration"
        ).text = period
    _text(node, "gmd:maintenanceNote", f"Fréquence de mise à jour : {description.frequency.label}")
    return node.getparent()


def _keywords(words: list[str]) -> etree._Element:
    keywords = _sub(_element("gmd:descriptiveKeywords"), "gmd:MD_Keywords")
    for word in words:
        _text(keywords, "gmd:keyword", word)
    _code(_sub(keywords, "gmd:type"), "gmd:MD_KeywordTypeCode", "theme")
    return keywords.getparent()


def _themes(themes: dict[str, str]) -> etree._Element:
    keywords = _sub(_element("gmd:descriptiveKeywords"), "gmd:MD_Keywords")
    for code, label in themes.items():
        _anchor(_sub(keywords, "gmd:keyword"), THEME_BASE_URI + code, label)
    _code(_sub(keywords, "gmd:type"), "gmd:MD_KeywordTypeCode", "theme")
    thesaurus = _sub(_sub(keywords, "gmd:thesaurusName"), "gmd:CI_Citation")
    _anchor(_sub(thesaurus, "gmd:title"), THEME_SCHEME, "Data theme (EU Publications Office)")
    thesaurus.append(_date(date(2015, 10, 1), "publication"))  # the vocabulary's first version
    return keywords.getparent()


def _licence(description: Description) -> etree._Element:
    licence = description.licence
    node = _sub(_element("gmd:resourceConstraints"), "gmd:MD_LegalConstraints")
    _text(node, "gmd:useLimitation", licence.notice or licence.name)
    _code(_sub(node, "gmd:useConstraints"), "gmd:MD_RestrictionCode", "otherRestrictions")
    _anchor(_sub(node, "gmd:otherConstraints"), licence.url, licence.name)
    return node.getparent()


def _extent(description: Description) -> etree._Element:
    extent = _element("gmd:EX_Extent")
    bbox = description.extent.bbox
    if bbox is not None:
        box = _sub(_sub(extent, "gmd:geographicElement"), "gmd:EX_GeographicBoundingBox")
        west, south, east, north = bbox
        for name, value in (
            ("westBoundLongitude", west),
            ("eastBoundLongitude", east),
            ("southBoundLatitude", south),
            ("northBoundLatitude", north),
        ):
            _sub(_sub(box, f"gmd:{name}"), "gco:Decimal").text = repr(float(value))
    if description.commune is not None:
        commune = description.commune
        place = _sub(_sub(extent, "gmd:geographicElement"), "gmd:EX_GeographicDescription")
        code = _sub(_sub(place, "gmd:geographicIdentifier"), "gmd:MD_Identifier")
        _anchor(_sub(code, "gmd:code"), commune.uri, f"{commune.name} ({commune.insee})")
    start, end = description.extent.start, description.extent.end
    if start is not None and end is not None:
        period = _sub(
            _sub(_sub(_sub(extent, "gmd:temporalElement"), "gmd:EX_TemporalExtent"), "gmd:extent"),
            "gml:TimePeriod",
        )
        period.set(_name("gml:id"), f"periode-{description.identifier}")
        _sub(period, "gml:beginPosition").text = start.isoformat()
        _sub(period, "gml:endPosition").text = end.isoformat()
    return extent


def _reference_system(crs: int) -> etree._Element:
    node = _element("gmd:referenceSystemInfo")
    identifier = _sub(
        _sub(_sub(node, "gmd:MD_ReferenceSystem"), "gmd:referenceSystemIdentifier"),
        "gmd:RS_Identifier",
    )
    _anchor(
        _sub(identifier, "gmd:code"), f"http://www.opengis.net/def/crs/EPSG/0/{crs}", f"EPSG:{crs}"
    )
    _text(identifier, "gmd:codeSpace", "EPSG")
    return node


# --- distribution and quality ----------------------------------------------------------------


def _distribution(description: Description) -> etree._Element:
    node = _element("gmd:MD_Distribution")
    formats = [link.name for link in description.links if link.function == "download"]
    for name in formats:
        fmt = _sub(_sub(node, "gmd:distributionFormat"), "gmd:MD_Format")
        _text(fmt, "gmd:name", name.upper())
        _sub(fmt, "gmd:version").set(_name("gco:nilReason"), "inapplicable")
    options = _sub(_sub(node, "gmd:transferOptions"), "gmd:MD_DigitalTransferOptions")
    for link in description.links:
        _sub(options, "gmd:onLine").append(_online(link))
    return node


def _online(link: Link) -> etree._Element:
    resource = _element("gmd:CI_OnlineResource")
    _sub(_sub(resource, "gmd:linkage"), "gmd:URL").text = link.url
    _text(resource, "gmd:protocol", link.protocol)
    _text(resource, "gmd:name", link.name)
    if link.description:
        _text(resource, "gmd:description", link.description)
    if link.function:
        _code(_sub(resource, "gmd:function"), "gmd:CI_OnLineFunctionCode", link.function)
    return resource


def _quality(description: Description) -> etree._Element:
    quality = _element("gmd:DQ_DataQuality")
    scope = _sub(_sub(quality, "gmd:scope"), "gmd:DQ_Scope")
    _code(_sub(scope, "gmd:level"), "gmd:MD_ScopeCode", "dataset")
    lineage = _sub(_sub(quality, "gmd:lineage"), "gmd:LI_Lineage")
    _text(lineage, "gmd:statement", description.lineage or "Données publiées par la commune.")
    return quality


# --- XML -------------------------------------------------------------------------------------

LANGUAGE_LIST = "http://www.loc.gov/standards/iso639-2/"


def _date(moment: date, kind: str) -> etree._Element:
    node = _sub(_element("gmd:date"), "gmd:CI_Date")
    _sub(_sub(node, "gmd:date"), "gco:Date").text = moment.isoformat()
    _code(_sub(node, "gmd:dateType"), "gmd:CI_DateTypeCode", kind)
    return node.getparent()


def _code(parent: etree._Element, name: str, value: str, codelist: str | None = None) -> None:
    local = name.split(":")[1]
    node = _sub(parent, name)
    node.set("codeList", codelist or f"{CODELISTS}#{local}")
    node.set("codeListValue", value)
    node.text = value


def _text(parent: etree._Element, name: str, value: str) -> None:
    _sub(_sub(parent, name), "gco:CharacterString").text = value


def _anchor(parent: etree._Element, href: str, text: str) -> None:
    anchor = _sub(parent, "gmx:Anchor")
    anchor.set(_name("xlink:href"), href)
    anchor.text = text


def _sub(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, _name(name))


def _element(name: str, **options: object) -> etree._Element:
    return etree.Element(_name(name), **options)  # type: ignore[arg-type]


def _name(prefixed: str) -> str:
    prefix, local = prefixed.split(":")
    return f"{{{NAMESPACES[prefix]}}}{local}"
