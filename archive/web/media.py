"""Media delivery: an episode's files, series covers and the site cover, streamed from S3.

Podcast apps probe with HEAD and `Range: bytes=0-1` before they accept a feed, and players seek
with ranges, so every answer carries exact lengths and validators taken from the catalogue (HEAD
never touches storage) and ranged GETs pass the range through to S3. Bodies are relayed chunk by
chunk, so memory does not grow with the file. Only files the catalogue names are served: the
request path selects an entry of `episode.files`, it never becomes an object key itself.

Drafts (never published, or unpublished) are answered only to signed-in editors (session or API
token) with `private, no-store`, and to everyone else exactly as an unknown id (404): an id from
an old feed must not keep an unpublished recording online. With a public media host
(`ARCHIVE_MEDIA_URL=https://…`) a draft is streamed from here, never redirected to the host.
With `ARCHIVE_MEDIA_URL=presigned` the bucket stays private and every answer is a 302 to a
presigned URL valid `PRESIGNED_SECONDS`, made for the storage endpoint the app uses (so that
endpoint must be one listeners can reach); the redirect itself is never cached.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from urllib.parse import quote

from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from archive.catalog import CatalogView
from archive.errors import Conflict, NotFound
from archive.models import Episode, MediaFile, Series
from archive.storage import ObjectStore
from archive.web.counting import Listen, listen_to
from archive.web.guard import bearer_token, get_auth, session_editor
from archive.web.http import (
    ByteRange,
    RangeNotSatisfiable,
    content_disposition,
    http_date,
    if_range_allows,
    is_not_modified,
    parse_range,
)
from feeds import MIME_TYPES
from media.artwork import generate_cover

log = logging.getLogger("archive.web.media")

# A day: editing an episode re-tags its audio, which rewrites the bytes under the same name.
EPISODE_MAX_AGE = 86_400
# The site cover's name carries its checksum, so a given URL never changes content.
IMMUTABLE_MAX_AGE = 31_536_000
CHAPTERS_TYPE = "application/json+chapters"
TEXT_TYPES = {".vtt": "text/vtt; charset=utf-8", ".srt": "application/x-subrip"}
EXPOSED_HEADERS = "Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified"
NOT_FOUND = "There is no such file."
PRIVATE = "private, no-store"  # drafts, and presigned redirects
PRESIGNED_SECONDS = 3600  # long enough to play or seek an hour in; checked when a request starts
# Bodies up to this size are read in one go (one thread hop); larger ones stream, memory flat.
WHOLE_BODY_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Servable:
    """One object as HTTP sees it: everything needed to answer without asking storage."""

    key: str
    filename: str
    size: int
    content_type: str
    sha256: str
    last_modified: datetime | None
    cache_control: str = f"public, max-age={EPISODE_MAX_AGE}"

    @property
    def etag(self) -> str:
        return f'"{self.sha256}"'


@dataclass(frozen=True)
class SiteCover:
    """The generated whole-archive cover, stored once under a name derived from its bytes."""

    key: str
    size: int
    sha256: str
    last_modified: datetime | None

    @property
    def filename(self) -> str:
        return PurePosixPath(self.key).name

    @property
    def path(self) -> str:
        return f"/media/site/{self.filename}"


# --- URLs other parts of the site link to ---------------------------------------------------


def episode_file_path(episode: Episode, role: str) -> str:
    """Site-relative URL of an episode's file (the player, download links, feeds)."""
    return f"/media/{episode.id}/{quote(episode.files[role].filename, safe='')}"


def series_cover_path(series: Series) -> str | None:
    if series.cover is None:
        return None
    return f"/media/series/{series.slug}/{quote(series.cover.filename, safe='')}"


# --- the site cover -----------------------------------------------------------------------


def store_site_cover(store: ObjectStore, title: str) -> SiteCover:
    """Generate the cover for `title` and store it unless an identical one is already there."""
    data = generate_cover(title)
    digest = hashlib.sha256(data).hexdigest()
    key = f"site/cover-{digest[:12]}.jpg"
    with contextlib.suppress(Conflict):  # another process stored the same bytes first
        store.put_bytes(key, data, "image/jpeg", if_none_match=True)
    return SiteCover(key, len(data), digest, store.head(key).last_modified)


