"""Preservation packages: one BagIt bag (RFC 8493) per episode, out of and back into the bucket.

A bag is what a repository (Archivematica, a university's digital preservation service) takes
in: the payload, and checksums that prove it arrived whole. Ours:

    <DIR>/<episode id>/
      bagit.txt, bag-info.txt, manifest-sha256.txt, tagmanifest-sha256.txt
      data/meta.json          the episode's public metadata (Episode.public_dict: no consent)
      data/dublin-core.xml    the same as a Dublin Core record (as OAI-PMH gives it)
      data/series.json        its series, so a bag restores into an empty archive
      data/objects/<name>     every file the episode owns, by its key under episodes/<id>/
      data/series-cover/<name> the series artwork, when it has one

`manifest-sha256.txt` is written from the checksums the catalogue already keeps (fixity), and
every byte is hashed again as it is copied out: a bag is never made of a file that changed in
the bucket. A bag is written under a temporary name and renamed when complete.

Import validates every bag with the `bagit` library before anything is written, then uploads
all payloads and names them in one catalogue change (ids, guids and checksums kept), removing
what it uploaded if anything fails: it brings every bag back, or none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path, PurePosixPath
from typing import Any

import bagit

from archive.catalog import CatalogData
from archive.dublin_core import oai_dc, to_bytes
from archive.errors import Conflict, InvalidInput, StorageError
from archive.models import Episode, MediaFile, Series, episode_prefix
from archive.records import public_record
from archive.removal import tombstoned
from archive.runtime import Archive
from archive.storage import file_sha256

# The library logs each failed checksum as a warning; our error says which bag failed and
# why in one line, so its own lines would only repeat that on the CLI's stderr.
logging.getLogger("bagit").setLevel(logging.ERROR)
BAGIT_VERSION = "1.0"
OBJECTS = "data/objects/"
SERIES_COVER = "data/series-cover/"
Progress = Callable[[str], None]


@dataclass
class _Writer:
    """A bag being written: the payload files with their checksums, for the manifests."""

    root: Path
    payload: dict[str, tuple[str, int]] = field(default_factory=dict)  # path -> (sha256, size)

    def write_bytes(self, relative: str, data: bytes) -> None:
        path = self._path(relative)
        path.write_bytes(data)
        self.payload[relative] = (hashlib.sha256(data).hexdigest(), len(data))

    def copy_object(self, archive: Archive, relative: str, media: MediaFile) -> None:
        """Stream one stored object into the bag, hashing as it goes; refuse one whose bytes
        no longer match the checksum the catalogue keeps."""
        digest, size = hashlib.sha256(), 0
        with self._path(relative).open("wb") as stream:
            for chunk in archive.store.open(media.key):
                digest.update(chunk)
                size += len(chunk)
                stream.write(chunk)
        if size != media.size or digest.hexdigest() != media.sha256:
            raise StorageError(f"{media.key} no longer matches its checksum in the catalogue "
                               "(run `archive verify`); its bag was not written.")
        self.payload[relative] = (media.sha256, media.size)

    def finish(self, info: dict[str, str]) -> None:
        octets = sum(size for _, size in self.payload.values())
        info = {**info, "Payload-Oxum": f"{octets}.{len(self.payload)}",
                "Bagging-Date": date.today().isoformat(), "Bag-Software-Agent": "archive"}
        tags = {
            "bagit.txt": f"BagIt-Version: {BAGIT_VERSION}\nTag-File-Character-Encoding: UTF-8\n",
            "bag-info.txt": "".join(f"{k}: {_one_line(v)}\n" for k, v in info.items() if v),
            "manifest-sha256.txt": "".join(
                f"{sha} {_encode_path(path)}\n" for path, (sha, _) in sorted(self.payload.items())),
        }
        for name, text in tags.items():
            (self.root / name).write_text(text, encoding="utf-8")
        (self.root / "tagmanifest-sha256.txt").write_text("".join(
            f"{hashlib.sha256(text.encode()).hexdigest()} {name}\n"
            for name, text in sorted(tags.items())), encoding="utf-8")

    def _path(self, relative: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


def _one_line(value: str) -> str:
    return " ".join(str(value).split())


def _encode_path(path: str) -> str:
    """RFC 8493 §2.1.3: CR, LF and % in a manifest's file names are percent-encoded."""
    return path.replace("%", "%25").replace("\n", "%0A").replace("\r", "%0D")


# -- export --------------------------------------------------------------------------------


def selected(data: CatalogData, series: str | None, since: date | None) -> list[Episode]:
    """Episodes of the series (all by default) changed on or after `since` (UTC day)."""
    if series and series not in data.series:
        raise InvalidInput(f"There is no series {series!r}.")
    found = [e for e in data.episodes.values()
             if (not series or e.series == series)
             and (since is None or e.updated_at.date() >= since)]
    return sorted(found, key=lambda e: e.id)


