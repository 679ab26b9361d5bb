"""The same feeds through the parsers podcast apps actually use: podcastparser, feedparser and
Podcast Index's podcast-partytime (Node, installed in tests/js by `make test`)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import feedparser
import podcastparser
import pytest

from feeds import build_feed, podcast_guid
from tests.test_feeds_data import (
    BASE,
    FEED_URL,
    URLS,
    hostile,
    lecture,
    make_channel,
    panel,
    sample_episodes,
)

JS_DIR = Path(__file__).parent / "js"
PARTYTIME_SCRIPT = JS_DIR / "parse_feed.mjs"
INCLUDED_GUIDS = ["4b0e3c8e-8d1f-4a55-9d59-0c0bd1f1f002", "4b0e3c8e-8d1f-4a55-9d59-0c0bd1f1f001"]
LECTURE_PAGE = f"{BASE}/episodes/trusting-enemies-inaugural-lecture"
LECTURE_MEDIA = f"{BASE}/media/a1b2c3d4e5f6"


@pytest.fixture(scope="module")
def xml() -> bytes:
    return build_feed(make_channel(), sample_episodes(), URLS)


@pytest.fixture(scope="module")
def hostile_xml() -> bytes:
    channel = make_channel(title="Trust & <Power> ]]> \x07 🤝", description="a & b <c> ]]>")
    return build_feed(channel, [hostile(), lecture(), panel()], URLS)


# gPodder's podcastparser (strict XML; RSS + iTunes) -------------------------------------------


def test_podcastparser_channel(xml: bytes) -> None:
    feed = podcastparser.parse(FEED_URL, io.BytesIO(xml))
    assert feed["title"] == "Trust in World Politics"
    assert feed["link"] == f"{BASE}/"
    assert feed["cover_url"] == f"{BASE}/static/cover-3000.jpg"
    assert feed["language"] == "en-gb"
    assert feed["type"] == "episodic"
    assert feed["explicit"] is False
    assert feed["itunes_owner"] == {"name": "ICCS Media Team", "email": "iccs-media@example.ac.uk"}
    assert feed["itunes_categories"] == [
        ["Education"],
        ["Society & Culture", "Philosophy"],
        ["Government"],
    ]


def test_podcastparser_episodes(xml: bytes) -> None:
    episodes = podcastparser.parse(FEED_URL, io.BytesIO(xml))["episodes"]
    assert [e["guid"] for e in episodes] == INCLUDED_GUIDS
    lecture_entry = episodes[1]
    assert lecture_entry["title"] == "Trusting Enemies: Inaugural Lecture"
    assert lecture_entry["link"] == LECTURE_PAGE
    assert lecture_entry["published"] == 1741113000  # 2025-03-04 18:30 UTC
    assert lecture_entry["total_time"] == 3606
    assert lecture_entry["enclosures"] == [
        {
            "url": f"{LECTURE_MEDIA}/trusting-enemies.mp3",
            "file_size": 48_123_457,
            "mime_type": "audio/mpeg",
        }
    ]
    assert (lecture_entry["season"], lecture_entry["number"], lecture_entry["type"]) == (
        1,
        1,
        "full",
    )
    assert lecture_entry["episode_art_url"] == f"{LECTURE_MEDIA}/cover.jpg"
    assert lecture_entry["itunes_author"] == "Nicholas J Wheeler, Marie Dupont"
    assert episodes[0]["enclosures"][0]["mime_type"] == "audio/x-m4a"
    assert episodes[0]["enclosures"][0]["file_size"] == 30_000_001


def test_podcastparser_hostile_feed(hostile_xml: bytes) -> None:
    feed = podcastparser.parse(FEED_URL, io.BytesIO(hostile_xml))
    assert " ".join(feed["title"].split()) == "Trust & <Power> ]]> 🤝"  # it folds whitespace
    assert len(feed["episodes"]) == 3
    nasty = next(e for e in feed["episodes"] if e["guid"] == "hostile-guid-0005")
    assert "🤝" in nasty["title"]
    assert "alert" not in nasty["description_html"]


# feedparser (lenient, but reports any well-formedness problem through bozo) ------------------


def test_feedparser_channel(xml: bytes) -> None:
    parsed = feedparser.parse(xml)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    assert parsed.feed.title == "Trust in World Politics"
    assert parsed.feed.link == f"{BASE}/"
    assert parsed.feed.language == "en-gb"
    assert parsed.feed.itunes_type == "episodic"
    # feedparser lets itunes:owner overwrite the author; the owner is what it reports.
    assert parsed.feed.publisher_detail == {
        "name": "ICCS Media Team",
        "email": "iccs-media@example.ac.uk",
    }
    assert parsed.feed.image.href == f"{BASE}/static/cover-3000.jpg"
    assert [t.term for t in parsed.feed.tags] == [
        "Education",
        "Society & Culture",
        "Philosophy",
        "Government",
    ]
    self_links = [link.href for link in parsed.feed.links if link.rel == "self"]
    assert self_links == [FEED_URL]


def test_feedparser_entries(xml: bytes) -> None:
    parsed = feedparser.parse(xml)
    assert [e.id for e in parsed.entries] == INCLUDED_GUIDS
    entry = parsed.entries[1]
    assert entry.guidislink is False
    assert entry.title == "Trusting Enemies: Inaugural Lecture"
    assert entry.link == LECTURE_PAGE
    assert entry.published == "Tue, 04 Mar 2025 18:30:00 +0000"
    assert entry.enclosures == [
        {
            "href": f"{LECTURE_MEDIA}/trusting-enemies.mp3",
            "length": "48123457",
            "type": "audio/mpeg",
        }
    ]
    assert entry.itunes_duration == "3606"
    assert (entry.itunes_season, entry.itunes_episode, entry.itunes_episodetype) == (
        "1",
        "1",
        "full",
    )
    assert entry.author == "Nicholas J Wheeler, Marie Dupont"
    # feedparser 6.0.14 maps itunes:explicit true/false to None; not something we can fix.
    assert entry.get("itunes_explicit") in (None, False)
    assert parsed.entries[0].enclosures[0].length == "30000001"


def test_feedparser_hostile_feed(hostile_xml: bytes) -> None:
    parsed = feedparser.parse(hostile_xml)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert len(parsed.entries) == 3
    nasty = next(e for e in parsed.entries if e.id == "hostile-guid-0005")
    assert "مرحبا" in nasty.title
    assert "alert" not in nasty.summary


# podcast-partytime (Podcast Index; the Podcasting 2.0 tags) -----------------------------------


def _partytime_available() -> None:
    """Fail loudly in CI, skip loudly elsewhere, when Node or the npm install is missing."""
    missing = []
    if shutil.which("node") is None:
        missing.append("node is not on PATH")
    if not (JS_DIR / "node_modules" / "podcast-partytime").is_dir():
        missing.append("tests/js/node_modules is not installed (npm ci --prefix tests/js)")
    if not missing:
        return
    reason = "podcast-partytime checks cannot run: " + "; ".join(missing)
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(f"{reason}. Run `make test`, which installs it.")


def partytime(xml: bytes) -> dict[str, Any]:
    _partytime_available()
    env = {**os.environ, "PARTYTIME_LOG": "silent"}
    result = subprocess.run(
        ["node", str(PARTYTIME_SCRIPT)],
        input=xml,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"partytime rejected the feed: {result.stderr.decode()}"
    parsed = json.loads(result.stdout)
    assert parsed is not None
    return parsed


@pytest.fixture(scope="module")
def party(xml: bytes) -> dict[str, Any]:
    return partytime(xml)


@pytest.fixture(scope="module")
def party_lecture(party: dict[str, Any]) -> dict[str, Any]:
    return next(i for i in party["items"] if i["guid"] == INCLUDED_GUIDS[1])


def test_partytime_rejects_garbage() -> None:
    """Proves the helper can tell a bad feed from a good one."""
    _partytime_available()
    result = subprocess.run(
        ["node", str(PARTYTIME_SCRIPT)],
        input=b"<rss><channel>",
        capture_output=True,
        timeout=60,
        check=False,
        env={**os.environ, "PARTYTIME_LOG": "silent"},
    )
    assert result.returncode == 1
    assert json.loads(result.stdout) is None


def test_partytime_channel(party: dict[str, Any]) -> None:
    assert party["title"] == "Trust in World Politics"
    assert party["itunesImage"] == f"{BASE}/static/cover-3000.jpg"
    assert party["itunesType"] == "episodic"
    assert party["explicit"] is False
    # partytime drops categories Apple does not list: all three must survive.
    assert party["itunesCategory"] == ["Education", "Society & Culture > Philosophy", "Government"]
    assert party["pubsub"]["self"] == FEED_URL
    assert party["owner"] == {"name": "ICCS Media Team", "email": "iccs-media@example.ac.uk"}
    assert party["lastBuildDate"] == "2025-05-21T10:00:00.000Z"


def test_partytime_podcast_namespace_channel(party: dict[str, Any]) -> None:
    assert party["guid"] == podcast_guid(FEED_URL)
    assert party["locked"] is True
    assert party["podcastOwner"] == "iccs-media@example.ac.uk"
    assert party["medium"] == "podcast"
    assert party["license"]["identifier"] == "cc-by-4.0"
    assert party["podcastFunding"] == [
        {"message": "Support our research", "url": f"{BASE}/support"}
    ]
    assert party["podcastPeople"] == [{"name": "Lucy Harvey", "role": "Host", "group": "Cast"}]


def test_partytime_items(party: dict[str, Any], party_lecture: dict[str, Any]) -> None:
    assert [i["guid"] for i in party["items"]] == INCLUDED_GUIDS  # none dropped
    assert party_lecture["enclosure"] == {
        "url": f"{LECTURE_MEDIA}/trusting-enemies.mp3",
        "length": 48_123_457,
        "type": "audio/mpeg",
    }
    assert party_lecture["duration"] == 3606
    assert party_lecture["pubDate"] == "2025-03-04T18:30:00.000Z"
    assert party_lecture["itunesImage"] == f"{LECTURE_MEDIA}/cover.jpg"
    assert (party_lecture["itunesSeason"], party_lecture["itunesEpisode"]) == (1, 1)
    assert party_lecture["podcastSeason"] == {"number": 1}
    assert party_lecture["podcastEpisode"] == {"number": 1}


def test_partytime_transcripts_and_chapters(party_lecture: dict[str, Any]) -> None:
    assert party_lecture["podcastTranscripts"] == [
        {
            "url": f"{LECTURE_MEDIA}/transcript.vtt",
            "type": "text/vtt",
            "language": "en-gb",
            "rel": "captions",
        },
        {
            "url": f"{LECTURE_MEDIA}/transcript.srt",
            "type": "application/srt",
            "language": "en-gb",
            "rel": "captions",
        },
        {
            "url": f"{LECTURE_MEDIA}/transcript.json",
            "type": "application/json",
            "language": "en-gb",
        },
        {
            "url": f"{LECTURE_PAGE}/transcript",
            "type": "text/html",
            "language": "en-gb",
        },
    ]
    assert party_lecture["podcastChapters"] == {
        "url": f"{LECTURE_MEDIA}/chapters.json",
        "type": "application/json+chapters",
    }


def test_partytime_persons_keep_mapped_roles(
    party: dict[str, Any], party_lecture: dict[str, Any]
) -> None:
    """partytime turns unknown roles into Host, so the role strings prove the mapping is valid."""
    assert party_lecture["podcastPeople"] == [
        {"name": "Nicholas J Wheeler", "role": "Guest", "group": "Cast"},
        {
            "name": "Marie Dupont",
            "role": "Host",
            "group": "Cast",
            "href": "https://orcid.org/0000-0002-1825-0097",
        },
        {"name": "Lucy Harvey", "role": "Host", "group": "Cast"},
    ]
    panel_item = party["items"][0]
    roles = {(p["name"], p["role"], p["group"]) for p in panel_item["podcastPeople"]}
    assert roles == {
        ("Ana Silva", "Host", "Cast"),
        ("Tom Baker", "Guest", "Cast"),
        ("Priya Rao", "Guest", "Cast"),
        ("Li Wei", "Production Coordinator", "Administration"),
        ("Lucy Harvey", "Host", "Cast"),
    }


def test_partytime_location(party_lecture: dict[str, Any]) -> None:
    assert party_lecture["podcastLocation"] == {
        "name": "Aston Webb Great Hall, Birmingham",
        "osm": "W26992925",
        "geo": "geo:52.4508,-1.9305",
    }


def test_partytime_alternate_enclosures(party_lecture: dict[str, Any]) -> None:
    video, original = party_lecture["alternativeEnclosures"]
    assert video["type"] == "video/mp4"
    assert video["length"] == 512_000_001
    assert video["title"] == "Video"
    assert video["source"] == [
        {"uri": f"{LECTURE_MEDIA}/trusting-enemies.mp4", "contentType": "video/mp4"}
    ]
    assert video["integrity"]["type"] == "sri"
    assert video["integrity"]["value"].startswith("sha256-")
    assert original["title"] == "Original recording"
    assert original["length"] == 2_000_000_003


def test_partytime_serial_and_moved_feed() -> None:
    channel = make_channel(
        type="serial",
        medium="course",
        locked=False,
        new_feed_url=f"{BASE}/new/feed.xml",
        podcast_guid=podcast_guid(FEED_URL),
    )
    parsed = partytime(build_feed(channel, sample_episodes(), URLS))
    assert parsed["itunesType"] == "serial"
    assert parsed["medium"] == "course"
    assert parsed["guid"] == podcast_guid(FEED_URL)
    assert all(item["itunesEpisode"] >= 1 for item in parsed["items"])


def test_partytime_hostile_feed(hostile_xml: bytes) -> None:
    parsed = partytime(hostile_xml)
    assert len(parsed["items"]) == 3
    nasty = next(i for i in parsed["items"] if i["guid"] == "hostile-guid-0005")
    assert "🤝" in nasty["title"]
    assert "alert" not in nasty["description"]
