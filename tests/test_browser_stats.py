"""/stats and /stats/about in Chromium: axe (WCAG 2.1 A/AA) finds nothing, the charts are
images with names and their numbers are in tables, the date range form works."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from archive.catalog import Catalog
from archive.config import Settings
from archive.storage import ObjectStore
from tests import browser as shared
from tests.browser import LiveServer, publish_recording
from tests.stats_helpers import ANTENNAPOD, FIREFOX, hit, recorder
from tests.test_auth import PASSWORD, add_editor

pytestmark = pytest.mark.browser
browser, page = shared.browser, shared.page
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@pytest.fixture
def site(settings: Settings, store: ObjectStore, catalog: Catalog, tmp_path: Any
         ) -> Iterator[LiveServer]:
    episode = publish_recording(catalog, "Trust and Uncertainty in World Politics")
    audio = episode.files["audio"]
    rec = recorder(store, tmp_path)
    now = time.time()
    for n, agent in enumerate((ANTENNAPOD, ANTENNAPOD, FIREFOX)):
        rec.record(hit(audio, now - n * 86_400, f"192.0.2.{n}", agent, 0, audio.size,
                       episode_id=episode.id, series=episode.series))
    rec.flush()
    add_editor(store)
    with LiveServer(settings) as server:
        yield server


def sign_in(tab: Any, server: LiveServer) -> None:
    tab.goto(f"{server.url}/login?next=/stats")
    tab.get_by_label("Username").fill("editor")
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(f"{server.url}/stats")


def test_stats_page_is_accessible_and_its_form_changes_the_range(site: LiveServer,
                                                                page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    sign_in(page, site)
    assert page.get_by_role("img", name="Downloads per day").count() == 1
    assert page.get_by_role("img", name="Downloads by app").count() == 1
    page.get_by_text("Downloads per day as a table").click()
    table = page.get_by_role("table", name="Downloads per day")
    today = datetime.now(UTC).date()
    assert table.get_by_role("row", name=f"{today.isoformat()} 1").count() == 1
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
    assert results.violations_count == 0, results.generate_report()

    page.get_by_label("From", exact=True).fill(today.isoformat())
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**since={today.isoformat()}**")
    assert "1</strong> downloads" in page.content()
    assert (today - timedelta(days=1)).isoformat() not in page.locator("table").first.inner_text()


def test_about_page_is_accessible(site: LiveServer, page: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    page.goto(f"{site.url}/stats/about")
    assert page.get_by_role("heading", name="About these statistics").count() == 1
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
    assert results.violations_count == 0, results.generate_report()
