"""Faults: storage killed mid-upload, the ingest process killed at every stage.

Whatever dies, readers never see a half-published episode, and `archive verify --repair`
leaves the bucket with no orphan.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from archive.catalog import Catalog
from archive.config import Settings
from archive.embedded import EmbeddedS3
from archive.errors import StorageError
from archive.fixity import verify
from archive.ingest import Metadata, ingest
from archive.runtime import Archive
from archive.storage import ObjectStore
from tests import media_samples
from tests.cli import cli_env, run_cli

pytestmark = pytest.mark.slow


def big_recording(folder: Path, seconds: float = 120.0) -> Path:
    """About 20 MB of WAV: enough for a multipart upload of several parts."""
    return media_samples.make_recording(folder / "long.wav", "wav", seconds=seconds)


def meta() -> Metadata:
    return Metadata(title="Geneva Summit: 30th Anniversary Conference", series="Conferences",
                    speakers=["Jan Ruzicka;speaker;Aberystwyth University"])


def open_embedded(folder: Path) -> tuple[EmbeddedS3, Archive]:
    server = EmbeddedS3(folder, access_key="ak", secret_key="sk-secret", bucket="archive")
    server.start()
    settings = Settings(s3_endpoint=server.endpoint, s3_bucket="archive", access_key="ak",
                        secret_access_key="sk-secret", data_dir=folder)
    store = ObjectStore(server.endpoint, "archive", access_key="ak", secret_key="sk-secret",
                        max_attempts=2, connect_timeout=1, read_timeout=10)
    return server, Archive(settings, store, Catalog(store))


def test_storage_killed_mid_upload(tmp_path: Path) -> None:
    source = big_recording(tmp_path)
    server, archive = open_embedded(tmp_path / "s3")
    try:
        killed = False

        def kill_storage_while_uploading(stage: str, fraction: float) -> None:
            nonlocal killed
            if stage == "uploading" and fraction > 0.2 and not killed:
                assert server.process is not None
                server.process.send_signal(signal.SIGKILL)
                server.process.wait()
                killed = True

        with pytest.raises(StorageError, match="not reachable"):
            ingest(archive, source, meta(), progress=kill_storage_while_uploading)
        assert killed
    finally:
        server.stop()

    server, archive = open_embedded(tmp_path / "s3")  # same data folder, new process and ports
    try:
        assert archive.catalog.refresh().published == []
        episode = ingest(archive, source, meta())
        report = verify(archive.catalog, repair=True, grace=timedelta(0), force=True)
        assert report.damaged == []
        assert verify(archive.catalog, grace=timedelta(0)).ok
        assert [e.id for e in archive.catalog.refresh().published] == [episode.id]
    finally:
        server.stop()


@pytest.mark.parametrize("stage", ["hashing", "converting", "uploading", "committing"])
def test_ingest_process_killed(settings: Settings, store: ObjectStore, tmp_path: Path,
                               stage: str) -> None:
    """SIGKILL `archive ingest` when it reports `stage`: all or nothing, then verify cleans up."""
    source = big_recording(tmp_path, seconds=90.0)
    process = subprocess.Popen(
        [sys.executable, "-m", "archive", "ingest", str(source), "--title", "Killed",
         "--series", "Conferences"],
        env=cli_env(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith(stage):
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(60)
    view = Catalog(store).refresh()
    for episode in view.data.episodes.values():  # committed before the kill landed: whole
        for media in episode.files.values():
            assert store.head(media.key).size == media.size
    if not store.exists("catalog.json"):  # killed before the first commit: no catalogue yet
        refused = run_cli(settings, "verify", "--repair", "--grace", "0")
        assert refused.returncode == 1 and "archive reindex" in refused.stderr
        assert run_cli(settings, "reindex").returncode == 0
    # The operator knows nothing is in flight (--grace 0) and that every orphan is the dead
    # ingest's (--force: here they are most of the bucket).
    repaired = run_cli(settings, "verify", "--repair", "--grace", "0", "--force")
    assert "0 damaged" in repaired.stdout, repaired.stdout + repaired.stderr
    clean = run_cli(settings, "verify", "--grace", "0")
    assert clean.returncode == 0, clean.stdout
    assert "0 orphaned" in clean.stdout
    episode_prefixes = {info.key.split("/")[1] for info in store.list("episodes/")}
    assert episode_prefixes == set(view.data.episodes)


def test_a_second_ingest_after_a_crash_succeeds(settings: Settings, store: ObjectStore,
                                                tmp_path: Path) -> None:
    source = media_samples.make_recording(tmp_path / "a.wav", "wav", seconds=2.0)
    store.put_bytes("episodes/0123456789ab/original.wav", source.read_bytes(), "audio/wav")
    archive = Archive(dataclasses.replace(settings), store, Catalog(store))
    episode = ingest(archive, source, meta())  # the crash's leftovers do not block a retry
    assert archive.catalog.refresh().published[0].id == episode.id
    assert verify(archive.catalog, grace=timedelta(0)).orphans == [
        "episodes/0123456789ab/original.wav"]
    assert verify(archive.catalog, repair=True, grace=timedelta(0), force=True).trashed
    assert verify(archive.catalog, grace=timedelta(0)).ok
