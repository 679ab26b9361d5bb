"""The JSON API: public reads of published episodes; token-authenticated upload, edit, delete.

- `GET /api/episodes?page=&per_page=`: published episodes, newest first, paginated.
- `GET /api/episodes/{id}`: one published episode (drafts too for a valid bearer token).
- `POST /api/episodes` (multipart: `file` + the CLI's fields): 201 with the episode when the
  ingest is done; with `?wait=false`, 202 at once with `Location: /api/jobs/{job}` to poll.
  Either way the ingest is a job in the same bounded background queue as the upload page's.
- `PATCH /api/episodes/{id}` (JSON object of fields), `DELETE /api/episodes/{id}` (204).
- `GET /api/jobs/{job}`: the status of a background upload.

Writes need `Authorization: Bearer <token>` (checked against the bucket, so a revoked token fails
at once); errors are `{"error": message, "status": n}`. `PATCH` accepts `If-Match: "<revision>"`
(the `revision` of the GET) to refuse an edit based on an outdated copy.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from archive import editing
from archive.catalog import CatalogView
from archive.config import Settings
from archive.errors import InvalidInput
from archive.jobs import Job
from archive.models import Episode
from archive.web.guard import bearer_token, check_same_origin, get_auth, get_jobs, token_editor
from archive.web.http import is_count, read_limited
from archive.web.media import episode_file_path
from archive.web.uploads import (
    BadRequest,
    ingest_upload,
    metadata_from_form,
    read_upload,
    recording_of,
    spool_dir,
)

MAX_JSON_BYTES = 1024 * 1024
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
NO_STORE = {"Cache-Control": "no-store"}


def episode_json(episode: Episode, settings: Settings, *, editor: bool = False) -> dict[str, Any]:
    """An episode as API clients see it: storage keys left out, absolute URLs added, and the
    private fields (`models.PRIVATE_FIELDS`) for editors only."""
    data = episode.to_dict() if editor else episode.public_dict()
    data["revision"] = editing.revision(episode)
    data["url"] = f"{settings.base_url}/episodes/{episode.slug}"
    data["files"] = {
        role: {**{k: v for k, v in media.to_dict().items() if k != "key"},
               "url": f"{settings.base_url}{episode_file_path(episode, role)}"}
        for role, media in episode.files.items()
    }
    return data


def job_json(job: Job, request: Request) -> dict[str, Any]:
    data = job.to_dict()
    if job.episode_id:
        data["episode_url"] = f"/api/episodes/{job.episode_id}"
        data["page_url"] = f"/episodes/{job.slug}"
    return data


def _view(request: Request) -> CatalogView:
    return request.app.state.archive.catalog.cached_view()  # type: ignore[no-any-return]


def _page_number(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name, "")
    if not raw:
        return default
    if not is_count(raw) or int(raw) < 1:
        raise BadRequest(f"{name} must be a positive whole number.")
    return min(int(raw), maximum)


async def list_episodes(request: Request) -> JSONResponse:
    settings = request.app.state.archive.settings
    published = _view(request).published
    per_page = _page_number(request, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    page = _page_number(request, "page", 1, 1_000_000)
    items = published[(page - 1) * per_page: page * per_page]
    has_next = page * per_page < len(published)
    return JSONResponse({
        "episodes": [episode_json(e, settings) for e in items],
        "page": page, "per_page": per_page, "total": len(published),
        "next": f"/api/episodes?page={page + 1}&per_page={per_page}" if has_next else None,
    }, headers={"Cache-Control": "public, max-age=30"})


async def get_episode(request: Request) -> JSONResponse:
    archive = request.app.state.archive
    token = bearer_token(request)
    editor = bool(token) and bool(
        await run_in_threadpool(get_auth(request).user_for_token, token or ""))
    episode = _view(request).episode(request.path_params["episode_id"], include_drafts=editor)
    cache = "private, no-store" if editor else "public, max-age=30"
    return JSONResponse(episode_json(episode, archive.settings, editor=editor),
                        headers={"Cache-Control": cache})


async def create_episode(request: Request) -> Response:
    check_same_origin(request)
    user = await run_in_threadpool(token_editor, request, fresh=True)
    archive = request.app.state.archive
    form = await read_upload(request, archive.settings.max_upload_bytes, spool_dir(archive))
    try:
        meta = metadata_from_form(form)
        recording = recording_of(form)
    except BaseException:
        form.cleanup()
        raise
    jobs = get_jobs(request)
    job = await run_in_threadpool(  # storing the job's status may wait on storage
        jobs.submit, user,
        lambda progress: ingest_upload(archive, user, recording, meta, progress), form.cleanup)
    if request.query_params.get("wait", "").lower() in {"false", "0", "no"}:
        status_url = f"/api/jobs/{job.id}"
        return JSONResponse({**job_json(job, request), "status_url": status_url}, 202,
                            headers={"Location": status_url, **NO_STORE})
    # Awaited on the loop, holding no thread; the job goes on if the client gives up.
    episode = await asyncio.shield(asyncio.wrap_future(jobs.outcome(job.id)))
    return JSONResponse(episode_json(episode, archive.settings, editor=True), 201,
                        headers={"Location": f"/api/episodes/{episode.id}", **NO_STORE})


async def job_status(request: Request) -> JSONResponse:
    await run_in_threadpool(token_editor, request)
    job = await run_in_threadpool(get_jobs(request).get, request.path_params["job_id"])
    return JSONResponse(job_json(job, request), headers=NO_STORE)


async def _json_body(request: Request) -> dict[str, Any]:
    body = await read_limited(request, MAX_JSON_BYTES, "A JSON body may be at most 1 MB.")
    try:
        data = json.loads(body)
    except ValueError:
        raise BadRequest("The body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise BadRequest("The body must be a JSON object.")
    return data


def _if_match(request: Request) -> str | None:
    value = request.headers.get("if-match", "").strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


async def patch_episode(request: Request) -> JSONResponse:
    check_same_origin(request)
    user = await run_in_threadpool(token_editor, request, fresh=True)
    changes = await _json_body(request)
    changes.pop("revision", None)
    if not changes:
        raise InvalidInput("Send at least one field to change.")
    archive = request.app.state.archive
    episode = await run_in_threadpool(
        lambda: editing.update_episode(archive, request.path_params["episode_id"], changes, user,
                                       expected_revision=_if_match(request)))
    return JSONResponse(episode_json(episode, archive.settings, editor=True), headers=NO_STORE)


async def delete_episode(request: Request) -> Response:
    check_same_origin(request)
    user = await run_in_threadpool(token_editor, request, fresh=True)
    archive = request.app.state.archive
    await run_in_threadpool(editing.delete_episode, archive, request.path_params["episode_id"],
                            user)
    return Response(status_code=204)


routes: list[BaseRoute] = [
    Route("/api/episodes", list_episodes, methods=["GET", "HEAD"]),
    Route("/api/episodes", create_episode, methods=["POST"]),
    Route("/api/episodes/{episode_id}", get_episode, methods=["GET", "HEAD"]),
    Route("/api/episodes/{episode_id}", patch_episode, methods=["PATCH"]),
    Route("/api/episodes/{episode_id}", delete_episode, methods=["DELETE"]),
    Route("/api/jobs/{job_id}", job_status, methods=["GET"]),
]
