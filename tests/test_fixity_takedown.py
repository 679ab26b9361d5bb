"""A deleted episode leaves no copy of its content in the bucket, an unpublished one none in a
public object (the search snapshot included), and private fields never reach the public."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from archive import editing
from archive.catalog import Catalog
from archive.ingest import Metadata, ingest
from archive.models import PRIVATE_FIELDS, Episode
from archive.runtime import Archive
from archive.search import SNAPSHOT_KEY, Cue, SearchIndex, Transcripts, save_snapshot
from archive.storage import ObjectStore
from archive.web import views
from tests import media_samples
from tests.factories import make_episode, media_file
from tests.test_auth import bearer, token_for

# Words that occur only in the content of the episode taken down (not in its title, which the
# editors' audit log keeps).
SECRET_WORDS = (b"zebrafish", b"xylophonist", b"quagmire")


def ingest_with(archive: Archive, folder: Path, title: str, words: str, tone: float,
                **fields: object) -> Episode:
    source = media_samples.make_recording(folder / f"{tone}.wav", "wav", seconds=1.0,
                                          frequency=tone)
    vtt = folder / f"{tone}.vtt"
    vtt.write_text(f"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nThe {words} spoke.\n")
    return ingest(archive, source, Metadata(title=title, series="Lectures", transcript=vtt,
                                            description=f"About the {words} case.",
                                            **fields))  # type: ignore[arg-type]


def index_as_a_web_process(store: ObjectStore) -> SearchIndex:
    """The index an app process builds and leaves in the bucket for the next cold start."""
    view = Catalog(store).refresh()
    index = SearchIndex()
    index.sync(view.published, views.series_titles(view), Transcripts(store).load)
    return index


def bucket_holds(store: ObjectStore, word: bytes) -> list[str]:
    return [info.key for info in store.list()
            if word in (store.get_bytes(info.key) or (b"", ""))[0]]


@pytest.fixture
def two_episodes(archive: Archive, tmp_path: Path) -> tuple[Episode, Episode]:
    kept = ingest_with(archive, tmp_path, "Kept lecture", "narwhal", 440.0)
    secret = ingest_with(archive, tmp_path, "Taken down lecture",
                         "zebrafish xylophonist quagmire", 550.0)
    save_snapshot(index_as_a_web_process(archive.store), archive.store)
    assert all(bucket_holds(archive.store, word) for word in SECRET_WORDS)
    return kept, secret


def snapshot_bytes(store: ObjectStore) -> bytes:
    found = store.get_bytes(SNAPSHOT_KEY)
    assert found is not None
    return found[0]


def test_after_a_delete_no_object_holds_the_content(archive: Archive, store: ObjectStore,
                                                    two_episodes: tuple[Episode, Episode]
                                                    ) -> None:
    """Deleted the way the CLI and the API do it, with no web process holding the index."""
    _, secret = two_episodes
    editing.delete_episode(archive, secret.id, "tester")
    for word in SECRET_WORDS:
        assert bucket_holds(store, word) == [], word
    restored = SearchIndex()
    assert restored.restore(snapshot_bytes(store))
    assert restored.search("narwhal").total == 1  # the rest of the snapshot is kept
    assert restored.search("zebrafish").total == 0


def test_after_unpublishing_the_search_snapshot_forgets_the_episode(
        archive: Archive, store: ObjectStore, two_episodes: tuple[Episode, Episode]) -> None:
    _, secret = two_episodes
    editing.set_draft(archive, secret.id, True, "tester")
    image = snapshot_bytes(store)
    for word in (*SECRET_WORDS, secret.id.encode()):
        assert word not in image, word
    assert b"narwhal" in image


def test_deleting_through_the_api_rewrites_the_snapshot(client: TestClient, store: ObjectStore,
                                                        two_episodes: tuple[Episode, Episode]
                                                        ) -> None:
    _, secret = two_episodes
    deleted = client.delete(f"/api/episodes/{secret.id}", headers=bearer(token_for(store)))
    assert deleted.status_code == 204
    for word in SECRET_WORDS:
        assert word not in snapshot_bytes(store), word


def test_a_removed_episode_leaves_nothing_in_a_snapshot_image() -> None:
    """SQLite 3.40 has no FTS5 secure-delete: a removal alone leaves the words in the image."""
    secret = make_episode("Secret", description="A zebrafish case.")
    secret.files["transcript"] = media_file(secret.id, "transcript.vtt")
    kept = make_episode("Kept", description="A narwhal case.")
    index = SearchIndex()
    index.sync([secret, kept], {}, lambda _: [Cue(0.0, 1.0, "The xylophonist spoke.")])
    index.sync([kept], {}, lambda _: [])
    image = index.snapshot()
    assert b"zebrafish" not in image and b"xylophonist" not in image
    assert b"narwhal" in image


def test_a_stale_web_process_cannot_put_a_deleted_episode_back(
        archive: Archive, store: ObjectStore, two_episodes: tuple[Episode, Episode]) -> None:
    """An app process synced before the delete saves its snapshot after it."""
    _, secret = two_episodes
    stale = index_as_a_web_process(store)
    editing.delete_episode(archive, secret.id, "tester")

    def published() -> set[str]:
        return {e.id for e in Catalog(store).refresh().published}

    save_snapshot(stale, store, published)
    image = snapshot_bytes(store)
    assert all(word not in image for word in SECRET_WORDS)
    assert b"narwhal" in image


# -- private fields --------------------------------------------------------------------------


def test_private_fields_are_left_out_of_the_public_form() -> None:
    episode = make_episode("Talk", source_filename="interview-consent-withheld.wav")
    assert "source_filename" in PRIVATE_FIELDS
    public = episode.public_dict()
    assert not PRIVATE_FIELDS & set(public)
    assert {**public, **{name: episode.to_dict()[name] for name in PRIVATE_FIELDS}} == \
        episode.to_dict()


def test_private_fields_never_reach_the_public(make_client: Callable[[], TestClient],
                                               archive: Archive, store: ObjectStore,
                                               tmp_path: Path) -> None:
    marker = "privatemarker-interview.wav"
    episode = ingest_with(archive, tmp_path, "Public lecture", "narwhal", 440.0,
                          source_filename=marker)
    client = make_client()  # started after the ingest: its first catalogue has the episode
    public: list[Callable[[], str]] = [
        lambda: client.get("/api/episodes").text,
        lambda: client.get(f"/api/episodes/{episode.id}").text,
        lambda: client.get("/feed.xml").text,
        lambda: client.get("/series/lectures/feed.xml").text,
        lambda: client.get(f"/episodes/{episode.slug}").text,
        lambda: client.get("/series/lectures").text,
        lambda: client.get("/search?q=narwhal").text,
        lambda: client.get("/").text,
    ]
    for page in public:
        text = page()
        assert "Public lecture" in text or "narwhal" in text
        assert "privatemarker" not in text
    save_snapshot(client.app.state.page_services.index, store)  # type: ignore[attr-defined]
    assert b"privatemarker" not in snapshot_bytes(store)
    editor = client.get(f"/api/episodes/{episode.id}", headers=bearer(token_for(store)))
    assert editor.json()["source_filename"] == marker  # editors still see it
