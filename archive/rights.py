"""Rights: an episode's rights statement, its embargo (scheduled publication), and what each
speaker said about publishing it (consent, for editors only).

- A scheduled episode is a draft with `publish_at`; `publish_due` publishes every one whose
  date has passed with a real catalogue write (new `published_at` and `updated_at`), so feeds,
  OAI-PMH datestamps and page caches change with it. `archive worker` runs it every minute
  (`Scheduler`), and `archive publish-due` once (for cron).
- Consent is recorded per speaker (by slug); "withdrawn" unpublishes in the same catalogue write
  (and cancels a schedule), and the audit log records who did it. An episode with a withdrawn
  or refused consent cannot be published or scheduled until an editor records another status.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from archive import audit, people, removal
from archive.catalog import CatalogData
from archive.errors import ArchiveError, Conflict, InvalidInput, NotFound
from archive.models import (
    CONSENT_STATUSES,
    RIGHTS_STATEMENTS,
    Episode,
    next_revision,
    normalise_rights,
    parse_datetime,
    slugify,
    utcnow,
)
from archive.runtime import Archive

log = logging.getLogger("archive.rights")
BLOCKING = frozenset({"withdrawn", "refused"})
SCHEDULER = "scheduler"  # the audit log's actor for scheduled publication
CHECK_EVERY = 60.0  # seconds between the worker's looks for due episodes


def blocked_by(episode: Episode) -> list[str]:
    """Speakers (slugs) whose consent forbids publishing."""
    return sorted(slug for slug, status in episode.consent.items() if status in BLOCKING)


def check_publishable(episode: Episode) -> None:
    """Refuse to publish (or schedule) while a speaker's consent is withdrawn or refused."""
    blocked = blocked_by(episode)
    if blocked:
        names = {p.slug: p.name for p in episode.speakers}
        who = ", ".join(names.get(slug, slug) for slug in blocked)
        raise Conflict(f"{who} withdrew or refused consent: record their consent again before "
                       "publishing this recording.")


def rights_label(episode: Episode) -> str:
    return RIGHTS_STATEMENTS.get(episode.rights, "")


# -- one episode, one catalogue write ------------------------------------------------------


def _change(archive: Archive, episode_id: str, edit: Callable[[Episode], None]) -> Episode:
    """Apply `edit` to the latest copy of the episode in one catalogue change; then its
    meta.json (best effort, as every edit)."""

    def apply(data: CatalogData) -> Episode:
        current = data.episodes.get(episode_id)
        if current is None:
            raise NotFound("There is no such recording.")
        episode = Episode.from_dict(current.to_dict())  # `apply` may run more than once
        edit(episode)
        episode.updated_at = next_revision(episode.updated_at)
        data.episodes[episode_id] = episode
        return episode

    changed = archive.catalog.change(apply, check_new_keys=False)
    try:
        archive.catalog.write_meta(changed)
    except ArchiveError as error:
        log.warning("meta.json of %s not written (verify --repair restores it): %s",
                    episode_id, error.message)
    return changed


def set_rights(archive: Archive, episode_id: str, statement: str, actor: str) -> Episode:
    uri = normalise_rights(statement)

    def edit(episode: Episode) -> None:
        episode.rights = uri

    changed = _change(archive, episode_id, edit)
    audit.safe_record(archive.store, actor, "episode.rights", episode_id, rights=uri)
    return changed


def schedule(archive: Archive, episode_id: str, when: datetime | str | None, actor: str
             ) -> Episode:
    """Embargo until `when`: the episode becomes (or stays) a draft that `publish_due`
    publishes once the date has passed. `None` cancels the schedule (it stays a draft)."""
    moment = parse_datetime(when) if when else None
    was_published: list[bool] = []

    def edit(episode: Episode) -> None:
        if moment is not None:
            check_publishable(episode)
        was_published[:] = [not episode.draft]
        episode.publish_at = moment
        if moment is not None:
            episode.draft = True

    changed = _change(archive, episode_id, edit)
    audit.safe_record(archive.store, actor, "episode.schedule", episode_id,
                      publish_at=moment.isoformat() if moment else None)
    if moment is not None and was_published == [True]:
        removal.finish(archive.catalog, [], "embargoed")  # out of the search snapshot too
    return changed


def set_consent(archive: Archive, episode_id: str, speaker_slug: str, status: str, actor: str
                ) -> Episode:
    """Record what a speaker said. "withdrawn" also unpublishes and cancels any schedule, in
    the same write; the audit log names the editor."""
    status = status.strip().lower()
    if status not in CONSENT_STATUSES:
        raise InvalidInput(f"Consent must be one of {', '.join(CONSENT_STATUSES)}.")
    slug = slugify(speaker_slug, "person")
    was_published: list[bool] = []

    def edit(episode: Episode) -> None:
        if slug not in {p.slug for p in episode.speakers}:
            raise NotFound("This person does not speak in this recording.")
        was_published[:] = [not episode.draft]
        if status == "unknown":
            episode.consent.pop(slug, None)
        else:
            episode.consent[slug] = status
        if status == "withdrawn":
            episode.draft = True
            episode.publish_at = None

    changed = _change(archive, episode_id, edit)
    unpublished = status == "withdrawn" and was_published == [True]
    audit.safe_record(archive.store, actor,
                      "consent.withdraw" if status == "withdrawn" else "consent.record",
                      episode_id, speaker=slug, status=status, unpublished=unpublished)
    if unpublished:
        removal.finish(archive.catalog, [], "unpublished")
    return changed


# -- scheduled publication -------------------------------------------------------------------


def due(data: CatalogData, now: datetime) -> list[str]:
    """Ids of the scheduled episodes whose date has passed (read-only: touches none)."""
    return [e.id for e in people.read_only(data.episodes)
            if e.draft and e.publish_at is not None and e.publish_at <= now and e.has_audio]


def publish_due(archive: Archive, now: datetime | None = None) -> list[Episode]:
    """Publish every scheduled episode whose date has passed, in one catalogue write. An
    episode whose consent was withdrawn meanwhile stays a draft, its schedule cancelled."""
    now = now or utcnow()
    if not due(archive.catalog.refresh().data, now):
        return []  # no write at all on the many checks with nothing due

    def apply(data: CatalogData) -> list[Episode]:
        published = []
        for episode_id in due(data, now):
            episode = Episode.from_dict(data.episodes[episode_id].to_dict())
            episode.publish_at = None
            episode.updated_at = next_revision(episode.updated_at)
            if not blocked_by(episode):
                episode.draft = False
                episode.published_at = now.replace(microsecond=0)
                published.append(episode)
            data.episodes[episode.id] = episode
        return published

    published = archive.catalog.change(apply, check_new_keys=False)
    for episode in published:
        audit.safe_record(archive.store, SCHEDULER, "episode.publish", episode.id,
                          title=episode.title, scheduled=True)
        try:
            archive.catalog.write_meta(episode)
        except ArchiveError as error:
            log.warning("meta.json of %s not written: %s", episode.id, error.message)
    return published


class Scheduler:
    """Looks for due episodes every `every` seconds until stopped (in `archive worker`).
    Several workers may look at once: the catalogue write is conditional, and an episode
    already published is no longer due, so each is published once."""

    def __init__(self, archive: Archive, every: float = CHECK_EVERY) -> None:
        self.archive = archive
        self.every = every

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                for episode in publish_due(self.archive):
                    log.info("published %s (scheduled)", episode.id)
            except ArchiveError as error:
                log.warning("scheduled publication not checked: %s", error.message)
            stop.wait(self.every)

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="scheduler", daemon=True)
        thread.start()
        return thread
