"""Moving a podcast in from another host: read its RSS feed, download what is new, ingest it.

Listeners' apps know episodes by their guid and the show by its `podcast:guid`, so both are
kept: each episode is ingested with its item's guid and original publication time, and the
series keeps the old show's `podcast:guid` (or, when the old feed had none, the one directories
derived from the old feed's address), and records the old feed URL. Re-running adds only items
whose guid the archive does not have yet, so an interrupted or repeated move is safe.

The feed is parsed with defusedxml with DTDs forbidden (so no entity expansion and nothing
fetched from outside); every download goes through `archive.safe_fetch` (public addresses only
unless allowed, redirects checked, resumable), a few at a time; ingest runs one at a time.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from archive import sidecars
from archive.config import Settings
from archive.errors import ArchiveError, Conflict, Duplicate, InvalidInput
from archive.ingest import Metadata, ingest
from archive.models import (
    ACADEMIC_ROLES,
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_SPEAKERS,
    MAX_TITLE,
    Series,
    clean_text,
    slugify,
)
from archive.removal import tombstone_key, tombstoned
from archive.runtime import Archive, open_archive
from archive.safe_fetch import FetchError, download, fetch_bytes
from feeds import podcast_guid
from media import artwork, transcripts
from media.errors import MediaError

NS = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "atom": "http://www.w3.org/2005/Atom",
}
PODCAST_NAMESPACES = ("https://podcastindex.org/namespace/1.0",
                      "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md")
MAX_FEED_BYTES = 50 * 1024 * 1024
MAX_SIDECAR_BYTES = 20 * 1024 * 1024
TRANSCRIPT_TYPES = ("text/vtt", "application/x-subrip", "application/srt", "text/srt")
ROLE_MAP = {"guest host": "co-host", "cohost": "co-host"}
MAX_CONCURRENCY = 8


@dataclass
class Item:
    """One episode of the old feed, as read from it."""

    guid: str
    title: str
    enclosure_url: str
    enclosure_type: str = ""
    enclosure_length: int | None = None
    description: str = ""
    published_at: datetime | None = None
    duration: float | None = None
    image_url: str = ""
    chapters_url: str = ""
    transcript_url: str = ""
    season: int | None = None
    number: int | None = None
    episode_type: str = "full"
    explicit: bool = False
    speakers: list[str] = field(default_factory=list)  # "Name;role"
    language: str = ""


@dataclass
class Show:
    title: str
    description: str = ""
    language: str = ""
    image_url: str = ""
    podcast_guid: str = ""
    self_url: str = ""
    explicit: bool = False
    items: list[Item] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # items that cannot be imported, and why


# -- reading the feed ----------------------------------------------------------------------


def read_source(source: str, *, allow_private: bool) -> tuple[bytes, str]:
    """The feed's bytes, and its address when it was fetched (a file has none)."""
    if re.match(r"^https?://", source, re.IGNORECASE):
        return fetch_bytes(source, allow_private=allow_private, limit=MAX_FEED_BYTES), source
    path = Path(source)
    if not path.is_file():
        raise InvalidInput(f"{source} is neither an http(s) address nor a file.")
    if path.stat().st_size > MAX_FEED_BYTES:
        raise InvalidInput(f"{source} is larger than {MAX_FEED_BYTES // 2**20} MB.")
    return path.read_bytes(), ""


def parse_feed(data: bytes) -> Show:
    """A podcast RSS 2.0 feed, parsed with no DTD (so no entities, nothing fetched)."""
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise InvalidInput("The feed declares a DTD or entities; refused (a podcast feed "
                           "needs neither).") from None
    except ParseError as error:
        raise InvalidInput(f"The feed is not well-formed XML ({error}).") from None
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise InvalidInput("This is not an RSS feed (no <rss><channel>).")
    show = Show(
        title=_text(channel, "title") or "Imported podcast",
        description=_text(channel, "description") or _text(channel, "itunes:summary"),
        language=_text(channel, "language"),
        image_url=_attr(channel, "itunes:image", "href") or _text(channel, "image/url"),
        podcast_guid=_podcast_text(channel, "guid"),
        self_url=_self_link(channel),
        explicit=_explicit(_text(channel, "itunes:explicit")),
    )
    for number, element in enumerate(channel.findall("item"), start=1):
        try:
            show.items.append(_item(element, show))
        except InvalidInput as error:
            show.skipped.append(f"item {number}: {error.message}")
    return show


