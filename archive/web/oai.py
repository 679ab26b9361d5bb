"""`/oai`: the OAI-PMH 2.0 endpoint for harvesters (GET, or POST with a urlencoded form).

The protocol itself is in archive/oai.py; this module reads the request, and lists the
deletions once per catalogue snapshot (a delete writes its tombstone before it changes the
catalogue, so a new snapshot is the only moment the list can have grown). Answers are XML with
status 200, errors included, as the protocol asks.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from archive.catalog import CatalogView
from archive.errors import PayloadTooLarge
from archive.oai import Records, Repository
from archive.removal import tombstoned
from archive.web.media import catalog_view

XML_TYPE = "text/xml; charset=utf-8"
MAX_FORM = 64 * 1024


def oai_records(request: Request, view: CatalogView) -> Records:
    store = request.app.state.archive.store
    return view.cached("oai-records", lambda: Records.of(view, tombstoned(store)))


async def read_arguments(request: Request) -> list[tuple[str, str]]:
    if request.method != "POST":
        return list(request.query_params.multi_items())
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            raise PayloadTooLarge("An OAI-PMH request is a few short arguments.")
    return parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)


async def oai_endpoint(request: Request) -> Response:
    pairs = await read_arguments(request)
    settings = request.app.state.settings
    view = catalog_view(request)

    def answer() -> bytes:
        return Repository(settings, view, oai_records(request, view)).respond(pairs)

    body = await run_in_threadpool(answer)
    return Response(body, media_type=XML_TYPE, headers={"cache-control": "no-store"})


routes: list[BaseRoute] = [Route("/oai", oai_endpoint, methods=["GET", "HEAD", "POST"])]
