"""Run a function in a child process with CPU, memory and wall-clock limits.

Decoding an uploaded file runs FFmpeg's C code on hostile bytes: an endless loop, a memory
blow-up or a crash there must cost one child process, never the server. So the work runs in a
child that `resource.setrlimit` bounds, and whatever happens to it comes back as a clear error.

Children are cheap because they are forked from a *zygote*: one small Python process per parent,
started on first use, that has already imported the heavy modules (`PRELOAD`) and does nothing
but fork. (multiprocessing's forkserver would re-import the parent's main script in every child
under `archive serve`, half a second each.) Each call forks twice from the zygote: a *monitor*,
which forks the *worker*, enforces the wall clock and reports how the worker ended; and the
worker, which sets its limits, runs the function and sends progress and the result back.

    run(media.probe.probe, path, limits=Limits(cpu_seconds=60, wall_seconds=90,
                                               memory_bytes=1 << 30), label="reading it")

The function must be importable by name (module level), its arguments and result picklable.
Given `progress=callback`, the function receives `progress=` too, and each call it makes is
relayed to `callback` in the caller's thread.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import resource
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from media.errors import MediaError

T = TypeVar("T")

# Imported once in the zygote, so children start with them loaded (and need not map shared
# libraries under their memory limit). PyAV imports its subtitle module on the first open.
# Later users (an MP3 encoder, speech recognition) add theirs with `preload()` before `run`.
PRELOAD: list[str] = ["av", "av.error", "av.filter", "av.subtitles.stream", "numpy",
                      "media.probe", "media.convert", "media.tags"]
GRACE_SECONDS = 10.0  # beyond the wall limit, before the caller gives up on the monitor itself
_MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one call may use: CPU seconds (all threads), wall-clock seconds, memory in bytes."""

    cpu_seconds: float
    wall_seconds: float
    memory_bytes: int


class WorkFailed(MediaError):
    """The child did not return: the message says why, for the person who asked for the work."""


class OutOfTime(WorkFailed):
    pass


class OutOfMemory(WorkFailed):
    pass


class Crashed(WorkFailed):
    pass


class ChildTraceback(Exception):
    """The traceback in the child, as the cause of its exception re-raised here (for logs)."""

    def __str__(self) -> str:
        return f"\n\"\"\"\n{self.args[0]}\"\"\""


def preload(*modules: str) -> None:
    """Import these in the zygote too (takes effect when it next starts)."""
    PRELOAD.extend(m for m in modules if m not in PRELOAD)


def run(function: Callable[..., T], /, *args: Any, limits: Limits, label: str,
        progress: Callable[..., None] | None = None, **kwargs: Any) -> T:
    """`function(*args, **kwargs)` in a bounded child; its result, or its exception re-raised.

    `label` names the work in error messages ("Stopped {label}: …").
    """
    request = pickle.dumps((function, args, kwargs, limits, progress is not None))
    channel = _ZYGOTE.open_channel()
    try:
        channel.send_bytes(request)
        return _collect(channel, limits, label, progress)
    finally:
        channel.close()


# -- the caller's side ---------------------------------------------------------------------------


def _collect(channel: Connection, limits: Limits, label: str,
             progress: Callable[..., None] | None) -> Any:
    """Read progress, then the worker's outcome, then how it ended (from the monitor)."""
    outcome: tuple[Any, ...] | None = None
    while True:
        if not channel.poll(limits.wall_seconds + GRACE_SECONDS):
            raise OutOfTime(f"Stopped {label}: it took longer than {limits.wall_seconds:g} s.")
        try:
            message = channel.recv()
        except EOFError:
            raise Crashed(f"Stopped {label}: the worker process vanished.") from None
        kind = message[0]
        if kind == "progress" and progress is not None:
            progress(*message[1])
        elif kind == "exit":
            return _outcome(outcome, message[1], message[2], limits, label)
        elif kind != "progress":
            outcome = message


def _outcome(outcome: tuple[Any, ...] | None, code: int, timed_out: bool, limits: Limits,
             label: str) -> Any:
    if timed_out:
        raise OutOfTime(f"Stopped {label}: it took longer than {limits.wall_seconds:g} s.")
    if outcome is None:
        raise _death(code, limits, label)
    if outcome[0] == "ok":
        return outcome[1]
    if outcome[0] == "memory":
        raise OutOfMemory(f"Stopped {label}: it needed more than "
                          f"{limits.memory_bytes // _MiB} MB of memory.")
    error, where = outcome[1], outcome[2]
    raise error from ChildTraceback(where)