def _item(element: Element, show: Show) -> Item:
    enclosure = element.find("enclosure")
    url = (enclosure.get("url") or "").strip() if enclosure is not None else ""
    title = _text(element, "title") or _text(element, "itunes:title")
    if not url:
        raise InvalidInput(f"{title or 'untitled'!r} has no enclosure (no recording to move)")
    guid = _text(element, "guid") or url  # RSS readers fall back on the enclosure URL too
    length = (enclosure.get("length") or "").strip() if enclosure is not None else ""
    return Item(
        guid=guid[:200],
        title=title or "Untitled",
        enclosure_url=url,
        enclosure_type=(enclosure.get("type") or "") if enclosure is not None else "",
        enclosure_length=int(length) if length.isdigit() else None,
        description=_text(element, "content:encoded") or _text(element, "description")
        or _text(element, "itunes:summary"),
        published_at=_date(_text(element, "pubDate")),
        duration=_duration(_text(element, "itunes:duration")),
        image_url=_attr(element, "itunes:image", "href"),
        chapters_url=_podcast_attr(element, "chapters", "url"),
        transcript_url=_transcript(element),
        season=_number(_text(element, "itunes:season") or _podcast_text(element, "season")),
        number=_number(_text(element, "itunes:episode") or _podcast_text(element, "episode")),
        episode_type=_episode_type(_text(element, "itunes:episodeType")),
        explicit=_explicit(_text(element, "itunes:explicit")) or show.explicit,
        speakers=_people(element),
        language=show.language,
    )


def _text(element: Element, path: str) -> str:
    found = element.find(path, NS)
    if found is None:
        return ""
    text = (found.text or "").strip()
    return " ".join(text.split()) if path.endswith(("title", "guid")) else text


def _attr(element: Element, path: str, name: str) -> str:
    found = element.find(path, NS)
    return (found.get(name) or "").strip() if found is not None else ""


def _podcast_all(element: Element, name: str) -> Iterator[Element]:
    for namespace in PODCAST_NAMESPACES:
        yield from element.findall(f"{{{namespace}}}{name}")


def _podcast_text(element: Element, name: str) -> str:
    return next(((e.text or "").strip() for e in _podcast_all(element, name)), "")


def _podcast_attr(element: Element, name: str, attr: str) -> str:
    return next(((e.get(attr) or "").strip() for e in _podcast_all(element, name)), "")


def _self_link(channel: Element) -> str:
    for link in channel.findall("atom:link", NS):
        if link.get("rel") == "self" and link.get("href"):
            return (link.get("href") or "").strip()
    return _text(channel, "itunes:new-feed-url")


def _transcript(element: Element) -> str:
    """The first timed transcript we can ingest (WebVTT preferred, then SubRip)."""
    offered = {(e.get("type") or "").lower(): (e.get("url") or "").strip()
               for e in _podcast_all(element, "transcript")}
    return next((offered[kind] for kind in TRANSCRIPT_TYPES if offered.get(kind)), "")


def _people(element: Element) -> list[str]:
    found = []
    for person in _podcast_all(element, "person"):
        name = " ".join((person.text or "").replace(";", ",").split())
        role = " ".join((person.get("role") or "").lower().split())
        role = ROLE_MAP.get(role, role)
        if name:
            found.append(f"{name};{role if role in ACADEMIC_ROLES else 'speaker'}")
    return found


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _duration(value: str) -> float | None:
    """`itunes:duration`: seconds, MM:SS or HH:MM:SS."""
    parts = value.split(":")
    if not value or len(parts) > 3 or not all(re.fullmatch(r"\d+(\.\d+)?", p) for p in parts):
        return None
    total = 0.0
    for part in parts:
        total = total * 60 + float(part)
    return total


