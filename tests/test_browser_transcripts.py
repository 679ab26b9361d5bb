"""A transcript's whole life in a real Chromium: an editor uploads speech without a transcript,
the page says one is being prepared, the job worker (a child of the server, with the packaged
Whisper base model) transcribes it and the page shows it without the editor reloading, the
editor corrects a word and names the speaker, and search and the WebVTT follow at once.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from archive.catalog import Catalog
from archive.config import Settings
from archive.storage import ObjectStore
from media.convert import encode_mp3
from tests.browser import LiveServer, browser, page  # noqa: F401 (fixtures)
from tests.test_auth import PASSWORD, add_editor
from tests.test_media_transcribe import _speak
from tests.whisper_model import whisper_base

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SPEECH = "Trust between enemies is built slowly. Gorbachev and Reagan met in Geneva."


@pytest.fixture
def transcribing_server(settings: Settings, store: ObjectStore,
                        monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """`archive serve` as production runs it: one job worker process beside the web server."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    speaking = dataclasses.replace(settings, transcribe_model=str(whisper_base()))
    with LiveServer(speaking, job_workers=1) as server:
        yield server


def test_upload_then_automatic_transcript_then_correction(
        page: Any, transcribing_server: LiveServer, store: ObjectStore,  # noqa: F811
        tmp_path: Path) -> None:
    tab, base = page, transcribing_server.url
    add_editor(store)
    recording = tmp_path / "geneva.mp3"
    encode_mp3(_speak(tmp_path, "geneva", SPEECH), recording)

    tab.goto(f"{base}/upload")  # sends a stranger to sign in, then back
    tab.get_by_label("Username").fill("editor")
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Sign in").click()
    tab.wait_for_url(f"{base}/upload")
    tab.get_by_label("Recording").set_input_files(str(recording))
    tab.get_by_label("Title").fill("Summit Diplomacy")
    tab.get_by_label("Series").first.fill("Seminars")
    tab.get_by_label("Name", exact=True).first.fill("Nicholas J Wheeler")
    tab.get_by_role("button", name="Upload").click()
    tab.wait_for_url(re.compile(r".*/episodes/summit-diplomacy$"), timeout=60_000)

    # Published at once; the transcript follows.
    preparing = tab.locator("[data-transcript-poll]")
    assert "being prepared" in preparing.inner_text()
    # The page asks for it by itself and shows it when it lands (no reload by the test).
    tab.wait_for_selector("text=Geneva", timeout=240_000)
    assert "Automatic transcript" in tab.content()

    episode = Catalog(store).refresh().episode_by_slug("summit-diplomacy")
    tab.goto(f"{base}/edit/{episode.id}/transcript")
    first = tab.locator("textarea[name=text]").first
    corrected = re.sub(r"(?i)enemies", "adversaries", first.input_value())
    assert corrected != first.input_value(), first.input_value()
    first.fill(corrected)
    tab.locator("select[name=speaker]").first.select_option("Nicholas J Wheeler")
    tab.get_by_role("button", name="Save corrections").click()
    tab.wait_for_selector("text=Saved.")

    tab.goto(f"{base}/search?q=adversaries")
    assert "Summit Diplomacy" in tab.content()
    edited = Catalog(store).refresh().episode(episode.id)
    assert edited.transcript_provenance is not None
    assert edited.transcript_provenance.kind == "edited"
    vtt = httpx.get(f"{base}/media/{edited.id}/transcript.vtt", timeout=10).text
    assert "<v Nicholas J Wheeler>" in vtt and "adversaries" in vtt