def export_bags(archive: Archive, target: Path, *, series: str | None = None,
                since: date | None = None, progress: Progress | None = None) -> list[Path]:
    """One bag per selected episode under `target`; returns their paths. A bag already there
    (an earlier export) is replaced once its new copy is complete."""
    view = archive.catalog.refresh()
    episodes = selected(view.data, series, since)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for episode in episodes:
        written.append(export_bag(archive, episode, view.data.series.get(episode.series),
                                  target))
        if progress:
            progress(f"EXPORTED {episode.id} {written[-1]}")
    return written


def export_bag(archive: Archive, episode: Episode, series: Series | None, target: Path) -> Path:
    final = target / episode.id
    work = Path(tempfile.mkdtemp(prefix=f".{episode.id}-", dir=target))
    try:
        bag = _Writer(work)
        for media in sorted(episode.files.values(), key=lambda m: m.key):
            bag.copy_object(archive, OBJECTS + _relative_key(episode, media.key), media)
        if series is not None and series.cover is not None:
            bag.copy_object(archive, SERIES_COVER + PurePosixPath(series.cover.key).name,
                            series.cover)
        bag.write_bytes("data/meta.json", _json(episode.public_dict()))
        if series is not None:
            bag.write_bytes("data/series.json", _json(series.to_dict()))
        record = public_record(episode, series, archive.settings)
        bag.write_bytes("data/dublin-core.xml", to_bytes(oai_dc(record)))
        bag.finish({
            "Source-Organization": archive.settings.owner_name,
            "Contact-Email": archive.settings.owner_email,
            "External-Description": episode.title,
            "External-Identifier": record.permalink,
            "Internal-Sender-Identifier": episode.id,
            "Archive-Episode-Guid": episode.guid,
            "Archive-Series": episode.series,
        })
        _replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return final


