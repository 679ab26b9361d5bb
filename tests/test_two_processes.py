"""Two app processes on one bucket: a change through one is seen by the other within seconds."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import httpx2 as httpx
import pytest

from archive.config import Settings
from archive.storage import ObjectStore
from tests import media_samples
from tests.cli import run_cli
from tests.servers import serve, wait_until

pytestmark = pytest.mark.slow


def test_a_commit_shows_in_both_processes_within_the_ttl(settings: Settings, store: ObjectStore,
                                                         tmp_path: Path) -> None:
    settings = dataclasses.replace(settings, catalog_ttl=1.0)
    with serve(settings) as first, serve(settings) as second:
        feeds = {base: httpx.get(f"{base}/feed.xml").text for base in (first, second)}
        assert all("<item>" not in feed for feed in feeds.values())
        source = media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=1.0)
        result = run_cli(settings, "ingest", source, "--title", "Trusting Enemies",
                         "--series", "Lectures")
        assert result.returncode == 0, result.stderr
        committed = time.monotonic()
        for base in (first, second):
            assert wait_until(lambda base=base: "Trusting Enemies" in
                              httpx.get(f"{base}/feed.xml").text, timeout=10)
        # Both saw it within the revalidation window (plus a request's worth of slack).
        assert time.monotonic() - committed < settings.catalog_ttl + 3
        assert httpx.get(f"{second}/healthz").json()["episodes"] == 1
