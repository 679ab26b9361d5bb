"""People as records of their own: one `Person` per slug in `CatalogData.people`, shared by
every episode they speak in.

An episode keeps its speakers (name, role and affiliation there), and each speaker carries a
copy of their record's name, ORCID iD, homepage and image. The copies are kept equal to the
record inside every catalogue change (`link`), so whatever reads an episode (feeds, pages,
citations, OAI-PMH, IIIF, bags, meta.json) sees a person's current identifiers without a
lookup. Plain data only: no storage, no HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from archive.errors import InvalidInput
from archive.models import Episode, Person

# What a record holds for everyone; role and affiliation belong to each appearance.
SHARED = ("orcid", "url", "image")


def record_of(speaker: Person) -> Person:
    """A new record from a speaker's appearance."""
    return Person(name=speaker.name, orcid=speaker.orcid, url=speaker.url, image=speaker.image)


def check_record(slug: str, person: Person) -> Person:
    """A record lives under its own slug: renaming may not move it (its URL would change)."""
    if person.slug != slug:
        raise InvalidInput(
            f"The name {person.name!r} would give this person a new address "
            f"(/people/{person.slug}); keep a name with the address /people/{slug}.")
    return Person(name=person.name, orcid=person.orcid, url=person.url, image=person.image)


def learn(people: dict[str, Person], speakers: Iterable[Person]) -> None:
    """Records learn from speakers just written by an editor, an import or the CLI: a person
    not yet known gets a record, and what a speaker states (an ORCID iD, a homepage, an image)
    becomes the record's. Blank fields say nothing and never clear a record."""
    for speaker in speakers:
        record = people.get(speaker.slug)
        if record is None:
            people[speaker.slug] = record_of(speaker)
            continue
        for name in SHARED:
            value = getattr(speaker, name)
            if value:
                setattr(record, name, value)


def apply(people: Mapping[str, Person], episodes: Iterable[Episode]) -> None:
    """Give every speaker their record's name and shared fields."""
    for episode in episodes:
        for speaker in episode.speakers:
            record = people.get(speaker.slug)
            if record is None:
                continue
            speaker.name = record.name
            for name in SHARED:
                setattr(speaker, name, getattr(record, name))


def read_only(episodes: Mapping[str, Episode]) -> Iterable[Episode]:
    """Every episode for reading, without the copy a change's working set makes of each
    episode it hands out (`originals()` of catalogue format 2)."""
    return getattr(episodes, "originals", episodes.values)()  # type: ignore[no-any-return]


def snapshot(people: Mapping[str, Person]) -> dict[str, tuple[str, ...]]:
    """What the records say, to tell after a change whether any of them changed."""
    return {slug: (p.name, *(getattr(p, name) for name in SHARED)) for slug, p in people.items()}


def link(people: dict[str, Person], episodes: Mapping[str, Episode],
         changed: Iterable[Episode], before: Mapping[str, tuple[str, ...]]) -> None:
    """Within a catalogue change: records learn from the changed episodes; then the changed
    episodes, and every episode in which a person whose record changed speaks (`before` is the
    `snapshot` taken before the change), are given their speakers' records. Only those are
    touched: a catalogue that copies episodes on first touch copies no others."""
    targets = list(changed)
    learn(people, (speaker for episode in targets for speaker in episode.speakers))
    after = snapshot(people)
    moved = {slug for slug, value in after.items() if before.get(slug) != value}
    if moved:
        ids = [e.id for e in read_only(episodes) if any(p.slug in moved for p in e.speakers)]
        targets += [episodes[episode_id] for episode_id in ids]
    apply(people, targets)


def appearing(episodes: Mapping[str, Episode], slug: str) -> list[Episode]:
    """The episodes in which the person speaks (drafts too: editors' business), read-only."""
    return [e for e in read_only(episodes) if any(p.slug == slug for p in e.speakers)]
