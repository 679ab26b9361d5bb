"""Listening statistics: what counting costs the media route, and how fast a year of them is read.

- Media through `/media/…` with counting on vs off, in one server process (a bench-only route
  switches the recorder off and on between alternating wrk runs): target ≥ 0.9.
- A year of synthetic events (10 M in a full run, 200 k with --quick) written as Parquet per
  day, rolled up per day, then the stats page's report over the whole year read with DuckDB from
  the roll-ups: target ≤ 1 s (ratio against 1 s). The same report counted from the raw events
  without roll-ups is shown for comparison, and the roll-up time per day.

`python -m bench.stats --serve --port P` is the server half (started by this module).
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pyarrow as pa

from archive.models import Episode, MediaFile, Series
from archive.runtime import Archive
from archive.stats.cache import LocalCache, cache_folder
from archive.stats.events import EVENT_SCHEMA, events_prefix, parquet_bytes
from archive.stats.query import ROLLED_UP, Filters, build_report
from archive.stats.rollup import count_files, event_files, roll_up
from bench.tools import ROOT, Result, archive_env, embedded_archive, free_ports, wait_for, wrk

MEDIA_RANGE = "bytes=100000-165535"
USER_AGENT = "AntennaPod/3.4.0"
EPISODES = 200
APPS = ("AntennaPod", "Apple Podcasts", "Pocket Casts", "Overcast", "Spotify", "Firefox")
DEVICES = ("iPhone", "Android", "Windows", "Mac", "Linux")


def run(seconds: int, events: int) -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-stats-") as folder:
        work = Path(folder)
        with embedded_archive(work / "s3") as archive:
            results = _media(archive, seconds)
            results += _query(archive, events)
    return results


# -- media with counting on and off ---------------------------------------------------------------


def _publish(archive: Archive) -> Episode:
    """One 0.3 MB 'recording' in the catalogue (the bytes do not matter to serving)."""
    data = b"ID3\x04\x00\x00\x00\x00\x00\x00" + secrets.token_bytes(300_000)
    episode = Episode.new(title="Counting bench", series="bench")
    with archive.catalog.stage(episode.id) as stage:
        stored = archive.store.put_bytes(f"episodes/{episode.id}/talk.mp3", data, "audio/mpeg")
        episode.files = {"audio": MediaFile(stored.key, "talk.mp3", "audio/mpeg", stored.size,
                                            hashlib.sha256(data).hexdigest(), duration=120.0,
                                            bitrate=20_000)}
        episode.original_sha256 = episode.files["audio"].sha256
        return stage.commit(episode, Series.new("Bench"))


@contextmanager
def _server(archive: Archive) -> Iterator[str]:
    port = free_ports(1)[0]
    process = subprocess.Popen([sys.executable, "-m", "bench.stats", "--serve", "--port",
                                str(port)], env=archive_env(archive), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


def _media(archive: Archive, seconds: int) -> list[Result]:
    episode = _publish(archive)
    results = []
    with _server(archive) as base:
        url = f"{base}/media/{episode.id}/talk.mp3"
        for label, headers, connections in (
                ("full GET (0.3 MB)", {"User-Agent": USER_AGENT}, 8),
                ("ranged GET (64 KiB)", {"User-Agent": USER_AGENT, "Range": MEDIA_RANGE}, 32)):
            rates: dict[str, list[float]] = {"on": [], "off": []}
            for _ in range(4):  # alternate, so drift hits both alike; best of each
                for state in ("off", "on"):
                    httpx.post(f"{base}/bench/counting/{state}", timeout=10).raise_for_status()
                    rates[state].append(wrk(url, seconds=seconds, connections=connections,
                                            headers=headers))
            on, off = max(rates["on"]), max(rates["off"])
            results.append(Result("stats", f"{label} /media: counting on vs off (req/s)", on,
                                  off, "req/s", target=0.9))
    per_request_us = 1e6 / off
    # The same target, measured without wrk's noise: counting may cost a tenth of a request.
    results.append(Result("stats", "counting's own cost per request (µs) vs a ranged GET's",
                          _recording_cost_us(archive, episode), per_request_us, "µs",
                          higher_is_better=False, target=0.1))
    return results


def _recording_cost_us(archive: Archive, episode: Episode, rounds: int = 50_000) -> float:
    """What counting adds to one request, measured alone (wrk on this shared machine is
    noisy): the Listen made per request plus the Hit appended when the body is sent; the
    buffer is emptied as the flush thread would. Best of three rounds."""
    from archive.stats.recorder import Recorder
    from archive.web.counting import Listen

    recorder = Recorder(archive.store, Path(tempfile.mkdtemp()))
    media = episode.files["audio"]
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for n in range(rounds):
            Listen(recorder, time.time(), "192.0.2.1", USER_AGENT, episode.id, episode.series,
                   "audio", media).sent(100_000, 65_536)
            if n % 5_000 == 0:
                recorder._buffer = []  # what a flush does, without the storage
        best = min(best, (time.perf_counter() - started) / rounds * 1e6)
    return best


def serve(port: int) -> None:
    """The archive app plus a bench-only switch for its statistics recorder."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from archive.config import Settings
    from archive.web.app import create_app

    app = create_app(Settings.from_env())

    async def switch(request: Request) -> PlainTextResponse:
        state = request.app.state
        if not hasattr(state, "bench_recorder"):
            state.bench_recorder = state.stats
        state.stats = state.bench_recorder if request.path_params["state"] == "on" else None
        return PlainTextResponse(request.path_params["state"])

    app.router.routes.insert(0, Route("/bench/counting/{state}", switch, methods=["POST"]))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- a year of events ----------------------------------------------------------------------------


