"""`archive import --feed`: moving in from another host (#15), end to end on a real bucket.

Feeds in the shapes Apple's sample feed, Podlove Publisher and Castopod write
(tests/data/feeds/) are served with their enclosures, artwork, chapters and transcripts by a
local HTTP server that honours ranges (and can cut a download short). Checked: metadata and
sidecars arrive, every item's guid, its publication time and the show's podcast:guid are kept,
re-running adds nothing, a dry run changes nothing, interrupted downloads resume with Range,
hostile feeds (DTD, entities) and private addresses are refused in one line.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image

from archive.catalog import Catalog
from archive.config import Settings
from archive.editing import delete_episode
from archive.errors import InvalidInput
from archive.feed_import import Fetched, metadata_for, parse_feed, plan, run_import
from archive.models import MAX_DESCRIPTION, MAX_TITLE, Series
from archive.runtime import Archive
from archive.safe_fetch import FetchError, download, fetch_bytes, open_url, resolve
from feeds import podcast_guid
from tests.cli import run_cli
from tests.media_samples import make_recording

FEEDS = Path(__file__).parent / "data" / "feeds"
NS_ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
NS_PODCAST = "https://podcastindex.org/namespace/1.0"
SRT = b"1\n00:00:00,000 --> 00:00:01,000\nWelcome to the roundtable.\n\n" \
      b"2\n00:00:01,000 --> 00:00:02,000\nTrusting enemies.\n"
VTT = b"WEBVTT\n\n00:00.000 --> 00:01.000\nWillkommen.\n\n00:01.000 --> 00:02.000\nMisstrauen.\n"
CHAPTERS = json.dumps({"version": "1.2.0", "chapters": [
    {"startTime": 0, "title": "Opening"}, {"startTime": 1.0, "title": "Discussion"}]}).encode()


class Host:
    """The old host: files by path (query strings ignored), ranges, and cut-short downloads."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.cut_once: set[str] = set()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.redirects: dict[str, str] = {}
        host = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                host.requests.append((path, {k.lower(): v for k, v in self.headers.items()}))
                if path in host.redirects:
                    self.send_response(302)
                    self.send_header("Location", host.redirects[path])
                    self.end_headers()
                    return
                if path not in host.files:
                    self.send_error(404)
                    return
                body, kind = host.files[path]
                start = 0
                wanted = self.headers.get("Range", "")
                match = re.fullmatch(r"bytes=(\d+)-", wanted)
                if match and self.headers.get("If-Range") == '"v1"':
                    start = int(match.group(1))
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body) - start))
                self.send_header("ETag", '"v1"')
                self.end_headers()
                if path in host.cut_once and start == 0:
                    host.cut_once.discard(path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def feed(self, fixture: str, path: str) -> str:
        text = (FEEDS / fixture).read_text().replace("{base}", self.base)
        text = re.sub(r"\{length:([^}]+)\}",
                      lambda m: str(len(self.files[self._by_name(m.group(1))][0])), text)
        self.files[path] = (text.encode(), "application/rss+xml")
        return f"{self.base}{path}"

    def _by_name(self, name: str) -> str:
        return next(p for p in self.files if p.rsplit("/", 1)[-1] == name)


def jpeg(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1400, 1400), colour).save(out, "JPEG", quality=70)
    return out.getvalue()


@pytest.fixture(scope="module")
def old_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    host = Host()
    folder = tmp_path_factory.mktemp("old-host")
    media = {"/media/trailer.mp3": 330, "/media/prep.mp3": 440, "/media/vp002.mp3": 550,
             "/media/vp001.mp3": 660, "/@trust/episodes/trusting-enemies.mp3": 770}
    for path, frequency in media.items():
        audio = make_recording(folder / f"{frequency}.mp3", "mp3", seconds=2.0,
                               frequency=frequency).read_bytes()
        host.files[path] = (audio, "audio/mpeg")
    host.files["/art/show.jpg"] = (jpeg((20, 60, 120)), "image/jpeg")
    host.files["/art/episode.jpg"] = (jpeg((120, 60, 20)), "image/jpeg")
    host.files["/podlove/vp002.vtt"] = (VTT, "text/vtt")
    host.files["/@trust/episodes/trusting-enemies.srt"] = (SRT, "application/x-subrip")
    host.files["/@trust/episodes/trusting-enemies/chapters.json"] = (
        CHAPTERS, "application/json+chapters")
    host.thread.start()
    yield host
    host.server.shutdown()


