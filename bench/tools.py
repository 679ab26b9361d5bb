"""What the benchmarks share: servers to start, wrk to drive them, memory and time to measure."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx

from archive.catalog import Catalog
from archive.config import Settings
from archive.embedded import EmbeddedS3, free_ports
from archive.runtime import Archive, make_store

ROOT = Path(__file__).resolve().parent.parent
ACCESS, SECRET = "bench", "bench-secret"


@dataclass
class Result:
    section: str
    name: str
    value: float
    baseline: float
    unit: str
    higher_is_better: bool = True
    target: float | None = None
    notes: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        if not self.baseline:
            return float("nan")
        return self.value / self.baseline

    @property
    def meets_target(self) -> bool | None:
        if self.target is None:
            return None
        return self.ratio >= self.target if self.higher_is_better else self.ratio <= self.target


def require(tool: str, package: str) -> str:
    path = shutil.which(tool) or (f"/usr/sbin/{tool}" if Path(f"/usr/sbin/{tool}").exists()
                                  else None)
    if not path:
        sys.exit(f"bench: {tool} is missing; install Debian's {package} (make bench does).")
    return path


@contextlib.contextmanager
def embedded_archive(folder: Path, **overrides: object) -> Iterator[Archive]:
    """A fresh embedded SeaweedFS and an Archive on it, for one section."""
    with EmbeddedS3(folder, access_key=ACCESS, secret_key=SECRET, bucket="archive") as server:
        settings = Settings(s3_endpoint=server.endpoint, s3_bucket="archive", access_key=ACCESS,
                            secret_access_key=SECRET, data_dir=folder,
                            base_url="http://127.0.0.1:8000", secret_key="b" * 32,
                            **overrides)  # type: ignore[arg-type]
        store = make_store(settings, server.endpoint)
        yield Archive(settings, store, Catalog(store))


def archive_env(archive: Archive) -> dict[str, str]:
    s = archive.settings
    return {**os.environ, "ARCHIVE_S3_ENDPOINT": s.s3_endpoint or "",
            "ARCHIVE_S3_BUCKET": s.s3_bucket, "AWS_ACCESS_KEY_ID": s.access_key,
            "AWS_SECRET_ACCESS_KEY": s.secret_access_key, "ARCHIVE_DATA_DIR": str(s.data_dir),
            "ARCHIVE_BASE_URL": s.base_url, "ARCHIVE_SECRET_KEY": s.secret_key,
            "PYTHONPATH": str(ROOT)}


def wait_for(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code < 500:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


@contextlib.contextmanager
def bench_server(archive: Archive, bare_dir: Path) -> Iterator[str]:
    """The archive app (one uvicorn worker) plus bare routes serving files from `bare_dir`."""
    port = free_ports(1)[0]
    env = {**archive_env(archive), "BENCH_BARE_DIR": str(bare_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.server", "--port", str(port)], env=env, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)


@contextlib.contextmanager
def nginx(root: Path) -> Iterator[str]:
    """Debian's nginx serving files from `root` (one worker, like the app)."""
    binary = require("nginx", "nginx-light")
    port = free_ports(1)[0]
    work = Path(tempfile.mkdtemp(prefix="bench-nginx-"))
    config = work / "nginx.conf"
    config.write_text(textwrap.dedent(f"""
        daemon off; worker_processes 1; pid {work}/nginx.pid; error_log {work}/error.log;
        events {{ worker_connections 1024; }}
        http {{
          access_log off; client_body_temp_path {work}; proxy_temp_path {work};
          fastcgi_temp_path {work}; uwsgi_temp_path {work}; scgi_temp_path {work};
          types {{ application/rss+xml xml; text/html html; }}
          server {{ listen 127.0.0.1:{port}; root {root}; etag on; }}
        }}
    """))
    process = subprocess.Popen([binary, "-c", str(config), "-p", str(work)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"http://127.0.0.1:{port}/")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def wrk(url: str, *, seconds: int = 5, connections: int = 32,
        headers: dict[str, str] | None = None) -> float:
    """Requests per second from wrk against `url`; non-2xx/3xx answers make it fail."""
    binary = require("wrk", "wrk")
    args = [binary, "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    output = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx or 3xx responses" in output:
        raise RuntimeError(f"wrk saw errors from {url}:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not match:
        raise RuntimeError(f"wrk printed no rate for {url}:\n{output}")
    return float(match.group(1))


def run_measured(args: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a command, from GNU time."""
    timer = require("time", "time")
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        started = time.perf_counter()
        subprocess.run([timer, "-f", "%M", "-o", report.name, *args], env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        peak_kb = float(report.read().strip().splitlines()[-1])
    return wall, peak_kb / 1024
