"""Realistic episodes and channels shared by the feed tests (factories, plus checks on them)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Any

from archive.models import Episode, MediaFile, Person
from feeds import BaseUrls, Channel

BASE = "https://trust.example.ac.uk"
FEED_URL = f"{BASE}/feed.xml"
URLS = BaseUrls(BASE)
CHANNEL_HOST = Person.parse("Lucy Harvey;host;University of Birmingham")


def media(filename: str, size: int, content_type: str, **extra: Any) -> MediaFile:
    """A stored file with a real checksum of its name (stands in for its bytes)."""
    digest = hashlib.sha256(filename.encode()).hexdigest()
    return MediaFile(
        key=f"episodes/x/{filename}",
        filename=filename,
        content_type=content_type,
        size=size,
        sha256=digest,
        **extra,
    )


def make_channel(**overrides: Any) -> Channel:
    fields: dict[str, Any] = {
        "title": "Trust in World Politics",
        "link": f"{BASE}/",
        "feed_url": FEED_URL,
        "description": "Lectures, seminars and panels on trust and mistrust between states.",
        "author": "Institute for Conflict, Cooperation and Security",
        "owner_name": "ICCS Media Team",
        "owner_email": "iccs-media@example.ac.uk",
        "image_url": f"{BASE}/static/cover-3000.jpg",
        "categories": (
            ("Education", None),
            ("Society & Culture", "Philosophy"),
            ("Government", None),
        ),
        "locked_owner": "iccs-media@example.ac.uk",
        "license": "cc-by-4.0",
        "funding_url": f"{BASE}/support",
        "funding_text": "Support our research",
        "copyright": "© 2025 University of Birmingham",
        "persons": (CHANNEL_HOST,),
    }
    fields.update(overrides)
    return Channel(**fields)


def lecture(**overrides: Any) -> Episode:
    """A video lecture with every sidecar: the richest item a feed can carry."""
    fields: dict[str, Any] = {
        "id": "a1b2c3d4e5f6",
        "guid": "4b0e3c8e-8d1f-4a55-9d59-0c0bd1f1f001",
        "title": "Trusting Enemies: Inaugural Lecture",
        "series": "trust-lectures",
        "date": date(2025, 3, 4),
        "description": (
            "How can adversaries come to trust each other?\n\n"
            'Professor Wheeler draws on <a href="https://example.org/book">Trusting Enemies</a> '
            "and the end of the Cold War."
        ),
        "speakers": [
            Person.parse("Nicholas J Wheeler;lecturer;University of Birmingham"),
            Person.from_dict(
                {"name": "Marie Dupont", "role": "chair", "orcid": "0000-0002-1825-0097"}
            ),
        ],
        "licence": "cc-by-4.0",
        "location": {
            "name": "Aston Webb Great Hall, Birmingham",
            "geo": "geo:52.4508,-1.9305",
            "osm": "W26992925",
            "country": "GB",
        },
        "language": "en-gb",
        "season": 1,
        "number": 1,
        "files": {
            "audio": media("trusting-enemies.mp3", 48_123_457, "audio/mpeg", duration=3605.6),
            "video": media(
                "trusting-enemies.mp4", 512_000_001, "video/mp4", height=720, duration=3605.6
            ),
            "original": media("original.mov", 2_000_000_003, "video/quicktime"),
            "cover": media("cover.jpg", 345_678, "image/jpeg"),
            "transcript": media("transcript.vtt", 98_765, "text/vtt"),
            "transcript_source": media("transcript.srt", 99_001, "application/x-subrip"),
            "transcript_json": media("transcript.json", 120_456, "application/json"),
            "chapters": media("chapters.json", 1_234, "application/json"),
        },
        "published_at": datetime(2025, 3, 4, 18, 30, tzinfo=UTC),
        "updated_at": datetime(2025, 3, 6, 9, 15, tzinfo=UTC),
    }
    fields.update(overrides)
    return Episode.new(**fields)


def panel(**overrides: Any) -> Episode:
    """An audio-only panel (M4A) with academic roles the taxonomy does not have."""
    fields: dict[str, Any] = {
        "id": "b2c3d4e5f6a7",
        "guid": "4b0e3c8e-8d1f-4a55-9d59-0c0bd1f1f002",
        "title": "Panel: Trust and the Nuclear Order",
        "series": "trust-seminars",
        "date": date(2025, 5, 20),
        "description": "A panel discussion.",
        "speakers": [
            Person.parse("Ana Silva;chair;LSE"),
            Person.parse("Tom Baker;discussant;King's College London"),
            Person.parse("Priya Rao;panellist;SOAS"),
            Person.parse("Li Wei;organiser;University of Birmingham"),
        ],
        "season": 1,
        "number": 2,
        "episode_type": "full",
        "files": {
            "audio": media("trust-nuclear-order.m4a", 30_000_001, "audio/mp4", duration=2700.4)
        },
        "published_at": datetime(2025, 5, 21, 10, 0, tzinfo=UTC),
        "updated_at": datetime(2025, 5, 21, 10, 0, tzinfo=UTC),
    }
    fields.update(overrides)
    return Episode.new(**fields)


def draft() -> Episode:
    return panel(
        id="c3d4e5f6a7b8",
        guid="draft-guid-0003",
        title="Unfinished draft",
        draft=True,
        published_at=datetime(2025, 6, 1, tzinfo=UTC),
    )


def without_audio() -> Episode:
    return panel(
        id="d4e5f6a7b8c9",
        guid="no-audio-guid-0004",
        title="Slides only",
        files={},
        published_at=datetime(2025, 6, 2, tzinfo=UTC),
    )


def sample_episodes() -> list[Episode]:
    """Oldest first on purpose: the feed must reorder them."""
    return [lecture(), panel(), draft(), without_audio()]


HOSTILE_TITLE = "Trust & <Mistrust> ]]> \x01\x0b in the \u202e Middle East: مرحبا 🤝 \ufffe end"


def hostile() -> Episode:
    """Metadata an attacker (or a careless paste) could produce; the feed must stay well-formed."""
    body = "Intro & <b>bold</b> ]]> \x02 🤝 שלום עולם "
    script = "<script>alert('pwned')</script><style>p{}</style>"
    description = body + script + ("A" * 5000) + ' <a href="javascript:alert(1)">bad</a>'
    episode = lecture(
        id="e5f6a7b8c9d0",
        guid="hostile-guid-0005",
        title="placeholder",
        description="placeholder",
        published_at=datetime(2025, 7, 1, tzinfo=UTC),
        updated_at=datetime(2025, 7, 1, tzinfo=UTC),
    )
    # The model strips control characters; set them directly to prove the feed is defensive too.
    episode.title = HOSTILE_TITLE
    episode.description = description
    episode.speakers[0].name = "Dr <Evil> & \x03 Sons 🤖"
    return episode


def test_sample_episodes_are_realistic() -> None:
    episodes = sample_episodes()
    assert [e.draft for e in episodes] == [False, False, True, False]
    assert episodes[0].files["audio"].sha256 == hashlib.sha256(b"trusting-enemies.mp3").hexdigest()
    assert episodes[0].speakers[0].role == "lecturer"
