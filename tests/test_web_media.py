"""Media delivery over the real app and SeaweedFS: HEAD, ranges, validators, CORS, streaming.

Each line of the HTTP section of FEEDS.md is an assertion here. The publishing helpers at the top
are shared with test_web_feeds.py (episodes made from real generated recordings and sidecars).
"""

from __future__ import annotations

import functools
import hashlib
import io
import random
import tempfile
import tracemalloc
import zlib
from collections.abc import Callable, Iterable
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from archive.catalog import Catalog
from archive.config import Settings
from archive.editing import set_draft
from archive.models import Episode, MediaFile, Person, Series
from archive.runtime import Archive
from archive.storage import ObjectStore
from archive.web.media import episode_file_path
from media.artwork import generate_cover
from media.chapters import ChapterMark, chapters_json
from tests.media_samples import make_recording
from tests.test_auth import add_editor, bearer, sign_in, token_for

ROUNDTABLES = Series.new("Roundtables")
WHEELER = Person(name="Nicholas J Wheeler", role="chair", affiliation="University of Birmingham")
VTT = "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nWelcome to the roundtable.\n"
BIG_FILE_SIZE = 20 * 1024 * 1024

# --- publishing helpers (shared with test_web_feeds.py) ---------------------------------------


@functools.cache
def recording(frequency: float) -> bytes:
    """A real two-second MP3; the tone differs per episode so the recordings differ too."""
    with tempfile.TemporaryDirectory() as folder:
        path = make_recording(Path(folder) / "talk.mp3", "mp3", seconds=2.0, frequency=frequency)
        return path.read_bytes()


def put_file(store: ObjectStore, episode_id: str, filename: str, data: bytes,
             content_type: str, **extra: Any) -> MediaFile:
    stored = store.put_bytes(f"episodes/{episode_id}/{filename}", data, content_type)
    return MediaFile(stored.key, filename, content_type, stored.size, stored.sha256, **extra)


def sidecars(store: ObjectStore, episode: Episode) -> dict[str, MediaFile]:
    """A WebVTT transcript, Podcasting 2.0 chapters and a generated cover."""
    chapters = chapters_json([ChapterMark(0.0, "Welcome"), ChapterMark(1.0, "Discussion")],
                             duration=2.0)
    return {
        "transcript": put_file(store, episode.id, "transcript.vtt", VTT.encode(), "text/vtt"),
        "chapters": put_file(store, episode.id, "chapters.json", chapters, "application/json"),
        "cover": put_file(store, episode.id, "cover.jpg", generate_cover(episode.title),
                          "image/jpeg"),
    }


def publish(catalog: Catalog, title: str, *, series: Series = ROUNDTABLES,
            speakers: Iterable[Person] = (WHEELER,), draft: bool = False,
            with_sidecars: bool = True, audio_name: str = "",
            add_files: Callable[[ObjectStore, Episode], dict[str, MediaFile]] | None = None,
            ) -> Episode:
    """Upload a real recording (and sidecars) under the episode's prefix, then commit."""
    episode = Episode.new(title=title, series=series.slug, speakers=list(speakers), draft=draft)
    store = catalog.store
    audio = recording(220.0 + zlib.crc32(title.encode()) % 660)
    with catalog.stage(episode.id) as stage:
        name = audio_name or f"{episode.slug}.mp3"
        files = {"audio": put_file(store, episode.id, name, audio, "audio/mpeg", duration=2.0)}
        if with_sidecars:
            files.update(sidecars(store, episode))
        if add_files is not None:
            files.update(add_files(store, episode))
        episode.files = files
        episode.original_sha256 = files["audio"].sha256
        return stage.commit(episode, series)


def stored_bytes(store: ObjectStore, media: MediaFile) -> bytes:
    return b"".join(store.open(media.key))


# --- fixtures ---------------------------------------------------------------------------------


def big_original(store: ObjectStore, episode: Episode) -> dict[str, MediaFile]:
    """A 20 MB original (random bytes) uploaded as a multipart upload."""
    data = random.Random(5).randbytes(BIG_FILE_SIZE)
    key = f"episodes/{episode.id}/original.flac"
    stored = store.upload_stream(key, io.BytesIO(data), "audio/flac")
    return {"original": MediaFile(key, "original.flac", "audio/flac", stored.size, stored.sha256)}


