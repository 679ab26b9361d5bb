"""Editors' people pages: one record per person, shared by every episode they speak in.

- `GET /edit/people`: everyone who speaks in an episode (drafts too), with their ORCID iD.
- `GET /edit/people/{slug}`: the person's name, ORCID iD, homepage and image.
- `POST /edit/people/{slug}`: save them (archive/person_edits.py); every episode follows.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from archive import person_edits
from archive.models import Person
from archive.web.editor import (
    NO_STORE,
    editor_for_change,
    editor_for_page,
    page,
    small_form,
    to_login,
)


@dataclass(frozen=True)
class PersonRow:
    slug: str
    name: str
    orcid: str
    appearances: int


def _rows(request: Request) -> list[PersonRow]:
    data = request.app.state.archive.catalog.refresh().data
    counts: dict[str, int] = {}
    names: dict[str, Person] = {}
    for episode in data.episodes.values():
        for speaker in episode.speakers:
            counts[speaker.slug] = counts.get(speaker.slug, 0) + 1
            names.setdefault(speaker.slug, speaker)
    rows = [PersonRow(slug, (data.people.get(slug) or names[slug]).name,
                      (data.people.get(slug) or names[slug]).orcid, count)
            for slug, count in counts.items()]
    return sorted(rows, key=lambda r: r.name.lower())


async def people_list(request: Request) -> Response:
    if await editor_for_page(request) is None:
        return to_login(request)
    rows = await run_in_threadpool(_rows, request)
    return page(request, "people_editor.html", {"people": rows, "person": None})


async def person_page(request: Request) -> Response:
    if await editor_for_page(request) is None:
        return to_login(request)
    slug = request.path_params["slug"]
    person = await run_in_threadpool(person_edits.find, request.app.state.archive, slug)
    return page(request, "people_editor.html", {
        "people": None, "person": person, "slug": slug,
        "saved": request.query_params.get("saved") == "1"})


async def save_person(request: Request) -> Response:
    form = await small_form(request)
    user = await editor_for_change(request, form.get("csrf"))
    slug = request.path_params["slug"]
    changes = person_edits.PersonChanges(name=form.get("name"), orcid=form.get("orcid"),
                                         url=form.get("url"), image=form.get("image"))
    await run_in_threadpool(person_edits.save, request.app.state.archive, slug, changes, user)
    return RedirectResponse(f"/edit/people/{slug}?saved=1", 303, headers=NO_STORE)


routes: list[BaseRoute] = [
    Route("/edit/people", people_list, methods=["GET", "HEAD"]),
    Route("/edit/people/{slug}", person_page, methods=["GET", "HEAD"]),
    Route("/edit/people/{slug}", save_person, methods=["POST"]),
]
