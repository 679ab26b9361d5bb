"""The catalogue over real S3: no lost updates, atomic publish, reindex, revalidation."""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import timedelta

import pytest

from archive.catalog import Catalog
from archive.config import Settings
from archive.errors import Duplicate, NotFound
from archive.fixity import reindex, verify
from archive.models import Series
from archive.runtime import make_store
from archive.storage import ObjectStore
from tests.conftest import bucket_listing
from tests.factories import make_episode

ROUNDTABLES = Series.new("Roundtables")


def publish(catalog: Catalog, title: str, data: bytes = b"audio bytes", **fields: object):
    episode = make_episode(title, **fields)
    with catalog.stage(episode.id) as stage:
        stored = catalog.store.put_bytes(stage.key("talk.mp3"), data, "audio/mpeg")
        episode.files["audio"].size = stored.size
        episode.files["audio"].sha256 = stored.sha256
        episode.original_sha256 = stored.sha256
        return stage.commit(episode, ROUNDTABLES)


def test_commit_makes_an_episode_visible(catalog: Catalog) -> None:
    episode = publish(catalog, "Trust and Deception Workshop")
    view = Catalog(catalog.store).view()
    assert [e.title for e in view.published] == ["Trust and Deception Workshop"]
    assert view.episode_by_slug("trust-and-deception-workshop").id == episode.id
    assert view.series("roundtables").title == "Roundtables"
    assert view.person("nicholas-j-wheeler").roles == ("chair",)


def test_a_failure_before_commit_leaves_nothing_visible(catalog: Catalog) -> None:
    before = bucket_listing(catalog.store)
    episode = make_episode("Never published")
    with pytest.raises(RuntimeError), catalog.stage(episode.id) as stage:
        catalog.store.put_bytes(stage.key("talk.mp3"), b"partial", "audio/mpeg")
        raise RuntimeError("converter crashed")
    assert bucket_listing(catalog.store) == before
    assert catalog.view().published == []


def test_verify_reports_and_repairs_orphans_of_a_crash(catalog: Catalog) -> None:
    publish(catalog, "Kept")
    # A crash between upload and commit: the objects are there, the catalogue never named them.
    catalog.store.put_bytes("episodes/deadbeef0001/talk.mp3", b"orphan", "audio/mpeg")
    assert verify(catalog).ok  # within the grace period it may be an upload in flight
    report = verify(catalog, grace=timedelta(0))
    assert report.orphans == ["episodes/deadbeef0001/talk.mp3"]
    assert not report.ok
    repaired = verify(catalog, repair=True, grace=timedelta(0), force=True)  # 1 of 4 objects
    assert [key for key, _ in repaired.trashed] == ["episodes/deadbeef0001/talk.mp3"]
    assert verify(catalog, grace=timedelta(0)).ok
    assert [e.title for e in catalog.view().published] == ["Kept"]


def test_verify_detects_changed_bytes(catalog: Catalog) -> None:
    episode = publish(catalog, "Tampered")
    catalog.store.put_bytes(episode.files["audio"].key, b"audio bytez", "audio/mpeg")
    report = verify(catalog)
    assert report.damaged == [f"{episode.id} audio: checksum mismatch (the stored bytes changed)"]


def test_duplicate_recordings_are_refused(catalog: Catalog) -> None:
    first = publish(catalog, "Original", data=b"same bytes")
    with pytest.raises(Duplicate) as error:
        publish(catalog, "Copy", data=b"same bytes")
    assert error.value.episode_id == first.id
    assert [e.title for e in catalog.view().published] == ["Original"]
    assert verify(catalog).ok  # the duplicate's staged objects were removed


def test_slugs_are_made_unique(catalog: Catalog) -> None:
    a = publish(catalog, "Geneva Summit", data=b"a")
    b = publish(catalog, "Geneva Summit", data=b"b")
    assert (a.slug, b.slug) == ("geneva-summit", "geneva-summit-2")


def test_sixteen_concurrent_threads_all_land(catalog: Catalog) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            publish(Catalog(catalog.store), f"Thread {n}", data=f"thread {n}".encode())
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(e.title for e in catalog.refresh().published) == sorted(
        f"Thread {n}" for n in range(16))


def _process_writer(settings: Settings, n: int) -> None:
    store = make_store(settings, settings.s3_endpoint)
    publish(Catalog(store), f"Process {n}", data=f"process {n}".encode())


def test_sixteen_concurrent_processes_all_land(catalog: Catalog, settings: Settings) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_process_writer, args=(settings, n)) for n in range(16)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [p.exitcode for p in processes] == [0] * 16
    assert len(catalog.refresh().published) == 16


def test_reindex_reproduces_the_catalogue(catalog: Catalog, store: ObjectStore) -> None:
    for n in range(3):
        publish(catalog, f"Lecture {n}", data=bytes([n]))
    before = catalog.refresh().data
    store.delete("catalog.json")
    rebuilt = reindex(Catalog(store))
    assert rebuilt.episodes == before.episodes
    assert rebuilt.series == before.series


def test_a_second_reader_sees_a_commit_within_the_ttl(catalog: Catalog) -> None:
    reader = Catalog(catalog.store, ttl=0.3)
    assert reader.view().published == []
    publish(catalog, "Trusting Enemies")
    assert reader.view().published == []  # still within the revalidation window
    deadline = time.monotonic() + 5
    while not reader.view().published and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [e.title for e in reader.view().published] == ["Trusting Enemies"]


def test_views_raise_not_found(catalog: Catalog) -> None:
    view = catalog.view()
    with pytest.raises(NotFound):
        view.episode_by_slug("nope")
    with pytest.raises(NotFound):
        view.series("nope")
