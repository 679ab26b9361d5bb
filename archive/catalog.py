"""The catalogue: `catalog.json` in the bucket, changed only by conditional writes, and read views.

Writers call `Catalog.change(fn)`: read the current document and its ETag, apply `fn`, write it
back with `If-Match` (or `If-None-Match: *` for the first write) and start again on 412, so two
editors who publish at once both land. Readers hold an immutable `CatalogView` and revalidate it
with a conditional GET at most every `ttl` seconds, so several app processes agree within seconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, TypeVar

from archive import people as people_records
from archive.errors import ArchiveError, Conflict, Duplicate, NotFound, StorageError
from archive.models import Episode, Person, Series, episode_prefix, utcnow
from archive.storage import ObjectStore

log = logging.getLogger("archive.catalog")
CATALOG_KEY = "catalog.json"
MISSING = ("catalog.json is missing: run `archive reindex` to rebuild it from every "
           "episode's meta.json.")
FORMAT_VERSION = 1
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

    def to_dict(self) -> dict[str, Any]:
        document = {
            "version": FORMAT_VERSION,
            "guid": self.guid,
            "updated_at": self.updated_at.isoformat(),
            "series": [s.to_dict() for s in sorted(self.series.values(), key=lambda s: s.slug)],
            "episodes": [e.to_dict() for e in sorted(self.episodes.values(), key=lambda e: e.id)],
            "people": [{"slug": slug, **_record_dict(person)}
                       for slug, person in sorted(self.people.items())],
        }
        if self.removing:
            document["removing"] = dict(sorted(self.removing.items()))
        return document

    def file_keys(self) -> set[str]:
        """Every object the catalogue names: episodes' files and series covers."""
        keys = {f.key for e in self.episodes.values() for f in e.files.values()}
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
        named = self.named_keys()
        claimed = [key for key in dict.fromkeys(keys) if key not in named]
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
        taken = {e.slug for e in self.episodes.values() if e.id != episode_id}
        candidate, n = slug, 1
        while candidate in taken:
            n += 1
            candidate = f"{slug}-{n}"
        return candidate

    def find_original(self, sha256: str) -> Episode | None:
        return next((e for e in self.episodes.values() if e.original_sha256 == sha256), None)


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

    def __init__(self, data: CatalogData, etag: str | None) -> None:
        self.data = data
        self.etag = etag
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
        episodes = [e for e in self.data.episodes.values() if not e.draft and e.audio]
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


def _record_dict(person: Person) -> dict[str, Any]:
    found = person.to_dict()
    del found["role"], found["affiliation"]  # an appearance's, not the person's
    return found


def _newest_first(episode: Episode) -> tuple[float, float]:
    day = episode.date or episode.published_at.date()
    return (-day.toordinal(), -episode.published_at.timestamp())


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
        """Conditional GET: a 304 keeps the snapshot (and everything cached on it)."""
        with self._lock:
            current = self._view
            etag = current.etag if current else None
            try:
                result = self.store.get_bytes(CATALOG_KEY, if_none_match=etag)
            except NotFound:
                result = None
                if current is None or current.etag is not None:
                    current = CatalogView(CatalogData(), None)
            if result is not None:
                current = CatalogView(_parse(result[0]), result[1])
            self._view = current
            self._checked_at = time.monotonic()
            return current

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
            data, etag = self._load_for_change(missing_ok, replace_damaged)
            named_before = data.file_keys() if check_new_keys else set()
            episodes_before = dict(data.episodes)
            people_before = people_records.snapshot(data.people)
            result = apply(data)
            people_records.link(data.people, data.episodes,
                                (e for key, e in data.episodes.items()
                                 if episodes_before.get(key) is not e), people_before)
            if check_new_keys:
                self._check_new_keys(data.file_keys() - named_before, data)
            data.updated_at = utcnow()
            try:
                stored = self.store.put_json(
                    CATALOG_KEY, data.to_dict(), if_match=etag, if_none_match=etag is None
                )
            except Conflict:
                time.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))
                continue
            with self._lock:
                self._view = CatalogView(data, stored.etag)
                self._checked_at = time.monotonic()
            return result
        raise Conflict("The catalogue is changing too fast to save this change; try again.")

    def _load_for_change(self, missing_ok: bool = True, replace_damaged: bool = False
                         ) -> tuple[CatalogData, str | None]:
        try:
            raw, etag = self.store.get_bytes(CATALOG_KEY) or (b"", None)
        except NotFound:
            if not missing_ok:
                raise StorageError(MISSING) from None
            return CatalogData(), None
        try:
            return _parse(raw), etag
        except StorageError:
            if not replace_damaged:
                raise
            return CatalogData(), etag

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
