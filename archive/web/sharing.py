"""Meeting listeners where they are: subscribe links for podcast apps, the feed's QR code,
and the `<iframe>` snippet that embeds the player elsewhere.

Pure functions of finished page data (no I/O), registered as template globals by `install`,
so the `_subscribe.html` and `_share.html` partials can be included in any page with one line.

Each app's link follows the format the app (or the database the apps keep up to date) documents:
- AntennaPod: "Add on AntennaPod" for podcasters,
  https://antennapod.org/documentation/podcasters-hosters/add-on-antennapod :
  `https://antennapod.org/deeplink/subscribe?url=FEED&title=TITLE`, both URL-encoded. A web
  page, so it works without the app too (it offers to install it).
- Pocket Casts, Overcast, Podcast Addict: the client database of the Podlove Subscribe Button
  (podlove.org/podlove-subscribe-button; podlove/podlove-subscribe-button, the clients list),
  which those apps' URL schemes are registered in:
  Pocket Casts `pktc://subscribe/FEED-WITHOUT-SCHEME` (iOS and Android),
  Overcast `overcast://x-callback-url/add?url=FEED` (iOS; the whole URL, encoded as a query value),
  Podcast Addict `podcastaddict://FEED-WITHOUT-SCHEME` (Android).
  These open only where the app is installed, and the button says so.
- Apple Podcasts documents no subscribe-by-feed link and Spotify none at all: a series links to
  its pages there when an editor has set them (`Series.apple_url`, `Series.spotify_url`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import segno
from markupsafe import escape

EMBED_HEIGHTS = {"episode": 260, "series": 480}


@dataclass(frozen=True)
class AppLink:
    name: str
    href: str
    note: str  # what the listener needs for the link to work, said on the button


@dataclass(frozen=True)
class DirectoryLink:
    label: str  # "Listen on Apple Podcasts"
    href: str


@dataclass(frozen=True)
class SubscribePanel:
    feed_url: str
    title: str
    apps: tuple[AppLink, ...]
    directories: tuple[DirectoryLink, ...]
    qr_data_uri: str  # an SVG as a data: URI (allowed by the CSP's img-src)
    qr_alt: str


def without_scheme(url: str) -> str:
    return url.split("://", 1)[1] if "://" in url else url


def app_links(feed_url: str, title: str) -> tuple[AppLink, ...]:
    """One link per app, in the format that app documents (see the module docstring)."""
    bare = without_scheme(feed_url)
    return (
        AppLink("AntennaPod",
                "https://antennapod.org/deeplink/subscribe?"
                + urlencode({"url": feed_url, "title": title}, quote_via=quote),
                "Android; opens a page that offers the app if it is not installed"),
        AppLink("Pocket Casts", f"pktc://subscribe/{quote(bare, safe='/:?=&%')}",
                "needs the Pocket Casts app installed (iPhone, Android)"),
        AppLink("Overcast", "overcast://x-callback-url/add?"
                + urlencode({"url": feed_url}, quote_via=quote),
                "needs the Overcast app installed (iPhone)"),
        AppLink("Podcast Addict", f"podcastaddict://{quote(bare, safe='/:?=&%')}",
                "needs the Podcast Addict app installed (Android)"),
    )


def directory_links(apple_url: str = "", spotify_url: str = "") -> tuple[DirectoryLink, ...]:
    found = []
    if apple_url:
        found.append(DirectoryLink("Listen on Apple Podcasts", apple_url))
    if spotify_url:
        found.append(DirectoryLink("Listen on Spotify", spotify_url))
    return tuple(found)


def qr_data_uri(text: str) -> str:
    """A QR code (error correction M: survives a smudged poster) as an SVG data: URI."""
    return str(segno.make(text, error="m", micro=False).svg_data_uri(scale=4, border=4))


def subscribe_panel(subscribe: Any) -> SubscribePanel:
    """Everything `_subscribe.html` shows, from a page's `views.Subscribe`."""
    if isinstance(subscribe, dict):  # the home page's: the whole archive's feed
        feed_url, title = subscribe["feed_url"], subscribe["title"]
    else:
        feed_url, title = subscribe.feed_url, subscribe.title
    return SubscribePanel(
        feed_url=feed_url,
        title=title,
        apps=app_links(feed_url, title),
        directories=directory_links(getattr(subscribe, "apple_url", ""),
                                    getattr(subscribe, "spotify_url", "")),
        qr_data_uri=qr_data_uri(feed_url),
        qr_alt=f"QR code of the feed address {feed_url}",
    )


def embed_url(page_url: str) -> str:
    """`/episodes/{slug}` → `/episodes/{slug}/embed`; the same for `/series/{slug}`."""
    return f"{page_url.rstrip('/')}/embed"


def embed_code(page_url: str, title: str, kind: str = "episode", width: int | str = "100%",
               height: int | None = None) -> str:
    """The `<iframe>` to paste into another site (the share panel and oEmbed give the same).
    Plain text: a template prints it escaped into a text field."""
    src = escape(embed_url(page_url))
    label = escape(f"{title} (audio player)")
    return (f'<iframe src="{src}" title="{label}" width="{escape(str(width))}" '
            f'height="{int(height or EMBED_HEIGHTS[kind])}" style="border:0;max-width:100%" '
            'loading="lazy" allow="autoplay; fullscreen"></iframe>')


def install(templates: Any) -> None:
    """Make the helpers available to every template (called once, in the app's lifespan)."""
    templates.env.globals.update(subscribe_panel=subscribe_panel, embed_code=embed_code,
                                 embed_url=embed_url)
