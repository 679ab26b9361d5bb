"""`archive series list` and `archive series set SLUG [--apple-url URL] [--spotify-url URL]
[--old-feed-url URL]`: where else listeners find a series (#15).

Apple Podcasts and Spotify give no subscribe-by-feed link, so the subscribe panel links to a
series' own pages there once they are known (after submitting the feed to each directory).
An empty value clears a field (archive/series_links.py: validated, audited).
"""

from __future__ import annotations

import argparse
import getpass

from archive.cli import COMMANDS, EXTENSIONS
from archive.config import Settings
from archive.runtime import open_archive
from archive.series_links import set_series_links

FIELDS = {"apple_url": "--apple-url", "spotify_url": "--spotify-url",
          "old_feed_url": "--old-feed-url"}


def series_command(args: argparse.Namespace, settings: Settings) -> int:
    with open_archive(settings) as archive:
        if args.action == "list":
            for series in archive.catalog.refresh().all_series:
                print(f"{series.slug}\t{series.title}\tpodcast:guid {series.podcast_guid}")
                for name in FIELDS:
                    if getattr(series, name):
                        print(f"\t{name}: {getattr(series, name)}")
            return 0
        changes = {name: getattr(args, name) for name in FIELDS
                   if getattr(args, name) is not None}
        if not changes:
            print("Nothing to change: give --apple-url, --spotify-url or --old-feed-url.")
            return 2
        series = set_series_links(archive, args.slug, changes, f"cli:{getpass.getuser()}")
    print(f"Updated series {series.slug}: "
          + ", ".join(f"{name}={value or '(none)'}" for name, value in changes.items()))
    return 0


def add_verbs(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = verbs.add_parser("series", help="list series, or set where else they are listed")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="every series with its podcast:guid and directory links")
    setter = actions.add_parser("set", help="set a series' Apple Podcasts / Spotify pages or "
                                "the feed it was moved from ('' clears)")
    setter.add_argument("slug", metavar="SLUG")
    for name, option in FIELDS.items():
        setter.add_argument(option, dest=name, metavar="URL")


COMMANDS["series"] = series_command
EXTENSIONS.append(add_verbs)
