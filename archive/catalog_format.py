"""How the catalogue is laid out in the bucket (format 2): a small manifest, immutable segments.

`catalog.json` is the manifest, the only object ever overwritten (with If-Match). It names:

- 256 *shards* of episodes (`catalog/shards/<xx>/<sha256[:16]>-<writer>.json.gz`), an episode's
  shard fixed by a hash of its id; a segment is never rewritten, only replaced by a new one
  the next manifest names;
- one *registry* (`catalog/registry/<sha256[:16]>-<writer>.json.gz`): series and people;
- the removal claims in flight (`removing`), which are small and short-lived.

An edit writes the one shard its episode lives in and the manifest: bytes per edit follow the
shard (about 1/256 of the archive), not the archive. A reader revalidates the manifest with a
conditional GET and fetches only the segments whose keys changed. The approach is that of table
formats on object stores (a manifest committed by a conditional write, pointing at immutable
content-addressed files).

Format 1 (everything in `catalog.json`) is still read; the next change writes format 2.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import json
import operator
import re
import secrets
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import msgspec

from archive import compact, models
from archive.models import Episode, Person

VERSION = 2
SHARD_PREFIX = "catalog/shards/"
REGISTRY_PREFIX = "catalog/registry/"
SEGMENT_PREFIX = "catalog/"
CONTENT_TYPE = "application/gzip"  # gzipped JSON, read only by the archive
RETIRED_GRACE_S = 600  # longer than any reader takes between manifest and segments
_DIGITS = 2  # 256 shards: at 100,000 episodes ~390 each, a ~250 KB gzipped segment


def shard_of(episode_id: str) -> str:
    """The shard an episode lives in, forever (a hash of its id, so shards fill evenly)."""
    return hashlib.blake2b(episode_id.encode(), digest_size=4).hexdigest()[:_DIGITS]


def encode(document: Any) -> bytes:
    """Compact JSON, gzipped reproducibly (same document, same bytes, same key)."""
    raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return gzip.compress(raw, compresslevel=6, mtime=0)


def decode(body: bytes) -> Any:
    return json.loads(gzip.decompress(body))


def segment_key(prefix: str, body: bytes) -> str:
    """A key no other writer uses: its content's hash (to tell readers what changed) and the
    writer's own token, so a writer that loses its race can delete what it wrote without
    deleting a segment with the same content another writer named meanwhile."""
    return f"{prefix}{hashlib.sha256(body).hexdigest()[:16]}-{secrets.token_hex(4)}.json.gz"


def digest(key: str) -> str:
    """The content part of a segment key (same content, same digest, whoever wrote it)."""
    return key.rsplit("/", 1)[-1].split("-", 1)[0]


def shard_body(shard: str, episodes: Iterable[Episode]) -> tuple[str, bytes]:
    """A shard's key and bytes."""
    body = encode({"version": VERSION, "shard": shard,
                   "episodes": [e.to_dict() for e in sorted(episodes, key=lambda e: e.id)]})
    return segment_key(f"{SHARD_PREFIX}{shard}/", body), body


def registry_body(series: list[dict[str, Any]], people: list[dict[str, Any]]
                  ) -> tuple[str, bytes]:
    body = encode({"version": VERSION, "series": series, "people": people})
    return segment_key(REGISTRY_PREFIX, body), body


def _struct_field(f: dataclasses.Field[Any], kind: Any) -> tuple[Any, ...]:
    """A msgspec Struct field of type `kind` with the dataclass field `f`'s name and default."""
    if f.default is not dataclasses.MISSING:
        return f.name, kind, f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.name, kind, msgspec.field(default_factory=f.default_factory)
    return f.name, kind


def _shard_episode_type() -> type[msgspec.Struct]:
    """An episode as a shard holds it: listed fields typed, packed ones left as raw JSON (a
    missing one reads as its default's JSON)."""
    hints = get_type_hints(Episode)
    fields = []
    for f in dataclasses.fields(Episode):
        if not f.init:
            continue
        if f.name not in models.PACKED_FIELDS:
            fields.append(_struct_field(f, hints[f.name]))
        elif f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
            default = f.default if f.default is not dataclasses.MISSING \
                else f.default_factory()  # type: ignore[misc]
            fields.append((f.name, msgspec.Raw, msgspec.Raw(msgspec.json.encode(default))))
        else:
            fields.append((f.name, msgspec.Raw))
    return msgspec.defstruct("ShardEpisode", fields, kw_only=True)


