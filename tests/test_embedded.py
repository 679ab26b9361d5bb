"""The embedded SeaweedFS: data survives restarts, and no `weed` process outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

from archive.config import Settings
from archive.embedded import EmbeddedS3, free_ports
from archive.runtime import make_store


def weed_processes(folder: Path) -> list[int]:
    """PIDs of weed processes whose command line names `folder`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "weed" in cmdline and str(folder) in cmdline:
                pids.append(int(entry.name))
    return pids


def wait_until(condition, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_data_survives_a_restart(tmp_path: Path) -> None:
    keys = {"access_key": "ak", "secret_key": "sk-secret", "bucket": "archive"}
    with EmbeddedS3(tmp_path, **keys) as server:
        store = make_store(Settings(s3_bucket="archive", access_key="ak",
                                    secret_access_key="sk-secret"), server.endpoint)
        store.put_bytes("catalog.json", b'{"kept": true}', "application/json")
    assert weed_processes(tmp_path) == []
    with EmbeddedS3(tmp_path, **keys) as server:
        store = make_store(Settings(s3_bucket="archive", access_key="ak",
                                    secret_access_key="sk-secret"), server.endpoint)
        assert store.get_bytes("catalog.json")[0] == b'{"kept": true}'


def start_serve(tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_ports(1)[0]
    env = {**os.environ, "ARCHIVE_DATA_DIR": str(tmp_path / "data")}
    env.pop("ARCHIVE_S3_ENDPOINT", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "archive.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/healthz"

    def healthy() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_until(healthy), process.stderr.read().decode() if process.poll() else "no answer"
    return process, url


def test_serve_stops_its_storage_on_ctrl_c(tmp_path: Path) -> None:
    process, _ = start_serve(tmp_path)
    assert weed_processes(tmp_path) != []
    process.send_signal(signal.SIGINT)
    code = process.wait(30)
    assert code == 0, process.stderr.read().decode()[-3000:] if process.stderr else code
    assert weed_processes(tmp_path) == []


def test_storage_dies_with_a_killed_parent(tmp_path: Path) -> None:
    process, _ = start_serve(tmp_path)
    assert weed_processes(tmp_path) != []
    process.kill()
    process.wait()
    assert wait_until(lambda: weed_processes(tmp_path) == [], timeout=20)


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    env = {**os.environ, "ARCHIVE_DATA_DIR": str(tmp_path), "ARCHIVE_WEED_BINARY": "/nonexistent",
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", "import sysconfig, sys; sysconfig.get_path = lambda n: '/nowhere';"
         "sys.executable = '/nowhere/python'; from archive.cli import main; sys.exit(main())",
         "verify"],
        env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("archive: The embedded storage needs the `weed` binary")
    assert "Traceback" not in result.stderr