def _replace(work: Path, final: Path) -> None:
    """Put the finished bag in place; an older bag of the episode goes only after that."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}-old-{os.getpid()}")
        final.rename(old)
    work.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _relative_key(episode: Episode, key: str) -> str:
    prefix = episode_prefix(episode.id)
    if not key.startswith(prefix):
        raise InvalidInput(f"{key} is not under {prefix}: not a file of this episode.")
    return key[len(prefix):]


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True).encode()


# -- import --------------------------------------------------------------------------------


@dataclass
class IncomingBag:
    """A validated bag, read: its episode, its series and the files to upload."""

    path: Path
    episode: Episode
    series: Series | None
    uploads: list[tuple[Path, MediaFile]]  # local file -> where it goes, and its checksum
    series_cover: tuple[Path, MediaFile] | None  # uploaded only with a series that is new


def find_bags(source: Path) -> list[Path]:
    """`source` itself when it is a bag, else the bags directly inside it."""
    if not source.is_dir():
        raise InvalidInput(f"{source} is not a folder of bags.")
    if (source / "bagit.txt").is_file():
        return [source]
    bags = sorted(p for p in source.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / "bagit.txt").is_file())
    if not bags:
        raise InvalidInput(f"There is no bag (a folder with bagit.txt) in {source}.")
    return bags


def read_bag(path: Path) -> IncomingBag:
    """Validate a bag (every checksum, with the bagit library) and read what it holds."""
    try:
        bag = bagit.Bag(str(path))
        bag.validate(processes=1)
    except bagit.BagValidationError as error:
        raise InvalidInput(f"Bag {path.name} fails validation: {_first_line(error)}") from None
    except bagit.BagError as error:
        raise InvalidInput(f"{path.name} is not a readable bag: {_first_line(error)}") from None
    data = path / "data"
    try:
        meta = json.loads((data / "meta.json").read_text(encoding="utf-8"))
        series_path = data / "series.json"
        series_meta = json.loads(series_path.read_text(encoding="utf-8")) \
            if series_path.is_file() else None
        if not isinstance(meta, dict) or not isinstance(series_meta, dict | None):
            raise ValueError
    except (OSError, ValueError):
        raise InvalidInput(f"Bag {path.name} has no readable data/meta.json.") from None
    episode = Episode.from_dict({**meta, "consent": {}})
    series = Series.from_dict(series_meta) if series_meta else None
    uploads = [(_payload(path, OBJECTS + _relative_key(episode, media.key)), media)
               for media in episode.files.values()]
    cover = None
    if series is not None and series.cover is not None:
        if not series.cover.key.startswith(f"series/{series.slug}/"):
            raise InvalidInput(f"Bag {path.name}: the series cover is not under the series.")
        name = PurePosixPath(series.cover.key).name
        cover = (_payload(path, SERIES_COVER + name), series.cover)
    for local, media in [*uploads, *([cover] if cover else [])]:
        _check_payload(path, local, media)
    if series is not None and series.slug != episode.series:
        raise InvalidInput(f"Bag {path.name}: series.json is not the episode's series.")
    return IncomingBag(path, episode, series, uploads, cover)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    details = getattr(error, "details", None) or []
    extra = f" ({details[0]})" if details else ""
    return (text[0] if text else type(error).__name__) + extra


def _payload(bag: Path, relative: str) -> Path:
    path = (bag / relative).resolve()
    if "/../" in f"/{relative}/" or not path.is_relative_to((bag / "data").resolve()):
        raise InvalidInput(f"Bag {bag.name} names a file outside its payload: {relative}")
    return path


def _check_payload(bag: Path, local: Path, media: MediaFile) -> None:
    """The file meta.json names is in the payload, with the size and checksum it gives
    (the bag's own manifest was checked by validation; this ties meta.json to it)."""
    if not local.is_file():
        raise InvalidInput(f"Bag {bag.name} lacks {local.name}, which its meta.json names.")
    if local.stat().st_size != media.size or file_sha256(local) != media.sha256:
        raise InvalidInput(f"Bag {bag.name}: {local.name} does not match the checksum in "
                           "its meta.json.")




def import_bags(archive: Archive, source: Path, progress: Progress | None = None
                ) -> list[Episode]:
    """Bring bags back: all of them, with their ids, guids and checksums, or none."""
    bags = [read_bag(path) for path in find_bags(source)]
    known_series = _refuse_clashes(archive, bags)
    uploaded: list[str] = []
    try:
        for bag in bags:
            covers = [bag.series_cover] if bag.series_cover and bag.episode.series not in \
                known_series else []
            for local, media in [*bag.uploads, *covers]:
                stored = archive.store.upload_file(media.key, local, media.content_type)
                uploaded.append(media.key)
                if stored.sha256 != media.sha256:
                    raise StorageError(f"{media.key} changed on its way into the bucket.")
        episodes = archive.catalog.change(lambda data: _add(data, bags))
    except BaseException:
        _remove(archive, uploaded)
        raise
    for episode in episodes:
        archive.catalog.write_copies(episode, False)
        if progress:
            progress(f"IMPORTED {episode.id} {episode.title}")
    for bag in bags:
        if bag.series is not None:
            with contextlib.suppress(StorageError):
                series = archive.catalog.cached_view().data.series[bag.series.slug]
                archive.catalog.write_series_meta(series)
    return episodes


def _refuse_clashes(archive: Archive, bags: list[IncomingBag]) -> set[str]:
    """Refuse the whole import before anything is written; returns the series already here."""
    view = archive.catalog.refresh()
    deleted = tombstoned(archive.store)
    ids = [bag.episode.id for bag in bags]
    if len(set(ids)) != len(ids):
        raise InvalidInput("Two bags hold the same episode.")
    for bag in bags:
        episode = bag.episode
        if episode.id in view.data.episodes:
            raise Conflict(f"Episode {episode.id} ({episode.title!r}) is already in the "
                           f"archive; bag {bag.path.name} was not imported, nor any other.")
        if episode.id in deleted:
            raise Conflict(f"Episode {episode.id} was deleted for good (tombstones/); bag "
                           f"{bag.path.name} does not bring it back. Nothing was imported.")
        if bag.series is None and episode.series not in view.data.series:
            raise InvalidInput(f"Bag {bag.path.name} has no series.json and the archive has "
                               f"no series {episode.series!r}.")
    return set(view.data.series)


def _add(data: CatalogData, bags: Iterable[IncomingBag]) -> list[Episode]:
    added = []
    for bag in bags:
        episode = Episode.from_dict(bag.episode.to_dict())
        if episode.id in data.episodes:
            raise Conflict(f"Episode {episode.id} was added meanwhile; nothing was imported.")
        existing = data.find_original(episode.original_sha256) \
            if episode.original_sha256 else None
        if existing is not None:
            raise Conflict(f"Bag {bag.path.name} holds a recording already in the archive "
                           f"as {existing.title!r} ({existing.id}); nothing was imported.")
        if episode.series not in data.series:
            assert bag.series is not None
            data.series[episode.series] = bag.series
        episode.slug = data.unique_slug(episode.slug, episode.id)
        data.episodes[episode.id] = episode
        added.append(episode)
    return added


def _remove(archive: Archive, keys: list[str]) -> None:
    """Undo the uploads of an import that did not land (best effort; `verify --repair` finds
    whatever storage refused to delete)."""
    with contextlib.suppress(StorageError, Conflict), \
            archive.catalog.claim_for_removal(keys) as claimed:
        archive.catalog.remove_objects(claimed)
