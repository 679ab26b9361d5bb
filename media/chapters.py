"""Podcasting 2.0 JSON chapters: parse an uploaded file and write our own.

Spec: https://github.com/Podcastindex-org/podcast-namespace/blob/main/chapters/jsonChapters.md
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

from media.errors import InvalidChapters

SPEC_VERSION = "1.2.0"


# Thirty days: longer than any recording, and within ID3 CHAP's 32-bit milliseconds.
MAX_SECONDS = 30 * 24 * 3600

@dataclass
class ChapterMark:
    """One chapter; shared by probe (container chapters), tags (ID3 CHAP) and JSON chapters."""

    start: float
    title: str
    end: float | None = None
    url: str = ""
    img: str = ""


def parse_chapters(data: bytes) -> list[ChapterMark]:
    """Read a JSON chapters file, refusing anything a podcast app would choke on."""
    document = _load_json(data)
    if not isinstance(document, dict) or not isinstance(document.get("chapters"), list):
        raise InvalidChapters('The chapters file must be a JSON object with a "chapters" list.')
    if not isinstance(document.get("version"), str):
        raise InvalidChapters('The chapters file must say which "version" of the format it uses.')
    marks = [_parse_chapter(i, item) for i, item in enumerate(document["chapters"])]
    _check_order(marks)
    return marks


def _load_json(data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise InvalidChapters("The chapters file must be UTF-8 text.") from None
    except json.JSONDecodeError as exc:
        raise InvalidChapters(
            f"The chapters file is not valid JSON (line {exc.lineno}: {exc.msg})."
        ) from None


def _parse_chapter(index: int, item: Any) -> ChapterMark:
    label = f"Chapter {index + 1}"
    if not isinstance(item, dict):
        raise InvalidChapters(f"{label} must be a JSON object.")
    title = item.get("title", "")
    if not isinstance(title, str):
        raise InvalidChapters(f"{label} has a title that is not text.")
    label = f"'{title}'" if title else label
    start = _seconds(item.get("startTime"), f"{label} needs a startTime in seconds (0 or more).")
    end = None
    if item.get("endTime") is not None:
        end = _seconds(item["endTime"], f"{label} has an endTime that is not a number of seconds.")
        if end < start:
            raise InvalidChapters(f"{label} ends before it starts.")
    return ChapterMark(
        start=start, title=title, end=end, url=_text(item, "url"), img=_text(item, "img")
    )


def _seconds(value: Any, message: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidChapters(message)
    try:
        seconds = float(value)
    except OverflowError:  # an int with hundreds of digits
        raise InvalidChapters(message) from None
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SECONDS:
        raise InvalidChapters(message)
    return seconds


def _text(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    return value if isinstance(value, str) else ""


def _check_order(marks: list[ChapterMark]) -> None:
    """Equal start times are tolerated (some tools emit them); going backwards is not."""
    for before, after in itertools.pairwise(marks):
        if after.start < before.start:
            raise InvalidChapters(
                f"Chapters must be in ascending order: '{after.title}' at {after.start:g} s "
                f"comes after '{before.title}' at {before.start:g} s."
            )


def chapters_json(
    chapters: list[ChapterMark], *, title: str = "", duration: float | None = None
) -> bytes:
    """Write chapters in the spec form; the last chapter ends at ``duration`` when known."""
    items = []
    for i, mark in enumerate(chapters):
        nxt = chapters[i + 1].start if i + 1 < len(chapters) else duration
        item: dict[str, Any] = {"startTime": float(mark.start), "title": mark.title}
        end = mark.end if mark.end is not None else nxt
        if end is not None:
            item["endTime"] = float(end)
        if mark.url:
            item["url"] = mark.url
        if mark.img:
            item["img"] = mark.img
        items.append(item)
    document: dict[str, Any] = {"version": SPEC_VERSION}
    if title:
        document["title"] = title
    document["chapters"] = items
    return json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
