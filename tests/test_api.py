"""The JSON API over the real app and SeaweedFS: upload, read, edit, delete; errors as JSON."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from archive.catalog import Catalog
from archive.config import Settings
from archive.storage import ObjectStore
from media import tags
from tests import media_samples
from tests.browser import LiveServer
from tests.conftest import bucket_listing
from tests.servers import wait_until
from tests.test_auth import bearer, token_for

FIELDS = {"title": "Trusting Enemies", "series": "Lectures", "date": "2018-02-21",
          "speaker": ["Nicholas J Wheeler;lecturer;University of Birmingham",
                      "Naomi Head;respondent;University of Glasgow"],
          "tag": ["trust", "diplomacy"], "licence": "cc-by-4.0", "description": "A lecture."}


def post_recording(client: TestClient | httpx.Client, token: str, path: Path,
                   filename: str = "talk.wav", query: str = "", **fields: object
                   ) -> httpx.Response:
    data = {**FIELDS, **fields}
    with path.open("rb") as stream:
        return client.post(f"/api/episodes{query}", data=data,
                           files={"file": (filename, stream, "audio/wav")}, headers=bearer(token))


@pytest.fixture
def token(store: ObjectStore) -> str:
    return token_for(store)


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=2.0)


def without_jobs(listing: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """Every upload, refused or not, leaves the status of its job (pruned after a day)."""
    return [(key, size) for key, size in listing if not key.startswith("jobs/")]


def download(store: ObjectStore, key: str, path: Path) -> Path:
    with path.open("wb") as out:
        store.download_to(key, out)
    return path


def test_upload_read_edit_delete(client: TestClient, store: ObjectStore, token: str, wav: Path,
                                 tmp_path: Path) -> None:
    created = post_recording(client, token, wav)
    assert created.status_code == 201, created.text
    episode = created.json()
    assert created.headers["location"] == f"/api/episodes/{episode['id']}"
    assert episode["title"] == "Trusting Enemies" and episode["series"] == "lectures"
    assert [s["role"] for s in episode["speakers"]] == ["lecturer", "respondent"]
    assert episode["tags"] == ["trust", "diplomacy"] and episode["licence"] == "cc-by-4.0"
    assert "key" not in episode["files"]["audio"]
    audio_url = episode["files"]["audio"]["url"]

    public = client.get(f"/api/episodes/{episode['id']}").json()
    assert public["title"] == "Trusting Enemies" and "source_filename" not in public
    listing = client.get("/api/episodes").json()
    assert listing["total"] == 1 and listing["episodes"][0]["id"] == episode["id"]

    patched = client.patch(f"/api/episodes/{episode['id']}", headers=bearer(token),
                           json={"title": "Trusting Enemies, Revised",
                                 "speakers": ["Nicholas J Wheeler;lecturer;Birmingham"]})
    assert patched.status_code == 200, patched.text
    edited = patched.json()
    assert edited["title"] == "Trusting Enemies, Revised"
    assert (edited["guid"], edited["slug"], edited["files"]["audio"]["url"]) == (
        episode["guid"], episode["slug"], audio_url)
    assert edited["files"]["audio"]["sha256"] != episode["files"]["audio"]["sha256"]
    entry = Catalog(store).view().episode(episode["id"])
    read = tags.read_tags(download(store, entry.files["audio"].key, tmp_path / "a.mp3"))
    assert read.title == "Trusting Enemies, Revised" and read.guid == episode["guid"]
    assert read.artists == ["Nicholas J Wheeler"]
    served = client.get(audio_url.removeprefix("http://archive.test"))
    assert served.status_code == 200 and len(served.content) == edited["files"]["audio"]["size"]
    assert "Trusting Enemies, Revised" in client.get("/feed.xml").text

    deleted = client.delete(f"/api/episodes/{episode['id']}", headers=bearer(token))
    assert deleted.status_code == 204
    assert client.get(f"/api/episodes/{episode['id']}").status_code == 404
    assert not [k for k, _ in bucket_listing(store) if k.startswith("episodes/")]
    assert "Trusting Enemies" not in client.get("/feed.xml").text


def test_background_upload_answers_202_and_a_status_url(client: TestClient, token: str,
                                                        wav: Path) -> None:
    accepted = post_recording(client, token, wav, query="?wait=false")
    assert accepted.status_code == 202, accepted.text
    status_url = accepted.headers["location"]
    assert status_url == accepted.json()["status_url"]
    assert client.get(status_url).status_code == 401  # the status is for editors
    for _ in range(200):
        job = client.get(status_url, headers=bearer(token)).json()
        if job["state"] in {"done", "failed"}:
            break
        assert job["label"] in {"waiting to start", "checking", "converting", "tagging",
                                "storing", "done"}
        time.sleep(0.1)
    assert job["state"] == "done", job
    assert client.get(job["episode_url"]).json()["title"] == "Trusting Enemies"


def test_drafts_are_for_editors_only(client: TestClient, token: str, wav: Path) -> None:
    draft = post_recording(client, token, wav, draft="1").json()
    assert draft["draft"] is True
    assert client.get(f"/api/episodes/{draft['id']}").status_code == 404
    assert client.get("/api/episodes").json()["total"] == 0
    mine = client.get(f"/api/episodes/{draft['id']}", headers=bearer(token))
    assert mine.status_code == 200 and mine.headers["cache-control"] == "private, no-store"
    published = client.patch(f"/api/episodes/{draft['id']}", json={"draft": False},
                             headers=bearer(token))
    assert published.json()["draft"] is False
    assert client.get("/api/episodes").json()["total"] == 1


def test_errors_are_json_with_their_status(client: TestClient, store: ObjectStore, token: str,
                                           wav: Path, tmp_path: Path) -> None:
    post_recording(client, token, wav)
    before = without_jobs(bucket_listing(store))
    auth = bearer(token)
    not_multipart = client.post("/api/episodes", json={"title": "x"}, headers=auth)
    assert not_multipart.status_code == 400
    text = media_samples.write_html(tmp_path / "page.mp3")
    cases = [
        (post_recording(client, token, text), 415),
        (post_recording(client, token, wav, title=""), 409),  # same recording: a duplicate
        (post_recording(client, token, media_samples.make_recording(
            tmp_path / "b.wav", "wav", seconds=1.0, frequency=330), series=""), 422),
        (post_recording(client, token, wav, date="2018-02-31"), 422),
        (client.post("/api/episodes", data=FIELDS, headers=auth,  # no recording
                     files={"transcript": ("t.vtt", b"WEBVTT\n\n")}), 422),
        (client.patch("/api/episodes/nosuchepisode", json={"title": "x"}, headers=auth), 404),
        (client.delete("/api/episodes/nosuchepisode", headers=auth), 404),
        (client.get("/api/episodes?page=zero"), 400),
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.text)
        body = response.json()
        assert body["status"] == status and body["error"], body
    assert without_jobs(bucket_listing(store)) == before  # refused uploads: only a job status


def test_patch_refuses_bad_json_unknown_fields_and_stale_revisions(
        client: TestClient, token: str, wav: Path) -> None:
    episode = post_recording(client, token, wav).json()
    url, auth = f"/api/episodes/{episode['id']}", bearer(token)
    assert client.patch(url, content=b"{not json", headers=auth).status_code == 400
    assert client.patch(url, json=["title"], headers=auth).status_code == 400
    unknown = client.patch(url, json={"guid": "mine"}, headers=auth)
    assert unknown.status_code == 422 and "guid" in unknown.json()["error"]
    assert client.patch(url, json={"licence": "nonsense"}, headers=auth).status_code == 422
    fresh = client.patch(url, json={"tags": ["a"]}, headers={
        **auth, "If-Match": f'"{episode["revision"]}"'})
    assert fresh.status_code == 200
    stale = client.patch(url, json={"tags": ["b"]}, headers={
        **auth, "If-Match": f'"{episode["revision"]}"'})
    assert stale.status_code == 409
    assert client.get(url).json()["tags"] == ["a"]


@pytest.mark.parametrize("hostile", [
    "../../etc/passwd", "talk\x00.wav", "a" * 300 + ".wav", "evil\u202ewav.mp3",
    "..\\..\\windows\\system32\\talk.wav", ".hidden", "",
])
def test_hostile_filenames_never_reach_storage_keys(client: TestClient, store: ObjectStore,
                                                    token: str, wav: Path, hostile: str) -> None:
    response = post_recording(client, token, wav, filename=hostile)
    assert response.status_code == 201, response.text
    episode_id = response.json()["id"]
    keys = [key for key, _ in bucket_listing(store)]
    assert all(key.startswith(("catalog.json", "catalog/", "auth/", "audit/", "series/", "jobs/",
                               "tasks/", "art/", f"episodes/{episode_id}/")) for key in keys), keys
    assert not any(".." in key or "\x00" in key or "\u202e" in key or "passwd" in key
                   for key in keys)
    stored = Catalog(store).view().episode(episode_id).source_filename
    assert "/" not in stored and "\\" not in stored and "\x00" not in stored
    assert "\u202e" not in stored and len(stored) <= 200 and not stored.startswith(".")
    assert Path("/etc/passwd").read_text()  # untouched, obviously, but still there


def test_eight_concurrent_uploads_all_land(settings: Settings, store: ObjectStore, token: str,
                                           tmp_path: Path) -> None:
    recordings = [media_samples.make_recording(tmp_path / f"r{n}.wav", "wav", seconds=1.0,
                                               frequency=220 + 40 * n) for n in range(8)]
    results: list[httpx.Response] = []
    with LiveServer(settings) as server:
        url = server.url

        def upload(n: int) -> None:
            with httpx.Client(base_url=url, timeout=120) as http:
                results.append(post_recording(http, token, recordings[n],
                                              title=f"Talk {n}", series="Concurrent"))

        threads = [threading.Thread(target=upload, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(r.status_code for r in results) == [201] * 8, [r.text for r in results]
    titles = sorted(e.title for e in Catalog(store).view().published)
    assert titles == [f"Talk {n}" for n in range(8)]


def test_an_edit_during_another_upload_loses_neither(client: TestClient, store: ObjectStore,
                                                     token: str, wav: Path,
                                                     tmp_path: Path) -> None:
    existing = post_recording(client, token, wav).json()
    other = token_for(store, "second-editor")
    long_one = media_samples.make_recording(tmp_path / "long.wav", "wav", seconds=30.0,
                                            frequency=550)
    accepted = post_recording(client, other, long_one, query="?wait=false", title="Long Talk")
    status_url = accepted.headers["location"]
    edits = 0
    while True:
        job = client.get(status_url, headers=bearer(other)).json()
        if job["state"] in {"done", "failed"}:
            break
        edits += 1
        patched = client.patch(f"/api/episodes/{existing['id']}", headers=bearer(token),
                               json={"tags": [f"edit-{edits}"]})
        assert patched.status_code == 200, patched.text
    assert job["state"] == "done", job
    assert edits >= 1
    view = Catalog(store).view()
    assert {e.title for e in view.published} == {"Trusting Enemies", "Long Talk"}
    assert view.episode(existing["id"]).tags == [f"edit-{edits}"]


def test_a_waited_upload_goes_through_the_job_queue(client: TestClient, store: ObjectStore,
                                                    token: str, wav: Path) -> None:
    """`wait=true` (the default) answers 201 as before, but the ingest is one of the bounded
    background jobs, not work in the request thread pool."""
    created = post_recording(client, token, wav)
    assert created.status_code == 201, created.text
    jobs = [store.get_json(info.key)[0] for info in store.list("jobs/")]
    assert [(job["state"], job["episode_id"]) for job in jobs] == [
        ("done", created.json()["id"])]


def test_a_waited_upload_reports_the_ingest_error(client: TestClient, store: ObjectStore,
                                                  token: str, tmp_path: Path) -> None:
    noise = media_samples.write_random_bytes(tmp_path / "noise.wav")
    refused = post_recording(client, token, noise)
    assert refused.status_code == 415, refused.text
    assert refused.json()["error"].startswith("This file is not a recording we can read")
    assert not [k for k, _ in bucket_listing(store) if k.startswith("episodes/")]
    assert not list(Path(client.app.state.archive.settings.data_dir, "uploads").glob("*/*"))  # type: ignore[attr-defined]


def test_a_recording_longer_than_allowed_is_413(make_client: object, store: ObjectStore,
                                                token: str, tmp_path: Path) -> None:
    client = make_client(max_duration_h=1 / 60)  # type: ignore[operator]
    quiet = media_samples.make_recording(tmp_path / "quiet.flac", "flac", seconds=90,
                                         sample_rate=8000, channels=1, level_db=-200)
    refused = post_recording(client, token, quiet, filename="quiet.flac")
    assert refused.status_code == 413, refused.text
    assert refused.json() == {"error": "This recording lasts 1 min 30 s; recordings may last at "
                                       "most 1 min here.", "status": 413}
    background = post_recording(client, token, quiet, filename="quiet.flac", query="?wait=false")
    status_url = background.headers["location"]
    assert wait_until(lambda: client.get(status_url, headers=bearer(token)).json()["state"]
                      == "failed")
    assert client.get(status_url, headers=bearer(token)).json()["status"] == 413
