"""Editors' pages: sign-in and out, their account, upload with live status, edit / publish /
delete, the audit log.

Pages for editors redirect anyone else to /login; every POST refuses cross-site requests,
needs a signed-in editor (401) and the session's CSRF token (403), in that order, before it
reads a file or changes anything. Ingests run in the background (`archive.jobs`): the upload
page's script polls `/upload/jobs/{id}`, and without JavaScript the same address is a page that
refreshes itself until the recording is ready, then redirects to it. Whatever may wait on
storage (sessions, sign-in counters, audit events) runs in a worker thread, never on the loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from archive import audit, editing
from archive.auth import check_password
from archive.errors import InvalidInput, TooManyRequests, Unauthorized
from archive.jobs import Job
from archive.models import ACADEMIC_ROLES, EPISODE_TYPES, LICENCES, Episode, Person
from archive.web.errors import wants_json
from archive.web.guard import (
    check_csrf,
    check_same_origin,
    client_address,
    csrf_token,
    end_session,
    get_auth,
    get_jobs,
    get_signin,
    session_editor,
    start_session,
)
from archive.web.http import read_limited
from archive.web.media import episode_file_path
from archive.web.uploads import (
    BadRequest,
    UploadForm,
    ingest_upload,
    metadata_from_form,
    read_upload,
    recording_of,
    spool_dir,
)

MAX_FORM_BYTES = 256 * 1024
MAX_SIDECAR_UPLOAD = 64 * 1024 * 1024
NO_STORE = {"Cache-Control": "no-store"}
EMPTY_SPEAKER_ROWS = 2


@dataclass(frozen=True)
class Form:
    """A small url-encoded form, read with a size limit (never a file)."""

    values: dict[str, list[str]]

    def get(self, name: str, default: str = "") -> str:
        return (self.values.get(name) or [default])[0]

    def getlist(self, name: str) -> list[str]:
        return list(self.values.get(name, []))


async def small_form(request: Request) -> Form:
    if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        raise BadRequest("This form must be sent url-encoded.")
    body = await read_limited(request, MAX_FORM_BYTES, "This form is too large.")
    return Form(parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))


def page(request: Request, template: str, context: dict[str, Any], status: int = 200,
         headers: dict[str, str] | None = None) -> Response:
    """Editor pages are personal: never cached, and always with the CSRF token at hand."""
    context = {"csrf": csrf_token(request), "editor": request.session.get("user"), **context}
    return request.app.state.templates.TemplateResponse(  # type: ignore[no-any-return]
        request, template, context, status_code=status, headers={**NO_STORE, **(headers or {})})


def safe_next(target: str) -> str:
    """Only paths on this site (no `//host`, no backslashes): no open redirect after sign-in."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/upload"


def to_login(request: Request) -> RedirectResponse:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(path, safe='')}", 303)


async def editor_for_page(request: Request) -> str | None:
    """Editor pages are few and personal: always confirm the editor still exists."""
    return await run_in_threadpool(lambda: session_editor(request, fresh=True))


async def editor_for_change(request: Request, submitted_csrf: str | None = None,
                            *, check_token: bool = True) -> str:
    """Cross-site → 403; no editor → 401; then (when asked) the CSRF token → 403."""
    check_same_origin(request)
    user = await run_in_threadpool(lambda: session_editor(request, fresh=True))
    if user is None:
        raise Unauthorized("Please sign in as an editor first.")
    if check_token:
        check_csrf(request, submitted_csrf)
    return user


# -- sign in and out ---------------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    return page(request, "login.html", {"next": safe_next(request.query_params.get("next", "")),
                                        "error": "", "username": ""})


