"""Ingestion end to end: real recordings in every accepted format, into the real bucket."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from mutagen.id3 import ID3
from mutagen.mp4 import MP4

from archive.errors import (
    ArchiveError,
    Duplicate,
    InvalidInput,
    InvalidRecording,
    PayloadTooLarge,
)
from archive.ingest import Metadata, ingest
from archive.runtime import Archive
from archive.tasks import TaskQueue
from media import tags
from media.convert import measure_loudness
from media.probe import probe
from tests import media_samples
from tests.conftest import bucket_listing

SPEAKERS = ["Nicholas J Wheeler;chair;University of Birmingham",
            "Naomi Head;panellist;University of Glasgow"]


def metadata(**fields: object) -> Metadata:
    values: dict[str, object] = {
        "title": "Roundtable: The Social Construction of Trust", "series": "Roundtables",
        "date": "2017-05-11", "speakers": SPEAKERS, "tags": ["trust"],
        "description": "A roundtable on trust.",
    }
    values.update(fields)
    return Metadata(**values)  # type: ignore[arg-type]


def download(archive: Archive, key: str, path: Path) -> Path:
    with path.open("wb") as out:
        archive.store.download_to(key, out)
    return path


def write_sidecars(folder: Path) -> tuple[Path, Path]:
    transcript = folder / "talk.srt"
    transcript.write_text("1\r\n00:00:00,000 --> 00:00:01,500\r\nWelcome to the roundtable.\r\n\r\n"
                          "2\r\n00:00:01,500 --> 00:00:02,900\r\nTrust is a relationship.\r\n")
    chapters = folder / "chapters.json"
    chapters.write_text(json.dumps({"version": "1.2.0", "chapters": [
        {"startTime": 0, "title": "Welcome"}, {"startTime": 1.5, "title": "Discussion"}]}))
    return transcript, chapters


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "opus", "m4a-alac", "wav24"])
def test_formats_are_converted_to_tagged_mp3(archive: Archive, tmp_path: Path, fmt: str) -> None:
    source = media_samples.make_recording(tmp_path / f"in.{fmt}", fmt, seconds=3.0)
    transcript, chapters = write_sidecars(tmp_path)
    episode = ingest(archive, source, metadata(transcript=transcript, chapters=chapters))

    audio = episode.files["audio"]
    assert audio.filename == "roundtable-the-social-construction-of-trust.mp3"
    assert audio.content_type == "audio/mpeg"
    assert abs(audio.duration - probe(source).duration) <= 0.1
    delivered = download(archive, audio.key, tmp_path / "out.mp3")
    id3 = ID3(delivered)
    assert id3.version[:2] == (2, 4)
    assert str(id3["TIT2"]) == "Roundtable: The Social Construction of Trust"
    assert id3["TPE1"].text == ["Nicholas J Wheeler", "Naomi Head"]
    assert str(id3["TALB"]) == "Roundtables"
    assert [str(id3[k].sub_frames["TIT2"]) for k in sorted(id3.keys()) if k.startswith("CHAP")] \
        == ["Welcome", "Discussion"]
    assert set(episode.files) == {"audio", "original", "transcript", "transcript_source",
                                  "transcript_json", "chapters"}
    assert episode.transcript_provenance and episode.transcript_provenance.kind == "supplied"
    assert episode.loudness is not None  # measured while encoding: no task needed
    assert episode.pending == ["waveform"]
    original = archive.store.head(episode.files["original"].key)
    assert original.size == source.stat().st_size
    assert archive.catalog.view().episode(episode.id).title == episode.title


@pytest.mark.parametrize("fmt", ["mp3", "m4a"])
def test_mp3_and_aac_are_kept_without_re_encoding(archive: Archive, tmp_path: Path,
                                                   fmt: str) -> None:
    source = media_samples.make_recording(tmp_path / f"in.{fmt}", fmt, seconds=3.0)
    cover = tmp_path / "cover.png"
    media_samples.write_png(cover, (1600, 1400))
    episode = ingest(archive, source, metadata(artwork=cover))
    extension = "mp3" if fmt == "mp3" else "m4a"
    assert episode.files["audio"].filename.endswith(f".{extension}")
    delivered = download(archive, episode.files["audio"].key, tmp_path / f"out.{extension}")
    read = tags.read_tags(delivered)
    assert read.title == "Roundtable: The Social Construction of Trust"
    assert read.artists == ["Nicholas J Wheeler", "Naomi Head"]
    assert read.album == "Roundtables"
    assert read.cover_jpeg and read.cover_jpeg[:3] == b"\xff\xd8\xff"
    assert abs(episode.files["audio"].duration - 3.0) <= 0.1
    # Kept as uploaded: loudness, waveform and transcript come after publishing, first in line.
    assert episode.loudness is None
    # Transcription is off in this test; the cover's web renditions come first (cheapest).
    assert episode.pending == ["artwork", "loudness", "waveform"]
    queued = [task.kind for task in TaskQueue(archive.store).waiting()
              if task.episode_id == episode.id]
    assert sorted(queued) == ["artwork", "loudness", "waveform"]
    if fmt == "m4a":
        assert MP4(delivered).tags["\xa9alb"] == ["Roundtables"]
    assert episode.files["cover"].content_type == "image/jpeg"


def test_video_keeps_the_video_and_delivers_audio(archive: Archive, tmp_path: Path) -> None:
    source = media_samples.make_recording(tmp_path / "talk.mp4", "mp4", seconds=2.0)
    episode = ingest(archive, source, metadata())
    assert episode.files["audio"].filename.endswith(".mp3")
    assert episode.files["video"].content_type == "video/mp4"
    assert episode.files["video"].width


def test_odd_but_valid_files_are_ingested(archive: Archive, tmp_path: Path) -> None:
    makers = [
        lambda p: media_samples.make_id3v22_mp3(p),
        lambda p: media_samples.make_id3v23_mp3(p),
        lambda p: media_samples.make_apev2_mp3(p),
        lambda p: media_samples.make_vbr_mp3_without_xing(p),
        lambda p: media_samples.make_recording(p, "wav", seconds=2, sample_rate=8000, channels=1),
        lambda p: media_samples.make_recording(p, "wav", seconds=2, channels=4),
        lambda p: media_samples.make_recording(p, "flac", seconds=2, sample_rate=48000),
    ]
    for n, make in enumerate(makers):
        path = make(tmp_path / f"odd{n}.bin")
        episode = ingest(archive, path, metadata(title=f"Odd {n}"))
        assert episode.files["audio"].duration > 1.0


def test_fields_left_out_are_prefilled_from_the_file(archive: Archive, tmp_path: Path) -> None:
    source = media_samples.make_id3v23_mp3(tmp_path / "old.mp3", title="Old tag")
    episode = ingest(archive, source, Metadata(title="", series="Lectures"))
    assert episode.title == "Old tag"


def test_the_same_recording_twice_is_a_duplicate(archive: Archive, tmp_path: Path) -> None:
    source = media_samples.make_recording(tmp_path / "in.wav", "wav", seconds=2.0)
    first = ingest(archive, source, metadata())
    before = bucket_listing(archive.store)
    with pytest.raises(Duplicate) as error:
        ingest(archive, source, metadata(title="Again"))
    assert error.value.episode_id == first.id
    assert bucket_listing(archive.store) == before


def test_normalising_reaches_the_target_loudness(archive: Archive, tmp_path: Path) -> None:
    import dataclasses

    loud = Archive(dataclasses.replace(archive.settings, normalise=True), archive.store,
                   archive.catalog)
    source = media_samples.make_recording(tmp_path / "quiet.wav", "wav", seconds=6.0,
                                          level_db=-35.0, noise_db=-50.0)
    episode = ingest(loud, source, metadata())
    delivered = download(archive, episode.files["audio"].key, tmp_path / "out.mp3")
    measured = measure_loudness(delivered)
    assert abs(measured.integrated_lufs + 16.0) <= 1.0
    assert measured.true_peak_dbtp <= -0.5
    assert episode.loudness and episode.loudness.normalised


BAD_FILES = {
    "random bytes named .mp3": lambda p: media_samples.write_random_bytes(p),
    "an HTML page named .mp3": lambda p: media_samples.write_html(p),
    "an empty file": lambda p: media_samples.write_empty(p),
    "a PNG": lambda p: media_samples.write_png(p),
    "a MIDI file": lambda p: media_samples.write_midi(p),
    "a truncated file": lambda p: media_samples.truncate_copy(
        media_samples.make_recording(p.with_suffix(".src.mp3"), "mp3", seconds=3.0), p, 3000),
    "a corrupt header": lambda p: _corrupt_header(
        media_samples.make_recording(p.with_suffix(".src.wav"), "wav", seconds=2.0), p),
    "a video without audio": lambda p: media_samples.make_video_without_audio(p),
}


def _corrupt_header(source: Path, target: Path) -> Path:
    data = bytearray(source.read_bytes())
    data[:64] = b"\x00" * 64
    target.write_bytes(bytes(data))
    return target


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_recordings_are_refused_and_nothing_is_stored(archive: Archive, tmp_path: Path,
                                                          case: str) -> None:
    path = BAD_FILES[case](tmp_path / "talk.mp3")
    before = bucket_listing(archive.store)
    with pytest.raises(InvalidRecording) as error:
        ingest(archive, path, metadata())
    message = str(error.value)
    assert message.endswith(".") and "Traceback" not in message and len(message) < 300
    assert bucket_listing(archive.store) == before


def _bad_transcript(folder: Path) -> Metadata:
    bad = folder / "t.vtt"
    bad.write_text("this is not a transcript")
    return metadata(transcript=bad)


def _bad_chapters(folder: Path) -> Metadata:
    bad = folder / "c.json"
    bad.write_text(json.dumps({"version": "1.2.0", "chapters": [
        {"startTime": 60, "title": "Panel"}, {"startTime": 10, "title": "Q&A"}]}))
    return metadata(chapters=bad)


BAD_METADATA = {
    "a 10 kB title": lambda folder: metadata(title="T" * 10_000),
    "control characters only": lambda folder: metadata(title="\x00\x01\x02"),
    "an impossible date": lambda folder: metadata(date="2017-13-45"),
    "an unknown licence": lambda folder: metadata(licence="do-what-you-like"),
    "an unknown role": lambda folder: metadata(speakers=["A Person;emperor;Nowhere"]),
    "a transcript that is not VTT or SRT": _bad_transcript,
    "chapters out of order": _bad_chapters,
    "no series": lambda folder: metadata(series=""),
}


@pytest.mark.parametrize("case", sorted(BAD_METADATA))
def test_bad_metadata_is_refused_and_nothing_is_stored(archive: Archive, tmp_path: Path,
                                                       case: str) -> None:
    source = media_samples.make_recording(tmp_path / "in.mp3", "mp3", seconds=1.0)
    meta = BAD_METADATA[case](tmp_path)
    before = bucket_listing(archive.store)
    with pytest.raises(InvalidInput):
        ingest(archive, source, meta)
    assert bucket_listing(archive.store) == before


def test_control_characters_and_markup_are_kept_safe(archive: Archive, tmp_path: Path) -> None:
    source = media_samples.make_recording(tmp_path / "in.mp3", "mp3", seconds=1.0)
    episode = ingest(archive, source, metadata(
        title="Trust \u202e<script>alert(1)</script>\x07 & deception 🕊️ ثقة"))
    assert episode.title == "Trust <script>alert(1)</script> & deception 🕊️ ثقة"
    assert episode.slug == "trust-script-alert-1-script-deception"


def test_a_storage_failure_mid_ingest_leaves_nothing(archive: Archive, tmp_path: Path) -> None:
    source = media_samples.make_recording(tmp_path / "in.wav", "wav", seconds=2.0)
    before = bucket_listing(archive.store)
    original = archive.store.upload_file
    calls = 0

    def failing_upload(*args: object, **kwargs: object):
        nonlocal calls
        calls += 1
        if calls == 2:  # the original is stored; the delivery file fails
            from archive.errors import StorageError
            raise StorageError("Storage at test is not reachable (ConnectionError).")
        return original(*args, **kwargs)

    archive.store.upload_file = failing_upload  # type: ignore[method-assign]
    with pytest.raises(ArchiveError, match="not reachable"):
        ingest(archive, source, metadata())
    archive.store.upload_file = original  # type: ignore[method-assign]
    assert bucket_listing(archive.store) == before
    assert archive.catalog.refresh().published == []


def test_a_failed_commit_leaves_no_series_cover(archive: Archive, tmp_path: Path) -> None:
    from archive.errors import StorageError

    source = media_samples.make_recording(tmp_path / "in.wav", "wav", seconds=1.0)
    before = bucket_listing(archive.store)

    def refuse(*args: object, **kwargs: object) -> None:
        raise StorageError("Storage refused the request for catalog.json: busy (503).")

    archive.catalog.add_episode = refuse  # type: ignore[method-assign]
    with pytest.raises(StorageError):
        ingest(archive, source, metadata(series="A brand new series"))
    assert bucket_listing(archive.store) == before  # no episode objects, no series cover


def _limited(archive: Archive, hours: float) -> Archive:
    return dataclasses.replace(
        archive, settings=dataclasses.replace(archive.settings, max_duration_h=hours))


def test_a_recording_longer_than_the_limit_is_refused_before_it_is_decoded(
        archive: Archive, tmp_path: Path) -> None:
    # Quiet audio compresses to almost nothing: a small FLAC can hold hours (the review's case).
    source = media_samples.make_recording(tmp_path / "quiet.flac", "flac", seconds=150,
                                          sample_rate=8000, channels=1, level_db=-200)
    assert source.stat().st_size < 100_000
    stages: list[str] = []
    before = bucket_listing(archive.store)
    with pytest.raises(PayloadTooLarge) as refused:
        ingest(_limited(archive, 1 / 30), source, metadata(),
               progress=lambda stage, fraction: stages.append(stage))
    assert refused.value.status == 413
    assert str(refused.value) == ("This recording lasts 2 min 30 s; recordings may last at most "
                                  "2 min here.")
    assert "converting" not in stages and "uploading" not in stages
    assert bucket_listing(archive.store) == before
    accepted = ingest(_limited(archive, 1 / 20), source, metadata())  # 3 min: it fits
    assert accepted.duration == pytest.approx(150, abs=1)


@pytest.mark.parametrize("stage", ["reading the recording", "converting the recording"])
def test_decoding_runs_in_a_bounded_child_process(archive: Archive, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  stage: str) -> None:
    """A limit far too tight for the work: the child is stopped, the ingest refuses, we live on."""
    import archive.ingest as pipeline
    from media.isolation import Limits

    instant = Limits(cpu_seconds=30, wall_seconds=0.001, memory_bytes=1024 * 1024 * 1024)
    if stage.startswith("reading"):
        monkeypatch.setattr(pipeline, "PROBE_LIMITS", instant)
    else:
        monkeypatch.setattr(pipeline, "conversion_limits", lambda duration: instant)
    source = media_samples.make_recording(tmp_path / "in.wav", "wav", seconds=60.0)
    before = bucket_listing(archive.store)
    with pytest.raises(InvalidRecording) as refused:
        ingest(archive, source, metadata())
    assert str(refused.value) == f"Stopped {stage}: it took longer than 0.001 s."
    assert refused.value.status == 415
    assert bucket_listing(archive.store) == before
