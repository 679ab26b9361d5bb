"""The catalogue's format 2 on the real bucket: a manifest and immutable segments.

An edit writes one shard and the manifest; another process fetches only what changed; a
format-1 catalogue (everything in catalog.json) is read and upgraded in place with nothing lost;
segments a newer manifest replaced are kept for readers for a grace period, then deleted; a
change that fails leaves the shared snapshot untouched.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import tracemalloc
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest

from archive import catalog_format as fmt
from archive import compact, models
from archive.catalog import CATALOG_KEY, Catalog, CatalogData
from archive.errors import InvalidInput
from archive.models import Chapter, Episode, Location, Loudness, Provenance
from archive.storage import ObjectStore
from tests.factories import make_episode, media_file


def fill(catalog: Catalog, count: int) -> list[str]:
    episodes = [make_episode(f"Lecture {n}") for n in range(count)]

    def apply(data: CatalogData) -> None:
        for episode in episodes:
            data.episodes[episode.id] = episode

    catalog.change(apply, check_new_keys=False)
    return [e.id for e in episodes]


def retitle(catalog: Catalog, episode_id: str, title: str) -> None:
    def apply(data: CatalogData) -> None:
        data.episodes[episode_id].title = title

    catalog.change(apply, check_new_keys=False)


def segments(store: ObjectStore) -> set[str]:
    return {info.key for info in store.list(fmt.SEGMENT_PREFIX)}


def test_an_edit_writes_one_shard_and_the_manifest(catalog: Catalog, store: ObjectStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ids = fill(catalog, 300)
    manifest = json.loads(store.get_bytes(CATALOG_KEY)[0])  # type: ignore[index]
    assert manifest["version"] == fmt.VERSION and manifest["episodes"] == 300
    assert "episodes" not in manifest or isinstance(manifest["episodes"], int)
    assert len(manifest["shards"]) > 100  # spread over the shards
    before = segments(store)

    written: list[tuple[str, int]] = []
    put = store.put_bytes

    def counting(key: str, data: bytes, *args: Any, **kwargs: Any) -> Any:
        written.append((key, len(data)))
        return put(key, data, *args, **kwargs)

    monkeypatch.setattr(store, "put_bytes", counting)
    retitle(catalog, ids[7], "A new title")
    assert [key for key, _ in written][-1] == CATALOG_KEY
    new_segments = [key for key, _ in written[:-1]]
    assert len(new_segments) == 1
    assert new_segments[0].startswith(f"{fmt.SHARD_PREFIX}{fmt.shard_of(ids[7])}/")
    assert segments(store) - before == set(new_segments)
    assert sum(size for _, size in written) < 64 * 1024


def test_another_process_fetches_only_what_changed(catalog: Catalog, store: ObjectStore,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    ids = fill(catalog, 200)
    other = Catalog(store)
    assert len(other.refresh().data.episodes) == 200
    unchanged = other.view().data.episodes[ids[1]]
    retitle(catalog, ids[0], "Seen elsewhere")

    fetched: list[str] = []
    get = store.get_bytes

    def counting(key: str, **kwargs: Any) -> Any:
        fetched.append(key)
        return get(key, **kwargs)

    monkeypatch.setattr(store, "get_bytes", counting)
    view = other.refresh()
    assert view.data.episodes[ids[0]].title == "Seen elsewhere"
    assert fetched[0] == CATALOG_KEY and len(fetched) == 2  # the manifest and one shard
    if fmt.shard_of(ids[1]) != fmt.shard_of(ids[0]):
        assert view.data.episodes[ids[1]] is unchanged  # untouched shards are reused as is


def test_a_format_1_catalogue_is_read_and_upgraded_with_nothing_lost(
        catalog: Catalog, store: ObjectStore) -> None:
    episodes = [make_episode(f"Old {n}") for n in range(40)]
    old = CatalogData(episodes={e.id: e for e in episodes})
    store.put_json(CATALOG_KEY, old.to_dict())  # what the code before format 2 wrote
    view = catalog.refresh()
    assert view.layout is None and len(view.data.episodes) == 40

    assert catalog.upgrade() is True
    # The upgrading process holds the episodes as a reader of the segments does: packed.
    assert all(e.packed is not None for e in catalog.view().data.episodes.values())
    assert catalog.upgrade() is False  # once
    manifest = json.loads(store.get_bytes(CATALOG_KEY)[0])  # type: ignore[index]
    assert manifest["version"] == fmt.VERSION
    fresh = Catalog(store).refresh()
    assert {e.id: e.to_dict() for e in fresh.data.episodes.values()} == \
        {e.id: e.to_dict() for e in episodes}
    assert fresh.data.guid == old.guid


def test_replaced_segments_are_kept_for_readers_then_deleted(
        catalog: Catalog, store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = fill(catalog, 20)
    reader = Catalog(store)
    reader.refresh()
    first = segments(store)
    retitle(catalog, ids[0], "Second")
    assert first <= segments(store)  # still there for a reader holding the old manifest
    monkeypatch.setattr(fmt, "RETIRED_GRACE_S", -1)
    retitle(catalog, ids[0], "Third")
    named = catalog.refresh().layout
    assert named is not None
    assert segments(store) == named.named() | set(named.retired)
    assert reader.refresh().data.episodes[ids[0]].title == "Third"


def test_a_reader_that_finds_a_segment_gone_reads_the_manifest_again(
        catalog: Catalog, store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = fill(catalog, 20)
    reader = Catalog(store)
    reader.refresh()
    retitle(catalog, ids[3], "Newer")
    stale = {"done": False}
    get = store.get_bytes

    def manifest_then_newer_change(key: str, **kwargs: Any) -> Any:
        result = get(key, **kwargs)
        if key == CATALOG_KEY and not stale["done"]:
            stale["done"] = True
            monkeypatch.setattr(fmt, "RETIRED_GRACE_S", -1)
            retitle(catalog, ids[3], "Newest")  # deletes what the manifest just read names
        return result

    monkeypatch.setattr(store, "get_bytes", manifest_then_newer_change)
    assert reader.refresh().data.episodes[ids[3]].title == "Newest"


def test_a_change_that_fails_leaves_the_shared_snapshot_alone(catalog: Catalog) -> None:
    ids = fill(catalog, 5)
    before = catalog.view()

    def half_then_fail(data: CatalogData) -> None:
        data.episodes[ids[0]].title = "Half done"
        raise RuntimeError("abandoned")

    with pytest.raises(RuntimeError):
        catalog.change(half_then_fail)
    assert before.data.episodes[ids[0]].title == "Lecture 0"
    assert catalog.refresh().data.episodes[ids[0]].title == "Lecture 0"


def test_lists_carried_over_from_the_last_snapshot_equal_fresh_ones(
        catalog: Catalog, store: ObjectStore) -> None:
    ids = fill(catalog, 60)
    reader = Catalog(store)
    assert len(reader.refresh().published) == 60  # computed, so the next snapshot updates it

    def shuffle(data: CatalogData) -> None:
        data.episodes[ids[0]].draft = True
        del data.episodes[ids[1]]
        data.episodes[ids[2]].date = date(1990, 1, 1)
        newest = make_episode("Newest of all")
        data.episodes[newest.id] = newest

    catalog.change(shuffle, check_new_keys=False)
    for snapshot in (catalog.view(), reader.refresh()):
        fresh = Catalog(store).refresh()
        assert [e.id for e in snapshot.published] == [e.id for e in fresh.published]
        assert ids[0] not in {e.id for e in snapshot.published}


def every_field_episode() -> Any:
    """An episode with every optional part set, so a decoder that drops one is caught."""
    episode = make_episode("Trust & \u201cdistrust\u201d \u2014 <b>not markup</b>",
                           date=date(2024, 5, 2), description="Line one.\nLine two \u00e9\u00e8",
                           tags=["trust", "nuclear"],
                           licence="CC-BY-4.0", event="Inaugural lecture", season=2, number=7,
                           episode_type="bonus", explicit=True)
    episode.files["artwork"] = media_file(episode.id, "cover.jpg", content_type="image/jpeg",
                                          width=1400, height=1400, renditions=["320.webp"])
    episode.files["audio"].bitrate = 128_000
    episode.chapters = [Chapter(start=0.0, title="Opening"),
                        Chapter(start=61.5, title="Q&A", end=90.0, url="https://example.org/q")]
    episode.location = Location(name="Aberystwyth", geo="geo:52.41,-4.08", country="GB")
    episode.loudness = Loudness(integrated_lufs=-16.2, true_peak_dbtp=-1.1, normalised=True)
    episode.transcript_provenance = Provenance(kind="automatic", model="base", by="")
    episode.transcript_language = "en"
    episode.pending = ["waveform"]
    episode.enrichment_errors = {"loudness": "decoder said no"}
    episode.consent = {"nicholas-j-wheeler": "given"}
    episode.original_sha256 = "ab" * 32
    episode.source_filename = "talk (final).wav"
    episode.speakers[0].orcid = "0000-0002-1825-0097"
    episode.speakers[0].image = "https://example.org/p.jpg"
    return episode


def test_a_shard_reads_back_every_field_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    episodes = [every_field_episode(), make_episode("Plain")]
    _, body = fmt.shard_body("00", episodes)
    with monkeypatch.context() as patched:  # the fast path: no validating reader involved
        patched.setattr(Episode, "from_dict", None)
        read = fmt.read_shard(body)
    assert sorted((e.to_dict() for e in read), key=lambda d: d["id"]) == sorted(
        (e.to_dict() for e in episodes), key=lambda d: d["id"])
    assert all(e.published_at.tzinfo is not None for e in read)
    # Strings thousands of episodes repeat are one object in the process.
    twin = fmt.read_shard(fmt.shard_body("00", [make_episode("Other")])[1])[0]
    assert twin.speakers[0].affiliation is read[0].speakers[0].affiliation


def varied_episodes(count: int) -> list[Episode]:
    """Episodes with and without covers, transcripts and audio, as an archive holds them."""
    episodes = [make_episode(f"Lecture {n}", description=f"On trust, part {n}.")
                for n in range(count)]
    for n, episode in enumerate(episodes):
        if n % 3 == 0:
            episode.files["cover"] = media_file(episode.id, "cover.jpg", b"jpeg %d" % n,
                                                "image/jpeg", renditions=["320.webp"])
        if n % 4 == 0:
            episode.files["transcript"] = media_file(episode.id, "transcript.vtt",
                                                     b"WEBVTT %d" % n, "text/vtt")
        if n % 5 == 0:
            del episode.files["audio"]
    return episodes


def test_a_snapshot_keeps_what_lists_do_not_read_packed_and_unpacks_it_exactly() -> None:
    """A snapshot's episodes keep their page-only fields compressed (models.PACKED_FIELDS);
    read back, every field equals what was written, with or without the dictionary learnt
    from the archive's records, and what lists ask (audio, cover, transcript) is answered
    from the header alone."""
    episodes = [every_field_episode(), *varied_episodes(compact.SAMPLES_TO_LEARN)]
    read = {e.id: e for e in fmt.read_shard(fmt.shard_body("00", episodes)[1])}
    assert not compact.learning()  # a shard this large teaches the process its dictionary
    for episode in [*episodes[:2], make_episode("Alone")]:  # the last packed by itself
        packed = read.get(episode.id) or models.pack(episode)
        assert packed.packed is not None
        for f in dataclasses.fields(Episode):
            if f.init:
                assert getattr(packed, f.name) == getattr(episode, f.name), f.name
        assert packed == episode and packed.to_dict() == episode.to_dict()
        assert pickle.loads(pickle.dumps(packed)) == episode
        copy = dataclasses.replace(packed, title="Copy")
        assert copy.packed is None and copy.files == episode.files
    for episode in episodes:
        packed = read[episode.id]
        assert (packed.audio, packed.cover, packed.transcript_sha256) == (
            episode.audio, episode.cover, episode.transcript_sha256)
    with pytest.raises(AttributeError):
        read[episodes[0].id].no_such_field  # noqa: B018
    # Each speaker, as thousands of episodes repeat them, is one object.
    assert len({id(read[e.id].speakers[0]) for e in episodes[1:]}) == 1


def test_every_way_of_changing_the_episodes_is_written(catalog: Catalog) -> None:
    """A change is written by the shards of the episodes it touched: dict methods that would
    bypass the tracking (update, |=, popitem, clear) are tracked too."""
    ids = fill(catalog, 3)
    extra = [make_episode(f"New {n}") for n in range(2)]

    def add(data: CatalogData) -> None:
        data.episodes.update((e.id, e) for e in extra[:1])
        data.episodes |= {extra[1].id: extra[1]}
        assert data.episodes.popitem()[0] == extra[1].id

    catalog.change(add, check_new_keys=False)
    assert set(Catalog(catalog.store).refresh().data.episodes) == {*ids, extra[0].id}
    catalog.change(lambda data: data.episodes.clear(), check_new_keys=False)
    assert not Catalog(catalog.store).refresh().data.episodes


def test_the_writer_holds_what_it_changed_packed_as_readers_do(catalog: Catalog) -> None:
    first, _ = fill(catalog, 2)
    retitle(catalog, first, "Retitled")
    view = catalog.view()
    assert all(e.packed is not None for e in view.data.episodes.values())
    assert view.episode(first).title == "Retitled"
    assert Catalog(catalog.store).refresh().episode(first) == view.episode(first)


def test_packed_episodes_take_a_fraction_of_the_memory() -> None:
    episodes = varied_episodes(300)
    body = fmt.shard_body("00", episodes)[1]

    def held(make: Callable[[], list[Episode]]) -> int:
        tracemalloc.start()
        try:
            made = make()
            size = tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
        assert len(made) == len(episodes)
        return size

    whole = held(lambda: [Episode.from_dict(e.to_dict()) for e in episodes])
    packed = held(lambda: fmt.read_shard(body))
    assert packed < whole * 0.7  # ~0.5 with a dictionary, ~0.6 without; whole is 1


def test_records_made_before_the_dictionary_stay_readable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compact, "_codecs", compact._codecs[:1])  # a process yet to learn
    monkeypatch.setattr(compact, "_pool", [])
    records = [json.dumps(e.to_dict()).encode() for e in varied_episodes(300)]
    before = compact.compress(records[0])
    for start in range(0, 240, 40):  # shards of a small archive: pooled until there are enough
        assert not compact.learn(records[start:start + 40]) and compact.learning()
    assert compact.learn(records[240:]) and not compact.learning()
    after = compact.compress(records[0])
    assert len(after) < len(before) * 0.7
    assert compact.decompress(before) == compact.decompress(after) == records[0]
    assert not compact.learn(records)  # one dictionary per process


def shard_of_dicts(episodes: list[dict[str, Any]]) -> bytes:
    return fmt.encode({"version": fmt.VERSION, "shard": "00", "episodes": episodes})


def test_an_older_shape_takes_the_validating_path() -> None:
    """A location written as a bare name, a naive time, a missing field: read as the
    validating `from_dict` reads them, never as something the rest of the code cannot use."""
    episode = make_episode("Older shape").to_dict()
    episode["location"] = "Geneva"
    episode["updated_at"] = "2020-01-02T03:04:05"
    del episode["consent"]
    (read,) = fmt.read_shard(shard_of_dicts([episode]))
    assert read.location is not None and read.location.name == "Geneva"
    assert read.updated_at.tzinfo is not None and read.consent == {}


@pytest.mark.parametrize("bad_id", ["../../catalog", "A-B", ""])
def test_a_shard_with_an_id_unfit_for_a_key_is_refused(bad_id: str) -> None:
    episode = make_episode("Hostile").to_dict()
    episode["id"] = bad_id
    with pytest.raises(InvalidInput):
        fmt.read_shard(shard_of_dicts([episode]))
