"""The catalogue: `catalog.json` in the bucket, changed only by conditional writes, and read views.

Writers call `Catalog.change(fn)`: read the current document and its ETag, apply `fn`, write it
back with `If-Match` (or `If-None-Match: *` for the first write) and start again on 412, so two
editors who publish at once both land. Readers hold an immutable `CatalogView` and revalidate it
with a conditional GET at most every `ttl` seconds, so several app processes agree within seconds.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import json
import logging
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, TypeVar

from archive import catalog_format as fmt
from archive import models
from archive import people as people_records
from archive.errors import ArchiveError, Conflict, Duplicate, NotFound, StorageError
from archive.models import Episode, Person, Series, episode_prefix, next_revision, utcnow
from archive.storage import ObjectStore

log = logging.getLogger("archive.catalog")
CATALOG_KEY = "catalog.json"
MISSING = ("catalog.json is missing: run `archive reindex` to rebuild it from every "
           "episode's meta.json.")
FORMAT_VERSION = 1  # everything in catalog.json; still read (see archive/catalog_format.py)
FETCH_THREADS = 16
STALE_RETRIES = 5
MAX_ATTEMPTS = 50
CLAIM_TTL = timedelta(days=1)  # a removal claim left by a dead process blocks no longer
T = TypeVar("T")


def new_claim() -> str:
    """Who claims keys for removal (see `CatalogData.removing`)."""
    return secrets.token_hex(8)


def meta_key(episode_id: str) -> str:
    return f"{episode_prefix(episode_id)}meta.json"


def series_meta_key(slug: str) -> str:
    return f"series/{slug}/meta.json"


def person_meta_key(slug: str) -> str:
    return f"people/{slug}/meta.json"


@dataclass
class CatalogData:
    """The mutable document inside `catalog.json`; only `Catalog.change` mutates it."""

    guid: str = field(default_factory=lambda: str(uuid.uuid4()))
    series: dict[str, Series] = field(default_factory=dict)
    episodes: dict[str, Episode] = field(default_factory=dict)
    # One record per person, keyed by slug (archive/people.py); catalogues older than people
    # records have none and gain them as episodes are written.
    people: dict[str, Person] = field(default_factory=dict)
    updated_at: datetime = field(default_factory=utcnow)
    # Keys on their way out (a repair moving orphans to the trash, an edit deleting the files
    # it replaced, a failed ingest its staged files), each with its claims (claim -> since):
    # no change may name one (see `Catalog.change`), so a removal never races a commit into
    # naming a missing object.
    removing: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CatalogData:
        if data.get("version") != FORMAT_VERSION:
            raise StorageError(f"catalog.json has unknown format version {data.get('version')!r}.")
        return cls(
            guid=data["guid"],
            series={s["slug"]: Series.from_dict(s) for s in data.get("series", [])},
            episodes={e["id"]: Episode.from_dict(e) for e in data.get("episodes", [])},
            people={slug: people_records.check_record(slug, Person.from_dict(p))
                    for p in data.get("people") or [] if (slug := str(p.get("slug") or ""))},
            updated_at=datetime.fromisoformat(data["updated_at"]),
            removing={str(key): {str(c): str(t) for c, t in claims.items()}
                      for key, claims in (data.get("removing") or {}).items()
                      if isinstance(claims, dict)},
        )

    def to_dict(self, *, with_episodes: bool = True) -> dict[str, Any]:
        document: dict[str, Any] = {
            "version": FORMAT_VERSION,
            "guid": self.guid,
            "updated_at": self.updated_at.isoformat(),
            "series": [s.to_dict() for s in sorted(self.series.values(), key=lambda s: s.slug)],
            "people": [{"slug": slug, **_record_dict(person)}
                       for slug, person in sorted(self.people.items())],
        }
        if with_episodes:
            document["episodes"] = [e.to_dict() for e in sorted(fmt.readable(self.episodes),
                                                                 key=lambda e: e.id)]
        if self.removing:
            document["removing"] = dict(sorted(self.removing.items()))
        return document

    def file_keys(self) -> set[str]:
        """Every object the catalogue names: episodes' files and series covers."""
        keys = {f.key for e in fmt.readable(self.episodes) for f in e.files.values()}
        keys.update(s.cover.key for s in self.series.values() if s.cover)
        return keys

    def named_keys(self) -> set[str]:
        """`file_keys` and the meta.json copies of every episode and series."""
        keys = self.file_keys()
        keys.update(meta_key(e) for e in self.episodes)
        keys.update(series_meta_key(s) for s in self.series)
        return keys

    def mark_removing(self, keys: Iterable[str], claim: str) -> list[str]:
        """Within a change: claim the keys this document does not name, for removal once the
        change is written (until `Catalog.withdraw(keys, claim)`); returns them. Claims of a
        process that died before withdrawing expire after `CLAIM_TTL`."""
        now = utcnow()
        stale = (now - CLAIM_TTL).isoformat()
        self.removing = {key: live for key, claims in self.removing.items()
                         if (live := {c: t for c, t in claims.items() if t > stale})}
        claimed = [key for key in dict.fromkeys(keys) if not self.names_key(key)]
        for key in claimed:
            self.removing.setdefault(key, {})[claim] = now.isoformat()
        return claimed

    def unmark_removing(self, keys: Iterable[str], claim: str) -> None:
        for key in keys:
            claims = self.removing.get(key, {})
            claims.pop(claim, None)
            if not claims:
                self.removing.pop(key, None)

    def unique_slug(self, slug: str, episode_id: str) -> str:
        """`slug`, or `slug-2`, `slug-3`… when another episode already has it."""
        taken = {e.slug for e in fmt.readable(self.episodes) if e.id != episode_id}
        candidate, n = slug, 1
        while candidate in taken:
            n += 1
            candidate = f"{slug}-{n}"
        return candidate

    def find_original(self, sha256: str) -> Episode | None:
        return next((e for e in fmt.readable(self.episodes) if e.original_sha256 == sha256),
                    None)

    def names_key(self, key: str) -> bool:
        """Whether the catalogue names this object, looking only where it could be named."""
        if key.startswith("episodes/"):
            owner = key.split("/", 2)[1]
            episodes = self.episodes
            episode = episodes.peek(owner) if isinstance(episodes, fmt.TrackedEpisodes) \
                else episodes.get(owner)
            return episode is not None and (key == meta_key(owner) or any(
                f.key == key for f in episode.files.values()))
        if key.startswith("series/"):
            return any(key in (series_meta_key(s.slug), s.cover.key if s.cover else "")
                       for s in self.series.values())
        return False


