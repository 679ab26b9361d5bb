"""How to cite a recording: the CSL item every style is rendered from (archive/cite.py), and
BibTeX, RIS and CSL-JSON downloads.

Every format is built from one `CitationSource`, so they never disagree about who spoke, when,
or where the recording lives. A cited moment (`CitationSource.moment`) carries its time range in
its link (`#t=START,END`, W3C media fragments) and in each format's note. Nothing here knows HTTP
or storage.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from archive.errors import InvalidInput
from archive.models import Episode, Person, Series
from feeds import sanitise_html
from feeds.text import html_to_text

BIBTEX_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov",
                 "dec")
_BIBTEX_SPECIAL = re.compile(r"([\\{}&%$#_^~])")
_BIBTEX_REPLACEMENTS = {"\\": r"\textbackslash{}", "^": r"\^{}", "~": r"\~{}"}
_PARTICLES = {"de", "da", "del", "della", "der", "di", "du", "la", "le", "van", "von", "bin",
              "al", "el"}


@dataclass(frozen=True)
class Name:
    """A person's name split the way citation styles need it."""

    given: str
    family: str

    @classmethod
    def parse(cls, full: str) -> Name:
        """'Nicholas J Wheeler' -> given 'Nicholas J', family 'Wheeler' (with 'van', 'de'…)."""
        words = full.split()
        if len(words) <= 1:
            return cls("", full.strip())
        start = len(words) - 1
        while start > 1 and words[start - 1].lower() in _PARTICLES:
            start -= 1
        return cls(" ".join(words[:start]), " ".join(words[start:]))

    @property
    def initials(self) -> str:
        """'Nicholas J' -> 'N. J.'; hyphenated names keep their hyphen ('Jean-Paul' -> 'J.-P.')."""
        parts = []
        for word in self.given.split():
            pieces = [p for p in word.split("-") if p]
            parts.append("-".join(f"{p[0]}." for p in pieces))
        return " ".join(parts)

    def inverted(self) -> str:
        return f"{self.family}, {self.given}" if self.given else self.family

    def natural(self) -> str:
        return f"{self.given} {self.family}".strip()


@dataclass(frozen=True)
class CitationSource:
    """Everything a citation needs, already looked up."""

    key: str
    title: str
    authors: tuple[Name, ...]
    roles: tuple[str, ...]
    issued: date | None  # None: "n.d." in the styles
    series_title: str
    publisher: str
    url: str
    medium: str  # "Audio" or "Video"
    duration: float | None
    abstract: str
    keywords: tuple[str, ...]
    language: str
    number: int | None = None
    orcids: tuple[str, ...] = ()  # one per author, "" where none
    genre: str = ""  # "Audio podcast episode", "Video recording"…
    start: float | None = None  # a cited moment, in seconds
    end: float | None = None

    @classmethod
    def of(cls, episode: Episode, series: Series, *, url: str, publisher: str) -> CitationSource:
        speakers = episode.speakers or [Person(name=publisher)]
        issued = episode.date or episode.published_at.date()
        authors = tuple(Name.parse(p.name) for p in episode.speakers) or (Name("", publisher),)
        medium = "Video" if "video" in episode.files else "Audio"
        kind = "recording" if series.medium == "course" else "podcast episode"
        return cls(
            key=_bibtex_key(speakers[0], issued, episode.title, episode.id),
            title=episode.title,
            authors=authors,
            roles=tuple(p.role for p in speakers) if episode.speakers else ("",),
            issued=issued,
            series_title=series.title,
            publisher=publisher,
            url=url,
            medium=medium,
            duration=episode.duration,
            abstract=html_to_text(sanitise_html(episode.description)),
            keywords=tuple(episode.tags),
            language=episode.language,
            number=episode.number,
            orcids=tuple(p.orcid for p in episode.speakers) or ("",),
            genre=f"{medium} {kind}",
        )

    def moment(self, start: float, end: float | None = None) -> CitationSource:
        """The same recording, cited from `start` (to `end`) seconds: the link gains a media
        fragment, and every format names the range."""
        base = self.url.split("#", 1)[0]
        fragment = media_fragment(start, end)
        return dataclasses.replace(self, start=start, end=end, url=f"{base}#t={fragment}")

    @property
    def moment_note(self) -> str:
        if self.start is None:
            return ""
        return f"Cited from {time_range(self.start, self.end)}"


def media_fragment(start: float, end: float | None = None) -> str:
    """`90` or `90,125.5`: the value of a W3C media fragment `#t=`."""
    def number(value: float) -> str:
        return f"{value:.3f}".rstrip("0").rstrip(".")

    return number(start) if end is None else f"{number(start)},{number(end)}"


_CLOCK = re.compile(r"^(?:(\d{1,3}):)?(?:(\d{1,2}):)?(\d{1,7}(?:\.\d{1,3})?)$")
MAX_SECONDS = 10 * 24 * 3600


def parse_media_fragment(value: str) -> tuple[float, float | None]:
    """Read `t=` of a W3C media fragment: `90`, `90,125.5`, `npt:1:30,2:05`, `,20` (from 0).
    Refuses anything else, or an end before its start."""
    text = value.strip()
    text = text.removeprefix("npt:")
    first, comma, second = text.partition(",")
    start = _seconds(first) if first else 0.0
    end = _seconds(second) if comma else None
    if not text or start is None or (comma and end is None):
        raise InvalidInput(f"t={value[:40]!r} is not a time (use t=90 or t=90,125).")
    if end is not None and end <= start:
        raise InvalidInput("A cited moment must end after it starts.")
    return start, end


