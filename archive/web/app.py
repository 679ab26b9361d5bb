"""The Starlette application: `create_app(settings)` assembles routes, middleware and lifespan.

Long-lived parts (object store, catalogue, templates) are built in the lifespan and reach views
through `request.app.state`; nothing lives in module globals, so tests build their own apps.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from archive.config import Settings
from archive.errors import ArchiveError
from archive.job_workers import job_workers as workers_process
from archive.runtime import Archive, open_archive
from archive.stats.recorder import start_recorder
from archive.web import (
    api,
    editor,
    embeds,
    errors,
    feeds,
    guard,
    iiif,
    media,
    oai,
    pages,
    people_editor,
    rights_editor,
    series_editor,
    sharing,
    transcript_editor,
    uploads,
)
from archive.web import stats as stats_pages
from archive.web.feed_files import FeedFolder
from archive.web.guard import SessionMiddleware
from archive.web.security import SecurityHeadersMiddleware
from archive.web.templating import make_templates, static_dir

log = logging.getLogger("archive.web")


async def healthz(request: Request) -> JSONResponse:
    """200 when the bucket answers, 503 when it does not. The reason (it names the storage
    endpoint and bucket) goes to the log, never to the public."""
    archive = request.app.state.archive
    try:
        await asyncio.to_thread(archive.store.check)
    except ArchiveError as error:
        log.warning("health check: storage unavailable: %s", error.message)
        return JSONResponse({"status": "unavailable", "reason": "storage unavailable"},
                            status_code=503)
    return JSONResponse({"status": "ok", "episodes": len(archive.catalog.cached_view().published)})


def routes() -> list[BaseRoute]:
    """The routes table: each part of the site owns its own list."""
    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Mount("/static", StaticFiles(directory=static_dir()), name="static"),
        *feeds.routes,
        *media.routes,
        *api.routes,
        *oai.routes,  # OAI-PMH for harvesters (#14)
        *iiif.routes,  # IIIF manifests, before pages' /episodes/{slug}
        *embeds.routes,  # the only framable pages, with their own CSP
        *transcript_editor.routes,  # before editor's /edit/{id}, which "transcripts" would match
        *people_editor.routes,  # before editor's /edit/{id}, which "people" would match
        *series_editor.routes,  # before editor's /edit/{id}, which "series" would match
        *rights_editor.routes,
        *editor.routes,
        *stats_pages.routes,
        *pages.routes,
    ]


async def _revalidate(archive_catalog: object, ttl: float) -> None:
    """Keep the catalogue snapshot fresh so request handlers never wait on storage."""
    while True:
        await asyncio.sleep(max(ttl, 0.2))
        with contextlib.suppress(ArchiveError):
            await asyncio.to_thread(archive_catalog.refresh)  # type: ignore[attr-defined]


def _load_demo(archive: Archive, stop: threading.Event) -> None:
    from archive.demo import load_demo

    try:
        episodes = load_demo(archive, stop=stop)
        log.info("loaded %d demo recordings", len(episodes))
    except ArchiveError as error:
        log.warning("demo recordings not loaded: %s", error.message)


def create_app(settings: Settings, *, demo_if_empty: bool = False, job_workers: int = 0
               ) -> Starlette:
    """The app; with `demo_if_empty`, an empty archive fills with the demo recordings in the
    background while the site is already answering (`make run` on a new laptop); with
    `job_workers`, a child process runs that many background jobs at a time."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        with open_archive(settings) as archive, \
                workers_process(settings, job_workers) as worker:
            app.state.job_worker = worker
            await asyncio.to_thread(archive.catalog.upgrade)  # format 1 → manifest + segments
            await asyncio.to_thread(uploads.sweep_stale_spools, uploads.spool_dir(archive))
            app.state.archive = archive
            app.state.settings = settings
            app.state.stats = start_recorder(archive.store, settings.data_dir)
            app.state.templates = make_templates(settings)
            sharing.install(app.state.templates)
            pages.install(app.state)
            app.state.feed_folder = FeedFolder(Path(settings.data_dir))  # long feeds' files
            guard.install(app.state)
            refresher = asyncio.create_task(_revalidate(archive.catalog, settings.catalog_ttl))
            warming = asyncio.create_task(pages.warm_up(app))
            stop_demo = threading.Event()
            if demo_if_empty and not archive.catalog.cached_view().data.episodes:
                threading.Thread(target=_load_demo, args=(archive, stop_demo), daemon=True,
                                 name="demo").start()
            try:
                yield
            finally:
                stop_demo.set()
                # Let running ingests finish while storage is still up.
                await asyncio.to_thread(app.state.jobs.shutdown)
                await asyncio.to_thread(app.state.stats.close)  # the last statistics batch
                for task in (refresher, warming):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                pages.uninstall(app.state)  # closes the search index (the host keeps its file)
                app.state.feed_folder.close()

    return Starlette(
        routes=routes(),
        middleware=[
            Middleware(SecurityHeadersMiddleware),
            Middleware(SessionMiddleware, secret_key=settings.secret_key,
                       https_only=settings.secure_cookies),
        ],
        exception_handlers=errors.handlers(),
        lifespan=lifespan,
    )
