"""Editors' series pages (#15): where else listeners find each series.

- `GET /edit/series`: every series, with its directory pages.
- `GET /edit/series/{slug}`: its Apple Podcasts and Spotify pages and the feed it moved from.
- `POST /edit/series/{slug}`: save them (archive/series_links.py: validated, audited).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from archive.errors import NotFound
from archive.series_links import FIELDS, set_series_links
from archive.web.editor import (
    NO_STORE,
    editor_for_change,
    editor_for_page,
    page,
    small_form,
    to_login,
)


async def series_list(request: Request) -> Response:
    if await editor_for_page(request) is None:
        return to_login(request)
    view = await run_in_threadpool(request.app.state.archive.catalog.refresh)
    return page(request, "series_editor.html", {"all_series": view.all_series, "series": None})


async def series_page(request: Request) -> Response:
    if await editor_for_page(request) is None:
        return to_login(request)
    view = await run_in_threadpool(request.app.state.archive.catalog.refresh)
    slug = request.path_params["slug"]
    if slug not in view.data.series:
        raise NotFound(f"There is no series {slug!r}.")
    return page(request, "series_editor.html", {
        "all_series": None, "series": view.data.series[slug],
        "saved": request.query_params.get("saved") == "1"})


async def save_series(request: Request) -> Response:
    form = await small_form(request)
    user = await editor_for_change(request, form.get("csrf"))
    slug = request.path_params["slug"]
    changes = {name: form.get(name) for name in FIELDS}
    await run_in_threadpool(set_series_links, request.app.state.archive, slug, changes, user)
    return RedirectResponse(f"/edit/series/{slug}?saved=1", 303, headers=NO_STORE)


routes: list[BaseRoute] = [
    Route("/edit/series", series_list, methods=["GET", "HEAD"]),
    Route("/edit/series/{slug}", series_page, methods=["GET", "HEAD"]),
    Route("/edit/series/{slug}", save_series, methods=["POST"]),
]
