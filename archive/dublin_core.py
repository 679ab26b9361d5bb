"""Metadata records of an episode as XML: simple Dublin Core (`oai_dc`) and MODS 3.7.

Built as ElementTree elements from a `PublicRecord`, never by joining strings, so a title with
`<`, `&` or quotes is escaped by the serialiser. OAI-PMH wraps these; a bag carries the Dublin
Core record as `dublin-core.xml`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from archive.records import PublicRecord

OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC = "http://purl.org/dc/elements/1.1/"
MODS = "http://www.loc.gov/mods/v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XLINK = "http://www.w3.org/1999/xlink"
OAI_DC_SCHEMA = "http://www.openarchives.org/OAI/2.0/oai_dc.xsd"
MODS_SCHEMA = "http://www.loc.gov/standards/mods/v3/mods-3-7.xsd"

for prefix, uri in (("oai_dc", OAI_DC), ("dc", DC), ("mods", MODS), ("xsi", XSI),
                    ("xlink", XLINK)):
    ET.register_namespace(prefix, uri)


def _sub(parent: ET.Element, tag: str, text: str = "", **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, {k: v for k, v in attributes.items() if v})
    if text:
        element.text = text
    return element


def oai_dc(record: PublicRecord) -> ET.Element:
    """Simple Dublin Core: authors as `creator`, chairs, discussants and the like as
    `contributor` (DC has no roles; MODS carries them exactly)."""
    root = ET.Element(f"{{{OAI_DC}}}dc",
                      {f"{{{XSI}}}schemaLocation": f"{OAI_DC} {OAI_DC_SCHEMA}"})

    def dc(name: str, text: str) -> None:
        if text:
            _sub(root, f"{{{DC}}}{name}", text)

    dc("title", record.title)
    for agent in record.agents:
        dc("creator" if agent.creator else "contributor", agent.name)
    dc("publisher", record.publisher)
    dc("date", record.date)
    dc("description", record.description)
    for tag in record.tags:
        dc("subject", tag)
    dc("type", record.dc_type)
    if record.delivery is not None:
        dc("format", record.delivery.content_type)
    dc("identifier", record.permalink)
    dc("language", record.language)
    dc("rights", record.rights_url)
    if record.rights_label and record.rights_label != record.rights_url:
        dc("rights", record.rights_label)
    dc("relation", record.series_url)
    dc("relation", f"Series: {record.series_title}")
    dc("coverage", record.location)
    return root


def mods(record: PublicRecord) -> ET.Element:
    """MODS 3.7: names with their exact roles, affiliations and ORCID iDs; duration; the
    series as a related item; licence as an access condition."""
    m = f"{{{MODS}}}"
    root = ET.Element(f"{m}mods", {"version": "3.7",
                                   f"{{{XSI}}}schemaLocation": f"{MODS} {MODS_SCHEMA}"})
    title_info = _sub(root, f"{m}titleInfo")
    _sub(title_info, f"{m}title", record.title)
    for agent in record.agents:
        name = _sub(root, f"{m}name", type="personal",
                    usage="primary" if agent is record.agents[0] else "")
        _sub(name, f"{m}namePart", agent.name)
        if agent.affiliation:
            _sub(name, f"{m}affiliation", agent.affiliation)
        role = _sub(name, f"{m}role")
        _sub(role, f"{m}roleTerm", agent.role, type="text")
        if agent.orcid:
            _sub(name, f"{m}nameIdentifier", agent.orcid_url, type="orcid")
    _sub(root, f"{m}typeOfResource",
         "moving image" if record.video else "sound recording-nonmusical")
    _sub(root, f"{m}genre", "podcast episode" if not record.video else "video recording")
    origin = _sub(root, f"{m}originInfo")
    _sub(origin, f"{m}publisher", record.publisher)
    _sub(origin, f"{m}dateIssued", record.date, encoding="w3cdtf", keyDate="yes")
    _sub(origin, f"{m}dateModified", record.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
         encoding="w3cdtf")
    language = _sub(root, f"{m}language")
    _sub(language, f"{m}languageTerm", record.language, type="code", authority="rfc5646")
    physical = _sub(root, f"{m}physicalDescription")
    if record.delivery is not None:
        _sub(physical, f"{m}internetMediaType", record.delivery.content_type)
        if record.delivery.duration:
            _sub(physical, f"{m}extent", f"{record.delivery.duration:.3f}", unit="seconds")
    _sub(physical, f"{m}digitalOrigin", "born digital")
    if record.description:
        _sub(root, f"{m}abstract", record.description)
    for tag in record.tags:
        _sub(_sub(root, f"{m}subject"), f"{m}topic", tag)
    if record.location:
        _sub(_sub(root, f"{m}subject"), f"{m}geographic", record.location)
    series = _sub(root, f"{m}relatedItem", type="series")
    _sub(_sub(series, f"{m}titleInfo"), f"{m}title", record.series_title)
    _sub(_sub(series, f"{m}location"), f"{m}url", record.series_url)
    _sub(root, f"{m}identifier", record.permalink, type="uri")
    _sub(root, f"{m}identifier", record.guid, type="uuid")
    location = _sub(root, f"{m}location")
    _sub(location, f"{m}url", record.page_url, usage="primary display",
         access="object in context")
    if record.delivery is not None:
        _sub(location, f"{m}url", record.delivery.url, access="raw object")
    if record.rights_url or record.rights_label:
        condition = _sub(root, f"{m}accessCondition", record.rights_label or record.rights_url,
                         type="use and reproduction")
        if record.rights_url:
            condition.set(f"{{{XLINK}}}href", record.rights_url)
    info = _sub(root, f"{m}recordInfo")
    _sub(info, f"{m}recordIdentifier", record.id)
    _sub(info, f"{m}recordChangeDate", record.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
         encoding="w3cdtf")
    return root


def to_bytes(element: ET.Element) -> bytes:
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)