@dataclass(frozen=True)
class PersonSummary:
    """A person across the archive: how they appear and how often."""

    slug: str
    name: str
    affiliation: str
    roles: tuple[str, ...]
    count: int
    url: str = ""
    orcid: str = ""


class CatalogView:
    """An immutable snapshot with the lookups pages and feeds need, computed once per change.

    `cache` holds things derived from the snapshot (rendered feeds, the search index) so they
    are built once per catalogue change and dropped with the snapshot.
    """

    def __init__(self, data: CatalogData, etag: str | None,
                 layout: fmt.Layout | None = None, *, previous: CatalogView | None = None,
                 changed: set[str] | None = None) -> None:
        self.data = data
        self.etag = etag
        self.layout = layout  # None: read from format 1 (or nothing), rewritten whole next time
        # The snapshot this one replaced and the ids that may differ: derived lists are then
        # updated rather than rebuilt (one step back only, so old snapshots are not kept).
        self._previous = previous if changed is not None else None
        self._changed = changed
        if previous is not None:
            previous._previous = None
        self.cache: dict[Any, Any] = {}
        self._lock = threading.Lock()  # guards `_building` only, never held during a build
        self._building: dict[Any, threading.Lock] = {}

    def cached(self, key: Any, build: Callable[[], T]) -> T:
        """Build a derived value once per snapshot, even with many threads asking at once.

        One lock per key: a slow build (a 10,000-item feed) holds up only those who want that
        value, never a page asking for another.
        """
        try:
            return self.cache[key]  # type: ignore[no-any-return]
        except KeyError:
            pass
        with self._lock:
            lock = self._building.setdefault(key, threading.Lock())
        with lock:
            if key not in self.cache:
                self.cache[key] = build()
            return self.cache[key]  # type: ignore[no-any-return]

    @property
    def updated_at(self) -> datetime:
        return self.data.updated_at

    @cached_property
    def published(self) -> list[Episode]:
        """Published episodes, newest first (by event date, then publication time)."""
        previous, changed = self._previous, self._changed
        self._previous = None
        if previous is not None and changed is not None and "published" in previous.__dict__:
            kept = [e for e in previous.published if e.id not in changed]
            for episode_id in changed:
                episode = self.data.episodes.get(episode_id)
                if episode is not None and not episode.draft and episode.has_audio:
                    bisect.insort(kept, episode, key=_newest_first)
            return kept
        episodes = [e for e in self.data.episodes.values() if not e.draft and e.has_audio]
        return sorted(episodes, key=_newest_first)

    @cached_property
    def _by_slug(self) -> dict[str, Episode]:
        return {e.slug: e for e in self.data.episodes.values()}

    def episode(self, episode_id: str, *, include_drafts: bool = False) -> Episode:
        episode = self.data.episodes.get(episode_id)
        if episode is None or (episode.draft and not include_drafts):
            raise NotFound("There is no such recording.")
        return episode

    def episode_by_slug(self, slug: str, *, include_drafts: bool = False) -> Episode:
        episode = self._by_slug.get(slug)
        if episode is None or (episode.draft and not include_drafts):
            raise NotFound("There is no such recording.")
        return episode

    def series(self, slug: str) -> Series:
        try:
            return self.data.series[slug]
        except KeyError:
            raise NotFound("There is no such series.") from None

    @cached_property
    def all_series(self) -> list[Series]:
        return sorted(self.data.series.values(), key=lambda s: s.title.lower())

    def series_episodes(self, slug: str) -> list[Episode]:
        return [e for e in self.published if e.series == slug]

    @cached_property
    def people(self) -> dict[str, PersonSummary]:
        """Everyone who spoke in a published episode, keyed by slug."""
        seen: dict[str, list[Person]] = {}
        for episode in reversed(self.published):  # oldest first: the newest details win
            for person in episode.speakers:
                seen.setdefault(person.slug, []).append(person)
        return {slug: _summarise(slug, appearances) for slug, appearances in seen.items()}

    def person(self, slug: str) -> PersonSummary:
        try:
            return self.people[slug]
        except KeyError:
            raise NotFound("There is no such person in the archive.") from None

    def person_episodes(self, slug: str) -> list[Episode]:
        return [e for e in self.published if any(p.slug == slug for p in e.speakers)]


