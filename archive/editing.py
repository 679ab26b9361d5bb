"""Changing published episodes: metadata, sidecars, publish/unpublish, delete.

Every change is one `Catalog.change` (read-modify-write with If-Match, retried), so an edit never
overwrites another editor's upload or edit of a different episode. Two edits of the *same*
episode are detected by its `updated_at` (the revision an editor saw): the second is refused
with a Conflict instead of silently undoing the first.

Files whose bytes change (the re-tagged delivery file, a new transcript or chapters) are
uploaded under a new key (`episodes/<id>/<sha256[:12]>/<filename>`) before the catalogue
switches to them, and the old object is deleted afterwards. The *filename*, which is what
`/media/<id>/<filename>` URLs and feeds name, stays the same, so guid and URLs never change,
while a reader never sees catalogue sizes and checksums that disagree with the bytes served.
"""

from __future__ import annotations

import contextlib
import hashlib
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archive import artwork as web_artwork
from archive import audit, enrich, removal, rights, sidecars
from archive.catalog import CatalogData, new_claim
from archive.errors import ArchiveError, Conflict, InvalidInput, InvalidRecording, NotFound
from archive.ingest import Metadata, resolve_series, tag_delivery
from archive.models import Episode, MediaFile, Person, Provenance, Series, episode_prefix
from archive.runtime import Archive
from archive.storage import file_sha256
from archive.tasks import URGENT

# Fields an editor may change; id, guid, slug and files are the archive's own.
EDITABLE = frozenset({
    "title", "description", "speakers", "tags", "date", "licence", "series", "draft", "event",
    "location", "language", "season", "number", "episode_type", "explicit", "rights",
    "publish_at",  # an embargo: the episode becomes a draft published then (archive/rights.py)
})
# Fields written into the delivery file's tags: changing one re-tags the file.
TAGGED = frozenset({"title", "description", "speakers", "date", "licence", "series",
                    "language"})
EDITED_ELSEWHERE = ("Someone else changed this recording while you were editing it; "
                    "reload to see their changes, then make yours again.")
# What enrichment tasks write after publishing (`archive.enrich`), without bumping the revision:
# an edit that did not touch one of these keeps the value committed meanwhile.
ENRICHED = ("loudness", "pending", "enrichment_errors", "transcript_provenance",
            "transcript_language")

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _episode_lock(episode_id: str) -> threading.Lock:
    """Edits of one episode in one process take turns (other processes: the revision check)."""
    with _locks_guard:
        return _locks.setdefault(episode_id, threading.Lock())


def revision(episode: Episode) -> str:
    """What an edit form carries to detect that someone else saved in between."""
    return episode.updated_at.isoformat()


@dataclass
class _Change:
    """A validated new state of one episode and the objects it adds and retires."""

    base: Episode
    proposed: Episode
    new_series: Series | None = None
    added: list[str] | None = None
    retired: list[str] | None = None


# -- public operations -------------------------------------------------------------------------


def update_episode(archive: Archive, episode_id: str, changes: dict[str, Any], actor: str, *,
                   expected_revision: str | None = None) -> Episode:
    """Apply metadata changes (as the API's PATCH or the edit form give them)."""
    unknown = sorted(set(changes) - EDITABLE)
    if unknown:
        raise InvalidInput(f"These fields cannot be changed: {', '.join(unknown)}.")
    with _episode_lock(episode_id):
        base = _current(archive, episode_id, expected_revision)
        proposed, new_series = _proposed(archive, base, changes)
        change = _Change(base, proposed, new_series, [], [])
        if any(_differs(base, proposed, name) for name in TAGGED) or new_series is not None:
            _retag(archive, change)
        committed = _commit(archive, change)
    audit.safe_record(archive.store, actor, "episode.update", episode_id,
                      fields=sorted(changes), title=committed.title)
    if committed.draft and not base.draft:
        removal.finish(archive.catalog, [], "unpublished")
    return committed


def set_draft(archive: Archive, episode_id: str, draft: bool, actor: str) -> Episode:
    """Unpublish (draft) or publish; feeds follow with the catalogue."""
    return update_episode(archive, episode_id, {"draft": draft}, actor)


