"""`archive serve --workers N`: several HTTP processes on one port.

One Python process answers every request of the app it runs; with N processes (uvicorn's
supervisor and N children sharing the listening socket) the feed and pages scale with the cores.
Each child builds its own app from the settings in its environment (`from_environment`), keeps
its own catalogue snapshot and revalidates it like any other process on the bucket.

What must happen once per server, not once per child, happens here in the parent: the embedded
storage is started (the children join it), the catalogue is upgraded, the demo recordings are
loaded, and one job-worker process runs the background tasks.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from starlette.applications import Starlette

from archive.config import Settings, settings_env
from archive.job_workers import job_workers as job_worker_process
from archive.runtime import open_archive

PARENT_VARIABLE = "ARCHIVE_SERVE_PARENT"  # the supervisor's pid, for its children to check


def serve_processes(settings: Settings, *, workers: int, demo_if_empty: bool, job_workers: int,
                    options: dict[str, Any]) -> None:
    import uvicorn

    from archive.web.app import _load_demo

    with open_archive(settings) as archive:
        archive.catalog.upgrade()
        os.environ.update(settings_env(settings))
        os.environ[PARENT_VARIABLE] = str(os.getpid())
        stop_demo = threading.Event()
        if demo_if_empty and not archive.catalog.refresh().data.episodes:
            threading.Thread(target=_load_demo, args=(archive, stop_demo), daemon=True,
                             name="demo").start()
        try:
            with job_worker_process(settings, job_workers):
                uvicorn.run("archive.web.processes:from_environment", factory=True,
                            workers=workers, **options)
        finally:
            stop_demo.set()



def from_environment() -> Starlette:
    """The app of one HTTP worker process (uvicorn calls this in each child). A child never
    outlives the server: if the parent is killed, the kernel ends it too."""
    from archive.embedded import die_with_parent
    from archive.web.app import create_app

    die_with_parent()
    if str(os.getppid()) != os.environ.get(PARENT_VARIABLE, str(os.getppid())):
        os._exit(0)  # the server was stopped while this child started: never run on alone

    return create_app(Settings.from_env())
