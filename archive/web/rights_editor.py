"""Editors' rights page for one episode: rights statement, embargo (scheduled publication) and
each speaker's consent, with "withdraw consent" unpublishing in one action (archive/rights.py).

- `GET /edit/{id}/rights`
- `POST /edit/{id}/rights` with `action` = `rights` (`rights`), `schedule` (`publish_at`, a UTC
  date and time), `unschedule`, or `consent` (`speaker`, `status`; status `withdrawn` unpublishes).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from archive import rights
from archive.errors import InvalidInput
from archive.models import CONSENT_STATUSES, LICENCES, RIGHTS_STATEMENTS, Episode
from archive.web.editor import (
    NO_STORE,
    editor_for_change,
    editor_for_page,
    page,
    small_form,
    to_login,
)

ACTIONS = ("rights", "schedule", "unschedule", "consent")


@dataclass(frozen=True)
class ConsentRow:
    slug: str
    name: str
    role: str
    status: str


def _episode(request: Request) -> Episode:
    view = request.app.state.archive.catalog.refresh()
    episode: Episode = view.episode(request.path_params["episode_id"], include_drafts=True)
    return episode


async def rights_page(request: Request) -> Response:
    if await editor_for_page(request) is None:
        return to_login(request)
    episode = await run_in_threadpool(_episode, request)
    rows = [ConsentRow(p.slug, p.name, p.role, episode.consent.get(p.slug, "unknown"))
            for p in episode.speakers]
    return page(request, "rights_editor.html", {
        "episode": episode, "statements": RIGHTS_STATEMENTS, "statuses": CONSENT_STATUSES,
        "licence": LICENCES.get(episode.licence or "", ""), "consent": rows,
        "blocked": rights.blocked_by(episode),
        "publish_at": episode.publish_at.strftime("%Y-%m-%dT%H:%M") if episode.publish_at
        else "",
        "saved": request.query_params.get("saved", "")})


async def save_rights(request: Request) -> Response:
    form = await small_form(request)
    user = await editor_for_change(request, form.get("csrf"))
    action = form.get("action")
    if action not in ACTIONS:
        raise InvalidInput(f"Choose one of: {', '.join(ACTIONS)}.")
    archive = request.app.state.archive
    episode_id = request.path_params["episode_id"]
    if action == "rights":
        await run_in_threadpool(rights.set_rights, archive, episode_id, form.get("rights"), user)
    elif action == "schedule":
        when = form.get("publish_at").strip()
        if not when:
            raise InvalidInput("Choose the date and time of publication (UTC).")
        await run_in_threadpool(rights.schedule, archive, episode_id, when, user)
    elif action == "unschedule":
        await run_in_threadpool(rights.schedule, archive, episode_id, None, user)
    else:
        await run_in_threadpool(rights.set_consent, archive, episode_id, form.get("speaker"),
                                form.get("status"), user)
    return RedirectResponse(f"/edit/{episode_id}/rights?saved={action}", 303, headers=NO_STORE)


routes: list[BaseRoute] = [
    Route("/edit/{episode_id}/rights", rights_page, methods=["GET", "HEAD"]),
    Route("/edit/{episode_id}/rights", save_rights, methods=["POST"]),
]