def _seconds(text: str) -> float | None:
    match = _CLOCK.match(text)
    if not match:
        return None
    parts = [p for p in match.groups() if p is not None]
    total = 0.0
    for part in parts:
        total = total * 60 + float(part)
    return total if total <= MAX_SECONDS else None


def time_range(start: float, end: float | None = None) -> str:
    """'1:30–2:05' (or '1:30' alone), as a cited moment reads in text."""
    first = _clock(start)
    return first if end is None or end <= start else f"{first}\u2013{_clock(end)}"


def _clock(seconds: float) -> str:
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _bibtex_key(first: Person, issued: date, title: str, episode_id: str) -> str:
    family = re.sub(r"[^a-z]", "", Name.parse(first.name).family.lower()) or "anon"
    word = next((w for w in re.findall(r"[a-z]+", title.lower()) if len(w) > 3), "recording")
    return f"{family}{issued.year}{word}{episode_id[:4]}"


def _duration(seconds: float | None) -> str:
    if not seconds:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _bibtex_value(text: str) -> str:
    escaped = _BIBTEX_SPECIAL.sub(lambda m: _BIBTEX_REPLACEMENTS.get(m[1], f"\\{m[1]}"), text)
    return "{" + " ".join(escaped.split()) + "}"


def _bibtex_authors(authors: tuple[Name, ...]) -> str:
    """People as 'Family, Given'; an organisation braced so BibTeX keeps its name whole."""
    parts = []
    for name in authors:
        value = _bibtex_value(name.inverted())
        parts.append(value[1:-1] if name.given else value)
    return " and ".join(parts)


def bibtex(source: CitationSource) -> str:
    """A @misc entry (biblatex and classic BibTeX both read it); special characters escaped."""
    day = source.issued
    note = "; ".join(n for n in (source.moment_note, f"Accessed via {source.publisher}") if n)
    fields = [
        ("title", source.title),
        ("howpublished", f"{source.medium} recording, {source.series_title}"),
        ("publisher", source.publisher),
        ("year", str(day.year) if day else ""),
        ("date", day.isoformat() if day else ""),
        ("url", source.url),
        ("note", note),
        ("keywords", ", ".join(source.keywords)),
        ("language", source.language),
        ("abstract", source.abstract),
    ]
    lines = [f"@misc{{{source.key},", f"  author = {{{_bibtex_authors(source.authors)}}},"]
    lines += [f"  {name} = {_bibtex_value(value)}," for name, value in fields if value]
    if day:
        lines.append(f"  month = {BIBTEX_MONTHS[day.month - 1]},")
    lines[-1] = lines[-1].rstrip(",")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _ris_value(text: str) -> str:
    return " ".join(text.split())


def ris(source: CitationSource) -> str:
    """RIS as reference managers import it: `TY  - SOUND` … `ER  - `, CRLF line ends."""
    day = source.issued
    rows = [("TY", "VIDEO" if source.medium == "Video" else "SOUND")]
    rows += [("AU", n.inverted()) for n in source.authors]
    rows += [
        ("TI", source.title),
        ("T2", source.series_title),
        ("PY", str(day.year) if day else ""),
        ("DA", f"{day.year}/{day.month:02d}/{day.day:02d}" if day else ""),
        ("PB", source.publisher),
        ("UR", source.url),
        ("LA", source.language),
        ("AB", source.abstract),
        ("N1", source.moment_note),
    ]
    rows += [("KW", tag) for tag in source.keywords]
    rows.append(("ER", ""))
    return "".join(f"{tag}  - {_ris_value(value)}\r\n" for tag, value in rows
                   if value or tag == "ER")


def csl_item(source: CitationSource, *, accessed: date | None = None,
             for_citeproc: bool = False) -> dict[str, Any]:
    """The CSL-JSON item. Authors carry their ORCID iD as Crossref's CSL-JSON does (`ORCID`);
    `for_citeproc` leaves out what citeproc-py cannot read (ORCID) or would print twice (the
    medium, already in the genre)."""
    item: dict[str, Any] = {
        "id": source.key,
        "type": "broadcast",
        "genre": source.genre or "Podcast episode",
        "title": source.title,
        "author": [_csl_name(n, orcid, for_citeproc)
                   for n, orcid in zip(source.authors, _padded(source), strict=True)],
        "container-title": source.series_title,
        "publisher": source.publisher,
        "URL": source.url,
        "language": source.language,
    }
    if source.issued:
        day = source.issued
        item["issued"] = {"date-parts": [[day.year, day.month, day.day]]}
    if accessed:
        item["accessed"] = {"date-parts": [[accessed.year, accessed.month, accessed.day]]}
    if not for_citeproc:
        item["medium"] = source.medium
        if source.abstract:
            item["abstract"] = source.abstract
    if source.duration:
        item["dimensions"] = _duration(source.duration)
    if source.number:
        item["number"] = str(source.number)
    if source.moment_note:
        item["note"] = source.moment_note
    return item


def _padded(source: CitationSource) -> tuple[str, ...]:
    return (source.orcids + ("",) * len(source.authors))[: len(source.authors)]


def _csl_name(name: Name, orcid: str, for_citeproc: bool) -> dict[str, str]:
    found = {"family": name.family, "given": name.given} if name.given else \
        {"literal": name.family}
    if orcid and not for_citeproc:
        found["ORCID"] = f"https://orcid.org/{orcid}"
    return found


def csl_json(source: CitationSource) -> str:
    """CSL-JSON (what Zotero, Pandoc and citeproc read): a list holding one item."""
    return json.dumps([csl_item(source)], ensure_ascii=False, indent=2) + "\n"
