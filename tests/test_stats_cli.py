"""`archive stats`: per-episode rows as a table or CSV (header with id, title, downloads and a
method column), the original and sidecars apart, finished days rolled up on the way."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from archive.catalog import Catalog
from archive.config import Settings
from archive.models import MediaFile
from archive.stats.events import DAILY_PREFIX, REQUESTS
from archive.stats.listeners import KEYS_PREFIX
from archive.storage import ObjectStore
from tests.cli import run_cli
from tests.stats_helpers import ANTENNAPOD, hit, id3_file, put_media, recorder
from tests.test_web_media import publish


def _day_ago(days: int, clock: str = "10:00:00") -> float:
    day = datetime.now(UTC).date() - timedelta(days=days)
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=UTC).timestamp()


def test_csv_per_episode_with_method_original_and_sidecars(
        settings: Settings, store: ObjectStore, catalog: Catalog, tmp_path: Path) -> None:
    episode = publish(catalog, "Trusting Enemies")
    audio: MediaFile = episode.files["audio"]
    original = put_media(store, episode.id, "original.wav", id3_file(100, 5000))
    rec = recorder(store, tmp_path)
    for address in ("192.0.2.1", "192.0.2.2"):  # two listeners, the whole (short) file, 2 days ago
        rec.record(hit(audio, _day_ago(2), address, ANTENNAPOD, 0, audio.size,
                       episode_id=episode.id, series=episode.series))
    rec.record(hit(original, _day_ago(2), "192.0.2.1", ANTENNAPOD, 0, original.size,
                   episode_id=episode.id, series=episode.series, role="original"))
    rec.record(hit(audio, _day_ago(2), "192.0.2.1", ANTENNAPOD, 0, 100, episode_id=episode.id,
                   series=episode.series, role="transcript"))
    rec.record(hit(audio, _day_ago(0), "192.0.2.3", ANTENNAPOD, 0, 0, episode_id=episode.id,
                   series=episode.series, method=REQUESTS))  # today, in redirect mode
    rec.flush()
    assert len(list(store.list(KEYS_PREFIX))) == 2

    result = run_cli(settings, "stats", "--csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["id", "title", "series", "date", "downloads", "method", "original",
                             "sidecars"]
    assert [(r["id"], r["title"], r["downloads"], r["method"], r["original"], r["sidecars"])
            for r in rows] == [(episode.id, "Trusting Enemies", "3", "mixed", "1", "1")]
    # The finished day was rolled up and its key destroyed; today's key stays.
    assert len(list(store.list(DAILY_PREFIX))) == 1
    assert len(list(store.list(KEYS_PREFIX))) == 1

    since = (datetime.now(UTC).date() - timedelta(days=3)).isoformat()
    until = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    table = run_cli(settings, "stats", "--since", since, "--until", until)
    assert table.returncode == 0, table.stderr
    assert "Trusting Enemies" in table.stdout and "Total: 2 (downloads (IAB v2.3))" in table.stdout
    other = run_cli(settings, "stats", "--csv", "--series", "no-such-series")
    assert other.stdout.strip() == "id,title,series,date,downloads,method,original,sidecars"


def test_bad_dates_are_one_line_errors(settings: Settings, store: ObjectStore) -> None:
    for args in (("--since", "2026-02-30"), ("--since", "2026-05-02", "--until", "2026-05-01"),
                 ("--series", "a/b")):
        result = run_cli(settings, "stats", *args)
        assert result.returncode == 1
        assert result.stderr.startswith("archive: ") and result.stderr.count("\n") == 1
