"""`archive verify` and `archive reindex`: fixity checks, orphan clean-up, catalogue rebuild.

Publishing writes media first and the catalogue last, so a crash leaves objects nobody names;
`verify` finds them and re-checks every stored checksum. `--repair` is built never to lose the
archive:

- it refuses to run without a readable `catalog.json`, or when the catalogue names clearly
  fewer episodes than the bucket holds (`episodes/*/meta.json` of episodes not deleted): the
  answer then is `archive reindex`, not a clean-up;
- it never touches a `meta.json` (reindex's source), nor anything under the prefix of an
  episode the catalogue has lost; objects younger than the grace period (a day by default)
  are uploads in flight and are left alone;
- orphans are moved (copied, then deleted) to `trash/<date>/<key>`, never deleted, and only
  up to a tenth of the objects unless `--force`; `--empty-trash --older-than DAYS` removes them;
- before moving, it claims the keys in the catalogue (`removing`), so a commit that races
  it is refused rather than published with a missing file (see `Catalog.claim_for_removal`);
- what a delete left behind (a tombstone says the episode was deleted) is removed outright:
  that finishes the delete, and a takedown keeps no copy in the trash;
- catalogue segments (`catalog/…`) the manifest neither names nor keeps for readers (a writer
  stopped between writing its segments and the manifest) are orphans too, but only once older
  than `SEGMENT_GRACE` whatever `--grace` says: a change in progress has written them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from archive import catalog_format as fmt
from archive import people, person_edits, removal
from archive.catalog import MISSING, Catalog, CatalogData, CatalogView, meta_key
from archive.errors import ArchiveError, Conflict, NotFound, StorageError
from archive.models import Episode, Series
from archive.storage import ObjectInfo, ObjectStore

SERIES_PREFIX = "series/"
EPISODES_PREFIX = "episodes/"
TRASH_PREFIX = "trash/"
DEFAULT_GRACE = timedelta(days=1)
MAX_TRASH_SHARE = 0.10  # of the objects under episodes/ and series/, per repair
MAX_LOST_SHARE = 0.10  # of the episodes in the bucket the catalogue may fail to name
SEGMENT_GRACE = timedelta(seconds=fmt.RETIRED_GRACE_S)  # unnamed segments younger: in use


@dataclass
class Report:
    checked: int = 0
    damaged: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    trashed: list[tuple[str, str]] = field(default_factory=list)  # (key, where it went)

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.orphans


@dataclass
class _Survey:
    """The bucket compared with the catalogue."""

    objects: int = 0  # under episodes/ and series/
    lost: set[str] = field(default_factory=set)  # episodes with a meta.json, not catalogued
    live: int = 0  # episodes with a meta.json, not deleted
    orphans: list[str] = field(default_factory=list)
    leftovers: dict[str, list[str]] = field(default_factory=dict)  # deleted id -> its keys
    unnamed_series: list[str] = field(default_factory=list)  # series meta.json not catalogued


def verify(
    catalog: Catalog,
    *,
    repair: bool = False,
    grace: timedelta = DEFAULT_GRACE,
    checksums: bool = True,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Check every object the catalogue names; list the rest (with repair, see the module)."""
    report = Report()
    _readable(catalog)
    cutoff = datetime.now(UTC) - grace
    listing = [info for prefix in (EPISODES_PREFIX, SERIES_PREFIX)
               for info in catalog.store.list(prefix)]
    segments = list(catalog.store.list(fmt.SEGMENT_PREFIX))
    deleted = removal.tombstoned(catalog.store)
    view = _readable(catalog)  # after listing: commits that landed meanwhile count
    data = view.data
    survey = _survey(listing, data, deleted, cutoff)
    unnamed = _unnamed_segments(segments, view, min(cutoff, datetime.now(UTC) - SEGMENT_GRACE))
    if repair:
        _refuse_if_unsafe(survey, force)  # before anything is written
    trash = _trash_index(catalog) if repair else {}
    _check_named(catalog, data, report, repair, checksums, trash, progress)
    _report_inconsistencies(report, data, survey, deleted, cutoff)
    if not repair:
        report.orphans.extend([*survey.orphans, *unnamed])
        _unfinished_uploads(catalog, report, repair, cutoff)
        return report
    _unfinished_uploads(catalog, report, repair, cutoff)
    _finish_deletions(catalog, report, survey)
    # Checksums can take hours: a manifest that landed meanwhile may name one of them now.
    latest = _readable(catalog).layout
    if latest is not None:
        unnamed = [key for key in unnamed
                   if key not in latest.named() and key not in latest.retired]
    report.trashed = move_to_trash(catalog, [*survey.orphans, *unnamed])
    return report


def _unnamed_segments(listing: list[ObjectInfo], view: CatalogView,
                      cutoff: datetime) -> list[str]:
    """Segments under `catalog/` that the manifest does not name or keep for readers."""
    if view.layout is None:  # format 1: everything is in catalog.json
        return []
    kept = view.layout.named() | set(view.layout.retired)
    return [info.key for info in listing if info.key not in kept
            and info.last_modified is not None and info.last_modified < cutoff]


