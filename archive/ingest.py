"""The ingestion pipeline: validate → hash → probe → convert → tag → upload → commit.

Everything that can be refused is refused before anything is stored; everything stored goes
under the new episode's prefix through a `Stage`, which removes it again unless the final
catalogue commit succeeds. The SHA-256 of the original makes ingest idempotent.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from archive import enrich, sidecars
from archive.catalog import Stage
from archive.errors import ArchiveError, Duplicate, InvalidInput, InvalidRecording, PayloadTooLarge
from archive.models import (
    MAX_TITLE,
    Chapter,
    Episode,
    Loudness,
    MediaFile,
    Person,
    Provenance,
    Series,
    clean_text,
    slugify,
)
from archive.runtime import Archive
from archive.tasks import URGENT
from feeds import podcast_guid
from media import convert, isolation, tags
from media.chapters import ChapterMark
from media.errors import MediaError
from media.isolation import Limits
from media.probe import Probe, probe

Progress = Callable[[str, float], None]
T = TypeVar("T")
log = logging.getLogger("archive.ingest")

# What we store a recording as, by the kind `media.probe` read from its content.
KIND_FILES = {
    "mp3": ("mp3", "audio/mpeg"),
    "m4a": ("m4a", "audio/mp4"),
    "wav": ("wav", "audio/wav"),
    "flac": ("flac", "audio/flac"),
    "ogg": ("ogg", "audio/ogg"),
    "opus": ("opus", "audio/ogg"),
    "mp4": ("mp4", "video/mp4"),
    "webm": ("webm", "video/webm"),
    "other": ("bin", "application/octet-stream"),
}
HASH_CHUNK = 1024 * 1024

# Everything that decodes or parses the uploaded bytes runs in a bounded child process
# (`media.isolation`): FFmpeg and mutagen on hostile input may loop, balloon or crash.
_MiB = 1024 * 1024
PROBE_LIMITS = Limits(cpu_seconds=60, wall_seconds=120, memory_bytes=1024 * _MiB)
TAG_LIMITS = Limits(cpu_seconds=30, wall_seconds=60, memory_bytes=1024 * _MiB)
CONVERSION_MEMORY = 1024 * _MiB  # streaming: an hour of audio needs ~100 MB
# Encoding (with its loudness measurement) takes ~0.06 CPU s per second of audio on the bench
# machine, normalised or not; the limits leave a fourfold margin and only stop runaway work.
CONVERSION_CPU_BASE_S = 120.0
CONVERSION_CPU_PER_AUDIO_S = 0.25


@dataclass
class Metadata:
    """What a person says about a recording (CLI options, upload form fields, API fields)."""

    title: str = ""
    series: str = ""
    date: str | None = None
    speakers: list[str] = field(default_factory=list)  # "Name;role;affiliation"
    description: str = ""
    tags: list[str] = field(default_factory=list)
    licence: str | None = None
    event: str = ""
    location: str = ""
    language: str | None = None
    season: int | None = None
    number: int | None = None
    episode_type: str = "full"
    explicit: bool = False
    draft: bool = False
    artwork: Path | None = None
    transcript: Path | None = None
    chapters: Path | None = None
    source_filename: str = ""
    # Kept from another host's feed (`archive import --feed`), so apps do not see old
    # episodes as new: the item's guid and its original publication time.
    guid: str = ""
    published_at: datetime | None = None


def _silent(stage: str, fraction: float) -> None:
    pass


def ingest(archive: Archive, path: Path, meta: Metadata, *,
           progress: Progress | None = None) -> Episode:
    """Publish one recording (or save it as a draft); returns the committed episode."""
    report = progress or _silent
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path.name or path} is not a file.")
    if path.stat().st_size == 0:
        raise InvalidRecording("The file is empty.")
    _check_metadata(archive, meta)  # cheap refusals first: before hashing or decoding anything
    prepared = sidecars.prepare(meta)
    view = archive.catalog.refresh()
    series = resolve_series(view.data.series, meta.series, archive)
    sha256 = _hash(path, report)
    existing = view.data.find_original(sha256)
    if existing is not None:
        raise Duplicate(f"This recording is already in the archive as {existing.title!r} "
                        f"({existing.id}).", existing.id)
    report("probing", 0.0)
    found = _probe(path, archive.settings.max_duration_h * 3600)
    existing_tags = _read_tags(path)
    episode = _new_episode(archive, meta, found, existing_tags, sha256, prepared, view.data)
    delivery_estimate = path.stat().st_size if not convert.needs_encoding(found) \
        else int(found.duration * 16_000)
    uploads = _UploadProgress(path.stat().st_size + delivery_estimate, report)
    with tempfile.TemporaryDirectory(prefix="archive-ingest-") as work, \
            archive.catalog.stage(episode.id) as stage, ThreadPoolExecutor(1) as pool:
        # The original goes up while the delivery file is made: two cores, half the wait.
        storing = pool.submit(_store_original, archive, stage, episode, path, found, sha256,
                              uploads)
        delivery, kind = _make_delivery(archive, path, found, episode, Path(work), report)
        report("tagging", 0.0)
        tag_delivery(delivery, kind, episode, archive, prepared.cover, series)
        storing.result()
        _store_delivery(archive, stage, episode, delivery, kind, found, prepared, uploads)
        report("committing", 0.0)
        episode.pending = enrich.wanted(episode, archive.settings.transcribe_model)
        new_series = series if series.slug not in view.data.series else None
        if new_series is not None:
            sidecars.store_series_cover(archive, new_series)
        try:
            committed = stage.commit(episode, new_series)
        except BaseException:
            if new_series is not None:
                sidecars.forget_series_cover(archive, new_series)
            raise
    request_enrichment(archive, committed)
    report("done", 1.0)
    return committed


def request_enrichment(archive: Archive, episode: Episode) -> None:
    """Queue what comes after publishing (loudness, waveform, transcript) ahead of the backlog.
    The episode is published either way: a queue that cannot be written is logged, and
    `archive enrich --missing` queues what is still pending."""
    if not episode.pending:
        return
    try:
        enrich.request(enrich.task_queue(archive), episode.id, episode.pending, priority=URGENT)
    except ArchiveError as error:
        log.warning("enrichment of %s not queued (run `archive enrich --missing`): %s",
                    episode.id, error.message)


def _check_metadata(archive: Archive, meta: Metadata) -> None:
    """Validate what the person typed; fields they left out may still come from the file."""
    Episode.new(
        title=meta.title or "untitled", series=meta.series, date=meta.date,
        speakers=[Person.parse(spec) for spec in meta.speakers], description=meta.description,
        tags=meta.tags, licence=meta.licence, event=meta.event, location=meta.location or None,
        language=meta.language or archive.settings.language, season=meta.season,
        number=meta.number, episode_type=meta.episode_type or "full",
    )
    clean_text(meta.series, "Series", MAX_TITLE, required=True)


def resolve_series(known: dict[str, Series], name: str, archive: Archive) -> Series:
    """An existing series by slug or title, or a new one (stored at commit)."""
    title = clean_text(name, "Series", MAX_TITLE, required=True)
    slug = slugify(title, "series")
    if slug in known:
        return known[slug]
    series = Series.new(title)
    feed_url = f"{archive.settings.base_url}/series/{series.slug}/feed.xml"
    series.podcast_guid = podcast_guid(feed_url)
    return series


def _hash(path: Path, report: Progress) -> str:
    digest = hashlib.sha256()
    total = max(path.stat().st_size, 1)
    done = 0
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            report("hashing", done / total)
    return digest.hexdigest()


def _probe(path: Path, max_seconds: float) -> Probe:
    """What the recording is, refused if it is not one we accept or is longer than allowed."""
    found = _isolated(probe, path, max_seconds=max_seconds, limits=PROBE_LIMITS,
                      label="reading the recording")
    if found.kind == "other":
        raise InvalidRecording(
            f"This recording's format ({found.container}/{found.audio_codec}) is not one we "
            "accept: use MP3, M4A, WAV, FLAC, OGG, Opus or MP4."
        )
    if found.duration > max_seconds:
        raise PayloadTooLarge(f"This recording lasts {_length(found.duration)}; recordings may "
                              f"last at most {_length(max_seconds)} here.")
    return found


def _length(seconds: float) -> str:
    """'3 h 05 min', '2 min 30 s', '45 s': how long, for people."""
    whole = round(seconds)
    hours, minutes, rest = whole // 3600, whole % 3600 // 60, whole % 60
    if hours:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    return f"{rest} s"


def _isolated(function: Callable[..., T], *args: Any, limits: Limits, label: str,
              **kwargs: Any) -> T:
    """Work on the uploaded bytes in a bounded child. Whatever goes wrong there is a refusal of
    the recording (the decoder libraries trip on hostile bytes), never a 500."""
    try:
        return isolation.run(function, *args, limits=limits, label=label, **kwargs)
    except MediaError as error:
        raise InvalidRecording(str(error)) from None
    except Exception:
        log.exception("%s failed unexpectedly", label)
        raise InvalidRecording(f"This file is not a recording we can read ({label} failed; it "
                               "may be damaged).") from None


def _read_tags(path: Path) -> tags.TagData:
    return _isolated(tags.read_tags, path, limits=TAG_LIMITS, label="reading its tags")


def conversion_limits(duration: float) -> Limits:
    """Bounds for encoding or measuring `duration` seconds of audio."""
    cpu = CONVERSION_CPU_BASE_S + CONVERSION_CPU_PER_AUDIO_S * duration
    # Wall clock: room for a machine busy with other jobs.
    return Limits(cpu_seconds=cpu, wall_seconds=3 * cpu, memory_bytes=CONVERSION_MEMORY)


def _new_episode(archive: Archive, meta: Metadata, found: Probe, existing: tags.TagData,
                 sha256: str, prepared: sidecars.Prepared, data: object) -> Episode:
    """Validate the metadata into an Episode; fields left out are prefilled from the file's tags."""
    speakers = [Person.parse(spec) for spec in meta.speakers]
    if not speakers and existing.artists:
        speakers = [Person(name=clean_text(a, "Speaker", 200)) for a in existing.artists if a]
    chapters = prepared.chapters or [
        Chapter(start=c.start, title=c.title or f"Part {n}", end=c.end)
        for n, c in enumerate(found.chapters or existing.chapters, start=1)
    ]
    episode = Episode.new(
        title=meta.title or existing.title,
        series=slugify(meta.series, "series"),
        date=meta.date or _tag_date(existing.date),
        description=meta.description or existing.description,
        speakers=speakers,
        tags=meta.tags,
        licence=meta.licence if meta.licence is not None else archive.settings.licence,
        event=meta.event,
        location=meta.location or None,
        language=meta.language or archive.settings.language,
        season=meta.season,
        number=meta.number,
        episode_type=meta.episode_type or "full",
        explicit=meta.explicit,
        draft=meta.draft,
        chapters=chapters,
        original_sha256=sha256,
        source_filename=clean_text(meta.source_filename, "File name", 255)[:255],
        # An explicit language is the transcript's too (the recogniser is told it); otherwise
        # a supplied transcript is taken to be in the site's, and a recognised one's is detected.
        transcript_language=meta.language or (archive.settings.language
                                              if prepared.transcript else ""),
        **({"guid": meta.guid} if meta.guid else {}),
        **({"published_at": meta.published_at} if meta.published_at else {}),
    )
    episode.slug = data.unique_slug(episode.slug, episode.id)  # type: ignore[attr-defined]
    if prepared.transcript:
        episode.transcript_provenance = Provenance("supplied")
    return episode


