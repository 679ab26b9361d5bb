"""The durable task queue in the bucket: dedup, urgency, leases, fencing, failures."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from archive.errors import StorageError
from archive.storage import ObjectStore
from archive.tasks import (
    BACKLOG,
    MAX_ATTEMPTS,
    URGENT,
    Lease,
    LeaseLost,
    TaskFailed,
    TaskQueue,
    Worker,
)


def test_asking_twice_queues_once(store: ObjectStore) -> None:
    queue = TaskQueue(store)
    assert queue.enqueue("transcribe", "e1", priority=BACKLOG)
    assert not queue.enqueue("transcribe", "e1", priority=BACKLOG)
    assert not queue.enqueue("transcribe", "e1", priority=URGENT)
    assert [t.id for t in queue.waiting()] == ["transcribe-e1"]


def test_new_uploads_come_before_the_back_catalogue(store: ObjectStore) -> None:
    queue = TaskQueue(store)
    queue.enqueue("transcribe", "old", priority=BACKLOG)
    queue.enqueue("transcribe", "new", priority=URGENT)
    queue.enqueue("loudness", "old", priority=BACKLOG)
    order = []
    while (lease := queue.claim("me")) is not None:
        order.append(lease.task.id)
        lease.done()
    assert order == ["transcribe-new", "loudness-old", "transcribe-old"]
    assert queue.waiting() == []


def test_a_held_task_is_not_claimed_twice(store: ObjectStore) -> None:
    first, second = TaskQueue(store), TaskQueue(store)
    first.enqueue("transcribe", "e1")
    lease = first.claim("a")
    assert lease is not None and lease.task.state == "running"
    assert second.claim("b") is None


def test_many_workers_racing_for_one_task_one_wins(store: ObjectStore) -> None:
    TaskQueue(store).enqueue("transcribe", "e1")
    won: list[Lease] = []
    start = threading.Barrier(6)

    def race(name: str) -> None:
        start.wait()
        lease = TaskQueue(store).claim(name)
        if lease is not None:
            won.append(lease)

    threads = [threading.Thread(target=race, args=(f"w{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1


def test_an_expired_lease_is_taken_over_and_the_old_holder_is_fenced_off(
        store: ObjectStore) -> None:
    # A zero lease runs out at once: the first worker looks dead to the second.
    slow = TaskQueue(store, lease=timedelta(0))
    slow.enqueue("transcribe", "e1")
    stale = slow.claim("dead")
    assert stale is not None
    fresh = TaskQueue(store).claim("alive")
    assert fresh is not None and fresh.task.attempts == 2
    with pytest.raises(LeaseLost):
        stale.fence()
    fresh.fence()  # the new holder still may commit


def test_a_permanent_failure_is_kept_for_editors(store: ObjectStore) -> None:
    queue = TaskQueue(store)
    queue.enqueue("transcribe", "e1")

    def broken(lease: Lease) -> None:
        raise TaskFailed("The speech recognition model could not be loaded.")

    assert Worker(queue, {"transcribe": broken}).run_once()
    assert queue.waiting() == []
    failure = queue.failure("transcribe", "e1")
    assert failure is not None and "could not be loaded" in failure.error
    assert [t.id for t in queue.failures()] == ["transcribe-e1"]
    assert queue.enqueue("transcribe", "e1")  # asked again: queued again, history cleared
    assert queue.failure("transcribe", "e1") is None


def test_a_passing_failure_is_retried_then_given_up(store: ObjectStore) -> None:
    queue = TaskQueue(store)
    queue.enqueue("waveform", "e1")
    calls = []

    def flaky(lease: Lease) -> None:
        calls.append(lease.task.attempts)
        raise StorageError("Storage at x is not reachable (EndpointConnectionError).")

    worker = Worker(queue, {"waveform": flaky})
    while worker.run_once():
        pass
    assert calls == list(range(1, MAX_ATTEMPTS + 1))
    failure = queue.failure("waveform", "e1")
    assert failure is not None and "not reachable" in failure.error


def test_a_worker_only_claims_kinds_it_can_run(store: ObjectStore) -> None:
    queue = TaskQueue(store)
    queue.enqueue("transcribe", "e1")
    assert not Worker(queue, {"waveform": lambda lease: None}).run_once()
    assert [t.state for t in queue.waiting()] == ["pending"]


def test_the_lease_is_renewed_while_the_handler_works(store: ObjectStore) -> None:
    queue = TaskQueue(store, lease=timedelta(seconds=0.6))
    queue.enqueue("transcribe", "e1")
    renewed = threading.Event()

    def long_job(lease: Lease) -> None:
        first = lease.task.lease_until
        # Wait (bounded) until the heartbeat has extended the lease at least once.
        for _ in range(100):
            if lease.task.lease_until != first:
                renewed.set()
                break
            threading.Event().wait(0.05)
        lease.fence()

    assert Worker(queue, {"transcribe": long_job}).run_once()
    assert renewed.is_set()
    assert queue.waiting() == []
