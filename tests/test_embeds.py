"""Embeds, oEmbed, Open Graph / Twitter player cards, the share panel and subscribe buttons,
over HTTP with the lifespan running on a real bucket (#15).

- The embed pages are the only framable ones (`frame-ancestors *`, no X-Frame-Options) and never
  set a cookie; every other page keeps refusing to be framed.
- oEmbed answers carry the fields the oEmbed 1.0 spec requires for type `rich`; 404 for URLs that
  are not ours, 501 for format=xml.
- Each subscribe link has the format its app documents (archive/web/sharing.py names them).
"""

from __future__ import annotations

import dataclasses
import re
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from starlette.testclient import TestClient

from archive.catalog import Catalog
from archive.models import Person, Series
from archive.web import sharing
from tests.browser import publish_recording

BASE = "http://archive.test"
HOSTILE = '"><script>alert(1)</script>'


class Tags(HTMLParser):
    """Every start tag with its attributes, and the text of textareas."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.textareas: dict[str, str] = {}
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.tags.append((tag, values))
        self._textarea = values.get("id") if tag == "textarea" else None

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.textareas[self._textarea] = self.textareas.get(self._textarea, "") + data

    def find(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        wanted = {k.rstrip("_").replace("_", "-"): v for k, v in attrs.items()}
        return [a for t, a in self.tags
                if t == tag and all(a.get(k) == v for k, v in wanted.items())]


def parse(html: str) -> Tags:
    tags = Tags()
    tags.feed(html)
    return tags


@pytest.fixture
def talk(catalog: Catalog) -> Any:
    return publish_recording(catalog, "Trust and Uncertainty", cues=[(0, 2, "Hello."),
                             (2, 4, "Trust.")], chapters=[(0.0, "Welcome"), (2.0, "Argument")],
                             speakers=[Person.parse("Nicholas J Wheeler;lecturer;Birmingham")])


def test_episode_embed_is_framable_by_anyone_and_sets_no_cookie(talk: Any,
                                                                 client: TestClient) -> None:
    client.cookies.set("archive_session", "not-a-valid-session")
    response = client.get(f"/episodes/{talk.slug}/embed")
    assert response.status_code == 200, response.text
    policy = response.headers["content-security-policy"]
    assert "frame-ancestors *" in policy and "'none'" not in policy.split("frame-ancestors")[1]
    assert "x-frame-options" not in response.headers
    assert "set-cookie" not in response.headers
    tags = parse(response.text)
    assert tags.find("h1") and "Trust and Uncertainty" in response.text
    assert "Nicholas J Wheeler" in response.text
    [audio] = tags.find("audio")
    assert audio["src"].startswith(f"/media/{talk.id}/")
    starts = [a["data-start"] for a in tags.find("a") if "data-start" in a]
    assert "0" in starts and "2" in starts  # chapters and transcript lines seek
    assert tags.find("link", rel="canonical")[0]["href"] == f"{BASE}/episodes/{talk.slug}"
    assert tags.find("script", src="/static/embed.js")


@pytest.mark.parametrize("path", ["/", "/episodes/{slug}", "/series/workshops", "/search",
                                  "/people/nicholas-j-wheeler", "/login", "/feed.xml",
                                  "/episodes/{slug}/transcript", "/oembed?url=x",
                                  "/episodes/no-such/embed"])
def test_every_other_answer_refuses_framing(talk: Any, client: TestClient, path: str) -> None:
    response = client.get(path.format(slug=talk.slug))
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


def test_series_embed_lists_recent_recordings_with_the_newest_playing(
        catalog: Catalog, talk: Any, make_client: Any) -> None:
    second = publish_recording(catalog, "A Second Workshop")
    client = make_client()
    response = client.get("/series/workshops/embed")
    assert response.status_code == 200
    assert "frame-ancestors *" in response.headers["content-security-policy"]
    assert "x-frame-options" not in response.headers and "set-cookie" not in response.headers
    tags = parse(response.text)
    listed = [a["href"] for a in tags.find("a") if a.get("href", "").endswith("/embed")]
    assert {f"/episodes/{talk.slug}/embed", f"/episodes/{second.slug}/embed"} <= set(listed)
    assert len(tags.find("audio")) == 1
    assert client.get("/series/no-such-series/embed").status_code == 404


def test_drafts_and_unknown_recordings_have_no_embed(catalog: Catalog, make_client: Any) -> None:
    draft = publish_recording(catalog, "Not Yet Public", draft=True)
    client = make_client()
    assert client.get(f"/episodes/{draft.slug}/embed").status_code == 404
    assert oembed(client, f"{BASE}/episodes/{draft.slug}").status_code == 404
    assert oembed(client, f"{BASE}/e/{draft.id}").status_code == 404
    assert client.get("/episodes/%3Cscript%3E/embed").status_code == 404
    assert client.head("/series/workshops/embed").status_code == 404  # nothing published


def oembed(client: TestClient, url: str, **params: str) -> Any:
    return client.get("/oembed", params={"url": url, "format": "json", **params})


# The oEmbed 1.0 spec, section 2.3.4: every response has type and version "1.0"; a rich
# response has html, width and height; thumbnail_url/width/height come all together or not at all.
def check_oembed_fields(answer: dict[str, Any]) -> None:
    assert answer["version"] == "1.0"
    assert answer["type"] == "rich"
    assert isinstance(answer["html"], str) and answer["html"].startswith("<iframe ")
    assert isinstance(answer["width"], int) and answer["width"] > 0
    assert isinstance(answer["height"], int) and answer["height"] > 0
    thumbnail = {"thumbnail_url", "thumbnail_width", "thumbnail_height"} & set(answer)
    assert thumbnail in (set(), {"thumbnail_url", "thumbnail_width", "thumbnail_height"})
    for name in ("title", "author_name", "author_url", "provider_name", "provider_url"):
        assert name not in answer or isinstance(answer[name], str)


def test_oembed_answers_a_rich_iframe_for_episodes_and_series(talk: Any,
                                                               client: TestClient) -> None:
    response = oembed(client, f"{BASE}/episodes/{talk.slug}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["access-control-allow-origin"] == "*"
    answer = response.json()
    check_oembed_fields(answer)
    assert answer["title"] == "Trust and Uncertainty"
    assert answer["author_name"] == "Nicholas J Wheeler"
    [frame] = parse(answer["html"]).find("iframe")
    assert frame["src"] == f"{BASE}/episodes/{talk.slug}/embed"
    assert frame["title"] and int(frame["width"]) == answer["width"]
    assert int(frame["height"]) == answer["height"]
    assert client.get(frame["src"]).status_code == 200

    permalink = oembed(client, f"{BASE}/e/{talk.id}").json()
    assert permalink["html"] == answer["html"]  # the permanent address names the same player

    series = oembed(client, f"{BASE}/series/workshops").json()
    check_oembed_fields(series)
    assert parse(series["html"]).find("iframe")[0]["src"] == f"{BASE}/series/workshops/embed"


def test_oembed_keeps_within_maxwidth_and_maxheight(talk: Any, client: TestClient) -> None:
    answer = oembed(client, f"{BASE}/episodes/{talk.slug}", maxwidth="300",
                    maxheight="200").json()
    check_oembed_fields(answer)
    assert answer["width"] <= 300 and answer["height"] <= 200
    tiny = oembed(client, f"{BASE}/episodes/{talk.slug}", maxwidth="90", maxheight="50").json()
    assert (tiny["width"], tiny["height"]) == (90, 50)  # never larger than asked


@pytest.mark.parametrize(("url", "params", "status"), [
    ("https://elsewhere.example/episodes/{slug}", {}, 404),  # not our site
    (BASE + "/episodes/no-such-recording", {}, 404),
    (BASE + "/series/no-such-series", {}, 404),
    (BASE + "/search?q=trust", {}, 404),  # ours, but not something to embed
    (BASE + "/episodes/{slug}", {"format": "xml"}, 501),  # the spec's answer to a format we lack
    (BASE + "/episodes/{slug}", {"format": "yaml"}, 422),
    (BASE + "/episodes/{slug}", {"maxwidth": "-3"}, 422),
    (BASE + "/episodes/{slug}", {"maxwidth": "1e9"}, 422),
    ("", {}, 422),
    ("javascript:alert(1)", {}, 404),
])
def test_oembed_refuses_what_it_cannot_answer(talk: Any, client: TestClient, url: str,
                                              params: dict[str, str], status: int) -> None:
    query = {"url": url.format(slug=talk.slug), "format": "json", **params}
    assert client.get("/oembed", params=query).status_code == status


def test_pages_point_to_oembed_and_carry_player_cards(talk: Any, client: TestClient) -> None:
    for path, embed in ((f"/episodes/{talk.slug}", f"/episodes/{talk.slug}/embed"),
                        ("/series/workshops", "/series/workshops/embed")):
        tags = parse(client.get(path).text)
        [discovery] = tags.find("link", rel="alternate", type="application/json+oembed")
        found = urlsplit(discovery["href"])
        assert found.path == "/oembed"
        assert parse_qs(found.query) == {"url": [f"{BASE}{path}"], "format": ["json"]}
        answer = client.get(f"{found.path}?{found.query}")
        assert answer.status_code == 200
        check_oembed_fields(answer.json())
        metas = {m.get("name") or m.get("property"): m["content"] for m in tags.find("meta")
                 if m.get("name") or m.get("property")}
        assert metas["twitter:card"] == "player"
        assert metas["twitter:player"] == f"{BASE}{embed}"
        assert int(metas["twitter:player:width"]) > 0 < int(metas["twitter:player:height"])
        assert metas["og:video"] == f"{BASE}{embed}"
        assert metas["og:video:type"] == "text/html"


def test_share_panel_offers_link_moment_and_iframe_code_as_text(talk: Any,
                                                                client: TestClient) -> None:
    tags = parse(client.get(f"/episodes/{talk.slug}").text)
    page_url = f"{BASE}/episodes/{talk.slug}"
    assert tags.find("input", id="share-link")[0]["value"] == page_url
    assert tags.find("input", id="share-moment")[0]["value"] == f"{page_url}#t=0"
    [frame] = parse(tags.textareas["share-embed"]).find("iframe")
    assert frame["src"] == f"{page_url}/embed" and frame["title"]
    for target in ("share-link", "share-moment", "share-embed"):
        assert tags.find("button", data_copy=target)  # copy buttons (shown by JS)
        assert any(label.get("for") == target for label in tags.find("label"))


def test_the_iframe_code_escapes_hostile_titles() -> None:
    code = sharing.embed_code("https://a.example/episodes/x", HOSTILE)
    [frame] = parse(code).find("iframe")
    assert frame["title"] == f"{HOSTILE} (audio player)"
    assert "<script>" not in code


# Each app's documented subscribe link (see archive/web/sharing.py for the documents).
APP_FORMATS = {
    "AntennaPod": re.compile(r"^https://antennapod\.org/deeplink/subscribe\?url=[^&]+&title=.+$"),
    "Pocket Casts": re.compile(r"^pktc://subscribe/(?!https?:)[^\s]+$"),
    "Overcast": re.compile(r"^overcast://x-callback-url/add\?url=https?%3A%2F%2F[^\s]+$"),
    "Podcast Addict": re.compile(r"^podcastaddict://(?!https?:)[^\s]+$"),
}


def feed_in(app: str, href: str) -> str:
    """The feed address an app would read from its link."""
    if app in ("AntennaPod", "Overcast"):
        return parse_qs(urlsplit(href).query)["url"][0]
    bare = href.removeprefix("pktc://subscribe/").removeprefix("podcastaddict://")
    return bare


def subscribe_links(html: str) -> dict[str, str]:
    tags = parse(html)
    names = re.findall(r'<a class="subscribe-app" href="([^"]+)">([^<]+)</a>', html)
    assert names, "no subscribe buttons"
    assert len(tags.find("a", class_="subscribe-app")) == len(names)
    return {name: unescape(href) for href, name in names}


@pytest.mark.parametrize(("path", "feed"), [
    ("/", f"{BASE}/feed.xml"),
    ("/series/workshops", f"{BASE}/series/workshops/feed.xml"),
    ("/people/nicholas-j-wheeler", f"{BASE}/people/nicholas-j-wheeler/feed.xml"),
])
def test_subscribe_buttons_follow_each_apps_documented_format(talk: Any, client: TestClient,
                                                              path: str, feed: str) -> None:
    html = client.get(path).text
    links = subscribe_links(html)
    assert set(links) == set(APP_FORMATS)
    for app, href in links.items():
        assert APP_FORMATS[app].match(href), (app, href)
        read = feed_in(app, href)
        assert read in (feed, feed.split("://", 1)[1]), (app, read)
    antennapod = parse_qs(urlsplit(links["AntennaPod"]).query)
    assert antennapod["title"][0]  # the documented title parameter
    tags = parse(html)
    assert any(i.get("value") == feed for i in tags.find("input", readonly=""))  # "any app"
    [qr] = [i for i in tags.find("img") if i.get("src", "").startswith("data:image/svg+xml")]
    assert feed in qr["alt"]  # the QR code's text alternative names the address
    assert sharing.qr_data_uri(feed) == qr["src"]
    # Buttons that need the app installed say so.
    for app in ("Pocket Casts", "Overcast", "Podcast Addict"):
        assert re.search(re.escape(app) + r"</a> <span class=\"subscribe-note\">\(needs the ",
                         html), app


def test_directory_links_appear_only_when_set(catalog: Catalog, talk: Any,
                                              make_client: Any) -> None:
    assert "Listen on Apple Podcasts" not in make_client().get("/series/workshops").text

    def set_urls(data: Any) -> None:
        series = data.series["workshops"]
        data.series["workshops"] = dataclasses.replace(
            series, apple_url="https://podcasts.apple.com/gb/podcast/workshops/id123",
            spotify_url="https://open.spotify.com/show/abc")

    catalog.change(set_urls)
    tags = parse(make_client().get("/series/workshops").text)
    hrefs = [a["href"] for a in tags.find("a")]
    assert "https://podcasts.apple.com/gb/podcast/workshops/id123" in hrefs
    assert "https://open.spotify.com/show/abc" in hrefs


def test_series_directory_addresses_round_trip_and_are_checked() -> None:
    series = Series.new("Lectures")
    data = {**series.to_dict(), "apple_url": "https://podcasts.apple.com/x/id1",
            "old_feed_url": "https://old.example/feed"}
    again = Series.from_dict(data)
    assert again.apple_url == "https://podcasts.apple.com/x/id1"
    assert again.old_feed_url == "https://old.example/feed"
    assert Series.from_dict(again.to_dict()) == again
    assert "spotify_url" not in series.to_dict()  # old catalogues stay as they were
    with pytest.raises(Exception, match="must start with https"):
        Series.from_dict({**data, "spotify_url": "javascript:alert(1)"})


def test_app_links_encode_awkward_feed_addresses() -> None:
    feed = "https://a.example/feeds/trust & power.xml?x=1"
    links = {app.name: app.href for app in sharing.app_links(feed, "Trust & Power")}
    assert parse_qs(urlsplit(links["AntennaPod"]).query) == {"url": [feed],
                                                            "title": ["Trust & Power"]}
    assert parse_qs(urlsplit(links["Overcast"]).query) == {"url": [feed]}
    assert " " not in links["Pocket Casts"] and " " not in links["Podcast Addict"]
    assert links["Pocket Casts"] == "pktc://subscribe/" + quote(
        "a.example/feeds/trust & power.xml?x=1", safe="/:?=&%")
