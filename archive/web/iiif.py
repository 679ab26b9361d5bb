"""`/episodes/{slug}/manifest.json`: the IIIF Presentation 3 manifest, open to every origin.

IIIF viewers run on other sites and fetch manifests from the browser, so the answer carries
`Access-Control-Allow-Origin: *` (it holds only what the public page shows).
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from archive.errors import NotFound
from archive.iiif import manifest
from archive.records import public_record, repository_host
from archive.web.http import is_not_modified
from archive.web.media import catalog_view

MANIFEST_TYPE = 'application/ld+json;profile="http://iiif.io/api/presentation/3/context.json"'
CORS = {"access-control-allow-origin": "*", "access-control-expose-headers": "etag"}


async def episode_manifest(request: Request) -> Response:
    settings = request.app.state.settings
    view = catalog_view(request)
    episode = view.episode_by_slug(request.path_params["slug"])
    record = public_record(episode, view.data.series.get(episode.series), settings)
    if record.delivery is None:
        raise NotFound("This recording has no file to play yet.")
    base = settings.base_url.rstrip("/")
    identifier = quote(f"oai:{repository_host(settings)}:{episode.id}", safe="")
    oai_url = f"{base}/oai?verb=GetRecord&metadataPrefix=mods&identifier={identifier}"
    document = manifest(record, episode, f"{base}/episodes/{episode.slug}/manifest.json",
                        oai_url)
    body = json.dumps(document, ensure_ascii=False, indent=1).encode()
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {**CORS, "etag": etag, "cache-control": "public, max-age=300"}
    if is_not_modified(request.headers, (etag,), None):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=MANIFEST_TYPE, headers=headers)


async def preflight(request: Request) -> Response:
    return Response(status_code=204, headers={
        **CORS, "access-control-allow-methods": "GET, HEAD, OPTIONS",
        "access-control-allow-headers": "*", "access-control-max-age": "86400"})


routes: list[BaseRoute] = [
    Route("/episodes/{slug}/manifest.json", episode_manifest, methods=["GET", "HEAD"]),
    Route("/episodes/{slug}/manifest.json", preflight, methods=["OPTIONS"]),
]
