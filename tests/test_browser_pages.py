"""The episode browser in a real Chromium: the list, the player (through the media endpoint),
chapters and transcript that seek, `#t=` deep links, search into a transcript, accessibility
(axe, WCAG 2.1 A/AA) on every page type, and hostile metadata that must execute nothing.

One server and one seeded bucket serve the whole module, to keep it well under a minute.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from archive.catalog import Catalog
from archive.config import Settings
from archive.models import Person
from archive.runtime import make_store
from tests import browser as shared
from tests.browser import LiveServer, load_player, publish_recording, wait_for_time
from tests.conftest import ACCESS_KEY, SECRET_KEY
from tests.media_samples import make_recording

pytestmark = pytest.mark.browser
browser, page = shared.browser, shared.page  # the shared fixtures, used by name below

SECONDS = 8.0
CUES = [(0.0, 2.0, "Good evening and welcome."), (2.0, 4.0, "Trust is hard to build."),
        (4.0, 6.0, "Consider the word serendipity carefully."), (6.0, 8.0, "Thank you.")]
CHAPTERS = [(0.0, "Welcome"), (3.0, "The argument"), (6.0, "Questions")]
PAYLOAD = "<script>alert('t')</script><img src=x onerror=alert('i')><svg onload=alert('s')>"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture(scope="module")
def site(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[LiveServer, dict[str, Any]]]:
    folder = tmp_path_factory.mktemp("browser-site")
    settings = Settings(s3_endpoint=s3_endpoint, s3_bucket=f"b-{secrets.token_hex(6)}",
                        access_key=ACCESS_KEY, secret_access_key=SECRET_KEY,
                        data_dir=folder / "data", secret_key="browser-" + secrets.token_hex(8),
                        catalog_ttl=0.5)
    store = make_store(settings, s3_endpoint)
    store.ensure_bucket()
    catalog = Catalog(store)
    audio = make_recording(Path(folder) / "talk.mp3", "mp3", seconds=SECONDS).read_bytes()
    talk = publish_recording(
        catalog, "Trust and Uncertainty in World Politics", audio=audio, duration=SECONDS,
        cues=CUES, chapters=CHAPTERS, date=date(2025, 5, 1), tags=["Trust"],
        description="A lecture on trust between states.")
    hostile = publish_recording(
        catalog, f"Hostile {PAYLOAD}", audio=audio, duration=SECONDS, date=date(2025, 4, 1),
        description=PAYLOAD, tags=["xss"], cues=[(0.0, 2.0, PAYLOAD)],
        chapters=[(0.0, PAYLOAD[:100])],
        speakers=[Person(name=f"Mallory {PAYLOAD[:80]}", affiliation=PAYLOAD[:100])])
    with LiveServer(settings) as server:
        yield server, {"talk": talk, "hostile": hostile}


def media_time(page: Any) -> float:
    return float(page.evaluate("document.getElementById('player').currentTime"))


def open_episode(page: Any, server: LiveServer, slug: str, fragment: str = "") -> None:
    page.goto(f"{server.url}/episodes/{slug}{fragment}")
    load_player(page)


def test_home_lists_the_recordings(site: Any, page: Any) -> None:
    server, items = site
    page.goto(server.url)
    titles = page.locator(".episode-title a").all_inner_texts()
    assert titles == [items["talk"].title, items["hostile"].title]
    assert page.locator("html").get_attribute("lang") == "en-GB"


def test_the_player_loads_the_duration_through_the_media_endpoint(site: Any, page: Any) -> None:
    server, items = site
    open_episode(page, server, items["talk"].slug)
    duration = page.evaluate("document.getElementById('player').duration")
    assert abs(duration - SECONDS) < 0.3
    page.select_option("#speed", "1.5")
    assert page.evaluate("document.getElementById('player').playbackRate") == 1.5


def test_chapters_and_cues_seek(site: Any, page: Any) -> None:
    server, items = site
    open_episode(page, server, items["talk"].slug)
    page.get_by_role("button", name="0:03 The argument").click()
    wait_for_time(page, 3.0, 4.5)
    page.get_by_role("button", name="0:06 Questions").focus()
    page.keyboard.press("Enter")
    wait_for_time(page, 6.0, 7.5)
    cue = page.locator("button.cue", has_text="serendipity")
    cue.click()
    wait_for_time(page, 4.0, 5.5)
    page.wait_for_function("document.querySelector('button.cue.is-current') !== null")
    page.evaluate("document.getElementById('player').pause()")
    assert "serendipity" in page.locator("button.cue.is-current").inner_text()
    assert page.locator("button.cue.is-current").get_attribute("aria-current") == "true"


def test_a_time_fragment_starts_there(site: Any, page: Any) -> None:
    server, items = site
    open_episode(page, server, items["talk"].slug, "#t=5")
    wait_for_time(page, 5.0, 5.5)
    assert "serendipity" in page.locator("button.cue.is-current").inner_text()


def test_searching_a_transcript_word_lands_at_the_cue(site: Any, page: Any) -> None:
    server, items = site
    page.goto(server.url)
    page.get_by_label("Search the archive").fill("serendipity")  # in the header (#16)
    page.keyboard.press("Enter")
    page.wait_for_url("**/search?q=serendipity")
    link = page.locator(".results .episode-title a")
    assert link.inner_text() == items["talk"].title
    assert page.locator(".results mark").first.inner_text() == "serendipity"
    link.click()
    page.wait_for_url(f"**/episodes/{items['talk'].slug}#t=4")
    wait_for_time(page, 4.0, 4.5)
    page.wait_for_function("document.querySelector('button.cue.is-current') !== null")
    assert "serendipity" in page.locator("button.cue.is-current").inner_text()


@pytest.mark.parametrize("path", [
    "/", "/series/workshops", "/episodes/{talk}", "/people/nicholas-j-wheeler",
    "/search?q=trust", "/search", "/no/such/page", "/episodes/{hostile}",
])
def test_axe_finds_no_wcag_violations(site: Any, page: Any, path: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    server, items = site
    page.goto(server.url + path.format(talk=items["talk"].slug, hostile=items["hostile"].slug))
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
    assert results.response["passes"], "axe did not run its checks"
    assert results.violations_count == 0, results.generate_report()


def test_hostile_metadata_executes_nothing(site: Any, page: Any) -> None:
    server, items = site
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    hostile = items["hostile"]
    for path in ("/", f"/episodes/{hostile.slug}", "/search?q=hostile", "/search?q=alert",
                 "/series/workshops", f"/people/{hostile.speakers[0].slug}"):
        page.goto(server.url + path)
        page.wait_for_load_state("load")
    page.goto(f"{server.url}/episodes/{hostile.slug}")
    page.locator("button.cue").first.click()
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.locator("h1").inner_text() == f"Hostile {PAYLOAD}"
