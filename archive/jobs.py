"""Background ingests started from the web, and their status for the page (or client) polling it.

The status lives in the bucket (`jobs/<id>.json`), not only in this process's memory, because
app processes are stateless behind a load balancer: the poll may reach another process than
the upload did. It is written when the stage changes (at most about once a second otherwise),
and at least every `HEARTBEAT` while the job waits or runs, so a status that stays silent for
`ABANDONED_AFTER` belonged to a process that died (with the spooled upload it would have used):
it reads as failed. It is read from memory when the job runs here. Job ids are unguessable;
jobs that are over are pruned after a day, never one still queued or running.
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
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from archive.errors import ArchiveError, NotFound, TooManyRequests
from archive.models import Episode
from archive.storage import ObjectStore

log = logging.getLogger("archive.jobs")

PREFIX = "jobs/"
KEEP_FOR = timedelta(days=1)
WRITE_EVERY = 1.0
HEARTBEAT = 60.0  # seconds between re-writes of the status of every job waiting or running here
# Silence this long (ten missed heartbeats) means the job's process is gone.
ABANDONED_AFTER = timedelta(minutes=10)
FORGET_AFTER = timedelta(minutes=10)  # finished jobs then answer from the bucket only
# Jobs waiting for a worker, each holding a spooled upload (up to ARCHIVE_MAX_UPLOAD_MB) on disk.
MAX_WAITING = 16
BUSY_RETRY_AFTER_S = 120
INTERRUPTED = ("The upload was interrupted: the server holding it stopped. Please upload it "
               "again.")
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
    """Runs ingests on a small thread pool; conversion is CPU-bound, so few run at once.

    Every method may wait on storage: call them from a worker thread, never the event loop.
    """

    def __init__(self, store: ObjectStore, workers: int = 2, *, heartbeat: float = HEARTBEAT,
                 keep_for: timedelta = KEEP_FOR, forget_after: timedelta = FORGET_AFTER,
                 max_waiting: int = MAX_WAITING) -> None:
        self.store = store
        self.keep_for = keep_for
        self.max_waiting = max_waiting
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest")
        self._jobs: dict[str, Job] = {}
        self._outcomes: dict[str, Future[Episode]] = {}
        self._finished_at: dict[str, float] = {}
        self._lock = threading.Lock()
        # Status writes of one job never overtake each other (a heartbeat must not store
        # "running" over "done"); held across the write, so separate from `_lock`.
        self._saving = threading.RLock()
        self._stopped = threading.Event()
        self._heart = threading.Thread(target=self._beat, args=(heartbeat, forget_after),
                                       daemon=True, name="jobs-heartbeat")
        self._heart.start()

    def submit(self, user: str, work: Callable[[Progress], Episode],
               cleanup: Callable[[], None]) -> Job:
        """Queue `work` (an ingest taking a progress callback); `cleanup` runs afterwards, or
        at once when too many jobs are waiting already (TooManyRequests)."""
        job = Job(id=secrets.token_urlsafe(18), user=user)
        with self._lock:
            waiting = sum(1 for queued in self._jobs.values() if queued.state == "queued")
            full = waiting >= self.max_waiting
            if not full:
                self._jobs[job.id] = job
                self._outcomes[job.id] = Future()
        if full:
            cleanup()
            raise TooManyRequests("Too many uploads are waiting to be processed; try again in a "
                                  "few minutes.", BUSY_RETRY_AFTER_S)
        self._save(job)
        try:
            self._pool.submit(self._run, job, work, cleanup)
        except RuntimeError:  # the pool is shutting down
            with self._lock:
                del self._jobs[job.id], self._outcomes[job.id]
            cleanup()
            raise
        return job

    def outcome(self, job_id: str) -> Future[Episode]:
        """The episode a job of this process made, or its error, once it is over."""
        with self._lock:
            future = self._outcomes.get(job_id)
        if future is None:
            raise NotFound("There is no such upload.")
        return future

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
        """Let queued and running jobs finish (their status kept fresh meanwhile), then stop."""
        self._pool.shutdown(wait=True)
        self._stopped.set()
        self._heart.join()

    def _update(self, job: Job, **changes: Any) -> None:
        """Change a job as one step: readers copy it under the same lock."""
        with self._lock:
            for name, value in changes.items():
                setattr(job, name, value)

    def _run(self, job: Job, work: Callable[[Progress], Episode],
             cleanup: Callable[[], None]) -> None:
        reporter = _Reporter(self, job)
        self._update(job, state="running")
        outcome: Episode | BaseException = ArchiveError("Something went wrong on our side.")
        try:
            outcome = work(reporter)
            self._update(job, episode_id=outcome.id, slug=outcome.slug, draft=outcome.draft,
                         state="done", stage="done", fraction=1.0)
        except ArchiveError as error:
            outcome = error
            self._update(job, state="failed", error=error.message, status=error.status,
                         duplicate_of=getattr(error, "episode_id", ""))
        except Exception:
            log.exception("ingest job %s failed", job.id)
            self._update(job, state="failed", error=str(outcome), status=500)
        finally:
            try:
                cleanup()
                self._save(job)
            finally:
                with self._lock:
                    self._finished_at[job.id] = time.monotonic()
                self._settle(job.id, outcome)
        self._prune()

    def _settle(self, job_id: str, outcome: Episode | BaseException) -> None:
        future = self._outcomes[job_id]
        with contextlib.suppress(InvalidStateError):  # nobody may cancel it, but be sure
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

    def _save(self, job: Job) -> None:
        with self._saving:
            with self._lock:
                job.updated_at = datetime.now(UTC).isoformat()
                data = job.to_dict()
            try:
                self.store.put_json(job_key(job.id), data)
            except ArchiveError:
                log.warning("could not store the status of job %s", job.id)

    def _beat(self, every: float, forget_after: timedelta) -> None:
        """Keep the status of waiting and running jobs fresh; forget finished ones later."""
        while not self._stopped.wait(every):
            with self._lock:
                live = [job for job in self._jobs.values() if not job.finished]
            for job in live:
                with self._saving:
                    if not job.finished:
                        self._save(job)
            self._forget(time.monotonic() - forget_after.total_seconds())

    def _forget(self, finished_before: float) -> None:
        """Drop jobs finished long enough ago from memory; the bucket still answers for them."""
        with self._lock:
            for job_id, when in list(self._finished_at.items()):
                if when <= finished_before:
                    del self._finished_at[job_id]
                    self._jobs.pop(job_id, None)
                    self._outcomes.pop(job_id, None)

    def _prune(self) -> None:
        """Delete the status of jobs that are over and were last written `keep_for` ago."""
        cutoff = datetime.now(UTC) - self.keep_for
        with contextlib.suppress(ArchiveError):
            old = [i.key for i in self.store.list(PREFIX)
                   if i.last_modified is not None and i.last_modified <= cutoff]
            over = [key for key in old if self._is_over(key)]
            if over:
                self.store.delete_many(over)

    def _is_over(self, key: str) -> bool:
        """Finished, failed, or abandoned by a dead process (never queued or running)."""
        job_id = key.removeprefix(PREFIX).removesuffix(".json")
        with self._lock:
            here = self._jobs.get(job_id)
            if here is not None:
                return here.finished
        try:
            data, _ = self.store.get_json(key)
        except NotFound:
            return False  # already gone
        return _unless_abandoned(Job.from_dict(data)).finished


def _unless_abandoned(job: Job) -> Job:
    """A queued or running job whose status has not been stored for a long while belonged to
    a process that died, and its spooled upload with it: say so, instead of letting the status
    page refresh for ever."""
    if job.finished or not job.updated_at:
        return job
    silent = datetime.now(UTC) - datetime.fromisoformat(job.updated_at)
    if silent < ABANDONED_AFTER:
        return job
    return dataclasses.replace(job, state="failed", status=503, error=INTERRUPTED)


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
