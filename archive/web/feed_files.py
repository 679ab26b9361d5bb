"""Long feeds written to local files and streamed, never held whole in the process.

A series or person feed stays complete (apps page through a series' whole back catalogue), so
at 100,000 recordings one can carry 20,000 items: ~60 MB of XML. Such a feed (more than
`STREAM_ITEMS` items) is written once per catalogue snapshot to two files of this process's
own under ARCHIVE_DATA_DIR/feeds: the XML and its gzip form, which requests stream in chunks.

Each item is written once and then kept in those files: the next build of the feed copies the
byte ranges of the items whose episode did not change (the same object, as snapshots share
unchanged episodes) from the previous files, so an edit costs one item's feedgen build plus a
copy. Items are compressed one by one (raw deflate ending on a byte boundary, each with no
history before it), so the gzip file is their concatenation between a header and a trailer,
with no recompression of the whole feed; the trailer's CRC-32 is taken over the XML as it is
written. The price: ~10 % more gzip bytes than compressing the document as one stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import shutil
import struct
import threading
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from archive import leftovers
from archive.models import Episode
from feeds import Channel, build
from feeds.channel import FeedUrls

STREAM_ITEMS = 1000  # feeds with more items than this are files, not bytes in memory
CHUNK = 256 * 1024
# gzip member header (RFC 1952): deflate, no flags, mtime 0 (the bytes depend on the content
# only), no extra flags, OS unknown.
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
FINAL_BLOCK = b"\x03\x00"  # an empty final fixed-Huffman block: the end of the deflate stream


def deflate_piece(raw: bytes) -> bytes:
    """`raw` as deflate blocks that stand alone (no back-references before them) and end on a
    byte boundary, so pieces can be concatenated into one valid stream."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(raw) + compressor.flush(zlib.Z_FULL_FLUSH)


@dataclass(frozen=True, slots=True)
class Span:
    """Where one item is in a build's two files."""

    offset: int
    size: int
    gz_offset: int
    gz_size: int


@dataclass
class FeedFile:
    """One build of a long feed: its XML and gzip files and what each item's bytes are."""

    path: Path
    gz_path: Path
    size: int
    gz_size: int
    digest: str  # SHA-256 of the XML
    channel: Channel
    # id(episode) -> (episode, series title, where its item is)
    items: dict[int, tuple[Episode, str | None, Span]] = field(default_factory=dict)

    def open(self, gzipped: bool) -> Iterator[bytes]:
        """The file's bytes in chunks, from a file opened now (FileNotFoundError if it is
        gone): an open file outlives a newer build's removal of it."""
        stream = open(self.gz_path if gzipped else self.path, "rb")  # noqa: SIM115

        def chunks() -> Iterator[bytes]:
            with stream:
                while chunk := stream.read(CHUNK):
                    yield chunk

        return chunks()

    def remove(self) -> None:
        for path in (self.path, self.gz_path):
            path.unlink(missing_ok=True)


