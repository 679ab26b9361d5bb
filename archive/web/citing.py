"""Citing recordings on the public pages: the citation panel (every CSL style, the site's
default first), a cited moment (`#t=START,END` or `?t=`), and the downloads that carry it.

The panel is rendered once per catalogue snapshot (pages are cached), so a moment a reader
picks cannot be rendered on the server for each pick: each style is rendered a second time with
placeholders (`MOMENT_T` in the link, `MOMENT_RANGE` as the in-text locator) that the page's
script (templates/static/moment.js) fills in. The downloads take `?t=` and are built on the
server.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache
from html import escape
from urllib.parse import urlencode

from markupsafe import Markup
from starlette.requests import Request

from archive import citations, cite
from archive.errors import InvalidInput
from archive.web import views

MOMENT_T = "__T__"
MOMENT_RANGE = "__RANGE__"


def panel(source: citations.CitationSource, slug: str, default_style: str) -> views.Citation:
    """Every style for the whole recording, with the placeholders of a cited moment.

    Rendering costs ~70 ms of CPU (four styles), and a catalogue change empties the page cache
    although most episodes did not change: so panels are kept by what they are made of (the
    source, a frozen dataclass, and the day, for "accessed" dates) across snapshots."""
    return _panel(source, slug, default_style, datetime.now(UTC).date())


@lru_cache(maxsize=1024)
def _panel(source: citations.CitationSource, slug: str, default_style: str, accessed: date
           ) -> views.Citation:
    base = f"/episodes/{slug}/cite"
    moment_url = f"{source.url.split('#', 1)[0]}#t={MOMENT_T}"
    styles = tuple(
        views.StyledCitation(
            key=r.key, label=r.label, entry=Markup(r.entry_html), text=r.entry_text,
            in_text=r.in_text,
            moment_entry=Markup(_with_link(r.entry_html, source.url, moment_url)),
            moment_in_text=r.also_in_text)
        for r in cite.render_all(source, default_style, accessed=accessed,
                                 also_locator=MOMENT_RANGE))
    return views.Citation(styles=styles, bibtex=f"{base}.bib", ris=f"{base}.ris",
                          csl_json=f"{base}.json")


def _with_link(entry_html: str, url: str, moment_url: str) -> str:
    """The entry citing the moment: the recording's link becomes the moment's (a style that
    prints no link has none to change; the panel shows the link beside it anyway)."""
    return entry_html.replace(escape(url, quote=False), escape(moment_url, quote=False), 1)


def requested_moment(request: Request) -> tuple[float, float | None] | None:
    """`?t=` of a request, read as a media fragment; a malformed one is a 400."""
    value = request.query_params.get("t")
    if value is None or value == "":
        return None
    if len(value) > 40:
        raise InvalidInput("t= is too long (use t=90 or t=90,125).")
    return citations.parse_media_fragment(value)


def at_moment(source: citations.CitationSource, moment: tuple[float, float | None] | None
              ) -> citations.CitationSource:
    return source if moment is None else source.moment(*moment)


def fragment_of(moment: tuple[float, float | None]) -> str:
    """`#t=…` of a moment, normalised (a permalink's `?t=` is never copied as given)."""
    return f"#t={citations.media_fragment(*moment)}"


def download_query(moment: tuple[float, float | None] | None) -> str:
    return "" if moment is None else "?" + urlencode({"t": citations.media_fragment(*moment)})
