"""The demo archive, fully enriched, for browser tests and screenshots of the real pages.

`archive demo` content (seven events with transcripts, chapters and covers) ingested into a
bucket of its own, then every enrichment task run to the end (cover renditions, waveforms), so
pages look as they do on a server whose job worker has caught up.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from archive.catalog import Catalog
from archive.config import Settings
from archive.demo import EVENTS, load_demo
from archive.enrich import make_worker
from archive.runtime import Archive, make_store


def demo_settings(s3_endpoint: str, folder: Path, access_key: str, secret_key: str
                  ) -> Settings:
    return Settings(s3_endpoint=s3_endpoint, s3_bucket=f"demo-{secrets.token_hex(6)}",
                    access_key=access_key, secret_access_key=secret_key,
                    data_dir=folder / "data", secret_key="demo-" + secrets.token_hex(12),
                    catalog_ttl=0.5, transcribe_model="off")


def load_enriched_demo(settings: Settings, events: int | None = None) -> Archive:
    """Ingest the demo (its first `events` only, when given) and drain the task queue (no
    worker thread: done when this returns)."""
    store = make_store(settings, settings.s3_endpoint)
    store.ensure_bucket()
    archive = Archive(settings, store, Catalog(store, ttl=settings.catalog_ttl))
    load_demo(archive, events=EVENTS[:events] if events else EVENTS)
    worker = make_worker(archive)
    while worker.run_once():
        pass
    return archive