def _checking_type(kind: Any) -> Any:
    """`kind` with each dataclass in it replaced by a msgspec Struct of the same fields and
    defaults: decoding into it checks the same types ~3x faster, where only the check is
    wanted (a packed episode's fields, unpacked into the real dataclasses when read)."""
    if dataclasses.is_dataclass(kind):
        hints = get_type_hints(kind)
        return msgspec.defstruct(
            f"Checked{kind.__name__}",
            [_struct_field(f, _checking_type(hints[f.name])) for f in dataclasses.fields(kind)],
            kw_only=True)
    arguments = get_args(kind)
    if not arguments:
        return kind
    twins = tuple(_checking_type(a) for a in arguments)
    if get_origin(kind) in (Union, UnionType):
        return functools.reduce(operator.or_, twins)
    return get_origin(kind)[twins]


_ShardEpisode = _shard_episode_type()
_PACKED_CHECKER = msgspec.json.Decoder(msgspec.defstruct(
    "CheckedPackedFields",
    [(name, _checking_type(get_type_hints(Episode)[name])) for name in models.PACKED_FIELDS],
    array_like=True))


class _ShardDocument(msgspec.Struct):
    episodes: list[_ShardEpisode] = []  # type: ignore[valid-type]


_SHARD_DECODER = msgspec.json.Decoder(_ShardDocument)
_EPISODE_ID = re.compile(r"[a-z0-9]{6,32}")
_packed_values = operator.attrgetter(*models.PACKED_FIELDS)
_shared_people: dict[tuple[str, ...], Person] = {}
_SHARED_PEOPLE_MAX = 200_000


def read_shard(body: bytes) -> list[Episode]:
    """A shard's episodes, packed (`models.packed_episode`): what lists read as objects, the
    rest compressed. A shard holds only what `shard_body` wrote from validated episodes, so
    it is decoded straight into them (msgspec, ~3x faster than `json` + `from_dict`, which
    is most of a cold start at 100,000 episodes); anything of another shape (an older writer,
    a naive date) takes the validating path, whose episodes are kept whole."""
    raw = gzip.decompress(body)
    try:
        episodes = _packed(_SHARD_DECODER.decode(raw).episodes)
    except msgspec.MsgspecError:
        episodes = None
    if episodes is None:
        episodes = [Episode.from_dict(e) for e in json.loads(raw).get("episodes", [])]
    for episode in episodes:
        _share_strings(episode)
    return episodes


def _packed(records: list[Any]) -> list[Episode] | None:
    """The records as packed episodes; None if one is not to be trusted (`_trusted`)."""
    raws = [b"[" + b",".join(_packed_values(record)) + b"]" for record in records]
    if compact.learning():
        compact.learn(raws)
    episodes = []
    for record, raw in zip(records, raws, strict=True):
        fields = _PACKED_CHECKER.decode(raw)
        if not _trusted(record, fields):
            return None
        episodes.append(models.packed_episode(record, raw, fields))
    return episodes


def _trusted(record: Any, fields: Any) -> bool:
    """What the fast path does not check but the rest of the code relies on: an id fit for a
    key, and timezone-aware times (naive ones cannot be compared with ours)."""
    times: list[datetime | None] = [record.published_at, record.updated_at, record.publish_at]
    if fields.transcript_provenance is not None:
        times.append(fields.transcript_provenance.at)
    return (_EPISODE_ID.fullmatch(record.id) is not None
            and all(t is None or t.tzinfo is not None for t in times))


