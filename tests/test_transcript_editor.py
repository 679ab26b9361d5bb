"""The transcript editor: corrections and speakers reach the VTT, SRT, JSON, search, page and
feed; revisions protect concurrent editors; only editors may change anything."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from starlette.testclient import TestClient

from archive.catalog import Catalog, CatalogData
from archive.models import Episode, Person, Provenance
from archive.storage import ObjectStore
from tests.browser import publish_recording
from tests.conftest import bucket_listing
from tests.test_auth import add_editor, sign_in

CUES = [(0.0, 2.0, "Good evening everyone."), (2.0, 4.0, "Trust in Gorbachov was earned.")]
SPEAKERS = [Person(name="Nicholas J Wheeler", role="chair"),
            Person(name="Naomi Head", role="panellist")]


@pytest.fixture
def episode(catalog: Catalog) -> Episode:
    episode = publish_recording(catalog, "Trusting Enemies", cues=CUES, speakers=SPEAKERS)

    def automatic(data: CatalogData) -> None:
        data.episodes[episode.id].transcript_provenance = Provenance("automatic", model="base")

    catalog.change(automatic)
    return catalog.refresh().data.episodes[episode.id]


@pytest.fixture
def editor(make_client: Any, store: ObjectStore) -> TestClient:
    client: TestClient = make_client()
    add_editor(store)
    sign_in(client)
    return client


def form_of(client: TestClient, episode_id: str) -> dict[str, Any]:
    html = client.get(f"/edit/{episode_id}/transcript").text
    return {
        "csrf": re.search(r'name="csrf" value="([^"]+)"', html).group(1),  # type: ignore[union-attr]
        "revision": re.search(r'name="revision" value="([^"]+)"', html).group(1),  # type: ignore[union-attr]
        "text": re.findall(r'<textarea[^>]*name="text"[^>]*>([^<]*)</textarea>', html),
        "speaker": ["" for _ in re.findall(r'name="speaker"', html)],
    }


def read(store: ObjectStore, key: str) -> str:
    return b"".join(store.open(key)).decode()


def test_a_corrected_word_and_a_speaker_reach_every_form_of_the_transcript(
        editor: TestClient, episode: Episode, catalog: Catalog, store: ObjectStore) -> None:
    form = form_of(editor, episode.id)
    assert form["text"] == ["Good evening everyone.", "Trust in Gorbachov was earned."]
    form["text"][1] = "Trust in Gorbachev was earned."
    form["speaker"] = ["Nicholas J Wheeler", "Naomi Head"]
    saved = editor.post(f"/edit/{episode.id}/transcript", data=form, follow_redirects=False)
    assert saved.status_code == 303, saved.text

    after = catalog.refresh().data.episodes[episode.id]
    assert after.transcript_provenance is not None
    assert (after.transcript_provenance.kind, after.transcript_provenance.by) == (
        "edited", "editor")
    vtt = read(store, after.files["transcript"].key)
    assert "<v Naomi Head>Trust in Gorbachev was earned." in vtt
    assert "Naomi Head: Trust in Gorbachev" in read(store, after.files["transcript_srt"].key)
    segments = json.loads(read(store, after.files["transcript_json"].key))["segments"]
    assert segments[1] == {"startTime": 2.0, "endTime": 4.0, "speaker": "Naomi Head",
                           "body": "Trust in Gorbachev was earned."}
    keys = {key for key, _ in bucket_listing(store)}
    assert episode.files["transcript"].key not in keys  # the replaced file is gone

    found = editor.get("/search", params={"q": "Gorbachev"}).text
    assert "Trusting Enemies" in found and "#t=2" in found
    page = editor.get(f"/episodes/{episode.slug}").text
    assert "partly corrected" in page and "Naomi Head:" in page
    feed = editor.get("/feed.xml").text
    assert after.files["transcript"].key.split("/")[-2] not in feed  # URLs name files, not keys
    assert f"/media/{episode.id}/transcript.json" in feed


def test_save_and_mark_reviewed_removes_the_caution(editor: TestClient, episode: Episode,
                                                    catalog: Catalog) -> None:
    form = form_of(editor, episode.id)
    form["action"] = "review"
    assert editor.post(f"/edit/{episode.id}/transcript", data=form,
                       follow_redirects=False).status_code == 303
    after = catalog.refresh().data.episodes[episode.id]
    assert after.transcript_provenance is not None and after.transcript_provenance.reviewed
    assert "may contain errors" not in editor.get(f"/episodes/{episode.slug}").text
    assert "Trusting Enemies" not in editor.get("/edit/transcripts").text.split("<h2")[0]


def test_two_editors_saving_the_same_revision_do_not_overwrite_each_other(
        editor: TestClient, episode: Episode, catalog: Catalog) -> None:
    first, second = form_of(editor, episode.id), form_of(editor, episode.id)
    first["text"][0] = "Good evening, everyone."
    second["text"][0] = "Good evening all."
    assert editor.post(f"/edit/{episode.id}/transcript", data=first,
                       follow_redirects=False).status_code == 303
    late = editor.post(f"/edit/{episode.id}/transcript", data=second,
                       headers={"accept": "application/json"})
    assert late.status_code == 409 and "reload" in late.json()["error"]
    assert catalog.refresh().data.episodes[episode.id].transcript_provenance.kind == "edited"  # type: ignore[union-attr]


@pytest.mark.parametrize(("change", "status"), [
    ({"speaker": ["Somebody Else", ""]}, 422),
    ({"text": ["", "x"]}, 422),
    ({"speaker": [""]}, 400),
])
def test_bad_corrections_are_refused(editor: TestClient, episode: Episode, catalog: Catalog,
                                     store: ObjectStore, change: dict[str, Any],
                                     status: int) -> None:
    form = {**form_of(editor, episode.id), **change}
    before = bucket_listing(store)
    answer = editor.post(f"/edit/{episode.id}/transcript", data=form,
                         headers={"accept": "application/json"})
    assert answer.status_code == status, answer.text
    assert bucket_listing(store) == before  # nothing stored, nothing left behind


def test_only_signed_in_editors_with_the_form_token_may_save(
        make_client: Any, editor: TestClient, episode: Episode) -> None:
    form = form_of(editor, episode.id)
    stranger = make_client()
    assert stranger.post(f"/edit/{episode.id}/transcript", data=form,
                         headers={"accept": "application/json"}).status_code == 401
    assert stranger.get(f"/edit/{episode.id}/transcript",
                        follow_redirects=False).status_code == 303
    forged = editor.post(f"/edit/{episode.id}/transcript", data={**form, "csrf": "x"},
                         headers={"accept": "application/json"})
    assert forged.status_code == 403
    cross_site = editor.post(f"/edit/{episode.id}/transcript", data=form,
                             headers={"sec-fetch-site": "cross-site"})
    assert cross_site.status_code == 403


def test_the_review_list_shows_what_waits(editor: TestClient, episode: Episode,
                                          catalog: Catalog) -> None:
    waiting = publish_recording(catalog, "Fresh Upload")

    def pending(data: CatalogData) -> None:
        data.episodes[waiting.id].pending = ["transcribe"]

    catalog.change(pending)
    page = editor.get("/edit/transcripts").text
    assert f'href="/edit/{episode.id}/transcript"' in page
    assert "Being prepared" in page and "Fresh Upload" in page
