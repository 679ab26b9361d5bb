"""Serving under load (wrk, 32 connections): the archive vs the same bytes from a bare route in
the same server vs nginx from a file; and media through /media vs straight from S3."""

from __future__ import annotations

import tempfile
from pathlib import Path

import httpx2 as httpx

from archive.demo import load_demo
from archive.models import Episode
from archive.runtime import Archive
from bench.synthetic import add_synthetic
from bench.tools import Result, bench_server, embedded_archive, nginx, wrk

MEDIA_RANGE = "bytes=100000-165535"


def run(seconds: int) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-http-") as folder:
        work = Path(folder)
        bare = work / "bare"
        bare.mkdir()
        for folder in (work, bare):  # nginx's workers run as an unprivileged user
            folder.chmod(0o755)
        with embedded_archive(work / "s3") as archive:
            demo = load_demo(archive)
            add_synthetic(archive.catalog, 500 - len(demo))
            with bench_server(archive, bare) as base:
                pages = _snapshot(base, bare, demo[0].slug)
                results = _pages_and_feeds(base, bare, pages, seconds)
                results += _media(base, archive, demo[0], seconds)
    return results


def _snapshot(base: str, bare: Path, slug: str) -> dict[str, tuple[str, str]]:
    """Fetch each page once; store its bytes for the bare route and nginx."""
    pages = {"feed.xml": "/feed.xml", "home.html": "/", "episode.html": f"/episodes/{slug}"}
    etags = {}
    for name, path in pages.items():
        response = httpx.get(base + path, timeout=60)
        response.raise_for_status()
        (bare / name).write_bytes(response.content)
        etags[name] = (path, response.headers.get("etag", ""))
    return etags


def _pages_and_feeds(base: str, bare: Path, pages: dict[str, tuple[str, str]], seconds: int
                     ) -> list[Result]:
    results = []
    with nginx(bare) as static:
        for name, (path, etag) in pages.items():
            archive_rps = wrk(base + path, seconds=seconds)
            bare_rps = wrk(f"{base}/bare/{name}", seconds=seconds)
            nginx_rps = wrk(f"{static}/{name}", seconds=seconds)
            label = "feed /feed.xml (500 episodes)" if name == "feed.xml" else f"page {path}"
            target = 0.8 if name == "feed.xml" else 0.5
            results.append(Result("http", f"{label}: archive vs bare route (req/s)", archive_rps,
                                  bare_rps, "req/s", target=target,
                                  extra={"nginx_rps": nginx_rps}))
            results.append(Result("http", f"{label}: archive vs nginx file (req/s)", archive_rps,
                                  nginx_rps, "req/s"))
            if name == "feed.xml" and etag:
                cached = wrk(base + path, seconds=seconds, headers={"If-None-Match": etag})
                bare_304 = wrk(f"{base}/bare/304", seconds=seconds)
                results.append(Result("http", "feed 304 (If-None-Match): archive vs bare 304",
                                      cached, bare_304, "req/s", target=0.8))
    return results


def _media(base: str, archive: Archive, episode: Episode, seconds: int) -> list[Result]:
    audio = episode.files["audio"]
    direct = archive.store.presigned_get(audio.key, expires=3600)
    through = f"{base}/media/{episode.id}/{audio.filename}"
    full_app = wrk(through, seconds=seconds, connections=8)
    full_s3 = wrk(direct, seconds=seconds, connections=8)
    ranged_app = wrk(through, seconds=seconds, headers={"Range": MEDIA_RANGE})
    ranged_s3 = wrk(direct, seconds=seconds, headers={"Range": MEDIA_RANGE})
    size_mb = audio.size / 1e6
    return [
        Result("media", f"full GET ({size_mb:.1f} MB): /media vs S3 (req/s)", full_app, full_s3,
               "req/s", target=0.7),
        Result("media", "ranged GET (64 KiB): /media vs S3 (req/s)", ranged_app, ranged_s3,
               "req/s", target=0.7),
    ]
