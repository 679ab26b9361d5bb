"""Enrichment after publishing: what task workers do for each kind of task.

An episode is published as soon as its delivery file and original are stored; what is slow and
optional comes afterwards, as durable tasks (`archive.tasks`):

- `loudness`: the EBU R128 loudness and true peak of a file kept as uploaded (an encoded file
  has them from its encode);
- `waveform`: overview peaks for the player's scrubber;
- `transcribe`: speech recognition (faster-whisper), written as WebVTT, SRT and Podcasting 2.0
  JSON from the same cues;
- `artwork`: the small AVIF/WebP/JPEG renditions of the episode's cover and its series' cover
  that pages show (archive/artwork.py).

Each handler works on a local copy of the delivery file, uploads what it made under new keys,
and commits with `commit()`: fenced by the lease, applied to the *latest* episode, and never
over a transcript a person supplied, edited or reviewed unless the task was forced. The
episode's `updated_at` (the revision editors' forms carry) is left alone, so an editor's open
form does not turn stale because a transcript arrived.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from archive import artwork
from archive.catalog import CatalogData
from archive.errors import ArchiveError
from archive.models import (
    Episode,
    Loudness,
    MediaFile,
    Provenance,
    Series,
    episode_prefix,
    utcnow,
)
from archive.runtime import Archive
from archive.tasks import BACKLOG, Handler, Lease, Task, TaskFailed, TaskQueue, Worker
from media import transcripts
from media.errors import MediaError

log = logging.getLogger("archive.enrich")

KINDS = ("loudness", "waveform", "transcribe", "artwork")
TRANSCRIPT_FILES = {  # role: (filename, content type)
    "transcript": ("transcript.vtt", "text/vtt; charset=utf-8"),
    "transcript_srt": ("transcript.srt", "application/x-subrip"),
    "transcript_json": ("transcript.json", "application/json"),
}


def wanted(episode: Episode, transcribe_model: str, series: Series | None = None
           ) -> list[str]:
    """The enrichment this episode (and, when given, its series' cover) still lacks."""
    kinds = []
    if artwork.needs_renditions(episode.files.get("cover")) \
            or (series is not None and artwork.needs_renditions(series.cover)):
        kinds.append("artwork")
    if episode.loudness is None and episode.audio is not None:
        kinds.append("loudness")
    if "waveform" not in episode.files and episode.audio is not None:
        kinds.append("waveform")
    if transcribe_model != "off" and "transcript" not in episode.files:
        kinds.append("transcribe")
    return kinds


def request(queue: TaskQueue, episode_id: str, kinds: list[str], *, priority: int = BACKLOG,
            force: bool = False) -> list[str]:
    """Queue tasks for one episode; returns the kinds newly queued (the rest already were)."""
    return [kind for kind in kinds
            if queue.enqueue(kind, episode_id, priority=priority, force=force)]


def task_queue(archive: Archive) -> TaskQueue:
    """The bucket's task queue with this archive's lease length."""
    return TaskQueue(archive.store, lease=timedelta(seconds=archive.settings.task_lease_s))


def make_worker(archive: Archive, *, concurrency: int = 1, queue: TaskQueue | None = None
                ) -> Worker:
    """A worker for every kind of enrichment; a task given up for good is noted on its
    episode, so pages stop saying "being prepared" and editors see why."""
    queue = queue or task_queue(archive)

    def note(task: Task, reason: str) -> None:
        record_failure(archive, task.kind, task.episode_id, reason)

    queue.on_give_up = note
    return Worker(queue, Enricher(archive, queue).handlers(), concurrency=concurrency)


def transcription_prompt(episode: Episode) -> str:
    """What the recogniser should expect: names and terms it could not guess."""
    from media.transcribe import initial_prompt  # imports faster-whisper: only in workers

    names = dict.fromkeys(p.name for p in episode.speakers)
    return initial_prompt(episode.title, names, episode.tags)


@dataclass
class Made:
    """A file a task made, uploaded and waiting to be named by the catalogue."""

    role: str
    file: MediaFile


class Enricher:
    """The handlers of one worker process; the speech model is loaded once and kept."""

    def __init__(self, archive: Archive, queue: TaskQueue) -> None:
        self.archive = archive
        self.queue = queue
        self._models: dict[str, Any] = {}
        self._model_lock = threading.Lock()

    def handlers(self) -> dict[str, Handler]:
        return {"loudness": self.loudness, "waveform": self.waveform,
                "transcribe": self.transcribe, "artwork": self.artwork}

    # -- the handlers ----------------------------------------------------------------------

    def loudness(self, lease: Lease) -> None:
        episode = self._episode(lease)
        if episode is None or episode.audio is None:
            return
        from media.convert import measure_loudness

        with self._local_copy(episode) as path:
            measured = _media(lambda: measure_loudness(path))
        found = Loudness(measured.integrated_lufs, measured.true_peak_dbtp, False)

        def update(latest: Episode) -> bool:
            if latest.loudness is not None:
                return False
            latest.loudness = found
            return True

        commit(self.archive, lease, update, [])

    def waveform(self, lease: Lease) -> None:
        episode = self._episode(lease)
        if episode is None or episode.audio is None:
            return
        from media.waveform import waveform

        with self._local_copy(episode) as path:
            peaks = _media(lambda: waveform(path, episode.duration or 0.0))
        made = [upload(self.archive, episode.id, "waveform", "waveform.json", peaks.to_json(),
                       "application/json")]

        def update(latest: Episode) -> bool:
            if "waveform" in latest.files and not lease.task.force:
                return False
            latest.files["waveform"] = made[0].file
            return True

        commit(self.archive, lease, update, made)

    def transcribe(self, lease: Lease) -> None:
        episode = self._episode(lease)
        if episode is None or episode.audio is None:
            return
        spec = self.archive.settings.transcribe_model
        if spec == "off":
            raise TaskFailed("Automatic transcription is off (ARCHIVE_TRANSCRIBE_MODEL=off).")
        if _protected(episode) and not lease.task.force:
            commit(self.archive, lease, lambda latest: False, [])
            return
        model = self._model(spec)
        # An editor's explicit language (kept at ingest) is used; otherwise it is detected.
        language = episode.transcript_language or None
        with self._local_copy(episode) as path:
            transcript = _media(lambda: _recognise(model, path, language,
                                                   transcription_prompt(episode)))
        made = upload_transcript(self.archive, episode.id, transcript)
        provenance = Provenance("automatic", at=utcnow(), model=_model_label(spec))

        def update(latest: Episode) -> bool:
            if _protected(latest) and not lease.task.force:
                return False
            for item in made:
                latest.files[item.role] = item.file
            latest.files.pop("transcript_source", None)
            latest.transcript_provenance = provenance
            latest.transcript_language = transcript.language or latest.language
            return True

        commit(self.archive, lease, update, made)

    def artwork(self, lease: Lease) -> None:
        """Renditions of the episode's cover and of its series' cover (when either lacks
        them); the series is recorded first, the episode in the task's fenced commit."""
        episode = self._episode(lease)
        if episode is None:
            return
        force = lease.task.force
        series = self.archive.catalog.cached_view().data.series.get(episode.series)
        if series is not None and series.cover is not None \
                and (force or artwork.needs_renditions(series.cover)):
            names = _pictures(lambda: artwork.make(self.archive, series.cover))
            lease.fence()
            artwork.record_series(self.archive, series.slug, series.cover.sha256, names)
        cover = episode.files.get("cover")
        names = _pictures(lambda: artwork.make(self.archive, cover)) \
            if cover is not None and (force or artwork.needs_renditions(cover)) else []

        def update(latest: Episode) -> bool:
            current = latest.files.get("cover")
            if cover is None or current is None or current.sha256 != cover.sha256 \
                    or not names or current.renditions == names:
                return False
            current.renditions = names
            return True

        commit(self.archive, lease, update, [])

    # -- helpers ---------------------------------------------------------------------------

    def _episode(self, lease: Lease) -> Episode | None:
        """The episode as it is now; None when it was deleted (the task is then moot)."""
        return self.archive.catalog.refresh().data.episodes.get(lease.task.episode_id)

    @contextlib.contextmanager
    def _local_copy(self, episode: Episode) -> Iterator[Path]:
        audio = episode.audio
        assert audio is not None
        folder = Path(self.archive.settings.data_dir) / "work"
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="enrich-", dir=folder) as work:
            path = Path(work) / audio.filename
            with path.open("wb") as out:
                self.archive.store.download_to(audio.key, out)
            yield path

    def _model(self, spec: str) -> Any:
        """Load the speech model once per worker process (it takes seconds and ~300 MB)."""
        with self._model_lock:
            if spec not in self._models:
                from media.transcribe import load_model

                self._models[spec] = _media(lambda: load_model(spec))
            return self._models[spec]