def replace_sidecars(archive: Archive, episode_id: str, actor: str, *,
                     artwork: Path | None = None, transcript: Path | None = None,
                     chapters: Path | None = None, expected_revision: str | None = None
                     ) -> Episode:
    """Replace artwork, transcript and/or chapters; the delivery file's tags follow."""
    if not (artwork or transcript or chapters):
        raise InvalidInput("Choose an artwork, transcript or chapters file to replace.")
    prepared = sidecars.prepare(Metadata(artwork=artwork, transcript=transcript,
                                         chapters=chapters))
    with _episode_lock(episode_id):
        base = _current(archive, episode_id, expected_revision)
        proposed = Episode.from_dict(base.to_dict())
        change = _Change(base, proposed, None, [], [])
        try:
            _store_sidecars(archive, change, prepared, actor)
            if artwork or chapters:
                _retag(archive, change, cover=prepared.cover)
        except BaseException:
            _discard(archive, change.added or [])
            raise
        committed = _commit(archive, change)
    replaced = [name for name, path in (("artwork", artwork), ("transcript", transcript),
                                        ("chapters", chapters)) if path]
    audit.safe_record(archive.store, actor, "episode.replace", episode_id, files=replaced)
    return committed


def delete_episode(archive: Archive, episode_id: str, actor: str) -> Episode:
    """Delete for good: a tombstone first (so nothing ever brings the episode back), then the
    catalogue (readers stop seeing it at once), then every object under its prefix and its
    words in the search snapshot. What a failure leaves, `archive verify --repair` finishes."""

    def apply(data: CatalogData) -> Episode:
        episode = data.episodes.pop(episode_id, None)
        if episode is None:
            raise NotFound("There is no such recording.")
        return episode

    with _episode_lock(episode_id):
        removal.write_tombstone(archive.store, _current(archive, episode_id, None))
        try:
            removed = archive.catalog.change(apply)
        except NotFound:
            raise  # deleted meanwhile: the tombstone is right
        except BaseException:
            with contextlib.suppress(ArchiveError):  # unsure whether it landed: keep it
                if episode_id in archive.catalog.refresh().data.episodes:
                    removal.forget_tombstone(archive.store, episode_id)
            raise
        audit.safe_record(archive.store, actor, "episode.delete", episode_id,
                          title=removed.title)
        removal.finish(archive.catalog, [episode_id], "deleted")
    return removed


# -- building the new state --------------------------------------------------------------------


def _current(archive: Archive, episode_id: str, expected: str | None) -> Episode:
    episode = archive.catalog.refresh().data.episodes.get(episode_id)
    if episode is None:
        raise NotFound("There is no such recording.")
    if expected and expected != revision(episode):
        raise Conflict(EDITED_ELSEWHERE)
    return episode


def _proposed(archive: Archive, base: Episode, changes: dict[str, Any]
              ) -> tuple[Episode, Series | None]:
    """The edited episode, validated as a whole; a series not yet known is created."""
    values = base.to_dict()
    new_series = None
    for name, value in changes.items():
        _check_type(name, value)
        if name == "speakers":
            value = [_person(item) for item in value or []]
        elif name == "series":
            known = archive.catalog.cached_view().data.series
            series = resolve_series(known, str(value or ""), archive)
            new_series = None if series.slug in known else series
            value = series.slug
        elif name == "tags" and isinstance(value, str):
            value = [t.strip() for t in value.split(",")]
        values[name] = value
    proposed = Episode.from_dict(values)
    if base.draft and not proposed.draft:
        rights.check_publishable(proposed)  # no speaker's consent withdrawn or refused
        proposed.publish_at = None  # published by hand: the schedule is done with
        proposed.published_at = datetime.now(UTC).replace(microsecond=0)
    if changes.get("publish_at"):
        rights.check_publishable(proposed)
        proposed.draft = True  # scheduled: hidden until `rights.publish_due` publishes it
    return proposed, new_series


FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "speakers": (list,), "tags": (list, str), "draft": (bool,), "explicit": (bool,),
    "location": (str, dict), "title": (str,), "description": (str,), "series": (str,),
    "event": (str,), "licence": (str,), "language": (str,), "date": (str,),
    "season": (int, str), "number": (int, str), "episode_type": (str,), "rights": (str,),
    "publish_at": (str,),
}


def _check_type(name: str, value: Any) -> None:
    """JSON from an API client: `"draft": "false"` must not quietly mean True."""
    expected = FIELD_TYPES.get(name)
    if value is None or expected is None:
        return
    wrong_bool = isinstance(value, bool) and bool not in expected  # True is an int in Python
    if not isinstance(value, expected) or wrong_bool:
        kinds = " or ".join(sorted({_JSON_NAMES[t] for t in expected}))
        raise InvalidInput(f"{name} must be {kinds}.")


