"""Real `archive serve` processes for tests that need more than one app on one bucket."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx2 as httpx

from archive.config import Settings
from archive.embedded import free_ports
from tests.cli import cli_env


@dataclasses.dataclass(frozen=True)
class Served:
    """A running `archive serve`: its base URL and its process (to kill it in fault tests)."""

    url: str
    process: subprocess.Popen[str]


@contextlib.contextmanager
def serve_process(settings: Settings, *, workers: int = 1, **env: str) -> Iterator[Served]:
    """Run `archive serve` on a free port against the test's bucket; yield it (URL + process).

    One HTTP process unless `workers` says otherwise (so a test that kills "the server" kills
    all of it). The process may be killed inside the block; leaving it stops what still runs.
    """
    port = free_ports(1)[0]
    process = subprocess.Popen(
        [sys.executable, "-m", "archive", "serve", "--port", str(port), "--workers",
         str(workers)],
        env={**cli_env(settings), "ARCHIVE_CATALOG_TTL": str(settings.catalog_ttl), **env},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _healthy(base) or process.poll() is not None, timeout=60)
        if process.poll() is not None:
            raise RuntimeError(f"archive serve exited: {process.stderr.read()}")  # type: ignore[union-attr]
        yield Served(base, process)
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(30)
        if process.stderr is not None:
            process.stderr.close()


@contextlib.contextmanager
def serve(settings: Settings, *, workers: int = 1, **env: str) -> Iterator[str]:
    """Run `archive serve` on a free port against the test's bucket; yield its base URL."""
    with serve_process(settings, workers=workers, **env) as served:
        yield served.url


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(condition, timeout: float = 30.0, interval: float = 0.1) -> bool:  # type: ignore[no-untyped-def]
    """Poll `condition` until it holds or `timeout` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())
