"""How to cite a recording: APA and Chicago text, and BibTeX, RIS and CSL-JSON downloads.

Every format is built from one `CitationSource`, so the five never disagree about who spoke,
when, or where the recording lives. Nothing here knows HTTP or storage.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date

from archive.models import Episode, Person, Series
from feeds import sanitise_html
from feeds.text import html_to_text

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
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
    issued: date
    series_title: str
    publisher: str
    url: str
    medium: str  # "Audio" or "Video"
    duration: float | None
    abstract: str
    keywords: tuple[str, ...]
    language: str
    number: int | None = None

    @classmethod
    def of(cls, episode: Episode, series: Series, *, url: str, publisher: str) -> CitationSource:
        speakers = episode.speakers or [Person(name=publisher)]
        issued = episode.date or episode.published_at.date()
        authors = tuple(Name.parse(p.name) for p in episode.speakers) or (Name("", publisher),)
        return cls(
            key=_bibtex_key(speakers[0], issued, episode.title, episode.id),
            title=episode.title,
            authors=authors,
            roles=tuple(p.role for p in speakers) if episode.speakers else ("",),
            issued=issued,
            series_title=series.title,
            publisher=publisher,
            url=url,
            medium="Video" if "video" in episode.files else "Audio",
            duration=episode.duration,
            abstract=html_to_text(sanitise_html(episode.description)),
            keywords=tuple(episode.tags),
            language=episode.language,
            number=episode.number,
        )


def _bibtex_key(first: Person, issued: date, title: str, episode_id: str) -> str:
    family = re.sub(r"[^a-z]", "", Name.parse(first.name).family.lower()) or "anon"
    word = next((w for w in re.findall(r"[a-z]+", title.lower()) if len(w) > 3), "recording")
    return f"{family}{issued.year}{word}{episode_id[:4]}"


def _long_date(day: date) -> str:
    return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"


def _duration(seconds: float | None) -> str:
    if not seconds:
        return ""
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _join(names: list[str], conjunction: str) -> str:
    if len(names) <= 1:
        return "".join(names)
    if len(names) == 2:
        return f"{names[0]}, {conjunction} {names[1]}"
    return f"{', '.join(names[:-1])}, {conjunction} {names[-1]}"


def _sentence(text: str) -> str:
    """End with one full stop unless the text already ends a sentence."""
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else f"{text}."


def apa(source: CitationSource) -> str:
    """APA 7, podcast-episode form: Author, A. A. (Role). (Year, Month Day). Title [Audio…]."""
    names = []
    for name, role in zip(source.authors, source.roles, strict=True):
        initials = f", {name.initials}" if name.initials else ""
        label = f" ({role.capitalize()})" if role else ""
        names.append(f"{name.family}{initials}{label}")
    authors = names[0] if len(names) == 1 else _join(names, "&")
    day = source.issued
    number = f" (No. {source.number})" if source.number else ""
    kind = f"[{source.medium} podcast episode]"
    when = f"{day.year}, {MONTHS[day.month - 1]} {day.day}"
    return (f"{_sentence(authors)} ({when}). {source.title}{number} {kind}. "
            f"In {_sentence(source.series_title)} {_sentence(source.publisher)} {source.url}")


def chicago(source: CitationSource) -> str:
    """Chicago 17, bibliography entry: Family, Given, and Given Family. "Title." Series…"""
    names = [source.authors[0].inverted()] + [n.natural() for n in source.authors[1:]]
    authors = _join(names, "and") if len(names) > 2 else " and ".join(names)
    length = _duration(source.duration)
    medium = f"{source.medium}, {length}" if length else source.medium
    title = source.title if source.title.endswith((".", "?", "!")) else f"{source.title}."
    return (f"{_sentence(authors)} \u201c{title}\u201d {_sentence(source.series_title)} "
            f"{source.publisher}, {_long_date(source.issued)}. {medium}. {source.url}.")


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
    fields = [
        ("title", source.title),
        ("howpublished", f"{source.medium} recording, {source.series_title}"),
        ("publisher", source.publisher),
        ("year", str(source.issued.year)),
        ("date", source.issued.isoformat()),
        ("url", source.url),
        ("note", f"Accessed via {source.publisher}"),
        ("keywords", ", ".join(source.keywords)),
        ("language", source.language),
        ("abstract", source.abstract),
    ]
    lines = [f"@misc{{{source.key},", f"  author = {{{_bibtex_authors(source.authors)}}},"]
    lines += [f"  {name} = {_bibtex_value(value)}," for name, value in fields if value]
    lines.append(f"  month = {BIBTEX_MONTHS[source.issued.month - 1]}")
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
        ("PY", str(day.year)),
        ("DA", f"{day.year}/{day.month:02d}/{day.day:02d}"),
        ("PB", source.publisher),
        ("UR", source.url),
        ("LA", source.language),
        ("AB", source.abstract),
    ]
    rows += [("KW", tag) for tag in source.keywords]
    rows.append(("ER", ""))
    return "".join(f"{tag}  - {_ris_value(value)}\r\n" for tag, value in rows
                   if value or tag == "ER")


def csl_json(source: CitationSource) -> str:
    """CSL-JSON (what Zotero, Pandoc and citeproc read): a list holding one item."""
    day = source.issued
    item: dict[str, object] = {
        "id": source.key,
        "type": "broadcast",
        "genre": "Podcast episode",
        "title": source.title,
        "author": [{"family": n.family, "given": n.given} if n.given else {"literal": n.family}
                   for n in source.authors],
        "issued": {"date-parts": [[day.year, day.month, day.day]]},
        "container-title": source.series_title,
        "publisher": source.publisher,
        "medium": source.medium,
        "URL": source.url,
        "language": source.language,
    }
    if source.abstract:
        item["abstract"] = source.abstract
    if source.duration:
        item["dimensions"] = _duration(source.duration)
    if source.number:
        item["number"] = str(source.number)
    return json.dumps([item], ensure_ascii=False, indent=2) + "\n"
