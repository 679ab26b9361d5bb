"""The archive app plus bare routes that return stored bytes: the same server, no work per request.

`/bare/{name}` answers the bytes of `$BENCH_BARE_DIR/{name}` (read once), so the difference
between `/feed.xml` and `/bare/feed.xml` is exactly the archive's own per-request cost.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from archive.config import Settings
from archive.web.app import create_app

TYPES = {".xml": "application/rss+xml; charset=utf-8", ".html": "text/html; charset=utf-8"}


def bare_routes(folder: Path) -> list[Route]:
    cache: dict[str, bytes] = {}

    async def bare(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in cache:
            cache[name] = (folder / Path(name).name).read_bytes()
        return Response(cache[name], media_type=TYPES.get(Path(name).suffix, "text/plain"))

    async def bare_not_modified(request: Request) -> Response:
        return Response(status_code=304, headers={"etag": '"bench"'})

    return [Route("/bare/304", bare_not_modified), Route("/bare/{name}", bare)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = create_app(Settings.from_env())
    for route in reversed(bare_routes(Path(os.environ["BENCH_BARE_DIR"]))):
        app.router.routes.insert(0, route)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
