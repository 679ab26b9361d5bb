"""How many bytes make a download: the file's header plus one minute of audio (IAB v2.3).

The header is what precedes the audio: an MP3's ID3v2 tag (with its artwork, often hundreds of
kilobytes), or the boxes of an MP4/M4A before its `mdat`. It is read from the file's first
bytes, once per file and process (in the flush thread, never on a request). A minute of audio
is 60 s at the file's bitrate; when the catalogue does not know the bitrate, the audio bytes
(size less header and trailing boxes) over the duration. A file of a minute or less counts
only when received whole, and so does a file whose duration is unknown.
"""

from __future__ import annotations

import math
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from archive.errors import ArchiveError
from archive.storage import ObjectStore

ONE_MINUTE = 60.0
HEAD_BYTES = 64 * 1024
MAX_BOXES = 64

Reader = Callable[[int, int], bytes]  # (first byte, last byte inclusive) -> bytes


@dataclass(frozen=True)
class Layout:
    header: int  # bytes before the audio
    trailer: int  # bytes after it (an MP4's moov at the end)


def layout_of(read: Reader, size: int) -> Layout:
    """Find where the audio starts and ends from a few ranged reads."""
    if size <= 0:
        return Layout(0, 0)
    head = read(0, min(size, HEAD_BYTES) - 1)
    if head[:3] == b"ID3" and len(head) >= 10:
        return Layout(min(_id3_size(head), size), 0)
    if head[4:8] == b"ftyp":
        return _mp4_layout(read, head, size)
    return Layout(0, 0)


def _id3_size(head: bytes) -> int:
    """ID3v2: a 10-byte header whose size is four 7-bit bytes, plus a footer when flagged."""
    body = 0
    for byte in head[6:10]:
        body = (body << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + body + footer


def _mp4_layout(read: Reader, head: bytes, size: int) -> Layout:
    """Walk the top-level boxes until `mdat`: what is before it is header, after it trailer."""
    offset = 0
    for _ in range(MAX_BOXES):
        if offset + 8 > size:
            break
        box = head[offset:offset + 16] if offset + 16 <= len(head) else read(
            offset, min(offset + 15, size - 1))
        if len(box) < 8:
            break
        length, kind = struct.unpack(">I4s", box[:8])
        start = 8
        if length == 1 and len(box) >= 16:
            length, start = struct.unpack(">Q", box[8:16])[0], 16
        elif length == 0:
            length = size - offset
        if kind == b"mdat":
            end = min(offset + length, size)
            return Layout(offset + start, size - end)
        if length < 8:
            break
        offset += length
    return Layout(0, 0)


def threshold(size: int, duration: float | None, bitrate: int | None, layout: Layout) -> int:
    """Bytes a listener must receive for a download of this file."""
    if not duration or duration <= ONE_MINUTE or size <= 0:
        return size
    if bitrate:
        per_second = bitrate / 8
    else:
        per_second = max(size - layout.header - layout.trailer, 0) / duration
    return min(size, layout.header + math.ceil(ONE_MINUTE * per_second))


class Layouts:
    """Per process: each file's layout, read once (files are named by their checksum)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._known: dict[tuple[str, str], Layout] = {}
        self._lock = threading.Lock()

    def of(self, key: str, sha256: str, size: int) -> Layout:
        with self._lock:
            found = self._known.get((key, sha256))
        if found is not None:
            return found

        def read(first: int, last: int) -> bytes:
            return b"".join(self.store.open(key, (first, last)))

        try:
            found = layout_of(read, size)
        except ArchiveError:
            # Unknown for now (tried again at the next flush): only the whole file counts.
            return Layout(size, 0)
        with self._lock:
            self._known[(key, sha256)] = found
        return found