def _write_year(archive: Archive, total: int, first: date) -> list[date]:
    """`total` events spread over 365 days, one Parquet object per day, as the recorder
    writes them (a listener pool, episodes with a Zipf-like popularity, whole and partial
    fetches, a few bots)."""
    rng = np.random.default_rng(13)
    per_day = max(total // 365, 1)
    pool = np.array([secrets.token_hex(16) for _ in range(max(per_day // 3, 10))])
    episode_ids = np.array([f"ep{n:04d}" for n in range(EPISODES)])
    weights = 1 / np.arange(1, EPISODES + 1)
    weights /= weights.sum()
    days = [first + timedelta(days=n) for n in range(365)]
    for day in days:
        n = per_day
        start_ts = np.datetime64(datetime(day.year, day.month, day.day), "ms")
        ts = start_ts + rng.integers(0, 86_400_000, n).astype("timedelta64[ms]")
        starts = np.where(rng.random(n) < 0.6, 0, rng.integers(0, 20_000_000, n))
        sent = rng.integers(2_000, 30_000_000, n)
        kind = np.where(rng.random(n) < 0.05, "bot", "app")
        episode = rng.choice(episode_ids, n, p=weights)
        table = pa.table({
            "ts": ts, "listener": rng.choice(pool, n), "episode_id": episode,
            "series": np.char.add("series-", (np.char.str_len(episode) % 5).astype(str)),
            "role": np.full(n, "audio"), "start": starts, "sent": sent,
            "size": np.full(n, 40_000_000), "threshold": np.full(n, 1_000_000),
            "method": np.full(n, "bytes"), "kind": kind, "app": rng.choice(APPS, n),
            "device": rng.choice(DEVICES, n), "device_category": np.full(n, "mobile"),
        }, schema=EVENT_SCHEMA)
        archive.store.put_bytes(f"{events_prefix(day)}bench-000001.parquet",
                                parquet_bytes(table))
    return days


def _query(archive: Archive, events: int) -> list[Result]:
    first = date(2025, 1, 1)
    started = time.perf_counter()
    days = _write_year(archive, events, first)
    written_s = time.perf_counter() - started
    cache_dir = cache_folder(archive.settings.data_dir)
    cache = LocalCache(archive.store, cache_dir)
    started = time.perf_counter()
    raw = count_files([p for day in days for p in event_files(archive.store, cache, day)])
    raw_s = time.perf_counter() - started
    started = time.perf_counter()
    for day in days:
        roll_up(archive.store, cache, day)
    rollup_s = time.perf_counter() - started
    filters = Filters(first, days[-1])
    started = time.perf_counter()
    cold = build_report(archive.store, cache_dir / "cold", filters)
    cold_s = time.perf_counter() - started
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        report = build_report(archive.store, cache_dir / "cold", filters)
        timings.append(time.perf_counter() - started)
    warm_s = sorted(timings)[len(timings) // 2]
    ROLLED_UP._tables.clear()  # another process on this machine: local files, no memo
    started = time.perf_counter()
    build_report(archive.store, cache_dir / "cold", filters)
    files_s = time.perf_counter() - started
    assert report.total == cold.total == int(pa.compute.sum(raw.column("downloads")).as_py())
    label = f"{events / 1e6:g} M events/year"
    return [
        Result("stats", f"{label}: /stats report for the year from roll-ups (s) vs 1 s",
               warm_s, 1.0, "s", higher_is_better=False, target=1.0,
               extra={"cold_cache_s": cold_s, "downloads": float(report.total)}),
        Result("stats", f"{label}: same report, first read (downloads 365 roll-ups) (s)",
               cold_s, 1.0, "s", higher_is_better=False),
        Result("stats", f"{label}: same report, roll-ups from local files, no memo (s)",
               files_s, 1.0, "s", higher_is_better=False),
        Result("stats", f"{label}: counted from raw events, no roll-ups (s)", raw_s, 1.0, "s",
               higher_is_better=False, extra={"write_s": written_s}),
        Result("stats", f"{label}: roll-up per day (s)", rollup_s / len(days), 1.0, "s",
               higher_is_better=False),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.serve:
        serve(args.port)


if __name__ == "__main__":
    main()