def _share_strings(episode: Episode) -> None:
    """One copy per process of what thousands of episodes repeat: short strings (series,
    roles, tags) interned, and each speaker (name, role, affiliation…) one shared object.
    A snapshot's episodes are never changed (a change works on copies), so sharing is safe."""
    intern = sys.intern
    episode.series = intern(episode.series)
    episode.language = intern(episode.language)
    episode.tags = [intern(tag) for tag in episode.tags]
    if len(_shared_people) > _SHARED_PEOPLE_MAX:
        _shared_people.clear()
    speakers = []
    for person in episode.speakers:
        key = (person.name, person.role, person.affiliation, person.orcid, person.url,
               person.image)
        shared = _shared_people.get(key)
        if shared is None:
            person.name = intern(person.name)
            person.role = intern(person.role)
            person.affiliation = intern(person.affiliation)
            shared = _shared_people.setdefault(key, person)
        speakers.append(shared)
    episode.speakers = speakers
    if episode.packed is None:
        if episode.licence is not None:
            episode.licence = intern(episode.licence)
        for media in episode.files.values():
            if type(media.filename) is str and type(media.content_type) is str:
                media.filename = intern(media.filename)
                media.content_type = intern(media.content_type)


@dataclass
class Layout:
    """Which segments a snapshot was read from or written as, and who lives in each shard."""

    shards: dict[str, str] = field(default_factory=dict)  # shard -> key
    registry: str = ""
    members: dict[str, set[str]] = field(default_factory=dict)  # shard -> episode ids
    # Segments no longer named, kept for readers still holding an older manifest until
    # RETIRED_GRACE has passed (key -> when retired); later changes delete them.
    retired: dict[str, str] = field(default_factory=dict)

    def named(self) -> set[str]:
        return {*self.shards.values(), *([self.registry] if self.registry else [])}


class TrackedEpisodes(dict[str, Episode]):
    """The episodes of a change in progress.

    It starts as the snapshot's own objects (no copy of 100,000 episodes per edit) and hands out
    a private copy of an episode the first time `apply` reads or writes it, so the snapshot that
    readers share is never mutated, and `touched` says which episodes the change may have
    altered. Iterating (`values()`, `items()`) copies every episode: correct, for the rare change
    that rewrites them all; read-only scans use `originals()`.
    """

    def __init__(self, base: Mapping[str, Episode]) -> None:
        super().__init__(base)
        self.touched: set[str] = set()

    def _own(self, key: str) -> None:
        if key not in self.touched and dict.__contains__(self, key):
            original = dict.__getitem__(self, key)
            dict.__setitem__(self, key, Episode.from_dict(original.to_dict()))
        self.touched.add(key)

    def __getitem__(self, key: str) -> Episode:
        self._own(key)
        return dict.__getitem__(self, key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self[key] if dict.__contains__(self, key) else default

    def __setitem__(self, key: str, value: Episode) -> None:
        self.touched.add(key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        self.touched.add(key)
        dict.__delitem__(self, key)

    def pop(self, key: str, *default: Any) -> Any:  # type: ignore[override]
        self.touched.add(key)
        return dict.pop(self, key, *default)

    def update(self, *args: Any, **kwargs: Episode) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():  # dict's own would not track them
            self[key] = value

    def __ior__(self, other: Any) -> TrackedEpisodes:  # type: ignore[override]
        self.update(other)
        return self

    def clear(self) -> None:
        for key in list(dict.keys(self)):
            del self[key]

    def popitem(self) -> tuple[str, Episode]:
        if not self:
            raise KeyError("popitem(): no episodes")
        key = next(reversed(dict.keys(self)))
        return key, self.pop(key)

    def setdefault(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        if dict.__contains__(self, key):
            return self[key]
        self[key] = default
        return default

    def values(self) -> Iterator[Episode]:  # type: ignore[override]
        return (self[key] for key in list(dict.keys(self)))

    def items(self) -> Iterator[tuple[str, Episode]]:  # type: ignore[override]
        return ((key, self[key]) for key in list(dict.keys(self)))

    def originals(self) -> Iterator[Episode]:
        """Every episode as it is now, for reading only (no copies)."""
        return iter(dict.values(self))

    def peek(self, key: str) -> Episode | None:
        return dict.get(self, key)

    def plain(self) -> dict[str, Episode]:
        return dict(dict.items(self))


def readable(episodes: Mapping[str, Episode]) -> Iterable[Episode]:
    """Episodes to read (never to change) without copying a change's whole snapshot."""
    if isinstance(episodes, TrackedEpisodes):
        return episodes.originals()
    return episodes.values()
