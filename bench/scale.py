"""Placeholder (filled in below)."""

from __future__ import annotations

from bench.tools import Result


def run(sizes: tuple[int, ...]) -> list[Result]:
    return []
