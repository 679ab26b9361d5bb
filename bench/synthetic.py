"""Synthetic catalogues: many realistic-looking episodes committed in one conditional write."""

from __future__ import annotations

import random
from datetime import date, timedelta

from archive.catalog import Catalog, CatalogData
from archive.models import Episode, MediaFile, Person, Series

WORDS = (
    "trust", "diplomacy", "deception", "security", "dilemma", "empathy", "cooperation",
    "nuclear", "summit", "leaders", "enemies", "reconciliation", "verification", "signalling",
    "alliance", "mediation", "conflict", "transformation", "rivalry", "interpersonal",
    "institutions", "norms", "sanctions", "negotiation", "uncertainty", "vulnerability",
    "betrayal", "reassurance", "credibility", "commitment",
)
SERIES = ("Roundtables", "Workshops", "Lectures", "Training programmes", "Conferences")
PEOPLE = [f"{first} {last}" for first in ("Ann", "Ben", "Cara", "Dev", "Ema", "Fin", "Gia")
          for last in ("Holmes", "Head", "Keating", "Ruzicka", "Booth", "Larson", "Wheeler")]


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "."


def synthetic_episode(n: int, rng: random.Random, audio: MediaFile | None = None) -> Episode:
    episode = Episode.new(
        title=f"{sentence(rng, 5)[:-1]} ({n})",
        series=rng.choice(SERIES).lower().replace(" ", "-"),
        date=date(2010, 1, 1) + timedelta(days=rng.randrange(5000)),
        description=" ".join(sentence(rng, 14) for _ in range(4)),
        speakers=[Person(name=rng.choice(PEOPLE), role=rng.choice(("chair", "speaker",
                                                                    "panellist")),
                         affiliation="University of Birmingham") for _ in range(3)],
        tags=rng.sample(WORDS, 3),
    )
    episode.files["audio"] = audio or MediaFile(
        key=f"episodes/{episode.id}/talk.mp3", filename="talk.mp3", content_type="audio/mpeg",
        size=rng.randrange(10_000_000, 90_000_000), sha256="0" * 64,
        duration=float(rng.randrange(600, 7200)))
    return episode


def add_synthetic(catalog: Catalog, count: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    episodes = [synthetic_episode(n, rng) for n in range(count)]

    def apply(data: CatalogData) -> None:
        for title in SERIES:
            series = Series.new(title)
            data.series.setdefault(series.slug, series)
        for episode in episodes:
            episode.slug = f"{episode.slug}-{episode.id}"
            data.episodes[episode.id] = episode

    catalog.change(apply, check_new_keys=False)  # synthetic: no media objects
