"""One cold start, measured in a fresh process: load the catalogue, build search, build the feed.

Search opens the host's shared index file as the app does (`SearchIndex.for_host`): the first
run on a host builds it from every transcript and leaves a snapshot in the bucket; a restart
opens the file as it is; with `--fresh-host` the file is removed first, so the run streams the
bucket's snapshot to disk (a new machine).

Run by bench/scale.py; prints one JSON object. Search latency is measured here too, over a
fixed mix of queries (single words, phrases, names, transcript words, misses).
"""

from __future__ import annotations

import json
import random
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

from archive.catalog import Catalog
from archive.config import Settings
from archive.runtime import make_store
from archive.search import (
    OPTIMIZE_AFTER,
    SearchIndex,
    Transcripts,
    save_snapshot,
)
from archive.web import feeds, views
from archive.web.pages import load_cues_for_index
from bench.synthetic import PEOPLE, WORDS

QUERIES = 400


def peak_rss_mb() -> float:
    """This process's own peak (VmHWM). Not getrusage's ru_maxrss: Linux carries that across
    fork and exec, so it reports the parent's peak when the parent (the bench) is larger."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    settings = Settings.from_env()
    folder = Path(settings.data_dir) / "search"
    if "--fresh-host" in sys.argv:
        shutil.rmtree(folder, ignore_errors=True)
    had_index = folder.exists()
    started = time.perf_counter()
    store = make_store(settings, settings.s3_endpoint)
    view = Catalog(store).refresh()
    loaded = time.perf_counter()
    index = SearchIndex.for_host(folder, store)  # as the app keeps it
    restored = not had_index and len(index) > 0
    changed = index.sync(view.published, views.series_titles(view),
                         load_cues_for_index(Transcripts(store)), token=view,
                         as_of=view.updated_at, catalogue=view.data.guid)
    indexed = time.perf_counter()
    channel, episodes = feeds.feed_source(view, settings, "archive", "",
                                          settings.base_url + "/media/site/cover.jpg")
    feed = feeds.render(view, channel, episodes, settings)
    built = time.perf_counter()
    if changed >= OPTIMIZE_AFTER:
        save_snapshot(index, store)  # as the app does: a new host starts from it
    rng = random.Random(3)
    queries = [rng.choice([
        lambda: rng.choice(WORDS),
        lambda: f'"{rng.choice(WORDS)} {rng.choice(WORDS)}"',
        lambda: rng.choice(PEOPLE),
        lambda: f"{rng.choice(WORDS)} {rng.choice(WORDS)}",
        lambda: "transcript-word-" + str(rng.randrange(50)),
        lambda: "nothing-matches-this",
    ])() for _ in range(QUERIES)]
    latencies = []
    for query in queries:
        t = time.perf_counter()
        index.search(query, limit=20)
        latencies.append((time.perf_counter() - t) * 1000)
    latencies.sort()
    index.close()
    print(json.dumps({
        "episodes": len(view.published),
        "restored_index": restored,
        "host_index": had_index,
        "reindexed_episodes": changed,
        "load_s": loaded - started,
        "search_build_s": indexed - loaded,
        "feed_build_s": built - indexed,
        "cold_start_s": built - started,
        "feed_bytes": len(feed.body),
        "search_p50_ms": statistics.median(latencies),
        "search_p95_ms": latencies[int(len(latencies) * 0.95)],
        "peak_rss_mb": peak_rss_mb(),
    }))


if __name__ == "__main__":
    main()
