"""Editing through the editor pages and `archive.editing`: metadata (re-tagged delivery file,
same guid and URLs), sidecar replacement, publish/unpublish, delete, conflicts, the audit log."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from archive import editing
from archive.catalog import Catalog
from archive.errors import Conflict, InvalidInput
from archive.ingest import Metadata, ingest
from archive.runtime import Archive
from archive.storage import ObjectStore
from media import tags
from tests import media_samples
from tests.conftest import bucket_listing
from tests.servers import wait_until
from tests.test_auth import add_editor, sign_in


@pytest.fixture
def episode_id(archive: Archive, tmp_path: Path) -> str:
    source = media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=2.0)
    episode = ingest(archive, source, Metadata(
        title="Trusting Enemies", series="Lectures", date="2018-02-21",
        speakers=["Nicholas J Wheeler;lecturer;University of Birmingham"], tags=["trust"]))
    return episode.id


def edit_form(client: TestClient, episode_id: str) -> dict[str, object]:
    """The edit form's current values, as a browser would send them back."""
    html = client.get(f"/edit/{episode_id}").text
    form = html.split('id="edit-form"', 1)[1].split("</form>", 1)[0]
    values: dict[str, object] = {}
    for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form):
        values.setdefault(name, []).append(value)  # type: ignore[union-attr]
    values["description"] = re.search(r"<textarea[^>]*>([^<]*)</textarea>", form).group(1)
    values["speaker_role"] = ["lecturer", "speaker", "speaker"]
    return {k: v[0] if isinstance(v, list) and len(v) == 1 else v for k, v in values.items()}


def signed_in(client: TestClient, store: ObjectStore) -> str:
    add_editor(store)
    return sign_in(client)