def imported(settings: Settings, source: str, **options: Any) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_import(settings, source=source, series=options.get("series"),
                      dry_run=options.get("dry_run", False), allow_private=True,
                      concurrency=options.get("concurrency", 2), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def by_guid(catalog: Catalog) -> dict[str, Any]:
    return {e.guid: e for e in catalog.refresh().data.episodes.values()}


def test_castopod_feed_moves_in_with_guids_people_chapters_and_transcript(
        old_host: Host, settings: Settings, catalog: Catalog, make_client: Any) -> None:
    feed = old_host.feed("castopod.xml", "/@trust/feed.xml")
    dry = run_cli(settings, "import", "--feed", feed, "--dry-run", "--allow-private")
    assert dry.returncode == 0, dry.stderr
    assert "would import: 2025-03-12 Trusting Enemies" in dry.stdout
    assert "skipped: item 2" in dry.stdout  # a post without an enclosure
    assert not catalog.refresh().data.episodes  # the dry run changed nothing

    first = run_cli(settings, "import", "--feed", feed, "--allow-private")
    assert first.returncode == 0, first.stderr
    episodes = by_guid(catalog)
    guid = f"{old_host.base}/@trust/episodes/trusting-enemies"
    assert set(episodes) == {guid}
    episode = episodes[guid]
    assert episode.title == "Trusting Enemies"
    assert episode.published_at == datetime(2025, 3, 12, 18, 30, tzinfo=UTC)
    assert (episode.season, episode.number, episode.explicit) == (2, 3, True)
    assert [(p.name, p.role) for p in episode.speakers] == [("Nicholas J Wheeler", "host"),
                                                           ("Jan Ruzicka", "guest")]
    assert [(c.start, c.title) for c in episode.chapters] == [(0, "Opening"),
                                                              (1.0, "Discussion")]
    assert {"audio", "original", "cover", "transcript", "chapters"} <= set(episode.files)
    assert "trusting enemies" in episode.description
    series = catalog.refresh().data.series[episode.series]
    assert series.podcast_guid == "0c2b4c8e-52a6-5e3b-9f2e-4f1a6d7c8b90"  # stays with the show
    assert series.old_feed_url == feed
    assert series.cover is not None  # the old show's artwork

    # Our feed now answers for the show with the same guids, so apps download nothing again.
    xml = make_client().get(f"/series/{series.slug}/feed.xml").text
    assert f"<podcast:guid>{series.podcast_guid}</podcast:guid>" in xml
    assert f'<guid isPermaLink="false">{guid}</guid>' in xml

    again = run_cli(settings, "import", "--feed", feed, "--allow-private")
    assert again.returncode == 0, again.stderr
    assert "already here: Trusting Enemies" in again.stdout
    assert "0 imported" not in again.stdout or "1 already here" in again.stdout
    assert set(by_guid(catalog)) == {guid}


def test_apple_sample_feed_keeps_the_order_and_a_guid_derived_from_the_old_address(
        old_host: Host, settings: Settings, catalog: Catalog) -> None:
    feed = old_host.feed("apple_sample.xml", "/apple.xml")
    code, out, err = imported(settings, feed, series="Hiking Treks")
    assert code == 0, err
    episodes = by_guid(catalog)
    assert set(episodes) == {"D03EEC9B-B1B4-475B-92C8-54F853FA2A22",
                             "22BCFEBF-44FB-4A19-8A75-1B5A8C8A0A6E"}
    trailer = episodes["D03EEC9B-B1B4-475B-92C8-54F853FA2A22"]
    first = episodes["22BCFEBF-44FB-4A19-8A75-1B5A8C8A0A6E"]
    assert trailer.episode_type == "trailer" and trailer.title == "Hiking Treks Trailer"
    assert (first.season, first.number) == (1, 1)
    assert first.published_at > trailer.published_at
    assert first.source_filename == "prep.mp3"  # the tracking query is not part of the name
    series = catalog.refresh().data.series["hiking-treks"]
    # No podcast:guid in the old feed: keep the one directories derived from its address.
    assert series.podcast_guid == podcast_guid(feed)
    assert out.index("Hiking Treks Trailer") < out.index("Preparing for a Hike")


def test_podlove_feed_brings_html_show_notes_and_a_webvtt_transcript(
        old_host: Host, settings: Settings, catalog: Catalog, archive: Archive) -> None:
    feed = old_host.feed("podlove.xml", "/podlove/feed/mp3/")
    code, _, err = imported(settings, feed, concurrency=1)
    assert code == 0, err
    episodes = by_guid(catalog)
    newer = episodes["podlove-2024-06-03t08:55:12+00:00-6a0c2f4e8b1d9e7"]
    assert "<strong>Misstrauen</strong>" in newer.description
    assert "transcript" in newer.files and newer.language == "de-de"
    series = catalog.refresh().data.series[newer.series]
    assert series.title == "Vertrauen & Politik"
    assert series.old_feed_url == f"{old_host.base}/podlove/feed/mp3/"

    # An episode deleted here (a takedown) is not brought back by running the move again.
    delete_episode(archive, newer.id, "test")
    code, out, err = imported(settings, feed)
    assert code == 0, err
    assert "deleted here, not imported again: VP002 Misstrauen" in out
    assert set(by_guid(catalog)) == {"podlove-2024-05-06t08:51:40+00:00-1f6e2b7c0a3d4c8"}


def test_a_broken_sidecar_is_left_out_and_the_episode_still_moves(
        old_host: Host, settings: Settings, catalog: Catalog, tmp_path: Path) -> None:
    small = io.BytesIO()
    Image.new("RGB", (100, 100), (0, 0, 0)).save(small, "JPEG")
    old_host.files["/art/tiny.jpg"] = (small.getvalue(), "image/jpeg")
    audio = make_recording(tmp_path / "odd.mp3", "mp3", seconds=2.0, frequency=880).read_bytes()
    old_host.files["/media/odd.mp3"] = (audio, "audio/mpeg")
    feed = (f'<rss version="2.0" xmlns:itunes="{NS_ITUNES}" xmlns:podcast="{NS_PODCAST}">'
            "<channel><title>Odd Show</title><item><title>Odd &amp; Ends</title>"
            f'<guid>odd-1</guid><enclosure url="{old_host.base}/media/odd.mp3" '
            f'type="audio/mpeg" length="{len(audio)}"/>'
            f'<itunes:image href="{old_host.base}/art/tiny.jpg"/>'
            f'<podcast:chapters url="{old_host.base}/gone.json" type="application/json+chapters"/>'
            "</item></channel></rss>")
    path = tmp_path / "odd.xml"
    path.write_text(feed)
    code, out, err = imported(settings, str(path))
    assert code == 0, err
    assert "note: artwork left out" in out and "note: chapters left out" in out
    episode = by_guid(catalog)["odd-1"]
    assert episode.title == "Odd & Ends" and "chapters" not in episode.files
    assert catalog.refresh().data.series[episode.series].old_feed_url == ""  # a file, no self


def test_an_interrupted_download_resumes_with_a_range(old_host: Host, tmp_path: Path) -> None:
    path = "/media/vp001.mp3"
    body = old_host.files[path][0]
    old_host.cut_once.add(path)
    target = tmp_path / "vp001.mp3"
    with pytest.raises(FetchError, match="run the import again"):
        download(f"{old_host.base}{path}", target, allow_private=True, limit=10 * 2**20)
    assert not target.exists() and (tmp_path / "vp001.mp3.part").stat().st_size < len(body)
    before = len(old_host.requests)
    download(f"{old_host.base}{path}", target, allow_private=True, limit=10 * 2**20)
    assert target.read_bytes() == body
    [(_, headers)] = old_host.requests[before:]
    assert headers["range"] == f"bytes={len(body) // 2}-" and headers["if-range"] == '"v1"'


def test_downloads_refuse_private_addresses_unless_allowed(old_host: Host,
                                                           settings: Settings) -> None:
    for address in ("127.0.0.1", "10.1.2.3", "169.254.169.254", "::1", "::ffff:127.0.0.1",
                    "192.168.0.1", "fe80::1"):
        with pytest.raises(FetchError, match="private, loopback or link-local"):
            resolve(address, 80, allow_private=False)
    with pytest.raises(FetchError, match="private"):
        resolve("localhost", 80, allow_private=False)
    result = run_cli(settings, "import", "--feed", f"{old_host.base}/apple.xml")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "--allow-private" in result.stderr


def test_redirects_are_checked_like_the_first_address(old_host: Host) -> None:
    old_host.redirects["/moved"] = "file:///etc/passwd"
    with pytest.raises(FetchError, match="Only http and https"):
        open_url(f"{old_host.base}/moved", allow_private=True)
    old_host.redirects["/loop"] = "/loop"
    with pytest.raises(FetchError, match="Too many redirects"):
        open_url(f"{old_host.base}/loop", allow_private=True)


@pytest.mark.parametrize("document", [
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
    b"<rss><channel><title>&b;</title></channel></rss>",
    b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<rss><channel><title>&x;</title></channel></rss>",
    b'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "http://127.0.0.1:9/evil.dtd"><rss/>',
])
def test_hostile_feeds_are_refused_before_anything_is_expanded(document: bytes) -> None:
    with pytest.raises(InvalidInput, match="DTD"):
        parse_feed(document)


@pytest.mark.parametrize("document", [b"", b"<rss><channel>", b"<html><body/></html>",
                                      b"\xff\xfe not xml"])
def test_broken_feeds_are_refused_in_one_line(document: bytes, tmp_path: Path,
                                              settings: Settings) -> None:
    with pytest.raises(InvalidInput):
        parse_feed(document)
    path = tmp_path / "feed.xml"
    path.write_bytes(document)
    result = run_cli(settings, "import", "--feed", path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_a_saved_feed_file_plans_against_what_is_already_here() -> None:
    text = (FEEDS / "apple_sample.xml").read_text().replace("{base}", "https://old.example")
    text = re.sub(r"\{length:[^}]+\}", "1000", text)
    show = parse_feed(text.encode())
    assert show.podcast_guid == "" and show.title == "Hiking Treks"
    work = plan(show, {"D03EEC9B-B1B4-475B-92C8-54F853FA2A22"})
    assert [i.title for i in work.new] == ["S01 EP01: Preparing for a Hike"]
    assert [i.title for i in work.present] == ["Hiking Treks Trailer"]


def test_an_existing_series_with_episodes_keeps_its_own_guid(
        old_host: Host, settings: Settings, catalog: Catalog) -> None:
    from tests.browser import WORKSHOPS, publish_recording

    publish_recording(catalog, "Already Here")
    before = catalog.refresh().data.series["workshops"].podcast_guid
    feed = old_host.feed("castopod.xml", "/@trust/feed.xml")
    code, out, err = imported(settings, feed, series=WORKSHOPS.title)
    assert code == 0, err
    series = catalog.refresh().data.series["workshops"]
    assert series.podcast_guid == before != "0c2b4c8e-52a6-5e3b-9f2e-4f1a6d7c8b90"
    assert series.old_feed_url == feed
    assert "1 imported" in out


def test_concurrency_is_bounded(settings: Settings) -> None:
    result = run_cli(settings, "import", "--feed", str(FEEDS / "castopod.xml"),
                     "--concurrency", "50")
    assert result.returncode == 1 and "--concurrency must be from 1 to 8" in result.stderr


def test_import_needs_a_manifest_or_a_feed(settings: Settings) -> None:
    result = run_cli(settings, "import")
    assert result.returncode == 1 and "MANIFEST" in result.stderr and "--feed" in result.stderr


@pytest.mark.parametrize("fixture", ["apple_sample.xml", "podlove.xml", "castopod.xml"])
def test_the_fixtures_are_feeds_real_parsers_accept(fixture: str) -> None:
    import feedparser
    import podcastparser

    text = (FEEDS / fixture).read_text().replace("{base}", "https://old.example")
    xml = re.sub(r"\{length:[^}]+\}", "1000", text).encode()
    parsed = feedparser.parse(xml)
    assert parsed.bozo == 0 and parsed.version == "rss20"
    episodes = [e for e in podcastparser.parse("https://old.example/feed.xml",
                                               io.BytesIO(xml))["episodes"] if e["enclosures"]]
    ours = parse_feed(xml).items
    assert len(episodes) == len(ours) == len(parsed.entries) - len(parse_feed(xml).skipped)
    # podcastparser resolves a guid against the feed's address (a guid is a permalink unless
    # it says otherwise); we keep the text the old feed wrote, which is what apps compare.
    assert {e["guid"] for e in episodes} == {urljoin("https://old.example/feed.xml", i.guid)
                                             for i in ours}


@given(st.binary(max_size=2000) | st.text(max_size=500).map(
    lambda t: f"<rss><channel><title>{t}</title><item>{t}</item></channel></rss>".encode()))
@hypothesis_settings(max_examples=200, deadline=None)
def test_any_bytes_are_a_feed_or_a_clear_refusal(data: bytes) -> None:
    try:
        show = parse_feed(data)
    except InvalidInput as error:
        assert error.message and "\n" not in error.message
    else:
        assert show.title


def test_overlong_metadata_is_cut_to_fit_not_refused() -> None:
    long_title = "Trust " * 200
    feed = (f"<rss><channel><title>{long_title}</title><item><title>{long_title}</title>"
            '<enclosure url="https://old.example/a.mp3" type="audio/mpeg"/>'
            f"<description>{'x' * 30_000}</description></item></channel></rss>").encode()
    [item] = parse_feed(feed).items
    meta = metadata_for(item, Series.new("Lectures"), Fetched(Path("a.mp3")))
    assert len(meta.title) <= MAX_TITLE and meta.title.endswith("…")
    assert len(meta.description) <= MAX_DESCRIPTION
    assert meta.guid == "https://old.example/a.mp3"  # no guid: the enclosure URL, as readers do


def test_addresses_with_unicode_are_encoded_not_crashed_on(old_host: Host) -> None:
    old_host.files["/media/caf%C3%A9%20talk.mp3"] = (b"ID3 tiny", "audio/mpeg")
    body = fetch_bytes(f"{old_host.base}/media/café talk.mp3", allow_private=True, limit=100)
    assert body == b"ID3 tiny"
    with pytest.raises(FetchError):
        fetch_bytes("http://exa mple.invalid/x", allow_private=True, limit=100)
