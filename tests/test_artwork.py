"""Cover renditions end to end on the real bucket: made by Pillow once per cover (the `artwork`
task, and at once for a new series), recorded on the cover, served at /art/ only for published
covers, shown by the pages in <picture> (the cover itself until then); the site's icons and web
app manifest."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image
from starlette.testclient import TestClient

from archive import artwork, editing, models
from archive.catalog import Catalog, CatalogData
from archive.enrich import make_worker, wanted
from archive.ingest import Metadata, ingest
from archive.models import Episode, MediaFile
from archive.runtime import Archive
from archive.tasks import TaskQueue
from archive.web import artwork as web_artwork
from media import artwork as pictures
from tests import media_samples
from tests.factories import make_episode, media_file


def published(archive: Archive, tmp_path: Path, *, cover: bool = True, **fields: object
              ) -> Episode:
    source = media_samples.make_recording(tmp_path / "talk.mp3", "mp3", seconds=2.0)
    art = media_samples.write_png(tmp_path / "cover.png", (1500, 1400)) if cover else None
    meta = Metadata(title="Trusting Enemies", series="Lectures", artwork=art,
                    speakers=["Nicholas J Wheeler;lecturer;University of Birmingham"],
                    **fields)  # type: ignore[arg-type]
    return ingest(archive, source, meta)


def drain(archive: Archive) -> None:
    worker = make_worker(archive, queue=TaskQueue(archive.store))
    while worker.run_once():
        pass


def current(archive: Archive, episode_id: str) -> Episode:
    return archive.catalog.refresh().data.episodes[episode_id]


# -- Pillow --------------------------------------------------------------------------------------


def test_renditions_are_small_squares_in_every_format() -> None:
    cover = pictures.generate_cover("Trusting Enemies", "Lectures")
    made = pictures.make_renditions(cover)
    formats = pictures.rendition_formats()
    assert {"webp", "jpg"} <= set(formats)
    assert set(made) == {f"{w}.{f}" for w in pictures.RENDITION_WIDTHS for f in formats}
    for name, body in made.items():
        width = int(name.split(".")[0])
        with Image.open(io.BytesIO(body)) as image:
            assert image.size == (width, width)
            assert image.format == {"avif": "AVIF", "webp": "WEBP", "jpg": "JPEG"}[
                name.split(".")[1]]
    assert len(made["160.webp"]) < 8_000 < len(cover)


def test_renditions_refuse_what_is_not_an_image() -> None:
    from media.errors import InvalidArtwork

    with pytest.raises(InvalidArtwork):
        pictures.make_renditions(b"<svg onload=alert(1)>")


def test_icons_are_drawn_from_the_site_artwork() -> None:
    with Image.open(io.BytesIO(pictures.generate_icon("Trust archive", 180))) as icon:
        assert icon.size == (180, 180) and icon.format == "PNG"
        corner = icon.convert("RGB").getpixel((0, 0))
    assert "#{:02x}{:02x}{:02x}".format(*corner) == pictures.theme_colour("Trust archive")
    with Image.open(io.BytesIO(pictures.generate_favicon("Trust archive"))) as favicon:
        assert favicon.format == "ICO"
        assert {(16, 16), (32, 32), (48, 48)} <= set(favicon.info["sizes"])


def test_renditions_read_from_a_catalogue_are_checked() -> None:
    data = {"key": "k", "filename": "cover.jpg", "content_type": "image/jpeg", "size": 1,
            "sha256": "0" * 64, "renditions": ["320.webp", "../../x", 7, "99999.jpg", "64.avif"]}
    assert MediaFile.from_dict(data).renditions == ["320.webp", "64.avif"]
    assert MediaFile.from_dict({**data, "renditions": "320.webp"}).renditions is None
    assert MediaFile.from_dict({k: v for k, v in data.items() if k != "renditions"}) \
        .renditions is None  # an older catalogue: renditions not made yet


# -- the artwork task ------------------------------------------------------------------------------


def test_the_artwork_task_makes_renditions_once(archive: Archive, tmp_path: Path) -> None:
    episode = published(archive, tmp_path)
    series = archive.catalog.refresh().data.series["lectures"]
    # A new series' cover is made small at once; the episode's waits for the task.
    assert series.cover is not None and series.cover.renditions
    assert episode.pending[0] == "artwork"
    assert episode.files["cover"].renditions is None
    drain(archive)
    cover = current(archive, episode.id).files["cover"]
    assert cover.renditions and "320.webp" in cover.renditions
    assert "artwork" not in current(archive, episode.id).pending
    for name in cover.renditions:
        info = archive.store.head(artwork.rendition_key(artwork.digest(cover), name))
        assert info.size > 0
    assert wanted(current(archive, episode.id), "off", series) == []
    # The episode's own copy, which reindex rebuilds from, has them too.
    meta, _ = archive.store.get_json(f"episodes/{episode.id}/meta.json")
    assert meta["files"]["cover"]["renditions"] == cover.renditions


def test_an_episode_without_a_cover_asks_for_nothing(archive: Archive, tmp_path: Path) -> None:
    episode = published(archive, tmp_path, cover=False)
    assert "artwork" not in episode.pending
    assert "cover" not in episode.files


def test_a_replaced_cover_gets_new_renditions(archive: Archive, tmp_path: Path) -> None:
    episode = published(archive, tmp_path)
    drain(archive)
    old = current(archive, episode.id).files["cover"]
    other = tmp_path / "other.png"
    Image.new("RGB", (1400, 1400), (20, 90, 160)).save(other, "PNG")
    editing.replace_sidecars(archive, episode.id, "tester", artwork=other)
    replaced = current(archive, episode.id).files["cover"]
    assert replaced.sha256 != old.sha256 and replaced.renditions is None
    assert [t.kind for t in TaskQueue(archive.store).waiting()] == ["artwork"]
    drain(archive)
    assert current(archive, episode.id).files["cover"].renditions


# -- delivery and pages ---------------------------------------------------------------------------


def test_renditions_are_served_only_for_published_covers(archive: Archive, tmp_path: Path,
                                                         client: TestClient) -> None:
    episode = published(archive, tmp_path)
    client.app.state.archive.catalog.refresh()  # type: ignore[attr-defined]
    page = client.get(f"/episodes/{episode.slug}").text
    original = f"/media/{episode.id}/{episode.files['cover'].filename}"
    assert f'src="{original}"' in page and 'width="240" height="240"' in page  # until made
    drain(archive)
    cover = current(archive, episode.id).files["cover"]
    digest = artwork.digest(cover)
    url = f"/art/{digest}/320.webp"
    client.app.state.archive.catalog.refresh()  # type: ignore[attr-defined]
    answer = client.get(url)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/webp"
    assert "immutable" in answer.headers["cache-control"]
    with Image.open(io.BytesIO(answer.content)) as image:
        assert image.size == (320, 320)
    assert client.get(url, headers={"if-none-match": answer.headers["etag"]}).status_code == 304
    assert client.head(url).headers["content-length"] == str(len(answer.content))
    for bad in (f"/art/{digest}/321.webp", f"/art/{digest}/meta.json", "/art/0000/320.webp",
                f"/art/{digest}/..%2F..%2Fcatalog.json"):
        assert client.get(bad).status_code == 404, bad

    page = client.get(f"/episodes/{episode.slug}").text
    assert '<source type="image/webp"' in page and f"{url} 320w" in page
    assert f'alt="Artwork of {episode.title}"' in page
    home = client.get("/").text
    assert 'class="episode-card has-art"' in home and 'alt=""' in home
    assert f"/art/{digest}/160.jpg 160w" in home

    editing.set_draft(archive, episode.id, True, "tester")
    client.app.state.archive.catalog.refresh()  # type: ignore[attr-defined]
    assert client.get(url).status_code == 404  # a draft's pictures are private


def test_series_pages_show_the_series_artwork(archive: Archive, tmp_path: Path,
                                              client: TestClient) -> None:
    published(archive, tmp_path, cover=False)
    client.app.state.archive.catalog.refresh()  # type: ignore[attr-defined]
    series = archive.catalog.refresh().data.series["lectures"]
    assert series.cover is not None
    digest = artwork.digest(series.cover)
    page = client.get("/series/lectures").text
    assert f"/art/{digest}/640.jpg 640w" in page and 'alt="Artwork of Lectures"' in page
    assert f"/art/{digest}/160.jpg" in client.get("/").text  # the card shows the series' art
    assert client.get(f"/art/{digest}/160.webp").status_code == 200


def test_icons_and_the_web_app_manifest(client: TestClient) -> None:
    favicon = client.get("/favicon.ico")
    assert favicon.status_code == 200 and favicon.headers["content-type"] == "image/x-icon"
    touch = client.get("/icons/icon-180.png")
    with Image.open(io.BytesIO(touch.content)) as icon:
        assert icon.size == (180, 180)
    assert client.get("/icons/icon-180.png", headers={
        "if-none-match": touch.headers["etag"]}).status_code == 304
    assert client.get("/icons/icon-9999.png").status_code == 404
    manifest = client.get("/manifest.webmanifest")
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    document = json.loads(manifest.content)
    assert document["start_url"] == "/" and document["theme_color"].startswith("#")
    for entry in document["icons"]:
        assert client.get(entry["src"]).status_code == 200
    assert any(entry.get("purpose") == "maskable" for entry in document["icons"])
    page = client.get("/").text
    assert '<link rel="manifest" href="/manifest.webmanifest">' in page
    assert '<meta name="theme-color"' in page and 'rel="apple-touch-icon"' in page


def test_renditions_stay_on_the_archive_with_a_public_media_host(
        archive: Archive, tmp_path: Path, make_client: object) -> None:
    """The bucket policy opens only published media to anonymous readers, not art/."""
    episode = published(archive, tmp_path)
    drain(archive)
    cover = current(archive, episode.id).files["cover"]
    client = make_client(media_url="https://media.example.org")  # type: ignore[operator]
    answer = client.get(f"/art/{artwork.digest(cover)}/160.jpg", follow_redirects=False)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    assert client.get(f"/media/{episode.id}/{cover.filename}",
                      follow_redirects=False).status_code == 302


def test_a_new_snapshot_unpacks_only_the_covers_that_changed(catalog: Catalog) -> None:
    """The renditions /art/ may serve are found per snapshot; an unchanged episode keeps its
    packed record, so the next snapshot reads no cover but the changed one's."""
    episodes = [make_episode(f"Lecture {n}") for n in range(3)]
    for n, episode in enumerate(episodes):
        episode.files["cover"] = media_file(episode.id, "cover.jpg", b"jpeg %d" % n,
                                            "image/jpeg", renditions=["320.webp"])

    def put(data: CatalogData) -> None:
        data.episodes.update((e.id, e) for e in episodes)

    catalog.change(put, check_new_keys=False)
    first = web_artwork.published_renditions(catalog.view())
    assert set(first) == {artwork.digest(e.files["cover"]) for e in episodes}

    def describe(data: CatalogData) -> None:  # a packed field: the record changes
        data.episodes[episodes[0].id].description = "Now described."

    catalog.change(describe, check_new_keys=False)
    models.unpacked.cache_clear()
    assert web_artwork.published_renditions(catalog.view()) == first
    assert models.unpacked.cache_info().misses == 1
