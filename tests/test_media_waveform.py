"""Waveform peaks: the audiowaveform JSON shape, levels that follow the audio, bounded size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from media.errors import MediaError
from media.waveform import MAX_PIXELS, RATE, samples_per_pixel, waveform
from tests.media_samples import make_recording


def test_peaks_follow_the_level_of_the_recording(tmp_path: Path) -> None:
    loud = make_recording(tmp_path / "loud.wav", "wav", seconds=2, level_db=-6)
    quiet = make_recording(tmp_path / "quiet.wav", "wav", seconds=2, level_db=-40)
    loud_peaks, quiet_peaks = waveform(loud, 2.0), waveform(quiet, 2.0)
    assert max(loud_peaks.data) > 80  # −6 dBFS is half of full scale: about 64…127
    assert max(quiet_peaks.data) <= 2
    assert min(loud_peaks.data) < -80


def test_the_json_is_audiowaveform_version_2(tmp_path: Path) -> None:
    recording = make_recording(tmp_path / "talk.mp3", "mp3", seconds=3)
    document = json.loads(waveform(recording, 3.0).to_json())
    assert document["version"] == 2 and document["channels"] == 1 and document["bits"] == 8
    assert document["sample_rate"] == RATE
    assert len(document["data"]) == 2 * document["length"]
    covered = document["length"] * document["samples_per_pixel"] / RATE
    assert 2.9 <= covered <= 3.0 + document["samples_per_pixel"] / RATE


def test_a_long_recording_still_has_a_bounded_number_of_peaks() -> None:
    ten_hours = 10 * 3600
    assert ten_hours * RATE / samples_per_pixel(ten_hours) <= MAX_PIXELS


def test_a_file_that_is_not_audio_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"not audio at all" * 100)
    with pytest.raises(MediaError):
        waveform(junk, 1.0)