def _readable(catalog: Catalog) -> CatalogView:
    """The catalogue, or a refusal: without it every object would look like an orphan."""
    view = catalog.refresh()  # raises StorageError (run reindex) when it cannot be read
    if view.etag is None:
        raise StorageError(MISSING)
    return view


def _check_named(catalog: Catalog, data: CatalogData, report: Report, repair: bool,
                 checksums: bool, trash: dict[str, str],
                 progress: Callable[[str], None] | None) -> None:
    """Sizes and checksums of every catalogued object; with repair, a missing meta.json is
    written again and a file found in the trash is put back."""
    for episode in data.episodes.values():
        for role, media in episode.files.items():
            if progress:
                progress(media.key)
            problem = _check_object(catalog, media.key, media.size, media.sha256, checksums)
            report.checked += 1
            if problem == "missing" and repair and media.key in trash:
                catalog.store.copy(trash[media.key], media.key)
                report.repaired.append(f"{media.key} (put back from {trash[media.key]})")
            elif problem:
                report.damaged.append(f"{episode.id} {role}: {problem}")
        if not catalog.store.exists(meta_key(episode.id)):
            if repair:
                catalog.write_meta(episode)
                report.repaired.append(meta_key(episode.id))
            else:
                report.damaged.append(f"{episode.id}: meta.json is missing")


def _survey(listing: list[ObjectInfo], data: CatalogData,
            deleted: dict[str, datetime | None], cutoff: datetime) -> _Survey:
    survey = _Survey(objects=len(listing))
    metas = {_episode_id(info.key) for info in listing
             if info.key.startswith(EPISODES_PREFIX) and info.key.endswith("/meta.json")}
    live = {episode_id for episode_id in metas if episode_id and episode_id not in deleted}
    survey.live = len(live | set(data.episodes))
    survey.lost = live - set(data.episodes)
    referenced = data.named_keys()
    series_metas = {info.key for info in listing
                    if info.key.startswith(SERIES_PREFIX) and info.key.endswith("/meta.json")}
    lost_series = {key.rsplit("/", 1)[0] + "/" for key in series_metas - referenced}
    for info in listing:
        owner = _episode_id(info.key)
        if info.key in referenced or owner in survey.lost:
            continue
        if any(info.key.startswith(prefix) for prefix in lost_series):
            if info.key in series_metas:
                survey.unnamed_series.append(info.key)
            continue
        if owner and owner in deleted and owner not in data.episodes:
            survey.leftovers.setdefault(owner, []).append(info.key)
        elif info.key.endswith("/meta.json"):
            continue  # reindex's source: never an orphan
        elif not (info.last_modified and info.last_modified > cutoff):
            survey.orphans.append(info.key)
    return survey


def _episode_id(key: str) -> str:
    """The episode a key belongs to ('' for keys outside episodes/<id>/)."""
    if not key.startswith(EPISODES_PREFIX):
        return ""
    head, _, rest = key[len(EPISODES_PREFIX):].partition("/")
    return head if rest else ""


def _report_inconsistencies(report: Report, data: CatalogData, survey: _Survey,
                            deleted: dict[str, datetime | None], cutoff: datetime) -> None:
    for episode_id in sorted(survey.lost):
        report.damaged.append(f"{episode_id}: in the bucket but not in catalog.json "
                              "(run `archive reindex`)")
    for key in survey.unnamed_series:
        report.damaged.append(f"{key}: a series not in catalog.json (run `archive reindex`)")
    for episode_id in sorted(set(deleted) & set(data.episodes)):
        when = deleted[episode_id]
        if when is None or when < cutoff:
            report.damaged.append(f"{episode_id}: its deletion did not finish (it has a "
                                  "tombstone but is still in catalog.json); delete it again")


def _refuse_if_unsafe(survey: _Survey, force: bool) -> None:
    if survey.lost and len(survey.lost) > MAX_LOST_SHARE * survey.live:
        raise Conflict(
            f"catalog.json names {survey.live - len(survey.lost)} of the {survey.live} episodes "
            "in the bucket: run `archive reindex` first; verify --repair will not run on a "
            "catalogue that has lost episodes.")
    moving = len(survey.orphans)
    if moving > MAX_TRASH_SHARE * survey.objects and not force:
        raise Conflict(
            f"verify --repair would move {moving} of {survey.objects} objects to the trash "
            f"(more than {MAX_TRASH_SHARE:.0%}): check the ORPHAN lines of `archive verify`, "
            "then run it again with --force.")


def _unfinished_uploads(catalog: Catalog, report: Report, repair: bool,
                        cutoff: datetime) -> None:
    """Multipart uploads never completed: nothing names them; abort the ones past the grace."""
    for key, upload_id, started in catalog.store.unfinished_uploads(EPISODES_PREFIX):
        if started and started > cutoff:
            continue  # an upload in flight
        if repair:
            catalog.store.abort_upload(key, upload_id)
            report.repaired.append(f"{key} (unfinished upload aborted)")
        else:
            report.orphans.append(f"{key} (unfinished upload)")


