"""The `archive` command. Every verb opens the archive the same way as the web app.

A failure prints one readable line to stderr and exits non-zero; a traceback is a bug.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from archive.config import Settings
from archive.errors import ArchiveError
from archive.runtime import Archive, open_archive

Command = Callable[[argparse.Namespace, Settings], int]
COMMANDS: dict[str, Command] = {}


def command(name: str) -> Callable[[Command], Command]:
    def register(function: Command) -> Command:
        COMMANDS[name] = function
        return function

    return register


def fail(message: str) -> int:
    print(f"archive: {message}", file=sys.stderr)
    return 1


@command("serve")
def serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    options: dict[str, Any] = {
        "host": args.host, "port": args.port, "log_level": "info", "proxy_headers": True,
        "forwarded_allow_ips": args.forwarded_allow_ips, "timeout_graceful_shutdown": 5,
        # Access logs carry listeners' addresses: off unless asked for (privacy first).
        "access_log": args.access_log,
    }
    workers = args.workers or os.cpu_count() or 1
    if workers == 1:
        from archive.web.app import create_app

        uvicorn.run(create_app(settings, demo_if_empty=args.demo_if_empty,
                               job_workers=args.job_workers), **options)
        return 0
    from archive.web.processes import serve_processes

    serve_processes(settings, workers=workers, demo_if_empty=args.demo_if_empty,
                    job_workers=args.job_workers, options=options)
    return 0


@command("reindex")
def reindex_command(args: argparse.Namespace, settings: Settings) -> int:
    from archive.fixity import reindex

    def progress(done: int, total: int) -> None:
        end = "\n" if done == total or not sys.stderr.isatty() else ""
        print(f"\rread {done:,} of {total:,} meta.json", end=end, file=sys.stderr, flush=True)

    with open_archive(settings) as archive:
        data = reindex(archive.catalog, progress)
    print(f"Rebuilt the catalogue: {len(data.episodes)} episodes in {len(data.series)} series.")
    return 0


@command("verify")
def verify_command(args: argparse.Namespace, settings: Settings) -> int:
    from archive.fixity import empty_trash, verify

    if args.empty_trash:
        if args.older_than is None:
            return fail("--empty-trash needs --older-than DAYS (0 empties the whole trash).")
        if args.repair:
            return fail("--empty-trash runs on its own: run verify --repair separately.")
        with open_archive(settings) as archive:
            removed = empty_trash(archive.store, timedelta(days=args.older_than))
        for key in removed:
            print(f"REMOVED  {key}")
        print(f"Removed {len(removed)} objects from the trash.")
        return 0
    with open_archive(settings) as archive:
        report = verify(
            archive.catalog,
            repair=args.repair,
            grace=timedelta(minutes=args.grace),
            checksums=not args.quick,
            force=args.force,
        )
    for line in report.damaged:
        print(f"DAMAGED  {line}")
    for key in report.orphans:
        print(f"ORPHAN   {key}")
    for key in report.repaired:
        print(f"REPAIRED {key}")
    for key, target in report.trashed:
        print(f"TRASHED  {key} -> {target}")
    print(
        f"Checked {report.checked} objects: {len(report.damaged)} damaged, "
        f"{len(report.orphans)} orphaned, {len(report.repaired)} repaired, "
        f"{len(report.trashed)} moved to trash."
    )
    return 0 if report.ok else 1


def _whole(value: str) -> int:
    """argparse type: 0 or more."""
    if not value.isdigit():
        raise argparse.ArgumentTypeError("must be a whole number (0 or more)")
    return int(value)


def _amount(unit: str) -> Callable[[str], float]:
    """An argparse type: a finite number of `unit`, 0 or more (a timedelta can hold it)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number of {unit}") from None
        if not 0 <= value <= 10_000_000:  # also refuses nan and inf
            raise argparse.ArgumentTypeError(f"give a number of {unit} from 0 to 10000000")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archive", description=__doc__)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    serve_parser = verbs.add_parser("serve", help="run the web app")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--forwarded-allow-ips", default="127.0.0.1",
                              help="proxies trusted for X-Forwarded-* headers")
    serve_parser.add_argument("--demo-if-empty", action="store_true",
                              help="load the demo recordings in the background when empty")
    serve_parser.add_argument("--access-log", action="store_true",
                              help="log every request with the client's address (off: "
                              "listeners' addresses are personal data)")
    serve_parser.add_argument("--workers", type=_whole, default=0, metavar="N",
                              help="HTTP worker processes (default: one per core)")
    serve_parser.add_argument("--job-workers", type=int, default=1, metavar="N",
                              help="background jobs (transcripts…) at a time, in a child "
                              "process; 0 = none (run `archive worker` elsewhere)")

    verbs.add_parser("reindex", help="rebuild catalog.json from every episode's meta.json")

    verify_parser = verbs.add_parser("verify", help="re-check checksums and find orphans")
    verify_parser.add_argument("--repair", action="store_true",
                               help="move orphaned objects to trash/, restore missing meta.json, "
                               "finish interrupted deletes")
    verify_parser.add_argument("--grace", type=_amount("minutes"), default=1440,
                               metavar="MINUTES", help="leave objects younger than this alone: "
                               "uploads in flight (default: a day)")
    verify_parser.add_argument("--force", action="store_true",
                               help="repair even when it moves more than 10%% of the objects")
    verify_parser.add_argument("--quick", action="store_true",
                               help="check sizes only, do not re-read every byte")
    verify_parser.add_argument("--empty-trash", action="store_true",
                               help="delete what verify --repair moved to trash/ (only that)")
    verify_parser.add_argument("--older-than", type=_amount("days"), metavar="DAYS",
                               help="with --empty-trash: what has been there this long")

    for extend in EXTENSIONS:
        extend(verbs)
    return parser


# Modules that add verbs (ingest, users…) register a function here.
EXTENSIONS: list[Callable[[argparse._SubParsersAction], None]] = []  # type: ignore[type-arg]


def main(argv: Sequence[str] | None = None) -> int:
    _load_extensions()
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        return COMMANDS[args.verb](args, settings)
    except ArchiveError as error:
        return fail(error.message)
    except OSError as error:  # a file the user named cannot be read, a folder not written
        where = f" ({error.filename})" if error.filename else ""
        return fail(f"{error.strerror or error}{where}.")
    except KeyboardInterrupt:
        return fail("interrupted.")


def _load_extensions() -> None:
    """Import the modules that register more verbs (kept apart to keep this file small)."""
    import importlib

    for module in ("archive.cli_stats",  # listening statistics (#13)
                   "archive.cli_ingest", "archive.cli_users", "archive.cli_tasks",
                   "archive.cli_preserve",  # after cli_ingest: it extends `import`
                   "archive.cli_series"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            if error.name != module:
                raise


def with_archive(settings: Settings, work: Callable[[Archive], int]) -> int:
    with open_archive(settings) as archive:
        return work(archive)


if __name__ == "__main__":  # `python -m archive.cli`: use the imported module's registry
    from archive.cli import main as imported_main

    sys.exit(imported_main())
