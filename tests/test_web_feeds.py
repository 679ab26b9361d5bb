"""Feed endpoints over the real app and SeaweedFS: content, HTTP behaviour, real parsers.

Every media URL a feed names is fetched back through /media, so an enclosure `length` that
differs from the bytes served, or a URL that does not resolve, fails here.
"""

from __future__ import annotations

import gzip
import io
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import feedparser
import podcastparser
import pytest
from starlette.testclient import TestClient

from archive.catalog import Catalog
from archive.config import Settings
from archive.models import Episode, MediaFile, Person, Series
from archive.storage import ObjectStore
from feeds import podcast_guid
from media.artwork import generate_cover
from tests.media_samples import make_recording
from tests.test_feeds_parsers import partytime
from tests.test_web_media import (
    WHEELER,
    publish,
    put_file,
)

NS = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "podcast": "https://podcastindex.org/namespace/1.0",
    "atom": "http://www.w3.org/2005/Atom",
}
LECTURES = Series.new("Lectures", "Inaugural and public lectures.", medium="course")
DUPONT = Person(name="Marie Dupont", role="lecturer", affiliation="Sciences Po")
T = TypeVar("T")


@dataclass
class Site:
    client: TestClient
    settings: Settings
    roundtable: Episode
    lecture: Episode
    draft: Episode

    def feed(self, path: str = "/feed.xml", **headers: str) -> Any:
        return self.client.get(path, headers={"accept-encoding": "identity", **headers})


def original_wav(store: ObjectStore, episode: Episode) -> dict[str, MediaFile]:
    """The archival master next to the MP3: the feed offers it as an alternate enclosure."""
    with tempfile.TemporaryDirectory() as folder:
        data = make_recording(Path(folder) / "original.wav", "wav", seconds=1.0).read_bytes()
    return {"original": put_file(store, episode.id, "original.wav", data, "audio/wav")}


@pytest.fixture
def site(catalog: Catalog, settings: Settings, make_client: Callable[..., TestClient]) -> Site:
    roundtable = publish(catalog, "Roundtable: Trust and Deception")
    lecture = publish(catalog, "Inaugural Lecture: Trusting Enemies", series=LECTURES,
                      speakers=[DUPONT, WHEELER], add_files=original_wav)
    draft = publish(catalog, "Unfinished draft", draft=True, speakers=[DUPONT])
    return Site(make_client(), settings, roundtable, lecture, draft)


