"""Search: ranking, safe snippets, transcript moments, hostile queries, incremental updates."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from archive import search
from archive.models import Episode, MediaFile, Person
from archive.search import (
    HOST_INDEX,
    Cue,
    Query,
    SearchIndex,
    mark_snippet,
    save_snapshot,
    seconds_fragment,
)
from archive.storage import ObjectStore
from tests.factories import make_episode, media_file

SERIES = {"roundtables": "Roundtables"}
CUES = {
    "sha-a": [Cue(0.0, 4.0, "Welcome to the workshop."),
              Cue(4.0, 9.5, "We turn to the security dilemma and reassurance."),
              Cue(9.5, 12.0, "Thank you all.")],
    "sha-b": [Cue(0.0, 3.0, "Opening remarks on diplomacy."),
              Cue(3.25, 8.0, "The word zeitgeist appears only here.")],
}


class Loader:
    """Counts fetches, as the real loader would go to S3."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, media: MediaFile) -> list[Cue]:
        self.calls[media.sha256] += 1
        return CUES[media.sha256]


def with_transcript(episode: Episode, sha: str) -> Episode:
    episode.files["transcript"] = media_file(episode.id, "transcript.vtt")
    episode.files["transcript"].sha256 = sha
    return episode


@pytest.fixture
def episodes() -> list[Episode]:
    return [
        make_episode("Trust between rivals", description="A talk about deception.",
                     date=date(2024, 1, 1)),
        with_transcript(make_episode("Nuclear reassurance", description="Mentions trust once.",
                                     date=date(2024, 2, 1)), "sha-a"),
        with_transcript(make_episode(
            "Diplomacy <b>bold</b>", description="<script>alert(1)</script> about <i>trust</i>",
            speakers=[Person(name="Ada <img src=x onerror=alert(1)>", role="speaker")],
            tags=["Emotions"]), "sha-b"),
    ]


@pytest.fixture(params=["memory", "disk"])
def index(episodes: list[Episode], request: pytest.FixtureRequest,
          tmp_path: Path) -> Iterator[SearchIndex]:
    """Every index test runs on both kinds: in memory, and a file of its own (as the app)."""
    path = tmp_path / "search" / "index.sqlite" if request.param == "disk" else None
    built = SearchIndex(path=path)
    built.sync(episodes, SERIES, Loader())
    yield built
    built.close()
    assert path is None or not path.exists()


def test_a_disk_index_restores_a_snapshot_into_its_file(index: SearchIndex,
                                                        episodes: list[Episode],
                                                        tmp_path: Path) -> None:
    path = tmp_path / "other" / "index.sqlite"
    on_disk = SearchIndex(path=path)
    assert on_disk.restore(index.snapshot())
    assert path.stat().st_size > 0
    assert on_disk.sync(episodes, SERIES, Loader()) == 0
    assert on_disk.search("zeitgeist").total == 1
    on_disk.close()
    assert not path.exists()


def test_a_title_hit_ranks_above_a_passing_mention(index: SearchIndex,
                                                   episodes: list[Episode]) -> None:
    results = index.search("trust")
    assert results.total == 3
    assert results.hits[0].episode_id == episodes[0].id  # in the title


def test_snippets_escape_metadata_and_mark_the_hit(index: SearchIndex,
                                                   episodes: list[Episode]) -> None:
    (hit,) = index.search("diplomacy bold").hits
    assert hit.episode_id == episodes[2].id
    assert "<b>" not in hit.snippet
    assert "<mark>Diplomacy</mark> &lt;b&gt;<mark>bold</mark>&lt;/b&gt;" in hit.snippet
    (speaker_hit,) = index.search("Ada").hits
    assert "<img" not in str(speaker_hit.snippet)
    assert "&lt;img" in str(speaker_hit.snippet)


def test_a_transcript_hit_points_at_its_cue(index: SearchIndex, episodes: list[Episode]) -> None:
    (hit,) = index.search("zeitgeist").hits
    assert hit.episode_id == episodes[2].id
    assert not hit.in_metadata
    assert hit.moment == 3.25
    assert "<mark>zeitgeist</mark>" in hit.moment_snippet
    assert seconds_fragment(hit.moment) == "3.25"
    (phrase,) = index.search('"security dilemma"').hits
    assert phrase.moment == 4.0


