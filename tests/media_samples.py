"""Generate small real recordings and bad inputs for tests (no committed binaries).

Everything is made with PyAV in the test session. The lead's ingest tests reuse these:

- ``make_recording(path, fmt, seconds=..., sample_rate=..., channels=...)`` for every ``FORMATS``
- ``make_vbr_mp3_without_xing(path)``, ``make_id3v22_mp3(path)``, ``make_id3v23_mp3(path)``,
  ``make_apev2_mp3(path)`` for odd but valid MP3s
- ``write_random_bytes``, ``write_html``, ``write_empty``, ``write_png``, ``write_midi``,
  ``write_text``, ``truncate_copy`` for inputs that must be refused
"""

from __future__ import annotations

import io
import math
import random
import shutil
import struct
from array import array
from pathlib import Path

import av

# fmt -> (container format, audio codec, default file suffix)
FORMATS: dict[str, tuple[str, str, str]] = {
    "mp3": ("mp3", "libmp3lame", ".mp3"),
    "m4a": ("mp4", "aac", ".m4a"),
    "m4a-alac": ("mp4", "alac", ".m4a"),
    "wav": ("wav", "pcm_s16le", ".wav"),
    "wav24": ("wav", "pcm_s24le", ".wav"),
    "flac": ("flac", "flac", ".flac"),
    "ogg": ("ogg", "vorbis", ".ogg"),
    "opus": ("ogg", "libopus", ".opus"),
    "mp4": ("mp4", "aac", ".mp4"),  # plus an H.264 video stream
}
_LAYOUTS = {1: "mono", 2: "stereo", 4: "quad", 6: "5.1"}
_BLOCK = 1024


def make_recording(
    path: str | Path,
    fmt: str,
    seconds: float = 3.0,
    sample_rate: int = 44100,
    channels: int = 2,
    *,
    level_db: float = -20.0,
    frequency: float = 440.0,
    noise_db: float | None = None,
    clicks_db: float | None = None,
    bitrate: int | None = None,
) -> Path:
    """Write a sine (peak ``level_db`` dBFS), optionally plus white noise and a one-sample
    click every half second (to make a limiter work), as ``fmt``."""
    path = Path(path)
    container_format, codec, _ = FORMATS[fmt]
    if codec == "libopus":
        sample_rate = 48000
    options = {"strict": "experimental"} if codec == "vorbis" else {}
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=sample_rate, layout=_LAYOUTS[channels])
        stream.options = options
        if bitrate:
            stream.bit_rate = bitrate
        video = _add_video(out) if fmt == "mp4" else None
        frames = _tone_frames(seconds, sample_rate, channels, level_db, frequency, noise_db)
        if clicks_db is not None:
            frames = _with_clicks(frames, sample_rate, channels, clicks_db)
        _write(out, stream, frames, video, seconds)
    return path


def _add_video(out: av.container.OutputContainer) -> av.video.stream.VideoStream:
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    video = out.add_stream(codec, rate=10)
    video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
    return video


def _tone_frames(
    seconds: float,
    sample_rate: int,
    channels: int,
    level_db: float,
    frequency: float,
    noise_db: float | None,
):
    """Packed float frames; a seeded RNG keeps the files deterministic."""
    rng = random.Random(1)
    amplitude = 10 ** (level_db / 20)
    noise = 10 ** (noise_db / 20) if noise_db is not None else 0.0
    total = round(seconds * sample_rate)
    step = 2 * math.pi * frequency / sample_rate
    for offset in range(0, total, _BLOCK):
        count = min(_BLOCK, total - offset)
        samples = array("f")
        for i in range(offset, offset + count):
            value = amplitude * math.sin(step * i)
            for _ in range(channels):
                samples.append(value + (rng.uniform(-noise, noise) if noise else 0.0))
        frame = av.AudioFrame(format="flt", layout=_LAYOUTS[channels], samples=count)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate, frame.pts = sample_rate, offset
        yield frame


def _with_clicks(frames, sample_rate: int, channels: int, clicks_db: float):
    every, click = sample_rate // 2, 10 ** (clicks_db / 20)
    for frame in frames:
        samples = array("f", bytes(frame.planes[0])[: frame.samples * channels * 4])
        for i in range(frame.samples):
            if (frame.pts + i) % every == every // 2:
                samples[i * channels : (i + 1) * channels] = array("f", [click] * channels)
        frame.planes[0].update(samples.tobytes())
        yield frame


def make_video_without_audio(path: str | Path, seconds: float = 2.0) -> Path:
    """An MP4 with only a picture track."""
    path = Path(path)
    with av.open(str(path), "w", format="mp4") as out:
        _write(out, None, [], _add_video(out), seconds)
    return path