@pytest.fixture
def episode(catalog: Catalog) -> Episode:
    return publish(catalog, "Roundtable: The Social Construction of Trust")


@pytest.fixture
def app(episode: Episode, make_client: Callable[..., TestClient]) -> TestClient:
    """The app, started after the episode was published (so its first snapshot has it)."""
    return make_client()


def url(episode: Episode, role: str) -> str:
    return episode_file_path(episode, role)


# --- HEAD and full GET ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "content_type"),
    [
        ("audio", "audio/mpeg"),
        ("transcript", "text/vtt; charset=utf-8"),
        ("chapters", "application/json+chapters"),
        ("cover", "image/jpeg"),
    ],
)
def test_head_gives_exact_length_type_and_ranges(
    app: TestClient, episode: Episode, store: ObjectStore, role: str, content_type: str
) -> None:
    media = episode.files[role]
    response = app.head(url(episode, role))
    assert response.status_code == 200
    assert response.content == b""
    assert int(response.headers["content-length"]) == media.size
    assert media.size == len(stored_bytes(store, media))
    assert response.headers["content-type"] == content_type
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == f'"{media.sha256}"'
    assert response.headers["last-modified"] == format_datetime(episode.updated_at, usegmt=True)
    assert response.headers["cache-control"].startswith("public, max-age=")
    assert response.headers["access-control-allow-origin"] == "*"


def test_get_streams_the_stored_bytes(app: TestClient, episode: Episode,
                                      store: ObjectStore) -> None:
    for role, media in episode.files.items():
        response = app.get(url(episode, role))
        assert response.status_code == 200, role
        assert response.content == stored_bytes(store, media)
        assert hashlib.sha256(response.content).hexdigest() == media.sha256
        assert int(response.headers["content-length"]) == media.size


def test_transcripts_and_chapters_allow_any_origin(app: TestClient, episode: Episode) -> None:
    for role in ("transcript", "chapters"):
        response = app.get(url(episode, role), headers={"Origin": "https://player.example"})
        assert response.headers["access-control-allow-origin"] == "*"
    chapters = app.get(url(episode, "chapters")).json()
    assert chapters["version"]
    assert [c["startTime"] for c in chapters["chapters"]] == [0.0, 1.0]


# --- ranges ------------------------------------------------------------------------------------


def test_apples_first_probe_gets_two_bytes(app: TestClient, episode: Episode,
                                           store: ObjectStore) -> None:
    audio = episode.files["audio"]
    response = app.get(url(episode, "audio"), headers={"Range": "bytes=0-1"})
    assert response.status_code == 206
    assert response.content == stored_bytes(store, audio)[:2]
    assert response.headers["content-length"] == "2"
    assert response.headers["content-range"] == f"bytes 0-1/{audio.size}"
    assert response.headers["content-type"] == "audio/mpeg"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=100-", slice(100, None)),
        ("bytes=-100", slice(-100, None)),
        ("bytes=10-19", slice(10, 20)),
        ("bytes=5-999999999", slice(5, None)),
        ("bytes=-999999999", slice(0, None)),
    ],
)
def test_open_suffix_and_clipped_ranges(app: TestClient, episode: Episode, store: ObjectStore,
                                        header: str, expected: slice) -> None:
    audio = episode.files["audio"]
    whole = stored_bytes(store, audio)
    part = whole[expected]
    start = whole.index(part) if expected.start is None or expected.start >= 0 \
        else audio.size - len(part)
    response = app.get(url(episode, "audio"), headers={"Range": header})
    assert response.status_code == 206
    assert response.content == part
    assert response.headers["content-range"] == (
        f"bytes {start}-{start + len(part) - 1}/{audio.size}"
    )
    assert int(response.headers["content-length"]) == len(part)


@pytest.mark.parametrize("header", ["bytes={size}-", "bytes={size}-{bigger}", "bytes=-0"])
def test_unsatisfiable_ranges_are_416(app: TestClient, episode: Episode, header: str) -> None:
    size = episode.files["audio"].size
    response = app.get(url(episode, "audio"),
                       headers={"Range": header.format(size=size, bigger=size + 10)})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{size}"
    assert response.content == b""


