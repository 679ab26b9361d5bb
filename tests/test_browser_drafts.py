"""A draft in a real Chromium: the editor uploads it, plays it on its edit page (the player's
range requests carry the session cookie), signs out everywhere, and the file is gone for them
and for a stranger alike."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from archive.catalog import Catalog
from archive.storage import ObjectStore
from archive.web.media import episode_file_path
from tests import media_samples
from tests.browser import LiveServer, browser, live_server, page  # noqa: F401 (fixtures)
from tests.test_auth import PASSWORD, add_editor
from tests.test_browser_upload import _duration_of_player

pytestmark = pytest.mark.browser


def test_an_editor_previews_a_draft_that_nobody_else_can_fetch(
        page: Any, live_server: LiveServer, store: ObjectStore,  # noqa: F811
        tmp_path: Path) -> None:
    tab, base = page, live_server.url
    add_editor(store)
    recording = media_samples.make_recording(tmp_path / "draft.wav", "wav", seconds=3.0)
    tab.goto(f"{base}/login?next=/upload")
    tab.get_by_label("Username").fill("editor")
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(f"{base}/upload")

    tab.get_by_label("Recording").set_input_files(str(recording))
    tab.get_by_label("Title").fill("Work in Progress")
    tab.get_by_label("Series").first.fill("Seminars")
    tab.get_by_label("Keep it as a draft").check()
    tab.get_by_role("button", name="Upload").click()
    tab.wait_for_url(re.compile(r".*/edit/[0-9a-f]+$"), timeout=60_000)
    episode = Catalog(store).view().episode_by_slug("work-in-progress", include_drafts=True)
    assert episode.draft
    assert _duration_of_player(tab) == pytest.approx(3.0, abs=0.3)  # the editor hears it

    media = f"{base}{episode_file_path(episode, 'audio')}"
    assert httpx.get(media).status_code == 404  # a stranger does not
    tab.get_by_role("button", name="Sign out everywhere").first.click()
    tab.wait_for_url(f"{base}/")
    assert tab.request.get(media).status == 404  # nor the editor, once signed out

