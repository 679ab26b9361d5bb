"""Find out what a recording really is, from its content, and refuse what is not one.

PyAV (FFmpeg) is imported only here and in ``media.convert``, and only inside the functions
that open files: processes that import this module only to hand the work to a bounded child
(`media.isolation`, whose zygote preloads PyAV), such as web processes, never load FFmpeg.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from media.chapters import ChapterMark
from media.errors import InvalidRecording, MediaError

if TYPE_CHECKING:  # PyAV is imported where frames are decoded (see `probe`)
    import av

MIN_SECONDS = 0.5  # shorter than this is not a recording anyone meant to publish
VALIDATE_SECONDS = 10.0  # decode this much audio to prove the file is usable
DECODE_BUDGET_S = 15.0  # wall-clock limit for decoding while validating
SCAN_BUDGET_S = 30.0  # wall-clock limit for the packet scan that measures the duration
MAX_BAD_PACKET_RATIO = 0.2

_UNREADABLE = "This file is not a recording we can read"

# Content signatures of things people upload by mistake: (prefix, what it looks like).
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "an image"),
    (b"\xff\xd8\xff", "an image"),
    (b"GIF8", "an image"),
    (b"MThd", "a MIDI file, which holds notes rather than sound"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive or office document"),
)


@dataclass(frozen=True)
class Probe:
    kind: str  # mp3, m4a, wav, flac, ogg, opus, mp4, webm or other — from content
    container: str
    audio_codec: str
    duration: float
    bitrate: int | None
    sample_rate: int
    channels: int
    has_video: bool = False
    video_codec: str | None = None
    width: int | None = None
    height: int | None = None
    chapters: list[ChapterMark] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class _Scan:
    """What reading the audio packets told us."""

    packets: int = 0
    decode_attempts: int = 0
    bad_packets: int = 0
    decoded_samples: int = 0
    payload_bytes: int = 0
    first: float | None = None
    end: float = 0.0
    complete: bool = False

    @property
    def measured(self) -> float:
        return max(0.0, self.end - (self.first or 0.0))


def probe(path: str | Path, *, max_seconds: float | None = None) -> Probe:
    """Describe a recording; raise InvalidRecording with a readable sentence if it is not one.

    With `max_seconds`, reading stops as soon as the audio is known to be longer: the duration
    then says "longer than that", so the caller can refuse it without reading the rest.
    """
    import av.error
    path = Path(path)
    _sniff(path)
    try:
        container = av.open(str(path), metadata_errors="replace")
    except MemoryError:  # out of memory is not a damaged file
        raise
    except (av.error.FFmpegError, IndexError, ValueError):
        raise InvalidRecording(f"{_UNREADABLE} (it may be incomplete or damaged).") from None
    with container:
        try:
            return _describe(container, max_seconds)
        except MediaError:
            raise
        except MemoryError:  # out of memory is not a damaged file
            raise
        except (av.error.FFmpegError, ValueError, OSError):
            raise InvalidRecording(f"{_UNREADABLE} (it may be incomplete or damaged).") from None


def _sniff(path: Path) -> None:
    """Refuse obvious non-recordings before FFmpeg's lenient probing finds 'MP3 frames' in them."""
    with path.open("rb") as handle:
        head = handle.read(1024)
    if not head:
        raise InvalidRecording("The file is empty.")
    for prefix, looks_like in _SIGNATURES:
        if head.startswith(prefix):
            raise InvalidRecording(f"{_UNREADABLE} (it looks like {looks_like}).")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        raise InvalidRecording(f"{_UNREADABLE} (it looks like an image).")
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        raise InvalidRecording(f"{_UNREADABLE} (it looks like an HTML page).")
    if _is_text(head):
        raise InvalidRecording(f"{_UNREADABLE} (it looks like a text file).")


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character may be cut at the end of the sample.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() or ch in "\r\n\t\ufeff" for ch in text)


def _describe(container: av.container.InputContainer, max_seconds: float | None) -> Probe:
    audio = _audio_stream(container)
    context = audio.codec_context
    if not context.sample_rate or not context.channels:
        raise InvalidRecording("The recording's audio has no sample rate or channels.")
    scan = _scan(container, audio, max_seconds)
    _check_usable(scan, context.sample_rate)
    duration = _duration(container, audio, scan)
    video = _video_stream(container)
    return Probe(
        kind=_kind(container, audio, video),
        container=container.format.name,
        audio_codec=_codec_name(context),
        duration=duration,
        bitrate=_bitrate(container, audio, scan, duration),
        sample_rate=context.sample_rate,
        channels=context.channels,
        has_video=video is not None,
        video_codec=_codec_name(video.codec_context) if video else None,
        width=video.codec_context.width if video else None,
        height=video.codec_context.height if video else None,
        chapters=_chapters(container),
        tags=_tags(container, audio),
    )


def _audio_stream(container: av.container.InputContainer) -> Any:
    import av.error
    if not container.streams.audio:
        if not container.streams.video:
            raise InvalidRecording(f"{_UNREADABLE} (FFmpeg found no sound or picture in it).")
        raise InvalidRecording("The recording has no audio.")
    stream = container.streams.best("audio") or container.streams.audio[0]
    try:
        context = stream.codec_context  # raises (or is None) when FFmpeg has no decoder for it
    except MemoryError:  # out of memory is not a damaged file
        raise
    except (av.error.FFmpegError, ValueError):
        context = None
    if context is None:
        raise InvalidRecording("The recording uses an audio format we cannot decode.")
    return stream


