"""Automatic transcription end to end: real speech (espeak-ng), the real packaged Whisper base
model, real `archive worker` processes on the real bucket.

Ingest publishes and queues the transcript; a worker killed in the middle of it loses nothing
(another takes the task over once the lease runs out, and the result is committed once); the
words then reach the page, the feed and search; with transcription off the CLI says so in one
line.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archive.config import Settings
from archive.enrich import task_queue
from archive.ingest import Metadata, ingest
from archive.models import Episode
from archive.runtime import Archive
from media.convert import encode_mp3
from tests.cli import cli_env, run_cli
from tests.servers import wait_until
from tests.test_media_transcribe import _speak, _words
from tests.whisper_model import whisper_base

pytestmark = pytest.mark.slow

SPEECH = "Trust between enemies is built slowly. Gorbachev and Reagan met in Geneva."
LEASE_S = 3.0


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return whisper_base()


@pytest.fixture
def speaking(settings: Settings, model_dir: Path) -> Settings:
    """The test's settings with the packaged model and a short lease (a killed worker's task
    is taken over after seconds, not minutes)."""
    return dataclasses.replace(settings, transcribe_model=str(model_dir), task_lease_s=LEASE_S)


@pytest.fixture
def talk(speaking: Settings, archive: Archive, tmp_path: Path) -> Episode:
    """A published MP3 of real speech; ingest has queued its transcript."""
    mp3 = tmp_path / "talk.mp3"
    encode_mp3(_speak(tmp_path, "talk", SPEECH), mp3)
    own = Archive(speaking, archive.store, archive.catalog)
    meta = Metadata(title="Trusting Enemies", series="Lectures",
                    speakers=["Nicholas J Wheeler;speaker;University of Birmingham"],
                    tags=["Gorbachev"], language="en")
    return ingest(own, mp3, meta)


@pytest.fixture
def start_worker(speaking: Settings) -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        env = {**cli_env(speaking), "ARCHIVE_TRANSCRIBE_MODEL": speaking.transcribe_model,
               "ARCHIVE_TASK_LEASE_S": str(LEASE_S), "HF_HUB_OFFLINE": "1"}
        process = subprocess.Popen([sys.executable, "-m", "archive", "worker"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
        process.wait(30)
        if process.stderr is not None:
            process.stderr.close()


def _episode(archive: Archive, episode_id: str) -> Episode:
    return archive.catalog.refresh().data.episodes[episode_id]


def _transcribing(archive: Archive, episode_id: str) -> bool:
    return any(t.kind == "transcribe" and t.episode_id == episode_id and t.leased()
               for t in task_queue(archive).waiting())


def test_a_worker_killed_mid_transcript_loses_nothing_and_the_words_arrive_once(
        archive: Archive, speaking: Settings, talk: Episode, start_worker: Any,
        make_client: Any) -> None:
    assert talk.pending == ["loudness", "waveform", "transcribe"]
    assert "transcript" not in talk.files

    first = start_worker()
    assert wait_until(lambda: _transcribing(archive, talk.id), timeout=120, interval=0.05), \
        "the first worker never started the transcript"
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert "transcript" not in _episode(archive, talk.id).files

    start_worker()  # takes the task over once the dead worker's lease has run out
    assert wait_until(lambda: "transcript" in _episode(archive, talk.id).files, timeout=240,
                      interval=0.5), "the transcript never arrived"
    done = _episode(archive, talk.id)
    assert done.pending == [] and done.enrichment_errors == {}
    assert done.transcript_provenance is not None
    assert done.transcript_provenance.kind == "automatic"
    assert done.transcript_provenance.model == Path(speaking.transcribe_model).name
    assert done.transcript_language == "en"
    assert {"transcript", "transcript_srt", "transcript_json"} <= set(done.files)

    # Committed once: one set of transcript objects under the episode, all of them named.
    made = [i.key for i in archive.store.list(done.prefix) if "/transcript." in i.key]
    assert sorted(made) == sorted(done.files[r].key for r in
                                  ("transcript", "transcript_srt", "transcript_json"))
    assert not [t for t in task_queue(archive).waiting() if t.episode_id == talk.id]

    vtt = b"".join(archive.store.open(done.files["transcript"].key)).decode()
    heard = _words(vtt)
    # Words the prompt (title, names, tags) does not give away.
    for word in ("built", "met", "geneva"):
        assert word in heard, (word, vtt)
    cues = json.loads(b"".join(archive.store.open(done.files["transcript_json"].key)))
    starts = [segment["startTime"] for segment in cues["segments"]]
    assert starts == sorted(starts) and starts[0] >= 0
    assert max(segment["endTime"] for segment in cues["segments"]) <= done.duration + 0.5

    client = make_client()
    page = client.get(f"/episodes/{done.slug}").text
    assert "Automatic transcript" in page and "Geneva" in page
    feed = client.get("/feed.xml").text
    assert 'type="text/vtt"' in feed and 'type="application/x-subrip"' in feed
    found = client.get("/search", params={"q": "Geneva"}).text
    assert "Trusting Enemies" in found


def test_with_transcription_off_the_cli_says_so_in_one_line(settings: Settings,
                                                            talk: Episode) -> None:
    result = run_cli(settings, "transcribe", talk.id)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "ARCHIVE_TRANSCRIBE_MODEL" in lines[0]
