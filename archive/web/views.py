"""Page contexts: the finished data each template receives (documented here, built in pages.py).

Templates only loop and print; every URL, label and lookup is made here, so a template cannot
reach the catalogue or storage, and everything it prints is either autoescaped text or
`Markup` that was built safely (sanitised descriptions, escaped snippets, JSON-LD).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup

from archive import artwork
from archive.catalog import CatalogView
from archive.models import (
    LICENCE_URLS,
    LICENCES,
    RIGHTS_STATEMENTS,
    Episode,
    MediaFile,
    Person,
    Series,
)

PAGE_SIZE = 20
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


# -- formatting ---------------------------------------------------------------------------


def long_date(day: date | None) -> str:
    """British style, as the group writes dates: 5 March 2024."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}" if day else ""


def clock(seconds: float) -> str:
    """0:05, 12:34, 1:02:03: the time shown beside chapters and cues."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def duration_label(seconds: float | None) -> str:
    """'1 h 5 min', '12 min', '45 s': how long a recording is, for people."""
    if not seconds:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes = rest // 60
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min" if minutes else f"{total} s"


def iso_duration(seconds: float | None) -> str:
    if not seconds:
        return ""
    total = round(seconds)
    return f"PT{total // 3600}H{total % 3600 // 60}M{total % 60}S"


def json_ld(data: dict[str, Any]) -> Markup:
    """JSON for a <script type="application/ld+json">: `<`, `>` and `&` escaped so no
    metadata can close the script element or open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def media_path(episode_id: str, filename: str) -> str:
    return f"/media/{quote(episode_id)}/{quote(filename)}"


# -- shared pieces ------------------------------------------------------------------------


@dataclass(frozen=True)
class Link:
    href: str
    label: str


@dataclass(frozen=True)
class SpeakerView:
    name: str
    href: str
    role: str
    affiliation: str

    @classmethod
    def of(cls, person: Person) -> SpeakerView:
        return cls(person.name, f"/people/{person.slug}", person.role, person.affiliation)


# -- artwork ----------------------------------------------------------------------------------

# Where a picture is shown, how wide it is there (CSS px) and the `sizes` the browser picks by.
CARD_SIZE = (96, "(min-width: 40rem) 7.5rem, 6rem")
THUMBNAIL_SIZE = (48, "3rem")
PAGE_SIZE_ART = (240, "(min-width: 40rem) 15rem, 6.5rem")
EAGER_CARDS = 3  # the first cards are above the fold on a phone: not lazy


@dataclass(frozen=True)
class Source:
    type: str  # "image/avif"
    srcset: str


@dataclass(frozen=True)
class Picture:
    """A cover in a <picture>: modern formats first, a JPEG <img> with width/height last."""

    src: str
    srcset: str
    sources: tuple[Source, ...]
    sizes: str
    width: int
    height: int
    alt: str
    lazy: bool


@dataclass(frozen=True)
class Cover:
    """A cover as the pages need it: the original's address and its renditions."""

    original: str  # the full-size JPEG (/media/…), shown until renditions exist
    digest: str
    renditions: tuple[str, ...]

    @classmethod
    def of(cls, cover: MediaFile | None, original: str) -> Cover | None:
        if cover is None:
            return None
        return cls(original, artwork.digest(cover), tuple(cover.renditions or ()))

    def picture(self, alt: str, size: tuple[int, str], *, lazy: bool = True) -> Picture:
        width, sizes = size
        by_format: dict[str, list[tuple[int, str]]] = {}
        for name in self.renditions:
            pixels, fmt = name.split(".")
            url = f"/art/{self.digest}/{name}"
            by_format.setdefault(fmt, []).append((int(pixels), url))

        def srcset(fmt: str) -> str:
            return ", ".join(f"{url} {pixels}w" for pixels, url in sorted(by_format[fmt]))

        fallback = by_format.get("jpg")
        if not fallback:
            return Picture(self.original, "", (), "", width, width, alt, lazy)
        src = next((url for pixels, url in sorted(fallback) if pixels >= width * 2),
                   sorted(fallback)[-1][1])
        sources = tuple(Source(art_types[fmt], srcset(fmt))
                        for fmt in ("avif", "webp") if fmt in by_format)
        return Picture(src, srcset("jpg"), sources, sizes, width, width, alt, lazy)


