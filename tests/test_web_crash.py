"""The web process dies mid-upload: the client sees an error, nothing is half-published.

A real `archive serve` is SIGKILLed (a) while the multipart body of `POST /api/episodes` is still
arriving, and (b) after the body arrived, while the ingest is storing objects in S3 but before
it commits. Either way the client gets a transport error (never a success), the catalogue is
unchanged, `archive verify --repair` moves whatever reached the bucket to the trash, and the
only local leftovers are the dead process's spool folder (and, in (b), its ingest work folder
in TMPDIR). The next start sweeps spool folders idle for an hour (`sweep_stale_spools`), so a
fresh one is still there when the assertions below look.

In (b) the kill usually lands while the original is going up as a multipart upload: a killed
process cannot abort that unfinished upload; `verify --repair` does (and the README's lifecycle
rule would).
"""

from __future__ import annotations

import secrets
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from archive.catalog import Catalog
from archive.config import Settings
from archive.search import HOST_INDEX
from archive.storage import ObjectStore
from tests import media_samples
from tests.cli import run_cli
from tests.servers import Served, serve_process, wait_until

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
FIRST_BYTES = 1024 * 1024  # sent before the kill
CHUNK = 256 * 1024
SLACK = 64 * 1024  # bytes the server may hold in its parser and file buffers


def cli_token(settings: Settings, name: str = "crash-editor") -> str:
    """An editor and an API token, made the way an administrator would: with the CLI."""
    added = run_cli(settings, "user", "add", name, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert added.returncode == 0, added.stderr
    created = run_cli(settings, "token", "create", name)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


class SlowUpload:
    """A multipart body for `POST /api/episodes` that sends its first MB, then waits for
    `resume` before sending the rest (the test kills the server in between)."""

    def __init__(self, recording: Path, *, hold: bool) -> None:
        boundary = f"archive-crash-{secrets.token_hex(8)}"
        self.content_type = f"multipart/form-data; boundary={boundary}"
        fields = {"title": "Half Published", "series": "Crashes"}
        head = b"".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode() for name, value in fields.items())
        head += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                 f'filename="talk.wav"\r\nContent-Type: audio/wav\r\n\r\n').encode()
        self.head, self.data = head, recording.read_bytes()
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.length = len(self.head) + len(self.data) + len(self.tail)
        self.hold = hold
        self.resume = threading.Event()
        self.chunks_after_resume = 0

    def body(self) -> Iterator[bytes]:
        yield self.head
        yield self.data[:FIRST_BYTES]
        if self.hold and not self.resume.wait(60):
            raise RuntimeError("the test never resumed the upload")
        for start in range(FIRST_BYTES, len(self.data), CHUNK):
            self.chunks_after_resume += 1
            yield self.data[start:start + CHUNK]
        yield self.tail

    def post(self, url: str, token: str, outcome: dict[str, object]) -> None:
        """Run in a thread: record the response or the exception."""
        try:
            with httpx.Client(timeout=httpx.Timeout(120)) as http:
                outcome["response"] = http.post(
                    f"{url}/api/episodes", content=self.body(),
                    headers={"Authorization": f"Bearer {token}",
                             "Content-Type": self.content_type,
                             "Content-Length": str(self.length)})
        except Exception as error:
            outcome["error"] = error


def spooled(settings: Settings) -> list[Path]:
    return sorted((Path(settings.data_dir) / "uploads").glob("upload-*/recording"))


def unfinished_uploads(store: ObjectStore) -> list[str]:
    uploads = store._client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    return sorted(upload["Key"] for upload in uploads)


def in_flight(store: ObjectStore) -> bool:
    """The ingest has started writing: an unfinished multipart upload or a stored object."""
    return bool(unfinished_uploads(store)) or any(True for _ in store.list("episodes/"))


def local_files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def kill(served: Served) -> None:
    served.process.send_signal(signal.SIGKILL)
    served.process.wait(30)


