"""`archive import --feed URL_OR_FILE`: move a podcast in from another host (#15).

Kept apart from `archive/cli_ingest.py`, which owns the one `import` verb and hands a `--feed`
run over to `feed_import_command`; the work itself is in `archive/feed_import.py`.
"""

from __future__ import annotations

import argparse
import sys

from archive.config import Settings


def add_feed_options(importer: argparse.ArgumentParser) -> None:
    feed = importer.add_argument_group("moving in from another host")
    feed.add_argument("--feed", metavar="URL_OR_FILE",
                      help="another host's podcast RSS feed (an http(s) address or a saved file)")
    feed.add_argument("--series", metavar="SLUG",
                      help="with --feed: the series to add to (default: the feed's title)")
    feed.add_argument("--dry-run", action="store_true",
                      help="with --feed: list what would be imported, change nothing")
    feed.add_argument("--allow-private", action="store_true",
                      help="with --feed: allow downloads from private, loopback and link-local "
                      "addresses (for tests and intranet hosts)")
    feed.add_argument("--concurrency", type=int, default=3, metavar="N",
                      help="with --feed: downloads at a time (1-8, default 3)")


def feed_import_command(args: argparse.Namespace, settings: Settings) -> int:
    from archive.feed_import import run_import

    return run_import(settings, source=args.feed, series=args.series, dry_run=args.dry_run,
                      allow_private=args.allow_private, concurrency=args.concurrency,
                      out=sys.stdout, err=sys.stderr)