def _tag_date(value: str) -> str | None:
    """A full date from a file's tags, or nothing (a bare year is not a date we can publish)."""
    return value if len(value) == 10 else None


def _make_delivery(archive: Archive, path: Path, found: Probe, episode: Episode, work: Path,
                   report: Progress) -> tuple[Path, str]:
    """The file podcast apps download: the original when it is already MP3/AAC, else an MP3."""
    settings = archive.settings
    limits = conversion_limits(found.duration)
    if convert.needs_encoding(found):
        target = work / f"{episode.slug}.mp3"
        result = _isolated(
            convert.encode_mp3, path, target, bitrate=settings.mp3_bitrate,
            normalise=settings.normalise, limits=limits, label="converting the recording",
            progress=lambda fraction: report("converting", fraction),
        )
        episode.loudness = Loudness(result.loudness.integrated_lufs,
                                    result.loudness.true_peak_dbtp, settings.normalise)
        return target, "mp3"
    extension = KIND_FILES[found.kind][0]
    target = work / f"{episode.slug}.{extension}"
    # Kept as uploaded: its loudness is measured after publishing (an enrichment task), so
    # the uploader waits only for the upload itself.
    shutil.copyfile(path, target)
    return target, "mp3" if found.kind == "mp3" else "m4a"


def tag_delivery(delivery: Path, kind: str, episode: Episode, archive: Archive,
                 cover: bytes | None, series: Series) -> None:
    """Write ID3v2.4 / MP4 tags so a downloaded file describes itself (ingest and edits)."""
    licence = episode.licence or ""
    data = tags.TagData(
        title=episode.title,
        artists=[p.name for p in episode.speakers],
        album=series.title,
        date=episode.date.isoformat() if episode.date else str(episode.published_at.year),
        description=episode.description,
        copyright=f"{episode.year} {archive.settings.owner_name}. Licence: {licence}".strip(),
        url=f"{archive.settings.base_url}/episodes/{episode.slug}",
        guid=episode.guid,
        language=episode.language,
        cover_jpeg=cover,
        chapters=[ChapterMark(start=c.start, title=c.title, end=c.end) for c in episode.chapters],
    )
    # A kept MP3/M4A is the uploader's file: its old tags are parsed while rewriting them.
    _isolated(tags.write_tags, delivery, kind, data, limits=TAG_LIMITS,
              label="tagging the recording")