def _number(value: str) -> int | None:
    return int(value) if value.isdigit() and 0 < int(value) < 100_000 else None


def _episode_type(value: str) -> str:
    value = value.strip().lower()
    return value if value in ("full", "trailer", "bonus") else "full"


def _explicit(value: str) -> bool:
    return value.strip().lower() in ("yes", "true", "explicit")


# -- planning and running --------------------------------------------------------------------


@dataclass
class Plan:
    new: list[Item]
    present: list[Item]
    deleted: list[Item] = field(default_factory=list)


def plan(show: Show, known_guids: set[str], deleted: set[str] | None = None) -> Plan:
    """Oldest first, so the archive fills in the order the show was published. An episode an
    editor deleted here (a takedown, withdrawn consent) is not brought back by a re-run."""
    ordered = sorted(show.items, key=lambda i: i.published_at or datetime.min.replace(tzinfo=UTC))
    seen: set[str] = set()
    work = Plan([], [])
    for item in ordered:
        if item.guid in known_guids or item.guid in seen:
            work.present.append(item)
        elif item.guid in (deleted or set()):
            work.deleted.append(item)
        else:
            seen.add(item.guid)
            work.new.append(item)
    return work


def deleted_guids(archive: Archive) -> set[str]:
    """The guids of deleted episodes, from their tombstones (few: one GET each)."""
    found = set()
    for episode_id in tombstoned(archive.store):
        with contextlib.suppress(ArchiveError, KeyError, TypeError):
            data, _ = archive.store.get_json(tombstone_key(episode_id))
            found.add(str(data["guid"]))
    return found


def ensure_series(archive: Archive, show: Show, slug_or_title: str | None, old_feed: str,
                  *, allow_private: bool) -> Series:
    """The series to import into: created with the old show's guid and artwork, or updated if
    still empty (a series that already has episodes keeps its own guid: apps know it by that)."""
    title = clean_text(_fit(slug_or_title or show.title, MAX_TITLE), "Series", MAX_TITLE,
                       required=True)
    slug = slugify(title, "series")
    guid = show.podcast_guid or (podcast_guid(old_feed) if old_feed else "")
    new = None
    if slug not in archive.catalog.refresh().data.series:
        new = Series.new(title, description=_fit(show.description, MAX_DESCRIPTION))
        new.podcast_guid = guid or podcast_guid(
            f"{archive.settings.base_url}/series/{new.slug}/feed.xml")
        sidecars.store_series_cover(archive, new, show_artwork(show, allow_private))

    def apply(data: Any) -> Series:
        series = data.series.get(slug)
        if series is None:
            if new is None:
                raise Conflict(f"The series {slug} was removed meanwhile; run the import again.")
            series = data.series[slug] = new
        has_episodes = any(e.series == slug for e in data.episodes.values())
        if guid and not has_episodes:
            series.podcast_guid = guid
        if old_feed and not series.old_feed_url:
            series.old_feed_url = old_feed
        return series

    series = archive.catalog.change(apply)
    archive.catalog.write_series_meta(series)
    return series


def show_artwork(show: Show, allow_private: bool) -> bytes | None:
    """The old show's artwork as our cover, or None (a cover is generated) when it is missing
    or not artwork podcast apps accept."""
    if not show.image_url:
        return None
    try:
        return artwork.prepare_artwork(fetch_bytes(show.image_url, allow_private=allow_private,
                                                   limit=MAX_SIDECAR_BYTES))
    except (ArchiveError, MediaError):
        return None


