"""Podcasting 2.0 JSON chapters: parsing, ordering refusals and round trip."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.chapters import ChapterMark, chapters_json, parse_chapters
from media.errors import InvalidChapters


def _doc(chapters: list, **extra) -> bytes:
    return json.dumps({"version": "1.2.0", "chapters": chapters, **extra}).encode()


def test_parses_the_spec_form_and_tolerates_extra_keys() -> None:
    data = _doc(
        [
            {"startTime": 0, "title": "Intro", "img": "https://x/i.jpg", "toc": True},
            {"startTime": 62.5, "title": "Panel", "url": "https://x", "endTime": 120},
            {"startTime": 120, "title": "Q&A", "location": {"name": "Lab"}},
        ],
        author="Lab",
        podcastName="Talks",
    )
    assert parse_chapters(data) == [
        ChapterMark(0.0, "Intro", img="https://x/i.jpg"),
        ChapterMark(62.5, "Panel", end=120.0, url="https://x"),
        ChapterMark(120.0, "Q&A"),
    ]


def test_equal_start_times_are_tolerated() -> None:
    assert len(parse_chapters(_doc([{"startTime": 5, "title": "a"},
                                    {"startTime": 5, "title": "b"}]))) == 2  # fmt: skip


def test_descending_order_is_refused_with_both_titles() -> None:
    data = _doc([{"startTime": 120, "title": "Panel"}, {"startTime": 60, "title": "Q&A"}])
    with pytest.raises(
        InvalidChapters,
        match=r"ascending order: 'Q&A' at 60 s comes after 'Panel' at 120 s\.",
    ):
        parse_chapters(data)


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe{}", "UTF-8"),
        (b"[]", "JSON object"),
        (json.dumps([{"start": 0, "title": "x"}]).encode(), "JSON object"),
        (json.dumps({"chapters": []}).encode(), "version"),
        (_doc([{"title": "No start"}]), "'No start' needs a startTime"),
        (_doc([{"startTime": -1, "title": "Neg"}]), "needs a startTime"),
        (_doc([{"startTime": "10", "title": "Str"}]), "needs a startTime"),
        (_doc([{"startTime": True, "title": "Bool"}]), "needs a startTime"),
        (_doc([{"startTime": 0, "title": 5}]), "title that is not text"),
        (_doc([{"startTime": 10, "endTime": 5, "title": "Back"}]), "ends before it starts"),
        (_doc(["x"]), "Chapter 1 must be a JSON object"),
    ],
)
def test_refusals(data: bytes, phrase: str) -> None:
    with pytest.raises(InvalidChapters, match=phrase):
        parse_chapters(data)


def test_round_trip_with_duration_and_title() -> None:
    marks = [ChapterMark(0, "Intro", url="https://x"), ChapterMark(30.5, "Talk", img="https://i")]
    data = chapters_json(marks, title="Episode 1", duration=90.0)
    document = json.loads(data.decode("utf-8"))
    assert document["version"] == "1.2.0" and document["title"] == "Episode 1"
    assert document["chapters"][0] == {
        "startTime": 0.0, "title": "Intro", "endTime": 30.5, "url": "https://x",
    }  # fmt: skip
    assert document["chapters"][1]["endTime"] == 90.0
    again = parse_chapters(data)
    assert [(m.start, m.title, m.url, m.img) for m in again] == [
        (0.0, "Intro", "https://x", ""), (30.5, "Talk", "", "https://i"),
    ]  # fmt: skip


def test_json_is_utf8_not_escaped() -> None:
    assert "Café".encode() in chapters_json([ChapterMark(0, "Café")])


@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))  # fmt: skip
def test_any_json_either_parses_or_is_refused(value: object) -> None:
    data = json.dumps({"version": "1.2.0", "chapters": value}).encode()
    try:
        marks = parse_chapters(data)
    except InvalidChapters as error:
        assert str(error).endswith(".")
    else:
        assert [m.start for m in marks] == sorted(m.start for m in marks)