def test_stemming_and_either_word(index: SearchIndex) -> None:
    assert index.search("reassuring").total == 1
    assert index.search("zeitgeist OR deception").total == 2


@pytest.mark.parametrize("query", [
    '"', '"unterminated', "AND", "trust AND", "OR trust OR", "NOT", "NEAR(trust", "title:trust",
    "trust*", "*", "(", ")(", "{title}: x", "^trust", "-trust", "a:b:c", "'; DROP TABLE docs;",
    "\x00\x02trust\x03", "😀", "x" * 5000,
])
def test_any_user_query_is_a_search_not_an_error(index: SearchIndex, query: str) -> None:
    results = index.search(query)
    assert results.total >= 0


def test_queries_are_quoted_for_fts5() -> None:
    assert Query.parse('trust "security dilemma" OR NEAR(x').exact == \
        '"trust" "security dilemma" OR "NEAR x"'
    assert Query.parse("AND OR").exact == ""
    assert seconds_fragment(3723.0) == "3723"


def test_sync_changes_only_what_changed_and_fetches_each_transcript_once(
        episodes: list[Episode]) -> None:
    loader = Loader()
    index = SearchIndex()
    index.sync(episodes, SERIES, loader)
    assert loader.calls == Counter({"sha-a": 1, "sha-b": 1})

    renamed = make_episode("Renamed talk")
    renamed.id, renamed.files = episodes[1].id, episodes[1].files  # same transcript
    renamed.updated_at = episodes[1].updated_at + timedelta(seconds=5)
    index.sync([episodes[0], renamed, episodes[2]], SERIES, loader)
    assert loader.calls == Counter({"sha-a": 1, "sha-b": 1})
    assert index.search("nuclear").total == 0
    assert index.search("renamed").total == 1
    assert index.search("dilemma").hits[0].moment == 4.0  # cues kept from the index

    index.sync([episodes[0]], SERIES, loader)
    assert len(index) == 1
    assert index.search("zeitgeist").total == 0


def test_the_same_snapshot_is_not_diffed_twice(episodes: list[Episode]) -> None:
    loader = Loader()
    index = SearchIndex()
    token = object()
    index.sync(episodes, SERIES, loader, token=token)
    index.sync([], SERIES, loader, token=token)  # ignored: same snapshot
    assert len(index) == 3


def test_mark_snippet_escapes_quotes_and_ampersands() -> None:
    assert str(mark_snippet('a "b" & \x02c\x03')) == "a &quot;b&quot; &amp; <mark>c</mark>"


def test_a_restored_snapshot_needs_no_transcript_fetches(index: SearchIndex,
                                                         episodes: list[Episode]) -> None:
    image = index.snapshot()
    loader = Loader()
    restored = SearchIndex()
    assert restored.restore(image)
    assert restored.sync(episodes, SERIES, loader) == 0  # already up to date
    assert loader.calls == Counter()
    assert restored.search("zeitgeist").total == 1
    assert restored.search("dilemma").hits[0].moment == 4.0


def test_an_unusable_snapshot_is_ignored(index: SearchIndex) -> None:
    assert not index.restore(b"not a database")
    foreign = sqlite3.connect(":memory:")
    foreign.execute("CREATE TABLE docs (x)")
    assert not index.restore(foreign.serialize())  # another schema version
    assert index.search("zeitgeist").total == 1


def test_snapshots_round_trip_through_the_bucket(store: ObjectStore, index: SearchIndex,
                                                 episodes: list[Episode], tmp_path: Path) -> None:
    assert len(SearchIndex.for_host(tmp_path / "before", store)) == 0  # none yet
    save_snapshot(index, store)
    fresh = SearchIndex.for_host(tmp_path / "after", store)
    assert len(fresh) == len(episodes)
    assert not list((tmp_path / "after").glob("snapshot-*"))  # no scratch left behind


# -- the index the processes of a host share ------------------------------------------------------


def file_bytes(path: Path) -> bytes:
    """The index file and its write-ahead log, as they are on disk."""
    return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())


