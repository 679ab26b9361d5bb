"""The finished site in Chromium at a phone's (390×844) and a laptop's (1280×900) size, on the
enriched demo archive: recordings first, artwork that loads with alt text, tap targets, no
sideways scrolling at 320 px, light and dark schemes both clean for axe, the player's skips,
slider, chapter and resume, the native player without JavaScript, the print style, and the
JavaScript each page costs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from archive.runtime import Archive
from tests import browser as shared
from tests.browser import LiveServer, load_player, wait_for_time
from tests.conftest import ACCESS_KEY, SECRET_KEY
from tests.demo_site import demo_settings, load_enriched_demo
from tests.screenshots import script_bytes

pytestmark = pytest.mark.browser
browser = shared.browser
SIZES = {"phone": (390, 844), "desktop": (1280, 900)}
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
JS_BUDGET = 40 * 1024  # per page, uncompressed: no framework, ever


@pytest.fixture(scope="module")
def site(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    settings = demo_settings(s3_endpoint, tmp_path_factory.mktemp("finish"), ACCESS_KEY,
                             SECRET_KEY)
    archive: Archive = load_enriched_demo(settings, events=3)
    newest = archive.catalog.refresh().published[0]
    person = newest.speakers[0].slug
    paths = {"home": "/", "episode": f"/episodes/{newest.slug}",
             "series": f"/series/{newest.series}", "search": "/search?q=trust",
             "person": f"/people/{person}", "transcript": f"/episodes/{newest.slug}/transcript"}
    with LiveServer(settings) as server:
        yield server, paths


@contextlib.contextmanager
def tab(browser: Any, size: str = "phone", scheme: str = "light", **options: Any
        ) -> Iterator[Any]:
    """A page at one of the sizes; JavaScript errors and console errors fail the test."""
    width, height = SIZES[size] if size in SIZES else map(int, size.split("x"))
    context = browser.new_context(viewport={"width": width, "height": height},
                                  color_scheme=scheme, **options)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(f"console: {message.text}")
            if message.type == "error" else None)  # CSP reports, a missing favicon…
    page.set_default_timeout(10_000)
    try:
        yield page
    finally:
        context.close()
    assert not problems, problems


def media_time(page: Any) -> float:
    return float(page.evaluate("() => document.getElementById('player').currentTime"))


# -- the home page and artwork ----------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_the_first_recording_is_visible_without_scrolling(site: Any, browser: Any,
                                                          size: str) -> None:
    server, _ = site
    with tab(browser, size) as page:
        page.goto(server.url)
        first = page.locator(".episode-card").first
        box = first.locator(".episode-title").bounding_box()
        art = first.locator("img").bounding_box()
        assert box is not None and art is not None
        assert box["y"] >= 0 and box["y"] + box["height"] <= SIZES[size][1]
        assert art["y"] + art["height"] <= SIZES[size][1]
        assert page.evaluate("() => window.scrollY") == 0
        # Filters are folded away; search lives in the header.
        assert page.locator("details.filter-panel > summary").inner_text() == "Filter recordings"
        assert not page.locator("#filter-series").is_visible()
        page.locator("details.filter-panel > summary").click()
        assert page.locator("#filter-series").is_visible()
        assert page.locator("header [role=search] input[type=search]").is_visible()


@pytest.mark.parametrize("size", SIZES)
def test_artwork_loads_with_alt_text_in_modern_formats(site: Any, browser: Any,
                                                       size: str) -> None:
    server, paths = site
    with tab(browser, size) as page:
        for name in ("home", "episode", "series", "search", "person"):
            page.goto(server.url + paths[name])
            pictures = page.locator("picture img")
            assert pictures.count() >= 1, name
            for img in pictures.all():
                img.scroll_into_view_if_needed()
                page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                                       arg=img.element_handle())
                assert img.get_attribute("alt") is not None
                assert img.get_attribute("width") and img.get_attribute("height")
                current = img.evaluate("img => img.currentSrc")
                assert "/art/" in current and current.endswith(".avif"), current
            for img in page.locator("img").all():
                assert img.get_attribute("alt") is not None, name
        page.goto(server.url + paths["episode"])
        hero = page.locator(".page-header picture img")
        assert hero.get_attribute("alt", timeout=1000).startswith("Artwork of ")
        assert hero.get_attribute("loading") is None  # above the fold: not lazy
    with tab(browser, size) as page:
        page.goto(server.url + paths["home"])
        cards = page.locator(".episode-card img")
        assert cards.first.get_attribute("alt") == ""  # the title beside it says it all


def test_favicon_manifest_and_theme_colour_are_linked(site: Any, browser: Any) -> None:
    server, _ = site
    with tab(browser) as page:
        page.goto(server.url)
        for selector in ("link[rel=icon]", "link[rel=apple-touch-icon]", "link[rel=manifest]"):
            href = page.locator(selector).first.get_attribute("href")
            response = page.request.get(server.url + href)
            assert response.ok and len(response.body()) > 100, selector
        assert page.locator("meta[name=theme-color]").count() == 2


# -- mobile first --------------------------------------------------------------------------------


def test_nothing_scrolls_sideways_at_320_px(site: Any, browser: Any) -> None:
    server, paths = site
    with tab(browser, "320x640") as page:
        for name, path in paths.items():
            page.goto(server.url + path)
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= 320, f"{name} is {width} px wide"


def test_tap_targets_are_at_least_44_px(site: Any, browser: Any) -> None:
    server, paths = site
    controls = ("button, summary, select, input[type=search], .site-header a, "
                ".pagination a, .tags a, [role=slider]")
    with tab(browser, "phone") as page:
        for name in ("home", "episode", "series", "search"):
            page.goto(server.url + paths[name])
            small = page.evaluate("""selector => [...document.querySelectorAll(selector)]
              .filter(el => el.offsetParent !== null)
              .map(el => [el.outerHTML.slice(0, 80), el.getBoundingClientRect()])
              .filter(([, box]) => box.height < 44 || box.width < 44)
              .map(([html, b]) => `${html} ${Math.round(b.width)}x${Math.round(b.height)}`)""",
                                  controls)
            assert small == [], f"{name}: {small}"


# -- schemes and accessibility --------------------------------------------------------------------


def background_luminance(page: Any) -> float:
    return float(page.evaluate("""() => {
      const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\\d+/g).map(Number);
      return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
    }"""))


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("name", ["home", "episode", "series", "search", "person", "transcript"])
def test_each_scheme_applies_and_axe_finds_nothing(site: Any, browser: Any, scheme: str,
                                                   name: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    server, paths = site
    with tab(browser, "phone" if name in ("home", "episode") else "desktop", scheme) as page:
        page.goto(server.url + paths[name])
        luminance = background_luminance(page)
        assert (luminance < 0.2) if scheme == "dark" else (luminance > 0.9)
        results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
        assert results.response["passes"], "axe did not run its checks"
        assert results.violations_count == 0, results.generate_report()


# -- the player ---------------------------------------------------------------------------------


def test_skip_buttons_move_the_player_by_their_amount(site: Any, browser: Any) -> None:
    server, paths = site
    with tab(browser, "desktop") as page:
        page.goto(server.url + paths["episode"])
        load_player(page)
        page.evaluate("() => { document.getElementById('player').currentTime = 3; }")
        wait_for_time(page, 2.9, 3.1)
        for label, low, high in (("+30", 32.9, 33.1), ("−30", 2.9, 3.1), ("+15", 17.9, 18.1),
                                 ("−15", 2.9, 3.1)):
            amount = label.replace("−", "-").lstrip("+")
            page.locator(f"button[data-skip='{amount}']").click()
            wait_for_time(page, low, high)
        page.locator("button[data-skip='-15']").click()  # never before the start
        wait_for_time(page, 0.0, 0.01)


def test_play_pause_slider_and_current_chapter(site: Any, browser: Any) -> None:
    server, paths = site
    with tab(browser, "phone") as page:
        page.goto(server.url + paths["episode"])
        play = page.get_by_role("button", name="Play")
        play.click()
        page.wait_for_function("() => !document.getElementById('player').paused")
        assert page.get_by_role("button", name="Pause").is_visible()
        page.get_by_role("button", name="Pause").click()
        page.wait_for_function("() => document.getElementById('player').paused")
        slider = page.get_by_role("slider", name="Position in the recording")
        slider.focus()
        page.keyboard.press("Home")
        wait_for_time(page, 0.0, 0.01)
        page.keyboard.press("ArrowRight")
        wait_for_time(page, 4.9, 5.1)
        assert slider.get_attribute("aria-valuenow") == "5"
        assert slider.get_attribute("aria-valuetext") == "5 seconds of 36 seconds"
        page.keyboard.press("PageUp")  # a minute on, but not past the end
        page.wait_for_function("() => { const m = document.getElementById('player');"
                               " return m.currentTime >= m.duration - 0.1; }")
        page.keyboard.press("Home")
        for _ in range(4):  # 20 s: the third chapter ("Discussion") starts at 18 s
            page.keyboard.press("ArrowRight")
        wait_for_time(page, 19.9, 20.1)
        assert page.locator("[data-now-chapter]").inner_text() == "Discussion"
        assert "has-waveform" in (slider.get_attribute("class") or "")


def test_the_position_is_resumed_after_a_reload(site: Any, browser: Any) -> None:
    server, paths = site
    with tab(browser, "phone") as page:
        page.goto(server.url + paths["episode"])
        page.locator("button[data-skip='15']").click()
        wait_for_time(page, 14.9, 15.1)
        page.reload()
        slider = page.get_by_role("slider", name="Position in the recording")
        page.wait_for_function("el => el.getAttribute('aria-valuenow') === '15'",
                               arg=slider.element_handle())
        assert page.locator("[data-elapsed]").inner_text() == "0:15"
        assert page.evaluate("() => document.getElementById('player').readyState") == 0
        page.get_by_role("button", name="Play").click()
        wait_for_time(page, 15.0, 17.0)
        page.evaluate("() => document.getElementById('player').pause()")
        # A link to a moment wins over the remembered position.
        page.goto(server.url + paths["episode"] + "#t=7")
        wait_for_time(page, 7.0, 7.5)


def test_without_javascript_the_native_player_is_there(site: Any, browser: Any) -> None:
    server, paths = site
    with tab(browser, "phone", java_script_enabled=False) as page:
        page.goto(server.url + paths["episode"])
        audio = page.locator("audio#player")
        assert audio.get_attribute("controls") is not None and audio.is_visible()
        assert audio.get_attribute("preload") == "none"
        assert not page.locator(".player-ui").is_visible()
        assert page.locator(".episode-card, .page-header picture img").count() >= 1


def test_transcripts_print_as_documents(site: Any, browser: Any) -> None:
    server, paths = site
    with tab(browser, "desktop") as page:
        page.emulate_media(media="print")
        page.goto(server.url + paths["transcript"])
        assert not page.locator(".site-header").is_visible()
        assert page.locator(".transcript-text li").first.is_visible()
        page.goto(server.url + paths["episode"])
        assert not page.locator(".player").is_visible()
        cues = page.locator("#cues")
        assert cues.evaluate("el => getComputedStyle(el).maxHeight") == "none"


def test_each_page_loads_little_javascript(site: Any, browser: Any) -> None:
    server, paths = site
    with tab(browser, "desktop") as page:
        for name, path in paths.items():
            assert script_bytes(page, server.url + path) < JS_BUDGET, name