_JSON_NAMES = {list: "a list", str: "text", bool: "true or false", dict: "an object",
               int: "a whole number"}


def _person(item: Any) -> dict[str, Any]:
    if isinstance(item, str):
        return Person.parse(item).to_dict()
    if isinstance(item, dict):
        return Person.from_dict(item).to_dict()
    raise InvalidInput("Each speaker is 'Name;role;affiliation' or an object with a name.")


def _differs(a: Episode, b: Episode, name: str) -> bool:
    return bool(getattr(a, name) != getattr(b, name))


# -- files -------------------------------------------------------------------------------------


def versioned_key(episode_id: str, sha256: str, filename: str) -> str:
    return f"{episode_prefix(episode_id)}{sha256[:12]}/{filename}"


def _retag(archive: Archive, change: _Change, cover: bytes | None = None) -> None:
    """Write the edited metadata into a copy of the delivery file and store it under a new key."""
    audio = change.proposed.audio
    if audio is None:
        return
    kind = {"audio/mpeg": "mp3", "audio/mp4": "m4a"}.get(audio.content_type)
    if kind is None:
        return
    series = _series_for(archive, change)
    cover = cover if cover is not None else _stored_cover(archive, change.proposed)
    with tempfile.TemporaryDirectory(prefix="archive-retag-") as work:
        local = Path(work) / f"delivery.{kind}"
        with local.open("wb") as out:
            archive.store.download_to(audio.key, out)
        try:
            tag_delivery(local, kind, change.proposed, archive, cover, series)
        except InvalidRecording as error:
            raise InvalidInput(f"The recording could not be re-tagged: {error.message}") from None
        change.proposed.files["audio"] = _store_file(archive, change, "audio", local)


def _series_for(archive: Archive, change: _Change) -> Series:
    if change.new_series is not None:
        return change.new_series
    known = archive.catalog.cached_view().data.series
    return known.get(change.proposed.series) or Series.from_dict(
        {"slug": change.proposed.series, "title": change.proposed.series})


def _stored_cover(archive: Archive, episode: Episode) -> bytes | None:
    cover = episode.files.get("cover")
    if cover is None:
        return None
    with contextlib.suppress(NotFound):
        result = archive.store.get_bytes(cover.key)
        return result[0] if result else None
    return None


def _store_file(archive: Archive, change: _Change, role: str, path: Path) -> MediaFile:
    """Upload a changed file of `role` under a new key; the old key retires on commit."""
    old = change.proposed.files[role]
    sha256 = file_sha256(path)
    if sha256 == old.sha256:
        return old
    key = versioned_key(change.proposed.id, sha256, old.filename)
    stored = archive.store.upload_file(key, path, old.content_type)
    assert change.added is not None and change.retired is not None
    change.added.append(key)
    change.retired.append(old.key)
    return MediaFile(**{**old.to_dict(), "key": key, "size": stored.size,
                        "sha256": stored.sha256})


def _store_bytes(archive: Archive, change: _Change, role: str, filename: str, data: bytes,
                 content_type: str) -> None:
    sha256 = hashlib.sha256(data).hexdigest()
    old = change.proposed.files.get(role)
    if old is not None and old.sha256 == sha256:
        return
    key = versioned_key(change.proposed.id, sha256, filename)
    stored = archive.store.put_bytes(key, data, content_type)
    assert change.added is not None and change.retired is not None
    change.added.append(key)
    if old is not None:
        change.retired.append(old.key)
    change.proposed.files[role] = MediaFile(key=key, filename=filename, content_type=content_type,
                                            size=stored.size, sha256=stored.sha256)


def _store_sidecars(archive: Archive, change: _Change, prepared: sidecars.Prepared,
                    actor: str) -> None:
    episode = change.proposed
    if prepared.cover:
        name = f"cover-{hashlib.sha256(prepared.cover).hexdigest()[:12]}.jpg"
        _store_bytes(archive, change, "cover", name, prepared.cover, "image/jpeg")
    if prepared.transcript:
        forms = sidecars.transcript_files(prepared)
        for role in sidecars.TRANSCRIPT_ROLES:  # forms the new transcript does not have go
            old = episode.files.get(role)
            if role not in forms and old is not None:
                assert change.retired is not None
                change.retired.append(episode.files.pop(role).key)
        for role, (name, data, content_type) in forms.items():
            _store_bytes(archive, change, role, name, data, content_type)
        episode.transcript_language = episode.transcript_language or episode.language
        # A person's transcript: automatic transcription no longer wants to replace it.
        episode.transcript_provenance = Provenance("supplied", by=actor)
        episode.pending = [kind for kind in episode.pending if kind != "transcribe"]
        episode.enrichment_errors.pop("transcribe", None)
    if prepared.chapters:
        episode.chapters = prepared.chapters
        _store_bytes(archive, change, "chapters", "chapters.json",
                     sidecars.chapters_document(episode), "application/json+chapters")




