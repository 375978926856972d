"""XML from a commune's server, refused before any parser reads a dangerous DTD."""

from __future__ import annotations

from lxml import etree

from pipelines.harvest.errors import SourceError
from pipelines.safety import UnsafeInput, check_xml_bytes

XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def refuse_unsafe_xml(content: bytes, url: str) -> None:
    """Refuse a DTD declaring entities (billion laughs, external entities) before lxml,
    OWSLib, rdflib or GDAL parse the document: defusedxml reads its prolog, where any
    entity must be declared (pipelines.safety)."""
    try:
        check_xml_bytes(content, "reçu")
    except UnsafeInput as error:
        if error.rule != "xml-illisible":  # not XML at all (JSON…): for the caller to say
            # (an encoding expat cannot read is refused: lxml might read it, entities too)
            raise SourceError(error.rule, error.message, url) from error
