"""media.isolation: work in a bounded child process; every way it can end is a clear answer."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from media import isolation
from media.errors import InvalidRecording
from media.isolation import Crashed, Limits, OutOfMemory, OutOfTime, run
from media.probe import Probe, probe
from tests import isolation_targets as targets
from tests.media_samples import make_recording

ROOMY = Limits(cpu_seconds=30, wall_seconds=60, memory_bytes=512 * 1024 * 1024)


def test_the_result_comes_back_from_another_process() -> None:
    assert run(targets.add, 2, b=3, limits=ROOMY, label="adding") == 5
    assert run(targets.pid, limits=ROOMY, label="asking") != os.getpid()


def test_progress_is_relayed_in_order() -> None:
    seen: list[tuple[str, float]] = []
    result = run(targets.count_up, 4, limits=ROOMY, label="counting",
                 progress=lambda stage, fraction: seen.append((stage, fraction)))
    assert result == 4
    assert seen == [("counting", 0.0), ("counting", 0.25), ("counting", 0.5), ("counting", 0.75)]


def test_a_refusal_and_a_bug_keep_their_type() -> None:
    with pytest.raises(InvalidRecording, match=r"^not a recording$"):
        run(targets.refuse, "not a recording", limits=ROOMY, label="reading")
    with pytest.raises(ZeroDivisionError) as raised:
        run(targets.divide_by_zero, limits=ROOMY, label="dividing")
    assert "divide_by_zero" in str(raised.value.__cause__)  # the child's traceback, for logs


@pytest.mark.parametrize("crash", [targets.segfault, targets.abort])
def test_a_crash_costs_the_child_not_us(crash: object) -> None:
    with pytest.raises(Crashed, match=r"Stopped decoding: the worker process crashed \(SIG"):
        run(crash, limits=ROOMY, label="decoding")  # type: ignore[arg-type]
    assert run(targets.add, 1, 1, limits=ROOMY, label="adding") == 2  # and the next call works


def test_an_endless_loop_runs_out_of_processing_time() -> None:
    limits = Limits(cpu_seconds=1, wall_seconds=60, memory_bytes=ROOMY.memory_bytes)
    with pytest.raises(OutOfTime, match="more than 1 s of processing time"):
        run(targets.spin, limits=limits, label="spinning")


def test_a_stuck_child_is_stopped_at_the_wall_clock_limit() -> None:
    limits = Limits(cpu_seconds=30, wall_seconds=1, memory_bytes=ROOMY.memory_bytes)
    with pytest.raises(OutOfTime, match="took longer than 1 s"):
        run(targets.sleep_forever, limits=limits, label="waiting")


def test_memory_is_bounded() -> None:
    limits = Limits(cpu_seconds=30, wall_seconds=60, memory_bytes=256 * 1024 * 1024)
    assert run(targets.hog_memory, 64, limits=limits, label="allocating") == 64
    with pytest.raises(OutOfMemory, match="more than 256 MB of memory"):
        run(targets.hog_memory, 512, limits=limits, label="allocating")


def test_a_result_that_cannot_travel_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="could not be sent back"):
        run(targets.unpicklable_result, limits=ROOMY, label="returning")


def test_calls_from_many_threads_each_get_their_own_answer(tmp_path: Path) -> None:
    path = make_recording(tmp_path / "short.wav", "wav", seconds=1.0)
    results: dict[int, object] = {}

    def call(n: int) -> None:
        results[n] = run(probe, path, limits=ROOMY, label="reading") if n % 2 else \
            run(targets.add, n, n, limits=ROOMY, label="adding")

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert {n: results[n] for n in range(0, 8, 2)} == {0: 0, 2: 4, 4: 8, 6: 12}
    probes = [results[n] for n in range(1, 8, 2)]
    assert all(isinstance(p, Probe) and p.kind == "wav" for p in probes)


def test_a_dead_zygote_is_replaced() -> None:
    assert run(targets.add, 1, 2, limits=ROOMY, label="adding") == 3
    zygote = isolation._ZYGOTE._process
    assert zygote is not None
    zygote.kill()
    zygote.wait(10)
    assert run(targets.add, 2, 2, limits=ROOMY, label="adding") == 4


def test_a_forked_process_gets_a_zygote_of_its_own() -> None:
    """`archive serve --workers N` may fork after a first use: children must not share it."""
    assert run(targets.add, 1, 2, limits=ROOMY, label="adding") == 3
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the forked copy reports through the pipe
        try:
            ok = run(targets.add, 20, 22, limits=ROOMY, label="adding") == 42
            mine = isolation._ZYGOTE._owner == os.getpid()
            os.write(writer, b"yes" if ok and mine else b"no")
        finally:
            os._exit(0)
    os.close(writer)
    answer = os.read(reader, 16)
    os.waitpid(child, 0)
    os.close(reader)
    assert answer == b"yes"
    assert run(targets.add, 2, 2, limits=ROOMY, label="adding") == 4  # ours still works