def _write(out, stream, frames, video, seconds: float) -> None:
    if stream is not None:
        for frame in frames:
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    if video is not None:
        for index in range(round(seconds * 10)):
            picture = av.VideoFrame(video.width, video.height, "yuv420p")
            for plane, shade in zip(picture.planes, (16 + 8 * index, 128, 128), strict=True):
                plane.update(bytes([shade % 256]) * plane.buffer_size)
            picture.pts = index
            out.mux(video.encode(picture))
        out.mux(video.encode(None))


def make_vbr_mp3_without_xing(path: str | Path, seconds: float = 3.0) -> Path:
    """A VBR MP3 with no Xing/Info header: silence then noise, so the header-less
    duration estimate (from the first frame's bitrate) is badly wrong."""
    path = Path(path)
    with av.open(str(path), "w", format="mp3", options={"write_xing": "0"}) as out:
        stream = out.add_stream("libmp3lame", rate=44100, layout="stereo")
        stream.options = {"flags": "+qscale", "global_quality": str(2 * 118)}
        quiet = round(seconds / 3 * 44100)
        for frame in _tone_frames(seconds, 44100, 2, -200.0, 440.0, -3.0):
            if frame.pts < quiet:  # make the first third digital silence
                frame.planes[0].update(bytes(frame.planes[0].buffer_size))
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def make_id3v23_mp3(path: str | Path, title: str = "Old tag") -> Path:
    """An MP3 whose tag was written as ID3v2.3 (with a TYER year, as old tools do)."""
    from mutagen.id3 import ID3, TIT2, TPE1, TYER

    path = make_recording(path, "mp3", seconds=2.0)
    tags = ID3()
    tags.add(TIT2(encoding=1, text=[title]))
    tags.add(TPE1(encoding=1, text=["Ada Lovelace"]))
    tags.add(TYER(encoding=1, text=["1999"]))
    tags.save(path, v2_version=3)
    return path


def make_id3v22_mp3(path: str | Path, title: str = "Ancient tag") -> Path:
    """An MP3 with a hand-built ID3v2.2 tag (3-letter frame ids), which mutagen cannot write."""
    path = make_recording(path, "mp3", seconds=2.0)
    frames = _v22_frame(b"TT2", title) + _v22_frame(b"TP1", "Grace Hopper")
    header = b"ID3\x02\x00\x00" + _syncsafe(len(frames))
    path.write_bytes(header + frames + path.read_bytes())
    return path


def _v22_frame(frame_id: bytes, text: str) -> bytes:
    body = b"\x00" + text.encode("latin-1")
    return frame_id + struct.pack(">I", len(body))[1:] + body


def _syncsafe(size: int) -> bytes:
    return bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))


def make_apev2_mp3(path: str | Path, title: str = "APE title") -> Path:
    """An MP3 carrying an APEv2 tag at its end (and an ID3v1 tag after it)."""
    from mutagen.apev2 import APEv2

    path = make_recording(path, "mp3", seconds=2.0)
    ape = APEv2()
    ape["Title"] = title
    ape["Artist"] = "APE Artist"
    ape.save(path)
    with path.open("ab") as handle:
        handle.write(b"TAG" + title.encode().ljust(30, b"\0") + bytes(95))
    return path


# --- inputs that must be refused -------------------------------------------------------------


def write_random_bytes(path: str | Path, size: int = 64 * 1024, seed: int = 7) -> Path:
    path = Path(path)
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def write_html(path: str | Path) -> Path:
    """What a browser saves when a download link pointed at a login page."""
    path = Path(path)
    body = "<p>Please sign in to continue.</p>\n" * 200
    path.write_text(f"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>{body}")
    return path


def write_text(path: str | Path) -> Path:
    path = Path(path)
    path.write_text("These are my notes for the episode.\n" * 100)
    return path


def write_empty(path: str | Path) -> Path:
    path = Path(path)
    path.write_bytes(b"")
    return path


def write_png(path: str | Path, size: tuple[int, int] = (64, 64)) -> Path:
    from PIL import Image

    path = Path(path)
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, "PNG")
    path.write_bytes(buffer.getvalue())
    return path


def write_midi(path: str | Path) -> Path:
    """A tiny valid Standard MIDI File: notes, not sound."""
    path = Path(path)
    events = b"\x00\x90\x3c\x40\x60\x80\x3c\x40\x00\xff\x2f\x00"
    track = b"MTrk" + struct.pack(">I", len(events)) + events
    path.write_bytes(b"MThd" + struct.pack(">IHHH", 6, 0, 1, 96) + track)
    return path


def truncate_copy(src: str | Path, dst: str | Path, keep_bytes: int = 3000) -> Path:
    """Copy only the first ``keep_bytes`` of a recording, like an interrupted upload."""
    dst = Path(dst)
    shutil.copyfile(src, dst)
    with dst.open("r+b") as handle:
        handle.truncate(keep_bytes)
    return dst