def _recognise(model: Any, path: Path, language: str | None, prompt: str
               ) -> transcripts.Transcript:
    from media.transcribe import transcribe

    return transcribe(path, model, language=language, prompt=prompt)


def _model_label(spec: str) -> str:
    """A model name, or the folder's own name for a local model (never a server path)."""
    return Path(spec).name if "/" in spec else spec


def _protected(episode: Episode) -> bool:
    provenance = episode.transcript_provenance
    if "transcript" not in episode.files:
        return False
    return provenance is None or provenance.protected  # no provenance: supplied before we kept it


def _pictures(work: Callable[[], list[str]]) -> list[str]:
    """Image work: busy decoding slots are worth a retry, a broken cover is not."""
    from media.artwork import Busy

    try:
        return work()
    except Busy as error:
        raise ArchiveError(str(error)) from None
    except MediaError as error:
        raise TaskFailed(str(error)) from None


def _media(work: Callable[[], Any]) -> Any:
    """Run media work; a file or model that cannot be used is a failure worth no retry."""
    try:
        return work()
    except MediaError as error:
        raise TaskFailed(str(error)) from None


# -- storing and committing results --------------------------------------------------------------


def upload(archive: Archive, episode_id: str, role: str, filename: str, data: bytes,
           content_type: str) -> Made:
    """Store a made file under a key of its own (content-addressed), not yet named anywhere."""
    sha256 = hashlib.sha256(data).hexdigest()
    key = f"{episode_prefix(episode_id)}{sha256[:12]}/{filename}"
    stored = archive.store.put_bytes(key, data, content_type)
    return Made(role, MediaFile(key=key, filename=filename, content_type=content_type,
                                size=stored.size, sha256=stored.sha256))


