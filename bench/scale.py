"""Scale of the catalogue: 1,000 and 10,000 synthetic episodes, each with a transcript.

A fresh process loads the catalogue, builds the search index (fetching every transcript) and
builds the whole-archive feed; its figures are compared with the budgets from the issue
(cold start 3 s, search p95 25 ms, 10,000-item feed build 1.5 s), so a ratio ≤ 1 meets it.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from archive.catalog import CatalogData
from archive.models import MediaFile
from archive.runtime import Archive
from bench.synthetic import WORDS, add_synthetic
from bench.tools import ROOT, Result, archive_env, embedded_archive

BUDGETS = {"cold_start_s": 3.0, "search_p95_ms": 25.0, "feed_build_s": 1.5}
# At 100,000 episodes (issue: 100,000 recordings): cold start 5 s, search p95 50 ms, and the
# serving process within 400 MB.
BUDGETS_100K = {"cold_start_s": 5.0, "search_p95_ms": 50.0, "feed_build_s": 1.5,
                "peak_rss_mb": 400.0}


def transcript(n: int, rng: random.Random) -> bytes:
    """Forty cues of plausible words, with a word unique to a few episodes for targeted hits."""
    lines = ["WEBVTT", ""]
    for cue in range(40):
        words = " ".join(rng.choice(WORDS) for _ in range(12))
        if cue == 20:
            words += f" transcript-word-{n % 50}"
        lines += [f"00:{cue // 2:02d}:{(cue % 2) * 30:02d}.000 --> "
                  f"00:{cue // 2:02d}:{(cue % 2) * 30 + 29:02d}.000", words, ""]
    return "\n".join(lines).encode()


def add_transcripts(archive: Archive) -> None:
    data = archive.catalog.refresh().data
    rng = random.Random(9)
    bodies = {episode_id: transcript(n, rng) for n, episode_id in enumerate(data.episodes)}

    def put(episode_id: str) -> tuple[str, MediaFile]:
        key = f"episodes/{episode_id}/transcript.vtt"
        stored = archive.store.put_bytes(key, bodies[episode_id], "text/vtt")
        return episode_id, MediaFile(key=key, filename="transcript.vtt", content_type="text/vtt",
                                     size=stored.size, sha256=stored.sha256)

    with ThreadPoolExecutor(16) as pool:
        files = dict(pool.map(put, bodies))

    def apply(document: CatalogData) -> None:
        for episode_id, media in files.items():
            document.episodes[episode_id].files["transcript"] = media

    archive.catalog.change(apply)


def _cold_start(archive: Archive, *options: str) -> dict[str, float]:
    output = subprocess.run([sys.executable, "-m", "bench.coldstart", *options],
                            env=archive_env(archive), cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout
    return json.loads(output.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(sizes: tuple[int, ...]) -> list[Result]:
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as folder, \
                embedded_archive(Path(folder)) as archive:
            add_synthetic(archive.catalog, size)
            add_transcripts(archive)
            first = _cold_start(archive)  # no index anywhere yet: reads every transcript
            new_host = _cold_start(archive, "--fresh-host")  # streams the bucket's snapshot
            figures = _cold_start(archive)  # a restart: opens the host's index file
        label = f"{size:,} episodes"
        results.append(Result("scale", f"{label}: first start, index from every transcript (s)",
                              first["cold_start_s"], 3.0, "s", higher_is_better=False,
                              extra={k: v for k, v in first.items() if k.endswith("_s")}))
        budgets = BUDGETS_100K if size >= 100_000 else BUDGETS
        for key, budget in budgets.items():
            results.append(Result("scale", f"{label}: {key} vs budget {budget:g}",
                                  figures[key], budget, key.rsplit("_", 1)[-1],
                                  higher_is_better=False, target=1.0))
        results.append(Result("scale", f"{label}: search p50 ms vs budget 25",
                              figures["search_p50_ms"], 25.0, "ms", higher_is_better=False))
        results.append(Result("scale", f"{label}: cold start on a new host, index snapshot "
                              f"downloaded (s, info)", new_host["cold_start_s"], budgets[
                                  "cold_start_s"], "s", higher_is_better=False,
                              extra={k: v for k, v in new_host.items() if k.endswith("_s")}))
        results.append(Result("scale", f"{label}: cold-start peak RSS MB (info)",
                              figures["peak_rss_mb"], figures["peak_rss_mb"], "MB",
                              extra={k: v for k, v in figures.items() if k.endswith("_s")}))
    return results
