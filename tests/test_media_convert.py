"""Loudness measurement and MP3 encoding, checked by probing and measuring the output."""

from __future__ import annotations

from pathlib import Path

import pytest

from media.convert import (
    EncodeResult,
    LoudnessResult,
    encode_mp3,
    measure_loudness,
    needs_encoding,
)
from media.errors import InvalidRecording
from media.probe import Probe, probe
from tests import media_samples as samples


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("convert")


def _probe(kind: str, codec: str, bitrate: int | None, has_video: bool = False) -> Probe:
    return Probe(
        kind=kind, container=kind, audio_codec=codec, duration=60.0, bitrate=bitrate,
        sample_rate=44100, channels=2, has_video=has_video,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "codec", "bitrate", "has_video", "expected"),
    [
        ("mp3", "mp3", 128_000, False, False),
        ("mp3", "mp3", 320_000, False, False),
        ("mp3", "mp3", 32_000, False, False),
        ("m4a", "aac", 96_000, False, False),
        ("mp3", "mp3", 16_000, False, True),
        ("mp3", "mp3", 448_000, False, True),
        ("m4a", "alac", 800_000, False, True),
        ("wav", "pcm_s16le", 1_411_200, False, True),
        ("flac", "flac", 700_000, False, True),
        ("ogg", "vorbis", 128_000, False, True),
        ("opus", "opus", 64_000, False, True),
        ("mp4", "aac", 128_000, True, True),
        ("mp3", "mp3", None, False, True),
    ],
)
def test_needs_encoding(kind, codec, bitrate, has_video, expected) -> None:
    assert needs_encoding(_probe(kind, codec, bitrate, has_video)) is expected


@pytest.mark.parametrize(("fmt", "expected"), [("mp3", False), ("m4a", False), ("flac", True)])
def test_needs_encoding_on_real_files(made: Path, fmt: str, expected: bool) -> None:
    path = samples.make_recording(made / f"keep.{fmt}", fmt, seconds=1.0)
    assert needs_encoding(probe(path)) is expected


def test_full_scale_sine_measures_about_minus_three_lufs(made: Path) -> None:
    path = samples.make_recording(
        made / "fullscale.wav", "wav", seconds=5.0, channels=1, level_db=0.0, frequency=1000.0
    )
    result = measure_loudness(path)
    assert result.integrated_lufs == pytest.approx(-3.0, abs=0.2)
    assert result.true_peak_dbtp == pytest.approx(0.0, abs=0.3)


def test_quieter_signal_measures_quieter(made: Path) -> None:
    path = samples.make_recording(
        made / "minus20.wav", "wav", seconds=5.0, channels=1, level_db=-20.0, frequency=1000.0
    )
    assert measure_loudness(path).integrated_lufs == pytest.approx(-23.0, abs=0.2)


# source name -> (make_recording kwargs, expected channels, sample rate, bitrate)
SOURCES = {
    "stereo.wav": (dict(fmt="wav"), 2, 44100, 128_000),
    "mono8k.wav": (dict(fmt="wav", sample_rate=8000, channels=1), 1, 44100, 64_000),
    "quad.wav": (dict(fmt="wav", channels=4), 2, 44100, 128_000),
    "48k.flac": (dict(fmt="flac", sample_rate=48000), 2, 48000, 128_000),
    "alac.m4a": (dict(fmt="m4a-alac"), 2, 44100, 128_000),
    "vorbis.ogg": (dict(fmt="ogg"), 2, 44100, 128_000),
    "voice.opus": (dict(fmt="opus"), 2, 48000, 128_000),
    "video.mp4": (dict(fmt="mp4"), 2, 44100, 128_000),
    "aac.m4a": (dict(fmt="m4a"), 2, 44100, 128_000),
}


@pytest.mark.parametrize("name", list(SOURCES))
def test_encode_mp3_keeps_duration(made: Path, name: str) -> None:
    kwargs, channels, rate, bitrate = SOURCES[name]
    src = samples.make_recording(made / name, seconds=2.0, **kwargs)
    result = encode_mp3(src, made / f"{name}.mp3")
    assert isinstance(result, EncodeResult)
    assert (result.channels, result.sample_rate, result.bitrate) == (channels, rate, bitrate)
    out = probe(made / f"{name}.mp3")
    assert (out.kind, out.channels, out.sample_rate) == ("mp3", channels, rate)
    assert out.duration == pytest.approx(probe(src).duration, abs=0.1)
    assert result.duration == pytest.approx(out.duration, abs=0.1)
    assert not out.has_video


def test_encode_mp3_with_explicit_bitrate(made: Path) -> None:
    src = samples.make_recording(made / "explicit.wav", "wav", seconds=2.0)
    result = encode_mp3(src, made / "explicit.mp3", bitrate=192_000)
    assert result.bitrate == 192_000
    assert probe(made / "explicit.mp3").bitrate == pytest.approx(192_000, rel=0.05)


def test_normalise_reaches_target_and_peak_ceiling(made: Path) -> None:
    """A quiet tone with loud clicks: the gain alone would clip, so the limiter must work."""
    src = samples.make_recording(
        made / "quiet.wav", "wav", seconds=20.0, level_db=-40.0, noise_db=-50.0, clicks_db=-1.0
    )
    assert measure_loudness(src).integrated_lufs < -30
    fractions: list[float] = []
    result = encode_mp3(src, made / "loud.mp3", normalise=True, progress=fractions.append)
    measured = measure_loudness(made / "loud.mp3")
    assert measured.integrated_lufs == pytest.approx(-16.0, abs=1.0)
    assert measured.true_peak_dbtp <= -1.0
    assert result.loudness.integrated_lufs == pytest.approx(measured.integrated_lufs, abs=0.01)
    assert result.duration == pytest.approx(20.0, abs=0.1)
    assert fractions and fractions[-1] == 1.0
    assert fractions == sorted(fractions) and all(0.0 <= f <= 1.0 for f in fractions)


def test_normalise_turns_a_loud_recording_down(made: Path) -> None:
    src = samples.make_recording(
        made / "hot.flac", "flac", seconds=5.0, level_db=-1.0, noise_db=-6.0
    )
    encode_mp3(src, made / "hot.mp3", normalise=True, target_lufs=-18.0)
    measured = measure_loudness(made / "hot.mp3")
    assert measured.integrated_lufs == pytest.approx(-18.0, abs=1.0)
    assert measured.true_peak_dbtp <= -1.0


def test_encode_refuses_a_non_recording(made: Path) -> None:
    src = samples.write_random_bytes(made / "junk.mp3")
    with pytest.raises(InvalidRecording):
        encode_mp3(src, made / "junk-out.mp3")


def test_silence_measures_at_the_floor_and_encodes(made: Path) -> None:
    src = samples.make_recording(made / "silence.wav", "wav", seconds=2.0, level_db=-300.0)
    assert measure_loudness(src) == LoudnessResult(integrated_lufs=-70.0, true_peak_dbtp=-150.0)
    result = encode_mp3(src, made / "silence.mp3", normalise=True)
    assert result.duration == pytest.approx(2.0, abs=0.1)
