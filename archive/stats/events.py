"""The events as stored: one row per answered media request, Parquet, partitioned by UTC day.

`stats/events/day=YYYY-MM-DD/<HHMMSS>-<process>-<n>.parquet`, written once and never changed,
so Athena, Trino or Spark can read the same prefix (hive partitioning on `day`). A row holds no
address and no user agent: the listener is a keyed hash (`listeners`), the agent its class.
"""

from __future__ import annotations

import io
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

EVENTS_PREFIX = "stats/events/"
DAILY_PREFIX = "stats/daily/"
DELIVERY_ROLES = ("audio", "video")  # what podcast apps download: these are "downloads"
BYTE_COUNTED_ROLES = ("audio", "video", "original")  # IAB threshold applies; sidecars: a fetch
BYTES, REQUESTS = "bytes", "requests"  # proxy mode counts bytes; redirect modes requests

EVENT_SCHEMA = pa.schema([
    ("ts", pa.timestamp("ms")),  # UTC
    ("listener", pa.string()),  # 128-bit HMAC under the day's key, hex
    ("episode_id", pa.string()),
    ("series", pa.string()),
    ("role", pa.string()),  # audio, video, original, transcript, chapters, cover…
    ("start", pa.int64()),  # first byte served
    ("sent", pa.int64()),  # bytes actually sent (0 for a redirect)
    ("size", pa.int64()),
    ("threshold", pa.int64()),  # bytes that make a download of this file
    ("method", pa.string()),  # bytes | requests
    ("kind", pa.string()),  # app, browser, unknown, bot, library, none
    ("app", pa.string()),
    ("device", pa.string()),
    ("device_category", pa.string()),
])

ROLLUP_SCHEMA = pa.schema([
    ("day", pa.date32()),
    ("episode_id", pa.string()),
    ("series", pa.string()),
    ("role", pa.string()),
    ("method", pa.string()),
    ("kind", pa.string()),
    ("app", pa.string()),
    ("device", pa.string()),
    ("device_category", pa.string()),
    ("downloads", pa.int64()),
])


def events_prefix(day: date) -> str:
    return f"{EVENTS_PREFIX}day={day.isoformat()}/"


def daily_key(day: date) -> str:
    return f"{DAILY_PREFIX}day={day.isoformat()}.parquet"


def day_of_daily(key: str) -> date | None:
    stem = key.removeprefix(f"{DAILY_PREFIX}day=").removesuffix(".parquet")
    try:
        return date.fromisoformat(stem)
    except ValueError:
        return None


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue()