def test_title_edit_retags_keeps_guid_and_urls_and_updates_feeds(
        client: TestClient, store: ObjectStore, episode_id: str, tmp_path: Path) -> None:
    signed_in(client, store)
    before = Catalog(store).view().episode(episode_id)
    form = edit_form(client, episode_id)
    form["title"] = "Trusting Enemies (2nd edition)"
    saved = client.post(f"/edit/{episode_id}", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    after = Catalog(store).view().episode(episode_id)
    assert after.title == "Trusting Enemies (2nd edition)"
    assert (after.guid, after.slug, after.files["audio"].filename) == (
        before.guid, before.slug, before.files["audio"].filename)
    assert after.speakers == before.speakers and after.tags == before.tags
    keys = {key for key, _ in bucket_listing(store)}
    assert before.files["audio"].key not in keys and after.files["audio"].key in keys
    local = tmp_path / "delivery.mp3"
    with local.open("wb") as out:
        store.download_to(after.files["audio"].key, out)
    assert tags.read_tags(local).title == "Trusting Enemies (2nd edition)"
    assert tags.read_tags(local).guid == before.guid
    feed = client.get("/feed.xml").text
    assert "Trusting Enemies (2nd edition)" in feed and before.guid in feed
    media = client.get(f"/media/{episode_id}/{after.files['audio'].filename}")
    assert media.status_code == 200 and media.content == local.read_bytes()
    assert "Saved." in client.get(f"/edit/{episode_id}?saved=details").text


def test_a_stale_edit_form_is_refused_not_merged(client: TestClient, store: ObjectStore,
                                                 episode_id: str) -> None:
    signed_in(client, store)
    first, second = edit_form(client, episode_id), edit_form(client, episode_id)
    first["title"] = "First editor's title"
    second["description"] = "Second editor's description"
    assert client.post(f"/edit/{episode_id}", data=first,
                       follow_redirects=False).status_code == 303
    refused = client.post(f"/edit/{episode_id}", data=second, follow_redirects=False)
    assert refused.status_code == 409 and "Someone else changed" in refused.text
    assert Catalog(store).view().episode(episode_id).title == "First editor's title"


def test_invalid_edits_change_nothing(archive: Archive, store: ObjectStore,
                                      episode_id: str) -> None:
    before = bucket_listing(store)
    for changes in ({"title": ""}, {"date": "2019-13-01"}, {"speakers": [{"role": "x"}]},
                    {"id": "other"}, {"licence": "mine"}):
        with pytest.raises(InvalidInput):
            editing.update_episode(archive, episode_id, changes, "tester")
    assert bucket_listing(store) == before


def test_moving_to_a_new_series_creates_it(archive: Archive, episode_id: str) -> None:
    edited = editing.update_episode(archive, episode_id, {"series": "Keynotes 2024"}, "tester")
    data = archive.catalog.refresh().data
    assert edited.series == "keynotes-2024" and data.series["keynotes-2024"].cover is not None
    assert archive.store.exists("series/keynotes-2024/meta.json")


def test_replacing_artwork_transcript_and_chapters(client: TestClient, store: ObjectStore,
                                                   episode_id: str, tmp_path: Path) -> None:
    signed_in(client, store)
    before = Catalog(store).view().episode(episode_id)
    art = media_samples.write_png(tmp_path / "art.png", size=(1400, 1400))
    vtt = tmp_path / "t.vtt"
    vtt.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello trust.\n")
    chapters = tmp_path / "c.json"
    chapters.write_text(json.dumps({"version": "1.2.0", "chapters": [
        {"startTime": 0, "title": "Opening"}, {"startTime": 1, "title": "Argument"}]}))
    html = client.get(f"/edit/{episode_id}").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
    with art.open("rb") as a, vtt.open("rb") as t, chapters.open("rb") as c:
        saved = client.post(f"/edit/{episode_id}/files", data={"csrf": csrf},
                            files={"artwork": ("../x.png", a), "transcript": ("t.vtt", t),
                                   "chapters": ("c.json", c)}, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    after = Catalog(store).view().episode(episode_id)
    assert {"cover", "transcript", "chapters"} <= set(after.files)
    assert [c.title for c in after.chapters] == ["Opening", "Argument"]
    assert after.files["audio"].sha256 != before.files["audio"].sha256  # cover + chapters tagged
    transcript = client.get(f"/media/{episode_id}/transcript.vtt")
    assert transcript.status_code == 200 and "Hello trust." in transcript.text
    listed = {key for key, _ in bucket_listing(store) if key.startswith("episodes/")}
    named = {f.key for f in after.files.values()} | {f"episodes/{episode_id}/meta.json"}
    assert listed == named  # nothing replaced is left behind


def test_bad_sidecars_are_refused_before_anything_changes(client: TestClient,
                                                          store: ObjectStore,
                                                          episode_id: str) -> None:
    csrf = signed_in(client, store)
    before = bucket_listing(store)
    refused = client.post(f"/edit/{episode_id}/files", data={"csrf": csrf},
                          files={"transcript": ("t.vtt", b"not a transcript at all")})
    assert refused.status_code == 422
    assert bucket_listing(store) == before


def test_unpublish_and_publish(client: TestClient, store: ObjectStore, episode_id: str) -> None:
    csrf = signed_in(client, store)
    slug = Catalog(store).view().episode(episode_id).slug
    hidden = client.post(f"/edit/{episode_id}/publish", data={"csrf": csrf,
                                                              "action": "unpublish"})
    assert hidden.status_code == 200 and "draft" in hidden.text
    assert client.get("/api/episodes").json()["total"] == 0
    assert slug not in client.get("/feed.xml").text
    shown = client.post(f"/edit/{episode_id}/publish", data={"csrf": csrf, "action": "publish"})
    assert shown.status_code == 200
    assert client.get("/api/episodes").json()["total"] == 1
    assert slug in client.get("/feed.xml").text


def test_delete_removes_every_object_and_the_feed_entry(client: TestClient, store: ObjectStore,
                                                        episode_id: str) -> None:
    csrf = signed_in(client, store)
    guid = Catalog(store).view().episode(episode_id).guid
    # The app revalidates its catalogue within its window: the episode shows up in the feed.
    assert wait_until(lambda: guid in client.get("/feed.xml").text, timeout=10)
    deleted = client.post(f"/edit/{episode_id}/delete", data={"csrf": csrf},
                          follow_redirects=False)
    assert deleted.status_code == 303 and deleted.headers["location"] == "/edit?deleted=1"
    assert not [k for k, _ in bucket_listing(store) if k.startswith(f"episodes/{episode_id}")]
    assert episode_id not in Catalog(store).view().data.episodes
    assert guid not in client.get("/feed.xml").text
    assert client.post(f"/edit/{episode_id}/delete", data={"csrf": csrf}).status_code == 404


def test_concurrent_edits_of_one_episode_never_lose_one_silently(archive: Archive,
                                                                 episode_id: str) -> None:
    stale = editing.revision(archive.catalog.refresh().episode(episode_id))
    editing.update_episode(archive, episode_id, {"tags": ["first"]}, "a")
    with pytest.raises(Conflict):
        editing.update_episode(archive, episode_id, {"tags": ["second"]}, "b",
                               expected_revision=stale)
    assert archive.catalog.refresh().episode(episode_id).tags == ["first"]


def test_the_audit_log_records_who_did_what(client: TestClient, store: ObjectStore,
                                            episode_id: str) -> None:
    csrf = signed_in(client, store)
    client.post(f"/edit/{episode_id}/publish", data={"csrf": csrf, "action": "unpublish"})
    client.post(f"/edit/{episode_id}/delete", data={"csrf": csrf})
    page = client.get("/audit")
    assert page.status_code == 200
    rows = re.findall(r"<tr>\s*<td><time[^>]*>([^<]+)</time></td>\s*<td>([^<]+)</td>\s*"
                      r"<td>([^<]+)</td>\s*<td>([^<]*)</td>", page.text)
    assert [(who, what, which) for _, who, what, which in rows[:3]] == [
        ("editor", "episode.delete", episode_id), ("editor", "episode.update", episode_id),
        ("editor", "session.login", "editor")]
    client.cookies.clear()
    assert client.get("/audit", follow_redirects=False).status_code == 303
