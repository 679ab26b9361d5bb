"""The embeddable player in a real Chromium (#15): framed by a page of another origin (a second
local server on another host name) it plays, seeks by chapter and by transcript line, and axe
finds nothing; every page that is not an embed refuses to be framed."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from archive.catalog import Catalog
from archive.config import Settings
from archive.models import Person
from archive.runtime import make_store
from tests import browser as shared
from tests.browser import LiveServer, publish_recording
from tests.conftest import ACCESS_KEY, SECRET_KEY
from tests.media_samples import make_recording

pytestmark = pytest.mark.browser
browser, page = shared.browser, shared.page

SECONDS = 8.0
CUES = [(0.0, 2.0, "Good evening and welcome."), (2.0, 4.0, "Trust is hard to build."),
        (4.0, 6.0, "Consider the evidence."), (6.0, 8.0, "Thank you.")]
CHAPTERS = [(0.0, "Welcome"), (3.0, "The argument"), (6.0, "Questions")]
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


class OtherSite:
    """A page on another origin (localhost, another port) that frames whatever it is told."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                body = site.pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def frame(self, path: str, *sources: str) -> str:
        frames = "\n".join(f'<iframe src="{src}" title="frame {n}" width="600" height="420">'
                           "</iframe>" for n, src in enumerate(sources))
        self.pages[path] = (f"<!doctype html><html lang='en'><head><title>A university page"
                            f"</title></head><body><main><h1>Our group</h1>{frames}</main>"
                            "</body></html>")
        return f"{self.url}{path}"


@pytest.fixture(scope="module")
def site(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[LiveServer, Any, OtherSite]]:
    folder = tmp_path_factory.mktemp("browser-embeds")
    settings = Settings(s3_endpoint=s3_endpoint, s3_bucket=f"b-{secrets.token_hex(6)}",
                        access_key=ACCESS_KEY, secret_access_key=SECRET_KEY,
                        data_dir=folder / "data", secret_key="embeds-" + secrets.token_hex(8),
                        catalog_ttl=0.5)
    store = make_store(settings, s3_endpoint)
    store.ensure_bucket()
    audio = make_recording(Path(folder) / "talk.mp3", "mp3", seconds=SECONDS).read_bytes()
    talk = publish_recording(
        Catalog(store), "Trust and Uncertainty", audio=audio, duration=SECONDS, cues=CUES,
        chapters=CHAPTERS, date=date(2025, 5, 1),
        speakers=[Person.parse("Nicholas J Wheeler;lecturer;University of Birmingham")])
    other = OtherSite()
    other.thread.start()
    with LiveServer(settings) as server:
        yield server, talk, other
    other.server.shutdown()


def embed_frame(tab: Any) -> Any:
    tab.wait_for_function("() => document.querySelector('iframe') !== null")
    for _ in range(100):
        found = [f for f in tab.frames if f.url.endswith("/embed")]
        if found:
            found[0].wait_for_selector("[data-controls]:not([hidden])")
            return found[0]
        tab.wait_for_timeout(50)
    raise AssertionError("the embed frame did not load")


def media_state(frame: Any) -> dict[str, Any]:
    return frame.evaluate("() => { const m = document.querySelector('audio');"
                          " return {paused: m.paused, time: m.currentTime}; }")


def test_the_embed_plays_inside_a_page_of_another_origin(site: Any, page: Any) -> None:
    server, talk, other = site
    page.goto(other.frame("/play.html", f"{server.url}/episodes/{talk.slug}/embed"))
    frame = embed_frame(page)
    assert frame.locator("h1").inner_text() == "Trust and Uncertainty"
    assert "Nicholas J Wheeler" in frame.locator(".embed-speakers").inner_text()
    play = frame.locator("[data-play]")
    assert play.get_attribute("aria-label") == "Play"
    # Nothing of the recording is loaded until the listener asks (a page may hold many embeds).
    assert frame.evaluate("() => document.querySelector('audio').readyState") == 0
    play.click()
    frame.wait_for_function("() => { const m = document.querySelector('audio');"
                            " return !m.paused && m.currentTime > 0.3; }")
    frame.wait_for_selector("[data-play][aria-label='Pause']")  # said to screen readers
    play.press("Enter")  # the keyboard works too
    frame.wait_for_function("() => document.querySelector('audio').paused")
    frame.wait_for_selector("[data-play][aria-label='Play']")
    slider = frame.locator("[data-seek]")
    assert "of 0:08" in (slider.get_attribute("aria-valuetext") or "")
    link = frame.locator(".embed-foot a").first
    assert link.get_attribute("href") == f"{server.url}/episodes/{talk.slug}"


