"""The IAB v2.3 count on generated request logs whose answer is known by hand.

Events go through the real recorder into the real bucket (Parquet), are rolled up by DuckDB,
and come back through the report the pages use.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from archive.config import Settings
from archive.models import MediaFile
from archive.runtime import make_store
from archive.stats.events import DAILY_PREFIX, EVENTS_PREFIX, REQUESTS
from archive.stats.listeners import KEYS_PREFIX, network_of
from archive.stats.query import Filters, build_report
from archive.stats.recorder import Recorder
from archive.stats.rollup import roll_up_due
from archive.stats.thresholds import Layout, layout_of, threshold
from archive.storage import ObjectStore
from tests.stats_helpers import (
    ANTENNAPOD,
    CURL,
    FIREFOX,
    GOOGLEBOT,
    POCKETCASTS,
    at,
    hit,
    id3_file,
    put_media,
    recorder,
)

DAY1, DAY2 = "2026-11-02", "2026-11-03"
TAG = 40_000
SIZE = 2_000_000
# 128 kb/s: a minute is 960,000 bytes; with the 40,000-byte tag, 1,000,000 make a download.
THRESHOLD = 1_000_000


def test_threshold_is_the_tag_plus_one_minute_of_audio() -> None:
    data = id3_file(TAG, SIZE)
    layout = layout_of(lambda first, last: data[first:last + 1], len(data))
    assert layout == Layout(TAG, 0)
    assert threshold(SIZE, 120.0, 128_000, layout) == THRESHOLD
    # Without a known bitrate: the audio bytes over the duration.
    assert threshold(SIZE, 120.0, None, layout) == TAG + (SIZE - TAG) // 2
    assert threshold(300_000, 30.0, 128_000, layout) == 300_000  # short: the whole file
    assert threshold(SIZE, None, None, layout) == SIZE  # unknown duration: the whole file


def test_mp4_header_is_everything_before_mdat() -> None:
    def box(kind: bytes, payload: int) -> bytes:
        return (8 + payload).to_bytes(4, "big") + kind + b"\x00" * payload

    data = box(b"ftyp", 16) + box(b"moov", 70_000) + box(b"mdat", 100_000) + box(b"udta", 10)
    layout = layout_of(lambda first, last: data[first:last + 1], len(data))
    assert layout == Layout(24 + 70_008 + 8, 18)


def test_ipv6_listeners_are_grouped_by_their_64() -> None:
    grouped = network_of("2001:db8:1:2::a")
    assert grouped == network_of("2001:db8:1:2:ffff::b") == "2001:db8:1:2::/64"
    assert network_of("2001:db8:1:3::a") != network_of("2001:db8:1:2::a")
    assert network_of("::ffff:192.0.2.7") == "192.0.2.7"
    assert network_of("192.0.2.7") == "192.0.2.7"


@pytest.fixture
def files(store: ObjectStore) -> dict[str, object]:
    return {
        "long": put_media(store, "ep1", "long.mp3", id3_file(TAG, SIZE), duration=120.0,
                          bitrate=128_000),
        "short": put_media(store, "ep2", "short.mp3", id3_file(TAG, 300_000), duration=30.0,
                           bitrate=64_000),
    }


def test_known_answers_across_ranges_probes_bots_days_and_networks(
        store: ObjectStore, files: dict[str, object], tmp_path: Path) -> None:
    long, short = files["long"], files["short"]
    rec = recorder(store, tmp_path)
    log = [
        # A: two ranges that add up to exactly the threshold -> 1
        hit(long, at(DAY1, "08:00:00"), "192.0.2.1", ANTENNAPOD, 0, 500_000),
        hit(long, at(DAY1, "08:00:05"), "192.0.2.1", ANTENNAPOD, 500_000, 500_000),
        # A again later that day, the whole file -> still 1 (one per listener per day)
        hit(long, at(DAY1, "20:00:00"), "192.0.2.1", ANTENNAPOD, 0, SIZE),
        # B: the same 600,000 bytes twice -> received 600,000, not a download
        hit(long, at(DAY1, "09:00:00"), "192.0.2.2", ANTENNAPOD, 0, 600_000),
        hit(long, at(DAY1, "09:00:01"), "192.0.2.2", ANTENNAPOD, 0, 600_000),
        # C: overlapping ranges covering the threshold -> 1
        hit(long, at(DAY1, "10:00:00"), "192.0.2.3", POCKETCASTS, 0, 700_000),
        hit(long, at(DAY1, "10:00:02"), "192.0.2.3", POCKETCASTS, 600_000, 400_000),
        # one byte short of the threshold -> 0
        hit(long, at(DAY1, "10:30:00"), "192.0.2.9", POCKETCASTS, 0, THRESHOLD - 1),
        # a bot and a library receiving everything -> 0
        hit(long, at(DAY1, "11:00:00"), "192.0.2.4", GOOGLEBOT, 0, SIZE),
        hit(long, at(DAY1, "11:00:00"), "192.0.2.5", CURL, 0, SIZE),
        # no user agent at all -> 0
        hit(long, at(DAY1, "11:30:00"), "192.0.2.6", "", 0, SIZE),
        # the same /64, two addresses, half each -> one listener, 1
        hit(long, at(DAY1, "12:00:00"), "2001:db8:1:2::a", FIREFOX, 0, 500_000),
        hit(long, at(DAY1, "12:00:09"), "2001:db8:1:2:ffff::b", FIREFOX, 500_000, 500_000),
        # another /64 with half -> 0
        hit(long, at(DAY1, "12:00:10"), "2001:db8:1:3::a", FIREFOX, 500_000, 500_000),
        # short file: all but one byte -> 0; whole -> 1
        hit(short, at(DAY1, "13:00:00"), "192.0.2.7", ANTENNAPOD, 0, 299_999,
            episode_id="ep2"),
        hit(short, at(DAY1, "13:00:00"), "192.0.2.8", ANTENNAPOD, 0, 300_000, episode_id="ep2"),
        # A on the next day -> 1 more, on DAY2
        hit(long, at(DAY2, "07:00:00"), "192.0.2.1", ANTENNAPOD, 0, SIZE),
    ]
    for item in log:
        rec.record(item)
    assert rec.flush().written == len(log)
    assert {info.key.split("/")[2] for info in store.list(EVENTS_PREFIX)} == {
        f"day={DAY1}", f"day={DAY2}"}

    # Counted live, before any roll-up.
    filters = Filters(date.fromisoformat(DAY1), date.fromisoformat(DAY2))
    live = build_report(store, tmp_path / "cache", filters)
    assert dict(live.days) == {date.fromisoformat(DAY1): 4, date.fromisoformat(DAY2): 1}
    by_episode = {e.episode_id: e.downloads for e in live.episodes}
    assert by_episode == {"ep1": 4, "ep2": 1}

    # Rolled up after the days are over: the same answer, and the keys are gone.
    rolled = roll_up_due(store, tmp_path / "cache", datetime(2026, 11, 5, tzinfo=UTC))
    assert rolled == [date.fromisoformat(DAY1), date.fromisoformat(DAY2)]
    assert not list(store.list(KEYS_PREFIX))
    assert len(list(store.list(DAILY_PREFIX))) == 2
    report = build_report(store, tmp_path / "other-cache", filters)
    assert dict(report.days) == dict(live.days)
    # AntennaPod: A on both days and the short file's listener.
    assert {a: n for a, _, n in report.apps} == {"AntennaPod": 3, "Pocket Casts": 1,
                                                "Firefox": 1}
    assert {d: n for d, _, n in report.devices} == {"Linux": 1, "Unknown": 4}
    assert report.methods == ["bytes"]


def test_late_batches_for_a_rolled_up_day_are_dropped(
        store: ObjectStore, files: dict[str, object], tmp_path: Path) -> None:
    long = files["long"]
    rec = recorder(store, tmp_path)
    rec.record(hit(long, at(DAY1), "192.0.2.1", ANTENNAPOD, 0, SIZE))
    rec.flush()
    roll_up_due(store, tmp_path / "cache", datetime(2026, 11, 5, tzinfo=UTC))
    rec.record(hit(long, at(DAY1, "23:59:59"), "192.0.2.2", ANTENNAPOD, 0, SIZE))
    report = rec.flush()
    assert (report.written, report.dropped_late) == (0, 1)
    assert not list(store.list(KEYS_PREFIX))  # no key made again for a finished day


def test_redirect_modes_count_requests_labelled_so(
        store: ObjectStore, files: dict[str, object], tmp_path: Path) -> None:
    long = files["long"]
    rec = recorder(store, tmp_path)
    for address in ("192.0.2.1", "192.0.2.1", "192.0.2.2"):
        rec.record(hit(long, at(DAY1), address, ANTENNAPOD, 0, 0, method=REQUESTS))
    rec.flush()
    report = build_report(store, tmp_path / "cache",
                          Filters(date.fromisoformat(DAY1), date.fromisoformat(DAY1)))
    assert [(e.downloads, e.method) for e in report.episodes] == [(2, "requests")]


def test_a_failed_write_keeps_the_batch_for_the_next_flush(
        settings: Settings, store: ObjectStore, tmp_path: Path) -> None:
    refused = make_store(dataclasses.replace(settings, secret_access_key="wrong-secret"),
                         settings.s3_endpoint)
    media = MediaFile("episodes/ep1/talk.mp3", "talk.mp3", "audio/mpeg", 1000, "0" * 64,
                      duration=30.0)
    rec = Recorder(refused, tmp_path / "cache")
    rec.record(hit(media, at(DAY1), "192.0.2.1", ANTENNAPOD, 0, 1000))
    assert rec.flush().written == 0  # storage refuses: the batch stays in memory
    assert not list(store.list(EVENTS_PREFIX))
    rec.store = rec.keys.store = rec.layouts.store = store  # storage is back
    assert rec.flush().written == 1
    assert len(list(store.list(EVENTS_PREFIX))) == 1


def test_the_buffer_is_bounded_when_storage_stays_away(tmp_path: Path,
                                                       store: ObjectStore) -> None:
    media = MediaFile("episodes/ep1/talk.mp3", "talk.mp3", "audio/mpeg", 1000, "0" * 64)
    rec = Recorder(store, tmp_path / "cache", max_buffer=2)
    for n in range(10):
        rec.record(hit(media, at(DAY1), f"192.0.2.{n}", ANTENNAPOD, 0, 1000))
    assert (len(rec._buffer), rec.dropped) == (8, 2)  # four times max_buffer, then dropped
    assert rec._wake.is_set()  # the flush thread was woken early


def test_a_later_batch_completes_a_download_in_the_next_report(
        store: ObjectStore, files: dict[str, object], tmp_path: Path) -> None:
    """Open days are read incrementally (batches already read are kept): a batch written after
    one report is added to the next, and the halves across batches make one download."""
    long = files["long"]
    rec = recorder(store, tmp_path)
    filters = Filters(date.fromisoformat(DAY1), date.fromisoformat(DAY1))
    rec.record(hit(long, at(DAY1, "08:00:00"), "192.0.2.1", ANTENNAPOD, 0, 500_000))
    rec.flush()
    assert build_report(store, tmp_path / "cache", filters).total == 0
    rec.record(hit(long, at(DAY1, "08:01:00"), "192.0.2.1", ANTENNAPOD, 500_000, 500_000))
    rec.flush()
    assert build_report(store, tmp_path / "cache", filters).total == 1