def _finish_deletions(catalog: Catalog, report: Report, survey: _Survey) -> None:
    """What interrupted deletes left, removed outright (a tombstone is never resurrected);
    and the search snapshot forgets every episode no longer published."""
    for episode_id, keys in sorted(survey.leftovers.items()):
        catalog.store.delete_many(keys)
        report.repaired.extend(f"{key} (removed: episode {episode_id} was deleted)"
                               for key in keys)
    forgotten = removal.forget_in_search(catalog)
    if forgotten:
        report.repaired.append(f"search/index.sqlite ({forgotten} unpublished or deleted "
                               "episodes removed)")


def _check_object(catalog: Catalog, key: str, size: int, sha256: str, checksums: bool) -> str:
    try:
        info = catalog.store.head(key)
    except NotFound:
        return "missing"
    if info.size != size:
        return f"size {info.size} bytes, expected {size}"
    if checksums:
        digest = hashlib.sha256()
        for chunk in catalog.store.open(key):
            digest.update(chunk)
        if digest.hexdigest() != sha256:
            return "checksum mismatch (the stored bytes changed)"
    return ""


# -- the trash -----------------------------------------------------------------------------


def trash_key(key: str, day: datetime) -> str:
    return f"{TRASH_PREFIX}{day.date().isoformat()}/{key}"


def move_to_trash(catalog: Catalog, keys: Iterable[str]) -> list[tuple[str, str]]:
    """Copy each key to `trash/<date>/<key>`, then delete it. The keys are claimed in the
    catalogue first (the same conditional write checks that no one names them), so a commit
    racing the move is refused instead of published with a file missing."""
    now = datetime.now(UTC)
    moved: list[tuple[str, str]] = []
    with catalog.claim_for_removal(keys) as claimed:
        for key in claimed:
            target = trash_key(key, now)
            try:
                catalog.store.copy(key, target)
            except NotFound:
                continue  # removed meanwhile by whoever made it
            catalog.store.delete(key)
            moved.append((key, target))
    return moved


def _trash_index(catalog: Catalog) -> dict[str, str]:
    """Original key -> its newest copy in the trash."""
    found: dict[str, str] = {}
    for info in catalog.store.list(TRASH_PREFIX):
        _, _, original = info.key[len(TRASH_PREFIX):].partition("/")
        if original and info.key > found.get(original, ""):
            found[original] = info.key
    return found


def empty_trash(store: ObjectStore, older_than: timedelta) -> list[str]:
    """Delete what has been in the trash longer than `older_than`; returns the keys."""
    cutoff = datetime.now(UTC) - older_than
    keys = [info.key for info in store.list(TRASH_PREFIX)
            if info.last_modified is None or info.last_modified <= cutoff]
    store.delete_many(keys)
    return keys


# -- reindex -------------------------------------------------------------------------------


REINDEX_THREADS = 32  # reading meta.json files is waiting on storage, not CPU


def reindex(catalog: Catalog, progress: Callable[[int, int], None] | None = None
            ) -> CatalogData:
    """Rebuild the catalogue from every `meta.json` (after loss or damage of the catalogue),
    reading them in parallel; `progress(done, total)` is told as it goes. Deleted episodes
    (tombstones) stay deleted, whatever their interrupted delete left."""
    deleted = removal.tombstoned(catalog.store)
    episodes: dict[str, Episode] = {}
    series: dict[str, Series] = {}
    keys = [info.key for info in catalog.store.list(EPISODES_PREFIX)
            if info.key.endswith("/meta.json") and _episode_id(info.key) not in deleted]

    def read(key: str) -> Episode | None:
        try:
            raw, _ = catalog.store.get_json(key)
            episode = Episode.from_dict(raw)
        except ArchiveError:
            return None  # unreadable leftovers are verify's business
        return episode if key == meta_key(episode.id) and episode.files else None

    with ThreadPoolExecutor(REINDEX_THREADS) as pool:
        for done, episode in enumerate(pool.map(read, keys), start=1):
            if episode is not None:
                episodes[episode.id] = episode
            if progress is not None and (done % 500 == 0 or done == len(keys)):
                progress(done, len(keys))
    for info in catalog.store.list(SERIES_PREFIX):
        if info.key.endswith("/meta.json"):
            try:
                raw, _ = catalog.store.get_json(info.key)
                item = Series.from_dict(raw)
            except ArchiveError:
                continue
            series[item.slug] = item
    for episode in episodes.values():
        if episode.series not in series:
            series[episode.series] = Series.from_dict(
                {"slug": episode.series, "title": episode.series.replace("-", " ").title()}
            )

    records = person_edits.load_copies(catalog.store)
    people.apply(records, episodes.values())  # the records' own copies are the newest

    def replace(data: CatalogData) -> CatalogData:
        data.episodes = episodes
        data.series = series
        data.people = {**data.people, **records}
        return data

    return catalog.change(replace, check_new_keys=False, replace_damaged=True)