art_types = {"avif": "image/avif", "webp": "image/webp", "jpg": "image/jpeg"}


def episode_cover(episode: Episode) -> Cover | None:
    cover = episode.files.get("cover")
    return Cover.of(cover, media_path(episode.id, cover.filename)) if cover else None


def series_cover(series: Series | None) -> Cover | None:
    if series is None or series.cover is None:
        return None
    return Cover.of(series.cover, f"/media/series/{series.slug}/{quote(series.cover.filename)}")


def series_covers(view: CatalogView) -> dict[str, Cover | None]:
    return view.cached("pages:series-covers",
                       lambda: {s.slug: series_cover(s) for s in view.all_series})


@dataclass(frozen=True)
class EpisodeCard:
    """One recording in a list: everything the list shows, linked."""

    href: str
    title: str
    date_iso: str
    date_label: str
    series: Link
    speakers: tuple[SpeakerView, ...]
    duration: str
    kind: str  # "Audio" or "Video"
    picture: Picture | None = None  # alt is empty: the title beside it says it all

    @classmethod
    def of(cls, episode: Episode, series_titles: dict[str, str],
           covers: dict[str, Cover | None] | None = None, *, lazy: bool = True) -> EpisodeCard:
        day = episode.date or episode.published_at.date()
        cover = episode_cover(episode) or (covers or {}).get(episode.series)
        return cls(
            href=f"/episodes/{episode.slug}",
            title=episode.title,
            date_iso=day.isoformat(),
            date_label=long_date(day),
            series=Link(f"/series/{episode.series}",
                        series_titles.get(episode.series, episode.series)),
            speakers=tuple(SpeakerView.of(p) for p in episode.speakers),
            duration=duration_label(episode.duration),
            kind="Video" if "video" in episode.files else "Audio",
            picture=cover.picture("", CARD_SIZE, lazy=lazy) if cover else None,
        )


def series_titles(view: CatalogView) -> dict[str, str]:
    return view.cached("pages:series-titles", lambda: {s.slug: s.title for s in view.all_series})


def cards(view: CatalogView, episodes: list[Episode], *, eager: int = EAGER_CARDS
          ) -> list[EpisodeCard]:
    titles = series_titles(view)
    covers = series_covers(view)
    return [EpisodeCard.of(e, titles, covers, lazy=n >= eager) for n, e in enumerate(episodes)]


@dataclass(frozen=True)
class Pagination:
    """Page links that keep every other query parameter (the filters) as they were."""

    page: int
    pages: int
    total: int
    previous: str | None
    next: str | None

    @property
    def first_item(self) -> int:
        return 0 if not self.total else (self.page - 1) * PAGE_SIZE + 1

    @property
    def last_item(self) -> int:
        return min(self.total, self.page * PAGE_SIZE)


def page_count(total: int) -> int:
    return max(1, math.ceil(total / PAGE_SIZE))


def paginate(path: str, params: dict[str, str], page: int, total: int) -> Pagination:
    pages = page_count(total)

    def href(number: int) -> str:
        query = {k: v for k, v in params.items() if v}
        if number > 1:
            query["page"] = str(number)
        return f"{path}?{urlencode(query)}" if query else path

    return Pagination(
        page=page, pages=pages, total=total,
        previous=href(page - 1) if page > 1 else None,
        next=href(page + 1) if page < pages else None,
    )


@dataclass(frozen=True)
class Subscribe:
    """A feed address with its copy button, and the <link rel="alternate"> for the head."""

    feed_url: str
    title: str
    apple_url: str = ""  # a series' pages in directories, when an editor set them
    spotify_url: str = ""


# -- home and filters ---------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    selected: bool


