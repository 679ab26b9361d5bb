"""Per-episode rows with titles, for the CSV download, the CLI and the JSON API alike."""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from typing import Any

from archive.catalog import CatalogView
from archive.errors import NotFound
from archive.stats.query import Report

CSV_COLUMNS = ("id", "title", "series", "date", "downloads", "method", "original", "sidecars")


@dataclass(frozen=True)
class EpisodeRow:
    id: str
    title: str
    series: str
    date: str
    downloads: int  # delivery file: IAB downloads, or counted requests when method says so
    method: str  # bytes | requests | mixed
    original: int  # the archival master, reported apart
    sidecars: int  # transcripts, chapters, covers… fetched (one per listener and day)


def episode_rows(report: Report, view: CatalogView) -> list[EpisodeRow]:
    """The report's episodes, most downloaded first, named from the current catalogue
    (an episode deleted since keeps its counts, with an empty title)."""
    rows = []
    for count in report.episodes:
        try:
            episode = view.episode(count.episode_id, include_drafts=True)
            title, when = episode.title, episode.date.isoformat() if episode.date else ""
        except NotFound:
            title, when = "", ""
        rows.append(EpisodeRow(count.episode_id, title, count.series, when, count.downloads,
                               count.method, count.original, count.sidecars))
    return rows


def to_csv(rows: list[EpisodeRow]) -> str:
    """A header row, then one row per episode. Cells that a spreadsheet would run as a formula
    (a title starting with =, +, - or @) are prefixed with an apostrophe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(value) for value in asdict(row).values()])
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def report_json(report: Report, rows: list[EpisodeRow]) -> dict[str, Any]:
    return {
        "since": report.filters.since.isoformat(),
        "until": report.filters.until.isoformat(),
        "series": report.filters.series,
        "episode": report.filters.episode,
        "method": "IAB Podcast Measurement Technical Guidelines v2.3 (see /stats/about)",
        "total": report.total,
        "days": [{"date": day.isoformat(), "downloads": count} for day, count in report.days],
        "episodes": [asdict(row) for row in rows],
        "apps": [{"app": app, "kind": kind, "downloads": n} for app, kind, n in report.apps],
        "devices": [{"device": device, "category": category, "downloads": n}
                    for device, category, n in report.devices],
    }
