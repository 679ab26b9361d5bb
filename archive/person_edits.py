"""Editing a person's record: name, ORCID iD, homepage and image, shared by every episode.

One catalogue change sets the record and, through `archive.people.link`, every speaker copy in
every episode, so feeds, pages and citations change together. Afterwards (best effort, like
every meta.json write) the record's own copy `people/<slug>/meta.json`, from which `archive
reindex` restores records, and the meta.json of each episode the person speaks in.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from archive import audit, people
from archive.catalog import CatalogData, person_meta_key
from archive.errors import ArchiveError, NotFound, StorageError
from archive.models import Person, next_revision
from archive.runtime import Archive
from archive.storage import ObjectStore

log = logging.getLogger("archive.person_edits")


@dataclass(frozen=True)
class PersonChanges:
    """What an editor sets; a blank field clears it (the name cannot be blank)."""

    name: str
    orcid: str = ""
    url: str = ""
    image: str = ""


def find(archive: Archive, slug: str) -> Person:
    """The record, or one made from the person's latest appearance (older catalogues)."""
    data = archive.catalog.refresh().data
    return data.people.get(slug) or _from_appearance(data, slug)


def _from_appearance(data: CatalogData, slug: str) -> Person:
    for episode in sorted(people.read_only(data.episodes), key=lambda e: e.updated_at,
                          reverse=True):
        for speaker in episode.speakers:
            if speaker.slug == slug:
                return people.record_of(speaker)
    raise NotFound("There is no such person in the archive.")


def save(archive: Archive, slug: str, changes: PersonChanges, actor: str) -> Person:
    """Validate, then set the record in one catalogue change; refused for a name that would
    move the person to another address."""
    wanted = people.check_record(slug, Person.from_dict(
        {"name": changes.name, "orcid": changes.orcid, "url": changes.url,
         "image": changes.image}))

    def apply(data: CatalogData) -> Person:
        if slug not in data.people:
            _from_appearance(data, slug)  # NotFound when nobody has this address
        before = data.people.get(slug)
        data.people[slug] = Person(name=wanted.name, orcid=wanted.orcid, url=wanted.url,
                                   image=wanted.image)
        if before is None or before.to_dict() != data.people[slug].to_dict():
            # The episodes' records change with it: their datestamps too, so harvesters
            # asking for what changed since (OAI-PMH `from`) see the new name or ORCID iD.
            for episode in people.appearing(data.episodes, slug):
                changed = data.episodes[episode.id]
                changed.updated_at = next_revision(changed.updated_at)
        return data.people[slug]

    saved = archive.catalog.change(apply, check_new_keys=False)
    audit.safe_record(archive.store, actor, "person.update", slug, name=saved.name,
                      orcid=saved.orcid, url=saved.url, image=saved.image)
    write_copies(archive, slug)
    return saved


def write_copies(archive: Archive, slug: str) -> None:
    """The record's meta.json and those of the episodes it appears in (best effort: the
    catalogue already holds the change, and `verify --repair` restores episode copies)."""
    data = archive.catalog.cached_view().data
    try:
        record = data.people[slug]
        archive.store.put_json(person_meta_key(slug), {"slug": slug, **record.to_dict()})
        for episode in people.appearing(data.episodes, slug):
            archive.catalog.write_meta(episode)
    except (ArchiveError, StorageError) as error:
        log.warning("copies of person %s not all written: %s", slug, error)


def load_copies(store: ObjectStore) -> dict[str, Person]:
    """Every record's own copy, for `archive reindex` (unreadable ones are skipped)."""
    found: dict[str, Person] = {}
    for info in store.list("people/"):
        if not info.key.endswith("/meta.json"):
            continue
        try:
            raw, _ = store.get_json(info.key)
            slug = str(raw.get("slug") or "")
            found[slug] = people.check_record(slug, Person.from_dict(raw))
        except (ArchiveError, AttributeError):
            continue
    return found
