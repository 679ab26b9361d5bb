"""An editor in a real Chromium: sets a speaker's ORCID iD on the person page, schedules a
recording and sees it "scheduled", withdraws a speaker's consent with one button (the recording
is unpublished and the audit log says so); axe finds nothing on either editor page."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest

from archive.catalog import Catalog
from archive.models import Person
from archive.storage import ObjectStore
from tests.browser import LiveServer, browser, live_server, page, publish_recording  # noqa: F401
from tests.test_auth import PASSWORD, add_editor

pytestmark = pytest.mark.browser
ORCID = "0000-0002-1825-0097"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def sign_in(tab: Any, base: str, then: str) -> None:
    tab.goto(f"{base}/login?next={then}")
    tab.get_by_label("Username").fill("editor")
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(f"{base}{then}")


def axe_clean(tab: Any) -> None:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(tab, options={"runOnly": {"type": "tag", "values": AXE_TAGS}})
    assert results.violations_count == 0, results.generate_report()


def test_people_rights_and_consent_in_the_editor(
        page: Any, live_server: LiveServer, store: ObjectStore) -> None:  # noqa: F811
    tab, base = page, live_server.url
    catalog = Catalog(store)
    first = publish_recording(catalog, "Trust After Conflict", speakers=[
        Person.parse("Marie Dupont;chair;LSE"), Person.parse("Ana Silva;discussant")])
    second = publish_recording(catalog, "Trust Before Conflict",
                               speakers=[Person.parse("Marie Dupont;speaker")])
    add_editor(store)
    sign_in(tab, base, "/edit/people/marie-dupont")
    axe_clean(tab)
    tab.get_by_label("ORCID iD").fill(f"https://orcid.org/{ORCID}")
    tab.get_by_role("button", name="Save").click()
    tab.wait_for_url(f"{base}/edit/people/marie-dupont?saved=1")
    data = Catalog(store).refresh().data
    assert [data.episodes[e.id].speakers[0].orcid for e in (first, second)] == [ORCID] * 2

    tab.goto(f"{base}/edit/{first.id}/rights")
    axe_clean(tab)
    tab.get_by_label("Rights statement").select_option(label="In Copyright - Educational Use "
                                                             "Permitted")
    tab.get_by_role("button", name="Save the rights statement").click()
    tab.wait_for_url(f"{base}/edit/{first.id}/rights?saved=rights")
    tab.get_by_label("Publish on (UTC)").fill("2031-05-04T09:30")
    tab.get_by_role("button", name="Schedule publication").click()
    tab.wait_for_url(f"{base}/edit/{first.id}/rights?saved=schedule")
    assert "Scheduled" in tab.locator(".episode-state").inner_text()
    tab.goto(f"{base}/edit")
    row = tab.locator("tr", has_text="Trust After Conflict")
    assert row.locator("td").nth(2).inner_text() == "scheduled"

    tab.goto(f"{base}/edit/{second.id}/rights")
    assert httpx.get(f"{base}/episodes/{second.slug}").status_code == 200
    tab.get_by_role("button", name="Withdraw consent of Marie Dupont and unpublish").click()
    tab.wait_for_url(f"{base}/edit/{second.id}/rights?saved=consent")
    assert "cannot be published" in tab.get_by_role("alert").inner_text()
    assert Catalog(store).refresh().data.episodes[second.id].draft
    tab.goto(f"{base}/audit")
    assert "consent.withdraw" in tab.locator("main").inner_text()