def _read_shards(shards: dict[str, str], old: fmt.Layout | None, fetched: dict[str, bytes],
                 episodes: dict[str, Episode], members: dict[str, set[str]],
                 changed: set[str]) -> None:
    """Put the episodes of each shard whose key changed in `episodes` and `members` (in
    place), and their ids, with those of the episodes the shard held before, in `changed`."""
    for shard in set(members) | set(shards):
        if old is not None and old.shards.get(shard) == shards.get(shard):
            continue
        for episode_id in members.pop(shard, set()):
            episodes.pop(episode_id, None)
            changed.add(episode_id)
        if shard in shards:
            found = fmt.read_shard(fetched[shards[shard]])
            episodes.update((e.id, e) for e in found)
            members[shard] = {e.id for e in found}
            changed.update(members[shard])


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Decoding 100,000 episodes makes millions of objects and no reference cycles: the
    collector's full passes over the growing heap cost ~0.9 s of a cold start, for nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _record_dict(person: Person) -> dict[str, Any]:
    found = person.to_dict()
    del found["role"], found["affiliation"]  # an appearance's, not the person's
    return found


def _newest_first(episode: Episode) -> tuple[float, float, str]:
    """A total order (the id settles ties), so every snapshot lists episodes alike however
    it was read or carried over."""
    day = episode.date or episode.published_at.date()
    return (-day.toordinal(), -episode.published_at.timestamp(), episode.id)


def _summarise(slug: str, appearances: list[Person]) -> PersonSummary:
    latest = appearances[-1]
    roles = tuple(dict.fromkeys(p.role for p in appearances))
    return PersonSummary(
        slug=slug,
        name=latest.name,
        affiliation=next((p.affiliation for p in reversed(appearances) if p.affiliation), ""),
        roles=roles,
        count=len(appearances),
        url=next((p.url for p in reversed(appearances) if p.url), ""),
        orcid=next((p.orcid for p in reversed(appearances) if p.orcid), ""),
    )


