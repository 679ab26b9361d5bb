"""Mutation fuzzing through `archive ingest`: every damaged recording is ingested properly or
refused with one readable line, the bucket unchanged on refusal, and nothing hangs."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from archive.catalog import Catalog
from archive.config import Settings
from archive.storage import ObjectStore
from tests import media_samples
from tests.cli import run_cli
from tests.conftest import bucket_listing

pytestmark = pytest.mark.slow
Mutation = Callable[[bytes], bytes]


def truncate(fraction: float) -> Mutation:
    return lambda data: data[: int(len(data) * fraction)]


def flip_bytes(count: int, seed: int) -> Mutation:
    def mutate(data: bytes) -> bytes:
        rng = random.Random(seed)
        damaged = bytearray(data)
        for _ in range(count):
            position = rng.randrange(len(damaged))
            damaged[position] ^= 1 << rng.randrange(8)
        return bytes(damaged)

    return mutate


def zero_header(size: int) -> Mutation:
    return lambda data: b"\x00" * size + data[size:]


def swap_container(other: bytes) -> Mutation:
    """The head of one format glued onto the body of another."""
    return lambda data: other[:4096] + data[4096:]


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("fuzz")
    return {fmt: media_samples.make_recording(folder / f"s.{fmt}", fmt, seconds=2.0,
                                              frequency=300 + 40 * n).read_bytes()
            for n, fmt in enumerate(("mp3", "m4a", "wav", "flac", "ogg"))}


CASES: list[tuple[str, str, Callable[[dict[str, bytes]], Mutation]]] = [
    ("mp3", "truncated to 50%", lambda s: truncate(0.5)),
    ("mp3", "truncated to 2%", lambda s: truncate(0.02)),
    ("mp3", "20 bits flipped", lambda s: flip_bytes(20, 1)),
    ("mp3", "header zeroed", lambda s: zero_header(512)),
    ("m4a", "truncated to 60%", lambda s: truncate(0.6)),
    ("m4a", "header zeroed", lambda s: zero_header(64)),
    ("m4a", "200 bits flipped", lambda s: flip_bytes(200, 2)),
    ("wav", "header zeroed", lambda s: zero_header(44)),
    ("wav", "MP3 head on a WAV body", lambda s: swap_container(s["mp3"])),
    ("flac", "truncated to 30%", lambda s: truncate(0.3)),
    ("flac", "500 bits flipped", lambda s: flip_bytes(500, 3)),
    ("ogg", "FLAC head on an OGG body", lambda s: swap_container(s["flac"])),
]


@pytest.mark.parametrize(("fmt", "damage", "mutation"), CASES,
                         ids=[f"{fmt}-{damage}" for fmt, damage, _ in CASES])
def test_damaged_recording_is_ingested_or_refused(
    settings: Settings, store: ObjectStore, tmp_path: Path, sources: dict[str, bytes],
    fmt: str, damage: str, mutation: Callable[[dict[str, bytes]], Mutation],
) -> None:
    path = tmp_path / f"damaged.{fmt}"
    path.write_bytes(mutation(sources)(sources[fmt]))
    before = bucket_listing(store)
    result = run_cli(settings, "ingest", path, "--title", f"Damaged {fmt}", "--series", "Fuzz",
                     timeout=120)
    if result.returncode == 0:
        episode = Catalog(store).view().episode(result.stdout.split()[-2])
        assert episode.files["audio"].duration and episode.files["audio"].duration > 0
        assert run_cli(settings, "verify").returncode == 0
    else:
        assert result.returncode == 1
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith("archive: ") and "Traceback" not in result.stderr, result.stderr
        assert bucket_listing(store) == before
