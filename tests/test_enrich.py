"""Enrichment tasks end to end on the real bucket: loudness, waveform, committed once,
never over an editor's work, failures noted on the episode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archive import editing
from archive.catalog import CatalogData
from archive.enrich import make_worker, request, transcription_prompt, wanted
from archive.ingest import Metadata, ingest
from archive.models import Episode, Provenance
from archive.runtime import Archive
from archive.tasks import URGENT, TaskQueue
from tests import media_samples


def published(archive: Archive, tmp_path: Path, fmt: str = "mp3", **fields: object) -> Episode:
    source = media_samples.make_recording(tmp_path / f"talk.{fmt}", fmt, seconds=3.0)
    meta = Metadata(title="Trusting Enemies", series="Lectures",
                    speakers=["Nicholas J Wheeler;lecturer;University of Birmingham"],
                    tags=["trust", "Gorbachev"], **fields)  # type: ignore[arg-type]
    return ingest(archive, source, meta)


def set_fields(archive: Archive, episode_id: str, **fields: object) -> None:
    def apply(data: CatalogData) -> None:
        for name, value in fields.items():
            setattr(data.episodes[episode_id], name, value)

    archive.catalog.change(apply)


def drain(archive: Archive, queue: TaskQueue) -> None:
    worker = make_worker(archive, queue=queue)
    while worker.run_once():
        pass


def current(archive: Archive, episode_id: str) -> Episode:
    return archive.catalog.refresh().data.episodes[episode_id]


def test_loudness_and_waveform_are_measured_and_committed(archive: Archive,
                                                          tmp_path: Path) -> None:
    episode = published(archive, tmp_path)
    assert episode.loudness is None and episode.pending == ["loudness", "waveform"]
    revision = current(archive, episode.id).updated_at
    queue = TaskQueue(archive.store)
    # Ingest queued both ahead of the back catalogue; asking again adds nothing.
    assert sorted(t.kind for t in queue.waiting()) == ["loudness", "waveform"]
    assert {t.priority for t in queue.waiting()} == {URGENT}
    assert request(queue, episode.id, ["loudness", "waveform"]) == []
    drain(archive, queue)

    done = current(archive, episode.id)
    assert done.loudness is not None and -40 < done.loudness.integrated_lufs < 0
    peaks = json.loads(b"".join(archive.store.open(done.files["waveform"].key)))
    assert peaks["version"] == 2 and peaks["length"] > 0
    assert done.pending == [] and done.enrichment_errors == {}
    assert done.updated_at == revision  # an editor's open form stays valid
    assert queue.waiting() == []


def test_a_task_for_a_deleted_episode_leaves_nothing_behind(archive: Archive,
                                                            tmp_path: Path) -> None:
    episode = published(archive, tmp_path)
    queue = TaskQueue(archive.store)
    request(queue, episode.id, ["waveform"])

    def forget(data: CatalogData) -> None:
        del data.episodes[episode.id]

    archive.catalog.change(forget)
    before = {info.key for info in archive.store.list(episode.prefix)}
    drain(archive, queue)
    assert {info.key for info in archive.store.list(episode.prefix)} == before
    assert queue.waiting() == [] and queue.failures() == []


def test_automatic_transcription_never_replaces_a_supplied_transcript(
        archive: Archive, tmp_path: Path) -> None:
    transcript = tmp_path / "talk.vtt"
    transcript.write_text("WEBVTT\n\n00:00.000 --> 00:02.000\nWords a person wrote.\n")
    episode = published(archive, tmp_path, transcript=transcript)
    set_fields(archive, episode.id, transcript_provenance=Provenance("supplied"),
               pending=["transcribe"])
    queue = TaskQueue(archive.store)
    request(queue, episode.id, ["transcribe"])
    # The model folder does not exist: had the task tried to transcribe, it would have failed.
    archive = Archive(archive.settings.__class__(**{**archive.settings.__dict__,
                                                    "transcribe_model": "/nonexistent/model"}),
                      archive.store, archive.catalog)
    drain(archive, queue)
    done = current(archive, episode.id)
    assert done.files["transcript"] == episode.files["transcript"]
    assert done.pending == [] and "transcribe" not in done.enrichment_errors


def test_a_model_that_cannot_load_fails_the_task_and_says_why(archive: Archive,
                                                              tmp_path: Path) -> None:
    episode = published(archive, tmp_path)
    set_fields(archive, episode.id, pending=["transcribe"])
    broken = Archive(archive.settings.__class__(**{**archive.settings.__dict__,
                                                   "transcribe_model": str(tmp_path / "nope")}),
                     archive.store, archive.catalog)
    queue = TaskQueue(archive.store)
    request(queue, episode.id, ["transcribe"])
    drain(broken, queue)
    done = current(archive, episode.id)
    assert not done.draft and "transcript" not in done.files  # still published, nothing else
    assert done.pending == []
    reason = done.enrichment_errors["transcribe"]
    assert "\n" not in reason and "model" in reason.lower()
    failure = queue.failure("transcribe", episode.id)
    assert failure is not None and failure.error == reason


def test_what_an_episode_still_lacks(archive: Archive, tmp_path: Path) -> None:
    episode = published(archive, tmp_path)
    episode.loudness = None
    assert wanted(episode, "base") == ["loudness", "waveform", "transcribe"]
    assert wanted(episode, "off") == ["loudness", "waveform"]


def test_the_recogniser_is_told_names_and_terms() -> None:
    from tests.factories import make_episode

    episode = make_episode("Trusting Enemies", tags=["Gorbachev", "nuclear"])
    prompt = transcription_prompt(episode)
    assert "Nicholas J Wheeler" in prompt and "Gorbachev" in prompt
    assert "Trusting Enemies" in prompt


def test_an_edit_keeps_what_enrichment_committed_while_it_was_made(
        archive: Archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    episode = published(archive, tmp_path)
    queue = TaskQueue(archive.store)
    retag = editing._retag

    def retag_while_a_worker_commits(*args: object, **kwargs: object) -> None:
        retag(*args, **kwargs)  # type: ignore[arg-type]
        drain(archive, queue)  # loudness and waveform land between the edit's read and write

    monkeypatch.setattr(editing, "_retag", retag_while_a_worker_commits)
    edited = editing.update_episode(archive, episode.id, {"title": "Trusting Enemies, Again"},
                                    "editor", expected_revision=editing.revision(episode))
    assert edited.title == "Trusting Enemies, Again"
    assert edited.loudness is not None and "waveform" in edited.files
    assert edited.pending == []
    stored = current(archive, episode.id)
    assert stored.files["waveform"] == edited.files["waveform"]
    assert archive.store.exists(stored.files["waveform"].key)
    assert archive.store.exists(stored.files["audio"].key)


def test_a_replaced_transcript_is_a_persons_in_every_form(archive: Archive,
                                                         tmp_path: Path) -> None:
    episode = published(archive, tmp_path)
    set_fields(archive, episode.id, pending=["transcribe"],
               enrichment_errors={"transcribe": "The model could not be loaded."})
    vtt = tmp_path / "fixed.vtt"
    vtt.write_text("WEBVTT\n\n00:00.000 --> 00:02.000\n<v Nicholas J Wheeler>Trust matters.\n")
    replaced = editing.replace_sidecars(archive, episode.id, "editor@example.org",
                                        transcript=vtt)
    assert replaced.transcript_provenance is not None
    assert (replaced.transcript_provenance.kind, replaced.transcript_provenance.by) == (
        "supplied", "editor@example.org")
    assert {"transcript", "transcript_srt", "transcript_json"} <= set(replaced.files)
    assert replaced.pending == [] and replaced.enrichment_errors == {}
    srt = b"".join(archive.store.open(replaced.files["transcript_srt"].key)).decode()
    assert "Trust matters." in srt and "00:00:00,000 --> 00:00:02,000" in srt
    body = json.loads(b"".join(archive.store.open(replaced.files["transcript_json"].key)))
    assert body["segments"][0]["speaker"] == "Nicholas J Wheeler"
