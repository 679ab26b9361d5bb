"""Upload jobs: queued and running jobs stay visibly alive, dead ones read as failed, and pruning
removes only jobs that are over."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from archive.errors import InvalidRecording, NotFound, TooManyRequests
from archive.jobs import Job, JobRunner, job_key
from archive.models import Episode
from archive.storage import ObjectStore
from tests.servers import wait_until


def stored(store: ObjectStore, job_id: str) -> Job | None:
    try:
        return Job.from_dict(store.get_json(job_key(job_id))[0])
    except NotFound:
        return None


def foreign(store: ObjectStore, job_id: str, state: str, age: timedelta) -> Job:
    """A job of another app process, as it left its status in the bucket."""
    job = Job(id=job_id, user="editor", state=state, stage=state,
              updated_at=(datetime.now(UTC) - age).isoformat())
    store.put_json(job_key(job.id), job.to_dict())
    return job


def held(gate: threading.Event, episode: Episode | None = None) -> Callable[..., Episode]:
    """Work that waits for `gate`, then ends with `episode` (or a refusal)."""

    def work(progress: object) -> Episode:
        assert gate.wait(30), "the test never released the job"
        if episode is None:
            raise InvalidRecording("This file is not a recording we can read.")
        return episode

    return work


@pytest.fixture
def runner(store: ObjectStore) -> Iterator[JobRunner]:
    runner = JobRunner(store, workers=1)
    yield runner
    runner.shutdown()


def test_a_queued_job_of_a_dead_process_reads_as_failed(store: ObjectStore,
                                                       runner: JobRunner) -> None:
    dead = foreign(store, "q" * 32, "queued", timedelta(minutes=11))
    waiting = foreign(store, "w" * 32, "queued", timedelta(minutes=1))
    failed = runner.get(dead.id)
    assert (failed.state, failed.finished) == ("failed", True)
    assert failed.error == "The upload was interrupted: the server holding it stopped. Please " \
                           "upload it again."
    assert runner.get(waiting.id).state == "queued"


def test_queued_and_running_jobs_keep_their_status_fresh(store: ObjectStore) -> None:
    """A job waiting behind a long one must not look abandoned to the other processes."""
    runner = JobRunner(store, workers=1, heartbeat=0.2)
    gate = threading.Event()
    try:
        running = runner.submit("editor", held(gate), lambda: None)
        queued = runner.submit("editor", held(gate), lambda: None)
        first = {job.id: stored(store, job.id).updated_at for job in (running, queued)}  # type: ignore[union-attr]
        assert wait_until(lambda: all(
            stored(store, job_id).updated_at > stamp  # type: ignore[union-attr]
            for job_id, stamp in first.items()), timeout=15)
        assert stored(store, queued.id).state == "queued"  # type: ignore[union-attr]
    finally:
        gate.set()
        runner.shutdown()
    assert {stored(store, job.id).state for job in (running, queued)} == {"failed"}  # type: ignore[union-attr]


def test_pruning_removes_only_jobs_that_are_over(store: ObjectStore) -> None:
    runner = JobRunner(store, workers=2, keep_for=timedelta(0))
    gates = [threading.Event() for _ in range(3)]
    try:
        other_running = foreign(store, "r" * 32, "running", timedelta(seconds=1))
        other_queued = foreign(store, "s" * 32, "queued", timedelta(seconds=1))
        other_dead = foreign(store, "d" * 32, "queued", timedelta(hours=1))
        other_done = foreign(store, "f" * 32, "done", timedelta(seconds=1))
        _, running, queued = (runner.submit("editor", held(gate), lambda: None)
                              for gate in gates)
        gates[0].set()  # the first job ends, and prunes
        assert wait_until(lambda: stored(store, other_done.id) is None, timeout=15)
        assert stored(store, other_dead.id) is None
        for job in (running, queued, other_running, other_queued):
            assert stored(store, job.id) is not None, job
        assert stored(store, queued.id).state == "queued"  # type: ignore[union-attr]
    finally:
        for gate in gates:
            gate.set()
        runner.shutdown()


def test_the_outcome_of_a_job_can_be_awaited(store: ObjectStore, runner: JobRunner) -> None:
    episode = Episode.new(title="A talk", series="talks")
    gate = threading.Event()
    done = runner.submit("editor", held(gate, episode), lambda: None)
    refused = runner.submit("editor", held(gate), lambda: None)
    gate.set()
    assert runner.outcome(done.id).result(30) is episode
    with pytest.raises(InvalidRecording, match="not a recording"):
        runner.outcome(refused.id).result(30)
    assert runner.get(refused.id).status == 415
    with pytest.raises(NotFound):
        runner.outcome("x" * 32)


def test_finished_jobs_hold_no_thread_each(store: ObjectStore) -> None:
    """Many uploads in an hour must not leave a sleeping thread per job behind."""
    before = threading.active_count()
    runner = JobRunner(store, workers=1)
    cleaned: list[int] = []
    try:
        jobs = [runner.submit("editor", lambda progress: Episode.new(title="A talk",
                                                                      series="talks"),
                              lambda n=n: cleaned.append(n)) for n in range(6)]
        for job in jobs:
            runner.outcome(job.id).result(30)
        assert wait_until(lambda: len(cleaned) == 6, timeout=10)
        assert threading.active_count() - before <= 2  # the worker and the heartbeat
        assert {runner.get(job.id).state for job in jobs} == {"done"}
    finally:
        runner.shutdown()


def test_the_queue_is_bounded(store: ObjectStore) -> None:
    """Each waiting job holds a spooled upload on disk: past the bound, a clear 429."""
    runner = JobRunner(store, workers=1, max_waiting=1)
    gate = threading.Event()
    cleaned: list[str] = []
    try:
        running = runner.submit("editor", held(gate), lambda: cleaned.append("running"))
        assert wait_until(lambda: runner.get(running.id).state == "running", timeout=10)
        runner.submit("editor", held(gate), lambda: cleaned.append("queued"))
        before = sorted(info.key for info in store.list("jobs/"))
        with pytest.raises(TooManyRequests, match="Too many uploads are waiting") as refused:
            runner.submit("editor", held(gate), lambda: cleaned.append("refused"))
        assert (refused.value.status, refused.value.retry_after) == (429, 120)
        assert cleaned == ["refused"]  # its spooled upload is removed at once
        assert sorted(info.key for info in store.list("jobs/")) == before
    finally:
        gate.set()
        runner.shutdown()