def wait_for(condition: Callable[[], T], timeout: float = 15.0) -> T:
    """Poll until `condition()` is truthy; the app refreshes its catalogue in the background."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            assert value, "condition not met before the deadline"
            return value
        time.sleep(0.05)


def channel(xml: bytes) -> ET.Element:
    found = ET.fromstring(xml).find("channel")
    assert found is not None
    return found


def guids(xml: bytes) -> set[str]:
    return {item.findtext("guid") or "" for item in channel(xml).iter("item")}


def media_links(xml: bytes) -> list[tuple[str, int | None]]:
    """Every URL of ours a feed names, with the byte length it promises where it has one."""
    root = channel(xml)
    links: list[tuple[str, int | None]] = []
    for enclosure in root.iter("enclosure"):
        links.append((enclosure.attrib["url"], int(enclosure.attrib["length"])))
    for alternate in root.iterfind(".//podcast:alternateEnclosure", NS):
        source = alternate.find("podcast:source", NS)
        assert source is not None
        links.append((source.attrib["uri"], int(alternate.attrib["length"])))
    for tag, attribute in (("podcast:transcript", "url"), ("podcast:chapters", "url"),
                           ("itunes:image", "href")):
        links.extend((e.attrib[attribute], None) for e in root.iterfind(f".//{tag}", NS)
                     if e.get("type") != "text/html")  # the transcript's page, not a file
    return links


def transcript_pages(xml: bytes) -> list[str]:
    return [e.attrib["url"] for e in channel(xml).iterfind(".//podcast:transcript", NS)
            if e.get("type") == "text/html"]


def feed_paths(site: Site) -> list[str]:
    return ["/feed.xml", "/series/roundtables/feed.xml", "/series/lectures/feed.xml",
            "/people/nicholas-j-wheeler/feed.xml", "/people/marie-dupont/feed.xml"]


# --- HTTP --------------------------------------------------------------------------------------


def test_feed_headers_and_byte_stable_body(site: Site) -> None:
    first, second = site.feed(), site.feed()
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert first.headers["access-control-allow-origin"] == "*"
    assert first.headers["cache-control"] == "public, max-age=60"
    assert first.headers["vary"] == "Accept-Encoding"
    assert first.headers["last-modified"].endswith(" GMT")
    assert first.headers["etag"].startswith('"')
    assert "content-encoding" not in first.headers
    assert int(first.headers["content-length"]) == len(first.content)
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["last-modified"] == first.headers["last-modified"]


def test_head_has_the_length_and_no_body(site: Site) -> None:
    body = site.feed().content
    head = site.client.head("/feed.xml", headers={"accept-encoding": "identity"})
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(body)
    zipped = site.client.head("/feed.xml", headers={"accept-encoding": "gzip"})
    assert int(zipped.headers["content-length"]) == len(gzip.compress(body, mtime=0))
    assert zipped.headers["content-encoding"] == "gzip"


def test_gzip_when_accepted(site: Site) -> None:
    plain = site.feed()
    for accept in ("gzip", "br;q=1.0, gzip;q=0.8", "*"):
        with site.client.stream("GET", "/feed.xml", headers={"accept-encoding": accept}) as r:
            raw = b"".join(r.iter_raw())
            assert r.headers["content-encoding"] == "gzip"
            assert int(r.headers["content-length"]) == len(raw)
            assert r.headers["etag"] != plain.headers["etag"]  # different bytes, different tag
        assert gzip.decompress(raw) == plain.content
    refused = site.feed(**{"accept-encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in refused.headers


def test_not_modified(site: Site) -> None:
    first = site.feed()
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    zipped_etag = site.client.head("/feed.xml", headers={"accept-encoding": "gzip"}).headers["etag"]
    for headers in ({"if-none-match": etag}, {"if-none-match": zipped_etag},
                    {"if-modified-since": modified}):
        for method in ("GET", "HEAD"):
            response = site.client.request(method, "/feed.xml", headers=headers)
            assert response.status_code == 304, (method, headers)
            assert response.content == b""
    stale = site.feed(**{"if-none-match": '"stale"', "if-modified-since": modified})
    assert stale.status_code == 200
    older = site.feed(**{"if-modified-since": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert older.status_code == 200


def test_unknown_series_and_people_are_404(site: Site) -> None:
    for path in ("/series/nope/feed.xml", "/people/nobody/feed.xml"):
        for method in ("GET", "HEAD"):
            response = site.client.request(method, path, headers={"accept": "text/html"})
            assert response.status_code == 404, (method, path)
    page = site.client.get("/series/nope/feed.xml", headers={"accept": "text/html"})
    assert "no such series" in page.text


def test_old_feed_addresses_move_permanently(site: Site,
                                            make_client: Callable[..., TestClient]) -> None:
    client = make_client(old_feed_urls=("/podcast.rss", "https://old.example/rss"))
    for path in ("/podcast.rss", "/rss"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 301
        assert response.headers["location"] == "http://archive.test/feed.xml"
    moved = client.get("/podcast.rss").content
    assert guids(moved) == guids(site.feed().content)  # every guid unchanged
    tag = "{http://www.itunes.com/dtds/podcast-1.0.dtd}new-feed-url"
    assert channel(moved).findtext(tag) == "http://archive.test/feed.xml"
    assert channel(site.feed().content).find(tag) is None
    assert site.client.get("/podcast.rss").status_code == 404  # only where configured


# --- content ----------------------------------------------------------------------------------


def test_feeds_list_exactly_their_episodes(site: Site) -> None:
    every = guids(site.feed().content)
    assert every == {site.roundtable.guid, site.lecture.guid}
    assert site.draft.guid not in every
    assert guids(site.feed("/series/roundtables/feed.xml").content) == {site.roundtable.guid}
    assert guids(site.feed("/series/lectures/feed.xml").content) == {site.lecture.guid}
    wheeler = site.feed("/people/nicholas-j-wheeler/feed.xml").content
    assert guids(wheeler) == {site.roundtable.guid, site.lecture.guid}
    # Marie Dupont also speaks in the draft, which stays out of her feed.
    assert guids(site.feed("/people/marie-dupont/feed.xml").content) == {site.lecture.guid}


def test_every_media_url_serves_the_promised_bytes(site: Site) -> None:
    base = f"{site.settings.base_url}/media/"
    checked = 0
    for path in feed_paths(site):
        for link, length in media_links(site.feed(path).content):
            assert link.startswith(base), link
            assert "?" not in link and link.isascii()
            local = link.removeprefix(site.settings.base_url)
            head = site.client.head(local)
            assert head.status_code == 200, link
            assert head.headers["accept-ranges"] == "bytes"
            body = site.client.get(local, headers={"accept-encoding": "identity"}).content
            assert len(body) == int(head.headers["content-length"])
            if length is not None:
                assert len(body) == length, link
            checked += 1
    assert checked >= 20


def test_every_transcript_page_a_feed_names_is_there(site: Site) -> None:
    pages = transcript_pages(site.feed().content)
    assert pages
    for link in pages:
        page = site.client.get(link.removeprefix(site.settings.base_url))
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "<h1" in page.text


def test_archive_channel(site: Site) -> None:
    root = channel(site.feed().content)
    feed_url = "http://archive.test/feed.xml"
    assert root.findtext("title") == site.settings.site_title
    assert root.findtext("podcast:guid", namespaces=NS) == podcast_guid(feed_url)
    assert root.find("atom:link", NS).attrib["href"] == feed_url  # type: ignore[union-attr]
    assert root.findtext("podcast:license", namespaces=NS) == "cc-by-nc-4.0"
    image = root.find("itunes:image", NS)
    assert image is not None
    assert image.attrib["href"].startswith("http://archive.test/media/site/cover-")
    cover = site.client.get(image.attrib["href"].removeprefix("http://archive.test"))
    assert cover.content == generate_cover(site.settings.site_title)


def test_series_channel(site: Site) -> None:
    feed_url = "http://archive.test/series/lectures/feed.xml"
    root = channel(site.feed("/series/lectures/feed.xml").content)
    assert root.findtext("title") == "Lectures"
    assert root.findtext("description") == "Inaugural and public lectures."
    assert root.findtext("podcast:medium", namespaces=NS) == "course"
    assert root.findtext("podcast:guid", namespaces=NS) == podcast_guid(feed_url)
    assert root.findtext("link") == "http://archive.test/series/lectures"


def test_series_cover_and_stored_guid(catalog: Catalog,
                                      make_client: Callable[..., TestClient]) -> None:
    stored = catalog.store.put_bytes("series/seminars/cover.jpg", generate_cover("Seminars"),
                                     "image/jpeg")
    series = Series.new("Seminars")
    series.cover = MediaFile(stored.key, "cover.jpg", "image/jpeg", stored.size, stored.sha256)
    series.podcast_guid = "917393e3-1b1e-5cef-ace4-edaa54e1f810"
    publish(catalog, "Seminar one", series=series, with_sidecars=False)
    root = channel(make_client().get("/series/seminars/feed.xml").content)
    assert root.findtext("podcast:guid", namespaces=NS) == series.podcast_guid
    image = root.find("itunes:image", NS)
    assert image is not None
    assert image.attrib["href"] == "http://archive.test/media/series/seminars/cover.jpg"


def test_person_channel(site: Site) -> None:
    root = channel(site.feed("/people/marie-dupont/feed.xml").content)
    assert root.findtext("title") == "Marie Dupont (Sciences Po)"
    assert "Marie Dupont" in (root.findtext("description") or "")
    assert root.findtext("link") == "http://archive.test/people/marie-dupont"


def test_media_host_does_not_leak_into_feeds(site: Site,
                                            make_client: Callable[..., TestClient]) -> None:
    client = make_client(media_url="https://cdn.example.org")
    xml = client.get("/feed.xml").content
    links = [link for link, _ in media_links(xml)]
    assert links and all(link.startswith("http://archive.test/media/") for link in links)
    enclosure = links[0].removeprefix("http://archive.test")
    redirect = client.get(enclosure, follow_redirects=False)
    assert redirect.status_code == 302
    assert redirect.headers["location"].startswith("https://cdn.example.org/")


def test_empty_archive_has_a_valid_feed(client: TestClient) -> None:
    response = client.get("/feed.xml")
    assert response.status_code == 200
    parsed = feedparser.parse(response.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.entries == []


# --- changes ----------------------------------------------------------------------------------


def test_etag_changes_only_with_the_feeds_content(site: Site, catalog: Catalog) -> None:
    before = site.feed()
    lectures_before = site.feed("/series/lectures/feed.xml")
    added = publish(catalog, "Roundtable: Trust after the Cold War", with_sidecars=False)
    after = wait_for(lambda: (r := site.feed()).headers["etag"] != before.headers["etag"] and r)
    assert added.guid in guids(after.content)
    assert site.feed(**{"if-none-match": before.headers["etag"]}).status_code == 200
    assert site.feed().content == after.content
    # The lectures feed did not change: same bytes, same tag.
    lectures_after = site.feed("/series/lectures/feed.xml")
    assert lectures_after.content == lectures_before.content
    assert lectures_after.headers["etag"] == lectures_before.headers["etag"]


# --- real parsers ------------------------------------------------------------------------------


def test_podcastparser_reads_the_live_feed(site: Site) -> None:
    feed = podcastparser.parse("http://archive.test/feed.xml", io.BytesIO(site.feed().content))
    assert feed["title"] == site.settings.site_title
    audio = {e["guid"]: e["enclosures"][0] for e in feed["episodes"]}
    assert set(audio) == {site.roundtable.guid, site.lecture.guid}
    for episode in (site.roundtable, site.lecture):
        assert audio[episode.guid]["file_size"] == episode.files["audio"].size
        assert audio[episode.guid]["mime_type"] == "audio/mpeg"


def test_feedparser_reads_every_live_feed(site: Site) -> None:
    for path in feed_paths(site):
        parsed = feedparser.parse(site.feed(path).content)
        assert parsed.bozo == 0, (path, parsed.get("bozo_exception"))
        assert parsed.version == "rss20"
        assert parsed.entries


def test_partytime_reads_the_live_feeds(site: Site) -> None:
    party = partytime(site.feed().content)
    assert {i["guid"] for i in party["items"]} == {site.roundtable.guid, site.lecture.guid}
    assert party["guid"] == podcast_guid("http://archive.test/feed.xml")
    lecture = next(i for i in party["items"] if i["guid"] == site.lecture.guid)
    assert lecture["enclosure"]["length"] == site.lecture.files["audio"].size
    assert lecture["podcastChapters"]["type"] == "application/json+chapters"
    assert lecture["podcastTranscripts"][0]["type"] == "text/vtt"
    assert lecture["alternativeEnclosures"][0]["length"] == site.lecture.files["original"].size
    series = partytime(site.feed("/series/lectures/feed.xml").content)
    assert series["medium"] == "course"
    assert [i["guid"] for i in series["items"]] == [site.lecture.guid]
