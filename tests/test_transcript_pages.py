"""What pages say about transcripts: where they came from, that one is coming, who speaks,
and the transcript's own page."""

from __future__ import annotations

from typing import Any

from archive.catalog import Catalog, CatalogData
from archive.models import Provenance
from tests.browser import publish_recording

CUES = [(0.0, 2.0, "Good evening."), (2.0, 4.0, "Trust is a relationship.")]


def set_fields(catalog: Catalog, episode_id: str, **fields: Any) -> None:
    def apply(data: CatalogData) -> None:
        for name, value in fields.items():
            setattr(data.episodes[episode_id], name, value)

    catalog.change(apply)


def test_an_automatic_transcript_says_it_may_contain_errors(catalog: Catalog,
                                                            make_client: Any) -> None:
    episode = publish_recording(catalog, "Trusting Enemies", cues=CUES)
    set_fields(catalog, episode.id, transcript_provenance=Provenance("automatic", model="base"))
    page = make_client().get(f"/episodes/{episode.slug}").text
    assert "Automatic transcript: may contain errors." in page
    assert f'href="/episodes/{episode.slug}/transcript"' in page


def test_a_reviewed_or_supplied_transcript_carries_no_caution(catalog: Catalog,
                                                              make_client: Any) -> None:
    reviewed = publish_recording(catalog, "Reviewed", cues=CUES)
    set_fields(catalog, reviewed.id, transcript_provenance=Provenance("reviewed", by="alice"))
    supplied = publish_recording(catalog, "Supplied", cues=CUES)
    client = make_client()
    for episode in (reviewed, supplied):
        page = client.get(f"/episodes/{episode.slug}").text
        assert "may contain errors" not in page and "Good evening." in page


def test_a_transcript_being_prepared_is_announced_and_watched(catalog: Catalog,
                                                              make_client: Any) -> None:
    episode = publish_recording(catalog, "Fresh Upload")
    set_fields(catalog, episode.id, pending=["transcribe"])
    client = make_client()
    page = client.get(f"/episodes/{episode.slug}").text
    assert "Transcript being prepared" in page
    assert f'data-transcript-poll="/api/episodes/{episode.id}"' in page
    watched = client.get(f"/api/episodes/{episode.id}").json()
    assert watched["pending"] == ["transcribe"] and "transcript" not in watched["files"]


def test_a_failed_transcription_does_not_promise_a_transcript(catalog: Catalog,
                                                              make_client: Any) -> None:
    episode = publish_recording(catalog, "No Model Here")
    set_fields(catalog, episode.id, enrichment_errors={"transcribe": "no model"})
    page = make_client().get(f"/episodes/{episode.slug}").text
    assert "being prepared" not in page
    assert "There is no transcript for this recording yet." in page


def test_the_transcript_page_names_speakers_where_they_change(catalog: Catalog,
                                                              make_client: Any) -> None:
    episode = publish_recording(catalog, "Roundtable", cues=CUES)
    vtt = ("WEBVTT\n\n00:00.000 --> 00:02.000\n<v Naomi Head>Good evening.\n\n"
           "00:02.000 --> 00:04.000\n<v Naomi Head>Trust is a relationship.\n\n"
           "00:04.000 --> 00:06.000\n<v Nicholas J Wheeler>It is <b>not</b> &lt;blind&gt;.\n")
    key = episode.files["transcript"].key
    stored = catalog.store.put_bytes(key, vtt.encode(), "text/vtt")
    transcript = episode.files["transcript"]
    transcript.size, transcript.sha256 = stored.size, stored.sha256
    set_fields(catalog, episode.id, files={**episode.files, "transcript": transcript})
    client = make_client()
    page = client.get(f"/episodes/{episode.slug}/transcript")
    assert page.status_code == 200
    assert page.text.count("Naomi Head:") == 1 and page.text.count("Nicholas J Wheeler:") == 1
    assert "It is not &lt;blind&gt;." in page.text
    assert f'href="/episodes/{episode.slug}#t=2"' in page.text
    episode_page = client.get(f"/episodes/{episode.slug}").text
    assert episode_page.count('class="speaker"') == 2


def test_no_transcript_no_transcript_page(catalog: Catalog, make_client: Any) -> None:
    episode = publish_recording(catalog, "Silent")
    client = make_client()
    assert client.get(f"/episodes/{episode.slug}/transcript").status_code == 404
    assert client.get("/episodes/no-such-thing/transcript").status_code == 404