class Catalog:
    """The catalogue in one bucket: conditional writes for changers, cached views for readers."""

    def __init__(self, store: ObjectStore, *, ttl: float = 2.0) -> None:
        self.store = store
        self.ttl = ttl
        self._view: CatalogView | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()
        self.retries = 0  # changes that lost a race and were applied again (for operators)

    # -- reading --------------------------------------------------------------------------

    def view(self) -> CatalogView:
        """The current snapshot, revalidated when older than `ttl` seconds."""
        if self._view is None or time.monotonic() - self._checked_at >= self.ttl:
            self.refresh()
        assert self._view is not None
        return self._view

    def cached_view(self) -> CatalogView:
        """The snapshot as last seen, without any I/O (for request handlers)."""
        return self._view if self._view is not None else self.refresh()

    def names(self, episode_id: str) -> bool:
        """Whether the last snapshot this process saw or wrote has the episode (no I/O)."""
        view = self._view
        return view is not None and episode_id in view.data.episodes

    def refresh(self) -> CatalogView:
        """Conditional GET of the manifest: a 304 keeps the snapshot (and everything cached
        on it); a new manifest costs only the segments whose keys changed."""
        with self._lock:
            current = self._view
            for _ in range(STALE_RETRIES):
                etag = current.etag if current else None
                try:
                    result = self.store.get_bytes(CATALOG_KEY, if_none_match=etag)
                except NotFound:
                    result = None
                    if current is None or current.etag is not None:
                        current = CatalogView(CatalogData(), None, fmt.Layout())
                if result is None:
                    break
                try:
                    current = self._read(result[0], result[1], current)
                    break
                except _Superseded:  # a newer change removed a segment it named: read again
                    continue
            else:
                raise StorageError("The catalogue changed too fast to be read; try again.")
            self._view = current
            self._checked_at = time.monotonic()
            return current

    def _read(self, raw: bytes, etag: str, previous: CatalogView | None) -> CatalogView:
        """A snapshot from a manifest, reusing the previous snapshot's unchanged segments."""
        document = _document(raw)
        if document.get("version") == FORMAT_VERSION:
            return CatalogView(_parse(raw), etag, None)
        if document.get("version") != fmt.VERSION:
            raise StorageError(f"catalog.json has unknown format version "
                               f"{document.get('version')!r}.")
        try:
            shards = {str(k): str(v) for k, v in document["shards"].items()}
            registry_key = str(document.get("registry") or "")
            old = previous.layout if previous is not None else None
            base = previous.data if previous is not None and old is not None else None
            fetched = self._fetch([key for shard, key in shards.items()
                                   if old is None or old.shards.get(shard) != key]
                                  + ([registry_key] if registry_key and (
                                      old is None or old.registry != registry_key) else []))
            episodes = dict(base.episodes) if base is not None else {}
            # Member sets are never changed in place: unchanged shards share theirs.
            members = dict(old.members) if old is not None else {}
            changed: set[str] = set()
            with _collector_paused():
                _read_shards(shards, old, fetched, episodes, members, changed)
            if registry_key in fetched:
                registry = fmt.decode(fetched[registry_key])
                series = {x["slug"]: Series.from_dict(x) for x in registry.get("series", [])}
                people = _people(registry.get("people") or [])
            elif base is not None:
                series, people = base.series, base.people
            else:
                series, people = {}, {}
            data = CatalogData(
                guid=document["guid"], series=series, episodes=episodes, people=people,
                updated_at=datetime.fromisoformat(document["updated_at"]),
                removing=_removing(document.get("removing")))
        except (StorageError, _Superseded):
            raise
        except (ArchiveError, AttributeError, KeyError, TypeError, ValueError, OSError) as error:
            raise StorageError(f"catalog.json cannot be read ({type(error).__name__}); run "
                               "`archive reindex`.") from None
        return CatalogView(data, etag, fmt.Layout(shards, registry_key, members,
                                                  _retired_since(document.get("retired"))),
                           previous=previous if base is not None else None, changed=changed)

    def _fetch(self, keys: list[str]) -> dict[str, bytes]:
        """Segments by key, fetched in parallel; one that is gone means a newer manifest."""
        def get(key: str) -> tuple[str, bytes]:
            try:
                result = self.store.get_bytes(key)
            except NotFound:
                raise _Superseded(key) from None
            assert result is not None
            return key, result[0]

        if len(keys) <= 1:
            return dict(map(get, keys))
        with ThreadPoolExecutor(min(FETCH_THREADS, len(keys))) as pool:
            return dict(pool.map(get, keys))

    # -- changing -------------------------------------------------------------------------

    def change(self, apply: Callable[[CatalogData], T], *, check_new_keys: bool = True,
               missing_ok: bool = True, replace_damaged: bool = False) -> T:
        """Read-modify-write `catalog.json` with If-Match, retrying on a lost race.

        `apply` mutates the document and may raise to abandon the change; it can run more than
        once, so it must not have side effects outside the document. Every object the change
        newly names must exist (HEAD, after the read) and must not be on its way to the trash,
        so a commit never names an object that is gone, whatever `verify --repair` does.
        `missing_ok=False` refuses to start a new catalogue; `replace_damaged` (reindex)
        overwrites one that cannot be read. People records and the speakers of the episodes
        `apply` put in (new objects) are linked before the write (`archive.people.link`).
        """
        for attempt in range(MAX_ATTEMPTS):
            base = self._base_for_change(missing_ok, replace_damaged)
            data = _working_copy(base.data)
            people_before = people_records.snapshot(data.people)
            result = apply(data)
            people_records.link(data.people, data.episodes, _changed(base.data, data),
                                people_before)
            if check_new_keys:
                self._check_new_keys(_new_keys(base.data, data), data)
            # Strictly later than the snapshot it replaces: processes order snapshots by it.
            data.updated_at = next_revision(base.data.updated_at)
            plan = _plan_write(base, data)
            self.store.put_many([(key, body) for key, body in plan.writes],
                                fmt.CONTENT_TYPE)
            try:
                stored = self.store.put_json(CATALOG_KEY, plan.manifest, if_match=base.etag,
                                             if_none_match=base.etag is None)
            except Conflict:
                self.retries += 1
                self._forget_segments(plan.written - base_keys(base))
                time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
                continue
            touched = _touched(data)
            view = CatalogView(_settled(data), stored.etag, plan.layout, previous=base,
                               changed=touched)
            with self._lock:
                self._view = view
                self._checked_at = time.monotonic()
            self._forget_segments(plan.expired)
            return result
        raise Conflict("The catalogue is changing too fast to save this change; try again.")

    def upgrade(self) -> bool:
        """Rewrite a format-1 catalogue (everything in catalog.json) as manifest and segments;
        says whether it did. `archive serve` does this on start; nothing is lost, and a
        catalogue that cannot be read is left for `archive reindex`."""
        try:
            view = self.refresh()
        except StorageError as error:
            log.warning("catalogue not upgraded: %s", error.message)
            return False
        if view.layout is not None or view.etag is None:
            return False
        self.change(lambda data: None, check_new_keys=False, missing_ok=False)
        with self._lock:  # read back as any reader would: from the segments, episodes packed
            self._view = None
        with contextlib.suppress(StorageError):  # else the next request reads it
            self.refresh()
        log.info("catalogue upgraded to format %d (%d episodes)", fmt.VERSION,
                 len(view.data.episodes))
        return True

    def _base_for_change(self, missing_ok: bool, replace_damaged: bool) -> CatalogView:
        """The latest snapshot to change (a conditional GET: cheap when nothing changed)."""
        try:
            view = self.refresh()
        except StorageError:
            if not replace_damaged or not self.store.exists(CATALOG_KEY):
                raise
            return CatalogView(CatalogData(), self.store.head(CATALOG_KEY).etag, None)
        if view.etag is None and not missing_ok:
            raise StorageError(MISSING)
        return view

    def _forget_segments(self, keys: set[str]) -> None:
        """Segments no manifest names any more (superseded, or written by a change that lost
        its race). Best effort: a reader that still wanted one reads the new manifest."""
        if keys:
            with contextlib.suppress(ArchiveError):
                self.store.delete_many(sorted(keys))

    def _check_new_keys(self, keys: set[str], data: CatalogData) -> None:
        """Refuse to name an object a repair is moving, or one that is no longer there."""
        for key in sorted(keys):
            if key in data.removing:
                raise Conflict(f"{key} is being removed (an edit replaced it, or `archive "
                               "verify --repair` moves it to the trash): upload it again.")
            if not self.store.exists(key):
                raise Conflict(f"{key} was removed before it could be published (by `archive "
                               "verify --repair` with a short --grace?): upload it again.")

    def stage(self, episode_id: str) -> Stage:
        """Start publishing an episode: upload its objects, then `commit`; see `Stage`."""
        return Stage(self, episode_id)

    def add_episode(self, episode: Episode, series: Series | None = None) -> Episode:
        """Commit: the episode becomes visible. Refuses a duplicate recording; slugs made unique."""

        def apply(data: CatalogData) -> Episode:
            existing = data.find_original(episode.original_sha256) if episode.original_sha256 \
                else None
            if existing is not None and existing.id != episode.id:
                raise Duplicate(
                    f"This recording is already in the archive as {existing.title!r} "
                    f"({existing.id}).", existing.id,
                )
            if series is not None and series.slug not in data.series:
                data.series[series.slug] = series
            if episode.series not in data.series:
                raise NotFound(f"There is no series {episode.series!r}.")
            episode.slug = data.unique_slug(episode.slug, episode.id)
            data.episodes[episode.id] = episode
            return episode

        committed = self.change(apply)
        self.write_copies(committed, series is not None)
        return committed

    def write_copies(self, episode: Episode, new_series: bool) -> None:
        """After a commit: the meta.json copies `reindex` rebuilds from. Best effort: the
        episode is already published, and `verify --repair` restores a missing copy."""
        try:
            self.write_meta(episode)
            if new_series:
                self.write_series_meta(self.cached_view().data.series[episode.series])
        except StorageError as error:
            log.warning("meta.json of %s not written (verify --repair restores it): %s",
                        episode.id, error.message)

    def write_series_meta(self, series: Series) -> None:
        self.store.put_json(series_meta_key(series.slug), series.to_dict())

    def write_meta(self, episode: Episode) -> None:
        """`episodes/<id>/meta.json`: the episode's own copy, from which `reindex` rebuilds."""
        self.store.put_json(meta_key(episode.id), episode.to_dict())

    def episode_keys(self, episode_id: str) -> list[str]:
        return [info.key for info in self.store.list(episode_prefix(episode_id))]

    def remove_objects(self, keys: Iterable[str]) -> None:
        self.store.delete_many(keys)

    @contextlib.contextmanager
    def claim_for_removal(self, keys: Iterable[str]) -> Iterator[list[str]]:
        """Claim the keys no one names (one catalogue change), remove them in the block, then
        withdraw the claim: a commit naming one of them meanwhile is refused, never published
        with the object gone. With no catalogue at all nothing can name them."""
        keys = list(keys)
        if not keys:
            yield []
            return
        claim = new_claim()
        try:
            claimed = self.change(lambda data: data.mark_removing(keys, claim),
                                  missing_ok=False)
        except StorageError:
            if self.store.exists(CATALOG_KEY):
                raise
            yield keys
            return
        try:
            yield claimed
        finally:
            self.withdraw(claimed, claim)

    def withdraw(self, keys: list[str], claim: str) -> None:
        """End a claim (best effort: a claim left behind expires after `CLAIM_TTL`)."""
        if not keys:
            return
        try:
            self.change(lambda data: data.unmark_removing(keys, claim), missing_ok=False)
        except ArchiveError as error:
            log.warning("claim on %d keys not withdrawn (expires by itself): %s", len(keys),
                        error.message)