@dataclass(frozen=True)
class FilterSelect:
    name: str
    label: str
    options: tuple[Option, ...]


@dataclass(frozen=True)
class Facets:
    """What one can filter on, computed once per catalogue snapshot."""

    series: tuple[tuple[str, str], ...]
    years: tuple[int, ...]
    people: tuple[tuple[str, str], ...]
    tags: tuple[str, ...]

    @classmethod
    def of(cls, view: CatalogView) -> Facets:
        published = view.published
        used_series = {e.series for e in published}
        tags: dict[str, str] = {}
        for episode in published:
            for tag in episode.tags:
                tags.setdefault(tag.lower(), tag)
        return cls(
            series=tuple((s.slug, s.title) for s in view.all_series if s.slug in used_series),
            years=tuple(sorted({e.year for e in published}, reverse=True)),
            people=tuple(sorted(((p.slug, p.name) for p in view.people.values()),
                                key=lambda item: item[1].lower())),
            tags=tuple(sorted(tags.values(), key=str.lower)),
        )


@dataclass(frozen=True)
class Filters:
    """The filters asked for in the query string (already checked)."""

    series: str = ""
    year: str = ""
    person: str = ""
    tag: str = ""

    def params(self) -> dict[str, str]:
        return {"series": self.series, "year": self.year, "person": self.person, "tag": self.tag}

    @property
    def active(self) -> bool:
        return any(self.params().values())

    def matches(self, episode: Episode) -> bool:
        return (
            (not self.series or episode.series == self.series)
            and (not self.year or str(episode.year) == self.year)
            and (not self.person or any(p.slug == self.person for p in episode.speakers))
            and (not self.tag or any(t.lower() == self.tag.lower() for t in episode.tags))
        )

    def selects(self, facets: Facets) -> list[FilterSelect]:
        def options(pairs: list[tuple[str, str]], chosen: str) -> tuple[Option, ...]:
            return tuple(Option(v, label, v == chosen) for v, label in [("", "Any"), *pairs])

        return [
            FilterSelect("series", "Series", options(list(facets.series), self.series)),
            FilterSelect("year", "Year", options([(str(y), str(y)) for y in facets.years],
                                                 self.year)),
            FilterSelect("person", "Speaker", options(list(facets.people), self.person)),
            FilterSelect("tag", "Topic", options([(t, t) for t in facets.tags], self.tag)),
        ]


@dataclass(frozen=True)
class SeriesCard:
    href: str
    title: str
    count: int
    picture: Picture | None = None


@dataclass(frozen=True)
class HomePage:
    heading: str
    episodes: list[EpisodeCard]
    pagination: Pagination
    filters: list[FilterSelect]
    filtered: bool
    series: list[SeriesCard]


# -- series, people, search -----------------------------------------------------------------


@dataclass(frozen=True)
class SeriesPage:
    title: str
    description: Markup
    picture: Picture | None
    episodes: list[EpisodeCard]
    pagination: Pagination
    subscribe: Subscribe
    canonical: str
    og: dict[str, str]
    json_ld: Markup


@dataclass(frozen=True)
class PersonPage:
    name: str
    affiliation: str
    roles: str
    orcid: str
    url: str
    episodes: list[EpisodeCard]
    pagination: Pagination
    subscribe: Subscribe
    canonical: str
    json_ld: str = ""  # Markup of a schema.org Person (ORCID iD as sameAs and identifier)


@dataclass(frozen=True)
class SearchResult:
    card: EpisodeCard
    href: str  # the episode, or the moment in it when only the transcript matched
    snippet: Markup | None
    moment_href: str | None
    moment_label: str
    moment_snippet: Markup | None


@dataclass(frozen=True)
class SearchPage:
    query: str
    results: list[SearchResult]
    pagination: Pagination | None
    ranked: bool = True  # False: too many matches to rank, newest first (search.RANKED_MATCHES)


# -- the episode page -------------------------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    """A chapter or a transcript cue: a button that seeks the player."""

    start: str  # seconds, as written into data-start
    end: str
    label: str  # 12:34
    text: str
    speaker: str = ""  # shown where the speaker changes


