"""`archive stats`: per-episode downloads as a table or CSV, and `archive stats update-agents`.

Before counting, every finished day is rolled up (as the servers do every ten minutes), so a
deployment without a running server still gets its numbers and its day keys destroyed.
"""

from __future__ import annotations

import argparse
import sys

from archive.cli import COMMANDS, EXTENSIONS
from archive.config import Settings
from archive.runtime import open_archive


def stats_command(args: argparse.Namespace, settings: Settings) -> int:
    if args.stats_action == "update-agents":
        return update_agents_command(args, settings)
    from archive.stats.cache import cache_folder
    from archive.stats.export import episode_rows, to_csv
    from archive.stats.query import build_report, make_filters, method_label
    from archive.stats.rollup import roll_up_due

    filters = make_filters(args.since, args.until, args.series)  # before touching storage
    with open_archive(settings) as archive:
        cache = cache_folder(settings.data_dir)
        roll_up_due(archive.store, cache)
        report = build_report(archive.store, cache, filters)
        rows = episode_rows(report, archive.catalog.view())
    if args.csv:
        sys.stdout.write(to_csv(rows))
        return 0
    print(f"Downloads from {filters.since} to {filters.until}"
          + (f", series {filters.series}" if filters.series else "")
          + " (IAB v2.3, one per listener per episode per UTC day):")
    print(f"{'DOWNLOADS':>9} {'ORIGINAL':>8} {'SIDECARS':>8}  {'COUNTED AS':<12} {'ID':<14} TITLE")
    for row in rows:
        print(f"{row.downloads:>9} {row.original:>8} {row.sidecars:>8}  {row.method:<12} "
              f"{row.id:<14} {row.title}")
    print(f"Total: {report.total} "
          + (f"({', '.join(method_label(m) for m in report.methods)})." if report.methods
             else "downloads."))
    return 0


def update_agents_command(args: argparse.Namespace, settings: Settings) -> int:
    from archive.stats.agents import DEFAULT_SOURCE, read_source, update_agents

    source = args.source or DEFAULT_SOURCE
    files = read_source(source)  # fetched and checked before storage is opened
    with open_archive(settings) as archive:
        classifier = update_agents(archive.store, source, files)
    counts = ", ".join(f"{len(entries)} {name}" for name, entries in classifier.files.items())
    skipped = f"; {classifier.skipped} patterns Python cannot read left out" \
        if classifier.skipped else ""
    print(f"Stored the user-agent patterns from {source}: {counts}{skipped}.")
    return 0


def add_verbs(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    stats = verbs.add_parser("stats", help="listening statistics (IAB v2.3 downloads)")
    stats.add_argument("--since", metavar="DATE", help="first day, YYYY-MM-DD (default: "
                       "30 days before --until)")
    stats.add_argument("--until", metavar="DATE", help="last day, YYYY-MM-DD (default: today, "
                       "UTC)")
    stats.add_argument("--series", metavar="SLUG", help="only this series")
    stats.add_argument("--csv", action="store_true", help="CSV with a header row")
    actions = stats.add_subparsers(dest="stats_action", metavar="[update-agents]")
    agents = actions.add_parser("update-agents", help="fetch the OPAWG user-agents-v2 patterns "
                                "and keep them in the bucket")
    agents.add_argument("source", nargs="?", metavar="URL_OR_PATH",
                        help="a folder or URL prefix holding bots.json, apps.json, "
                        "libraries.json, browsers.json (and devices.json)")


COMMANDS["stats"] = stats_command
EXTENSIONS.append(add_verbs)