class _Superseded(Exception):
    """A segment named by the manifest just read is gone: a newer change replaced it."""


@dataclass
class _Plan:
    """What one change writes: new segments, then the manifest naming them."""

    manifest: dict[str, Any]
    layout: fmt.Layout
    writes: list[tuple[str, bytes]]
    expired: set[str]  # retired segments past their grace: deleted once the manifest lands

    @property
    def written(self) -> set[str]:
        return {key for key, _ in self.writes}


def base_keys(view: CatalogView) -> set[str]:
    return view.layout.named() if view.layout is not None else set()


def _working_copy(data: CatalogData) -> CatalogData:
    """What `apply` changes: the snapshot's episodes copied on first touch, the rest (series,
    people, claims: small) copied whole."""
    return CatalogData(
        guid=data.guid,
        series={slug: Series.from_dict(s.to_dict()) for slug, s in data.series.items()},
        episodes=fmt.TrackedEpisodes(data.episodes),
        people={slug: Person.from_dict(p.to_dict()) for slug, p in data.people.items()},
        updated_at=data.updated_at,
        removing={key: dict(claims) for key, claims in data.removing.items()},
    )


def _touched(data: CatalogData) -> set[str] | None:
    """Ids of the episodes a change may have altered; None when it replaced them all."""
    if isinstance(data.episodes, fmt.TrackedEpisodes):
        return set(data.episodes.touched)
    return None


