"""Pictures the pages use: cover renditions (`/art/…`), the favicon, touch icons and the web app
manifest.

`/art/{digest}/{name}` answers only for a digest of a cover the published catalogue names and a
rendition recorded on it, so the path never becomes an arbitrary object key and a draft's
pictures stay private. The icons are drawn from the site's artwork (its colour and initial) once
per process: they depend only on the site title.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from archive import artwork
from archive.catalog import CatalogView
from archive.errors import NotFound
from archive.models import Episode
from archive.storage import ObjectStore
from archive.web.http import is_not_modified
from archive.web.media import IMMUTABLE_MAX_AGE, Servable, catalog_view, serve
from media import artwork as pictures

ICON_SIZES = (32, 180, 192, 512)  # favicon PNG, Apple touch icon, manifest icons
ICON_MAX_AGE = 86_400  # the title (and so the icons) can change when the server restarts
THEME_LIGHT = "#14324f"  # the header's colour
THEME_DARK = "#0e1621"
NOT_FOUND = "There is no such picture."


# -- cover renditions -----------------------------------------------------------------------


def published_renditions(view: CatalogView) -> dict[str, frozenset[str]]:
    """Digest → rendition names, for the covers of published episodes and of every series."""

    def build() -> dict[str, frozenset[str]]:
        found = dict(_episode_covers.of(view.published))
        for series in view.all_series:
            if series.cover is not None and series.cover.renditions:
                found[artwork.digest(series.cover)] = frozenset(series.cover.renditions)
        return found

    return view.cached(RENDITIONS, build)  # type: ignore[no-any-return]


RENDITIONS = "art:renditions"
_Rendered = tuple[str, frozenset[str]]  # a cover's digest and its rendition names


class _EpisodeCovers:
    """The rendered covers of the last snapshot's published episodes, by packed record. An
    unchanged episode keeps its record from one snapshot to the next, so a new snapshot unpacks
    only the episodes that changed (all of them: ~1 s at 100,000 covered episodes)."""

    def __init__(self) -> None:
        self._known: dict[bytes, _Rendered] = {}
        self._names: dict[frozenset[str], frozenset[str]] = {}  # one set per set of names
        self._lock = threading.Lock()

    def of(self, episodes: list[Episode]) -> list[_Rendered]:
        with self._lock:
            known = self._known
        fresh: dict[bytes, _Rendered] = {}
        found = []
        for episode in episodes:
            record = episode.packed
            rendered = known.get(record) if record is not None else None
            if rendered is None:
                cover = episode.cover  # None from the header alone when there is none
                if cover is None or not cover.renditions:
                    continue
                names = frozenset(cover.renditions)
                rendered = (artwork.digest(cover), self._names.setdefault(names, names))
            if record is not None:
                fresh[record] = rendered
            found.append(rendered)
        with self._lock:
            self._known = fresh
        return found


_episode_covers = _EpisodeCovers()


@dataclass(frozen=True)
class _Head:
    size: int
    last_modified: Any


class _Heads:
    """What storage said of each rendition (size, validators): a rendition never changes under
    its key, so one HEAD per process is enough."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._found: OrderedDict[str, _Head] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, store: ObjectStore, key: str) -> _Head:
        with self._lock:
            if key in self._found:
                return self._found[key]
        info = store.head(key)
        head = _Head(info.size, info.last_modified)
        with self._lock:
            self._found[key] = head
            while len(self._found) > self.size:
                self._found.popitem(last=False)
        return head


def heads(request: Request) -> _Heads:
    state = request.app.state
    found: _Heads | None = getattr(state, "art_heads", None)
    if found is None:
        found = state.art_heads = _Heads()
    return found


