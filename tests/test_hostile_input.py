"""Hostile input found in review: every one is a clear 4xx or refusal, never a 500 or traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from archive.catalog import Catalog
from archive.errors import StorageError
from archive.storage import ObjectStore
from media.chapters import parse_chapters
from media.errors import InvalidChapters, InvalidTranscript
from media.transcripts import parse_transcript
from tests import media_samples
from tests.cli import run_cli
from tests.servers import wait_until
from tests.test_api import post_recording
from tests.test_auth import bearer, token_for
from tests.test_catalog import publish


@pytest.mark.parametrize("path", ["/?page=²", "/?year=²", "/search?q=trust&page=²",
                                  "/api/episodes?page=²", "/api/episodes?per_page=" + "9" * 5000])
def test_odd_numbers_in_queries_are_not_500s(client: TestClient, path: str) -> None:
    assert client.get(path).status_code in (200, 400, 404, 422)


def test_an_absurd_range_is_not_a_500(client: TestClient, catalog: Catalog) -> None:
    episode = publish(catalog, "Ranged")
    url = f"/media/{episode.id}/{episode.files['audio'].filename}"
    assert wait_until(lambda: client.head(url).status_code == 200, timeout=10)
    response = client.get(url, headers={"Range": "bytes=" + "0" * 5000 + "1-"})
    assert response.status_code in (200, 206, 416)


def test_huge_times_in_sidecars_are_refused() -> None:
    with pytest.raises(InvalidChapters):
        parse_chapters(json.dumps({"version": "1.2.0", "chapters": [
            {"startTime": int("1" + "0" * 400), "title": "Forever"}]}).encode())
    with pytest.raises(InvalidChapters):
        parse_chapters(b'{"version": "1.2.0", "chapters": [{"startTime": 5000000000}]}')
    with pytest.raises(InvalidTranscript):
        parse_transcript(("WEBVTT\n\n" + "9" * 400 + ":00:00.000 --> " + "9" * 400
                          + ":00:01.000\nNever\n").encode())


def test_patch_checks_json_types(client: TestClient, store: ObjectStore, tmp_path: Path) -> None:
    token = token_for(store)
    wav = media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=1.0)
    created = post_recording(client, token, wav).json()
    url = f"/api/episodes/{created['id']}"
    for body in ({"draft": "false"}, {"tags": 5}, {"speakers": "Alice"}, {"location": 5},
                 {"season": 1e308}, {"explicit": 1}):
        response = client.patch(url, json=body, headers=bearer(token))
        assert response.status_code == 422, (body, response.text)
    assert client.get(url).json()["draft"] is False  # "false" did not unpublish it
    edited = client.patch(url, content=json.dumps({"title": "Lone \ud800 surrogate"}),
                          headers={**bearer(token), "Content-Type": "application/json"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["title"] == "Lone surrogate"


def test_a_failure_after_the_commit_keeps_the_published_files(catalog: Catalog) -> None:
    original = catalog.write_meta

    def storage_gone(episode: object) -> None:
        raise StorageError("Storage at test is not reachable (ConnectionError).")

    catalog.write_meta = storage_gone  # type: ignore[method-assign]
    episode = publish(catalog, "Committed, then storage blinked")
    catalog.write_meta = original  # type: ignore[method-assign]
    assert catalog.store.exists(episode.files["audio"].key)
    assert Catalog(catalog.store).view().episode(episode.id)


def test_cli_missing_file_is_one_line(settings, store: ObjectStore, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run_cli(settings, "ingest", tmp_path / "missing-dir" / "x.wav", "--title", "T",
                     "--series", "S")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("archive: ")


def test_huge_artwork_is_refused_before_its_pixels_are_decoded(client: TestClient,
                                                               store: ObjectStore,
                                                               tmp_path: Path) -> None:
    from tests.test_media_artwork import _large_png

    wav = media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=1.0)
    token = token_for(store)
    with wav.open("rb") as stream:
        refused = client.post("/api/episodes", headers=bearer(token),
                              data={"title": "Talk", "series": "Talks"},
                              files={"file": ("talk.wav", stream, "audio/wav"),
                                     "artwork": ("cover.png", _large_png(8000, 8000),
                                                 "image/png")})
    assert refused.status_code == 422, refused.text
    assert "at most 25 megapixels" in refused.json()["error"]
    assert not list(store.list("episodes/"))


def test_artwork_beyond_the_decoding_slots_is_a_429(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    from archive import sidecars
    from archive.errors import TooManyRequests
    from archive.ingest import Metadata
    from media import artwork

    cover = tmp_path / "cover.png"
    Image.new("RGB", (1400, 1400), (9, 9, 9)).save(cover)
    monkeypatch.setattr(artwork, "SLOT_WAIT_S", 0.05)
    held = [artwork.DECODING.acquire(timeout=10) for _ in range(artwork.MAX_DECODING)]
    try:
        with pytest.raises(TooManyRequests, match="busy with other images") as busy:
            sidecars.prepare(Metadata(artwork=cover))
        assert (busy.value.status, busy.value.retry_after) == (429, 30)
    finally:
        for _ in held:
            artwork.DECODING.release()
    assert sidecars.prepare(Metadata(artwork=cover)).cover