def test_the_embed_seeks_by_chapter_and_by_transcript_line(site: Any, page: Any) -> None:
    server, talk, other = site
    page.goto(other.frame("/seek.html", f"{server.url}/episodes/{talk.slug}/embed"))
    frame = embed_frame(page)
    frame.locator(".embed-chapters summary").click()
    chapter = frame.locator(".embed-chapters a", has_text="The argument")
    chapter.click()
    frame.wait_for_function("() => document.querySelector('audio').currentTime >= 3")
    assert 3.0 <= media_state(frame)["time"] < 4.5
    frame.wait_for_function("() => document.querySelector('.embed-chapters a[aria-current]')"
                            " !== null")
    assert "The argument" in frame.locator(".embed-chapters a[aria-current]").inner_text()
    assert len(page.frames) == 2  # seeking stayed in the frame: no new tab, no navigation
    frame.evaluate("() => document.querySelector('audio').pause()")
    frame.locator(".embed-transcript summary").press("Enter")
    frame.locator(".embed-transcript a", has_text="Thank you.").click()
    frame.wait_for_function("() => document.querySelector('audio').currentTime >= 6")


def test_the_embeds_are_axe_clean_with_every_panel_open(site: Any, page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    server, talk, _ = site
    for path in (f"/episodes/{talk.slug}/embed", "/series/workshops/embed"):
        page.goto(f"{server.url}{path}")
        page.wait_for_selector("[data-controls]:not([hidden])")
        for summary in page.locator("details summary").all():
            summary.click()
        results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
        assert results.violations_count == 0, results.generate_report()


def test_the_series_embed_opens_a_recording_in_the_same_frame(site: Any, page: Any) -> None:
    server, talk, other = site
    page.goto(other.frame("/series.html", f"{server.url}/series/workshops/embed"))
    frame = embed_frame(page)
    frame.locator(".embed-list a", has_text="Trust and Uncertainty").click()
    frame.wait_for_url(f"{server.url}/episodes/{talk.slug}/embed")
    frame.wait_for_selector("[data-controls]:not([hidden])")
    assert len(page.frames) == 2


def test_every_other_page_refuses_to_be_framed(site: Any, browser: Any) -> None:
    server, talk, other = site
    framed = ["/", f"/episodes/{talk.slug}", "/series/workshops", "/people/nicholas-j-wheeler",
              "/search?q=trust", "/login", f"/episodes/{talk.slug}/transcript"]
    url = other.frame("/refused.html", *(f"{server.url}{p}" for p in framed),
                      f"{server.url}/episodes/{talk.slug}/embed")
    context = browser.new_context()  # not the `page` fixture: refusals are logged as errors
    try:
        tab = context.new_page()
        tab.goto(url)
        embed = embed_frame(tab)
        assert embed.locator("h1").inner_text() == "Trust and Uncertainty"
        tab.wait_for_load_state("load")
        others = [frame for frame in tab.frames[1:] if frame is not embed]
        assert len(others) == len(framed)
        for frame in others:
            # Chromium shows its own error page in place of a refused frame.
            assert frame.url == "chrome-error://chromewebdata/", frame.url
            assert not frame.evaluate("() => document.querySelector('.site-header') !== null")
    finally:
        context.close()


def test_share_panel_follows_the_player_and_panels_are_axe_clean(site: Any, page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    server, talk, _ = site
    page.goto(f"{server.url}/episodes/{talk.slug}")
    page.evaluate("() => { const m = document.getElementById('player');"
                  " m.preload = 'metadata'; m.load(); }")  # the page may not preload
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    page.evaluate("() => { const m = document.getElementById('player'); m.currentTime = 5; }")
    page.wait_for_function("() => document.getElementById('share-moment').value"
                           f" === '{server.url}/episodes/{talk.slug}#t=5'")
    assert page.locator("button[data-copy='share-embed']").is_visible()
    code = page.locator("#share-embed").input_value()
    assert code.startswith(f'<iframe src="{server.url}/episodes/{talk.slug}/embed"')
    for path in (f"/episodes/{talk.slug}", "/series/workshops", "/"):
        page.goto(f"{server.url}{path}")
        for summary in page.locator(".subscribe-qr summary").all():
            summary.click()
        results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
        assert results.violations_count == 0, results.generate_report()
    page.goto(f"{server.url}/series/workshops")
    page.locator(".subscribe-qr summary").click()
    assert page.locator(".subscribe-qr img").evaluate("img => img.naturalWidth") > 0
