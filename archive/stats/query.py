"""Reports for the pages, the API and the CLI: roll-ups of finished days plus a live count of
the days still open, in one DuckDB table, summed by what each view needs.

A year of roll-ups is 365 small Parquet files read from the local cache (`cache`), so a report
costs one LIST of `stats/daily/` and milliseconds of DuckDB, however many requests made them.
Requests still in a process's buffer (at most a minute) are not in the counts yet.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from archive.errors import InvalidInput
from archive.stats.cache import LocalCache
from archive.stats.events import (
    BYTES,
    DAILY_PREFIX,
    DELIVERY_ROLES,
    EVENT_SCHEMA,
    REQUESTS,
    ROLLUP_SCHEMA,
    day_of_daily,
    events_prefix,
)
from archive.stats.listeners import pending_days
from archive.stats.rollup import count_table, new_connection, read_parquet
from archive.storage import ObjectInfo, ObjectStore

MAX_DAYS = 366 * 20
DEFAULT_DAYS = 30


@dataclass(frozen=True)
class Filters:
    since: date
    until: date
    series: str | None = None
    episode: str | None = None

    @classmethod
    def last_days(cls, days: int = 30, today: date | None = None, **more: Any) -> Filters:
        end = today or datetime.now(UTC).date()
        return cls(end - timedelta(days=days - 1), end, **more)


@dataclass(frozen=True)
class EpisodeCount:
    episode_id: str
    series: str
    downloads: int  # delivery files (audio, video)
    method: str  # bytes, requests or mixed
    original: int
    sidecars: int


@dataclass(frozen=True)
class Report:
    filters: Filters
    episodes: list[EpisodeCount]
    days: list[tuple[date, int]]  # every day of the range, zeros included
    apps: list[tuple[str, str, int]]  # (app, kind, downloads)
    devices: list[tuple[str, str, int]]  # (device, category, downloads)
    methods: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(count for _, count in self.days)


def make_filters(since: str | None = None, until: str | None = None, series: str | None = None,
                 episode: str | None = None, today: date | None = None) -> Filters:
    """Filters from what a person typed (YYYY-MM-DD dates; default the last 30 days);
    InvalidInput with one readable line for anything else."""
    end = today or datetime.now(UTC).date()
    last = _date(until, "until") or end
    first = _date(since, "since") or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidInput("The start date is after the end date.")
    if (last - first).days >= MAX_DAYS:
        raise InvalidInput(f"Choose a range of at most {MAX_DAYS} days.")
    return Filters(first, last, _name(series, "series"), _name(episode, "episode"))


def _date(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        value = date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            f"{name} must be a date written YYYY-MM-DD, not {text[:40]!r}.") from None
    if not 2000 <= value.year <= 2200:
        raise InvalidInput(f"{name} must be a date between the years 2000 and 2200.")
    return value


def _name(text: str | None, name: str) -> str | None:
    if not text:
        return None
    if len(text) > 200 or not text.replace("-", "").replace("_", "").isalnum():
        raise InvalidInput(f"{name} is not a valid {name} name.")
    return text


class _RolledUp:
    """Roll-ups already read by this process, by the exact objects (key and size) they came
    from: a finished day never changes, so a report over a year reads its 365 files once, and
    afterwards costs one LIST and the count of the days still open. A few ranges are kept."""

    LIMIT = 8

    def __init__(self) -> None:
        self._tables: dict[tuple[object, ...], pa.Table] = {}
        self._lock = threading.Lock()

    def read(self, cache: LocalCache, objects: list[ObjectInfo]) -> pa.Table:
        signature = (cache.store.endpoint, cache.store.bucket,
                     *((info.key, info.size, info.etag) for info in objects))
        with self._lock:
            found = self._tables.get(signature)
        if found is not None:
            return found
        paths = cache.fetch(objects)
        connection = new_connection()
        try:
            table = read_parquet(connection, paths).to_arrow_table().cast(ROLLUP_SCHEMA)
        finally:
            connection.close()
        with self._lock:
            if len(self._tables) >= self.LIMIT:
                self._tables.pop(next(iter(self._tables)))
            self._tables[signature] = table
        return table


ROLLED_UP = _RolledUp()


class _OpenDayEvents:
    """Event batches of the days still open, read once each by this process: a busy day is a
    thousand or more small objects, and parsing them all on every page view would take seconds
    by evening. Per day: the batches read so far as one table; a view reads only new ones."""

    DAYS = 3

    def __init__(self) -> None:
        self._days: dict[tuple[str, str, date], tuple[frozenset[tuple[str, int, str]],
                                                      pa.Table]] = {}
        self._lock = threading.Lock()

    def read(self, cache: LocalCache, day: date, objects: list[ObjectInfo]) -> pa.Table:
        wanted = frozenset((info.key, info.size, info.etag) for info in objects)
        where = (cache.store.endpoint, cache.store.bucket, day)
        with self._lock:
            known, table = self._days.get(where, (frozenset(), EVENT_SCHEMA.empty_table()))
        if not known <= wanted:  # a batch went away (cannot happen, but never miscount)
            known, table = frozenset(), EVENT_SCHEMA.empty_table()
        missing = [info for info in objects if (info.key, info.size, info.etag) not in known]
        if missing:
            connection = new_connection()
            try:
                new = read_parquet(connection, cache.fetch(missing)).to_arrow_table()
            finally:
                connection.close()
            table = pa.concat_tables([table, new.cast(EVENT_SCHEMA)]).combine_chunks()
            with self._lock:
                self._days[where] = (wanted, table)
                while len(self._days) > self.DAYS:
                    self._days.pop(next(iter(self._days)))
        return table


OPEN_DAYS = _OpenDayEvents()


def counts_table(store: ObjectStore, cache_dir: Path, since: date, until: date) -> pa.Table:
    """Every counted row (ROLLUP_SCHEMA) from `since` to `until`, both included."""
    cache = LocalCache(store, cache_dir)
    rolled = {}
    for info in store.list(DAILY_PREFIX):
        day = day_of_daily(info.key)
        if day is not None and since <= day <= until:
            rolled[day] = info
    parts = []
    if rolled:
        parts.append(ROLLED_UP.read(cache, [rolled[day] for day in sorted(rolled)]))
    for day in pending_days(store):
        if since <= day <= until and day not in rolled:
            objects = [info for info in store.list(events_prefix(day))
                       if info.key.endswith(".parquet")]
            parts.append(count_table(OPEN_DAYS.read(cache, day, objects)))
    if not parts:
        return ROLLUP_SCHEMA.empty_table()
    return pa.concat_tables(parts)


def build_report(store: ObjectStore, cache_dir: Path, filters: Filters) -> Report:
    counts = counts_table(store, cache_dir, filters.since, filters.until)
    connection = new_connection()
    try:
        connection.register("counts", _filtered(counts, filters))
        delivery = f"role IN ({', '.join(repr(r) for r in DELIVERY_ROLES)})"
        episodes = [EpisodeCount(*row) for row in connection.execute(f"""
            SELECT episode_id, any_value(series),
                   coalesce(sum(downloads) FILTER ({delivery}), 0)::BIGINT,
                   CASE WHEN count(DISTINCT method) FILTER ({delivery}) > 1 THEN 'mixed'
                        ELSE coalesce(any_value(method) FILTER ({delivery}), '{BYTES}') END,
                   coalesce(sum(downloads) FILTER (role = 'original'), 0)::BIGINT,
                   coalesce(sum(downloads) FILTER (NOT {delivery} AND role <> 'original'),
                            0)::BIGINT
            FROM counts GROUP BY episode_id ORDER BY 3 DESC, 1""").fetchall()]
        per_day = dict(connection.execute(
            f"SELECT day, sum(downloads)::BIGINT FROM counts WHERE {delivery} GROUP BY day"
        ).fetchall())
        apps = connection.execute(f"""
            SELECT coalesce(nullif(app, ''), 'Unknown'), kind, sum(downloads)::BIGINT
            FROM counts WHERE {delivery} GROUP BY ALL ORDER BY 3 DESC, 1""").fetchall()
        devices = connection.execute(f"""
            SELECT coalesce(nullif(device, ''), 'Unknown'), device_category,
                   sum(downloads)::BIGINT
            FROM counts WHERE {delivery} GROUP BY ALL ORDER BY 3 DESC, 1""").fetchall()
        methods = [row[0] for row in connection.execute(
            f"SELECT DISTINCT method FROM counts WHERE {delivery} ORDER BY 1").fetchall()]
    finally:
        connection.close()
    days = []
    day = filters.since
    while day <= filters.until:
        days.append((day, int(per_day.get(day, 0))))
        day += timedelta(days=1)
    return Report(filters, episodes, days, [tuple(a) for a in apps],  # type: ignore[misc]
                  [tuple(d) for d in devices], methods)  # type: ignore[misc]


def _filtered(counts: pa.Table, filters: Filters) -> pa.Table:
    if filters.series:
        counts = counts.filter(pc.field("series") == filters.series)
    if filters.episode:
        counts = counts.filter(pc.field("episode_id") == filters.episode)
    return counts


def method_label(method: str) -> str:
    return {BYTES: "downloads (IAB v2.3)", REQUESTS: "requests (redirect mode)",
            "mixed": "downloads and requests"}.get(method, method)