class Progress:
    """Downloaded bytes over all items: a self-overwriting bar on a terminal, a line per
    finished download otherwise."""

    def __init__(self, stream: IO[str], total: int | None) -> None:
        self.stream, self.total = stream, total
        self.tty = stream.isatty()
        self.done: dict[str, int] = {}
        self.lock = threading.Lock()

    def update(self, key: str, done: int) -> None:
        with self.lock:
            self.done[key] = done
            if self.tty:
                got = sum(self.done.values())
                share = got / self.total if self.total else 0.0
                bar = "#" * int(share * 30)
                self.stream.write(f"\rdownloading [{bar:<30}] {got / 2**20:8.1f} MB"
                                  + (f" of {self.total / 2**20:.1f} MB" if self.total else ""))
                self.stream.flush()

    def finished(self, title: str) -> None:
        with self.lock:
            prefix = "\n" if self.tty else ""
            self.stream.write(f"{prefix}downloaded: {title}\n")
            self.stream.flush()


def _checked_chapters(data: bytes) -> bytes:
    sidecars.parse_chapters(data)
    return data


def _checked_transcript(data: bytes) -> bytes:
    transcripts.parse_transcript(data)
    return data


# A sidecar the old host got wrong is left out (with a note) rather than failing the episode.
VALIDATE = {"artwork": artwork.prepare_artwork, "chapters": _checked_chapters,
            "transcript": _checked_transcript}


@dataclass
class Fetched:
    """An item's files on local disk, ready for ingest."""

    recording: Path
    artwork: Path | None = None
    chapters: Path | None = None
    transcript: Path | None = None
    notes: list[str] = field(default_factory=list)


def fetch_item(item: Item, folder: Path, *, allow_private: bool, limit: int,
               progress: Progress) -> Fetched:
    """The recording (required) and its artwork, chapters and transcript (each optional: one
    that cannot be fetched is reported and left out, the episode still moves)."""
    key = hashlib.sha256(item.guid.encode()).hexdigest()[:20]
    suffix = Path(item.enclosure_url.split("?", 1)[0]).suffix[:6] or ".bin"
    recording = download(item.enclosure_url, folder / f"{key}{suffix}",
                         allow_private=allow_private, limit=limit,
                         progress=lambda done, _total: progress.update(key, done))
    fetched = Fetched(recording)
    sidecars = (("artwork", item.image_url, ".img"), ("chapters", item.chapters_url, ".json"),
                ("transcript", item.transcript_url, ".txt"))
    for name, url, extension in sidecars:
        if url:
            path = folder / f"{key}-{name}{extension}"
            try:
                if not path.exists():
                    data = fetch_bytes(url, allow_private=allow_private, limit=MAX_SIDECAR_BYTES)
                    path.write_bytes(VALIDATE[name](data))
            except (ArchiveError, MediaError) as error:
                fetched.notes.append(f"{name} left out: {getattr(error, 'message', error)}")
                continue
            setattr(fetched, name, path)
    progress.finished(item.title)
    return fetched