class _UploadProgress:
    """One "uploading" fraction over every file sent, from whichever thread sends it."""

    def __init__(self, expected: int, report: Progress) -> None:
        self.expected, self.sent, self.report = max(expected, 1), 0, report
        self.lock = threading.Lock()

    def __call__(self, count: int) -> None:
        with self.lock:
            self.sent += count
            self.report("uploading", min(self.sent / self.expected, 1.0))


def _store_original(archive: Archive, stage: Stage, episode: Episode, original: Path,
                    found: Probe, sha256: str, progress: Callable[[int], None]) -> None:
    """The upload exactly as received (the archival master), and the video it may be."""
    extension, content_type = KIND_FILES[found.kind]
    stored = _upload(archive, stage, f"original.{extension}", original, content_type, progress)
    if stored.sha256 != sha256:
        raise InvalidInput("The file changed while it was being stored; try again.")
    stored.duration = round(found.duration, 3)
    stored.bitrate = found.bitrate
    episode.files["original"] = stored
    if found.has_video:
        video = MediaFile.from_dict(stored.to_dict())
        video.width, video.height = found.width, found.height
        episode.files["video"] = video


def _store_delivery(archive: Archive, stage: Stage, episode: Episode, delivery: Path, kind: str,
                    found: Probe, prepared: sidecars.Prepared,
                    progress: Callable[[int], None]) -> None:
    """The tagged file podcast apps download, then the sidecars."""
    delivery_type = "audio/mpeg" if kind == "mp3" else "audio/mp4"
    audio = _upload(archive, stage, delivery.name, delivery, delivery_type, progress)
    encoded = convert.needs_encoding(found)
    audio.duration = _delivery_duration(delivery, found) if encoded else round(found.duration, 3)
    audio.bitrate = None if encoded else found.bitrate
    episode.files["audio"] = audio
    episode.files.update(sidecars.upload(archive, stage, episode, prepared))


def _upload(archive: Archive, stage: Stage, name: str, path: Path, content_type: str,
            progress: Callable[[int], None]) -> MediaFile:
    stored = archive.store.upload_file(stage.key(name), path, content_type, progress=progress)
    return MediaFile(key=stored.key, filename=name, content_type=content_type, size=stored.size,
                     sha256=stored.sha256)


def _delivery_duration(delivery: Path, found: Probe) -> float:
    """The duration podcast apps will see, measured on the MP3 we encoded (a kept file's audio
    is the original's, already measured)."""
    try:
        measured = isolation.run(probe, delivery, limits=PROBE_LIMITS,
                                 label="reading the converted file")
        return round(measured.duration, 3)
    except MediaError:
        return round(found.duration, 3)