async def login(request: Request) -> Response:
    """Throttled (`archive.signin`); one message for every wrong name or password.

    The form carries the session's CSRF token, and a token sent must match. A post without one
    (a script that never loaded the form) is accepted: login CSRF needs a victim's browser, and
    browsers send `Origin` (and `Sec-Fetch-Site`) with every cross-site POST, which
    `check_same_origin` refuses. Signing in changes nothing but the caller's own session.
    """
    check_same_origin(request)
    form = await small_form(request)
    if "csrf" in form.values:
        check_csrf(request, form.get("csrf"))
    username, target = form.get("username").strip(), safe_next(form.get("next"))
    context = {"next": target, "username": username[:64]}
    address = client_address(request)
    try:
        user = await run_in_threadpool(get_signin(request).attempt, username,
                                       form.get("password"), address)
    except TooManyRequests as error:
        return throttled_page(request, "login.html", context, error)
    if user is None:
        return page(request, "login.html", {**context, "error": "Wrong username or password."},
                    401)
    sid = await run_in_threadpool(get_auth(request).start_session, user)
    start_session(request, user, sid)
    await record(request, user, "session.login", user, address=address)
    return RedirectResponse(target, 303, headers=NO_STORE)


def throttled_page(request: Request, template: str, context: dict[str, Any],
                   error: TooManyRequests) -> Response:
    return page(request, template, {**context, "error": error.message}, 429,
                {"Retry-After": str(error.retry_after)})


async def record(request: Request, actor: str, action: str, target: str = "",
                 **detail: Any) -> None:
    """An audit event for a change already made (a failed write is logged, not raised)."""
    store = request.app.state.archive.store
    await run_in_threadpool(lambda: audit.safe_record(store, actor, action, target, **detail))


async def logout(request: Request) -> Response:
    """End this session on the server too, so a copy of the cookie stops working."""
    check_same_origin(request)
    form = await small_form(request)
    check_csrf(request, form.get("csrf"))
    user = await run_in_threadpool(end_session, request)
    if user:
        await record(request, user, "session.logout", user)
    return RedirectResponse("/", 303, headers=NO_STORE)


async def logout_everywhere(request: Request) -> Response:
    """End every session of this editor: other browsers, and any copied cookie."""
    form = await small_form(request)
    user = await editor_for_change(request, form.get("csrf"))
    await run_in_threadpool(get_auth(request).end_all_sessions, user)
    request.session.clear()
    await record(request, user, "session.logout_everywhere", user)
    return RedirectResponse("/", 303, headers=NO_STORE)


# -- the editor's account ----------------------------------------------------------------------


async def account_page(request: Request) -> Response:
    if await editor_for_page(request) is None:
        return to_login(request)
    return page(request, "account.html", {"saved": request.query_params.get("saved", ""),
                                          "error": ""})


async def change_password(request: Request) -> Response:
    """Needs the current password (throttled like sign-in); ends every session of the editor,
    then carries on in this browser with a new one."""
    form = await small_form(request)
    user = await editor_for_change(request, form.get("csrf"))
    new = form.get("new_password")
    try:
        if new != form.get("new_password_again"):
            raise InvalidInput("The two new passwords differ.")
        check_password(new)
    except InvalidInput as error:
        return page(request, "account.html", {"saved": "", "error": error.message}, 422)
    try:
        confirmed = await run_in_threadpool(get_signin(request).attempt, user,
                                            form.get("current_password"),
                                            client_address(request))
    except TooManyRequests as error:
        return throttled_page(request, "account.html", {"saved": ""}, error)
    if confirmed != user:
        return page(request, "account.html", {"saved": "", "error": "Wrong password."}, 401)
    auth = get_auth(request)
    await run_in_threadpool(auth.set_password, user, new)
    start_session(request, user, await run_in_threadpool(auth.start_session, user))
    await record(request, user, "user.password", user)
    return RedirectResponse("/account?saved=password", 303, headers=NO_STORE)


# -- upload ------------------------------------------------------------------------------------


async def upload_page(request: Request) -> Response:
    if await editor_for_page(request) is None:
        return to_login(request)
    view = request.app.state.archive.catalog.cached_view()
    return page(request, "upload.html", {
        "series": view.all_series, "roles": ACADEMIC_ROLES, "licences": LICENCES,
        "episode_types": EPISODE_TYPES, "speaker_rows": range(EMPTY_SPEAKER_ROWS + 1),
        "max_upload_mb": request.app.state.archive.settings.max_upload_mb,
        "default_licence": request.app.state.archive.settings.licence or "",
    })