@pytest.mark.parametrize("header", ["bytes=0-1,4-5", "bytes=9-3", "bytes=abc", "pages=1-2",
                                    "bytes=-"])
def test_multiple_or_unreadable_ranges_get_the_whole_file(
    app: TestClient, episode: Episode, header: str
) -> None:
    """Documented choice: only single ranges are served; others are ignored (a full 200)."""
    response = app.get(url(episode, "audio"), headers={"Range": header})
    assert response.status_code == 200
    assert len(response.content) == episode.files["audio"].size
    assert "content-range" not in response.headers


def test_if_range_with_a_stale_validator_sends_the_whole_file(app: TestClient,
                                                             episode: Episode) -> None:
    audio = episode.files["audio"]
    current = app.head(url(episode, "audio")).headers
    for validator, status in [
        ('"0000stale"', 200),
        ("Mon, 01 Jan 2001 00:00:00 GMT", 200),
        (f'W/"{audio.sha256}"', 200),  # weak validators never satisfy If-Range
        (current["etag"], 206),
        (current["last-modified"], 206),
    ]:
        response = app.get(url(episode, "audio"),
                           headers={"Range": "bytes=0-1", "If-Range": validator})
        assert response.status_code == status, validator
        assert len(response.content) == (2 if status == 206 else audio.size)


def test_head_ignores_range(app: TestClient, episode: Episode) -> None:
    response = app.head(url(episode, "audio"), headers={"Range": "bytes=0-1"})
    assert response.status_code == 200
    assert int(response.headers["content-length"]) == episode.files["audio"].size


# --- conditional requests ---------------------------------------------------------------------


def test_if_none_match_and_if_modified_since_give_304(app: TestClient, episode: Episode) -> None:
    first = app.get(url(episode, "audio"))
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'"other", W/{etag}'},
                    {"If-None-Match": "*"}, {"If-Modified-Since": modified}):
        for method in ("GET", "HEAD"):
            response = app.request(method, url(episode, "audio"), headers=headers)
            assert response.status_code == 304, (method, headers)
            assert response.content == b""
            assert response.headers["etag"] == etag
    changed = app.get(url(episode, "audio"), headers={"If-None-Match": '"other"',
                                                      "If-Modified-Since": modified})
    assert changed.status_code == 200  # If-None-Match wins over If-Modified-Since
    older = app.get(url(episode, "audio"),
                    headers={"If-Modified-Since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert older.status_code == 200


# --- what may be served -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/media/{id}/..%2f..%2fcatalog.json",
        "/media/{id}/..%2fmeta.json",
        "/media/{id}/meta.json",
        "/media/{id}/original.wav",
        "/media/{id}/%2e%2e",
        "/media/{id}/talk.mp3",
        "/media/ffffffffffff/cover.jpg",
        "/media/series/roundtables/cover.jpg",
        "/media/series/no-such-series/cover.jpg",
        "/media/site/cover-000000000000.jpg",
        "/media/{id}",
    ],
)
def test_only_catalogued_files_are_served(app: TestClient, episode: Episode, path: str) -> None:
    for method in ("GET", "HEAD"):
        response = app.request(method, path.format(id=episode.id),
                               headers={"accept": "text/html"})
        assert response.status_code == 404, (method, path)
    page = app.get(path.format(id=episode.id), headers={"accept": "text/html"})
    assert "text/html" in page.headers["content-type"]


def test_a_file_missing_from_storage_is_404_not_500(app: TestClient, episode: Episode,
                                                   store: ObjectStore) -> None:
    store.delete(episode.files["transcript"].key)
    assert app.get(url(episode, "transcript")).status_code == 404
    # HEAD answers from the catalogue alone, so it does not notice (and does not touch S3).
    assert app.head(url(episode, "transcript")).status_code == 200


