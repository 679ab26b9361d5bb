"""An editor in a real Chromium: sign in, upload with progress, play, edit the title, delete.

Runs against the app under uvicorn on loopback (`tests.browser.live_server`) and the real
SeaweedFS, in the shared headless Chromium (`tests.browser.page`, which fails the test on any
JavaScript error or CSP violation, and skips loudly only when /usr/bin/chromium is missing and
CI is unset). The player is checked on the public episode page and on the edit page.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from archive.catalog import Catalog
from archive.storage import ObjectStore
from tests import media_samples
from tests.browser import LiveServer, browser, live_server, page  # noqa: F401 (fixtures)
from tests.conftest import bucket_listing
from tests.test_auth import PASSWORD, add_editor

pytestmark = pytest.mark.browser


def _duration_of_player(tab: Any) -> float:
    """The player works: the browser fetched the audio's metadata through /media (asked for
    first, as a listener's click does: the public player has preload="none")."""
    tab.evaluate("() => { const a = document.querySelector('audio');"
                 " if (a && a.readyState < 1 && a.networkState !== 2) {"
                 " a.preload = 'metadata'; a.load(); } }")
    tab.wait_for_function(
        "() => { const a = document.querySelector('audio'); "
        "return a && a.readyState >= 1 && a.duration > 0; }", timeout=20_000)
    return float(tab.evaluate("document.querySelector('audio').duration"))


def test_editor_uploads_plays_edits_and_deletes(page: Any, live_server: LiveServer,  # noqa: F811
                                                store: ObjectStore, tmp_path: Path) -> None:
    tab, base = page, live_server.url
    add_editor(store)
    recording = media_samples.make_recording(tmp_path / "seminar.wav", "wav", seconds=4.0)
    # Editors only: the upload page sends a stranger to sign in, then back.
    tab.goto(f"{base}/upload")
    assert "/login" in tab.url
    tab.get_by_label("Username").fill("editor")
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(f"{base}/upload")

    tab.get_by_label("Recording").set_input_files(str(recording))
    tab.get_by_label("Title").fill("Seminar on Trust")
    tab.get_by_label("Series").first.fill("Seminars")
    tab.get_by_role("button", name="Add another speaker").click()
    names = tab.get_by_label("Name", exact=True)
    assert names.count() == 4  # three rows from the server, one added by the script
    names.nth(3).fill("Vincent Charles Keating")
    tab.get_by_role("button", name="Upload").click()
    tab.wait_for_selector("#upload-progress:not([hidden])")
    tab.wait_for_url(re.compile(r".*/episodes/seminar-on-trust$"), timeout=60_000)

    episode = Catalog(store).view().episode_by_slug("seminar-on-trust")
    assert [p.name for p in episode.speakers] == ["Vincent Charles Keating"]
    assert _duration_of_player(tab) == pytest.approx(4.0, abs=0.3)
    tab.goto(f"{base}/edit/{episode.id}")
    assert _duration_of_player(tab) == pytest.approx(4.0, abs=0.3)

    tab.get_by_label("Title").fill("Seminar on Trust, Revised")
    tab.get_by_role("button", name="Save changes").click()
    tab.wait_for_selector("text=Saved.")
    edited = Catalog(store).view().episode(episode.id)
    assert edited.title == "Seminar on Trust, Revised" and edited.guid == episode.guid
    assert _duration_of_player(tab) == pytest.approx(4.0, abs=0.3)  # re-tagged, still plays
    tab.goto(f"{base}/episodes/seminar-on-trust")
    assert "Seminar on Trust, Revised" in tab.content()

    tab.goto(f"{base}/edit/{episode.id}")
    tab.once("dialog", lambda dialog: dialog.accept())
    tab.get_by_role("button", name="Delete this recording").click()
    tab.wait_for_url(f"{base}/edit?deleted=1")
    assert episode.id not in Catalog(store).view().data.episodes
    assert not [key for key, _ in bucket_listing(store) if key.startswith("episodes/")]