def _current(data: CatalogData, episode_id: str) -> Episode | None:
    episodes = data.episodes
    return episodes.peek(episode_id) if isinstance(episodes, fmt.TrackedEpisodes) \
        else episodes.get(episode_id)


def _changed(base: CatalogData, data: CatalogData) -> list[Episode]:
    """Episodes that are new objects after `apply` (for linking people records)."""
    touched = _touched(data)
    ids = touched if touched is not None else set(data.episodes)
    found = (_current(data, i) for i in ids)
    return [e for e in found if e is not None and base.episodes.get(e.id) is not e]


def _new_keys(base: CatalogData, data: CatalogData) -> set[str]:
    """Objects the change names that the snapshot did not (only touched episodes can)."""
    def keys(catalog: CatalogData, ids: Iterable[str] | None) -> set[str]:
        if ids is None:
            return catalog.file_keys()
        found = {f.key for i in ids if (e := _current(catalog, i)) for f in e.files.values()}
        found.update(s.cover.key for s in catalog.series.values() if s.cover)
        return found

    touched = _touched(data)
    return keys(data, touched) - keys(base, touched)


def _settled(data: CatalogData) -> CatalogData:
    """The written document as a plain snapshot for readers, the episodes the change made
    packed as a reader of the shards holds them, so a long-lived writer does not grow with
    what it edits."""
    if isinstance(data.episodes, fmt.TrackedEpisodes):
        touched = data.episodes.touched
        episodes = data.episodes.plain()
        for episode_id in touched:
            if (episode := episodes.get(episode_id)) is not None:
                episodes[episode_id] = models.pack(episode)
    else:
        episodes = {episode_id: models.pack(e) for episode_id, e in data.episodes.items()}
    data.episodes = episodes
    return data


