"""Functions the isolation tests run in a child process (importable by name, light to import)."""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Callable

from media.errors import InvalidRecording


def add(a: int, b: int) -> int:
    return a + b


def count_up(steps: int, progress: Callable[[str, float], None]) -> int:
    for step in range(steps):
        progress("counting", step / steps)
    return steps


def refuse(message: str) -> None:
    raise InvalidRecording(message)


def divide_by_zero() -> float:
    return 1 / 0


def segfault() -> None:
    ctypes.string_at(0)  # reads address 0: SIGSEGV, as a decoder bug would


def abort() -> None:
    os.kill(os.getpid(), signal.SIGABRT)


def spin() -> None:
    while True:
        pass


def sleep_forever() -> None:
    while True:
        time.sleep(1)


def hog_memory(megabytes: int) -> int:
    blocks = [bytearray(1024 * 1024) for _ in range(megabytes)]
    return len(blocks)


def pid() -> int:
    return os.getpid()


def unpicklable_result() -> object:
    return lambda: None
