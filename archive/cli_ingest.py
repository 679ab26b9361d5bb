"""CLI verbs that add recordings: `archive ingest`, `archive import`, `archive demo`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from archive.cli import COMMANDS, EXTENSIONS, fail
from archive.config import Settings
from archive.errors import ArchiveError
from archive.ingest import Metadata, ingest
from archive.manifest import read_manifest
from archive.runtime import open_archive


class ProgressLine:
    """One self-overwriting line on a terminal; plain stage lines otherwise (logs, CI)."""

    def __init__(self, stream: Any = sys.stderr, prefix: str = "") -> None:
        self.stream = stream
        self.prefix = prefix
        self.tty = stream.isatty()
        self.stage = ""

    def __call__(self, stage: str, fraction: float) -> None:
        if self.tty:
            filled = int(fraction * 30)
            bar = "#" * filled + "-" * (30 - filled)
            self.stream.write(f"\r{self.prefix}{stage:<18} [{bar}] {fraction:4.0%}")
            self.stream.flush()
        elif stage != self.stage:
            self.stream.write(f"{self.prefix}{stage}…\n")
        self.stage = stage

    def close(self) -> None:
        if self.tty and self.stage:
            self.stream.write("\n")


def metadata_from_args(args: argparse.Namespace) -> Metadata:
    return Metadata(
        title=args.title, series=args.series, date=args.date, speakers=args.speaker or [],
        description=args.description or "", tags=args.tag or [], licence=args.licence,
        event=args.event or "", location=args.location or "", language=args.language,
        season=args.season, number=args.episode, draft=args.draft,
        artwork=args.artwork, transcript=args.transcript, chapters=args.chapters,
        source_filename=Path(args.file).name,
    )


def ingest_command(args: argparse.Namespace, settings: Settings) -> int:
    with open_archive(settings) as archive:
        progress = ProgressLine()
        try:
            episode = ingest(archive, Path(args.file), metadata_from_args(args), progress=progress)
        finally:
            progress.close()
    print(episode.id)
    print(f"{settings.base_url}/episodes/{episode.slug}")
    return 0


def import_command(args: argparse.Namespace, settings: Settings) -> int:
    if getattr(args, "feed", None):  # another host's feed: archive/cli_import.py
        from archive.cli_import import feed_import_command

        return feed_import_command(args, settings)
    if not args.manifest:
        return fail("import needs a MANIFEST (CSV or YAML) or --feed URL_OR_FILE.")
    rows = read_manifest(Path(args.manifest))
    results: list[tuple[int, str, str]] = []
    with open_archive(settings) as archive:
        for number, row in enumerate(rows, start=1):
            label = f"[{number}/{len(rows)}] "
            progress = ProgressLine(prefix=label)
            try:
                if isinstance(row, ArchiveError):
                    raise row
                path, meta = row
                episode = ingest(archive, path, meta, progress=progress)
                results.append((number, "ok", f"{episode.id} {episode.title}"))
            except ArchiveError as error:
                results.append((number, "FAILED", error.message))
            except OSError as error:  # one unreadable file must not stop the batch
                results.append((number, "FAILED", f"{error.strerror or error}."))
            finally:
                progress.close()
    print_summary(results)
    failed = sum(1 for _, status, _ in results if status != "ok")
    if failed:
        return fail(f"{failed} of {len(results)} recordings failed to import.")
    return 0


def print_summary(results: list[tuple[int, str, str]]) -> None:
    print(f"{'row':>4}  {'status':<7} detail")
    for number, status, detail in results:
        print(f"{number:>4}  {status:<7} {detail}")
    ok = sum(1 for _, status, _ in results if status == "ok")
    print(f"{ok} imported, {len(results) - ok} failed.")


def demo_command(args: argparse.Namespace, settings: Settings) -> int:
    from archive.demo import load_demo

    with open_archive(settings) as archive:
        if args.if_empty and archive.catalog.refresh().data.episodes:
            print("The archive already has recordings; demo content not loaded.")
            return 0
        episodes = load_demo(archive, progress=ProgressLine())
    print(f"Loaded {len(episodes)} demo recordings.")
    return 0


def add_verbs(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = verbs.add_parser("ingest", help="add one recording")
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--title", required=True)
    parser.add_argument("--series", required=True)
    parser.add_argument("--date", help="YYYY-MM-DD")
    parser.add_argument("--speaker", action="append", metavar="'Name;role;affiliation;ORCID'")
    parser.add_argument("--description")
    parser.add_argument("--tag", action="append")
    parser.add_argument("--licence", "--license", dest="licence", help="e.g. cc-by-4.0")
    parser.add_argument("--event")
    parser.add_argument("--location")
    parser.add_argument("--language", help="ISO 639, e.g. en-gb")
    parser.add_argument("--season", type=int)
    parser.add_argument("--episode", type=int)
    parser.add_argument("--artwork", type=Path, metavar="IMG")
    parser.add_argument("--transcript", type=Path, metavar="VTT|SRT")
    parser.add_argument("--chapters", type=Path, metavar="JSON")
    parser.add_argument("--draft", action="store_true", help="store without publishing")

    importer = verbs.add_parser("import", help="add many recordings from a CSV or YAML manifest, "
                                "or move in from another host (--feed)")
    importer.add_argument("manifest", metavar="MANIFEST", nargs="?")
    from archive.cli_import import add_feed_options

    add_feed_options(importer)

    demo = verbs.add_parser("demo", help="load the demo recordings")
    demo.add_argument("--if-empty", action="store_true", help="only into an empty archive")


COMMANDS.update({"ingest": ingest_command, "import": import_command, "demo": demo_command})
EXTENSIONS.append(add_verbs)
