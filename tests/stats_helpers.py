"""Helpers for the statistics tests: files with a known layout, hits, and a recorder."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from archive.models import MediaFile
from archive.stats.events import BYTES
from archive.stats.recorder import Hit, Recorder
from archive.storage import ObjectStore

ANTENNAPOD = "AntennaPod/3.4.0"
POCKETCASTS = "Pocket Casts"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
CURL = "curl/8.5.0"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def id3_file(tag_size: int, size: int) -> bytes:
    """An 'MP3' whose ID3v2 tag (header included) is `tag_size` bytes, `size` bytes in all."""
    body = tag_size - 10
    syncsafe = bytes([(body >> 21) & 0x7F, (body >> 14) & 0x7F, (body >> 7) & 0x7F, body & 0x7F])
    header = b"ID3\x04\x00\x00" + syncsafe
    return header + b"\x00" * (tag_size - 10) + b"\xff\xfb" * ((size - tag_size) // 2)


def put_media(store: ObjectStore, episode_id: str, name: str, data: bytes,
              **extra: object) -> MediaFile:
    stored = store.put_bytes(f"episodes/{episode_id}/{name}", data, "audio/mpeg")
    return MediaFile(stored.key, name, "audio/mpeg", stored.size,
                     hashlib.sha256(data).hexdigest(), **extra)  # type: ignore[arg-type]


def at(day: str, clock: str = "12:00:00") -> float:
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=UTC).timestamp()


def hit(media: MediaFile, when: float, address: str, user_agent: str, start: int, sent: int,
        *, episode_id: str = "ep1", series: str = "roundtables", role: str = "audio",
        method: str = BYTES) -> Hit:
    return Hit(when, address, user_agent, episode_id, series, role, media.key, media.sha256,
               media.size, media.duration, media.bitrate, start, sent, method)


def recorder(store: ObjectStore, folder: Path) -> Recorder:
    """A recorder without its thread: tests flush it when they choose."""
    return Recorder(store, folder / "stats-cache")
