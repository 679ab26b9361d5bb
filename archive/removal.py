"""Deleting for good: tombstones, an episode's objects, its words in the search snapshot.

A delete writes the tombstone (`tombstones/<id>.json`: id, guid, date, nothing else) before it
takes the episode out of the catalogue, so from then on neither `reindex` nor `verify --repair`
counts or resurrects it, and whatever a failure leaves behind is finished by the next repair.
Listing the `tombstones/` prefix lists every deletion (id in the key, date as LastModified).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from archive.catalog import Catalog
from archive.errors import ArchiveError, NotFound, StorageError
from archive.models import Episode, Tombstone, episode_prefix
from archive.search import prune_snapshot
from archive.storage import ObjectStore

log = logging.getLogger("archive.removal")
TOMBSTONES = "tombstones/"


def tombstone_key(episode_id: str) -> str:
    return f"{TOMBSTONES}{episode_id}.json"


def write_tombstone(store: ObjectStore, episode: Episode) -> Tombstone:
    tombstone = Tombstone.of(episode)
    store.put_json(tombstone_key(episode.id), tombstone.to_dict())
    return tombstone


def forget_tombstone(store: ObjectStore, episode_id: str) -> None:
    """A delete that did not happen after all (its catalogue change failed)."""
    try:
        store.delete(tombstone_key(episode_id))
    except ArchiveError as error:
        log.warning("tombstone of %s left behind: %s", episode_id, error.message)


def tombstoned(store: ObjectStore) -> dict[str, datetime | None]:
    """Every deleted episode's id and when it was deleted, from one listing (no GETs)."""
    found: dict[str, datetime | None] = {}
    for info in store.list(TOMBSTONES):
        name = info.key[len(TOMBSTONES):]
        if name.endswith(".json") and "/" not in name:
            found[name[: -len(".json")]] = info.last_modified
    return found


def remove_episode_objects(store: ObjectStore, episode_id: str) -> list[str]:
    """Every object under a deleted episode's prefix, removed outright (a takedown keeps no
    copy in the trash); returns the keys."""
    keys = [info.key for info in store.list(episode_prefix(episode_id))]
    store.delete_many(keys)
    return keys


def forget_in_search(catalog: Catalog) -> int:
    """Rewrite the bucket's search snapshot without any episode that is no longer published."""
    published = {episode.id for episode in catalog.refresh().published}
    return prune_snapshot(catalog.store, published)


def finish(catalog: Catalog, episode_ids: Iterable[str], what: str) -> None:
    """After the catalogue change of a delete or unpublish: remove the copies of the content.
    The change stands either way; a failure says what `archive verify --repair` will finish."""
    try:
        for episode_id in episode_ids:
            remove_episode_objects(catalog.store, episode_id)
        forget_in_search(catalog)
    except (NotFound, StorageError) as error:
        raise StorageError(f"The recording is {what}, but copies of it are still in the "
                           f"bucket ({error.message}); `archive verify --repair` removes "
                           "them.") from None