def upload_transcript(archive: Archive, episode_id: str, transcript: transcripts.Transcript
                      ) -> list[Made]:
    """The three forms of one transcript, from the same cues."""
    bodies = {"transcript": transcripts.to_vtt(transcript),
              "transcript_srt": transcripts.to_srt(transcript),
              "transcript_json": transcripts.to_json(transcript)}
    return [upload(archive, episode_id, role, filename, bodies[role].encode("utf-8"), kind)
            for role, (filename, kind) in TRANSCRIPT_FILES.items()]


class _NothingToDo(Exception):
    """Raised inside a catalogue change to abandon it without writing."""


def commit(archive: Archive, lease: Lease, update: Callable[[Episode], bool],
           made: list[Made]) -> Episode | None:
    """Apply a task's result to the latest episode, once; clean up what is not used.

    `update` changes the episode and says whether it did; either way the task's kind leaves
    `pending` and its old failure is forgotten. Files the result replaces are deleted after
    the commit; files it made and did not use are deleted at once.
    """
    kind = lease.task.kind
    lease.fence()
    retired: list[str] = []
    used = False

    def apply(data: CatalogData) -> Episode:
        nonlocal used
        retired.clear()
        episode = data.episodes.get(lease.task.episode_id)
        if episode is None:
            raise _NothingToDo
        before = {role: f.key for role, f in episode.files.items()}
        changed = used = update(episode)
        settled = kind not in episode.pending and kind not in episode.enrichment_errors
        if not changed and settled:
            raise _NothingToDo
        episode.pending = [k for k in episode.pending if k != kind]
        episode.enrichment_errors.pop(kind, None)
        retired.extend(key for role, key in before.items()
                       if episode.files.get(role) is None or episode.files[role].key != key)
        return episode

    try:
        episode: Episode | None = archive.catalog.change(apply)
    except _NothingToDo:
        episode = None
    except BaseException:
        remove_unnamed(archive, [m.file.key for m in made])
        raise
    if episode is None or not used:
        remove_unnamed(archive, [m.file.key for m in made])
    if episode is not None:
        archive.catalog.write_copies(episode, False)
        remove_unnamed(archive, retired)
    return episode


def record_failure(archive: Archive, kind: str, episode_id: str, reason: str) -> None:
    """A task gave up: editors see why, and the page stops saying "being prepared"."""

    def apply(data: CatalogData) -> None:
        episode = data.episodes.get(episode_id)
        if episode is None:
            raise _NothingToDo
        episode.pending = [k for k in episode.pending if k != kind]
        episode.enrichment_errors[kind] = reason[:500]

    with contextlib.suppress(_NothingToDo, ArchiveError):
        archive.catalog.change(apply)


def remove_unnamed(archive: Archive, keys: list[str]) -> None:
    """Delete objects a change made or replaced, unless the catalogue names them after all
    (content-addressed keys: the same bytes made again have the same key). The keys are
    claimed first, so a commit naming one meanwhile is refused rather than published with the
    object gone. Best effort: `archive verify --repair` finds what is left."""
    if not keys:
        return
    with contextlib.suppress(ArchiveError), \
            archive.catalog.claim_for_removal(keys) as claimed:
        archive.catalog.remove_objects(claimed)


