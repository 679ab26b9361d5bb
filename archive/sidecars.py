"""Artwork, transcripts and chapters: validated before anything is stored, then uploaded.

Shared by ingestion and by editing (replacing an episode's artwork, transcript or chapters).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from archive import artwork as web_artwork
from archive.errors import ArchiveError, Conflict, InvalidInput, TooManyRequests
from archive.models import Chapter, Episode, MediaFile, Series, clean_text
from media import artwork, chapters, transcripts
from media.errors import MediaError

if TYPE_CHECKING:
    from archive.catalog import Stage
    from archive.ingest import Metadata
    from archive.runtime import Archive

MAX_ARTWORK_BYTES = 40 * 1024 * 1024
MAX_TRANSCRIPT_BYTES = 20 * 1024 * 1024
MAX_CHAPTERS_BYTES = 2 * 1024 * 1024
BUSY_RETRY_AFTER_S = 30


@dataclass
class Prepared:
    """Sidecars that passed validation, ready to upload."""

    cover: bytes | None = None
    transcript: transcripts.Transcript | None = None
    transcript_source: bytes | None = None  # the SRT as uploaded, when it was SRT
    chapters: list[Chapter] = field(default_factory=list)


def _read(path: Path, what: str, limit: int) -> bytes:
    try:
        if path.stat().st_size > limit:
            raise InvalidInput(f"The {what} file is too large (at most {limit // 2**20} MB).")
        return path.read_bytes()
    except OSError as error:
        raise InvalidInput(f"Cannot read the {what} file {path.name}: {error.strerror}.") from None


def prepare(meta: Metadata) -> Prepared:
    """Validate the sidecars before anything is stored; artwork waits for a decoding slot."""
    prepared = Prepared()
    try:
        if meta.artwork:
            prepared.cover = artwork.prepare_artwork(
                _read(Path(meta.artwork), "artwork", MAX_ARTWORK_BYTES))
        if meta.transcript:
            prepare_transcript(prepared, _read(Path(meta.transcript), "transcript",
                                               MAX_TRANSCRIPT_BYTES))
        if meta.chapters:
            prepared.chapters = parse_chapters(_read(Path(meta.chapters), "chapters",
                                                     MAX_CHAPTERS_BYTES))
    except artwork.Busy as error:  # not the file's fault: the same upload works a bit later
        raise TooManyRequests(str(error), BUSY_RETRY_AFTER_S) from None
    except MediaError as error:
        raise InvalidInput(str(error)) from None
    return prepared


def prepare_transcript(prepared: Prepared, data: bytes) -> None:
    prepared.transcript = transcripts.parse_transcript(data)
    if prepared.transcript.format == "srt":
        prepared.transcript_source = data


def parse_chapters(data: bytes) -> list[Chapter]:
    marks = chapters.parse_chapters(data)
    return [
        Chapter(start=m.start, end=m.end, title=clean_text(m.title, "Chapter title", 300)
                or f"Part {n}", url=m.url if m.url.startswith(("https://", "http://")) else "")
        for n, m in enumerate(marks, start=1)
    ]


def upload(archive: Archive, stage: Stage, episode: Episode, prepared: Prepared
           ) -> dict[str, MediaFile]:
    """Store the sidecars under the episode's prefix; returns them by role."""
    files: dict[str, MediaFile] = {}
    if prepared.cover:
        name = f"cover-{hashlib.sha256(prepared.cover).hexdigest()[:12]}.jpg"
        files["cover"] = _put(archive, stage.key(name), name, prepared.cover, "image/jpeg")
    for role, (name, data, content_type) in transcript_files(prepared).items():
        files[role] = _put(archive, stage.key(name), name, data, content_type)
    if episode.chapters:
        files["chapters"] = _put(archive, stage.key("chapters.json"), "chapters.json",
                                 chapters_document(episode), "application/json+chapters")
    return files


def transcript_files(prepared: Prepared) -> dict[str, tuple[str, bytes, str]]:
    """A supplied transcript's stored forms by role: (filename, bytes, content type).

    WebVTT for players and pages, SubRip for apps that want it (the uploaded SRT itself when
    it was one, else made from the same cues) and the Podcasting 2.0 JSON, so a supplied
    transcript is served in every form an automatic one is."""
    if prepared.transcript is None:
        return {}
    cues = prepared.transcript
    forms = {
        "transcript": ("transcript.vtt", transcripts.to_vtt(cues).encode("utf-8"),
                       "text/vtt; charset=utf-8"),
        "transcript_json": ("transcript.json", transcripts.to_json(cues).encode("utf-8"),
                            "application/json"),
    }
    if prepared.transcript_source is not None:
        forms["transcript_source"] = ("transcript.srt", prepared.transcript_source,
                                      "application/x-subrip")
    else:
        forms["transcript_srt"] = ("transcript.srt", transcripts.to_srt(cues).encode("utf-8"),
                                   "application/x-subrip")
    return forms


TRANSCRIPT_ROLES = ("transcript", "transcript_json", "transcript_srt", "transcript_source")


def chapters_document(episode: Episode) -> bytes:
    marks = [chapters.ChapterMark(start=c.start, title=c.title, end=c.end, url=c.url)
             for c in episode.chapters]
    return chapters.chapters_json(marks, title=episode.title, duration=episode.duration)


def _put(archive: Archive, key: str, name: str, data: bytes, content_type: str) -> MediaFile:
    stored = archive.store.put_bytes(key, data, content_type)
    return MediaFile(key=key, filename=name, content_type=content_type, size=stored.size,
                     sha256=stored.sha256)


def forget_series_cover(archive: Archive, series: Series) -> None:
    """After a failed commit: remove the new series' cover unless the series exists after all
    (another upload created it meanwhile). Best effort; `verify --repair` finishes the job."""
    try:
        data = archive.catalog.refresh().data
        if series.cover and series.slug not in data.series:
            archive.store.delete(series.cover.key)
            web_artwork.forget(archive, series.cover, data)
    except ArchiveError:
        pass


def store_series_cover(archive: Archive, series: Series, image: bytes | None = None) -> None:
    """A new series gets its cover (generated when none is given): same rules as episode art."""
    data = image or artwork.generate_cover(series.title, archive.settings.site_title)
    name = f"cover-{hashlib.sha256(data).hexdigest()[:12]}.jpg"
    key = f"series/{series.slug}/{name}"
    try:
        stored = archive.store.put_bytes(key, data, "image/jpeg", if_none_match=True)
        sha256, size = stored.sha256, stored.size
    except Conflict:  # the same cover is already there (content-addressed name)
        sha256, size = hashlib.sha256(data).hexdigest(), len(data)
    series.cover = MediaFile(key=key, filename=name, content_type="image/jpeg", size=size,
                             sha256=sha256)
    # A new series is rare and its pages want the small renditions at once (archive/artwork.py);
    # should this fail, the `artwork` task makes them later.
    with contextlib.suppress(ArchiveError, MediaError):
        series.cover.renditions = web_artwork.make(archive, series.cover) or None
