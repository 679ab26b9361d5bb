"""Faults an operator meets: the catalogue lost, the repair run anyway, the trash emptied."""

from __future__ import annotations

from archive.catalog import Catalog
from archive.config import Settings
from archive.storage import ObjectStore
from tests.cli import run_cli
from tests.conftest import bucket_listing
from tests.test_catalog import publish


def test_a_lost_catalogue_is_rebuilt_not_repaired_away(settings: Settings, store: ObjectStore,
                                                       catalog: Catalog) -> None:
    published = {publish(catalog, f"Lecture {n}", data=bytes([n])).id for n in range(3)}
    store.delete("catalog.json")
    before = bucket_listing(store)

    refused = run_cli(settings, "verify", "--repair", "--grace", "0")
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archive: ") and "archive reindex" in lines[0]
    assert "Traceback" not in refused.stderr
    assert bucket_listing(store) == before  # nothing moved, nothing deleted

    rebuilt = run_cli(settings, "reindex")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "3 episodes" in rebuilt.stdout
    assert set(Catalog(store).refresh().data.episodes) == published
    clean = run_cli(settings, "verify", "--repair", "--grace", "0")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 damaged, 0 orphaned" in clean.stdout


def test_the_trash_is_emptied_only_on_request(settings: Settings, store: ObjectStore,
                                              catalog: Catalog) -> None:
    publish(catalog, "Kept")
    store.put_bytes("episodes/deadbeef0001/talk.mp3", b"crashed ingest", "audio/mpeg")

    default = run_cli(settings, "verify", "--repair")
    assert default.returncode == 0, default.stdout + default.stderr
    assert store.exists("episodes/deadbeef0001/talk.mp3")  # a day's grace by default

    refused = run_cli(settings, "verify", "--repair", "--grace", "0")
    assert refused.returncode == 1 and "--force" in refused.stderr
    moved = run_cli(settings, "verify", "--repair", "--grace", "0", "--force")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "TRASHED  episodes/deadbeef0001/talk.mp3 -> trash/" in moved.stdout
    assert "1 moved to trash" in moved.stdout
    trashed = [info.key for info in store.list("trash/")]
    assert len(trashed) == 1 and trashed[0].endswith("/episodes/deadbeef0001/talk.mp3")

    needs_days = run_cli(settings, "verify", "--empty-trash")
    assert needs_days.returncode == 1 and "--older-than" in needs_days.stderr
    young = run_cli(settings, "verify", "--empty-trash", "--older-than", "7")
    assert young.returncode == 0 and store.exists(trashed[0])
    emptied = run_cli(settings, "verify", "--empty-trash", "--older-than", "0")
    assert emptied.returncode == 0, emptied.stderr
    assert f"REMOVED  {trashed[0]}" in emptied.stdout
    assert not list(store.list("trash/"))
