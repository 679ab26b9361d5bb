"""Counting through the real media route, the clean-stop flush, and what editors and scripts see:
/stats (charts and tables), its CSV, /api/stats, and the public /stats/about."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from archive.catalog import Catalog
from archive.config import Settings
from archive.models import Episode
from archive.stats.events import EVENTS_PREFIX
from archive.storage import ObjectStore
from archive.web.app import create_app
from archive.web.media import episode_file_path
from tests.stats_helpers import ANTENNAPOD, GOOGLEBOT
from tests.test_auth import add_editor, bearer, sign_in, token_for
from tests.test_web_media import big_original, publish

TITLE = "Roundtable: The Social Construction of Trust"


@pytest.fixture
def episode(catalog: Catalog) -> Episode:
    return publish(catalog, TITLE, add_files=big_original)


@pytest.fixture
def start(settings: Settings, store: ObjectStore) -> Iterator[object]:
    """Apps as listeners at a given address reach them (lifespan running)."""
    clients: list[TestClient] = []

    def begin(address: str = "192.0.2.10", **overrides: object) -> TestClient:
        app = create_app(dataclasses.replace(settings, **overrides))
        client = TestClient(app, base_url=settings.base_url, client=(address, 40000))
        client.__enter__()
        clients.append(client)
        return client

    yield begin
    for client in clients:
        client.__exit__(None, None, None)


def listen(client: TestClient, path: str, user_agent: str = ANTENNAPOD,
           byte_range: str | None = None, method: str = "GET") -> int:
    headers = {"User-Agent": user_agent}
    if byte_range:
        headers["Range"] = byte_range
    return client.request(method, path, headers=headers).status_code


def test_plays_are_counted_once_flushed_on_a_clean_stop(
        start: object, episode: Episode, store: ObjectStore) -> None:
    audio, original = episode_file_path(episode, "audio"), episode_file_path(episode, "original")
    size = episode.files["audio"].size  # a 2-second file: a download only when received whole
    listener = start("192.0.2.10")  # type: ignore[operator]
    assert listen(listener, audio, method="HEAD") == 200
    assert listen(listener, audio, byte_range="bytes=0-1") == 206  # a probe: not recorded
    assert listen(listener, audio, byte_range="bytes=0-999") == 206
    assert listen(listener, audio, byte_range=f"bytes=1000-{size - 1}") == 206
    etag = listener.get(audio, headers={"User-Agent": ANTENNAPOD}).headers["etag"]
    assert listener.get(audio, headers={"User-Agent": ANTENNAPOD,
                                        "If-None-Match": etag}).status_code == 304
    # The 20 MB original streams: half of it is not a download of it, all of it is.
    assert listen(listener, original, byte_range="bytes=0-9999999") == 206
    assert listen(listener, original) == 200
    listen(listener, episode_file_path(episode, "transcript"))
    half = start("192.0.2.11")  # type: ignore[operator]
    assert listen(half, audio, byte_range="bytes=0-999") == 206  # part of a short file: no
    crawler = start("192.0.2.12")  # type: ignore[operator]
    assert listen(crawler, audio, GOOGLEBOT) == 200  # a bot: no
    add_editor(store)
    editor = start("192.0.2.13")  # type: ignore[operator]
    sign_in(editor)
    assert listen(editor, audio) == 200  # an editor's own play: not recorded
    assert listen(editor, original, byte_range="bytes=0-1") == 206

    assert not list(store.list(EVENTS_PREFIX))  # buffered, not yet written
    for client in (listener, half, crawler, editor):
        client.__exit__(None, None, None)  # a clean stop flushes the buffer
    assert list(store.list(EVENTS_PREFIX))

    reader = start("192.0.2.14")  # type: ignore[operator]
    token = token_for(store)
    answer = reader.get("/api/stats", headers=bearer(token)).json()
    assert answer["total"] == 1
    [row] = answer["episodes"]
    assert (row["id"], row["title"], row["downloads"], row["method"]) == (
        episode.id, TITLE, 1, "bytes")
    assert (row["original"], row["sidecars"]) == (1, 1)
    assert answer["apps"] == [{"app": "AntennaPod", "kind": "app", "downloads": 1}]


def test_redirect_mode_counts_requests_labelled_so(
        start: object, episode: Episode, store: ObjectStore) -> None:
    client = start("192.0.2.20", media_url="presigned")  # type: ignore[operator]
    audio = episode_file_path(episode, "audio")
    for _ in range(2):
        assert client.get(audio, headers={"User-Agent": ANTENNAPOD},
                          follow_redirects=False).status_code == 302
    assert client.head(audio, headers={"User-Agent": ANTENNAPOD},
                       follow_redirects=False).status_code == 302
    client.__exit__(None, None, None)
    reader = start("192.0.2.21", media_url="presigned")  # type: ignore[operator]
    [row] = reader.get("/api/stats", headers=bearer(token_for(store))).json()["episodes"]
    assert (row["downloads"], row["method"]) == (1, "requests")
    add_editor(store, "reader")
    sign_in(reader, "reader")
    assert "counted requests" in reader.get("/stats").text


@pytest.fixture
def counted(start: object, episode: Episode) -> Episode:
    client = start("192.0.2.30")  # type: ignore[operator]
    listen(client, episode_file_path(episode, "audio"))
    client.__exit__(None, None, None)
    return episode


def test_stats_page_charts_tables_and_csv_for_editors(
        start: object, counted: Episode, store: ObjectStore) -> None:
    client = start("192.0.2.31")  # type: ignore[operator]
    answer = client.get("/stats", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    assert client.get("/stats/downloads.csv", follow_redirects=False).status_code == 303
    add_editor(store)
    sign_in(client)
    page = client.get("/stats")
    assert page.status_code == 200
    html = page.text
    assert html.count('role="img"') >= 4 and "<svg" in html
    assert 'aria-label="Downloads per day' in html
    assert "<caption>Downloads per day" in html  # the same numbers as a table
    assert TITLE in html and "AntennaPod" in html
    today = datetime.now(UTC).date().isoformat()
    assert f'<th scope="row">{today}</th><td class="num">1</td>' in html

    by_series = client.get("/stats", params={"series": "no-such-series"})
    assert by_series.status_code == 200 and "No downloads counted" in by_series.text

    download = client.get("/stats/downloads.csv")
    assert download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert rows[0]["id"] == counted.id and rows[0]["title"] == TITLE
    assert rows[0]["downloads"] == "1" and rows[0]["method"] == "bytes"

    per_episode = client.get("/stats", params={"episode": counted.id})
    assert f"episode “{TITLE}”" in per_episode.text


@pytest.mark.parametrize("query", [
    {"since": "yesterday"}, {"until": "2026-13-01"}, {"since": "2026-05-02", "until": "2026-05-01"},
    {"since": "1900-01-01"}, {"series": "../etc"}, {"episode": "x" * 300},
])
def test_hostile_filters_are_a_clear_422(start: object, store: ObjectStore,
                                         query: dict[str, str]) -> None:
    client = start()  # type: ignore[operator]
    add_editor(store)
    sign_in(client)
    assert client.get("/stats", params=query).status_code == 422
    answer = client.get("/api/stats", params=query, headers=bearer(token_for(store)))
    assert answer.status_code == 422 and "error" in answer.json()


def test_api_needs_a_token(start: object) -> None:
    client = start()  # type: ignore[operator]
    answer = client.get("/api/stats")
    assert answer.status_code == 401 and "WWW-Authenticate" in answer.headers
    assert client.get("/api/stats", headers=bearer("nope")).status_code == 401


def test_about_page_states_the_method_publicly(start: object) -> None:
    client = start()  # type: ignore[operator]
    page = client.get("/stats/about")
    assert page.status_code == 200
    text = page.text
    for phrase in ("one minute of audio", "one UTC day", "IAB", "No IP address is ever stored",
                   "every\n    version of it", "no counts of unique listeners across days",
                   "content delivery network", "counted requests", "preload=\"none\"",
                   "user-agents-v2"):
        assert phrase in text, phrase


def test_editor_pages_link_to_the_statistics(start: object, store: ObjectStore) -> None:
    client = start()  # type: ignore[operator]
    add_editor(store)
    sign_in(client)
    assert '<a href="/stats">Statistics</a>' in client.get("/audit").text


def test_two_processes_share_the_day_key_so_a_listener_counts_once(
        start: object, episode: Episode, store: ObjectStore) -> None:
    """Behind a load balancer a player's ranges reach different processes: both hash the
    listener under the same day key (created once in the bucket), so the halves add up."""
    audio = episode_file_path(episode, "audio")
    size = episode.files["audio"].size
    first = start("192.0.2.40")  # type: ignore[operator]
    second = start("192.0.2.40")  # type: ignore[operator]
    assert listen(first, audio, byte_range=f"bytes=0-{size // 2 - 1}") == 206
    assert listen(second, audio, byte_range=f"bytes={size // 2}-{size - 1}") == 206
    first.__exit__(None, None, None)
    second.__exit__(None, None, None)
    assert len(list(store.list("stats/keys/"))) == 1
    reader = start()  # type: ignore[operator]
    answer = reader.get("/api/stats", headers=bearer(token_for(store))).json()
    assert answer["total"] == 1
