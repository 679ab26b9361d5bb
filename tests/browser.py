"""Shared helpers for page tests: seeding the archive with real recordings, a live server, and
Chromium through Playwright (Debian's /usr/bin/chromium; `playwright install` is never run).

Reuse from any test module:

    from tests.browser import browser, live_server, publish_recording  # noqa: F401 (fixtures)

- ``publish_recording(catalog, title, ...)`` stages a recording, transcript and chapters in the
  bucket and commits the episode, exactly as ingest does (objects first, catalogue last);
- ``live_server`` runs the app under uvicorn on a free port in a thread, for one test module;
- ``browser`` is a headless Chromium per test module; ``page`` a fresh page per test that fails the
  test on any JavaScript error or CSP violation report in the console.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import uvicorn

from archive.catalog import Catalog
from archive.config import Settings
from archive.models import Chapter, Episode, MediaFile, Person, Series
from archive.web.app import create_app
from tests.factories import make_episode

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
WORKSHOPS = Series.new("Workshops", "Workshops of the research group.")


# -- seeding ----------------------------------------------------------------------------------


def vtt(cues: list[tuple[float, float, str]]) -> bytes:
    """A WebVTT file from (start, end, text) triples."""
    def stamp(seconds: float) -> str:
        minutes, secs = divmod(seconds, 60)
        return f"00:{int(minutes):02d}:{secs:06.3f}"

    blocks = [f"{stamp(a)} --> {stamp(b)}\n{text}" for a, b, text in cues]
    return ("WEBVTT\n\n" + "\n\n".join(blocks) + "\n").encode()


def _stored(catalog: Catalog, key: str, data: bytes, content_type: str,
            **extra: Any) -> MediaFile:
    stored = catalog.store.put_bytes(key, data, content_type)
    return MediaFile(key=key, filename=key.rsplit("/", 1)[1], content_type=content_type,
                     size=stored.size, sha256=stored.sha256, **extra)


def publish_recording(catalog: Catalog, title: str, *, audio: bytes = b"ID3 not really audio",
                      duration: float = 3.0, series: Series = WORKSHOPS,
                      cues: list[tuple[float, float, str]] | None = None,
                      chapters: list[tuple[float, str]] | None = None,
                      original: bytes | None = None, **fields: Any) -> Episode:
    """Stage the files of one episode in the bucket, then commit it to the catalogue."""
    fields.setdefault("speakers", [Person(name="Nicholas J Wheeler", role="chair",
                                          affiliation="University of Birmingham")])
    episode = make_episode(title, series=series.slug, **fields)
    episode.chapters = [Chapter(start=s, title=t) for s, t in chapters or []]
    with catalog.stage(episode.id) as stage:
        episode.files = {"audio": _stored(catalog, stage.key(f"{episode.slug}.mp3"), audio,
                                          "audio/mpeg", duration=duration)}
        if cues is not None:
            episode.files["transcript"] = _stored(catalog, stage.key("transcript.vtt"),
                                                  vtt(cues), "text/vtt")
        if chapters:
            document = {"version": "1.2.0",
                        "chapters": [{"startTime": s, "title": t} for s, t in chapters]}
            episode.files["chapters"] = _stored(catalog, stage.key("chapters.json"),
                                                json.dumps(document).encode(),
                                                "application/json+chapters")
        if original is not None:
            episode.files["original"] = _stored(catalog, stage.key("original.wav"), original,
                                                "audio/wav")
            episode.original_sha256 = hashlib.sha256(original).hexdigest()
        return stage.commit(episode, series)


# -- a live server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LiveServer:
    """uvicorn in a background thread, with the app's lifespan running."""

    def __init__(self, settings: Settings, **app_options: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        app = create_app(dataclasses.replace(settings, base_url=self.url), **app_options)
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if not self.thread.is_alive():
                raise RuntimeError("the live server stopped while starting")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the live server did not answer /healthz within 20 s")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(settings: Settings, store: object) -> Iterator[LiveServer]:
    with LiveServer(settings) as server:
        yield server


# -- Chromium -------------------------------------------------------------------------------------


def chromium_or_skip() -> None:
    """Without Chromium the browser tests skip loudly on a laptop, and fail in CI."""
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing and CI is set: browser tests must run in CI "
                    "(apt-get install chromium).")
    pytest.skip(f"BROWSER TESTS SKIPPED: {CHROMIUM} is missing (apt-get install chromium). "
                "They would fail with CI set.")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module, not per session: Playwright's sync API cannot run twice at once, and other
    modules may start their own."""
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                              headless=True)
        yield instance
        instance.close()


LOAD_METADATA = """() => {
  const media = document.getElementById('player');
  if (media.readyState < 1 && media.networkState !== 2) {
    media.preload = 'metadata';
    media.load();
  }
}"""


def wait_for_time(page: Any, low: float, high: float) -> None:
    """A function, not an expression: Playwright evaluates an expression string with `eval`
    when it polls, which the page's CSP (no 'unsafe-eval') refuses."""
    page.wait_for_function(
        "([low, high]) => { const t = document.getElementById('player').currentTime;"
        " return t >= low && t < high; }", arg=[low, high])


def load_player(tab: Any) -> None:
    """Load the page player's metadata as a listener's first click would (it has
    preload="none", so nothing is fetched before), and wait for it."""
    tab.evaluate(LOAD_METADATA)
    tab.wait_for_function("() => document.getElementById('player').readyState >= 1")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; JavaScript errors and CSP violations fail the test."""
    context = browser.new_context()
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on("console", lambda message: problems.append(f"console: {message.text}")
           if message.type == "error" and "Content Security Policy" in message.text else None)
    tab.set_default_timeout(10_000)
    yield tab
    context.close()
    assert not problems, problems
