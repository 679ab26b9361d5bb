"""`archive serve --workers N`: several HTTP processes on one port, one storage, one job
worker, nothing left behind when the server stops or is killed."""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path

import httpx2 as httpx
import pytest

from archive.config import Settings
from archive.storage import ObjectStore
from tests import media_samples
from tests.cli import run_cli
from tests.servers import serve_process, wait_until

pytestmark = pytest.mark.slow


def children(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (read from /proc, no extra dependency)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def test_two_http_processes_serve_one_archive_and_stop_together(
        settings: Settings, store: ObjectStore, tmp_path: Path) -> None:
    settings = dataclasses.replace(settings, catalog_ttl=1.0)
    with serve_process(settings, workers=2) as served:
        workers = children(served.process.pid)
        assert len(workers) >= 3  # two HTTP workers and the job worker
        source = media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=1.0)
        result = run_cli(settings, "ingest", source, "--title", "Seen By Every Worker",
                         "--series", "Lectures")
        assert result.returncode == 0, result.stderr

        def everyone_sees_it() -> bool:
            # Fresh connections are spread over the workers by the kernel.
            feeds = [httpx.get(f"{served.url}/feed.xml", headers={"Connection": "close"}).text
                     for _ in range(12)]
            return all("Seen By Every Worker" in feed for feed in feeds)

        assert wait_until(everyone_sees_it, timeout=20)
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(30)
    assert wait_until(lambda: all(not Path(f"/proc/{pid}").exists() or
                                  "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")")[1][:3]
                                  for pid in workers), timeout=20)


def test_a_killed_server_takes_its_workers_with_it(settings: Settings,
                                                   store: ObjectStore) -> None:
    with serve_process(settings, workers=2) as served:
        workers = children(served.process.pid)
        assert len(workers) >= 2
        served.process.kill()
        served.process.wait(30)
        assert wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers),
                          timeout=20)
