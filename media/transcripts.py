"""Transcripts: read WebVTT or SRT uploads, write WebVTT for players, plain text for search."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from media.errors import InvalidTranscript

_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s+.*)?$")
_TAG = re.compile(r"<[^>]*>")
_VTT_HEADER = re.compile(r"^WEBVTT(?:[ \t].*)?$")
_SKIPPED_VTT_BLOCKS = ("NOTE", "STYLE", "REGION")


@dataclass
class Cue:
    start: float
    end: float
    text: str


@dataclass
class Transcript:
    format: str  # "vtt" or "srt": what the upload was
    cues: list[Cue] = field(default_factory=list)


def parse_transcript(data: bytes) -> Transcript:
    """Detect WebVTT or SRT from the content (never the file name) and read its cues."""
    blocks = _blocks(_decode(data))
    if blocks and _VTT_HEADER.match(blocks[0][0]):
        transcript = Transcript("vtt", _vtt_cues(blocks[1:]))
    elif blocks and _looks_like_srt(blocks[0]):
        transcript = Transcript("srt", _srt_cues(blocks))
    else:
        raise InvalidTranscript("The transcript is neither WebVTT nor SRT.")
    if not transcript.cues:
        raise InvalidTranscript("The transcript has no cues.")
    return transcript


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidTranscript(
            "The transcript must be saved as UTF-8 text; please re-save it as UTF-8."
        ) from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _blocks(text: str) -> list[list[str]]:
    """Split on blank lines into blocks of non-empty lines."""
    chunks = re.split(r"\n[ \t]*\n", text.strip("\n"))
    return [lines for chunk in chunks if (lines := [ln.rstrip() for ln in chunk.split("\n")])]


def _vtt_cues(blocks: list[list[str]]) -> list[Cue]:
    cues = []
    for block in blocks:
        if block[0].split(" ")[0].split("\t")[0] in _SKIPPED_VTT_BLOCKS:
            continue
        timing_at = 0 if "-->" in block[0] else 1
        if timing_at >= len(block) or "-->" not in block[timing_at]:
            raise InvalidTranscript(f"This WebVTT block has no cue timing: {block[0][:60]!r}.")
        cues.append(_cue(block[timing_at], block[timing_at + 1 :]))
    return cues


def _looks_like_srt(block: list[str]) -> bool:
    return len(block) >= 2 and block[0].strip().isdigit() and "-->" in block[1]


def _srt_cues(blocks: list[list[str]]) -> list[Cue]:
    cues = []
    for block in blocks:
        timing_at = 1 if block[0].strip().isdigit() else 0
        if timing_at >= len(block) or "-->" not in block[timing_at]:
            raise InvalidTranscript(f"This SRT block has no cue timing: {block[0][:60]!r}.")
        cues.append(_cue(block[timing_at], block[timing_at + 1 :]))
    return cues


def _cue(timing: str, lines: list[str]) -> Cue:
    match = _TIMING.match(timing)
    if not match:
        raise InvalidTranscript(f"This cue timing cannot be read: {timing.strip()[:60]!r}.")
    start, end = _seconds(*match.groups()[:4]), _seconds(*match.groups()[4:])
    if end < start:
        raise InvalidTranscript(f"A cue ends before it starts: {timing.strip()[:60]!r}.")
    text = "\n".join(html.unescape(_TAG.sub("", line)).strip() for line in lines)
    return Cue(start, end, text.strip())


def _seconds(hours: str | None, minutes: str, seconds: str, fraction: str) -> float:
    if hours and len(hours) > 4:  # no recording lasts 10,000 hours; huge numbers overflow
        raise InvalidTranscript(f"A cue time of {hours[:8]}… hours is not plausible.")
    whole = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    return whole + int(fraction.ljust(3, "0")) / 1000


def to_vtt(transcript: Transcript) -> str:
    """Valid WebVTT: text escaped, no blank lines or arrows inside a cue."""
    parts = ["WEBVTT", ""]
    for cue in transcript.cues:
        parts.append(f"{_timestamp(cue.start)} --> {_timestamp(cue.end)}")
        parts.extend(_vtt_text_lines(cue.text))
        parts.append("")
    return "\n".join(parts)


def _vtt_text_lines(text: str) -> list[str]:
    escaped = html.escape(text, quote=False)  # so "-->" cannot appear in a payload
    return [line for line in escaped.split("\n") if line.strip()]


def _timestamp(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    return f"{hours:02d}:{minutes:02d}:{millis // 1000:02d}.{millis % 1000:03d}"


def plain_text(transcript: Transcript) -> str:
    """The words only, one cue per line, for search and the accessible text view."""
    return "\n".join(cue.text for cue in transcript.cues if cue.text)