class FeedFolder:
    """This process's folder of feed files (`feeds/<pid>-<random>`), removed at shutdown;
    folders of processes gone are removed when the next process starts."""

    def __init__(self, data_dir: Path) -> None:
        parent = data_dir / "feeds"
        parent.mkdir(parents=True, exist_ok=True)
        leftovers.remove_dead(parent, "")
        self.path = parent / leftovers.own_name("")
        self.path.mkdir()
        self._lock = threading.Lock()
        # Per feed, the builds of its two newest catalogue snapshots (by snapshot time, not
        # by which build finished first): a request that took the snapshot before a change
        # still finds its files, and the newest snapshot's are never removed.
        self._builds: dict[tuple[str, str], list[tuple[datetime, FeedFile]]] = {}

    def previous(self, key: tuple[str, str]) -> FeedFile | None:
        """The build of the newest snapshot, whose items the next build copies."""
        with self._lock:
            builds = self._builds.get(key)
            return builds[-1][1] if builds else None

    def replace(self, key: tuple[str, str], built: FeedFile, as_of: datetime) -> None:
        """Keep `built` (of the snapshot at `as_of`); remove builds older than the two newest."""
        with self._lock:
            builds = self._builds.setdefault(key, [])
            builds.append((as_of, built))
            builds.sort(key=lambda entry: entry[0])
            old = builds[:-2]
            del builds[:-2]
        for _, gone in old:
            gone.remove()

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def write_feed(folder: Path, channel: Channel, included: Sequence[Episode], urls: FeedUrls,
               titles: Mapping[str, str], previous: FeedFile | None) -> FeedFile:
    """The feed of `included` (already selected and ordered) as files in `folder`, copying
    every item `previous` already holds; the same bytes `feeds.build_feed` returns."""
    head, tail = build.feed_frame(channel, included)
    kept = previous.items if previous is not None and previous.channel == channel else {}

    def reusable(episode: Episode) -> bool:
        found = kept.get(id(episode))
        return found is not None and found[0] is episode and found[1] == titles.get(
            episode.series)

    missing = [e for e in included if not reusable(e)]
    built = dict(zip(map(id, missing), build.item_fragments(channel, missing, urls, titles),
                     strict=True))
    stem = folder / secrets.token_hex(8)
    path, gz_path = stem.with_suffix(".xml"), stem.with_suffix(".xml.gz")
    writer = _Writer(path, gz_path)
    items: dict[int, tuple[Episode, str | None, Span]] = {}
    try:
        with writer, contextlib.ExitStack() as stack:
            sources = None
            if previous is not None and kept:
                sources = (stack.enter_context(open(previous.path, "rb")),
                           stack.enter_context(open(previous.gz_path, "rb")))
            writer.piece(head, deflate_piece(head))
            for episode in included:
                title = titles.get(episode.series)
                if id(episode) in built:
                    raw = build.item_line(built[id(episode)])
                    span = writer.piece(raw, deflate_piece(raw))
                else:
                    assert sources is not None
                    old = kept[id(episode)][2]
                    span = writer.piece(_read(sources[0], old.offset, old.size),
                                        _read(sources[1], old.gz_offset, old.gz_size))
                items[id(episode)] = (episode, title, span)
            writer.piece(tail, deflate_piece(tail))
    except BaseException:
        writer.discard()
        raise
    return FeedFile(path, gz_path, writer.size, writer.gz_size, writer.digest.hexdigest(),
                    channel, items)


def _read(stream: BinaryIO, offset: int, size: int) -> bytes:
    stream.seek(offset)
    found = stream.read(size)
    if len(found) != size:
        raise OSError("a kept feed file is shorter than its index says")
    return found


class _Writer:
    """Writes the XML and the gzip file side by side, item by item."""

    def __init__(self, path: Path, gz_path: Path) -> None:
        self.path, self.gz_path = path, gz_path
        self.raw = open(path, "wb")  # noqa: SIM115 - closed in __exit__
        self.gz = open(gz_path, "wb")  # noqa: SIM115
        self.gz.write(GZIP_HEADER)
        self.size, self.gz_size = 0, len(GZIP_HEADER)
        self.crc = 0
        self.digest = hashlib.sha256()

    def piece(self, raw: bytes, deflated: bytes) -> Span:
        span = Span(self.size, len(raw), self.gz_size, len(deflated))
        self.raw.write(raw)
        self.gz.write(deflated)
        self.crc = zlib.crc32(raw, self.crc)
        self.digest.update(raw)
        self.size += len(raw)
        self.gz_size += len(deflated)
        return span

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        if kind is None:
            trailer = FINAL_BLOCK + struct.pack("<II", self.crc, self.size & 0xFFFFFFFF)
            self.gz.write(trailer)
            self.gz_size += len(trailer)
        self.raw.close()
        self.gz.close()

    def discard(self) -> None:
        for stream in (self.raw, self.gz):
            stream.close()
        for path in (self.path, self.gz_path):
            path.unlink(missing_ok=True)
