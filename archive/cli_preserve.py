"""Preservation verbs: `archive export --bagit DIR [--series SLUG] [--since DATE]` and
`archive import --bagit DIR`.

`import` is one verb with several sources (a manifest in archive/cli_ingest.py, `--feed` in
archive/cli_import.py); this module adds `--bagit` to that same parser and hands a `--bagit`
run to `import_bagit_command`, leaving every other run to the verb's own command.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from archive.cli import COMMANDS, EXTENSIONS, Command, fail
from archive.config import Settings
from archive.runtime import open_archive


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (use YYYY-MM-DD)") from None


def export_command(args: argparse.Namespace, settings: Settings) -> int:
    from archive.bagit_io import export_bags

    with open_archive(settings) as archive:
        bags = export_bags(archive, args.bagit, series=args.series, since=args.since,
                           progress=print)
    print(f"Exported {len(bags)} bags to {args.bagit}.")
    return 0


def import_bagit_command(args: argparse.Namespace, settings: Settings) -> int:
    from archive.bagit_io import import_bags

    if getattr(args, "manifest", None) or getattr(args, "feed", None):
        return fail("--bagit imports bags only: give no MANIFEST or --feed with it.")
    with open_archive(settings) as archive:
        episodes = import_bags(archive, args.bagit, progress=print)
    print(f"Imported {len(episodes)} episodes from {args.bagit}.")
    return 0


def _with_bagit(original: Command) -> Command:
    def import_command(args: argparse.Namespace, settings: Settings) -> int:
        if getattr(args, "bagit", None):
            return import_bagit_command(args, settings)
        if not (getattr(args, "manifest", None) or getattr(args, "feed", None)):
            return fail("import needs a MANIFEST (CSV or YAML), --feed URL_OR_FILE or "
                        "--bagit DIR.")
        return original(args, settings)

    import_command.with_bagit = True  # type: ignore[attr-defined]
    return import_command


def add_verbs(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    export = verbs.add_parser("export", help="write preservation packages (BagIt bags)")
    export.add_argument("--bagit", required=True, type=Path, metavar="DIR",
                        help="one bag per episode under DIR")
    export.add_argument("--series", metavar="SLUG", help="only this series")
    export.add_argument("--since", type=_day, metavar="DATE",
                        help="only episodes changed on or after this day (YYYY-MM-DD, UTC)")
    COMMANDS["export"] = export_command

    importer = verbs.choices.get("import")
    if importer is None:
        return
    importer.add_argument("--bagit", type=Path, metavar="DIR",
                          help="bags made by `archive export --bagit` (a bag, or a folder of "
                          "them): all are validated, then all imported or none")
    for action in importer._actions:  # a bag needs no MANIFEST
        if action.dest == "manifest":
            action.nargs, action.required = "?", False
    if not getattr(COMMANDS["import"], "with_bagit", False):
        COMMANDS["import"] = _with_bagit(COMMANDS["import"])


EXTENSIONS.append(add_verbs)
