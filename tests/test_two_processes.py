"""Two app processes on one bucket: a change through one is seen by the other within seconds."""

from __future__ import annotations

import dataclasses
import io
import re
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
from archive.web.media import episode_file_path
from tests import media_samples
from tests.cli import run_cli
from tests.servers import serve, wait_until
from tests.test_auth import PASSWORD, add_editor, bearer, token_for
from tests.test_web_media import publish

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


def _sign_in_over_http(http: httpx.Client, address: str, password: str = PASSWORD
                       ) -> httpx.Response:
    form = http.get("/login", headers={"X-Forwarded-For": address}).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    return http.post("/login", data={"username": "editor", "password": password, "csrf": csrf},
                     headers={"X-Forwarded-For": address})


def test_sign_out_and_sign_in_limits_hold_on_every_process(
        settings: Settings, store: ObjectStore, catalog: Catalog) -> None:
    settings = dataclasses.replace(settings, catalog_ttl=1.0)
    add_editor(store)
    draft = publish(catalog, "Draft on two processes", draft=True, with_sidecars=False)
    draft_url = episode_file_path(draft, "audio")
    with serve(settings) as first, serve(settings) as second, \
            httpx.Client(base_url=first) as laptop:
        assert _sign_in_over_http(laptop, "198.51.100.1").status_code == 303
        copied = {"Cookie": f"archive_session={laptop.cookies['archive_session']}"}
        # The same cookie works on the other process, for pages and for the draft's files…
        assert httpx.get(f"{second}/upload", headers=copied).status_code == 200
        assert httpx.get(f"{second}{draft_url}", headers=copied).status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"',  # type: ignore[union-attr]
                         laptop.get("/upload").text).group(1)
        assert laptop.post("/logout", data={"csrf": csrf}).status_code == 303
        signed_out = time.monotonic()
        # …and after signing out on the first, on the second: pages and changes at once,
        # media for drafts within the revalidation window.
        assert httpx.get(f"{second}/upload", headers=copied).status_code == 303
        assert wait_until(lambda: httpx.get(f"{second}{draft_url}", headers=copied)
                          .status_code == 404, timeout=settings.catalog_ttl + 10, interval=0.05)
        assert time.monotonic() - signed_out < settings.catalog_ttl + 3

        # Failed guesses counted by one process count on the other.
        with httpx.Client(base_url=first) as guesser, httpx.Client(base_url=second) as other:
            for _ in range(5):
                assert _sign_in_over_http(guesser, "203.0.113.5", "wrong-guess").status_code \
                    == 401
            refused = _sign_in_over_http(other, "203.0.113.5")
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
            # Only that address: the editor elsewhere signs in on either process.
            assert _sign_in_over_http(other, "198.51.100.2").status_code == 303
