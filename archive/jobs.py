"""Background ingests started from the web, and their status for the page (or client) polling it.

The status lives in the bucket (`jobs/<id>.json`), not only in this process's memory, because
app processes are stateless behind a load balancer: the poll may reach another process than
the upload did. It is written when the stage changes (at most about once a second otherwise),
and read from memory when the job runs here. Job ids are unguessable; finished jobs are pruned
after a day.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from archive.errors import ArchiveError, NotFound
from archive.models import Episode
from archive.storage import ObjectStore

log = logging.getLogger("archive.jobs")

PREFIX = "jobs/"
KEEP_FOR = timedelta(days=1)
WRITE_EVERY = 1.0
# A running job stores its status at least every few seconds (every stage and every second of
# progress); silence this long means its process is gone.
ABANDONED_AFTER = timedelta(minutes=10)
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

# What the person watching sees for each stage `archive.ingest` reports.
STAGE_LABELS = {
    "queued": "waiting to start",
    "hashing": "checking",
    "probing": "checking",
    "converting": "converting",
    "measuring loudness": "converting",
    "tagging": "tagging",
    "uploading": "storing",
    "committing": "storing",
    "done": "done",
}

Progress = Callable[[str, float], None]


@dataclass
class Job:
    id: str
    user: str
    state: str = "queued"  # queued, running, done, failed
    stage: str = "queued"
    fraction: float = 0.0
    episode_id: str = ""
    slug: str = ""
    draft: bool = False
    error: str = ""
    status: int = 0  # the HTTP status the error means (415, 409…)
    duplicate_of: str = ""
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    updated_at: str = ""  # when its status was last stored

    @property
    def label(self) -> str:
        return STAGE_LABELS.get(self.stage, self.stage)

    @property
    def finished(self) -> bool:
        return self.state in {"done", "failed"}

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "label": self.label}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def job_key(job_id: str) -> str:
    return f"{PREFIX}{job_id}.json"


class JobRunner:
    """Runs ingests on a small thread pool; conversion is CPU-bound, so few run at once."""

    def __init__(self, store: ObjectStore, workers: int = 2) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def submit(self, user: str, work: Callable[[Progress], Episode],
               cleanup: Callable[[], None]) -> Job:
        """Queue `work` (an ingest taking a progress callback); `cleanup` runs afterwards."""
        job = Job(id=secrets.token_urlsafe(18), user=user)
        self._save(job)
        with self._lock:
            self._jobs[job.id] = job
        try:
            self._pool.submit(self._run, job, work, cleanup)
        except RuntimeError:  # the pool is shutting down
            cleanup()
            raise
        return job

    def get(self, job_id: str) -> Job:
        if not _JOB_ID.match(job_id):
            raise NotFound("There is no such upload.")
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:  # a copy: the worker goes on changing the original
                return dataclasses.replace(job)
        try:
            data, _ = self.store.get_json(job_key(job_id))
        except NotFound:
            raise NotFound("There is no such upload.") from None
        return _unless_abandoned(Job.from_dict(data))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)

    def _update(self, job: Job, **changes: Any) -> None:
        """Change a job as one step: readers copy it under the same lock."""
        with self._lock:
            for name, value in changes.items():
                setattr(job, name, value)

    def _run(self, job: Job, work: Callable[[Progress], Episode],
             cleanup: Callable[[], None]) -> None:
        reporter = _Reporter(self, job)
        self._update(job, state="running")
        try:
            episode = work(reporter)
            self._update(job, episode_id=episode.id, slug=episode.slug, draft=episode.draft,
                         state="done", stage="done", fraction=1.0)
        except ArchiveError as error:
            self._update(job, state="failed", error=error.message, status=error.status,
                         duplicate_of=getattr(error, "episode_id", ""))
        except Exception:
            log.exception("ingest job %s failed", job.id)
            self._update(job, state="failed", error="Something went wrong on our side.",
                         status=500)
        finally:
            cleanup()
            self._save(job)
            self._forget_later(job.id)
        self._prune()

    def _save(self, job: Job) -> None:
        job.updated_at = datetime.now(UTC).isoformat()
        try:
            self.store.put_json(job_key(job.id), job.to_dict())
        except ArchiveError:
            log.warning("could not store the status of job %s", job.id)

    def _forget_later(self, job_id: str) -> None:
        """Drop finished jobs from memory after a while; the bucket still answers for them."""
        timer = threading.Timer(600, lambda: self._jobs.pop(job_id, None))
        timer.daemon = True
        timer.start()

    def _prune(self) -> None:
        """Delete status objects older than a day (cheap: one listing of `jobs/`)."""
        cutoff = datetime.now(UTC) - KEEP_FOR
        with contextlib.suppress(ArchiveError):
            old = [i.key for i in self.store.list(PREFIX)
                   if i.last_modified is not None and i.last_modified < cutoff]
            if old:
                self.store.delete_many(old)


def _unless_abandoned(job: Job) -> Job:
    """A running job whose status has not been stored for a long while belonged to a process
    that died: say so, instead of letting the status page refresh for ever."""
    if job.state != "running" or not job.updated_at:
        return job
    silent = datetime.now(UTC) - datetime.fromisoformat(job.updated_at)
    if silent < ABANDONED_AFTER:
        return job
    return dataclasses.replace(job, state="failed", status=503, error=(
        "The upload was interrupted when the server stopped; please upload it again."))


class _Reporter:
    """The progress callback: updates the job, stores it when the stage changes."""

    def __init__(self, runner: JobRunner, job: Job) -> None:
        self.runner = runner
        self.job = job
        self.saved_at = 0.0

    def __call__(self, stage: str, fraction: float) -> None:
        changed = stage != self.job.stage
        self.runner._update(self.job, stage=stage, fraction=round(fraction, 3))
        if changed or time.monotonic() - self.saved_at >= WRITE_EVERY:
            self.runner._save(self.job)
            self.saved_at = time.monotonic()