def test_processes_on_a_host_share_one_index_file(store: ObjectStore, episodes: list[Episode],
                                                  tmp_path: Path) -> None:
    """The first process streams the bucket's snapshot into the host's file; a second opens
    the same file (nothing downloaded, nothing fetched), and what one syncs the other finds."""
    built = SearchIndex()
    built.sync(episodes[:2], SERIES, Loader())
    save_snapshot(built, store)
    folder = tmp_path / "search"
    first = SearchIndex.for_host(folder, store)
    assert first.folder == folder and len(first) == 2  # from the snapshot
    store.delete("search/index.sqlite")
    second = SearchIndex.for_host(folder, store)  # the file as it is, no snapshot needed
    assert len(second) == 2
    loader = Loader()
    assert first.sync(episodes, SERIES, loader) == 1
    assert second.sync(episodes, SERIES, loader) == 0  # already there
    assert loader.calls == Counter({"sha-b": 1})
    assert second.search("zeitgeist").total == 1
    for index in (first, second):
        index.close()
    assert (folder / HOST_INDEX).exists()  # a cache the next process opens
    # Leftovers of processes gone (older versions' own indexes, snapshot scratch) are removed.
    (folder / "index-999999999-ab.sqlite").write_bytes(b"x")
    (folder / "snapshot-999999999-cd").mkdir()
    mine = folder / f"snapshot-{os.getpid()}-ef"
    mine.mkdir()
    SearchIndex.for_host(folder).close()
    assert sorted(p.name for p in folder.iterdir() if "99999" in p.name or p == mine) == \
        [mine.name]
    with pytest.raises(ValueError):
        SearchIndex.for_host(folder).restore(built.snapshot())


def test_a_broken_host_file_is_replaced_by_the_snapshot(store: ObjectStore,
                                                        episodes: list[Episode],
                                                        tmp_path: Path) -> None:
    built = SearchIndex()
    built.sync(episodes, SERIES, Loader())
    save_snapshot(built, store)
    folder = tmp_path / "search"
    folder.mkdir()
    (folder / HOST_INDEX).write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    index = SearchIndex.for_host(folder, store)
    assert len(index) == 3 and index.search("zeitgeist").total == 1


def test_a_process_with_an_older_snapshot_leaves_the_shared_index_alone(
        episodes: list[Episode], tmp_path: Path) -> None:
    """Processes revalidate the catalogue at different moments: one still holding the
    snapshot before an edit or a delete must not put the old words back."""
    newer, older = datetime(2026, 12, 3, 12, 0, 5, tzinfo=UTC), datetime(2026, 12, 3, 12,
                                                                         tzinfo=UTC)
    index = SearchIndex.for_host(tmp_path / "search")
    assert index.sync(episodes[:2], SERIES, Loader(), as_of=newer, catalogue="c1") == 2
    assert index.sync(episodes, SERIES, Loader(), as_of=older, catalogue="c1") == 0
    assert index.search("zeitgeist").total == 0
    # Another catalogue (the data folder pointed at another bucket) is not "older".
    assert index.sync(episodes, SERIES, Loader(), as_of=older, catalogue="c2") == 1
    assert index.search("zeitgeist").total == 1


def test_a_removed_episode_leaves_no_words_in_the_host_file(episodes: list[Episode],
                                                           tmp_path: Path) -> None:
    index = SearchIndex.for_host(tmp_path / "search")
    index.sync(episodes, SERIES, Loader())
    path = tmp_path / "search" / HOST_INDEX
    assert b"zeitgeist" in file_bytes(path)
    index.sync(episodes[:2], SERIES, Loader())
    assert index.search("zeitgeist").total == 0
    assert b"zeitgeist" not in file_bytes(path)
    assert b"Diplomacy" not in file_bytes(path)


