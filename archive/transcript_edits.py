"""Editors correcting transcripts: fix words, say who speaks, mark a transcript reviewed.

A save rewrites the three forms of the transcript (WebVTT, SRT, Podcasting 2.0 JSON) from the
corrected cues under new keys, then commits with the usual revision check (the episode's
`updated_at`, as every edit form carries), so two editors cannot overwrite each other silently.
The search index, the page and the feed follow from the catalogue change; the replaced files
are deleted afterwards.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from archive import audit
from archive.catalog import CatalogData
from archive.enrich import Made, remove_unnamed, upload_transcript
from archive.errors import Conflict, InvalidInput, NotFound
from archive.models import Episode, Provenance, clean_text, utcnow
from archive.runtime import Archive
from media import transcripts

EDITED_ELSEWHERE = ("Someone else changed this recording while you were correcting its "
                    "transcript; reload to see their changes, then make yours again.")
MAX_CUE_TEXT = 2000


@dataclass(frozen=True)
class CueEdit:
    """What the editor's form says of one cue: its words and who speaks (times stay)."""

    text: str
    speaker: str = ""


def revision(episode: Episode) -> str:
    return episode.updated_at.isoformat()


def read_cues(archive: Archive, episode: Episode) -> list[transcripts.Cue]:
    """The transcript's cues as stored (with speakers), for the editor."""
    transcript = episode.files.get("transcript")
    if transcript is None:
        raise NotFound("This recording has no transcript to correct yet.")
    result = archive.store.get_bytes(transcript.key)
    assert result is not None
    return transcripts.parse_transcript(result[0]).cues


def save(archive: Archive, episode_id: str, edits: Sequence[CueEdit], actor: str, *,
         expected_revision: str, reviewed: bool = False) -> Episode:
    """Apply corrected words and speakers; the transcript becomes "edited" (or "reviewed")."""
    episode = _current(archive, episode_id, expected_revision)
    cues = read_cues(archive, episode)
    if len(edits) != len(cues):
        raise Conflict(EDITED_ELSEWHERE)
    speakers = {p.name for p in episode.speakers}
    corrected = [_corrected(cue, edit, speakers, n) for n, (cue, edit)
                 in enumerate(zip(cues, edits, strict=True), start=1)]
    made = upload_transcript(archive, episode_id, transcripts.Transcript("vtt", corrected))
    kind = "reviewed" if reviewed else "edited"
    committed = _commit(archive, episode, made, Provenance(kind, at=utcnow(), by=actor))
    audit.safe_record(archive.store, actor, "transcript.edit", episode_id, reviewed=reviewed,
                      cues=len(corrected))
    return committed


def mark_reviewed(archive: Archive, episode_id: str, actor: str, *,
                  expected_revision: str) -> Episode:
    """An editor has checked every line against the recording (WCAG 1.2.1 is then met)."""
    episode = _current(archive, episode_id, expected_revision)
    if "transcript" not in episode.files:
        raise NotFound("This recording has no transcript to review.")
    committed = _commit(archive, episode, [], Provenance("reviewed", at=utcnow(), by=actor))
    audit.safe_record(archive.store, actor, "transcript.review", episode_id)
    return committed


@dataclass(frozen=True)
class Worklist:
    """What editors have to do with transcripts."""

    unreviewed: list[Episode]  # not checked by a person yet, the longest waiting first
    preparing: list[Episode]  # being transcribed
    failed: list[Episode]  # transcription gave up


def worklist(episodes: Iterable[Episode]) -> Worklist:
    """One pass, each episode's packed fields read once (three passes over 100,000 episodes
    would unpack each three times)."""
    unreviewed: list[Episode] = []
    preparing: list[Episode] = []
    failed: list[Episode] = []
    for episode in episodes:
        fields = episode.unpacked_fields()
        provenance = fields.transcript_provenance
        if "transcript" in fields.files and provenance and \
                provenance.kind in {"automatic", "edited"}:
            unreviewed.append(episode)
        if "transcribe" in fields.pending:
            preparing.append(episode)
        if "transcribe" in fields.enrichment_errors:
            failed.append(episode)
    return Worklist(sorted(unreviewed, key=lambda e: e.published_at), preparing, failed)


def _current(archive: Archive, episode_id: str, expected: str) -> Episode:
    episode = archive.catalog.refresh().data.episodes.get(episode_id)
    if episode is None:
        raise NotFound("There is no such recording.")
    if expected != revision(episode):
        raise Conflict(EDITED_ELSEWHERE)
    return episode


def _corrected(cue: transcripts.Cue, edit: CueEdit, speakers: set[str], number: int
               ) -> transcripts.Cue:
    text = clean_text(edit.text.replace("\r\n", "\n"), f"Line {number}", MAX_CUE_TEXT)
    if not text:
        raise InvalidInput(f"Line {number} is empty: write what is said, or [inaudible].")
    speaker = clean_text(edit.speaker, "Speaker", 200)
    if speaker and speaker not in speakers:
        raise InvalidInput(f"{speaker!r} is not one of this recording's speakers.")
    return transcripts.Cue(cue.start, cue.end, text, speaker or None)


def _commit(archive: Archive, base: Episode, made: list[Made], provenance: Provenance
            ) -> Episode:
    """Switch the catalogue to the new transcript files (revision-checked), then delete the
    replaced ones; on failure delete the new ones instead."""
    retired: list[str] = []

    def apply(data: CatalogData) -> Episode:
        retired.clear()
        latest = data.episodes.get(base.id)
        if latest is None:
            raise NotFound("This recording was deleted meanwhile.")
        if latest.updated_at != base.updated_at:
            raise Conflict(EDITED_ELSEWHERE)
        for item in made:
            old = latest.files.get(item.role)
            if old is not None and old.key != item.file.key:
                retired.append(old.key)
            latest.files[item.role] = item.file
        if made and "transcript_source" in latest.files:  # the SRT derived now replaces it
            retired.append(latest.files.pop("transcript_source").key)
        latest.transcript_provenance = provenance
        latest.updated_at = datetime.now(UTC)
        return latest

    try:
        committed = archive.catalog.change(apply)
    except BaseException:
        remove_unnamed(archive, [item.file.key for item in made])
        raise
    archive.catalog.write_copies(committed, False)
    remove_unnamed(archive, retired)
    return committed
