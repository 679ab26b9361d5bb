"""The upload page and its form flow (without JavaScript, and as the page's script does it),
the size limit while the body streams, and memory that does not grow with the file."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from archive.catalog import Catalog
from archive.storage import ObjectStore
from tests import media_samples
from tests.conftest import bucket_listing
from tests.test_auth import add_editor, bearer, sign_in, token_for

MB = 1024 * 1024


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=2.0)


def spooled(client: TestClient) -> list[Path]:
    folder = Path(client.app.state.archive.settings.data_dir) / "uploads"  # type: ignore[attr-defined]
    return list(folder.glob("*/*")) if folder.exists() else []


def multipart_body(boundary: str, size: int) -> Iterator[bytes]:
    """A form whose file part is `size` bytes, sent in chunks without a Content-Length."""
    yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nBig\r\n"
           f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
           f"filename=\"big.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()
    chunk = b"\0" * (256 * 1024)
    for _ in range(size // len(chunk)):
        yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()


def test_uploads_over_the_limit_are_413_with_nothing_stored(make_client: object,
                                                            store: ObjectStore) -> None:
    client: TestClient = make_client(max_upload_mb=1)  # type: ignore[operator]
    token = token_for(store)
    before = bucket_listing(store)
    declared = client.post("/api/episodes", content=b"x" * 10, headers={
        **bearer(token), "Content-Type": "multipart/form-data; boundary=b",
        "Content-Length": str(2 * MB)})
    assert declared.status_code == 413 and declared.json()["status"] == 413

    streamed = client.post("/api/episodes", content=multipart_body("b0und", 3 * MB), headers={
        **bearer(token), "Content-Type": "multipart/form-data; boundary=b0und"})
    assert streamed.status_code == 413, streamed.text
    assert "1 MB" in streamed.json()["error"]

    add_editor(store, "browser-editor")
    csrf = sign_in(client, "browser-editor")
    form = client.post("/upload", content=multipart_body("f0rm", 2 * MB), headers={
        "Content-Type": "multipart/form-data; boundary=f0rm", "X-CSRF-Token": csrf,
        "Accept": "application/json"})
    assert form.status_code == 413
    assert [k for k, _ in bucket_listing(store) if not k.startswith(("auth/", "audit/"))] == \
        [k for k, _ in before if not k.startswith(("auth/", "audit/"))]
    assert spooled(client) == []


def test_upload_page_is_for_editors_and_labels_every_field(store: ObjectStore,
                                                           client: TestClient) -> None:
    assert client.get("/upload", follow_redirects=False).headers["location"] == \
        "/login?next=%2Fupload"
    add_editor(store)
    sign_in(client)
    page = client.get("/upload")
    html = page.text
    ids = re.findall(r'<(?:input|select|textarea)[^>]* id="([^"]+)"', html)
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    assert ids and set(ids) <= labelled, set(ids) - labelled
    for name in ("file", "title", "series", "date", "description", "speaker_name",
                 "speaker_role", "speaker_affiliation", "tags", "licence", "event", "location",
                 "language", "season", "number", "artwork", "transcript", "chapters", "publish"):
        assert f'name="{name}"' in html, name
    assert '<datalist id="series-list">' in html and "<progress" in html
    assert '<script src="/static/upload.js"' in html and "<script>" not in html
    assert ' style="' not in html
    assert page.headers["cache-control"] == "no-store"


def _form_fields(csrf: str) -> dict[str, object]:
    return {"csrf": csrf, "title": "Trust and the Body", "series": "Workshops",
            "date": "2019-06-12", "speaker_name": ["Ana Ana", "Ben Ben", ""],
            "speaker_role": ["chair", "speaker", "speaker"],
            "speaker_affiliation": ["Univ; Dept", "", ""], "tags": "trust, bodies",
            "licence": "cc-by-4.0", "publish": "publish"}


def test_form_upload_without_javascript(store: ObjectStore, client: TestClient,
                                        wav: Path) -> None:
    add_editor(store)
    csrf = sign_in(client)
    with wav.open("rb") as stream:
        posted = client.post("/upload", data=_form_fields(csrf),
                             files={"file": ("My Talk (final).wav", stream, "audio/wav"),
                                    "artwork": ("", b"", "application/octet-stream")},
                             follow_redirects=False)
    assert posted.status_code == 303, posted.text
    status_url = posted.headers["location"]
    assert status_url.startswith("/upload/jobs/")
    for _ in range(300):
        page = client.get(status_url, follow_redirects=False)
        if page.status_code == 303:
            break
        assert page.status_code == 200 and page.headers["refresh"] == "2"
        time.sleep(0.1)
    assert page.headers["location"] == "/episodes/trust-and-the-body"
    episode = Catalog(store).view().episode_by_slug("trust-and-the-body")
    assert [(p.name, p.role, p.affiliation) for p in episode.speakers] == [
        ("Ana Ana", "chair", "Univ, Dept"), ("Ben Ben", "speaker", "")]
    assert episode.tags == ["trust", "bodies"] and episode.source_filename == \
        "My Talk (final).wav"
    assert "cover" not in episode.files  # the empty file input was no artwork


def test_script_upload_polls_json_status_and_drafts_go_to_the_edit_page(
        store: ObjectStore, client: TestClient, wav: Path) -> None:
    add_editor(store)
    csrf = sign_in(client)
    fields = {**_form_fields("ignored"), "publish": "draft"}
    del fields["csrf"]
    with wav.open("rb") as stream:
        accepted = client.post("/upload", data=fields, files={"file": ("t.wav", stream)},
                               headers={"X-CSRF-Token": csrf, "Accept": "application/json"})
    assert accepted.status_code == 202, accepted.text
    url = accepted.json()["status_url"]
    seen = set()
    for _ in range(300):
        job = client.get(url, headers={"Accept": "application/json"}).json()
        seen.add(job["label"])
        if job["state"] in {"done", "failed"}:
            break
        time.sleep(0.05)
    assert job["state"] == "done", job
    assert job["next"] == f"/edit/{job['episode_id']}"
    assert seen <= {"waiting to start", "checking", "converting", "tagging", "storing", "done"}
    assert client.get(job["next"]).status_code == 200


def test_a_failed_ingest_is_reported_on_the_status_page(store: ObjectStore, client: TestClient,
                                                        tmp_path: Path) -> None:
    add_editor(store)
    csrf = sign_in(client)
    bad = media_samples.write_png(tmp_path / "photo.mp3")
    with bad.open("rb") as stream:
        posted = client.post("/upload", data=_form_fields(csrf), files={"file": stream},
                             follow_redirects=False)
    url = posted.headers["location"]
    for _ in range(100):
        page = client.get(url)
        if "not added" in page.text:
            break
        time.sleep(0.1)
    assert "The upload was not added" in page.text and "image" in page.text
    assert "refresh" not in page.headers
    assert not [k for k, _ in bucket_listing(store) if k.startswith("episodes/")]
    assert spooled(client) == []


def test_job_status_needs_an_editor(store: ObjectStore, client: TestClient) -> None:
    add_editor(store)
    sign_in(client)
    assert client.get("/upload/jobs/not-a-real-job-id-at-all",
                      headers={"Accept": "application/json"}).status_code == 404
    client.cookies.clear()
    assert client.get("/upload/jobs/not-a-real-job-id-at-all",
                      headers={"Accept": "application/json"}).status_code == 401


def test_stale_spool_folders_are_swept(tmp_path: Path) -> None:
    import os

    from archive.web.uploads import sweep_stale_spools

    stale, live = tmp_path / "upload-dead", tmp_path / "upload-live"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "recording").write_bytes(b"partial")
    hours_ago = time.time() - 3 * 3600
    for path in (stale, stale / "recording"):
        os.utime(path, (hours_ago, hours_ago))
    assert sweep_stale_spools(tmp_path) == [stale]
    assert not stale.exists() and (live / "recording").exists()


def test_a_job_abandoned_by_a_dead_process_reads_as_failed(store: ObjectStore) -> None:
    from datetime import UTC, datetime, timedelta

    from archive.jobs import Job, JobRunner, job_key

    runner = JobRunner(store)
    try:
        hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        stale = Job(id="a" * 32, user="editor", state="running", stage="converting",
                    updated_at=hour_ago)
        store.put_json(job_key(stale.id), stale.to_dict())
        fresh = Job(id="b" * 32, user="editor", state="running", stage="converting",
                    updated_at=datetime.now(UTC).isoformat())
        store.put_json(job_key(fresh.id), fresh.to_dict())
        assert runner.get(stale.id).state == "failed"
        assert "interrupted" in runner.get(stale.id).error
        assert runner.get(fresh.id).state == "running"
    finally:
        runner.shutdown()