@pytest.mark.parametrize("moment", ["mid-body", "mid-ingest"])
def test_web_process_killed_mid_upload(settings: Settings, store: ObjectStore, tmp_path: Path,
                                       moment: str) -> None:
    token = cli_token(settings)
    recording = media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=120.0)
    server_tmp = tmp_path / "server-tmp"
    server_tmp.mkdir()
    before = sorted(info.key for info in store.list())
    upload = SlowUpload(recording, hold=moment == "mid-body")
    outcome: dict[str, object] = {}

    with serve_process(settings, TMPDIR=str(server_tmp)) as served:
        client = threading.Thread(target=upload.post, args=(served.url, token, outcome))
        client.start()
        try:
            if moment == "mid-body":
                # The server has spooled (nearly: a write buffer may lag) all that was sent.
                assert wait_until(lambda: any(p.stat().st_size >= FIRST_BYTES - SLACK
                                              for p in spooled(settings)),
                                  timeout=30), "the server never spooled the first MB"
            else:
                assert wait_until(lambda: in_flight(store) or "response" in outcome
                                  or "error" in outcome, timeout=60, interval=0.02)
                assert not outcome, f"the upload finished before the kill: {outcome}"
            kill(served)
            assert served.process.returncode == -signal.SIGKILL
        finally:
            upload.resume.set()
            client.join(60)
    assert not client.is_alive(), "the client hung after the server died"

    # The client sees an error, never a response.
    assert "response" not in outcome, outcome["response"]
    error = outcome.get("error")
    assert isinstance(error, httpx.TransportError), repr(error)
    if moment == "mid-body":
        assert upload.chunks_after_resume < len(upload.data) // CHUNK  # the body was cut short

    # Nothing half-published: the catalogue names no episode, readers see nothing.
    view = Catalog(store).refresh()
    assert view.data.episodes == {} and view.published == []
    leftovers = sorted(info.key for info in store.list())
    unfinished = unfinished_uploads(store)
    if moment == "mid-body":
        assert leftovers == before  # the body never completed: the bucket was not touched
        assert unfinished == []
    else:  # at most the original's upload, under an episode prefix the catalogue never named
        assert all(key.startswith("episodes/") and key.endswith("/original.wav")
                   for key in unfinished), unfinished

    if not store.exists("catalog.json"):  # nothing ever committed: repair needs a catalogue
        assert run_cli(settings, "reindex").returncode == 0
    # Nothing is in flight (--grace 0) and the orphans are all the dead upload's (--force).
    repaired = run_cli(settings, "verify", "--repair", "--grace", "0", "--force")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "0 damaged" in repaired.stdout
    clean = run_cli(settings, "verify", "--grace", "0")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 orphaned" in clean.stdout
    assert not list(store.list("episodes/")) and not list(store.list("series/"))
    assert run_cli(settings, "verify", "--empty-trash", "--older-than", "0").returncode == 0
    # The dead upload's job status stays (it reads as failed, and is pruned after a day);
    # the catalogue is its manifest and the segments it names.
    assert sorted(info.key for info in store.list()
                  if not info.key.startswith(("jobs/", "catalog/"))) == \
        sorted({*before, "catalog.json"})
    assert unfinished_uploads(store) == []  # verify --repair aborted the dead unfinished upload

    # Local leftovers: the dead process's spool folder, which nothing removes later.
    spool = spooled(settings)
    assert len(spool) == 1
    if moment == "mid-body":
        assert FIRST_BYTES - SLACK <= spool[0].stat().st_size <= FIRST_BYTES
    else:
        assert spool[0].stat().st_size == len(upload.data)
    data_files = local_files(Path(settings.data_dir))
    # ...and the host's search index (with SQLite's log and the set-up lock): a cache the
    # processes of a host share, which the next process opens as it is.
    host_index = Path(settings.data_dir) / "search" / HOST_INDEX
    index_files = [name for name in data_files if name.startswith("search/")]
    assert f"search/{HOST_INDEX}" in index_files and set(index_files) <= {
        f"search/{HOST_INDEX}", f"search/{HOST_INDEX}-wal", f"search/{HOST_INDEX}-shm",
        "search/host.lock"}, data_files
    assert [name for name in data_files if name not in index_files] == \
        [str(spool[0].relative_to(settings.data_dir))], data_files
    index_inode = host_index.stat().st_ino
    work = local_files(server_tmp)
    if moment == "mid-body":
        assert work == []
    else:  # the ingest's work folder (the delivery file being encoded) stays in TMPDIR too
        assert all(name.startswith("archive-ingest-") for name in work), work

    # A new process on the same bucket serves the unchanged catalogue and accepts the upload.
    with serve_process(settings, TMPDIR=str(server_tmp)) as served:
        retried = httpx.post(f"{served.url}/api/episodes", content=b"".join(upload_bytes(upload)),
                             headers={"Authorization": f"Bearer {token}",
                                      "Content-Type": upload.content_type}, timeout=120)
        assert retried.status_code == 201, retried.text
        assert httpx.get(f"{served.url}/api/episodes").json()["total"] == 1
        assert host_index.stat().st_ino == index_inode  # opened, not rebuilt
    assert run_cli(settings, "verify").returncode == 0


def upload_bytes(upload: SlowUpload) -> Iterator[bytes]:
    yield upload.head
    yield upload.data
    yield upload.tail
