"""Durable background tasks in the bucket: the slow, optional work done after publishing.

Transcripts, loudness measurements and waveforms are made after an episode is published, by
whichever process has a free worker: a job worker of `archive serve` or an `archive worker` on
another machine. The bucket is the only thing they share, so the queue lives there:

- One object per task, `tasks/queue/<priority><rank>-<kind>-<episode>.json`. The key is derived
  from what the task does, so asking twice queues it once (`If-None-Match: *`), and keys sort by
  urgency (new uploads before the back catalogue), so one short listing finds the next task.
- A worker claims a task by rewriting its object with `If-Match` (state "running", its name, a
  lease) and renews the lease while it works. A worker that dies stops renewing; once the lease
  has run out, the next worker claims the task again. Nothing is lost.
- A result is committed once: `Lease.fence()` renews the lease with one more conditional write
  (it fails if another worker took the task over) just before the catalogue change, and the
  change's `apply` checks the result is not there already.
- A finished task's object is deleted; a task that failed for good moves to
  `tasks/failed/<id>.json`, where `archive jobs` and the editors' pages show it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from archive.errors import ArchiveError, Conflict, NotFound, StorageError
from archive.storage import ObjectStore

log = logging.getLogger("archive.tasks")

QUEUE = "tasks/queue/"
FAILED = "tasks/failed/"
URGENT = 0  # a new upload's enrichment
BACKLOG = 5  # the back catalogue (`archive transcribe --missing`, `archive enrich --missing`)
MAX_ATTEMPTS = 3
LISTING = 50  # queue keys read per look for work
# Within one priority, cheap tasks first: a page gains its pictures and waveform before its
# transcript.
KIND_RANK = {"artwork": 0, "loudness": 1, "waveform": 2, "transcribe": 5}


class LeaseLost(ArchiveError):
    """Another worker took this task over (our lease ran out); drop the work, commit nothing."""

    status = 409


class TaskFailed(ArchiveError):
    """The task cannot succeed (a model that cannot load, a file that cannot be decoded):
    record the reason for editors and do not retry."""

    status = 422


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Task:
    kind: str
    episode_id: str
    priority: int = BACKLOG
    force: bool = False  # redo even what an editor supplied or corrected
    state: str = "pending"  # pending, running, failed
    attempts: int = 0
    owner: str = ""
    lease_until: str = ""
    error: str = ""
    created_at: str = field(default_factory=lambda: _now().isoformat())
    updated_at: str = ""

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.episode_id}"

    @property
    def key(self) -> str:
        return queue_key(self.kind, self.episode_id, self.priority)

    def leased(self, now: datetime | None = None) -> bool:
        """Whether a live worker holds it (its lease has not run out)."""
        if self.state != "running" or not self.lease_until:
            return False
        return datetime.fromisoformat(self.lease_until) > (now or _now())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Task:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def queue_key(kind: str, episode_id: str, priority: int) -> str:
    return f"{QUEUE}{priority}{KIND_RANK.get(kind, 9)}-{kind}-{episode_id}.json"


def failed_key(task_id: str) -> str:
    return f"{FAILED}{task_id}.json"


def worker_name() -> str:
    """Who holds a lease, for people reading `archive jobs`: host, process, thread."""
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident() % 100_000}"


class TaskQueue:
    """The queue in one bucket. Safe to share between threads and processes."""

    def __init__(self, store: ObjectStore, *, lease: timedelta = timedelta(minutes=2)) -> None:
        self.store = store
        self.lease = lease
        self.wakeup = threading.Event()  # set when this process queues work
        # Told when a task is given up for good (the episode then records why).
        self.on_give_up: Callable[[Task, str], None] | None = None

    # -- asking for work -------------------------------------------------------------------

    def enqueue(self, kind: str, episode_id: str, *, priority: int = BACKLOG,
                force: bool = False) -> bool:
        """Queue a task; False when the same task is already waiting or running."""
        for other in (URGENT, BACKLOG):
            if other != priority and self.store.exists(queue_key(kind, episode_id, other)):
                return False
        task = Task(kind, episode_id, priority=priority, force=force)
        task.updated_at = task.created_at
        try:
            self.store.put_json(task.key, task.to_dict(), if_none_match=True)
        except Conflict:
            return False
        with contextlib.suppress(ArchiveError):  # asked again: the old failure is history
            self.store.delete(failed_key(task.id))
        self.wakeup.set()
        return True

    def waiting(self) -> list[Task]:
        """Every queued or running task, most urgent first."""
        return [task for _, task, _ in self._read(self.store.list(QUEUE))]

    def failures(self) -> list[Task]:
        return [task for _, task, _ in self._read(self.store.list(FAILED))]

    def failure(self, kind: str, episode_id: str) -> Task | None:
        try:
            data, _ = self.store.get_json(failed_key(f"{kind}-{episode_id}"))
        except NotFound:
            return None
        return Task.from_dict(data)

    # -- taking work -----------------------------------------------------------------------

    def claim(self, owner: str, kinds: frozenset[str] | None = None) -> Lease | None:
        """The most urgent task nobody holds, now leased to `owner`; None when there is none."""
        now = _now()
        keys = self.store.list(QUEUE, limit=LISTING)
        for key, task, etag in self._read(keys):
            if task.leased(now) or (kinds is not None and task.kind not in kinds):
                continue
            if task.attempts >= MAX_ATTEMPTS:
                self._give_up(key, task, etag, f"gave up after {task.attempts} attempts: "
                              f"{task.error or 'the worker stopped'}")
                continue
            task.state, task.owner, task.attempts = "running", owner, task.attempts + 1
            task.lease_until = (now + self.lease).isoformat()
            task.updated_at = now.isoformat()
            try:
                stored = self.store.put_json(key, task.to_dict(), if_match=etag)
            except (Conflict, NotFound):
                continue  # another worker was quicker
            return Lease(self, key, task, stored.etag)
        return None

    def _read(self, infos: Iterator[Any]) -> Iterator[tuple[str, Task, str]]:
        for info in infos:
            try:
                data, etag = self.store.get_json(info.key)
                yield info.key, Task.from_dict(data), etag
            except NotFound:
                continue  # finished while we listed
            except (StorageError, TypeError) as error:
                log.warning("unreadable task %s: %s", info.key, error)

    def _give_up(self, key: str, task: Task, etag: str | None, reason: str) -> None:
        """Move a task to `tasks/failed/`; only the holder of `etag` may (else: no-op)."""
        task.state, task.error, task.owner, task.lease_until = "failed", reason, "", ""
        task.updated_at = _now().isoformat()
        try:
            if etag is not None:  # make the task ours first, so two workers never both move it
                self.store.put_json(key, task.to_dict(), if_match=etag)
            self.store.put_json(failed_key(task.id), task.to_dict())
            self.store.delete(key)
        except (Conflict, NotFound):
            return
        if self.on_give_up is not None:
            self.on_give_up(task, reason)


class Lease:
    """A claimed task: renew it while working, fence before committing, then finish it."""

    def __init__(self, queue: TaskQueue, key: str, task: Task, etag: str) -> None:
        self.queue = queue
        self.key = key
        self.task = task
        self.etag = etag
        self.lost = False
        self._lock = threading.Lock()

    def renew(self) -> None:
        """Extend the lease (a conditional write); LeaseLost when another worker has it."""
        with self._lock:
            if self.lost:
                raise LeaseLost("Another worker took this task over.")
            now = _now()
            self.task.lease_until = (now + self.queue.lease).isoformat()
            self.task.updated_at = now.isoformat()
            try:
                stored = self.queue.store.put_json(self.key, self.task.to_dict(),
                                                   if_match=self.etag)
            except (Conflict, NotFound):
                self.lost = True
                raise LeaseLost("Another worker took this task over.") from None
            self.etag = stored.etag

    fence = renew  # before a commit: proves the task is still ours for a whole lease

    def done(self) -> None:
        with contextlib.suppress(ArchiveError):
            self.queue.store.delete(self.key)

    def failed(self, reason: str, *, retry: bool) -> None:
        """A failed attempt: back to the queue (while attempts remain), else to `failed/`."""
        if self.lost:
            return
        if not retry or self.task.attempts >= MAX_ATTEMPTS:
            self.queue._give_up(self.key, self.task, self.etag, reason)
            return
        self.task.state, self.task.owner, self.task.lease_until = "pending", "", ""
        self.task.error = reason
        with contextlib.suppress(ArchiveError):
            self.queue.store.put_json(self.key, self.task.to_dict(), if_match=self.etag)

    @contextlib.contextmanager
    def kept_alive(self) -> Iterator[None]:
        """Renew the lease in the background while the block runs."""
        stop = threading.Event()
        interval = max(self.queue.lease.total_seconds() / 3, 0.2)

        def heartbeat() -> None:
            while not stop.wait(interval):
                try:
                    self.renew()
                except LeaseLost:
                    return
                except ArchiveError as error:  # storage blip: try again next beat
                    log.warning("lease of %s not renewed: %s", self.task.id, error.message)

        beat = threading.Thread(target=heartbeat, name=f"lease-{self.task.id}", daemon=True)
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()


Handler = Callable[[Lease], None]


class Worker:
    """Claims tasks and runs their handlers, `concurrency` at a time, until stopped."""

    def __init__(self, queue: TaskQueue, handlers: Mapping[str, Handler], *,
                 concurrency: int = 1, poll: float = 2.0) -> None:
        self.queue = queue
        self.handlers = dict(handlers)
        self.concurrency = max(1, concurrency)
        self.poll = poll

    def run(self, stop: threading.Event, *, grace: float = 5.0) -> None:
        """Work until `stop` is set; then wait up to `grace` seconds for tasks in hand (a task
        still running after that is abandoned, and retried once its lease runs out)."""
        threads = [threading.Thread(target=self._loop, args=(stop,), name=f"worker-{n}",
                                    daemon=True) for n in range(self.concurrency)]
        for thread in threads:
            thread.start()
        stop.wait()
        self.queue.wakeup.set()
        for thread in threads:
            thread.join(grace)

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                ran = self.run_once()
            except ArchiveError as error:  # storage down: wait and look again
                log.warning("could not look for work: %s", error.message)
                ran = False
            if not ran:
                self.queue.wakeup.wait(self.poll)
                self.queue.wakeup.clear()

    def run_once(self) -> bool:
        """Claim one task and run it; False when there was nothing to do."""
        lease = self.queue.claim(worker_name(), frozenset(self.handlers))
        if lease is None:
            return False
        self.execute(lease)
        return True

    def execute(self, lease: Lease) -> None:
        task = lease.task
        log.info("%s: attempt %d", task.id, task.attempts)
        try:
            with lease.kept_alive():
                self.handlers[task.kind](lease)
        except LeaseLost:
            log.warning("%s: another worker took it over; this attempt is dropped", task.id)
        except TaskFailed as error:
            log.warning("%s failed: %s", task.id, error.message)
            lease.failed(error.message, retry=False)
        except ArchiveError as error:
            log.warning("%s failed (will retry): %s", task.id, error.message)
            lease.failed(error.message, retry=True)
        except Exception as error:
            log.exception("%s failed unexpectedly", task.id)
            lease.failed(f"Something went wrong ({type(error).__name__}).", retry=True)
        else:
            lease.done()