def test_too_many_matches_to_rank_list_the_newest_first(episodes: list[Episode],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Beyond RANKED_MATCHES, bm25 would score every match on every query: the newest episode
    in the index comes first instead (the index adds episodes oldest first), and says so."""
    index = SearchIndex()
    newest_first = sorted(episodes, key=lambda e: e.published_at, reverse=True)
    for n, episode in enumerate(newest_first):
        episode.published_at -= timedelta(days=n)  # a distinct order the index must keep
    index.sync(newest_first, SERIES, Loader())  # as the catalogue lists them: newest first
    ranked = index.search("trust")
    assert ranked.ranked and ranked.hits[0].episode_id == episodes[0].id  # the title hit
    monkeypatch.setattr(search, "RANKED_MATCHES", 2)
    broad = index.search("trust")
    assert not broad.ranked and broad.total == 3
    assert [h.episode_id for h in broad.hits] == [e.id for e in newest_first]
    assert index.search("zeitgeist").ranked  # one match: ranked as ever


def test_a_restart_on_the_snapshot_the_index_reflects_skips_the_diff(
        episodes: list[Episode], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = datetime(2026, 12, 3, 12, tzinfo=UTC)
    first = SearchIndex.for_host(tmp_path / "search")
    assert first.sync(episodes, SERIES, Loader(), as_of=at, catalogue="c1") == 3
    first.close()
    restarted = SearchIndex.for_host(tmp_path / "search")

    def no_diff(*args: object) -> str:
        raise AssertionError("the index is already at this snapshot")

    monkeypatch.setattr(search, "episode_version", no_diff)
    assert restarted.sync(episodes, SERIES, Loader(), as_of=at, catalogue="c1") == 0
    monkeypatch.undo()
    # A newer snapshot is diffed as ever.
    later = at + timedelta(seconds=1)
    assert restarted.sync(episodes[:2], SERIES, Loader(), as_of=later, catalogue="c1") == 1


def version_1(image: bytes) -> bytes:
    """The image as the previous version wrote it (no `state` table)."""
    db = sqlite3.connect(":memory:")
    db.deserialize(image)
    db.executescript("DROP TABLE state; PRAGMA user_version = 1;")
    return db.serialize()


def test_a_snapshot_of_the_previous_version_is_upgraded_not_rebuilt(
        store: ObjectStore, index: SearchIndex, episodes: list[Episode], tmp_path: Path) -> None:
    old = version_1(index.snapshot())
    restored = SearchIndex()
    assert restored.restore(old)
    assert restored.sync(episodes, SERIES, Loader()) == 0 and len(restored) == 3
    store.put_bytes("search/index.sqlite", old, "application/vnd.sqlite3")
    loader = Loader()
    host = SearchIndex.for_host(tmp_path / "search", store)
    assert host.sync(episodes, SERIES, loader, as_of=datetime(2026, 12, 3, tzinfo=UTC),
                     catalogue="c1") == 0
    assert loader.calls == Counter() and host.search("zeitgeist").total == 1


def test_a_sync_of_an_older_snapshot_stops_once_a_newer_one_is_claimed(
        episodes: list[Episode], tmp_path: Path) -> None:
    """Two processes: the one with the older snapshot is still fetching transcripts when the
    one with the newer snapshot (one episode left, the others unpublished) syncs. The older
    must not write its batches over the newer content, nor mark the index as synced."""
    folder = tmp_path / "search"
    older, newer = SearchIndex.for_host(folder), SearchIndex.for_host(folder)
    t1 = datetime(2026, 12, 3, 12, tzinfo=UTC)
    t2 = t1 + timedelta(seconds=5)

    once = threading.Lock()  # transcripts are fetched in parallel: the newer syncs once

    def meanwhile(media: MediaFile) -> list[Cue]:
        with once:
            if not len(newer):
                assert newer.sync(episodes[:1], SERIES, Loader(), as_of=t2,
                                  catalogue="c1") == 1
        return CUES[media.sha256]

    older.sync(episodes, SERIES, meanwhile, as_of=t1, catalogue="c1")
    assert older.episode_ids() == newer.episode_ids() == {episodes[0].id}
    assert newer.search("zeitgeist").total == 0
    assert older.sync(episodes, SERIES, Loader(), as_of=t2, catalogue="c1") == 0  # synced


def test_a_hit_whose_episode_left_the_index_is_skipped(index: SearchIndex,
                                                       episodes: list[Episode]) -> None:
    with index._writing() as db:  # as if a batch of another process removed it mid-search
        db.execute("DELETE FROM docs WHERE episode_id = ?", (episodes[2].id,))
    results = index.search("zeitgeist")
    assert results.hits == [] and results.total == 1