# -- committing --------------------------------------------------------------------------------


def _commit(archive: Archive, change: _Change) -> Episode:
    """Switch the catalogue to the new state, then retire replaced objects (or, on failure,
    remove the ones this change added). The same write claims the replaced objects for removal,
    so no change can name one of them again while they are being deleted."""
    base_revision = change.base.updated_at
    change.proposed.updated_at = datetime.now(UTC)
    snapshot = change.proposed.to_dict()
    base = change.base.to_dict()
    retiring = [k for k in change.retired or [] if k not in (change.added or [])]
    claim = new_claim()
    claimed: list[str] = []

    def apply(data: CatalogData) -> Episode:
        latest = data.episodes.get(change.base.id)
        if latest is None:
            raise NotFound("This recording was deleted meanwhile.")
        if latest.updated_at != base_revision:
            raise Conflict(EDITED_ELSEWHERE)
        if change.new_series is not None and change.new_series.slug not in data.series:
            data.series[change.new_series.slug] = change.new_series
        if snapshot["series"] not in data.series:
            raise NotFound(f"There is no series {snapshot['series']!r}.")
        episode = Episode.from_dict(snapshot)  # a fresh copy: `apply` may run more than once
        superseded = _keep_enrichment(episode, base, latest)
        data.episodes[episode.id] = episode
        claimed[:] = data.mark_removing(retiring + superseded, claim)
        return episode

    try:
        if change.new_series is not None:
            sidecars.store_series_cover(archive, change.new_series)
        committed = archive.catalog.change(apply)
    except BaseException:
        _discard(archive, change.added or [])
        raise
    archive.catalog.write_meta(committed)
    _request_renditions(archive, committed)
    if change.new_series is not None:
        archive.catalog.write_series_meta(change.new_series)
    try:
        with contextlib.suppress(ArchiveError):
            archive.catalog.remove_objects(claimed)
    finally:
        archive.catalog.withdraw(claimed, claim)
    return committed


def _request_renditions(archive: Archive, episode: Episode) -> None:
    """A new cover gets its web renditions from the `artwork` task (pages show the cover
    itself meanwhile). Best effort: `archive enrich --missing` asks again."""
    if web_artwork.needs_renditions(episode.files.get("cover")):
        with contextlib.suppress(ArchiveError):
            enrich.request(enrich.task_queue(archive), episode.id, ["artwork"], priority=URGENT)


def _keep_enrichment(episode: Episode, base: dict[str, Any], latest: Episode) -> list[str]:
    """Three-way merge of what enrichment tasks committed while this edit was being made: a
    field or file role the edit left as it found it takes the latest value (a transcript or
    waveform that landed meanwhile stays); what the edit changed is the edit's, and the file
    it overrides is returned for removal."""
    now = latest.to_dict()
    proposed = episode.to_dict()
    for name in ENRICHED:
        if proposed[name] == base[name] and now[name] != base[name]:
            setattr(episode, name, getattr(latest, name))
    superseded = []
    for role in set(base["files"]) | set(now["files"]):
        was, meanwhile = base["files"].get(role), now["files"].get(role)
        if proposed["files"].get(role) == was:
            if role in latest.files:
                episode.files[role] = latest.files[role]
            else:
                episode.files.pop(role, None)
        elif meanwhile is not None and meanwhile != was:
            superseded.append(latest.files[role].key)
    return superseded


def _discard(archive: Archive, keys: Iterable[str]) -> None:
    """Best effort, claimed first (a change that did land after all keeps its objects): what
    is left behind is an orphan `archive verify --repair` moves to the trash."""
    keys = list(keys)
    if keys:
        with contextlib.suppress(ArchiveError), \
                archive.catalog.claim_for_removal(keys) as claimed:
            archive.catalog.remove_objects(claimed)

