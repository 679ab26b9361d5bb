"""Listening statistics after the IAB Podcast Measurement Technical Guidelines v2.3, privacy first.

How the parts fit (one job per module):

- `listeners`: who a listener is, without keeping who they are: IP (IPv6 by its /64) and user
  agent go through HMAC with a secret key that exists for one UTC day only, shared by every
  process through the bucket and deleted, with every version of it, once the day is over.
- `agents`: the Open Podcast Analytics Working Group's user-agents-v2 patterns (bots, apps,
  libraries, browsers, devices), read from the bucket at run time, with a small fallback.
- `thresholds`: how many bytes of a file are "the header plus one minute of audio".
- `recorder`: the hot path's in-memory buffer and the thread that writes it to the bucket as one
  Parquet object per process per minute (`stats/events/day=YYYY-MM-DD/…`).
- `rollup`: the IAB counting itself (DuckDB over a day's events), kept as one small Parquet
  object per day (`stats/daily/day=YYYY-MM-DD.parquet`); rolling a day up deletes its key.
- `cache`, `query`: a local copy of those immutable objects under ARCHIVE_DATA_DIR and the
  reports the pages, the API and the CLI show.

Requests are recorded cheaply (a tuple appended to a list); everything that costs (hashing,
pattern matching, Parquet, counting) happens off the request path, in the flush thread or when
a day is rolled up.
"""
