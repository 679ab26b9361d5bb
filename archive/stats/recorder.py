"""The hot path's buffer and the thread that turns it into Parquet batches in the bucket.

A request appends one tuple (`Hit`) to a list under an uncontended lock (so a swap by the flush
thread never loses an append): no hashing, no I/O. Every `interval` seconds (and when the buffer
grows past `max_buffer`, and on a clean stop) the flush thread swaps the list out and, per UTC
day, hashes each listener with the day's key, classifies its user agent, works out the file's
download threshold and writes one Parquet object. Raw addresses live only in this process's
memory, for at most one interval. A crash loses at most one batch; a failed write keeps the
batch for the next try (bounded).

The same thread rolls up finished days (`rollup.roll_up_due`) every `rollup_every` seconds.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa

from archive.errors import ArchiveError
from archive.stats.agents import Classifier, load_classifier
from archive.stats.cache import cache_folder
from archive.stats.events import EVENT_SCHEMA, events_prefix, parquet_bytes
from archive.stats.listeners import DailyKeys, listener_id
from archive.stats.thresholds import Layouts, threshold
from archive.storage import ObjectStore

log = logging.getLogger("archive.stats")

FLUSH_INTERVAL = 60.0
MAX_BUFFER = 50_000  # hits held before an early flush; past 4x this (~60 MB), new ones are dropped
AGENTS_REFRESH = 600.0
ROLLUP_EVERY = 600.0


class Hit(NamedTuple):
    """One answered media request, as the hot path saw it (raw address: memory only)."""

    ts: float
    address: str
    user_agent: str
    episode_id: str
    series: str
    role: str
    key: str
    sha256: str
    size: int
    duration: float | None
    bitrate: int | None
    start: int
    sent: int
    method: str


@dataclass
class FlushReport:
    written: int = 0
    dropped_late: int = 0


class Recorder:
    """One per process; `record` is all a request ever calls."""

    def __init__(self, store: ObjectStore, cache_dir: Path, *, interval: float = FLUSH_INTERVAL,
                 max_buffer: int = MAX_BUFFER, rollup_every: float = ROLLUP_EVERY) -> None:
        self.store = store
        self.cache_dir = cache_dir
        self.interval = interval
        self.max_buffer = max_buffer
        self.rollup_every = rollup_every
        self.keys = DailyKeys(store)
        self.layouts = Layouts(store)
        self.process = secrets.token_hex(4)
        self.dropped = 0
        self._buffer: list[Hit] = []
        self._retry: list[Hit] = []
        self._sequence = 0
        self._classifier: Classifier | None = None
        self._classifier_at = 0.0
        self._last_rollup = 0.0
        self._buffer_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._flushing = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- the hot path ---------------------------------------------------------------------

    def record(self, hit: Hit) -> None:
        with self._buffer_lock:
            buffer = self._buffer
            if len(buffer) >= 4 * self.max_buffer:
                self.dropped += 1  # storage has been down a long time: memory comes first
                return
            buffer.append(hit)
        if len(buffer) >= self.max_buffer:
            self._wake.set()

    # -- the flush thread -------------------------------------------------------------------

    def start(self) -> Recorder:
        self._thread = threading.Thread(target=self._run, name="stats-flush", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.flush()
                self._maybe_roll_up()
            except Exception:  # the thread must survive anything; the batch is kept
                log.exception("statistics flush failed")

    def close(self) -> None:
        """Clean stop: the last batch goes to the bucket before storage goes away."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        try:
            self.flush()
        except ArchiveError as error:
            log.warning("statistics: last batch not written: %s", error.message)

    def flush(self, now: float | None = None) -> FlushReport:
        """Write what is buffered, one object per day; keep it for later if storage fails."""
        with self._flushing:
            with self._buffer_lock:
                hits, self._buffer = self._buffer, []
            hits = self._retry + hits
            self._retry = []
            report = FlushReport()
            if not hits:
                return report
            by_day: dict[date, list[Hit]] = {}
            for hit in hits:
                by_day.setdefault(_day(hit.ts), []).append(hit)
            classifier = self._agents(now)
            for day, day_hits in sorted(by_day.items()):
                try:
                    written = self._write_day(day, day_hits, classifier, now)
                except ArchiveError as error:
                    log.warning("statistics batch for %s kept for the next try: %s", day,
                                error.message)
                    self._retry += day_hits[: self.max_buffer]
                    continue
                if written:
                    report.written += len(day_hits)
                else:
                    report.dropped_late += len(day_hits)
            return report

    def _write_day(self, day: date, hits: list[Hit], classifier: Classifier,
                   now: float | None) -> bool:
        from archive.stats.rollup import is_rolled_up

        if day < _day(now or time.time()) and is_rolled_up(self.store, day):
            log.warning("statistics: %d late requests for %s dropped (already rolled up)",
                        len(hits), day)
            return False
        key = self.keys.key_for(day)
        columns: dict[str, list[object]] = {name: [] for name in EVENT_SCHEMA.names}
        for hit in hits:
            agent = classifier.classify(hit.user_agent)
            layout = self.layouts.of(hit.key, hit.sha256, hit.size)
            row = (
                datetime.fromtimestamp(hit.ts, UTC).replace(tzinfo=None),
                listener_id(key, hit.address, hit.user_agent),
                hit.episode_id, hit.series, hit.role, hit.start, hit.sent, hit.size,
                threshold(hit.size, hit.duration, hit.bitrate, layout), hit.method,
                agent.kind, agent.app, agent.device, agent.device_category,
            )
            for name, value in zip(EVENT_SCHEMA.names, row, strict=True):
                columns[name].append(value)
        table = pa.table(columns, schema=EVENT_SCHEMA)
        self._sequence += 1
        stamp = datetime.now(UTC).strftime("%H%M%S")
        name = f"{events_prefix(day)}{stamp}-{self.process}-{self._sequence:06d}.parquet"
        self.store.put_bytes(name, parquet_bytes(table), "application/vnd.apache.parquet")
        return True

    def _agents(self, now: float | None) -> Classifier:
        moment = now or time.time()
        if self._classifier is None or moment - self._classifier_at > AGENTS_REFRESH:
            try:
                self._classifier = load_classifier(self.store)
            except ArchiveError as error:
                log.warning("statistics: user-agent patterns not read: %s", error.message)
                if self._classifier is None:
                    from archive.stats.agents import fallback

                    self._classifier = fallback()
            self._classifier_at = moment
        return self._classifier

    def _maybe_roll_up(self) -> None:
        moment = time.time()
        if moment - self._last_rollup < self.rollup_every:
            return
        self._last_rollup = moment
        from archive.stats.rollup import roll_up_due

        roll_up_due(self.store, self.cache_dir)
        self.keys.forget_before(_day(moment - 86_400))


def _day(ts: float) -> date:
    return datetime.fromtimestamp(ts, UTC).date()


def start_recorder(store: ObjectStore, data_dir: Path) -> Recorder:
    """The app's recorder (its lifespan closes it): events cache under the data folder."""
    return Recorder(store, cache_folder(data_dir)).start()