def _death(code: int, limits: Limits, label: str) -> WorkFailed:
    if code == -signal.SIGXCPU:
        return OutOfTime(f"Stopped {label}: it needed more than {limits.cpu_seconds:g} s of "
                         "processing time.")
    if code < 0:
        name = signal.Signals(-code).name
        return Crashed(f"Stopped {label}: the worker process crashed ({name}).")
    return Crashed(f"Stopped {label}: the worker process exited unexpectedly (status {code}).")


class _Zygote:
    """The forking process, started on first use and again if it died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._owner = os.getpid()

    def forget_after_fork(self) -> None:
        """In a forked copy of the parent (`--workers N`): start a zygote of our own when needed,
        leaving the parent's alone (and a lock another thread held at the fork behind)."""
        self._lock = threading.Lock()
        self._process, self._control, self._owner = None, None, os.getpid()

    def open_channel(self) -> Connection:
        """A new child, connected to the caller by a socket of its own."""
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                try:
                    socket.send_fds(self._running(), [b"f"], [theirs.fileno()])
                except OSError:  # the zygote died since it was started: start another
                    self._stop()
                    socket.send_fds(self._running(), [b"f"], [theirs.fileno()])
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return Connection(ours.detach())

    def _running(self) -> socket.socket:
        if self._process is not None and self._process.poll() is not None:
            self._stop()
        if self._control is None:
            self._start()
        assert self._control is not None
        return self._control

    def _start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        code = (f"import sys; sys.path[:] = {sys.path!r}; from media.isolation import _serve; "
                f"_serve({theirs.fileno()}, {PRELOAD!r})")
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", code], pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL, start_new_session=True)  # no terminal ^C for children
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._control = ours

    def _stop(self) -> None:
        if self._control is not None:
            self._control.close()  # the zygote exits when its control socket closes
        if self._process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(5)
        self._control, self._process = None, None


_ZYGOTE = _Zygote()
os.register_at_fork(after_in_child=_ZYGOTE.forget_after_fork)


# -- the zygote, the monitor and the worker ------------------------------------------------------


def _serve(control_fd: int, modules: list[str]) -> None:
    """The zygote's loop: for each socket received, fork a monitor that serves it."""
    for name in modules:
        with contextlib.suppress(ImportError):
            __import__(name)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped automatically
    control = socket.socket(fileno=control_fd)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 16, 1)
        except OSError:
            return
        if not message:
            return  # the parent is gone
        for fd in fds:
            if os.fork() == 0:
                control.close()
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                _monitor(fd)
            os.close(fd)


def _monitor(fd: int) -> None:
    """Fork the worker, kill it at the wall-clock limit, report how it ended; never returns."""
    code, timed_out = 1, False
    try:
        channel = Connection(fd)
        function, args, kwargs, limits, relay = pickle.loads(channel.recv_bytes())
        worker = os.fork()
        if worker == 0:
            os._exit(_work(channel, limits, function, args, kwargs, relay))

        def stop(signum: int, frame: object) -> None:
            nonlocal timed_out
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)

        signal.signal(signal.SIGALRM, stop)
        signal.setitimer(signal.ITIMER_REAL, limits.wall_seconds)
        _, status = os.waitpid(worker, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        channel.send(("exit", os.waitstatus_to_exitcode(status), timed_out))
        code = 0
    finally:
        os._exit(code)


def _work(channel: Connection, limits: Limits, function: Callable[..., Any], args: Any,
          kwargs: dict[str, Any], relay: bool) -> int:
    _limit(limits)
    if relay:
        kwargs = {**kwargs, "progress": lambda *values: channel.send(("progress", values))}
    try:
        result = function(*args, **kwargs)
    except MemoryError:
        return _send(channel, ("memory",))
    except BaseException as error:
        return _send(channel, ("raised", _portable(error), traceback.format_exc()))
    return _send(channel, ("ok", result))


def _limit(limits: Limits) -> None:
    cpu = max(1, int(limits.cpu_seconds))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 2))  # SIGXCPU first, SIGKILL after
    # Data, not address space: idle thread arenas and stacks reserve much more than they use.
    resource.setrlimit(resource.RLIMIT_DATA, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _send(channel: Connection, message: tuple[Any, ...]) -> int:
    try:
        channel.send(message)
    except MemoryError:
        return _send(channel, ("memory",)) if message[0] != "memory" else 1
    except (pickle.PicklingError, TypeError, AttributeError) as error:
        channel.send(("raised", RuntimeError(f"the result could not be sent back: {error}"),
                      ""))
    return 0


def _portable(error: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else a RuntimeError that describes it."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error
