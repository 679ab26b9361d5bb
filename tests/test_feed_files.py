"""Long feeds as local files, streamed: the same document as a build in memory, a gzip form made
of items compressed once, items copied from the last build after an edit, and the HTTP
behaviour of every other feed (ETag, 304, HEAD, gzip) over the real app."""

from __future__ import annotations

import dataclasses
import gzip
import io
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import podcastparser
import pytest

from archive.web import feeds as web_feeds
from archive.web.feed_files import FeedFolder, deflate_piece, write_feed
from feeds.build import build_feed, feed_episodes
from tests.test_feeds_data import URLS, hostile, make_channel, sample_episodes
from tests.test_feeds_fragments import count_item_builds
from tests.test_web_feeds import Site, feed_paths, site  # noqa: F401 - the fixture

TITLES = {"trust-lectures": "Trust Lectures"}
AT = datetime(2026, 12, 3, 12, tzinfo=UTC)


def test_pieces_deflated_alone_join_into_one_stream() -> None:
    pieces = [b"<rss>", b"<item>trust</item>" * 50, "\u00e9\u2014".encode() * 10, b"</rss>"]
    joined = b"".join(deflate_piece(p) for p in pieces) + b"\x03\x00"
    assert zlib.decompress(joined, -15) == b"".join(pieces)


def test_a_feed_file_is_the_document_build_feed_makes(tmp_path: Path) -> None:
    channel, episodes = make_channel(), [*sample_episodes(), hostile()]
    included = feed_episodes(episodes)
    written = write_feed(tmp_path, channel, included, URLS, TITLES, None)
    expected = build_feed(channel, episodes, URLS, series_titles=TITLES)
    assert written.path.read_bytes() == expected
    assert written.size == len(expected)
    assert gzip.decompress(written.gz_path.read_bytes()) == expected  # CRC and length checked
    assert written.gz_size == written.gz_path.stat().st_size < written.size


def test_an_edit_copies_every_other_item_from_the_last_build(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    channel, episodes = make_channel(), sample_episodes()
    folder = FeedFolder(tmp_path)
    first = write_feed(folder.path, channel, feed_episodes(episodes), URLS, TITLES, None)
    folder.replace(("series", "x"), first, AT)
    built = count_item_builds(monkeypatch)
    edited = [dataclasses.replace(episodes[0], title="Edited <b>title</b> & more"),
              *episodes[1:]]
    second = write_feed(folder.path, channel, feed_episodes(edited), URLS, TITLES,
                        folder.previous(("series", "x")))
    assert built == [1]
    expected = build_feed(channel, edited, URLS, series_titles=TITLES)
    assert second.path.read_bytes() == expected
    assert gzip.decompress(second.gz_path.read_bytes()) == expected
    # The build before the last is removed; the last stays for requests still reading it.
    folder.replace(("series", "x"), second, AT + timedelta(seconds=1))
    third = write_feed(folder.path, channel, feed_episodes(edited), URLS, TITLES, second)
    folder.replace(("series", "x"), third, AT + timedelta(seconds=2))
    assert not first.path.exists() and second.path.exists() and third.path.exists()
    assert built[-1] == 0  # nothing changed: every item copied
    # A build of an older snapshot finishing last never removes the newest snapshot's.
    late = write_feed(folder.path, channel, feed_episodes(edited), URLS, TITLES, None)
    folder.replace(("series", "x"), late, AT)
    assert not late.path.exists() and third.path.exists() and second.path.exists()
    assert folder.previous(("series", "x")) is third
    folder.close()
    assert not folder.path.exists()


def test_a_changed_channel_builds_every_item_again(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    episodes = feed_episodes(sample_episodes())
    first = write_feed(tmp_path, make_channel(), episodes, URLS, TITLES, None)
    built = count_item_builds(monkeypatch)
    other = dataclasses.replace(make_channel(), language="de")
    again = write_feed(tmp_path, other, episodes, URLS, TITLES, first)
    assert built == [len(episodes)]
    assert again.path.read_bytes() == build_feed(other, episodes, URLS, series_titles=TITLES)


@pytest.fixture
def streamed(site: Site, monkeypatch: pytest.MonkeyPatch) -> Site:  # noqa: F811
    """The test site with every feed long enough to be streamed from files."""
    monkeypatch.setattr(web_feeds, "STREAM_ITEMS", 0)
    return site


def test_streamed_feeds_behave_as_every_feed(streamed: Site) -> None:
    for path in feed_paths(streamed):
        plain = streamed.feed(path)
        assert plain.status_code == 200, path
        assert int(plain.headers["content-length"]) == len(plain.content)
        assert plain.headers["content-type"] == "application/rss+xml; charset=utf-8"
        assert plain.headers["cache-control"] == "public, max-age=60"
        assert streamed.feed(path).headers["etag"] == plain.headers["etag"]
        with streamed.client.stream("GET", path, headers={"accept-encoding": "gzip"}) as r:
            raw = b"".join(r.iter_raw())
            assert r.headers["content-encoding"] == "gzip"
            assert int(r.headers["content-length"]) == len(raw)
            zipped_etag = r.headers["etag"]
        assert zipped_etag != plain.headers["etag"]
        assert gzip.decompress(raw) == plain.content
        head = streamed.client.head(path, headers={"accept-encoding": "identity"})
        assert head.content == b"" and head.headers["content-length"] == str(len(plain.content))
        for tag in (plain.headers["etag"], zipped_etag):
            assert streamed.client.get(path, headers={"if-none-match": tag}).status_code == 304
        parsed = feedparser.parse(plain.content)
        assert not parsed.bozo, (path, parsed.get("bozo_exception"))
        assert podcastparser.parse(path, io.BytesIO(plain.content))["episodes"]
        assert any(f.name.endswith(".xml") for f in
                   streamed.client.app.state.feed_folder.path.iterdir())  # type: ignore


def test_a_streamed_feed_is_the_feed_built_in_memory(site: Site,  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    """Same snapshot, same channel: the file holds the very bytes (and so has the ETag) of the
    build in memory."""
    view = site.client.app.state.archive.catalog.refresh()  # type: ignore[attr-defined]
    settings = site.settings
    folder = FeedFolder(tmp_path)
    for kind, slug in (("archive", ""), ("series", "lectures"), ("people", "marie-dupont")):
        channel, episodes = web_feeds.feed_source(view, settings, kind, slug,
                                                  f"{settings.base_url}/media/site/cover.jpg")
        in_memory = web_feeds.render(view, channel, episodes, settings, kind, slug, folder)
        monkeypatch.setattr(web_feeds, "STREAM_ITEMS", 0)
        from_files = web_feeds.render(view, channel, episodes, settings, kind, slug, folder)
        monkeypatch.undo()
        assert in_memory.file is None and from_files.file is not None
        assert from_files.body == b"" and from_files.file.path.read_bytes() == in_memory.body
        assert from_files.etag == in_memory.etag