def test_draft_files_go_only_to_signed_in_editors(
    catalog: Catalog, store: ObjectStore, make_client: Callable[..., TestClient]
) -> None:
    draft = publish(catalog, "Work in progress", draft=True)
    app = make_client()
    for role in ("audio", "transcript", "chapters", "cover"):
        for method in ("GET", "HEAD"):
            assert app.request(method, url(draft, role)).status_code == 404, (role, method)
    api_token = token_for(store, "api-editor")
    assert app.get(url(draft, "audio"), headers=bearer(api_token)).status_code == 200
    add_editor(store)
    sign_in(app)  # the upload flow plays a draft before it is published
    response = app.get(url(draft, "audio"), headers={"Range": "bytes=0-1"})
    assert response.status_code == 206
    assert response.headers["cache-control"] == "private, no-store"
    assert app.head(url(draft, "transcript")).headers["cache-control"] == "private, no-store"
    assert "set-cookie" not in response.headers


def test_an_unpublished_episode_is_withdrawn_from_media(
    episode: Episode, archive: Archive, make_client: Callable[..., TestClient]
) -> None:
    app = make_client()
    assert app.get(url(episode, "audio")).status_code == 200
    set_draft(archive, episode.id, True, "editor")
    app.app.state.archive.catalog.refresh()  # type: ignore[attr-defined]
    for role in ("audio", "transcript", "cover"):
        etag = f'"{episode.files[role].sha256}"'
        gone = app.get(url(episode, role), headers={"If-None-Match": etag})
        assert gone.status_code == 404, role
        assert "public" not in gone.headers.get("cache-control", "")


def test_non_ascii_filenames_and_download_links(
    catalog: Catalog, make_client: Callable[..., TestClient]
) -> None:
    name = 'débat «confiance» "live".mp3'
    episode = publish(catalog, "Débat sur la confiance", with_sidecars=False, audio_name=name)
    app = make_client()
    path = url(episode, "audio")
    assert path == f"/media/{episode.id}/{quote(name, safe='')}"
    assert app.get(path).status_code == 200
    assert "content-disposition" not in app.head(path).headers
    disposition = app.head(f"{path}?download=1").headers["content-disposition"]
    assert disposition.startswith('attachment; filename="debat confiance _live_.mp3"')
    assert "filename*=UTF-8''d%C3%A9bat%20%C2%ABconfiance%C2%BB%20%22live%22.mp3" in disposition


# --- covers ----------------------------------------------------------------------------------


def test_series_cover(catalog: Catalog, make_client: Callable[..., TestClient]) -> None:
    data = generate_cover("Lectures")
    stored = catalog.store.put_bytes("series/lectures/cover.jpg", data, "image/jpeg")
    series = Series.new("Lectures")
    series.cover = MediaFile(stored.key, "cover.jpg", "image/jpeg", stored.size, stored.sha256)
    publish(catalog, "Inaugural lecture", series=series, with_sidecars=False)
    app = make_client()
    head = app.head("/media/series/lectures/cover.jpg")
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(data)
    assert head.headers["content-type"] == "image/jpeg"
    assert app.get("/media/series/lectures/cover.jpg").content == data
    assert app.get("/media/series/lectures/other.jpg").status_code == 404


def test_site_cover_is_generated_once_and_immutable(
    app: TestClient, store: ObjectStore, make_client: Callable[..., TestClient]
) -> None:
    data = generate_cover(app.app.state.archive.settings.site_title)  # type: ignore[attr-defined]
    name = f"cover-{hashlib.sha256(data).hexdigest()[:12]}.jpg"
    response = app.get(f"/media/site/{name}")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/jpeg"
    assert "immutable" in response.headers["cache-control"]
    assert store.head(f"site/{name}").size == len(data)
    # A second process finds it already stored (the conditional put's Conflict is ignored).
    assert make_client().head(f"/media/site/{name}").status_code == 200


# --- the media host ---------------------------------------------------------------------------


def test_media_url_mode_redirects_privately(
    episode: Episode, make_client: Callable[..., TestClient]
) -> None:
    app = make_client(media_url="https://cdn.example.org/archive")
    for method in ("GET", "HEAD"):
        response = app.request(method, url(episode, "audio"), follow_redirects=False)
        assert response.status_code == 302
        assert response.headers["location"] == (
            f"https://cdn.example.org/archive/{episode.files['audio'].key}"
        )
        assert response.headers["cache-control"] == "private, no-cache"


