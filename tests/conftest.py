"""Shared fixtures: one real SeaweedFS for the session, a fresh bucket per test.

Set ARCHIVE_TEST_S3_ENDPOINT (plus AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) to run the same
suite against another S3-compatible server instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from archive.catalog import Catalog
from archive.config import Settings
from archive.embedded import EmbeddedS3
from archive.errors import ArchiveError
from archive.runtime import Archive, make_store
from archive.storage import ObjectStore
from archive.web.app import create_app

ACCESS_KEY = os.environ.get("AWS_ACCESS_KEY_ID", "archive-test")
SECRET_KEY = os.environ.get("AWS_SECRET_ACCESS_KEY", "archive-test-secret")


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("ARCHIVE_TEST_S3_ENDPOINT")
    if external:
        yield external
        return
    server = EmbeddedS3(tmp_path_factory.mktemp("seaweedfs"), access_key=ACCESS_KEY,
                        secret_key=SECRET_KEY, bucket="archive-test", volume_size_mb=64)
    with server:
        yield server.endpoint


@pytest.fixture
def settings(s3_endpoint: str, tmp_path: Path) -> Settings:
    """Settings for one test: its own bucket and data folder on the shared server."""
    return Settings(
        s3_endpoint=s3_endpoint,
        s3_bucket=f"t-{secrets.token_hex(6)}",
        access_key=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        base_url="http://archive.test",
        data_dir=tmp_path / "data",
        secret_key="test-secret-key-" + secrets.token_hex(8),
        catalog_ttl=0.5,
        # No model hub here: tests that transcribe set the packaged model explicitly
        # (tests/whisper_model.py); the rest publish without queueing speech recognition.
        transcribe_model="off",
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[ObjectStore]:
    """The test's own bucket, dropped afterwards so a long run does not fill the server."""
    store = make_store(settings, settings.s3_endpoint)
    store.ensure_bucket()
    yield store
    with contextlib.suppress(ArchiveError):
        store.drop_bucket()


@pytest.fixture
def catalog(store: ObjectStore, settings: Settings) -> Catalog:
    return Catalog(store, ttl=settings.catalog_ttl)


@pytest.fixture
def archive(settings: Settings, store: ObjectStore, catalog: Catalog) -> Archive:
    """The long-lived parts as the CLI and the app hold them, on the test's bucket."""
    return Archive(settings, store, catalog)


def bucket_listing(store: ObjectStore) -> list[tuple[str, int]]:
    """Everything in the bucket, to compare before and after an operation that must not write."""
    return sorted((info.key, info.size) for info in store.list())


@pytest.fixture
def make_client(settings: Settings, store: ObjectStore) -> Iterator[object]:
    """Start app instances (lifespan running) on the test's bucket; variants via keywords."""
    clients: list[TestClient] = []

    def start(**overrides: object) -> TestClient:
        client = TestClient(create_app(dataclasses.replace(settings, **overrides)),
                            base_url=settings.base_url)
        client.__enter__()
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: object) -> TestClient:
    return make_client()  # type: ignore[operator, no-any-return]