def _video_stream(container: av.container.InputContainer) -> Any:
    """The real picture track, ignoring cover art that MP3/M4A files carry as a 'video' stream."""
    import av
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _codec_name(context: Any) -> str:
    codec = context.codec
    return getattr(codec, "canonical_name", None) or codec.name


def _scan(container: av.container.InputContainer, audio: Any, max_seconds: float | None
          ) -> _Scan:
    """Read every audio packet (to measure the duration) and decode the first seconds.

    The per-packet work is kept to integer arithmetic in the stream's time base: an hour of MP3
    is ~140,000 packets, and this loop is on every upload's critical path."""
    import av.error
    scan = _Scan()
    started = time.monotonic()
    decode_until = VALIDATE_SECONDS * audio.codec_context.sample_rate
    base = audio.time_base
    limit = None if max_seconds is None or not base else int(max_seconds / base) + 1
    first: int | None = None
    end = 0
    try:
        for packet in container.demux(audio):
            stamp = packet.pts
            if stamp is None:
                if packet.size == 0:
                    continue  # the flush packet at the end
                stamp = packet.dts
            scan.packets += 1
            scan.payload_bytes += packet.size
            if stamp is not None:
                first = stamp if first is None or stamp < first else first
                end = max(end, stamp + (packet.duration or 0))
            if scan.decoded_samples < decode_until and \
                    time.monotonic() - started < DECODE_BUDGET_S:
                _decode(scan, packet)
            if scan.packets % 1024 == 0 and time.monotonic() - started > SCAN_BUDGET_S:
                return _stamped(scan, first, end, base)
            if limit is not None and first is not None and end - first > limit:
                return _stamped(scan, first, end, base)  # too long already: refuse it
    except MemoryError:  # out of memory is not a damaged file
        raise
    except av.error.FFmpegError:
        pass  # a damaged tail: keep what was read; the checks below decide
    scan.complete = True
    return _stamped(scan, first, end, base)


def _stamped(scan: _Scan, first: int | None, end: int, base: Any) -> _Scan:
    if first is not None and base:
        scan.first, scan.end = float(first * base), float(end * base)
    return scan


def _decode(scan: _Scan, packet: Any) -> None:
    import av.error
    scan.decode_attempts += 1
    try:
        for frame in packet.decode():
            scan.decoded_samples += frame.samples
    except MemoryError:  # out of memory is not a damaged file
        raise
    except av.error.FFmpegError:
        scan.bad_packets += 1


def _check_usable(scan: _Scan, sample_rate: int) -> None:
    if scan.packets == 0:
        raise InvalidRecording("The recording has no audio.")
    decoded = scan.decoded_samples / sample_rate
    bad_ratio = scan.bad_packets / max(1, scan.decode_attempts)
    if decoded < MIN_SECONDS or bad_ratio > MAX_BAD_PACKET_RATIO:
        raise InvalidRecording(
            f"The recording is truncated or corrupt: only {decoded:.1f} s could be decoded."
        )


def _duration(container: av.container.InputContainer, audio: Any, scan: _Scan) -> float:
    """Prefer the header when the packets agree with it; VBR MP3s without a Xing header
    and truncated files do not, and then the measured length is the truth."""
    declared = _declared_duration(container, audio)
    if not scan.complete:  # what was read is there for sure, whatever the header says
        return max(declared or 0.0, scan.measured)
    if declared and abs(declared - scan.measured) <= max(0.5, 0.02 * declared):
        return declared
    return scan.measured


def _declared_duration(container: av.container.InputContainer, audio: Any) -> float | None:
    import av
    if audio.duration and audio.time_base:
        return float(audio.duration * audio.time_base)
    if container.duration:
        return container.duration / av.time_base
    return None


def _bitrate(
    container: av.container.InputContainer, audio: Any, scan: _Scan, duration: float
) -> int | None:
    if scan.complete and duration > 0:
        return round(scan.payload_bytes * 8 / duration)
    return audio.bit_rate or container.bit_rate or None


def _kind(container: av.container.InputContainer, audio: Any, video: Any) -> str:
    family = container.format.name.split(",")[0]
    codec = _codec_name(audio.codec_context)
    if family == "mov":
        return "mp4" if video is not None else "m4a"
    if family == "matroska":
        return "webm"
    if video is not None:
        return "other"
    if family == "ogg":
        return {"vorbis": "ogg", "opus": "opus"}.get(codec, "other")
    if family == "mp3":
        return "mp3" if codec == "mp3" else "other"
    return family if family in ("wav", "flac") else "other"


def _chapters(container: av.container.InputContainer) -> list[ChapterMark]:
    marks = []
    for chapter in container.chapters():
        base = chapter["time_base"]
        title = chapter.get("metadata", {}).get("title", "")
        marks.append(
            ChapterMark(
                start=float(chapter["start"] * base), title=title, end=float(chapter["end"] * base)
            )
        )
    return sorted(marks, key=lambda mark: mark.start)


def _tags(container: av.container.InputContainer, audio: Any) -> dict[str, str]:
    """Container metadata first; Ogg keeps its comments on the stream, so add those too."""
    tags = {key.lower(): str(value) for key, value in container.metadata.items()}
    for key, value in audio.metadata.items():
        tags.setdefault(key.lower(), str(value))
    return tags