def _plan_write(base: CatalogView, data: CatalogData) -> _Plan:
    """The shards and registry that differ from the snapshot's, and the manifest."""
    old = base.layout
    touched = _touched(data)
    members = dict(old.members) if old is not None else {}  # sets replaced, never changed
    if old is None or touched is None:  # format 1, nothing yet, or every episode replaced
        dirty = None
        members = {}
        for episode_id in data.episodes:
            members.setdefault(fmt.shard_of(episode_id), set()).add(episode_id)
    else:
        dirty = set()
        for episode_id in touched:
            before, after = base.data.episodes.get(episode_id), _current(data, episode_id)
            if before is after or (before is not None and after is not None
                                   and before.to_dict() == after.to_dict()):
                continue
            shard = fmt.shard_of(episode_id)
            if shard not in dirty:
                members[shard] = set(members.get(shard, ()))  # this change's own copy
                dirty.add(shard)
            if after is None:
                members[shard].discard(episode_id)
            else:
                members[shard].add(episode_id)
    shards = dict(old.shards) if old is not None else {}
    writes: list[tuple[str, bytes]] = []
    for shard in sorted(members if dirty is None else dirty):
        ids = members.get(shard, set())
        if not ids:
            shards.pop(shard, None)
            members.pop(shard, None)
            continue
        key, body = fmt.shard_body(shard, (_current(data, i) for i in ids))  # type: ignore[misc]
        if fmt.digest(shards.get(shard, "")) != fmt.digest(key):
            writes.append((key, body))
            shards[shard] = key
    if dirty is None:
        shards = {k: v for k, v in shards.items() if k in members}
    document = data.to_dict(with_episodes=False)
    registry_key, registry = fmt.registry_body(document.pop("series"), document.pop("people"))
    if old is not None and fmt.digest(old.registry) == fmt.digest(registry_key):
        registry_key = old.registry
    else:
        writes.append((registry_key, registry))
    layout = fmt.Layout(shards, registry_key, members)
    now = utcnow()
    retired = dict(old.retired) if old is not None else {}
    retired.update((key, now.isoformat()) for key in base_keys(base) - layout.named())
    horizon = (now - timedelta(seconds=fmt.RETIRED_GRACE_S)).isoformat()
    expired = {key for key, since in retired.items() if since < horizon}
    layout.retired = {key: since for key, since in retired.items()
                      if key not in expired and key not in layout.named()}
    manifest = {**document, "version": fmt.VERSION, "registry": registry_key,
                "shards": dict(sorted(shards.items())), "episodes": len(data.episodes),
                "retired": dict(sorted(layout.retired.items()))}
    return _Plan(manifest, layout, writes, expired)


