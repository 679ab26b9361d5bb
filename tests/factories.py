"""Small data factories for tests that need catalogue entries without real recordings."""

from __future__ import annotations

import hashlib
from typing import Any

from archive.models import Episode, MediaFile, Person


def media_file(episode_id: str, name: str = "talk.mp3", data: bytes = b"ID3 fake audio",
               content_type: str = "audio/mpeg", **extra: Any) -> MediaFile:
    return MediaFile(
        key=f"episodes/{episode_id}/{name}",
        filename=name,
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        **extra,
    )


def make_episode(title: str = "Roundtable: The Social Construction of Trust",
                 **fields: Any) -> Episode:
    episode = Episode.new(
        title=title,
        series=fields.pop("series", "roundtables"),
        speakers=fields.pop("speakers", [Person(name="Nicholas J Wheeler", role="chair",
                                                affiliation="University of Birmingham")]),
        **fields,
    )
    if not episode.files:
        episode.files = {"audio": media_file(episode.id, duration=60.0)}
    return episode
