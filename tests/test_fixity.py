"""`verify --repair` never loses the archive: it refuses without a trustworthy catalogue, keeps
every meta.json, moves orphans to `trash/` instead of deleting them, respects a safe grace
period, finishes interrupted deletes (tombstones), and never races a commit into naming an
object that is gone."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive import editing, fixity, removal
from archive.catalog import Catalog, CatalogData
from archive.errors import ArchiveError, Conflict
from archive.fixity import empty_trash, reindex, verify
from archive.ingest import Metadata, ingest
from archive.models import Series
from archive.runtime import Archive
from archive.storage import ObjectStore
from media import transcripts
from tests import media_samples
from tests.conftest import bucket_listing
from tests.factories import make_episode
from tests.test_catalog import ROUNDTABLES, publish

NOW = timedelta(0)


def trash_key(key: str) -> str:
    return f"trash/{datetime.now(UTC).date().isoformat()}/{key}"


def announce_trashing(catalog: Catalog, *keys: str) -> None:
    """What `verify --repair` records in the catalogue before it moves orphans."""

    def apply(data):  # type: ignore[no-untyped-def]
        data.mark_removing(keys, "a repair")

    catalog.change(apply)


# -- item 1: no catalogue, no repair -------------------------------------------------------


@pytest.mark.parametrize("damage", ["missing", "empty", "not json"])
def test_repair_refuses_without_a_readable_catalogue(store: ObjectStore, catalog: Catalog,
                                                     damage: str) -> None:
    ids = {publish(catalog, f"Lecture {n}", data=bytes([n])).id for n in range(3)}
    if damage == "missing":
        store.delete("catalog.json")
    else:
        store.put_bytes("catalog.json", b"" if damage == "empty" else b"{not json", "text/plain")
    before = bucket_listing(store)
    with pytest.raises(ArchiveError, match="archive reindex"):
        verify(Catalog(store), repair=True, grace=NOW)
    assert bucket_listing(store) == before
    assert set(reindex(Catalog(store)).episodes) == ids


def test_repair_refuses_when_the_catalogue_names_clearly_fewer_episodes(
        store: ObjectStore, catalog: Catalog) -> None:
    """A stale catalogue (restored from an old backup) must not turn episodes into orphans."""
    ids = {publish(catalog, f"Lecture {n}", data=bytes([n])).id for n in range(3)}
    kept = min(ids)

    def forget_two(data):  # type: ignore[no-untyped-def]
        data.episodes = {kept: data.episodes[kept]}

    catalog.change(forget_two)
    before = bucket_listing(store)
    with pytest.raises(ArchiveError, match="archive reindex"):
        verify(Catalog(store), repair=True, grace=NOW)
    assert bucket_listing(store) == before
    assert set(reindex(Catalog(store)).episodes) == ids


def test_a_few_uncatalogued_episodes_are_kept_and_reported(store: ObjectStore,
                                                           catalog: Catalog) -> None:
    episodes = [publish(catalog, f"Lecture {n}", data=bytes([n])) for n in range(10)]
    lost = episodes[0]
    catalog.change(lambda data: data.episodes.pop(lost.id))
    report = verify(Catalog(store), repair=True, grace=NOW)
    assert report.damaged == [f"{lost.id}: in the bucket but not in catalog.json "
                              "(run `archive reindex`)"]
    assert report.trashed == []
    assert store.exists(lost.files["audio"].key) and store.exists(f"episodes/{lost.id}/meta.json")


def test_orphans_move_to_the_trash_and_meta_json_is_never_moved(store: ObjectStore,
                                                                catalog: Catalog) -> None:
    kept = publish(catalog, "Kept")
    orphans = {"episodes/deadbeef0001/talk.mp3": b"crashed ingest",
               "series/roundtables/cover-000000000000.jpg": b"old cover"}
    for key, data in orphans.items():
        store.put_bytes(key, data, "application/octet-stream")
    store.put_json("series/ghost/meta.json", {"slug": "ghost", "title": "Ghost"})

    report = verify(catalog, repair=True, grace=NOW, force=True)
    assert sorted(report.trashed) == sorted((key, trash_key(key)) for key in orphans)
    for key, data in orphans.items():
        assert not store.exists(key)
        assert store.get_bytes(trash_key(key))[0] == data  # type: ignore[index]
    assert store.exists("series/ghost/meta.json")  # a meta.json is reindex's; never moved
    assert store.exists(f"episodes/{kept.id}/meta.json")
    assert verify(catalog, grace=NOW).orphans == []

    assert empty_trash(store, timedelta(days=1)) == []  # too young
    assert sorted(empty_trash(store, timedelta(0))) == sorted(map(trash_key, orphans))
    assert not list(store.list("trash/"))


def test_a_catalogued_file_found_in_the_trash_is_put_back(store: ObjectStore,
                                                          catalog: Catalog) -> None:
    episode = publish(catalog, "Kept", data=b"precious audio")
    key = episode.files["audio"].key
    store.copy(key, trash_key(key))  # as an old repair might have moved it
    store.delete(key)
    assert verify(catalog).damaged == [f"{episode.id} audio: missing"]
    report = verify(catalog, repair=True)
    assert report.repaired == [f"{key} (put back from {trash_key(key)})"]
    assert store.get_bytes(key)[0] == b"precious audio"  # type: ignore[index]
    assert verify(catalog).ok


def test_repair_refuses_to_move_more_than_a_tenth_without_force(store: ObjectStore,
                                                                catalog: Catalog) -> None:
    publish(catalog, "Kept")  # its audio, its meta.json and the series' meta.json
    store.put_bytes("episodes/deadbeef0001/talk.mp3", b"orphan", "audio/mpeg")
    before = bucket_listing(store)
    with pytest.raises(ArchiveError, match="--force"):
        verify(catalog, repair=True, grace=NOW)
    assert bucket_listing(store) == before
    assert verify(catalog, repair=True, grace=NOW, force=True).trashed


# -- tombstones: deleted stays deleted, an interrupted delete is finished ------------------------


def test_a_deleted_episode_leaves_only_a_small_tombstone(archive: Archive, store: ObjectStore
                                                         ) -> None:
    episode = publish(archive.catalog, "To be deleted")
    editing.delete_episode(archive, episode.id, "tester")
    assert not list(store.list(f"episodes/{episode.id}/"))
    data, _ = store.get_json(f"tombstones/{episode.id}.json")
    assert set(data) == {"id", "guid", "deleted_at"}
    assert (data["id"], data["guid"]) == (episode.id, episode.guid)
    assert set(removal.tombstoned(store)) == {episode.id}


def test_an_interrupted_delete_is_finished_by_repair_and_never_resurrected(
        archive: Archive, store: ObjectStore) -> None:
    a, b, c = (publish(archive.catalog, f"Lecture {n}", data=bytes([n])) for n in range(3))
    # The delete of C stopped after the catalogue change: its objects (meta.json too) remain.
    removal.write_tombstone(store, c)
    archive.catalog.change(lambda data: data.episodes.pop(c.id))
    store.delete("catalog.json")
    assert set(reindex(Catalog(store)).episodes) == {a.id, b.id}  # not resurrected

    report = verify(Catalog(store), repair=True, grace=NOW)  # not refused: C is not "live"
    assert not list(store.list(f"episodes/{c.id}/"))  # finished: nothing left, not even in trash
    assert not list(store.list("trash/"))
    assert report.trashed == [] and report.damaged == []
    assert sorted(report.repaired) == sorted(
        f"{key} (removed: episode {c.id} was deleted)"
        for key in (c.files["audio"].key, f"episodes/{c.id}/meta.json"))
    assert set(Catalog(store).refresh().data.episodes) == {a.id, b.id}


# -- item 2: uploads in flight ---------------------------------------------------------------


def test_the_default_grace_leaves_an_upload_in_flight_alone(store: ObjectStore,
                                                            catalog: Catalog) -> None:
    publish(catalog, "Kept")
    staged = "episodes/0123456789ab/original.wav"
    store.put_bytes(staged, b"an ingest still running", "audio/wav")
    report = verify(catalog, repair=True, force=True)
    assert store.exists(staged)
    assert report.trashed == [] and report.orphans == []


def test_a_commit_refuses_to_name_a_staged_object_that_is_gone(catalog: Catalog) -> None:
    episode = make_episode("Half gone")
    with pytest.raises(Conflict, match="upload it again"), \
            catalog.stage(episode.id) as stage:
        stored = catalog.store.put_bytes(stage.key("talk.mp3"), b"audio", "audio/mpeg")
        episode.files["audio"].size, episode.files["audio"].sha256 = stored.size, stored.sha256
        catalog.store.delete(stored.key)  # as `verify --repair --grace 0` would
        stage.commit(episode, ROUNDTABLES)
    assert Catalog(catalog.store).refresh().data.episodes == {}


def test_a_commit_refuses_objects_a_repair_is_moving(catalog: Catalog) -> None:
    episode = make_episode("Raced")
    with pytest.raises(Conflict, match="upload it again"), \
            catalog.stage(episode.id) as stage:
        stored = catalog.store.put_bytes(stage.key("talk.mp3"), b"audio", "audio/mpeg")
        episode.files["audio"].size, episode.files["audio"].sha256 = stored.size, stored.sha256
        announce_trashing(catalog, stored.key)
        stage.commit(episode, Series.new("Roundtables"))
    assert Catalog(catalog.store).refresh().data.episodes == {}


def test_an_edit_refuses_a_new_object_a_repair_is_moving(archive: Archive, store: ObjectStore,
                                                         tmp_path: Path) -> None:
    source = media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=1.0)
    episode = ingest(archive, source, Metadata(title="Trusting Enemies", series="Lectures"))
    vtt = tmp_path / "t.vtt"
    vtt.write_text("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nHello trust.\n")
    stored_vtt = transcripts.to_vtt(transcripts.parse_transcript(vtt.read_bytes())).encode()
    new_key = editing.versioned_key(episode.id, hashlib.sha256(stored_vtt).hexdigest(),
                                    "transcript.vtt")
    announce_trashing(archive.catalog, new_key)
    with pytest.raises(Conflict, match="upload it again"):
        editing.replace_sidecars(archive, episode.id, "tester", transcript=vtt)
    after = Catalog(store).refresh().data.episodes[episode.id]
    assert "transcript" not in after.files and not store.exists(new_key)


def test_a_key_stays_claimed_until_every_claimant_withdraws() -> None:
    data = CatalogData()
    episode = make_episode("Named")
    data.episodes[episode.id] = episode
    named = episode.files["audio"].key
    assert data.mark_removing(["episodes/x/a.mp3", named], "repair") == ["episodes/x/a.mp3"]
    assert data.mark_removing(["episodes/x/a.mp3"], "edit") == ["episodes/x/a.mp3"]
    data = CatalogData.from_dict(data.to_dict())
    data.unmark_removing(["episodes/x/a.mp3"], "edit")
    assert list(data.removing) == ["episodes/x/a.mp3"]  # the repair still moves it
    data.unmark_removing(["episodes/x/a.mp3"], "repair")
    assert data.removing == {} and "removing" not in data.to_dict()


def test_an_edit_claims_what_it_retires_and_withdraws_after(archive: Archive,
                                                            store: ObjectStore,
                                                            tmp_path: Path) -> None:
    source = media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=1.0)
    episode = ingest(archive, source, Metadata(title="Trusting Enemies", series="Lectures"))
    edited = editing.update_episode(archive, episode.id, {"title": "Trusting Rivals"}, "tester")
    assert edited.files["audio"].key != episode.files["audio"].key
    assert not store.exists(episode.files["audio"].key)
    assert Catalog(store).refresh().data.removing == {}


def test_catalogue_segments_no_manifest_names_are_orphans_once_old(
        store: ObjectStore, catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that stopped between its segments and the manifest leaves segments nobody
    names: repair moves them to the trash, never a named or retired one, and never one a change
    in progress may be about to name (younger than SEGMENT_GRACE, whatever --grace says)."""
    kept = publish(catalog, "Kept")

    def retitle(data: CatalogData) -> None:
        data.episodes[kept.id].title = "Kept, retitled"

    catalog.change(retitle)  # rewrites the episode's shard: the old segment is retired
    view = catalog.refresh()
    assert view.layout is not None and view.layout.retired
    stray = "catalog/shards/00/0123456789abcdef-deadbeef.json.gz"
    store.put_bytes(stray, b"a segment of a change that never landed", "application/gzip")
    assert stray not in verify(catalog, grace=NOW).orphans  # too young to be anyone's garbage
    monkeypatch.setattr(fixity, "SEGMENT_GRACE", timedelta(0))
    assert verify(catalog, grace=NOW).orphans == [stray]
    report = verify(catalog, repair=True, grace=NOW, force=True)
    assert [key for key, _ in report.trashed] == [stray]
    assert not store.exists(stray)
    after = catalog.refresh()
    assert after.layout is not None
    for key in (*after.layout.named(), *after.layout.retired):
        assert store.exists(key), key
    assert Catalog(store).refresh().data.episodes.keys() == view.data.episodes.keys()
