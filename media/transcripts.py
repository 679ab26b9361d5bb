"""Transcripts: read WebVTT or SRT uploads; write WebVTT for players, SRT and Podcasting 2.0
JSON for apps, plain text for search. Speakers travel as WebVTT voice spans (``<v Name>``).

Reading stays our own strict block scanner, so a bad upload is refused with a sentence that
says what is wrong (webvtt-py silently skips such blocks); the cue payload (voice span, tags)
and all writing go through webvtt-py.
"""

from __future__ import annotations

import html
import io
import json
import re
from dataclasses import dataclass, field

import webvtt
from webvtt.models import Timestamp

from media.errors import InvalidTranscript

_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}(?:\s+.*)?$")
_VTT_HEADER = re.compile(r"^WEBVTT(?:[ \t].*)?$")
_SKIPPED_VTT_BLOCKS = ("NOTE", "STYLE", "REGION")
JSON_VERSION = "1.0.0"  # Podcasting 2.0 transcripts


@dataclass
class Word:
    """One recognised word and when it was said (seconds into the recording)."""

    start: float
    end: float
    text: str
    probability: float = 1.0


@dataclass
class Cue:
    start: float
    end: float
    text: str
    speaker: str | None = None  # a WebVTT voice span; editors set it
    words: list[Word] = field(default_factory=list)  # only for recognised transcripts


@dataclass
class Transcript:
    format: str  # "vtt" or "srt": what the upload was; "asr" when recognised from the audio
    cues: list[Cue] = field(default_factory=list)
    language: str | None = None  # what the recogniser used or detected


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
    payload = webvtt.Caption(text=lines)
    text = "\n".join(html.unescape(line).strip() for line in payload.text.split("\n"))
    return Cue(start, end, text.strip(), _speaker(payload.voice and html.unescape(payload.voice)))


def _seconds(hours: str | None, minutes: str, seconds: str, fraction: str) -> float:
    if hours and len(hours) > 4:  # no recording lasts 10,000 hours; huge numbers overflow
        raise InvalidTranscript(f"A cue time of {hours[:8]}… hours is not plausible.")
    whole = int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)
    return whole + int(fraction.ljust(3, "0")) / 1000


def to_vtt(transcript: Transcript) -> str:
    """Valid WebVTT: text escaped, no blank lines or arrows inside a cue, speakers as ``<v>``."""
    captions = [_caption(cue, _vtt_lines(cue)) for cue in transcript.cues]
    return webvtt.WebVTT(captions=captions).content


def to_srt(transcript: Transcript) -> str:
    """SubRip, as Podcasting 2.0 asks: a speaker's name and a colon where the speaker changes."""
    captions, speaker = [], None
    for cue in transcript.cues:
        lines = [line.replace("-->", "->") for line in _text_lines(cue.text)]  # SRT cannot escape
        named = _speaker(cue.speaker)
        if named and named != speaker:
            lines = [f"{named}: {lines[0]}" if lines else f"{named}:", *lines[1:]]
        speaker = named
        captions.append(_caption(cue, lines))
    out = io.StringIO()
    webvtt.WebVTT(captions=captions).write(out, format="srt")
    return out.getvalue() + "\n"


def to_json(transcript: Transcript) -> str:
    """The Podcasting 2.0 JSON transcript: one segment per cue, with its speaker when known."""
    segments = []
    for cue in transcript.cues:
        segment: dict[str, object] = {"startTime": round(cue.start, 3),
                                      "endTime": round(cue.end, 3),
                                      "body": " ".join(_text_lines(cue.text))}
        if speaker := _speaker(cue.speaker):
            segment["speaker"] = speaker
        segments.append(segment)
    return json.dumps({"version": JSON_VERSION, "segments": segments}, ensure_ascii=False)


def _caption(cue: Cue, lines: list[str]) -> webvtt.Caption:
    caption = webvtt.Caption(text=lines)
    caption.start_time = Timestamp.from_seconds(max(0.0, cue.start))
    caption.end_time = Timestamp.from_seconds(max(0.0, cue.start, cue.end))
    return caption


def _vtt_lines(cue: Cue) -> list[str]:
    lines = [html.escape(line, quote=False) for line in _text_lines(cue.text)]
    if speaker := _speaker(cue.speaker):  # the span runs to the end of the cue
        lines = [f"<v {html.escape(speaker, quote=False)}>{lines[0] if lines else ''}",
                 *lines[1:]]
    return lines


def _text_lines(text: str) -> list[str]:
    """The non-blank lines: a blank line would end a cue, and "-->" is escaped by the caller."""
    return [line.strip() for line in re.split(r"\r\n|\r|\n", text) if line.strip()]


def _speaker(name: str | None) -> str | None:
    """One line of name, or None: a voice annotation cannot span lines."""
    return " ".join(name.split()) or None if name else None


def plain_text(transcript: Transcript) -> str:
    """The words only, one cue per line, for search and the accessible text view."""
    return "\n".join(cue.text for cue in transcript.cues if cue.text)