async def site_cover(request: Request) -> SiteCover:
    """The site cover, generated and stored at most once per process (the title is fixed)."""
    state = request.app.state
    cover: SiteCover | None = getattr(state, "site_cover", None)
    if cover is None:
        archive = state.archive
        cover = await run_in_threadpool(store_site_cover, archive.store,
                                        archive.settings.site_title)
        state.site_cover = cover
    return cover


# --- what a request names ---------------------------------------------------------------------


def catalog_view(request: Request) -> CatalogView:
    """The current snapshot, without I/O (the app refreshes it in the background)."""
    return request.app.state.archive.catalog.cached_view()  # type: ignore[no-any-return]


def media_type(role: str, media: MediaFile) -> str:
    """Sidecars get the types players and Podcasting 2.0 apps look for; the rest as stored."""
    if role == "chapters":
        return CHAPTERS_TYPE
    suffix = PurePosixPath(media.filename).suffix.lower()
    return (TEXT_TYPES.get(suffix) or media.content_type or MIME_TYPES.get(suffix)
            or "application/octet-stream")


def find_file(episode: Episode, filename: str) -> tuple[str, MediaFile]:
    """The catalogued file of that name; anything else (meta.json, traversal) is a 404."""
    for role, media in episode.files.items():
        if media.filename == filename:
            return role, media
    raise NotFound(NOT_FOUND)


def _from_media(role: str, media: MediaFile, last_modified: datetime) -> Servable:
    return Servable(media.key, media.filename, media.size, media_type(role, media), media.sha256,
                    last_modified)


# --- endpoints --------------------------------------------------------------------------------


async def episode_file(request: Request) -> Response:
    """A published episode's files for everyone; a draft's only for editors (the upload flow
    plays a draft before publishing it), never cached."""
    episode = catalog_view(request).episode(request.path_params["episode_id"],
                                            include_drafts=True)
    if episode.draft and not await editor_is_asking(request):
        raise NotFound(NOT_FOUND)
    role, media = find_file(episode, request.path_params["filename"])
    item = _from_media(role, media, episode.updated_at)
    if episode.draft:
        return await serve(request, dataclasses.replace(item, cache_control=PRIVATE),
                           public_host=False)
    return await serve(request, item, listen=listen_to(request, episode, role, media))


async def editor_is_asking(request: Request) -> bool:
    """A signed-in editor (session cookie) or an API token. Sessions and tokens are checked
    against documents at most `catalog_ttl` seconds old, so a sign-out holds within that."""
    if not request.session.get("user") and bearer_token(request) is None:
        return False  # a listener: no thread hop, no storage

    def check() -> bool:
        if session_editor(request) is not None:
            return True
        token = bearer_token(request)
        return token is not None and get_auth(request).user_for_token(token) is not None

    return await run_in_threadpool(check)


async def series_file(request: Request) -> Response:
    series = catalog_view(request).series(request.path_params["slug"])
    if series.cover is None or series.cover.filename != request.path_params["filename"]:
        raise NotFound(NOT_FOUND)
    return await serve(request, _from_media("cover", series.cover, series.created_at))


async def site_file(request: Request) -> Response:
    cover = await site_cover(request)
    if request.path_params["filename"] != cover.filename:
        raise NotFound(NOT_FOUND)
    item = Servable(cover.key, cover.filename, cover.size, "image/jpeg", cover.sha256,
                    cover.last_modified, f"public, max-age={IMMUTABLE_MAX_AGE}, immutable")
    return await serve(request, item)


# --- answering --------------------------------------------------------------------------------


