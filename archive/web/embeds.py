"""The player made for other sites: `/episodes/{slug}/embed`, `/series/{slug}/embed` (its
recent recordings) and oEmbed discovery (`/oembed?url=…&format=json`).

Embeds live in a room of their own because they are the only pages another site may frame:
each answer brings its own Content-Security-Policy with `frame-ancestors *` (so the security
middleware adds no X-Frame-Options), and never touches the session, so no cookie is ever set
on a page shown inside someone else's site. Every other page keeps refusing to be framed.

oEmbed 1.0 (https://oembed.com/): `url` is one of our episode or series pages; the answer is
type `rich` with the iframe `html`, `width` and `height` (required for rich), `version`, and
the optional `title`, `provider_*` and `thumbnail_*` (all three thumbnail fields or none).
An unknown URL is 404 and `format=xml` 501 Not Implemented, as the spec asks.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from archive.errors import InvalidInput, NotFound
from archive.models import Episode
from archive.web import pages, sharing, views
from archive.web.views import Link

RECENT = 10  # recordings listed by a series embed
MAX_SIZE = 4000
DEFAULT_WIDTH = 640
CACHE = "public, max-age=300"


def embed_policy(request: Request) -> str:
    """The page CSP, but framable by anyone; media may also come from the media host."""
    media = ""
    media_url = pages.settings_of(request).media_url or ""
    if media_url.startswith(("http://", "https://")):
        parts = urlsplit(media_url)
        media = f" {parts.scheme}://{parts.netloc}"
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"media-src 'self' blob:{media}; connect-src 'self'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors *")


@dataclass(frozen=True)
class EmbedPlayer:
    """One recording in an embed: what the player, chapters and transcript need."""

    title: str
    href: str  # the episode's page on this site (absolute: the embed lives elsewhere)
    series: Link
    speakers: str
    date_label: str
    duration: str
    seconds: int  # the length known from the catalogue: shown before any byte is loaded
    cover: str
    player: views.Player
    chapters: tuple[views.Timed, ...]
    cues: tuple[views.Timed, ...]
    transcript_caution: str


@dataclass(frozen=True)
class EmbedRecording:
    title: str
    href: str  # its own embed, in the same frame
    date_label: str
    duration: str


@dataclass(frozen=True)
class SeriesEmbed:
    title: str
    href: str
    recordings: tuple[EmbedRecording, ...]


def _player(request: Request, episode: Episode, cues: tuple[Any, ...]) -> EmbedPlayer:
    view = pages.snapshot(request)
    series = view.series(episode.series)
    cover = episode.files.get("cover")
    day = episode.date or episode.published_at.date()
    state = pages.transcript_state(episode)
    return EmbedPlayer(
        title=episode.title,
        href=pages.absolute(request, f"/episodes/{episode.slug}"),
        series=Link(pages.absolute(request, f"/series/{series.slug}"), series.title),
        speakers=", ".join(p.name for p in episode.speakers),
        date_label=views.long_date(day),
        duration=views.duration_label(episode.duration),
        seconds=round(episode.duration or 0),
        cover=views.media_path(episode.id, cover.filename) if cover else "",
        player=pages._player(episode),
        chapters=pages._chapters(episode),
        cues=pages._cues(cues),
        transcript_caution=state.caution,
    )


def _respond(request: Request, name: str, **context: Any) -> Response:
    response = pages.render(request, name, speeds=pages.SPEEDS, **context)
    response.headers["content-security-policy"] = embed_policy(request)
    response.headers["cache-control"] = CACHE
    return response


async def episode_embed(request: Request) -> Response:
    episode = pages.published_episode(request)
    cues, _ = await asyncio.to_thread(pages.episode_cues, request, episode)
    series_path = f"/series/{episode.series}/embed"
    return _respond(request, "embed.html", embed=_player(request, episode, cues),
                    more=Link(series_path, "More from this series"))


async def series_embed(request: Request) -> Response:
    view = pages.snapshot(request)
    series = view.series(request.path_params["slug"])
    episodes = [e for e in view.series_episodes(series.slug) if e.has_audio][:RECENT]
    if not episodes:
        raise NotFound("Nothing has been published in this series yet.")
    newest = episodes[0]
    cues, _ = await asyncio.to_thread(pages.episode_cues, request, newest)
    listing = SeriesEmbed(
        title=series.title,
        href=pages.absolute(request, f"/series/{series.slug}"),
        recordings=tuple(
            EmbedRecording(e.title, f"/episodes/{e.slug}/embed",
                           views.long_date(e.date or e.published_at.date()),
                           views.duration_label(e.duration))
            for e in episodes),
    )
    return _respond(request, "embed_series.html", embed=_player(request, newest, cues),
                    listing=listing)


# -- oEmbed ---------------------------------------------------------------------------------

PAGE_PATH = re.compile(r"^/(episodes|series|e)/([a-z0-9-]{1,120})/?$")  # /e/{id}: permalinks


class NotImplementedFormat(InvalidInput):
    status = 501


def _size(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit() or len(raw) > 6 or int(raw) == 0:
        raise InvalidInput(f"{name} must be a positive whole number of pixels.")
    return min(int(raw), MAX_SIZE)


def _target(request: Request, url: str) -> tuple[str, Any]:
    """The episode or series a URL names, if it is one of ours (any of our origins)."""
    parts = urlsplit(url)
    ours = {pages.settings_of(request).base_url.rstrip("/"), str(request.base_url).rstrip("/")}
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    match = PAGE_PATH.match(parts.path)
    if origin not in {o.lower() for o in ours} or match is None:
        raise NotFound("This address is not a recording or series of this archive.")
    kind, slug = match.groups()
    view = pages.snapshot(request)
    if kind in ("episodes", "e"):
        episode = view.episode_by_slug(slug) if kind == "episodes" else view.episode(slug)
        if episode.audio is None:
            raise NotFound("There is no such recording.")
        return "episode", episode
    return "series", view.series(slug)


def oembed_answer(request: Request, url: str, maxwidth: int | None,
                  maxheight: int | None) -> dict[str, Any]:
    kind, item = _target(request, url)
    settings = pages.settings_of(request)
    path = f"/episodes/{item.slug}" if kind == "episode" else f"/series/{item.slug}"
    page_url = pages.absolute(request, path)
    # The spec: never larger than maxwidth/maxheight (the player is responsive, and scrolls).
    width = min(maxwidth or DEFAULT_WIDTH, DEFAULT_WIDTH)
    height = min(maxheight or sharing.EMBED_HEIGHTS[kind], sharing.EMBED_HEIGHTS[kind])
    answer: dict[str, Any] = {
        "version": "1.0",
        "type": "rich",
        "title": item.title,
        "provider_name": settings.site_title,
        "provider_url": settings.base_url + "/",
        "cache_age": 3600,
        "html": sharing.embed_code(page_url, item.title, kind, width=width, height=height),
        "width": width,
        "height": height,
    }
    if kind == "episode" and item.speakers:
        speaker = item.speakers[0]
        answer["author_name"] = ", ".join(p.name for p in item.speakers)
        answer["author_url"] = pages.absolute(request, f"/people/{speaker.slug}")
    cover = item.files.get("cover") if kind == "episode" else None
    if cover is not None and cover.width and cover.height:
        answer.update(thumbnail_url=pages.absolute(request, views.media_path(item.id,
                                                                            cover.filename)),
                      thumbnail_width=cover.width, thumbnail_height=cover.height)
    return answer


async def oembed(request: Request) -> Response:
    url = request.query_params.get("url", "").strip()
    if not url:
        raise InvalidInput("oEmbed needs the url of a recording or series page.")
    fmt = request.query_params.get("format", "json").lower()
    if fmt == "xml":
        raise NotImplementedFormat("Only format=json is offered.")
    if fmt != "json":
        raise InvalidInput("format must be json.")
    answer = oembed_answer(request, url, _size(request, "maxwidth"), _size(request, "maxheight"))
    return Response(json.dumps(answer, ensure_ascii=False), media_type="application/json",
                    headers={"access-control-allow-origin": "*", "cache-control": CACHE})


routes: list[BaseRoute] = [
    Route("/episodes/{slug}/embed", episode_embed, methods=["GET", "HEAD"]),
    Route("/series/{slug}/embed", series_embed, methods=["GET", "HEAD"]),
    Route("/oembed", oembed, methods=["GET", "HEAD"]),
]
