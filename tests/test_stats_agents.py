"""User agents: our fallback, the OPAWG user-agents-v2 files kept in the bucket (fixtures in
their schema, written here), and `archive stats update-agents` from a folder or a URL."""

from __future__ import annotations

import contextlib
import functools
import http.server
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from archive.config import Settings
from archive.errors import InvalidInput
from archive.stats.agents import AGENTS_KEY, fallback, load_classifier, update_agents
from archive.stats.events import EVENTS_PREFIX
from archive.storage import ObjectStore
from tests.cli import run_cli
from tests.stats_helpers import ANTENNAPOD, CURL, FIREFOX, GOOGLEBOT, at, hit, put_media, recorder

FIXTURES = Path(__file__).parent / "data" / "opawg"


@pytest.mark.parametrize(("user_agent", "kind", "app", "device"), [
    (ANTENNAPOD, "app", "AntennaPod", ""),
    ("AppleCoreMedia/1.0.0.21E236 (iPhone; U; CPU OS 17_4 like Mac OS X)", "app",
     "Apple Podcasts", "iPhone"),
    (GOOGLEBOT, "bot", "Generic bot", ""),
    (CURL, "library", "curl", ""),
    ("python-requests/2.32", "library", "Python", ""),
    (FIREFOX, "browser", "Firefox", "Linux"),
    ("SomethingNew/1.0", "unknown", "", ""),
    ("", "none", "", ""),
])
def test_fallback_knows_obvious_bots_libraries_and_common_apps(
        user_agent: str, kind: str, app: str, device: str) -> None:
    agent = fallback().classify(user_agent)
    assert (agent.kind, agent.app, agent.device) == (kind, app, device)
    assert agent.counted == (kind not in ("bot", "library", "none"))


def test_patterns_from_a_folder_are_kept_in_the_bucket_and_used(store: ObjectStore) -> None:
    assert load_classifier(store).source == "fallback"
    classifier = update_agents(store, str(FIXTURES))
    assert classifier.skipped == 1  # "(unclosed" cannot compile: left out, not fatal
    stored, _ = store.get_json(AGENTS_KEY)
    assert set(stored["files"]) == {"bots", "apps", "libraries", "browsers", "devices"}
    assert "examples" not in json.dumps(stored)  # only what matching needs is kept
    loaded = load_classifier(store)
    agent = loaded.classify("TestPodcastPlayer/2.0 (TestPhone)")
    assert (agent.kind, agent.app, agent.device, agent.device_category) == (
        "app", "Test Podcast Player", "Test Phone", "mobile")
    assert loaded.classify("ArchiveTestCrawler/1.0").kind == "bot"
    assert loaded.classify("TestPodcastPlayer/2.0 testbot").kind == "bot"  # bots come first
    assert loaded.classify("testhttp/0.1").kind == "library"
    assert loaded.classify("Mozilla/5.0 TestBrowser/3 TestSpeaker").app == "Test Browser"
    assert loaded.classify(ANTENNAPOD).kind == "unknown"  # their files replace our fallback


def test_the_recorder_classifies_with_the_bucket_patterns(store: ObjectStore,
                                                          tmp_path: Path) -> None:
    update_agents(store, str(FIXTURES))
    media = put_media(store, "ep1", "talk.mp3", b"ID3" + b"\x00" * 100, duration=10.0)
    rec = recorder(store, tmp_path)
    rec.record(hit(media, at("2026-11-02"), "192.0.2.1", "LectureListener 1.2", 0, media.size))
    rec.record(hit(media, at("2026-11-02"), "192.0.2.2", "ArchiveTestCrawler/1.0", 0,
                   media.size))
    rec.flush()
    [info] = list(store.list(EVENTS_PREFIX))
    table = pq.read_table(io.BytesIO(store.get_bytes(info.key)[0]))  # type: ignore[index]
    assert sorted(zip(table.column("kind").to_pylist(), table.column("app").to_pylist(),
                      strict=True)) == [("app", "Lecture Listener"),
                                        ("bot", "Archive Test Crawler")]
    assert "user_agent" not in table.column_names  # the string itself is never stored


@pytest.mark.parametrize(("files", "message"), [
    ({"bots.json": "{"}, "bots.json is not valid JSON"),
    ({"bots.json": "[]"}, "has no \"entries\" list"),
    ({"bots.json": '{"entries": [{"name": 1}]}'}, "no entries with a name and a pattern"),
    ({}, "bots.json is missing"),
])
def test_bad_pattern_files_are_refused_in_one_line(tmp_path: Path, store: ObjectStore,
                                                   files: dict[str, str], message: str) -> None:
    for name in ("bots", "apps", "libraries", "browsers"):
        (tmp_path / f"{name}.json").write_text((FIXTURES / f"{name}.json").read_text())
    (tmp_path / "bots.json").unlink()
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(InvalidInput, match=message):
        update_agents(store, str(tmp_path))
    assert not store.exists(AGENTS_KEY)  # nothing half-written


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_cli_update_agents_from_a_url_and_refusals(settings: Settings, store: ObjectStore,
                                                   tmp_path: Path) -> None:
    with serving(FIXTURES.parent) as base:
        result = run_cli(settings, "stats", "update-agents", f"{base}/opawg/")
        assert result.returncode == 0, result.stderr
        assert "2 bots, 2 apps" in result.stdout and "1 patterns" in result.stdout
        missing = run_cli(settings, "stats", "update-agents", f"{base}/nothing-here")
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0 and "bots.json is missing" in missing.stderr
    nowhere = run_cli(settings, "stats", "update-agents", str(tmp_path / "no-such-folder"))
    assert nowhere.returncode == 1 and "neither a folder nor" in nowhere.stderr
    assert "Traceback" not in nowhere.stderr + missing.stderr
