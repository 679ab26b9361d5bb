"""WebVTT and SRT transcripts: parsing the odd files people upload, refusals, and the WebVTT,
SRT and Podcasting 2.0 JSON we write (with speakers as WebVTT voice spans)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.errors import InvalidTranscript
from media.transcripts import (
    Cue,
    Transcript,
    parse_transcript,
    plain_text,
    to_json,
    to_srt,
    to_vtt,
)

VTT = """WEBVTT - lab talk

NOTE This is a comment
spanning two lines

STYLE
::cue { color: yellow }

intro
00:01.000 --> 00:04.500 align:start position:10%
<v Ada Lovelace>Welcome to the <b>lab</b> talk.</v>

00:00:05.000 --> 00:00:07.250
Fish &amp; chips
and more

01:00:00.000 --> 01:00:01.000
An hour in.
"""

SRT = """1
00:00:01,000 --> 00:00:02,500
Hello there.

2
00:00:03,000 --> 00:00:04,000
<i>Second</i> cue
on two lines.
"""


def test_webvtt_with_notes_styles_settings_and_voices() -> None:
    transcript = parse_transcript(VTT.encode())
    assert transcript.format == "vtt"
    assert transcript.cues == [
        Cue(1.0, 4.5, "Welcome to the lab talk.", speaker="Ada Lovelace"),
        Cue(5.0, 7.25, "Fish & chips\nand more"),
        Cue(3600.0, 3601.0, "An hour in."),
    ]


def test_srt() -> None:
    transcript = parse_transcript(SRT.encode())
    assert transcript.format == "srt"
    assert transcript.cues == [
        Cue(1.0, 2.5, "Hello there."),
        Cue(3.0, 4.0, "Second cue\non two lines."),
    ]


@pytest.mark.parametrize("text", [VTT, SRT])
def test_crlf_and_bom_are_handled(text: str) -> None:
    plain = parse_transcript(text.encode())
    windows = parse_transcript(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    assert windows == plain


def test_to_vtt_round_trips_and_escapes() -> None:
    original = Transcript("srt", [Cue(1.0, 2.5, "a < b --> c & d"), Cue(3661.5, 3662, "x\n\ny")])
    vtt = to_vtt(original)
    assert vtt.startswith("WEBVTT\n\n00:00:01.000 --> 00:00:02.500\n")
    assert "01:01:01.500 --> 01:01:02.000" in vtt
    assert "\n\n\n" not in vtt and vtt.count("-->") == 2
    again = parse_transcript(vtt.encode())
    assert again.format == "vtt"
    assert [c.text for c in again.cues] == ["a < b --> c & d", "x\ny"]


def test_plain_text() -> None:
    assert plain_text(parse_transcript(SRT.encode())) == "Hello there.\nSecond cue\non two lines."


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (b"", "neither WebVTT nor SRT"),
        (b"Just some notes about the talk.", "neither WebVTT nor SRT"),
        (b"<html><body>transcript</body></html>", "neither WebVTT nor SRT"),
        (b"WEBVTT\n\nNOTE only a note\n", "no cues"),
        (b"WEBVTTX\n\n00:01.000 --> 00:02.000\nhi\n", "neither WebVTT nor SRT"),
        (b"WEBVTT\n\n00:05.000 --> 00:02.000\nbackwards\n", "ends before it starts"),
        (b"WEBVTT\n\n00:aa.000 --> 00:02.000\nbad\n", "cannot be read"),
        (b"WEBVTT\n\njust text without timing\n", "no cue timing"),
        ("WEBVTT\n\n00:01.000 --> 00:02.000\ncafé\n".encode("latin-1"), "UTF-8"),
        (b"1\n00:00:01,000 --> 00:00:00,500\nno\n", "ends before it starts"),
    ],
)
def test_refusals(data: bytes, phrase: str) -> None:
    with pytest.raises(InvalidTranscript, match=phrase):
        parse_transcript(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: ("WEBVTT\n\n" + t).encode()))
def test_any_input_either_parses_or_is_refused_readably(data: bytes) -> None:
    try:
        transcript = parse_transcript(data)
    except InvalidTranscript as error:
        assert str(error).endswith(".")
    else:
        assert transcript.cues and all(c.end >= c.start for c in transcript.cues)
        assert parse_transcript(to_vtt(transcript).encode()).cues


SPOKEN = Transcript("vtt", [
    Cue(0.5, 2.0, "Welcome back.", speaker="Ada Lovelace"),
    Cue(2.0, 4.25, "It is good\nto be here.", speaker="Ada Lovelace"),
    Cue(4.5, 6.0, "Fish & <chips> --> peas", speaker="Q & <A> Team"),
    Cue(6.0, 7.0, "Nobody said this."),
])


def test_speakers_are_written_as_voice_spans_and_read_back() -> None:
    vtt = to_vtt(SPOKEN)
    assert "00:00:00.500 --> 00:00:02.000\n<v Ada Lovelace>Welcome back.\n" in vtt
    assert "<v Q &amp; &lt;A&gt; Team>Fish &amp; &lt;chips&gt; --&gt; peas\n" in vtt
    again = parse_transcript(vtt.encode())
    assert again.cues == SPOKEN.cues


def test_a_speaker_with_line_breaks_or_only_spaces_is_tidied() -> None:
    odd = Transcript("vtt", [Cue(0, 1, "One.", speaker=" Ada\nLovelace "), Cue(1, 2, "Two.",
                                                                              speaker="  ")])
    assert [c.speaker for c in parse_transcript(to_vtt(odd).encode()).cues] == [
        "Ada Lovelace", None]


def test_srt_names_the_speaker_when_the_speaker_changes() -> None:
    srt = to_srt(SPOKEN)
    assert srt.startswith("1\n00:00:00,500 --> 00:00:02,000\nAda Lovelace: Welcome back.\n\n"
                          "2\n00:00:02,000 --> 00:00:04,250\nIt is good\nto be here.\n\n3\n")
    assert "\nQ &  Team: Fish &  -> peas\n" in srt  # SRT cannot escape: no tags, no arrows
    assert srt.count("-->") == len(SPOKEN.cues)
    assert srt.endswith("\n4\n00:00:06,000 --> 00:00:07,000\nNobody said this.\n")
    again = parse_transcript(srt.encode())
    assert again.format == "srt"
    assert [(c.start, c.end) for c in again.cues] == [(c.start, c.end) for c in SPOKEN.cues]


def test_json_follows_podcasting_2_transcripts() -> None:
    document = json.loads(to_json(SPOKEN))
    assert document["version"] == "1.0.0"
    assert document["segments"][0] == {"startTime": 0.5, "endTime": 2.0,
                                       "body": "Welcome back.", "speaker": "Ada Lovelace"}
    assert document["segments"][1]["body"] == "It is good to be here."
    assert document["segments"][3] == {"startTime": 6.0, "endTime": 7.0,
                                       "body": "Nobody said this."}


_LINE = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=30)


def _tidy(text: str) -> str:
    return "\n".join(line.strip() for line in text.split("\n") if line.strip())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(_LINE, min_size=1, max_size=3), st.none() | _LINE),
                min_size=1, max_size=5))
def test_any_words_and_speakers_round_trip_through_webvtt(cues: list) -> None:
    original = Transcript("vtt", [Cue(n, n + 0.5, "\n".join(lines), speaker=speaker)
                                  for n, (lines, speaker) in enumerate(cues)])
    again = parse_transcript(to_vtt(original).encode())
    assert [c.text for c in again.cues] == [_tidy(c.text) for c in original.cues]
    assert [c.speaker for c in again.cues] == [" ".join((c.speaker or "").split()) or None
                                               for c in original.cues]
    assert [(c.start, c.end) for c in again.cues] == [(c.start, c.end) for c in original.cues]
