"""Feed endpoints: the whole archive, one series, one person; plus 301s from old feed addresses.

Podcast apps and aggregators poll feeds every few minutes, so each feed is rendered once per
catalogue snapshot (`CatalogView.cached`) together with its gzip form and a strong ETag; a request
then does no XML work, and an unchanged feed is a 304 or the very same bytes.

A build runs in one worker thread per feed; the requests that arrive meanwhile await that same
build on the event loop, holding no thread, so a slow feed delays only its own requests, never a
page, another feed or /static. Items are built once and kept (`feeds.Fragments`); a long series
or person feed is written to local files and streamed (`archive/web/feed_files.py`).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

from archive.catalog import CatalogView, PersonSummary
from archive.config import Settings
from archive.models import LICENCE_URLS, Episode, Series
from archive.web.feed_files import STREAM_ITEMS, FeedFile, FeedFolder, write_feed
from archive.web.http import accepts_gzip, http_date, is_not_modified
from archive.web.media import catalog_view, series_cover_path, site_cover
from feeds import BaseUrls, Channel, Fragments, build_feed, podcast_guid
from feeds.build import feed_episodes

FEED_TYPE = "application/rss+xml; charset=utf-8"
FEED_MAX_AGE = 60
ARCHIVE_FEED_PATH = "/feed.xml"
T = TypeVar("T")


@dataclass(frozen=True)
class RenderedFeed:
    """A feed ready to send: both encodings and their validators, each computed once. A long
    feed is a pair of local files (`file`) streamed in chunks; `body` is then empty."""

    body: bytes
    etag: str
    last_modified: datetime
    file: FeedFile | None = None
    # Filled on the first request that accepts gzip, not at build time. Not a
    # cached_property: on Python 3.11 those share one lock across instances.
    _gzipped: list[bytes] = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def of(cls, body: bytes, last_modified: datetime) -> RenderedFeed:
        tag = hashlib.sha256(body).hexdigest()[:32]
        return cls(body, f'"{tag}"', last_modified)

    @classmethod
    def streamed(cls, file: FeedFile, last_modified: datetime) -> RenderedFeed:
        return cls(b"", f'"{file.digest[:32]}"', last_modified, file)

    @property
    def compressed(self) -> bool:
        """Whether the gzip form is ready (a file's always is)."""
        return self.file is not None or bool(self._gzipped)

    @property
    def gzipped(self) -> bytes:
        """mtime=0: the gzip bytes, like the XML, depend only on the content."""
        if not self._gzipped:
            self._gzipped.append(gzip.compress(self.body, mtime=0))
        return self._gzipped[0]

    @property
    def gzip_etag(self) -> str:
        """A strong ETag names exact bytes, so the gzip form has its own."""
        return f'{self.etag[:-1]}-gzip"'


# --- channels ---------------------------------------------------------------------------------


def feed_urls(settings: Settings) -> BaseUrls:
    """Enclosures always point at our own /media URLs, never presigned or at the media host:
    the 302 from /media follows `media_url`, so feeds survive a change of CDN."""
    return BaseUrls(settings.base_url)


def feed_path(kind: str, slug: str = "") -> str:
    return ARCHIVE_FEED_PATH if kind == "archive" else f"/{kind}/{slug}/feed.xml"


def make_channel(settings: Settings, *, title: str, description: str, path: str,
                 page: str, image_url: str, **extra: Any) -> Channel:
    """A channel with the site-wide settings (owner, language, categories, licence, funding)."""
    feed_url = f"{settings.base_url}{path}"
    extra.setdefault("podcast_guid", podcast_guid(feed_url))
    return Channel(
        title=title,
        link=f"{settings.base_url}{page}",
        feed_url=feed_url,
        description=description,
        author=settings.owner_name,
        owner_name=settings.owner_name,
        owner_email=settings.owner_email,
        image_url=image_url,
        language=settings.language,
        categories=settings.categories,
        locked_owner=settings.owner_email,
        license=settings.licence,
        license_url=LICENCE_URLS.get(settings.licence or "", ""),
        funding_url=settings.funding_url,
        **extra,
    )


def archive_channel(settings: Settings, image_url: str) -> Channel:
    # A moved feed names its address so apps that followed the 301 keep the new one.
    moved = {"new_feed_url": settings.base_url + ARCHIVE_FEED_PATH} if settings.old_feed_urls \
        else {}
    return make_channel(settings, title=settings.site_title,
                        description=settings.site_description, path=feed_path("archive"),
                        page="/", image_url=image_url, **moved)


def series_channel(settings: Settings, series: Series, site_image_url: str) -> Channel:
    cover = series_cover_path(series)
    path = feed_path("series", series.slug)
    extra = {"podcast_guid": series.podcast_guid} if series.podcast_guid else {}
    return make_channel(
        settings,
        title=series.title,
        description=series.description or f"{series.title}: recordings from "
        f"{settings.site_title}.",
        path=path,
        page=f"/series/{series.slug}",
        image_url=f"{settings.base_url}{cover}" if cover else site_image_url,
        medium=series.medium,
        **extra,
    )


def person_channel(settings: Settings, person: PersonSummary, image_url: str) -> Channel:
    who = f"{person.name} ({person.affiliation})" if person.affiliation else person.name
    return make_channel(
        settings,
        title=who,
        description=f"Recordings with {who} from {settings.site_title}.",
        path=feed_path("people", person.slug),
        page=f"/people/{person.slug}",
        image_url=image_url,
    )


# --- rendering --------------------------------------------------------------------------------


def feed_source(view: CatalogView, settings: Settings, kind: str, slug: str, site_image_url: str
                ) -> tuple[Channel, list[Episode]]:
    """The channel and episodes of one feed; NotFound for an unknown series or person."""
    if kind == "series":
        series = view.series(slug)
        return series_channel(settings, series, site_image_url), view.series_episodes(slug)
    if kind == "people":
        person = view.person(slug)
        return person_channel(settings, person, site_image_url), view.person_episodes(slug)
    return archive_channel(settings, site_image_url), view.published


# Each feed's items from its last build, reused by the next (see `feeds.build.Fragments`):
# one per feed this process has served; a build of a feed holds its own, one at a time.
_fragments: dict[tuple[str, str], Fragments] = {}
_fragments_lock = threading.Lock()


def fragments_of(kind: str, slug: str) -> Fragments:
    with _fragments_lock:
        return _fragments.setdefault((kind, slug), Fragments())


def render(view: CatalogView, channel: Channel, episodes: list[Episode], settings: Settings,
           kind: str = "archive", slug: str = "", folder: FeedFolder | None = None
           ) -> RenderedFeed:
    """The feed's bytes, or with `folder` and more than `STREAM_ITEMS` items, its files."""
    titles = {s.slug: s.title for s in view.all_series}
    if kind == "archive" and settings.feed_limit:
        episodes = episodes[:settings.feed_limit]  # the newest (`view.published` is sorted)
    included = feed_episodes(episodes)
    if folder is not None and len(included) > STREAM_ITEMS:
        urls = feed_urls(settings)
        try:
            built = write_feed(folder.path, channel, included, urls, titles,
                               folder.previous((kind, slug)))
        except FileNotFoundError:  # the last build's files were replaced meanwhile: no reuse
            built = write_feed(folder.path, channel, included, urls, titles, None)
        folder.replace((kind, slug), built, view.updated_at)
        return RenderedFeed.streamed(built, view.updated_at)
    body = build_feed(channel, included, feed_urls(settings), series_titles=titles,
                      fragments=fragments_of(kind, slug))
    # The snapshot's time, not the newest episode's: a deletion must change it too.
    return RenderedFeed.of(body, view.updated_at)


async def rendered_feed(request: Request, kind: str, slug: str = "") -> RenderedFeed:
    """The feed from the current snapshot, built at most once per catalogue change.

    The hot path (the feed is built) is a dictionary lookup: no thread hop, no channel work.
    """
    view = catalog_view(request)
    key = ("feed", kind, slug)
    feed: RenderedFeed | None = view.cache.get(key)
    if feed is not None and feed.file is not None and not feed.file.path.exists():
        view.cache.pop(key, None)  # removed with builds of newer snapshots: build it again
        feed = None
    if feed is None:
        settings: Settings = request.app.state.archive.settings
        cover = await site_cover(request)
        channel, episodes = feed_source(view, settings, kind, slug,
                                        settings.base_url + cover.path)
        folder = getattr(request.app.state, "feed_folder", None)
        feed = await built_once(view, key, lambda: render(view, channel, episodes, settings,
                                                          kind, slug, folder))
    if accepts_gzip(request.headers.get("accept-encoding")) and not feed.compressed:
        ready = feed  # compress once, off the event loop
        await built_once(view, ("feed-gzip", kind, slug), lambda: ready.gzipped)
    return feed


async def built_once(view: CatalogView, key: Any, build: Callable[[], T]) -> T:
    """`view.cached(key, build)` in one worker thread; requests arriving during the build
    await the same future on the event loop instead of each holding a thread on a lock."""
    try:
        return view.cache[key]  # type: ignore[no-any-return]
    except KeyError:
        pass
    loop = asyncio.get_running_loop()
    pending_key = ("building", key)
    pending = view.cache.get(pending_key)
    if pending is None or pending[0] is not loop:  # (a build on another loop: not awaitable)
        task = loop.create_task(run_in_threadpool(view.cached, key, build))
        task.add_done_callback(lambda done: _forget_build(view, pending_key, done))
        pending = view.cache[pending_key] = (loop, task)
    # Shielded: a client that gives up must not cancel the build the others are waiting for.
    return await asyncio.shield(pending[1])  # type: ignore[no-any-return]


def _forget_build(view: CatalogView, pending_key: Any, task: asyncio.Task[Any]) -> None:
    """The next request after a failed build tries again; nobody left waiting is fine."""
    view.cache.pop(pending_key, None)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it when no request awaited it


def feed_response(request: Request, feed: RenderedFeed) -> Response:
    """200 (gzip when accepted), 304 when the client's copy is current, HEAD without a body."""
    gzipped = accepts_gzip(request.headers.get("accept-encoding"))
    headers = {
        "ETag": feed.gzip_etag if gzipped else feed.etag,
        "Last-Modified": http_date(feed.last_modified),
        "Cache-Control": f"public, max-age={FEED_MAX_AGE}",
        "Access-Control-Allow-Origin": "*",
        "Vary": "Accept-Encoding",
    }
    if is_not_modified(request.headers, (feed.etag, feed.gzip_etag), feed.last_modified):
        return Response(status_code=304, headers=headers)
    if feed.file is not None:
        return _streamed_response(request, feed.file, gzipped, headers)
    body = feed.gzipped if gzipped else feed.body
    headers["Content-Type"] = FEED_TYPE
    headers["Content-Length"] = str(len(body))
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return Response(None if request.method == "HEAD" else body, headers=headers)


def _streamed_response(request: Request, file: FeedFile, gzipped: bool,
                       headers: dict[str, str]) -> Response:
    """A long feed from its file, in chunks; opened now, so a newer build removing the file
    does not cut the response short."""
    headers["Content-Type"] = FEED_TYPE
    headers["Content-Length"] = str(file.gz_size if gzipped else file.size)
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    if request.method == "HEAD":
        return Response(None, headers=headers)
    try:
        chunks = file.open(gzipped)
    except FileNotFoundError:  # replaced twice since this snapshot: the client asks again
        return Response("The feed was just rebuilt; try again.", status_code=503,
                        headers={"Retry-After": "1", "Cache-Control": "no-store"})
    return StreamingResponse(chunks, headers=headers)


async def archive_feed(request: Request) -> Response:
    return feed_response(request, await rendered_feed(request, "archive"))


async def series_feed(request: Request) -> Response:
    return feed_response(request, await rendered_feed(request, "series",
                                                      request.path_params["slug"]))


async def person_feed(request: Request) -> Response:
    return feed_response(request, await rendered_feed(request, "people",
                                                      request.path_params["slug"]))


# --- moved feeds ------------------------------------------------------------------------------


def old_feed_paths(settings: Settings) -> frozenset[str]:
    """`old_feed_urls` as paths (full URLs are accepted too); never /feed.xml itself."""
    paths = {urlsplit(url).path or "/" for url in settings.old_feed_urls}
    paths = {path if path.startswith("/") else f"/{path}" for path in paths}
    return frozenset(paths - {ARCHIVE_FEED_PATH})


class MovedFeeds(BaseRoute):
    """301 from the app's `old_feed_urls` to /feed.xml, so subscribers move with the feed.

    A route rather than a list of Routes because the paths come from the app's settings, which
    this module-level routes table cannot know.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        archive = getattr(getattr(scope.get("app"), "state", None), "archive", None)
        if scope["type"] == "http" and archive is not None and (
            scope["path"] in old_feed_paths(archive.settings)
        ):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = scope["app"].state.archive.settings
        response = RedirectResponse(f"{settings.base_url}{ARCHIVE_FEED_PATH}", 301)
        await response(scope, receive, send)


routes: list[BaseRoute] = [
    MovedFeeds(),  # first: an old address wins over whatever it now looks like
    Route(ARCHIVE_FEED_PATH, archive_feed, methods=["GET", "HEAD"]),
    Route("/series/{slug}/feed.xml", series_feed, methods=["GET", "HEAD"]),
    Route("/people/{slug}/feed.xml", person_feed, methods=["GET", "HEAD"]),
]