@dataclass(frozen=True)
class Player:
    element: str  # "audio" or "video"
    src: str
    content_type: str
    poster: str
    captions: str  # the WebVTT for <track>, on video only
    language: str


@dataclass(frozen=True)
class Download:
    href: str
    label: str
    detail: str


@dataclass(frozen=True)
class StyledCitation:
    """One CSL style on the citation panel; the `moment_*` forms hold the placeholders the
    page's script fills with a cited moment (see archive/web/citing.py)."""

    key: str
    label: str
    entry: Markup  # reference list entry, escaped, with <i>
    text: str  # the same as plain text, for copying
    in_text: str
    moment_entry: Markup
    moment_in_text: str


@dataclass(frozen=True)
class Citation:
    styles: tuple[StyledCitation, ...]  # the site's default first
    bibtex: str
    ris: str
    csl_json: str


@dataclass(frozen=True)
class TranscriptState:
    """What the page says about the transcript: where it came from, or that it is coming."""

    status: str  # "ready", "preparing", "none"
    caution: str = ""  # "Automatic transcript: may contain errors." until reviewed
    page: str = ""  # the transcript on a page of its own (readable, printable)
    poll: str = ""  # while preparing: the JSON address the page watches


@dataclass(frozen=True)
class EpisodePage:
    id: str
    title: str
    date_iso: str
    date_label: str
    series: Link
    speakers: tuple[SpeakerView, ...]
    tags: tuple[Link, ...]
    licence: Link | None
    event: str
    location: str
    duration: str
    description: Markup
    player: Player
    chapters: tuple[Timed, ...]
    cues: tuple[Timed, ...]
    transcript_note: str
    transcript: TranscriptState
    downloads: tuple[Download, ...]
    citation: Citation
    permalink: str
    canonical: str
    cover: str
    og: dict[str, str]
    json_ld: Markup
    subscribe: Subscribe
    language: str = "en"
    picture: Picture | None = None
    waveform: str = ""  # the audiowaveform JSON the player's scrubber draws, when there is one
    duration_s: str = ""  # seconds, for the scrubber before the audio's metadata is loaded
    licence_term: str = "Licence"  # "Rights" when `licence` is a rightsstatements.org statement


@dataclass(frozen=True)
class TranscriptPage:
    title: str
    episode: Link
    cues: tuple[Timed, ...]
    transcript: TranscriptState
    canonical: str
    language: str


def person_identifiers_ld(person: Any) -> dict[str, Any]:
    """schema.org `sameAs` (ORCID iD, homepage), `identifier` (the ORCID iD) and `image`."""
    found: dict[str, Any] = {}
    same_as = [link for link in (person.orcid_url, person.url) if link]
    if same_as:
        found["sameAs"] = same_as
    if person.orcid:
        found["identifier"] = {"@type": "PropertyValue", "propertyID": "ORCID",
                               "value": person.orcid, "url": person.orcid_url}
    if person.image:
        found["image"] = person.image
    return found


def rights_link(episode: Episode, default_licence: str | None) -> tuple[str, Link | None]:
    """What the page states about reuse: the episode's licence, else its rightsstatements.org
    statement (which then overrides the site's default licence), else the default licence."""
    if not episode.licence and episode.rights:
        return "Rights", Link(episode.rights, RIGHTS_STATEMENTS.get(episode.rights,
                                                                    episode.rights))
    return "Licence", licence_link(episode.licence or default_licence)


def licence_link(key: str | None) -> Link | None:
    if not key:
        return None
    return Link(LICENCE_URLS.get(key, ""), LICENCES.get(key, key))


def series_json_ld(series: Series, url: str, publisher: str) -> dict[str, Any]:
    return {
        "@type": "PodcastSeries",
        "name": series.title,
        "url": url,
        "webFeed": f"{url}/feed.xml",
        "publisher": {"@type": "Organization", "name": publisher},
    }
