"""The Podcasting 2.0 namespace (and the iTunes tags feedgen gets wrong) as a feedgen extension.

feedgen's own iTunes extension is registered as "podcast", so ours is "podcastindex". Rather than
one setter per tag, the builder hands over ready `Element` trees; the extension only renders them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from lxml import etree

from feeds.text import xml_safe

PODCAST_NS = "https://podcastindex.org/namespace/1.0"
ITUNES_NS = "http://www.itunes.com/dtds/podcast-1.0.dtd"
NAMESPACES = {"podcast": PODCAST_NS, "itunes": ITUNES_NS}


@dataclass
class Element:
    """One XML element to emit: `prefix:name`, text, attributes (None values dropped), children."""

    name: str
    text: str | None = None
    attrs: dict[str, str | None] = field(default_factory=dict)
    children: list[Element] = field(default_factory=list)

    @property
    def clark(self) -> str:
        prefix, _, local = self.name.rpartition(":")
        return f"{{{NAMESPACES[prefix]}}}{local}" if prefix else local


def render(parent: etree._Element, elements: Iterable[Element]) -> None:
    """Append elements under `parent`, scrubbing every string so lxml never sees illegal XML."""
    for element in elements:
        node = etree.SubElement(parent, element.clark, nsmap=NAMESPACES)
        for key, value in element.attrs.items():
            if value is not None:
                node.set(key, xml_safe(str(value)))
        if element.text is not None:
            node.text = xml_safe(element.text)
        render(node, element.children)


class PodcastIndexExtension(BaseExtension):
    """Channel-level podcast:* (and itunes:image/explicit) elements."""

    def __init__(self) -> None:
        self.elements: list[Element] = []

    def extend_ns(self) -> dict[str, str]:
        return {"podcast": PODCAST_NS}

    def extend_rss(self, rss_feed: etree._Element) -> etree._Element:
        render(rss_feed[0], self.elements)
        return rss_feed

    def extend_atom(self, atom_feed: etree._Element) -> etree._Element:
        return atom_feed


class PodcastIndexEntryExtension(BaseEntryExtension):
    """Item-level podcast:* (and itunes:image/explicit) elements."""

    def __init__(self) -> None:
        self.elements: list[Element] = []

    def extend_rss(self, item: etree._Element) -> etree._Element:
        render(item, self.elements)
        return item

    def extend_atom(self, entry: etree._Element) -> etree._Element:
        return entry