async def upload(request: Request) -> Response:
    """Spool the body, then ingest in the background; 202 JSON for the page's script, or a
    303 to the status page for a plain form post."""
    header_token = request.headers.get("x-csrf-token")
    user = await editor_for_change(request, header_token, check_token=header_token is not None)
    archive = request.app.state.archive
    form = await read_upload(request, archive.settings.max_upload_bytes, spool_dir(archive))
    try:
        if header_token is None:
            check_csrf(request, form.get("csrf"))
        meta, recording = metadata_from_form(form), recording_of(form)
    except BaseException:
        form.cleanup()
        raise
    job = await run_in_threadpool(  # storing the job's status may wait on storage
        get_jobs(request).submit, user,
        lambda progress: ingest_upload(archive, user, recording, meta, progress), form.cleanup)
    status_url = f"/upload/jobs/{job.id}"
    if wants_json(request):
        return JSONResponse({"job": job.id, "status_url": status_url}, 202,
                            headers={"Location": status_url, **NO_STORE})
    return RedirectResponse(status_url, 303, headers=NO_STORE)


def job_destination(job: Job) -> str:
    """Where an editor goes when their upload is ready: the public page, or (drafts) the
    edit page, since a draft has no public page yet."""
    if job.state != "done":
        return ""
    return f"/edit/{job.episode_id}" if job.draft else f"/episodes/{job.slug}"


async def job_status(request: Request) -> Response:
    if await editor_for_page(request) is None:
        if wants_json(request):
            raise Unauthorized("Please sign in as an editor first.")
        return to_login(request)
    job = await run_in_threadpool(get_jobs(request).get, request.path_params["job_id"])
    destination = job_destination(job)
    if wants_json(request):
        return JSONResponse({**job.to_dict(), "next": destination}, headers=NO_STORE)
    if destination:
        return RedirectResponse(destination, 303, headers=NO_STORE)
    refresh = {} if job.finished else {"Refresh": "2"}
    return page(request, "_editor_status.html", {"job": job}, headers=refresh)


# -- editing -----------------------------------------------------------------------------------


async def episodes_page(request: Request) -> Response:
    if await editor_for_page(request) is None:
        return to_login(request)
    view = await run_in_threadpool(request.app.state.archive.catalog.refresh)
    episodes = sorted(view.data.episodes.values(), key=lambda e: e.published_at, reverse=True)
    return page(request, "_editor_episodes.html", {
        "episodes": episodes, "deleted": request.query_params.get("deleted") == "1"})


async def edit_page(request: Request) -> Response:
    if await editor_for_page(request) is None:
        return to_login(request)
    archive = request.app.state.archive
    view = await run_in_threadpool(archive.catalog.refresh)
    episode = view.episode(request.path_params["episode_id"], include_drafts=True)
    series = view.data.series.get(episode.series)
    audio = episode_file_path(episode, "audio") if episode.audio else ""
    return page(request, "edit.html", {
        "episode": episode, "revision": editing.revision(episode), "audio_url": audio,
        "series_title": series.title if series else episode.series, "series": view.all_series,
        "roles": ACADEMIC_ROLES, "licences": LICENCES, "episode_types": EPISODE_TYPES,
        "speaker_rows": range(len(episode.speakers) + EMPTY_SPEAKER_ROWS),
        "saved": request.query_params.get("saved", ""),
    })


def changes_from_form(form: Form, episode: Episode) -> dict[str, Any]:
    """Every editable field the edit form shows (publishing has its own button)."""
    changes: dict[str, Any] = {
        name: form.get(name) for name in (
            "title", "description", "licence", "event", "language", "episode_type")
    }
    changes["licence"] = changes["licence"] or None
    changes["series"] = form.get("series")
    changes["date"] = form.get("date") or None
    changes["tags"] = [t.strip() for t in form.get("tags").split(",") if t.strip()]
    changes["season"] = form.get("season") or None
    changes["number"] = form.get("number") or None
    changes["explicit"] = form.get("explicit") in {"1", "on", "yes"}
    changes["speakers"] = _speakers(form, episode)
    location = form.get("location").strip()
    if location != (episode.location.name if episode.location else ""):
        changes["location"] = location or None
    return changes


