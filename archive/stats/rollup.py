"""The IAB v2.3 count, in DuckDB: from a day's events to downloads per episode, app and device.

For each listener, episode file and UTC day (the 24-hour window is the UTC day, disclosed on
/stats/about):
- proxy mode (`method = bytes`): the byte ranges actually sent are merged (a byte received
  twice counts once, so repeated probes and re-seeks never add up to a download) and one
  download is counted when they cover the file's threshold (header + one minute of audio, or
  the whole of a short file). Sidecars (transcript, chapters, cover…) count one fetch.
- redirect modes (`method = requests`): the archive sees a request, not bytes: one request per
  listener, file and day, labelled so.
Bots, libraries and requests without a user agent are left out (OPAWG patterns).

A finished day is rolled up into `stats/daily/day=YYYY-MM-DD.parquet` (created once, with a
conditional write, so concurrent processes agree) and then its key is destroyed. Days still
open (today, and yesterday within `GRACE`) are counted from their events when asked.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

from archive.errors import Conflict
from archive.stats.agents import NOT_COUNTED
from archive.stats.cache import LocalCache
from archive.stats.events import (
    BYTE_COUNTED_ROLES,
    BYTES,
    REQUESTS,
    ROLLUP_SCHEMA,
    daily_key,
    events_prefix,
    parquet_bytes,
)
from archive.stats.listeners import destroy_key, pending_days
from archive.storage import ObjectStore

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger("archive.stats.rollup")

GRACE = timedelta(minutes=10)  # late batches of other processes, after midnight UTC


def _in(values: Sequence[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


COUNT_SQL = f"""
WITH ev AS (
    SELECT CAST(ts AS DATE) AS day, * FROM events
    WHERE kind NOT IN ({_in(NOT_COUNTED)})
),
spans AS (
    SELECT day, listener, episode_id, role, start, start + sent AS stop, threshold,
           max(start + sent) OVER (
               PARTITION BY day, listener, episode_id, role ORDER BY start, start + sent
               ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reach
    FROM ev WHERE method = '{BYTES}' AND sent > 0
),
islands AS (
    SELECT *, sum(CASE WHEN reach IS NULL OR start > reach THEN 1 ELSE 0 END) OVER (
               PARTITION BY day, listener, episode_id, role ORDER BY start, stop
               ROWS UNBOUNDED PRECEDING) AS island
    FROM spans
),
merged AS (
    SELECT day, listener, episode_id, role, max(stop) - min(start) AS covered,
           max(threshold) AS threshold
    FROM islands GROUP BY day, listener, episode_id, role, island
),
received AS (
    SELECT day, listener, episode_id, role, sum(covered) AS got, max(threshold) AS threshold
    FROM merged GROUP BY day, listener, episode_id, role
),
counted AS (
    SELECT day, listener, episode_id, role, '{BYTES}' AS method FROM received
    WHERE got >= threshold OR role NOT IN ({_in(BYTE_COUNTED_ROLES)})
    UNION ALL
    SELECT DISTINCT day, listener, episode_id, role, '{REQUESTS}' AS method FROM ev
    WHERE method = '{REQUESTS}'
),
who AS (
    SELECT day, listener, episode_id, role, arg_min(series, ts) AS series,
           arg_min(kind, ts) AS kind, arg_min(app, ts) AS app, arg_min(device, ts) AS device,
           arg_min(device_category, ts) AS device_category
    FROM ev GROUP BY day, listener, episode_id, role
)
SELECT c.day, c.episode_id, w.series, c.role, c.method, w.kind, w.app, w.device,
       w.device_category, count(*)::BIGINT AS downloads
FROM counted c JOIN who w USING (day, listener, episode_id, role)
GROUP BY ALL
ORDER BY ALL
"""


def count_files(paths: Sequence[Path]) -> pa.Table:
    """The counted downloads (ROLLUP_SCHEMA) of the events in these Parquet files."""
    if not paths:
        return ROLLUP_SCHEMA.empty_table()
    connection = new_connection()
    try:
        read_parquet(connection, paths).create_view("events")
        table = connection.sql(COUNT_SQL).to_arrow_table()
    finally:
        connection.close()
    return table.cast(ROLLUP_SCHEMA)


def count_table(events: pa.Table) -> pa.Table:
    """The same count over events already in memory."""
    if events.num_rows == 0:
        return ROLLUP_SCHEMA.empty_table()
    connection = new_connection()
    try:
        connection.register("events", events)
        table = connection.sql(COUNT_SQL).to_arrow_table()
    finally:
        connection.close()
    return table.cast(ROLLUP_SCHEMA)


def read_parquet(connection: duckdb.DuckDBPyConnection, paths: Sequence[Path]
                 ) -> duckdb.DuckDBPyRelation:
    """Our files as they are: the `day=` in their folder is not read as a column."""
    return connection.read_parquet([str(path) for path in paths], union_by_name=True,
                                   hive_partitioning=False)


def event_files(store: ObjectStore, cache: LocalCache, day: date) -> list[Path]:
    return cache.fetch([info for info in store.list(events_prefix(day))
                        if info.key.endswith(".parquet")])


def is_rolled_up(store: ObjectStore, day: date) -> bool:
    return store.exists(daily_key(day))


def roll_up(store: ObjectStore, cache: LocalCache, day: date) -> None:
    """Count a finished day once for all, then destroy its key (the order matters: a crash in
    between leaves a key that the next roll-up destroys)."""
    if not is_rolled_up(store, day):
        table = count_files(event_files(store, cache, day))
        with contextlib.suppress(Conflict):  # another process rolled it up first
            store.put_bytes(daily_key(day), parquet_bytes(table),
                            "application/vnd.apache.parquet", if_none_match=True)
    destroy_key(store, day)


def roll_up_due(store: ObjectStore, cache_dir: Path, now: datetime | None = None) -> list[date]:
    """Roll up every day that is over (plus GRACE) and still has its key."""
    moment = now or datetime.now(UTC)
    cache = LocalCache(store, cache_dir)
    done = []
    for day in pending_days(store):
        day_end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
        if moment >= day_end + GRACE:
            roll_up(store, cache, day)
            done.append(day)
    return done


def new_connection() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection. DuckDB is imported when a report or roll-up first needs
    it: ~27 MB that web processes which never serve /stats do not carry."""
    import duckdb

    return duckdb.connect()
