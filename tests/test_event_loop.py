"""Nothing that can wait on storage runs on the event loop (one slow S3 call there stalls
every request the process is serving).

A botocore `before-send` hook on the app's own S3 client notes every request made from the
event loop's thread; the editors' views, health and media delivery are walked through, and the
list must stay empty. The calls still go to the real server: this only watches them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from archive.catalog import Catalog
from archive.models import Episode
from archive.storage import ObjectStore
from archive.web.media import episode_file_path
from tests import media_samples
from tests.test_auth import PASSWORD, add_editor, csrf_of, sign_in, token_for
from tests.test_web_media import publish


def watch_the_loop(client: TestClient) -> list[str]:
    """Storage requests made on the event loop's thread, as they happen."""
    on_loop: list[str] = []

    def note(request: Any, **_: Any) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a worker thread: fine
        on_loop.append(f"{request.method} {request.url}")

    store: ObjectStore = client.app.state.archive.store  # type: ignore[attr-defined]
    store._client.meta.events.register("before-send.s3", note)
    return on_loop


@pytest.fixture
def episodes(catalog: Catalog) -> tuple[Episode, Episode]:
    return (publish(catalog, "Published talk", with_sidecars=False),
            publish(catalog, "Draft talk", draft=True, with_sidecars=False))


def test_editor_views_never_wait_on_storage_on_the_loop(
        store: ObjectStore, episodes: tuple[Episode, Episode],
        make_client: Callable[..., TestClient], tmp_path: Path) -> None:
    published, draft = episodes
    add_editor(store)
    token = token_for(store, "api-editor")
    client = make_client()
    on_loop = watch_the_loop(client)

    client.post("/login", data={"username": "editor", "password": "wrong-wrong",
                                "csrf": csrf_of(client, "/login")})
    csrf = sign_in(client)
    for path in ("/upload", "/edit", f"/edit/{draft.id}", "/audit", "/account", "/healthz",
                 episode_file_path(draft, "audio"), episode_file_path(published, "audio")):
        assert client.get(path).status_code == 200, path
    assert client.get(episode_file_path(draft, "audio"),
                      headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert client.post(f"/edit/{draft.id}/publish", data={"csrf": csrf, "action": "publish"},
                       follow_redirects=False).status_code == 303
    assert client.post(f"/edit/{draft.id}", data={"csrf": csrf, "title": "Renamed talk",
                                                  "series": "Roundtables"},
                       follow_redirects=False).status_code == 303
    vtt = tmp_path / "talk.vtt"
    vtt.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nWelcome.\n", encoding="utf-8")
    with vtt.open("rb") as stream:
        assert client.post(f"/edit/{draft.id}/files", data={"csrf": csrf},
                           files={"transcript": stream},
                           follow_redirects=False).status_code == 303
    wav = media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=1.0)
    with wav.open("rb") as stream:
        posted = client.post("/upload", data={"csrf": csrf, "title": "Uploaded talk",
                                              "series": "Roundtables", "publish": "draft"},
                             files={"file": stream}, follow_redirects=False)
    assert posted.status_code == 303
    assert client.get(posted.headers["location"], follow_redirects=False).status_code in (200, 303)
    assert client.post(f"/edit/{published.id}/delete", data={"csrf": csrf},
                       follow_redirects=False).status_code == 303
    assert client.post("/account/password", data={
        "csrf": csrf, "current_password": PASSWORD, "new_password": PASSWORD + "!",
        "new_password_again": PASSWORD + "!"}, follow_redirects=False).status_code == 303
    csrf = csrf_of(client, "/upload")
    assert client.post("/logout/everywhere", data={"csrf": csrf},
                       follow_redirects=False).status_code == 303
    csrf = sign_in(client, password=PASSWORD + "!")
    assert client.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert on_loop == []