async def rendition(request: Request) -> Response:
    cover_digest, name = request.path_params["digest"], request.path_params["name"]
    view = catalog_view(request)
    renditions = view.cache.get(RENDITIONS)
    if renditions is None:  # once per snapshot, off the event loop
        renditions = await run_in_threadpool(published_renditions, view)
    names = renditions.get(cover_digest)
    if names is None or name not in names:
        raise NotFound(NOT_FOUND)
    key = artwork.rendition_key(cover_digest, name)
    head = await run_in_threadpool(heads(request).get, request.app.state.archive.store, key)
    content_type = pictures.RENDITION_TYPES[name.rsplit(".", 1)[1]]
    item = Servable(key, name, head.size, content_type, f"{cover_digest}-{name}",
                    head.last_modified, f"public, max-age={IMMUTABLE_MAX_AGE}, immutable")
    # Streamed from here even with a public media host: renditions are small, cached for good
    # by browsers and CDNs, and the bucket policy (docs/bucket-policy.json) keeps art/ private.
    return await serve(request, item, public_host=False)


# -- icons and the manifest -------------------------------------------------------------------


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str

    @property
    def etag(self) -> str:
        return f'"{hashlib.sha256(self.body).hexdigest()[:32]}"'


def site_assets(request: Request) -> dict[str, Asset]:
    """Every icon and the manifest, drawn on first use and kept for the process's life."""
    state = request.app.state
    assets: dict[str, Asset] | None = getattr(state, "site_assets", None)
    if assets is None:
        assets = make_assets(state.settings.site_title, state.settings.site_description)
        state.site_assets = assets
    return assets


def make_assets(title: str, description: str) -> dict[str, Asset]:
    assets = {f"icon-{size}.png": Asset(pictures.generate_icon(title, size), "image/png")
              for size in ICON_SIZES}
    assets["icon-maskable-512.png"] = Asset(pictures.generate_icon(title, 512, maskable=True),
                                            "image/png")
    assets["favicon.ico"] = Asset(pictures.generate_favicon(title), "image/x-icon")
    assets["manifest.webmanifest"] = Asset(manifest(title, description).encode(),
                                           "application/manifest+json")
    return assets


def manifest(title: str, description: str) -> str:
    """The web app manifest: installable on a phone's home screen, opening the recordings."""
    icons = [{"src": f"/icons/icon-{size}.png", "sizes": f"{size}x{size}", "type": "image/png"}
             for size in (192, 512)]
    icons.append({"src": "/icons/icon-maskable-512.png", "sizes": "512x512",
                  "type": "image/png", "purpose": "maskable"})
    short = title if len(title) <= 12 else title.split()[0][:12]
    return json.dumps({
        "name": title, "short_name": short, "description": description, "lang": "en-GB",
        "start_url": "/", "scope": "/", "display": "minimal-ui",
        "background_color": "#fbfaf7", "theme_color": THEME_LIGHT, "icons": icons,
    }, ensure_ascii=False, indent=1)


async def _asset(request: Request, name: str) -> Response:
    assets = site_assets(request) if hasattr(request.app.state, "site_assets") \
        else await run_in_threadpool(site_assets, request)
    asset = assets.get(name)
    if asset is None:
        raise NotFound(NOT_FOUND)
    headers = {"ETag": asset.etag, "Cache-Control": f"public, max-age={ICON_MAX_AGE}"}
    if is_not_modified(request.headers, (asset.etag,), None):
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else asset.body
    response = Response(body, media_type=asset.media_type, headers=headers)
    if request.method == "HEAD":
        response.headers["content-length"] = str(len(asset.body))
    return response


async def icon(request: Request) -> Response:
    return await _asset(request, request.path_params["name"])


async def favicon(request: Request) -> Response:
    return await _asset(request, "favicon.ico")


async def web_manifest(request: Request) -> Response:
    return await _asset(request, "manifest.webmanifest")


routes: list[BaseRoute] = [
    Route("/art/{digest}/{name}", rendition, methods=["GET", "HEAD"]),
    Route("/icons/{name}", icon, methods=["GET", "HEAD"]),
    Route("/favicon.ico", favicon, methods=["GET", "HEAD"]),
    Route("/manifest.webmanifest", web_manifest, methods=["GET", "HEAD"]),
]
