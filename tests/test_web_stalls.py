"""Nothing that may wait on storage or on a build runs on the event loop, and a slow build
delays only the requests that need it: the site keeps answering meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from starlette.testclient import TestClient

import archive.web.feeds as feeds
from archive.catalog import Catalog, CatalogData, CatalogView
from archive.models import Series
from archive.storage import ObjectStore
from tests import media_samples
from tests.factories import make_episode
from tests.test_api import post_recording
from tests.test_auth import add_editor, sign_in, token_for

BLOCKED_FEED = "/series/roundtables/feed.xml"
WAITERS = 48  # more than Starlette's thread pool (40): waiting must not hold a thread


def on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@contextlib.contextmanager
def storage_calls_on_the_loop(store: ObjectStore) -> Iterator[list[tuple[str, str]]]:
    """Every call to the app's object store made from the event loop's thread."""
    seen: list[tuple[str, str]] = []
    names = [name for name in vars(ObjectStore) if not name.startswith("_")
             and callable(getattr(ObjectStore, name))]
    for name in names:
        original = getattr(store, name)

        def spy(*args: object, _name: str = name, _original: object = original,
                **kwargs: object) -> object:
            if on_event_loop():
                seen.append((_name, str(args[0]) if args else ""))
            return _original(*args, **kwargs)  # type: ignore[operator]

        setattr(store, name, spy)
    try:
        yield seen
    finally:
        for name in names:
            delattr(store, name)


def test_uploads_are_queued_without_storage_calls_on_the_loop(client: TestClient,
                                                              store: ObjectStore,
                                                              tmp_path: Path) -> None:
    wav = media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=1.0)
    add_editor(store)
    token = token_for(store)
    csrf = sign_in(client)
    app_store = client.app.state.archive.store  # type: ignore[attr-defined]
    with storage_calls_on_the_loop(app_store) as seen:
        created = post_recording(client, token, wav)
        background = post_recording(client, token, wav, query="?wait=false", title="Again")
        with wav.open("rb") as stream:
            form = client.post("/upload", headers={"x-csrf-token": csrf, "accept":
                                                   "application/json"},
                               data={"title": "Browser", "series": "Lectures"},
                               files={"file": ("talk.wav", stream, "audio/wav")})
    assert (created.status_code, background.status_code, form.status_code) == (201, 202, 202)
    assert [call for call in seen if call[1].startswith("jobs/")] == []


@pytest.fixture
def two_series(catalog: Catalog, store: ObjectStore) -> None:
    shelf = [(Series.new(title), make_episode(f"A {title.lower()[:-1]}",
                                              series=title.lower()))
             for title in ("Roundtables", "Lectures")]
    for _, episode in shelf:
        store.put_bytes(episode.files["audio"].key, b"ID3 fake audio", "audio/mpeg")

    def apply(doc: object) -> None:
        for series, episode in shelf:
            doc.series[series.slug] = series  # type: ignore[attr-defined]
            doc.episodes[episode.id] = episode  # type: ignore[attr-defined]

    catalog.change(apply)


def test_a_slow_feed_build_delays_only_that_feed(two_series: None, client: TestClient,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    started, release = threading.Event(), threading.Event()
    builds: list[str] = []
    real_render = feeds.render

    def slow_render(view, channel, episodes, settings, *where):  # type: ignore[no-untyped-def]
        builds.append(channel.title)
        if channel.title == "Roundtables":
            started.set()
            assert release.wait(60), "the test never released the build"
        return real_render(view, channel, episodes, settings, *where)

    monkeypatch.setattr(feeds, "render", slow_render)
    with ThreadPoolExecutor(WAITERS + 8) as pool:
        try:
            waiting = [pool.submit(client.get, BLOCKED_FEED) for _ in range(WAITERS)]
            assert started.wait(30)
            others = {path: pool.submit(client.get, path) for path in (
                "/static/site.css", "/feed.xml", "/series/lectures/feed.xml", "/", "/healthz",
                "/series/nobody/feed.xml")}
            answers = {path: future.result(timeout=30).status_code
                       for path, future in others.items()}
            assert not any(future.done() for future in waiting)  # still building
        finally:
            release.set()
        bodies = {future.result(timeout=30).content for future in waiting}
    assert answers == {"/static/site.css": 200, "/feed.xml": 200,
                       "/series/lectures/feed.xml": 200, "/": 200, "/healthz": 200,
                       "/series/nobody/feed.xml": 404}
    assert len(bodies) == 1 and b"<title>Roundtables</title>" in bodies.pop()
    assert builds.count("Roundtables") == 1  # built once for all who waited


def test_a_slow_cached_build_holds_up_only_its_own_key() -> None:
    view = CatalogView(CatalogData(), None)
    started, release = threading.Event(), threading.Event()
    builds: list[str] = []

    def slow() -> str:
        builds.append("slow")
        started.set()
        assert release.wait(30)
        return "slow value"

    with ThreadPoolExecutor(3) as pool:
        try:
            first = pool.submit(view.cached, "feed", slow)
            assert started.wait(10)
            second = pool.submit(view.cached, "feed", slow)
            other = pool.submit(view.cached, "facets", lambda: "facets value")
            assert other.result(timeout=10) == "facets value"
            assert not first.done() and not second.done()
        finally:
            release.set()
        assert (first.result(10), second.result(10)) == ("slow value", "slow value")
    assert builds == ["slow"]
