"""The caching proxy set-up the README recommends (docs/nginx-archive.conf), run with Debian's
nginx in front of the app: a feed asked for many times reaches the archive once, and a copy
that has gone stale is revalidated with its ETag rather than fetched again."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from archive.catalog import Catalog
from tests.browser import LiveServer, live_server, publish_recording  # noqa: F401 (fixtures)
from tests.servers import wait_until

ROOT = Path(__file__).resolve().parent.parent
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def nginx_or_skip() -> None:
    if Path(NGINX).exists():
        return
    if os.environ.get("CI"):
        pytest.fail("nginx is missing and CI is set (.ci/run installs nginx-light).")
    pytest.skip("CACHING PROXY TEST SKIPPED: nginx is missing (apt-get install nginx-light).")


@pytest.fixture
def proxy(live_server: LiveServer, tmp_path: Path) -> Iterator[str]:  # noqa: F811
    nginx_or_skip()
    from archive.embedded import free_ports

    port = free_ports(1)[0]
    site = (ROOT / "docs" / "nginx-archive.conf").read_text()
    site = (site.replace("/var/cache/nginx/archive", str(tmp_path / "cache"))
                .replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{live_server.port};")
                .replace("listen 80;", f"listen 127.0.0.1:{port};"))
    (tmp_path / "archive.conf").write_text(site)
    temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    # Run as root (CI), nginx's workers would switch to "nobody" and lose the test's folder.
    user = "user root;" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(f"""
{user}
daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{
  access_log off;
  client_body_temp_path {temp['body']};
  proxy_temp_path {temp['proxy']};
  fastcgi_temp_path {temp['fastcgi']};
  uwsgi_temp_path {temp['uwsgi']};
  scgi_temp_path {temp['scgi']};
  include {tmp_path}/archive.conf;
}}
""")
    process = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None

    try:
        assert wait_until(answering, timeout=20) and process.poll() is None, \
            (tmp_path / "error.log").read_text() if (tmp_path / "error.log").exists() else ""
        yield url
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()


def test_a_feed_asked_for_many_times_reaches_the_archive_once(
        proxy: str, catalog: Catalog, live_server: LiveServer) -> None:  # noqa: F811
    publish_recording(catalog, "Behind The Proxy")
    assert wait_until(lambda: "Behind The Proxy" in httpx.get(f"{live_server.url}/").text)
    statuses, bodies = [], set()
    for _ in range(30):
        response = httpx.get(f"{proxy}/feed.xml", headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200
        statuses.append(response.headers["X-Cache-Status"])
        bodies.add(response.content)
    assert statuses[0] == "MISS" and statuses[1:] == ["HIT"] * 29
    assert len(bodies) == 1 and b"Behind The Proxy" in bodies.pop()
    # Pages are not cached: they carry sessions and form tokens.
    assert "X-Cache-Status" not in httpx.get(f"{proxy}/").headers
