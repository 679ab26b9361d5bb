"""Cite / share a moment in a real Chromium: #t=START,END and /e/{id}?t= open the page at the
moment with its lines highlighted and its range stated; selecting transcript lines, Shift-clicking
a second line or choosing a chapter offers a link and every citation style with the range; the
player pauses at the moment's end; hostile metadata stays text; axe finds nothing."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from archive.catalog import Catalog
from archive.config import Settings
from archive.models import Person
from archive.runtime import make_store
from tests import browser as shared
from tests.browser import LiveServer, load_player, publish_recording
from tests.conftest import ACCESS_KEY, SECRET_KEY
from tests.media_samples import make_recording

pytestmark = pytest.mark.browser
browser, page = shared.browser, shared.page

SECONDS = 8.0
CUES = [(0.0, 2.0, "Good evening and welcome."), (2.0, 4.0, "Trust is hard to build."),
        (4.0, 6.0, "Consider the word serendipity carefully."), (6.0, 8.0, "Thank you.")]
CHAPTERS = [(0.0, "Welcome"), (3.0, "The argument"), (6.0, "Questions")]
PAYLOAD = "<img src=x onerror=alert('i')>"


@pytest.fixture(scope="module")
def site(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[LiveServer, Any]]:
    folder = tmp_path_factory.mktemp("browser-moment")
    settings = Settings(s3_endpoint=s3_endpoint, s3_bucket=f"b-{secrets.token_hex(6)}",
                        access_key=ACCESS_KEY, secret_access_key=SECRET_KEY,
                        data_dir=folder / "data", secret_key="moment-" + secrets.token_hex(8),
                        catalog_ttl=0.5, citation_style="apa")
    store = make_store(settings, s3_endpoint)
    store.ensure_bucket()
    audio = make_recording(Path(folder) / "talk.mp3", "mp3", seconds=SECONDS).read_bytes()
    talk = publish_recording(
        Catalog(store), f"Trust and Uncertainty {PAYLOAD}", audio=audio, duration=SECONDS,
        cues=CUES, chapters=CHAPTERS, date=date(2025, 5, 1),
        speakers=[Person.parse("Nicholas J Wheeler;lecturer;Birmingham;0000-0002-1825-0097")])
    with LiveServer(settings) as server:
        yield server, talk


def media_time(tab: Any) -> float:
    return float(tab.evaluate("document.getElementById('player').currentTime"))


def open_page(tab: Any, url: str) -> None:
    tab.goto(url)
    load_player(tab)  # the player has preload="none" (#16)


def quoted(tab: Any) -> list[str]:
    return [text.strip() for text in tab.locator("button.cue.is-quoted .text").all_inner_texts()]


def moment_citation(tab: Any, style: str) -> tuple[str, str]:
    block = tab.locator(f"#moment .moment-style[data-cite-style='{style}']")
    return block.locator(".citation").inner_text(), block.locator(".in-text-citation").inner_text()


def test_a_range_in_the_address_opens_the_moment(site: Any, page: Any) -> None:
    server, talk = site
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_page(page, f"{server.url}/episodes/{talk.slug}#t=2,6")
    page.wait_for_function("() => !document.getElementById('moment').hidden")
    page.wait_for_function("() => document.getElementById('player').currentTime >= 2")
    assert 2.0 <= media_time(page) < 2.5
    assert page.locator(".moment-range").inner_text() == "Quoted from 0:02 to 0:06."
    assert quoted(page) == ["Trust is hard to build.", "Consider the word serendipity carefully."]
    assert page.locator("#moment-link").input_value() == \
        f"{server.url}/episodes/{talk.slug}#t=2,6"
    entry, in_text = moment_citation(page, "apa")
    assert in_text == "(Wheeler, 2025, 0:02\u20130:06)"
    assert f"{server.url}/episodes/{talk.slug}#t=2,6" in entry
    assert "Trust and Uncertainty <img src=x onerror=alert('i')>" in entry  # text, not markup
    entry, in_text = moment_citation(page, "harvard")
    assert in_text == "(Wheeler, 2025, 0:02\u20130:06)" and "#t=2,6" in entry
    href = page.locator("#moment a[data-moment-download='bib']").get_attribute("href")
    assert href == f"/episodes/{talk.slug}/cite.bib?t=2%2C6"
    assert "\\#t=2,6" in httpx.get(server.url + href).text
    # Played from there, it pauses once at the moment's end.
    page.evaluate("document.getElementById('player').play()")
    page.wait_for_function("() => document.getElementById('player').paused", timeout=15_000)
    assert 6.0 <= media_time(page) < 7.0
    assert dialogs == []


def test_the_permalink_with_t_lands_on_the_moment(site: Any, page: Any) -> None:
    server, talk = site
    open_page(page, f"{server.url}/e/{talk.id}?t=4")
    assert page.url == f"{server.url}/episodes/{talk.slug}#t=4"
    page.wait_for_function("() => document.getElementById('player').currentTime >= 4")
    assert page.locator(".moment-range").inner_text() == "Quoted from 0:04 to the end."
    assert quoted(page) == ["Consider the word serendipity carefully."]
    open_page(page, f"{server.url}/episodes/{talk.slug}?t=6")
    page.wait_for_function("() => document.getElementById('player').currentTime >= 6")
    assert quoted(page) == ["Thank you."]


def test_selecting_lines_offers_the_moment(site: Any, page: Any) -> None:
    server, talk = site
    open_page(page, f"{server.url}/episodes/{talk.slug}")
    assert page.locator("#moment").is_hidden()
    # Text selected across two transcript lines, as with a mouse drag.
    page.evaluate("""() => {
        const texts = document.querySelectorAll('button.cue .text');
        window.getSelection().setBaseAndExtent(texts[0].firstChild, 3, texts[1].firstChild, 5);
    }""")
    page.wait_for_function("() => !document.getElementById('moment').hidden")
    assert page.locator(".moment-range").inner_text() == "Quoted from 0:00 to 0:04."
    assert page.url.endswith("#t=0,4")
    assert moment_citation(page, "mla")[1].endswith("0:00\u20130:04)")
    # A line, then Shift and a later line: the range between them.
    page.evaluate("window.getSelection().removeAllRanges()")
    page.locator("button.cue", has_text="hard to build").click()
    page.evaluate("document.getElementById('player').pause()")
    page.locator("button.cue", has_text="Thank you").click(modifiers=["Shift"])
    page.evaluate("document.getElementById('player').pause()")
    assert page.locator(".moment-range").inner_text() == "Quoted from 0:02 to 0:08."
    assert len(quoted(page)) == 3
    # A chapter: from its start to the next chapter's.
    page.get_by_role("button", name="0:03 The argument").click()
    page.evaluate("document.getElementById('player').pause()")
    assert page.locator(".moment-range").inner_text() == "Quoted from 0:03 to 0:06."
    assert page.locator("#moment-link").input_value().endswith("#t=3,6")


def test_a_malformed_moment_is_ignored_by_the_page_and_refused_by_the_server(
        site: Any, page: Any) -> None:
    server, talk = site
    open_page(page, f"{server.url}/episodes/{talk.slug}#t=9,2")
    assert page.locator("#moment").is_hidden()
    assert httpx.get(f"{server.url}/e/{talk.id}?t=abc").status_code == 422
    assert httpx.get(f"{server.url}/episodes/{talk.slug}/cite.ris?t=5,1").status_code == 422


def test_axe_finds_no_violations_with_a_moment_open(site: Any, page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    server, talk = site
    open_page(page, f"{server.url}/episodes/{talk.slug}#t=2,6")
    page.wait_for_function("() => !document.getElementById('moment').hidden")
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": [
        "wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
    assert results.violations_count == 0, results.generate_report()
