"""Placeholder until the feed and page endpoints land (filled in below)."""

from __future__ import annotations

from bench.tools import Result


def run(seconds: int) -> list[Result]:
    return []
