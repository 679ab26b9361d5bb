"""`archive serve --job-workers N`: background jobs in a child process of the web server.

Transcription needs a speech model of hundreds of megabytes and minutes of CPU per recording; it
must never run inside a process that answers web requests. The web server starts one
`archive worker --concurrency N` child with the same settings (storage already running, so the
child joins it), stops it on shutdown, and the kernel kills it if the server dies
(PR_SET_PDEATHSIG), so no orphan worker is ever left behind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

from archive.config import Settings, settings_env
from archive.embedded import die_with_parent

log = logging.getLogger("archive.job_workers")
STOP_TIMEOUT = 10.0


@contextlib.contextmanager
def job_workers(settings: Settings, count: int) -> Iterator[subprocess.Popen[bytes] | None]:
    """Run `archive worker --concurrency count` while the block runs (nothing when 0). With
    embedded storage the child finds the running server through the data folder."""
    if count < 1:
        yield None
        return
    env = {**os.environ, **settings_env(settings)}
    process = subprocess.Popen(
        [sys.executable, "-m", "archive", "worker", "--concurrency", str(count)],
        env=env, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent,
    )
    log.info("job worker started (pid %d, %d at a time)", process.pid, count)
    try:
        yield process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it does not go: a task cut short is retried after its lease."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