def _document(raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw)
    except ValueError:
        raise StorageError("catalog.json cannot be read (it is not JSON); run "
                           "`archive reindex`.") from None
    if not isinstance(document, dict):
        raise StorageError("catalog.json cannot be read (not an object); run "
                           "`archive reindex`.")
    return document


def _people(items: list[dict[str, Any]]) -> dict[str, Person]:
    return {slug: people_records.check_record(slug, Person.from_dict(p))
            for p in items if (slug := str(p.get("slug") or ""))}


def _retired_since(raw: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (raw or {}).items()} if isinstance(raw, dict) else {}


def _removing(raw: Any) -> dict[str, dict[str, str]]:
    return {str(key): {str(c): str(t) for c, t in claims.items()}
            for key, claims in (raw or {}).items() if isinstance(claims, dict)}


def _parse(raw: bytes) -> CatalogData:
    try:
        document = json.loads(raw)
    except ValueError:
        raise StorageError("catalog.json is not valid JSON; run `archive reindex`.") from None
    if not isinstance(document, dict):
        raise StorageError("catalog.json is not a catalogue; run `archive reindex`.")
    try:
        return CatalogData.from_dict(document)
    except StorageError:
        raise
    except (ArchiveError, AttributeError, KeyError, TypeError, ValueError) as error:
        raise StorageError(f"catalog.json cannot be read ({type(error).__name__}); run "
                           "`archive reindex`.") from None


class Stage:
    """Objects of one episode on their way in. Nothing is visible until `commit`.

    Used as a context manager: leaving it with an exception, or without committing, deletes
    every object under the episode's prefix, so a failed ingest leaves nothing behind.
    """

    def __init__(self, catalog: Catalog, episode_id: str) -> None:
        self.catalog = catalog
        self.episode_id = episode_id
        self.prefix = episode_prefix(episode_id)
        self.committed = False

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, kind: object, error: object, tb: object) -> None:
        if not self.committed:
            self.discard()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def commit(self, episode: Episode, series: Series | None = None) -> Episode:
        """Name the episode in the catalogue. `Catalog.change` first checks (HEAD) every staged
        object it names: one removed meanwhile fails the commit instead of being published."""
        if episode.id != self.episode_id:
            raise ValueError("episode id does not match the staged objects")
        # Once the catalogue names the episode its objects are never discarded, even if what
        # follows the commit fails or is interrupted.
        try:
            return self.catalog.add_episode(episode, series)
        finally:
            self.committed = self.catalog.names(episode.id)

    def discard(self) -> None:
        """Best effort: when storage itself is down, `archive verify --repair` finishes this.
        Claimed first, so a commit that did land after all (a lost reply) keeps its objects."""
        with contextlib.suppress(StorageError, Conflict), \
                self.catalog.claim_for_removal(self.catalog.episode_keys(self.episode_id)) \
                as claimed:
            self.catalog.remove_objects(claimed)
