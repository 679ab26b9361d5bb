"""probe(): real recordings of every supported format, odd-but-valid MP3s, and refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from media.errors import InvalidRecording, MediaError
from media.probe import Probe, probe
from tests import media_samples as samples

# name -> (make_recording kwargs, kind, audio codec, sample rate, channels)
CASES = {
    "mp3": (dict(fmt="mp3"), "mp3", "mp3", 44100, 2),
    "m4a": (dict(fmt="m4a"), "m4a", "aac", 44100, 2),
    "alac.m4a": (dict(fmt="m4a-alac"), "m4a", "alac", 44100, 2),
    "wav": (dict(fmt="wav"), "wav", "pcm_s16le", 44100, 2),
    "wav24.wav": (dict(fmt="wav24"), "wav", "pcm_s24le", 44100, 2),
    "flac": (dict(fmt="flac"), "flac", "flac", 44100, 2),
    "ogg": (dict(fmt="ogg"), "ogg", "vorbis", 44100, 2),
    "opus": (dict(fmt="opus"), "opus", "opus", 48000, 2),
    "mp4": (dict(fmt="mp4"), "mp4", "aac", 44100, 2),
    "mono8k.wav": (dict(fmt="wav", sample_rate=8000, channels=1), "wav", "pcm_s16le", 8000, 1),
    "quad.wav": (dict(fmt="wav", channels=4), "wav", "pcm_s16le", 44100, 4),
    "48k.flac": (dict(fmt="flac", sample_rate=48000), "flac", "flac", 48000, 2),
    "mono.mp3": (dict(fmt="mp3", channels=1), "mp3", "mp3", 44100, 1),
}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("probe")


@pytest.mark.parametrize("name", list(CASES))
def test_every_format_probes_from_content(made: Path, name: str) -> None:
    kwargs, kind, codec, rate, channels = CASES[name]
    # A misleading extension proves the kind comes from the content.
    path = samples.make_recording(made / f"{name}.bin", seconds=2.0, **kwargs)
    result = probe(path)
    assert (result.kind, result.audio_codec) == (kind, codec)
    assert (result.sample_rate, result.channels) == (rate, channels)
    assert result.duration == pytest.approx(2.0, abs=0.1)
    assert result.bitrate and result.bitrate > 0
    assert result.has_video is (kind == "mp4")


def test_video_reports_its_picture(made: Path) -> None:
    result = probe(samples.make_recording(made / "video.mp4", "mp4", seconds=2.0))
    assert result.has_video
    assert result.video_codec in ("h264", "mpeg4")
    assert (result.width, result.height) == (64, 48)


def test_vbr_mp3_without_xing_header_is_measured(made: Path) -> None:
    import av

    path = samples.make_vbr_mp3_without_xing(made / "vbr.mp3", seconds=3.0)
    with av.open(str(path)) as container:
        estimate = container.duration / av.time_base
    assert abs(estimate - 3.0) > 1.0  # FFmpeg's header-less guess is wrong …
    assert probe(path).duration == pytest.approx(3.0, abs=0.1)  # … ours is not


@pytest.mark.parametrize(
    ("maker", "title"),
    [
        (samples.make_id3v22_mp3, "Ancient tag"),
        (samples.make_id3v23_mp3, "Old tag"),
        (samples.make_apev2_mp3, None),
    ],
)
def test_old_tag_formats_are_fine(made: Path, maker, title: str | None) -> None:
    result = probe(maker(made / f"{maker.__name__}.mp3"))
    assert result.kind == "mp3"
    assert result.duration == pytest.approx(2.0, abs=0.1)
    if title:
        assert result.tags["title"] == title


def test_probe_is_frozen(made: Path) -> None:
    result = probe(samples.make_recording(made / "frozen.wav", "wav", seconds=1.0))
    assert isinstance(result, Probe)
    with pytest.raises(AttributeError):
        result.kind = "mp3"  # type: ignore[misc]


BAD = {
    "empty.mp3": (samples.write_empty, "The file is empty."),
    "page.mp3": (samples.write_html, "looks like an HTML page"),
    "image.mp3": (samples.write_png, "looks like an image"),
    "song.mid": (samples.write_midi, "MIDI"),
    "notes.mp3": (samples.write_text, "text file"),
    "noise.mp3": (samples.write_random_bytes, "not a recording we can read"),
    "noise.wav": (samples.write_random_bytes, "not a recording we can read"),
    "video-only.mp4": (samples.make_video_without_audio, "has no audio"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_non_recordings_are_refused_readably(made: Path, name: str) -> None:
    maker, phrase = BAD[name]
    with pytest.raises(InvalidRecording, match=phrase) as caught:
        probe(maker(made / name))
    _assert_readable(caught.value)


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_named_mp3_are_refused(made: Path, seed: int) -> None:
    path = samples.write_random_bytes(made / f"random{seed}.mp3", size=200_000, seed=seed)
    with pytest.raises(InvalidRecording):
        probe(path)


@pytest.mark.parametrize("fmt", ["mp3", "wav", "m4a", "flac", "ogg"])
def test_truncated_recordings_are_refused(made: Path, fmt: str) -> None:
    whole = samples.make_recording(made / f"whole-{fmt}", fmt, seconds=3.0)
    cut = samples.truncate_copy(whole, made / f"cut-{fmt}", keep_bytes=3000)
    with pytest.raises(InvalidRecording) as caught:
        probe(cut)
    _assert_readable(caught.value)


def test_truncation_message_says_how_much_decoded(made: Path) -> None:
    whole = samples.make_recording(made / "long.mp3", "mp3", seconds=3.0)
    cut = samples.truncate_copy(whole, made / "short.mp3", keep_bytes=4000)
    with pytest.raises(InvalidRecording, match=r"truncated or corrupt: only 0\.\d s"):
        probe(cut)


def test_half_a_file_reports_what_is_there(made: Path) -> None:
    whole = samples.make_recording(made / "half.flac", "flac", seconds=3.0)
    size = whole.stat().st_size
    cut = samples.truncate_copy(whole, made / "half-cut.flac", keep_bytes=size // 2)
    assert 1.0 < probe(cut).duration < 2.0


def test_invalid_recording_is_a_media_error_and_value_error() -> None:
    assert issubclass(InvalidRecording, MediaError)
    assert issubclass(MediaError, ValueError)


def _assert_readable(error: Exception) -> None:
    message = str(error)
    assert message[0].isupper() and message.endswith(".")
    assert "Errno" not in message and "'" not in message.split("(")[0]


def test_reading_stops_once_a_recording_is_longer_than_the_limit(made: Path) -> None:
    path = samples.make_recording(made / "minute.flac", "flac", seconds=60.0, sample_rate=8000,
                                  channels=1)
    assert probe(path).duration == pytest.approx(60.0, abs=0.1)
    assert probe(path, max_seconds=120).duration == pytest.approx(60.0, abs=0.1)
    # Stopped early, it still reports more than the limit (the header or what was read).
    assert probe(path, max_seconds=20).duration > 20
