"""ObjectStore against the real SeaweedFS: multipart streaming, ranges, conditions, errors."""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import tracemalloc
from collections.abc import Iterator

import pytest

from archive.errors import Conflict, NotFound, StorageError
from archive.storage import PART_SIZE, ObjectStore


class PatternStream(io.RawIOBase):
    """A large, reproducible byte stream that never exists in memory as a whole."""

    def __init__(self, size: int) -> None:
        self.size, self.position = size, 0
        self.block = bytes(range(256)) * 4096  # 1 MiB

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.size - self.position, len(self.block))
        offset = self.position % len(self.block)
        chunk = (self.block[offset:] + self.block)[:n]
        buffer[:n] = chunk
        self.position += n
        return n


def pattern_sha256(size: int) -> str:
    digest = hashlib.sha256()
    stream = PatternStream(size)
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def test_multipart_upload_streams_with_bounded_memory(store: ObjectStore) -> None:
    size = 6 * PART_SIZE + 12345  # seven parts: holding them all would need 7 × PART_SIZE
    tracemalloc.start()
    stored = store.upload_stream("episodes/x/big.bin", PatternStream(size))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert stored.size == size
    assert stored.sha256 == pattern_sha256(size)
    assert store.head("episodes/x/big.bin").size == size
    assert peak < 3 * PART_SIZE, f"peak {peak} bytes grows with the file"


def test_ranged_get_returns_exact_bytes(store: ObjectStore) -> None:
    store.put_bytes("a.txt", b"0123456789", "text/plain")
    assert b"".join(store.open("a.txt", (2, 4))) == b"234"
    assert b"".join(store.open("a.txt")) == b"0123456789"
    assert store.head("a.txt").content_type == "text/plain"


def test_conditional_put_raises_conflict(store: ObjectStore) -> None:
    first = store.put_json("doc.json", {"n": 1}, if_none_match=True)
    with pytest.raises(Conflict):
        store.put_json("doc.json", {"n": 2}, if_none_match=True)
    second = store.put_json("doc.json", {"n": 2}, if_match=first.etag)
    with pytest.raises(Conflict):
        store.put_json("doc.json", {"n": 3}, if_match=first.etag)
    assert store.get_json("doc.json") == ({"n": 2}, second.etag)
    assert store.get_bytes("doc.json", if_none_match=second.etag) is None


def test_missing_objects_raise_not_found(store: ObjectStore) -> None:
    with pytest.raises(NotFound):
        store.get_bytes("nothing-here")
    with pytest.raises(NotFound):
        store.head("nothing-here")
    assert not store.exists("nothing-here")


def test_list_paginates_and_delete_many(store: ObjectStore) -> None:
    keys = [f"many/{i:04d}" for i in range(1105)]
    threads = [threading.Thread(target=lambda part=part: [store.put_bytes(k, b"x") for k in part])
               for part in (keys[i::8] for i in range(8))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [info.key for info in store.list("many/")] == keys
    store.delete_many(keys)
    assert list(store.list("many/")) == []


def test_failed_multipart_upload_is_aborted(store: ObjectStore) -> None:
    class Broken(PatternStream):
        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            if self.position > PART_SIZE * 1.5:
                raise OSError("disk went away")
            return super().readinto(buffer)

    with pytest.raises(OSError):
        store.upload_stream("broken.bin", Broken(4 * PART_SIZE))
    assert not store.exists("broken.bin")
    uploads = store._client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
    assert [u for u in uploads if u["Key"] == "broken.bin"] == []


class CountingServer(http.server.ThreadingHTTPServer):
    """An HTTP server answering every request with one status, counting the requests."""

    def __init__(self, status: int) -> None:
        self.status, self.count = status, 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.count += 1
                self.send_response(server.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_HEAD = do_GET

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def failing_server(request: pytest.FixtureRequest) -> Iterator[CountingServer]:
    server = CountingServer(request.param)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("failing_server", [503], indirect=True)
def test_server_errors_are_retried_with_backoff(failing_server: CountingServer) -> None:
    store = ObjectStore(f"http://127.0.0.1:{failing_server.server_port}", "bucket",
                        access_key="a", secret_key="b", max_attempts=3)
    with pytest.raises(StorageError, match="503"):
        store.get_bytes("key")
    assert failing_server.count >= 3  # every attempt was made (botocore may add a probe)


@pytest.mark.parametrize("failing_server", [403], indirect=True)
def test_client_errors_are_not_retried(failing_server: CountingServer) -> None:
    store = ObjectStore(f"http://127.0.0.1:{failing_server.server_port}", "bucket",
                        access_key="a", secret_key="b", max_attempts=3)
    with pytest.raises(StorageError, match="403"):
        store.get_bytes("key")
    assert failing_server.count == 1


def test_unreachable_storage_gives_a_readable_error() -> None:
    store = ObjectStore("http://127.0.0.1:9", "bucket", access_key="a", secret_key="b",
                        max_attempts=2, connect_timeout=0.5)
    with pytest.raises(StorageError, match="not reachable"):
        store.check()
