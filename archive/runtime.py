"""Opening the archive: the storage (embedded or external), the object store and the catalogue.

The CLI and the web app's lifespan both use `open_archive(settings)`, so "which S3, which bucket,
who owns the embedded server" is decided in one place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from archive.catalog import Catalog
from archive.config import Settings
from archive.embedded import EmbeddedS3
from archive.storage import ObjectStore


@dataclass
class Archive:
    """The long-lived parts, built once per process."""

    settings: Settings
    store: ObjectStore
    catalog: Catalog


def make_store(settings: Settings, endpoint: str | None) -> ObjectStore:
    return ObjectStore(
        endpoint,
        settings.s3_bucket,
        access_key=settings.access_key,
        secret_key=settings.secret_access_key,
        region=settings.s3_region,
    )


@contextlib.contextmanager
def open_archive(settings: Settings) -> Iterator[Archive]:
    """Yield a ready archive; with no ARCHIVE_S3_ENDPOINT, run (or join) the embedded server."""
    with contextlib.ExitStack() as stack:
        endpoint = settings.s3_endpoint
        if endpoint is None:
            embedded = EmbeddedS3(
                settings.data_dir,
                access_key=settings.access_key,
                secret_key=settings.secret_access_key,
                bucket=settings.s3_bucket,
            )
            endpoint = embedded.attach()
            if endpoint is None:
                stack.callback(embedded.stop)
                endpoint = embedded.start()
        store = make_store(settings, endpoint)
        if settings.embedded:
            store.ensure_bucket()
        else:
            store.check()
        yield Archive(settings, store, Catalog(store, ttl=settings.catalog_ttl))
