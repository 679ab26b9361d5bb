"""Editors' transcript pages: correct a transcript line by line, list what awaits review.

- `GET /edit/transcripts`: transcripts nobody has reviewed yet (automatic or partly corrected),
  transcriptions being prepared, and those that failed, with the reason.
- `GET /edit/{id}/transcript`: every cue with its time, a play button for that cue, its words
  and its speaker (one of the episode's speakers).
- `POST /edit/{id}/transcript`: save the corrections (`action=save`), or save and mark the
  transcript reviewed (`action=review`); the form carries the episode's revision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from archive import transcript_edits
from archive.models import Episode
from archive.search import seconds_fragment
from archive.web.editor import editor_for_change, editor_for_page, page, to_login
from archive.web.errors import wants_json
from archive.web.guard import check_csrf
from archive.web.http import read_limited
from archive.web.media import episode_file_path
from archive.web.uploads import BadRequest
from archive.web.views import clock

# A two-hour roundtable has ~1,500 cues; its corrected words fit well within this.
MAX_TRANSCRIPT_FORM = 8 * 1024 * 1024
PROVENANCE_LABELS = {
    "automatic": "Automatic transcript (not reviewed)",
    "edited": "Corrected by an editor, not yet fully reviewed",
    "reviewed": "Reviewed by an editor",
    "supplied": "Supplied with the recording",
}


@dataclass(frozen=True)
class CueRow:
    number: int
    start: str
    end: str
    label: str
    text: str
    speaker: str


def _archive(request: Request) -> Any:
    return request.app.state.archive


def _episode(request: Request) -> Episode:
    view = _archive(request).catalog.cached_view()
    episode: Episode = view.episode(request.path_params["episode_id"], include_drafts=True)
    return episode


def _provenance_label(episode: Episode) -> str:
    provenance = episode.transcript_provenance
    if provenance is None:
        return PROVENANCE_LABELS["supplied"]
    label = PROVENANCE_LABELS.get(provenance.kind, provenance.kind)
    by = f" ({provenance.by})" if provenance.by else ""
    model = f" (model {provenance.model})" if provenance.model else ""
    return f"{label}{by or model}, {provenance.at:%d %B %Y}."


async def transcript_page(request: Request) -> Response:
    if await editor_for_page(request) is None:
        return to_login(request)
    archive = _archive(request)
    await run_in_threadpool(archive.catalog.refresh)  # the editor sees the latest revision
    episode = _episode(request)
    cues = await run_in_threadpool(transcript_edits.read_cues, archive, episode)
    rows = [CueRow(n, seconds_fragment(c.start), seconds_fragment(c.end), clock(c.start),
                   c.text, c.speaker or "") for n, c in enumerate(cues, start=1)]
    return page(request, "transcript_editor.html", {
        "episode": episode, "rows": rows, "speakers": [p.name for p in episode.speakers],
        "revision": transcript_edits.revision(episode),
        "audio_url": episode_file_path(episode, "audio") if episode.audio else "",
        "provenance": _provenance_label(episode),
        "saved": request.query_params.get("saved", ""),
    })


async def save_transcript(request: Request) -> Response:
    user = await editor_for_change(request, check_token=False)  # before reading a large body
    if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        raise BadRequest("This form must be sent url-encoded.")
    body = await read_limited(request, MAX_TRANSCRIPT_FORM, "These corrections are too large.")
    form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    check_csrf(request, (form.get("csrf") or [""])[0])
    texts, speakers = form.get("text", []), form.get("speaker", [])
    if len(speakers) != len(texts):
        raise BadRequest("Every line needs its speaker field (it may be empty).")
    edits = [transcript_edits.CueEdit(t, s) for t, s in zip(texts, speakers, strict=True)]
    reviewed = (form.get("action") or ["save"])[0] == "review"
    episode_id = request.path_params["episode_id"]
    revision = (form.get("revision") or [""])[0]
    episode = await run_in_threadpool(
        lambda: transcript_edits.save(_archive(request), episode_id, edits, user,
                                      expected_revision=revision, reviewed=reviewed))
    if wants_json(request):
        return JSONResponse({"revision": transcript_edits.revision(episode),
                             "provenance": episode.transcript_provenance.kind
                             if episode.transcript_provenance else None})
    state = "reviewed" if reviewed else "saved"
    return RedirectResponse(f"/edit/{episode.id}/transcript?saved={state}", 303)


async def review_list(request: Request) -> Response:
    if await editor_for_page(request) is None:
        return to_login(request)
    archive = _archive(request)
    view = await run_in_threadpool(archive.catalog.refresh)
    work = await run_in_threadpool(view.cached, "transcripts:worklist",
                                   lambda: transcript_edits.worklist(view.data.episodes.values()))
    return page(request, "transcripts_review.html", {
        "unreviewed": work.unreviewed,
        "preparing": work.preparing,
        "failed": work.failed,
        "labels": PROVENANCE_LABELS,
    })


routes: list[BaseRoute] = [
    Route("/edit/transcripts", review_list, methods=["GET", "HEAD"]),
    Route("/edit/{episode_id}/transcript", transcript_page, methods=["GET", "HEAD"]),
    Route("/edit/{episode_id}/transcript", save_transcript, methods=["POST"]),
]