async def serve(request: Request, item: Servable, *, public_host: bool = True,
                listen: Listen | None = None) -> Response:
    """HEAD, conditional and ranged GET for one object, or a redirect to where it is served:
    a presigned URL, or the public media host (only when `public_host` allows). `listen`
    (statistics) is told what was sent, or that the request was redirected."""
    settings = request.app.state.archive.settings
    if listen is not None and (settings.presigned_media or (settings.media_url and public_host)):
        listen.redirected()
    if settings.presigned_media:
        store: ObjectStore = request.app.state.archive.store
        # Signing is local computation (no request to storage), so it may run here.
        return RedirectResponse(store.presigned_get(item.key, PRESIGNED_SECONDS), 302,
                                headers={"Cache-Control": PRIVATE})
    if settings.media_url and public_host:
        return RedirectResponse(f"{settings.media_url}/{quote(item.key)}", 302,
                                headers={"Cache-Control": "private, no-cache"})
    validators = _validator_headers(item)
    if is_not_modified(request.headers, (item.etag,), item.last_modified):
        return Response(status_code=304, headers=validators)
    try:
        byte_range = _requested_range(request, item)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={**validators,
                                                  "Content-Range": f"bytes */{item.size}"})
    headers = {**validators, **_entity_headers(request, item, byte_range)}
    if request.method == "HEAD" or item.size == 0:
        return Response(status_code=200, headers=headers)
    store = request.app.state.archive.store
    span = (byte_range.start, byte_range.end) if byte_range else None
    status = 206 if byte_range else 200
    length = (byte_range.end - byte_range.start + 1) if byte_range else item.size
    if length <= WHOLE_BODY_LIMIT:  # one thread hop instead of one per chunk
        body = await run_in_threadpool(lambda: b"".join(store.open(item.key, span)))
        if listen is not None:
            listen.sent(span[0] if span else 0, len(body))
        return Response(body, status, headers=headers)
    chunks = await run_in_threadpool(store.open, item.key, span)
    return StreamingResponse(relay(chunks, listen, span[0] if span else 0), status,
                             headers=headers)


def _requested_range(request: Request, item: Servable) -> ByteRange | None:
    """Ranges apply to GET only, and only while an If-Range validator is still current."""
    if request.method != "GET":
        return None
    if not if_range_allows(request.headers.get("if-range"), item.etag, item.last_modified):
        return None
    return parse_range(request.headers.get("range"), item.size)


def _validator_headers(item: Servable) -> dict[str, str]:
    """What 304 and 416 answers repeat: validators, caching and CORS."""
    headers = {
        "ETag": item.etag,
        "Cache-Control": item.cache_control,
        "Accept-Ranges": "bytes",
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Expose-Headers": EXPOSED_HEADERS,
    }
    if item.last_modified is not None:
        headers["Last-Modified"] = http_date(item.last_modified)
    return headers


def _entity_headers(request: Request, item: Servable, byte_range: ByteRange | None
                    ) -> dict[str, str]:
    headers = {
        "Content-Type": item.content_type,
        "Content-Length": str(byte_range.length if byte_range else item.size),
    }
    if byte_range is not None:
        headers["Content-Range"] = byte_range.content_range
    if request.query_params.get("download") in {"1", "true", "yes"}:
        headers["Content-Disposition"] = content_disposition(item.filename)
    return headers


async def relay(chunks: Iterator[bytes], listen: Listen | None = None, start: int = 0
                ) -> AsyncIterator[bytes]:
    """Pull the blocking S3 body one chunk at a time in a worker thread; memory stays flat.
    Only bytes handed to the server count for statistics (a client gone mid-file stops it)."""
    sent = 0
    try:
        async for chunk in iterate_in_threadpool(chunks):
            yield chunk
            sent += len(chunk)
    finally:
        if listen is not None:
            listen.sent(start, sent)
        close = getattr(chunks, "close", None)
        if close is not None:
            # Frees the S3 connection when the client goes away mid-file.
            with contextlib.suppress(ValueError):  # still running in its thread
                close()


routes: list[BaseRoute] = [
    # Before the episode route: "/media/site/x" would otherwise look like episode "site".
    Route("/media/site/{filename}", site_file, methods=["GET", "HEAD"]),
    Route("/media/series/{slug}/{filename}", series_file, methods=["GET", "HEAD"]),
    Route("/media/{episode_id}/{filename}", episode_file, methods=["GET", "HEAD"]),
]
