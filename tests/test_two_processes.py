"""Two app processes on one bucket: a change through one is seen by the other within seconds."""

from __future__ import annotations

import dataclasses
import io
import threading
import time
from pathlib import Path

import feedparser
import httpx2 as httpx
import podcastparser
import pytest

from archive.catalog import Catalog
from archive.config import Settings
from archive.fixity import verify
from archive.storage import ObjectStore
from tests import media_samples
from tests.cli import run_cli
from tests.servers import serve, wait_until
from tests.test_auth import bearer, token_for

pytestmark = pytest.mark.slow


def test_a_commit_shows_in_both_processes_within_the_ttl(settings: Settings, store: ObjectStore,
                                                         tmp_path: Path) -> None:
    settings = dataclasses.replace(settings, catalog_ttl=1.0)
    with serve(settings) as first, serve(settings) as second:
        feeds = {base: httpx.get(f"{base}/feed.xml").text for base in (first, second)}
        assert all("<item>" not in feed for feed in feeds.values())
        source = media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=1.0)
        result = run_cli(settings, "ingest", source, "--title", "Trusting Enemies",
                         "--series", "Lectures")
        assert result.returncode == 0, result.stderr
        committed = time.monotonic()
        for base in (first, second):
            assert wait_until(lambda base=base: "Trusting Enemies" in
                              httpx.get(f"{base}/feed.xml").text, timeout=10)
        # Both saw it within the revalidation window (plus a request's worth of slack).
        assert time.monotonic() - committed < settings.catalog_ttl + 3
        assert httpx.get(f"{second}/healthz").json()["episodes"] == 1


def feed_titles(base: str) -> list[str]:
    """The archive feed's item titles, parsed as podcast apps parse it."""
    xml = httpx.get(f"{base}/feed.xml").content
    parsed = feedparser.parse(xml)
    assert parsed.bozo == 0, parsed.bozo_exception
    titles = sorted(e["title"] for e in podcastparser.parse(f"{base}/feed.xml",
                                                            io.BytesIO(xml))["episodes"])
    assert titles == sorted(e.title for e in parsed.entries)
    return titles


def api_titles(base: str) -> list[str]:
    listing = httpx.get(f"{base}/api/episodes", params={"per_page": 50}).json()
    assert listing["total"] == len(listing["episodes"])
    return sorted(e["title"] for e in listing["episodes"])


def test_sixteen_concurrent_uploads_over_both_processes_all_land(
        settings: Settings, store: ObjectStore, tmp_path: Path) -> None:
    settings = dataclasses.replace(settings, catalog_ttl=1.0)
    token = token_for(store)
    count = 16
    recordings = [media_samples.make_recording(tmp_path / f"r{n:02}.mp3", "mp3", seconds=1.0,
                                               frequency=200 + 37 * n) for n in range(count)]
    expected = sorted(f"Concurrent Talk {n:02}" for n in range(count))
    results: dict[int, httpx.Response | Exception] = {}
    with serve(settings) as first, serve(settings) as second:
        bases = (first, second)
        for base in bases:  # both have loaded the (empty) catalogue before the burst
            assert api_titles(base) == [] and feed_titles(base) == []
        start = threading.Barrier(count)

        def upload(n: int) -> None:
            try:
                with httpx.Client(base_url=bases[n % 2], timeout=120) as http, \
                        recordings[n].open("rb") as stream:
                    start.wait(30)
                    results[n] = http.post(
                        "/api/episodes", headers=bearer(token),
                        data={"title": f"Concurrent Talk {n:02}", "series": f"Series {n % 3}",
                              "speaker": [f"Speaker {n};speaker;University {n % 4}"]},
                        files={"file": (f"r{n:02}.mp3", stream, "audio/mpeg")})
            except Exception as error:  # recorded, so the assertion below names it
                results[n] = error

        threads = [threading.Thread(target=upload, args=(n,)) for n in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(180)
        landed = time.monotonic()
        assert not any(thread.is_alive() for thread in threads), "an upload hung"
        statuses = {n: getattr(r, "status_code", repr(r)) for n, r in results.items()}
        assert statuses == dict.fromkeys(range(count), 201), [
            getattr(r, "text", r) for r in results.values()]
        ids = {results[n].json()["id"] for n in range(count)}  # type: ignore[union-attr]
        assert len(ids) == count

        # Both processes list all 16, in the API and in the feed, within the revalidation window.
        for base in bases:
            assert wait_until(lambda base=base: api_titles(base) == expected
                              and feed_titles(base) == expected,
                              timeout=settings.catalog_ttl + 10, interval=0.05), (
                base, api_titles(base), feed_titles(base))
        assert time.monotonic() - landed < settings.catalog_ttl + 3
        for base in bases:
            assert httpx.get(f"{base}/healthz").json()["episodes"] == count
            for n in range(3):
                series = httpx.get(f"{base}/series/series-{n}/feed.xml")
                assert series.status_code == 200
                assert series.text.count("<item>") == len(range(n, count, 3))

    # No lost update in the bucket either: every upload committed, nothing left over.
    catalog = Catalog(store)
    assert sorted(e.title for e in catalog.refresh().published) == expected
    assert set(catalog.refresh().data.episodes) == ids
    report = verify(catalog)
    assert report.ok, (report.damaged, report.orphans)