def _speakers(form: Form, episode: Episode) -> list[dict[str, Any]]:
    """Speaker rows; ORCID and URL, which the form does not show, are kept by name."""
    known = {p.name: p for p in episode.speakers}
    rows = zip(form.getlist("speaker_name"), form.getlist("speaker_role"),
               form.getlist("speaker_affiliation"), strict=False)
    speakers = []
    for name, role, affiliation in rows:
        if not name.strip():
            continue
        before = known.get(name.strip(), Person(name=name))
        speakers.append({"name": name, "role": role or "speaker", "affiliation": affiliation,
                         "orcid": before.orcid, "url": before.url})
    return speakers


async def edit(request: Request) -> Response:
    form = await small_form(request)
    user = await editor_for_change(request, form.get("csrf"))
    archive = request.app.state.archive
    episode_id = request.path_params["episode_id"]
    current = archive.catalog.cached_view().episode(episode_id, include_drafts=True)
    changes = changes_from_form(form, current)
    await run_in_threadpool(lambda: editing.update_episode(
        archive, episode_id, changes, user, expected_revision=form.get("revision") or None))
    return RedirectResponse(f"/edit/{episode_id}?saved=details", 303, headers=NO_STORE)


async def replace_files(request: Request) -> Response:
    header_token = request.headers.get("x-csrf-token")
    user = await editor_for_change(request, header_token, check_token=header_token is not None)
    archive = request.app.state.archive
    form: UploadForm = await read_upload(request, MAX_SIDECAR_UPLOAD, spool_dir(archive))
    try:
        if header_token is None:
            check_csrf(request, form.get("csrf"))
        episode_id = request.path_params["episode_id"]
        await run_in_threadpool(lambda: editing.replace_sidecars(
            archive, episode_id, user, artwork=form.path("artwork"),
            transcript=form.path("transcript"), chapters=form.path("chapters"),
            expected_revision=form.get("revision") or None))
    finally:
        form.cleanup()
    return RedirectResponse(f"/edit/{episode_id}?saved=files", 303, headers=NO_STORE)


async def publish(request: Request) -> Response:
    form = await small_form(request)
    user = await editor_for_change(request, form.get("csrf"))
    action = form.get("action")
    if action not in {"publish", "unpublish"}:
        raise InvalidInput("Choose publish or unpublish.")
    episode_id = request.path_params["episode_id"]
    await run_in_threadpool(editing.set_draft, request.app.state.archive, episode_id,
                            action == "unpublish", user)
    return RedirectResponse(f"/edit/{episode_id}?saved={action}", 303, headers=NO_STORE)


async def delete(request: Request) -> Response:
    form = await small_form(request)
    user = await editor_for_change(request, form.get("csrf"))
    await run_in_threadpool(editing.delete_episode, request.app.state.archive,
                            request.path_params["episode_id"], user)
    return RedirectResponse("/edit?deleted=1", 303, headers=NO_STORE)


async def audit_page(request: Request) -> Response:
    if await editor_for_page(request) is None:
        return to_login(request)
    events = await run_in_threadpool(audit.recent, request.app.state.archive.store)
    return page(request, "audit.html", {"events": events})


routes: list[BaseRoute] = [
    Route("/login", login_page, methods=["GET", "HEAD"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/logout/everywhere", logout_everywhere, methods=["POST"]),
    Route("/account", account_page, methods=["GET", "HEAD"]),
    Route("/account/password", change_password, methods=["POST"]),
    Route("/upload", upload_page, methods=["GET", "HEAD"]),
    Route("/upload", upload, methods=["POST"]),
    Route("/upload/jobs/{job_id}", job_status, methods=["GET", "HEAD"]),
    Route("/edit", episodes_page, methods=["GET", "HEAD"]),
    Route("/edit/{episode_id}", edit_page, methods=["GET", "HEAD"]),
    Route("/edit/{episode_id}", edit, methods=["POST"]),
    Route("/edit/{episode_id}/files", replace_files, methods=["POST"]),
    Route("/edit/{episode_id}/publish", publish, methods=["POST"]),
    Route("/edit/{episode_id}/delete", delete, methods=["POST"]),
    Route("/audit", audit_page, methods=["GET", "HEAD"]),
]