def _fit(text: str, limit: int) -> str:
    """Another host's text, cut to what our metadata allows (with a mark where it was cut)."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def metadata_for(item: Item, series: Series, fetched: Fetched) -> Metadata:
    return Metadata(
        title=_fit(item.title, MAX_TITLE),
        series=series.title,
        date=item.published_at.date().isoformat() if item.published_at else None,
        speakers=[_fit(s, MAX_NAME) for s in item.speakers[:MAX_SPEAKERS]],
        description=_fit(item.description, MAX_DESCRIPTION),
        language=_language(item.language),
        season=item.season,
        number=item.number,
        episode_type=item.episode_type,
        explicit=item.explicit,
        artwork=fetched.artwork,
        transcript=fetched.transcript,
        chapters=fetched.chapters,
        source_filename=Path(item.enclosure_url.split("?", 1)[0]).name[:255],
        guid=item.guid,
        published_at=item.published_at,
    )


def _language(value: str) -> str | None:
    value = value.strip().lower()
    return value if re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})?", value) else None


def work_folder(settings: Settings, source: str) -> Path:
    """Kept between runs (interrupted downloads resume from it); emptied item by item."""
    folder = Path(settings.data_dir) / "import" / hashlib.sha256(source.encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_import(settings: Settings, *, source: str, series: str | None, dry_run: bool,
               allow_private: bool, concurrency: int, out: IO[str], err: IO[str]) -> int:
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidInput(f"--concurrency must be from 1 to {MAX_CONCURRENCY}.")
    data, fetched_from = read_source(source, allow_private=allow_private)
    show = parse_feed(data)
    old_feed = fetched_from or show.self_url
    with open_archive(settings) as archive:
        known = {e.guid for e in archive.catalog.refresh().data.episodes.values()}
        work = plan(show, known, deleted_guids(archive))
        _print_plan(show, work, out, dry_run)
        if dry_run or not work.new:
            return 0
        target = ensure_series(archive, show, series, old_feed, allow_private=allow_private)
        failures = _import_items(archive, target, work.new, settings, source,
                                 allow_private=allow_private, concurrency=concurrency, out=out,
                                 err=err)
    print(f"{len(work.new) - failures} imported, {len(work.present)} already here, "
          f"{failures} failed.", file=out)
    if failures:
        print(f"archive: {failures} of {len(work.new)} items failed; run the same command "
              "again to retry them (finished downloads are kept).", file=err)
        return 1
    return 0


def _print_plan(show: Show, work: Plan, out: IO[str], dry_run: bool) -> None:
    print(f"Feed: {show.title} ({len(show.items)} items; podcast:guid "
          f"{show.podcast_guid or 'none'})", file=out)
    for item in work.new:
        when = item.published_at.date().isoformat() if item.published_at else "no date"
        print(f"{'would import' if dry_run else 'import'}: {when} {item.title} "
              f"[guid {item.guid}]", file=out)
    for item in work.present:
        print(f"already here: {item.title} [guid {item.guid}]", file=out)
    for item in work.deleted:
        print(f"deleted here, not imported again: {item.title} [guid {item.guid}]", file=out)
    for reason in show.skipped:
        print(f"skipped: {reason}", file=out)
    if dry_run:
        print(f"Dry run: {len(work.new)} would be imported, {len(work.present)} already here; "
              "nothing was changed.", file=out)


def _import_items(archive: Archive, series: Series, items: list[Item], settings: Settings,
                  source: str, *, allow_private: bool, concurrency: int, out: IO[str],
                  err: IO[str]) -> int:
    """Downloads run `concurrency` at a time, at most twice that many ahead of ingest (so a
    long back catalogue never fills the disk); each item is ingested, in feed order, as soon
    as its files are here. Returns how many failed. Interrupted, it leaves resumable parts."""
    folder = work_folder(settings, source)
    total = sum(i.enclosure_length or 0 for i in items) or None
    progress = Progress(err, total)
    failures = 0
    pool = ThreadPoolExecutor(concurrency, thread_name_prefix="import-download")
    waiting: deque[tuple[Item, Future[Fetched]]] = deque()
    queue = iter(items)
    try:
        while True:
            while len(waiting) < 2 * concurrency and (item := next(queue, None)) is not None:
                waiting.append((item, pool.submit(
                    fetch_item, item, folder, allow_private=allow_private,
                    limit=settings.max_upload_bytes, progress=progress)))
            if not waiting:
                return failures
            item, future = waiting.popleft()
            failures += _ingest_one(archive, series, item, future, out, err)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _ingest_one(archive: Archive, series: Series, item: Item, future: Future[Fetched],
                out: IO[str], err: IO[str]) -> int:
    try:
        fetched = future.result()
        episode = ingest(archive, fetched.recording, metadata_for(item, series, fetched))
    except Duplicate as error:
        print(f"already here (same recording): {item.title}: {error.message}", file=out)
        return 0
    except (ArchiveError, FetchError) as error:
        print(f"FAILED: {item.title}: {error.message}", file=err)
        return 1
    except OSError as error:
        print(f"FAILED: {item.title}: {error.strerror or error}", file=err)
        return 1
    _forget(fetched)
    print(f"imported: {episode.id} {episode.title} [guid {episode.guid}]", file=out)
    for note in fetched.notes:
        print(f"  note: {note}", file=out)
    return 0


def _forget(fetched: Fetched) -> None:
    for path in (fetched.recording, fetched.artwork, fetched.chapters, fetched.transcript):
        if path is not None:
            path.unlink(missing_ok=True)

