"""CLI verbs for enrichment tasks: `archive worker`, `archive jobs`, `archive transcribe`,
`archive enrich`.

`transcribe` and `enrich` queue tasks in the bucket and, unless told `--no-wait`, work on the
queue themselves until their tasks are done, with a progress line; `archive serve`'s job workers
or `archive worker` processes elsewhere may take some of them meanwhile (leases keep that safe).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable

from archive.cli import COMMANDS, EXTENSIONS
from archive.config import Settings
from archive.enrich import KINDS, make_worker, request, task_queue, wanted
from archive.errors import InvalidInput, NotFound
from archive.rights import Scheduler, publish_due
from archive.runtime import Archive, open_archive
from archive.tasks import BACKLOG, TaskQueue


def worker_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run enrichment tasks until SIGTERM / Ctrl-C (a task cut short is retried elsewhere)."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with open_archive(settings) as archive:
        worker = make_worker(archive, concurrency=args.concurrency)
        Scheduler(archive).start(stop)  # scheduled (embargoed) episodes, published when due
        print(f"Worker ready ({args.concurrency} at a time); model "
              f"{settings.transcribe_model}.", flush=True)
        worker.run(stop)
    return 0


def publish_due_command(args: argparse.Namespace, settings: Settings) -> int:
    """Publish the scheduled episodes whose date has passed (what `archive worker` does every
    minute), for a deployment that runs no worker: from cron."""
    with open_archive(settings) as archive:
        published = publish_due(archive)
    for episode in published:
        print(f"Published {episode.id} {episode.title}")
    if not published:
        print("Nothing scheduled is due.")
    return 0


def jobs_command(args: argparse.Namespace, settings: Settings) -> int:
    with open_archive(settings) as archive:
        queue = task_queue(archive)
        tasks = [*queue.waiting(), *queue.failures()]
    if not tasks:
        print("No jobs are waiting, running or failed.")
        return 0
    print(f"{'STATE':<8} {'KIND':<10} {'EPISODE':<14} {'TRIES':>5}  DETAIL")
    for task in tasks:
        state = "running" if task.leased() else ("failed" if task.state == "failed"
                                                 else "pending")
        detail = task.error if state != "running" else f"on {task.owner}"
        print(f"{state:<8} {task.kind:<10} {task.episode_id:<14} {task.attempts:>5}  {detail}")
    return 0


def transcribe_command(args: argparse.Namespace, settings: Settings) -> int:
    if settings.transcribe_model == "off":
        raise InvalidInput("Automatic transcription is off: set ARCHIVE_TRANSCRIBE_MODEL.")
    return _enrich(args, settings, ["transcribe"])


def enrich_command(args: argparse.Namespace, settings: Settings) -> int:
    return _enrich(args, settings, list(args.kind or KINDS))


def _enrich(args: argparse.Namespace, settings: Settings, kinds: list[str]) -> int:
    if not args.episodes and not args.missing:
        raise InvalidInput("Name episode ids, or give --missing for every episode lacking it.")
    with open_archive(settings) as archive:
        queue = task_queue(archive)
        targets = _targets(archive, args, kinds)
        queued = [(kind, episode_id) for episode_id, wants in targets
                  for kind in request(queue, episode_id, wants, priority=BACKLOG,
                                      force=args.force)]
        print(f"Queued {len(queued)} task(s) for {len(targets)} episode(s).", flush=True)
        if args.no_wait or not queued:
            return 0
        return _work_until_done(archive, queue, queued, args.concurrency)


def _targets(archive: Archive, args: argparse.Namespace, kinds: list[str]
             ) -> list[tuple[str, list[str]]]:
    """(episode id, kinds) for the named episodes, or every one missing something."""
    data = archive.catalog.refresh().data
    episodes = data.episodes
    model = archive.settings.transcribe_model
    if args.missing:
        found = [(e.id, [k for k in wanted(e, model, data.series.get(e.series)) if k in kinds])
                 for e in episodes.values()]
        return [(episode_id, wants) for episode_id, wants in found if wants]
    for episode_id in args.episodes:
        if episode_id not in episodes:
            raise NotFound(f"There is no episode {episode_id!r}.")
    return [(episode_id, kinds) for episode_id in dict.fromkeys(args.episodes)]


def _work_until_done(archive: Archive, queue: TaskQueue, queued: list[tuple[str, str]],
                     concurrency: int) -> int:
    ours = {f"{kind}-{episode_id}" for kind, episode_id in queued}
    worker = make_worker(archive, concurrency=concurrency, queue=queue)
    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    runner.start()
    try:
        left = _wait(queue, ours, stop, _progress(len(ours)))
    finally:
        stop.set()
        queue.wakeup.set()
        runner.join()
    failed = [t for t in queue.failures() if t.id in ours]
    for task in failed:
        print(f"FAILED   {task.kind} {task.episode_id}: {task.error}", file=sys.stderr)
    print(f"Done: {len(ours) - len(failed) - left} finished, {len(failed)} failed.")
    return 1 if failed or left else 0


def _wait(queue: TaskQueue, ours: set[str], stop: threading.Event,
          show: Callable[[int], None]) -> int:
    """Poll the queue until none of our tasks is left in it; returns how many still are."""
    left = len(ours)
    while left and not stop.wait(1.0):
        left = len(ours & {t.id for t in queue.waiting()})
        show(len(ours) - left)
    return left


def _progress(total: int) -> Callable[[int], None]:
    def show(done: int) -> None:
        if sys.stderr.isatty():
            width = 30
            filled = round(width * done / max(total, 1))
            print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="",
                  file=sys.stderr, flush=True)
            if done == total:
                print(file=sys.stderr)
        else:
            print(f"{done}/{total} done", file=sys.stderr, flush=True)

    return show


def concurrency(value: str) -> int:
    """argparse type: a whole number of at least 1."""
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError("must be a whole number of at least 1")
    return int(value)


def _add_enrich_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("episodes", nargs="*", metavar="EPISODE_ID")
    parser.add_argument("--missing", action="store_true",
                        help="every episode that lacks it")
    parser.add_argument("--force", action="store_true",
                        help="redo it even over a transcript a person supplied or corrected")
    parser.add_argument("--no-wait", action="store_true",
                        help="only queue the work for the running job workers")
    parser.add_argument("--concurrency", type=concurrency, default=1, metavar="N")


def add_verbs(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    worker = verbs.add_parser("worker", help="run background jobs (transcripts, loudness…)")
    worker.add_argument("--concurrency", type=concurrency, default=1, metavar="N",
                        help="jobs at a time (the speech model is loaded once)")
    verbs.add_parser("jobs", help="list waiting, running and failed background jobs")
    verbs.add_parser("publish-due", help="publish scheduled episodes whose date has passed")
    transcribe = verbs.add_parser("transcribe", help="transcribe episodes automatically")
    _add_enrich_options(transcribe)
    enrich = verbs.add_parser("enrich", help="loudness, waveform and transcript for episodes")
    _add_enrich_options(enrich)
    enrich.add_argument("--kind", action="append", choices=KINDS,
                        help="only this kind of enrichment (repeatable)")


COMMANDS.update({"worker": worker_command, "jobs": jobs_command,
                 "transcribe": transcribe_command, "enrich": enrich_command,
                 "publish-due": publish_due_command})
EXTENSIONS.append(add_verbs)