def test_drafts_are_never_sent_to_the_media_host(
    catalog: Catalog, store: ObjectStore, make_client: Callable[..., TestClient]
) -> None:
    draft = publish(catalog, "Not yet", draft=True, with_sidecars=False)
    app = make_client(media_url="https://cdn.example.org/archive")
    assert app.get(url(draft, "audio"), follow_redirects=False).status_code == 404
    add_editor(store)
    sign_in(app)
    for method in ("GET", "HEAD"):
        response = app.request(method, url(draft, "audio"), follow_redirects=False)
        assert response.status_code == 200, method
        assert "location" not in response.headers
        assert response.headers["cache-control"] == "private, no-store"
    assert app.get(url(draft, "audio")).content == stored_bytes(store, draft.files["audio"])


def test_presigned_mode_redirects_to_a_short_lived_url(
    episode: Episode, store: ObjectStore, make_client: Callable[..., TestClient]
) -> None:
    app = make_client(media_url="presigned")
    for method in ("GET", "HEAD"):
        response = app.request(method, url(episode, "audio"), follow_redirects=False)
        assert response.status_code == 302, method
        assert response.headers["cache-control"] == "private, no-store"
    location = response.headers["location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == store.endpoint  # where clients can reach it
    query = parse_qs(parts.query)
    assert 0 < int(query["X-Amz-Expires"][0]) <= 3600
    fetched = httpx.get(location, headers={"Range": "bytes=0-9"})
    assert fetched.status_code == 206
    assert fetched.content == stored_bytes(store, episode.files["audio"])[:10]
    # The bucket itself stays private: the same object without a signature is refused.
    bare = httpx.get(f"{store.endpoint}/{store.bucket}/{episode.files['audio'].key}")
    assert bare.status_code in (401, 403)


def test_presigned_mode_gives_drafts_only_to_editors(
    catalog: Catalog, store: ObjectStore, make_client: Callable[..., TestClient]
) -> None:
    draft = publish(catalog, "Draft talk", draft=True, with_sidecars=False)
    app = make_client(media_url="presigned")
    assert app.get(url(draft, "audio"), follow_redirects=False).status_code == 404
    add_editor(store)
    sign_in(app)
    response = app.get(url(draft, "audio"), follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["cache-control"] == "private, no-store"
    assert httpx.get(response.headers["location"]).content == stored_bytes(
        store, draft.files["audio"])


@pytest.mark.parametrize("value", ["presigned", "PRESIGNED", "presigned/"])
def test_archive_media_url_presigned_is_a_mode_not_a_url(value: str, tmp_path: Path) -> None:
    settings = Settings.from_env({"ARCHIVE_MEDIA_URL": value, "ARCHIVE_DATA_DIR": str(tmp_path)})
    assert settings.media_url == "presigned" and settings.presigned_media
    cdn = Settings.from_env({"ARCHIVE_MEDIA_URL": "https://cdn.example.org/",
                             "ARCHIVE_DATA_DIR": str(tmp_path)})
    assert cdn.media_url == "https://cdn.example.org" and not cdn.presigned_media


# --- streaming ---------------------------------------------------------------------------------


@pytest.fixture
def big(catalog: Catalog) -> Episode:
    return publish(catalog, "A very long conference day", with_sidecars=False,
                   add_files=big_original)


def test_large_files_stream_in_chunks_with_flat_memory(
    big: Episode, make_client: Callable[..., TestClient]
) -> None:
    app = make_client()
    original = big.files["original"]
    digest, chunks, size = hashlib.sha256(), 0, 0
    tracemalloc.start()
    try:
        with app.stream("GET", url(big, "original")) as response:
            assert response.status_code == 200
            assert int(response.headers["content-length"]) == BIG_FILE_SIZE
            for chunk in response.iter_raw():
                digest.update(chunk)
                chunks += 1
                size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size == BIG_FILE_SIZE
    assert digest.hexdigest() == original.sha256
    assert chunks >= 40
    assert peak < BIG_FILE_SIZE / 4, f"peak {peak} bytes while streaming {BIG_FILE_SIZE}"


def test_a_client_leaving_mid_file_does_not_hurt_the_next(
    big: Episode, make_client: Callable[..., TestClient]
) -> None:
    app = make_client()
    for _ in range(3):
        with app.stream("GET", url(big, "original")) as response:
            next(response.iter_raw())
    tail = app.get(url(big, "original"), headers={"Range": "bytes=-10"})
    assert tail.status_code == 206
    assert len(tail.content) == 10
