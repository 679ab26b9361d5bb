"""Build the RSS 2.0 + iTunes + Podcasting 2.0 feed for a channel and its episodes.

Pure: no I/O and no clock. The same inputs give the same bytes, so HTTP validators (ETag,
Last-Modified) stay stable and podcast apps do not re-download an unchanged feed.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

from feedgen.entry import FeedEntry
from feedgen.feed import FeedGenerator
from lxml import etree

from archive.models import Episode, Location, MediaFile, Person
from feeds.channel import Channel, FeedUrls
from feeds.extension import Element, PodcastIndexEntryExtension, PodcastIndexExtension
from feeds.taxonomy import person_role
from feeds.text import html_to_text, limited_html, sanitise_html, truncate_utf8, xml_safe

GENERATOR = "archive feeds (python-feedgen)"
MAX_DESCRIPTION_BYTES = 4000
MAX_LOCATION_CHARS = 128
# lastBuildDate of a feed with no episodes: fixed, so an empty feed is byte-stable too.
EMPTY_FEED_DATE = datetime(2000, 1, 1, tzinfo=UTC)
PODCAST_GUID_NAMESPACE = uuid.UUID("ead4c236-bf58-58c6-a2c6-a6b28d128cb6")

# Enclosure type follows the file extension, which is what podcast apps and Apple check.
MIME_TYPES: Mapping[str, str] = {
    ".mp3": "audio/mpeg",
    ".m4a": "audio/x-m4a",
    ".mp4": "video/mp4",
    ".m4v": "video/x-m4v",
    ".mov": "video/quicktime",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".opus": "audio/opus",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".vtt": "text/vtt",
    ".srt": "application/x-subrip",
    ".json": "application/json",
}
ALTERNATE_ENCLOSURES = (("video", "Video"), ("original", "Original recording"))


def podcast_guid(feed_url: str) -> str:
    """The Podcasting 2.0 guid: uuid5 of the feed URL without scheme and trailing slashes."""
    parts = urlsplit(feed_url.strip())
    bare = feed_url.strip()[len(parts.scheme) + 3 :] if parts.scheme else feed_url.strip()
    return str(uuid.uuid5(PODCAST_GUID_NAMESPACE, bare.rstrip("/")))


def mime_type(media: MediaFile) -> str:
    """The type for the file's extension; the stored content type only for unknown extensions."""
    suffix = PurePosixPath(media.filename).suffix.lower()
    return MIME_TYPES.get(suffix) or media.content_type or "application/octet-stream"


def sri_sha256(hex_digest: str) -> str:
    """Subresource Integrity value (`sha256-<base64>`) from our lower-case hex checksum."""
    return "sha256-" + base64.b64encode(binascii.unhexlify(hex_digest)).decode("ascii")


def public_url(url: str) -> str:
    """ASCII-only permanent URL: non-ASCII is percent-encoded; a query string means expiry."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"Feed URL {url!r} must be absolute http(s).")
    if parts.query or parts.fragment:
        raise ValueError(f"Feed URL {url!r} must not carry a query string (presigned URL?).")
    return quote(url, safe=":/%@!$&'()*+,;=-._~")


@dataclass
class Fragments:
    """The `<item>` fragments of one feed's last build, for the next build to reuse.

    An item is rebuilt only when its episode is a different object (catalogue snapshots share
    the objects of unchanged episodes), its series title changed, or the channel did; so after
    one edit a feed of thousands of items costs one item's build and a join.
    """

    channel: Channel | None = None
    items: dict[int, tuple[Episode, str | None, bytes]] = field(default_factory=dict)


def build_feed(
    channel: Channel,
    episodes: Sequence[Episode],
    urls: FeedUrls,
    *,
    series_titles: Mapping[str, str] | None = None,
    limit: int | None = None,
    fragments: Fragments | None = None,
) -> bytes:
    """RSS 2.0 bytes (UTF-8) of the published episodes with audio, newest first (at most
    `limit`); with `fragments`, items unchanged since the last build are reused."""
    included = feed_episodes(episodes, limit)
    titles = series_titles or {}
    head, tail = feed_frame(channel, included)
    kept = fragments.items if fragments is not None and fragments.channel == channel else {}
    items: dict[int, tuple[Episode, str | None, bytes]] = {}
    missing = []
    for episode in included:
        title = titles.get(episode.series)
        found = kept.get(id(episode))
        if found is not None and found[0] is episode and found[1] == title:
            items[id(episode)] = found
        else:
            missing.append(episode)
    for episode, body in zip(missing, item_fragments(channel, missing, urls, titles),
                             strict=True):
        items[id(episode)] = (episode, titles.get(episode.series), body)
    if fragments is not None:
        fragments.channel, fragments.items = channel, items
    return head + b"".join(item_line(items[id(e)][2]) for e in included) + tail


def feed_episodes(episodes: Iterable[Episode], limit: int | None = None) -> list[Episode]:
    """What a feed carries: published episodes with audio, newest first, at most `limit`."""
    candidates = (e for e in episodes if not e.draft and e.has_audio)
    return (heapq.nlargest(limit, candidates, key=_newest_first_key) if limit is not None
            else sorted(candidates, key=_newest_first_key, reverse=True))


def feed_frame(channel: Channel, included: Sequence[Episode]) -> tuple[bytes, bytes]:
    """The document before its first item and after its last, so items (built once and
    kept) are joined or streamed between them."""
    whole = _feed_generator(channel, last_build=_last_change(included)).rss_str(
        pretty=True, encoding="UTF-8", xml_declaration=True)
    end = whole.rindex(b"</channel>")
    return whole[:end].rstrip(b" "), b"  " + whole[end:]


def item_line(item: bytes) -> bytes:
    """An item as it stands in the document (indented, one per line)."""
    return b"    " + item + b"\n"


def item_fragments(channel: Channel, episodes: Sequence[Episode], urls: FeedUrls,
                   titles: Mapping[str, str]) -> list[bytes]:
    """Each episode's `<item>` as feedgen writes it, without namespace declarations (the
    document's root carries them)."""
    if not episodes:
        return []
    fg = _feed_generator(channel, last_build=EMPTY_FEED_DATE)
    for episode in episodes:
        entry = fg.add_entry(order="append")
        _fill_entry(entry, episode, channel, urls, titles.get(episode.series))
    root = etree.fromstring(fg.rss_str(pretty=True, encoding="UTF-8", xml_declaration=True),
                            _PARSER)
    return [_ITEM_START.sub(b"<item>", etree.tostring(item, encoding="UTF-8",
                                                      with_tail=False), count=1)
            for item in root.iter("item")]


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True,
                          strip_cdata=False)
_ITEM_START = re.compile(rb"^<item(?: xmlns(?::\w+)?=\"[^\"]*\")*>")


def _newest_first_key(episode: Episode) -> tuple[datetime, date, str]:
    """The id settles ties: unlike the guid, it is read without unpacking the episode."""
    return (episode.published_at, episode.date or date.min, episode.id)


def _last_change(episodes: Sequence[Episode]) -> datetime:
    """The newest edit or publication: changes exactly when the feed's content may have."""
    moments = [max(e.updated_at, e.published_at) for e in episodes]
    return max(moments, default=EMPTY_FEED_DATE)


def _feed_generator(channel: Channel, *, last_build: datetime) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("podcast")
    fg.register_extension("podcastindex", PodcastIndexExtension, PodcastIndexEntryExtension)
    _fill_channel_core(fg, channel, last_build)
    _fill_channel_itunes(fg, channel)
    fg.podcastindex.elements.extend(_channel_elements(channel))
    return fg


def _fill_channel_core(fg: FeedGenerator, channel: Channel, last_build: datetime) -> None:
    fg.title(xml_safe(channel.title))
    # The RSS <link> is feedgen's last link() call: the self link must come first.
    fg.link(href=public_url(channel.feed_url), rel="self", type="application/rss+xml")
    fg.link(href=public_url(channel.link), rel="alternate")
    fg.description(truncate_utf8(xml_safe(channel.description), MAX_DESCRIPTION_BYTES))
    fg.language(channel.language)
    if channel.copyright:
        fg.copyright(xml_safe(channel.copyright))
    fg.generator(GENERATOR)
    fg.image(
        url=public_url(channel.image_url),
        title=xml_safe(channel.title),
        link=public_url(channel.link),
    )
    fg.lastBuildDate(last_build.astimezone(UTC))


def _fill_channel_itunes(fg: FeedGenerator, channel: Channel) -> None:
    itunes = fg.podcast
    itunes.itunes_author(xml_safe(channel.author))
    itunes.itunes_owner(name=xml_safe(channel.owner_name), email=xml_safe(channel.owner_email))
    itunes.itunes_category([_category(cat, sub) for cat, sub in channel.categories])
    itunes.itunes_type(channel.type)
    if channel.new_feed_url:
        itunes.itunes_new_feed_url(public_url(channel.new_feed_url))


def _category(category: str, subcategory: str | None) -> dict[str, str]:
    return {"cat": category, "sub": subcategory} if subcategory else {"cat": category}


def _channel_elements(channel: Channel) -> list[Element]:
    """itunes:image/explicit (feedgen mangles both) and the channel's podcast:* tags."""
    elements = [
        Element("itunes:image", attrs={"href": public_url(channel.image_url)}),
        Element("itunes:explicit", _true_false(channel.explicit)),
        Element("podcast:guid", channel.podcast_guid or podcast_guid(channel.feed_url)),
        Element(
            "podcast:locked",
            "yes" if channel.locked else "no",
            {"owner": channel.locked_owner or None},
        ),
        Element("podcast:medium", channel.medium),
    ]
    if channel.license:
        elements.append(
            Element(
                "podcast:license",
                channel.license,
                {"url": public_url(channel.license_url) if channel.license_url else None},
            )
        )
    if channel.funding_url:
        text = channel.funding_text or f"Support {channel.title}"
        elements.append(
            Element("podcast:funding", text[:128], {"url": public_url(channel.funding_url)})
        )
    elements.extend(_person_element(person) for person in channel.persons)
    return elements


def _fill_entry(
    entry: FeedEntry, episode: Episode, channel: Channel, urls: FeedUrls, series_title: str | None
) -> None:
    audio = episode.files["audio"]
    entry.title(xml_safe(episode.title))
    entry.guid(xml_safe(episode.guid), permalink=False)
    entry.link(href=public_url(urls.page(episode)))
    entry.pubDate(episode.published_at.astimezone(UTC))
    entry.enclosure(public_url(urls.media(episode, "audio")), str(audio.size), mime_type(audio))
    notes = episode.description or episode.title
    short_notes = limited_html(notes, MAX_DESCRIPTION_BYTES)
    entry.description(short_notes)
    entry.content(sanitise_html(notes))
    if series_title:
        entry.category(term=xml_safe(series_title))
    _fill_entry_itunes(entry, episode, channel, summary=html_to_text(short_notes))
    entry.podcastindex.elements.extend(_item_elements(episode, channel, urls))


def _fill_entry_itunes(
    entry: FeedEntry, episode: Episode, channel: Channel, *, summary: str
) -> None:
    itunes = entry.podcast
    itunes.itunes_author(xml_safe(_speaker_names(episode) or channel.author))
    if episode.duration is not None:
        itunes.itunes_duration(int(episode.duration + 0.5))
    itunes.itunes_episode_type(episode.episode_type)
    if episode.season is not None:
        itunes.itunes_season(episode.season)
    if episode.number is not None:
        itunes.itunes_episode(episode.number)
    itunes.itunes_summary(summary)


def _speaker_names(episode: Episode) -> str:
    return ", ".join(person.name for person in episode.speakers)


def _item_elements(episode: Episode, channel: Channel, urls: FeedUrls) -> list[Element]:
    elements = [Element("itunes:explicit", _true_false(episode.explicit))]
    if "cover" in episode.files:
        elements.append(
            Element("itunes:image", attrs={"href": public_url(urls.media(episode, "cover"))})
        )
    if episode.season is not None:
        elements.append(Element("podcast:season", str(episode.season)))
    if episode.number is not None:
        elements.append(Element("podcast:episode", str(episode.number)))
    elements.extend(_transcript_elements(episode, channel, urls))
    if "chapters" in episode.files:
        elements.append(
            Element(
                "podcast:chapters",
                attrs={
                    "url": public_url(urls.media(episode, "chapters")),
                    "type": "application/json+chapters",
                },
            )
        )
    elements.extend(_person_element(person) for person in _item_persons(episode, channel))
    if episode.location is not None:
        elements.append(_location_element(episode.location))
    elements.extend(_alternate_enclosures(episode, urls))
    return elements


def _transcript_elements(episode: Episode, channel: Channel, urls: FeedUrls) -> list[Element]:
    """Every form of the transcript: WebVTT and SRT captions, Podcasting 2.0 JSON, and the
    transcript's own web page (apps that show text link readers there)."""
    language = episode.transcript_language or episode.language or channel.language
    found: list[tuple[str, str, str | None]] = []
    if "transcript" in episode.files:
        found.append((urls.media(episode, "transcript"), "text/vtt", "captions"))
    srt = "transcript_srt" if "transcript_srt" in episode.files else "transcript_source"
    source = episode.files.get(srt)
    if source is not None and source.filename.lower().endswith(".srt"):
        found.append((urls.media(episode, srt), "application/x-subrip", "captions"))
    if "transcript_json" in episode.files:
        found.append((urls.media(episode, "transcript_json"), "application/json", None))
    if "transcript" in episode.files:
        found.append((f"{urls.page(episode)}/transcript", "text/html", None))
    return [
        Element("podcast:transcript", attrs={"url": public_url(url), "type": kind,
                                             "language": language, "rel": rel})
        for url, kind, rel in found
    ]


def _item_persons(episode: Episode, channel: Channel) -> list[Person]:
    """Speakers, then the channel's hosts again: an item's persons replace the channel's."""
    names = {person.name for person in episode.speakers}
    return [*episode.speakers, *(p for p in channel.persons if p.name not in names)]


def _person_element(person: Person) -> Element:
    """The ORCID iD is the person's `href` when they have one (a scholar's lasting identifier),
    else their homepage; `img` is their portrait."""
    role, group = person_role(person.role)
    href = person.orcid_url or person.url
    return Element(
        "podcast:person",
        person.name[:128],
        {"role": role, "group": group, "href": _person_link(href),
         "img": _person_link(person.image)},
    )


def _person_link(url: str) -> str | None:
    """A person's link as a feed may carry it; one it cannot (a query string) is left out
    rather than failing the whole feed."""
    try:
        return public_url(url) if url else None
    except ValueError:
        return None


def _location_element(location: Location) -> Element:
    return Element(
        "podcast:location",
        location.name[:MAX_LOCATION_CHARS],
        {
            "geo": location.geo or None,
            "osm": location.osm or None,
            "country": location.country.lower() or None,
        },
    )


def _alternate_enclosures(episode: Episode, urls: FeedUrls) -> list[Element]:
    elements = []
    for role, title in ALTERNATE_ENCLOSURES:
        media = episode.files.get(role)
        if media is None:
            continue
        children = [Element("podcast:source", attrs={"uri": public_url(urls.media(episode, role))})]
        if media.sha256:
            children.append(
                Element(
                    "podcast:integrity", attrs={"type": "sri", "value": sri_sha256(media.sha256)}
                )
            )
        elements.append(
            Element(
                "podcast:alternateEnclosure",
                attrs={
                    "type": mime_type(media),
                    "length": str(media.size),
                    "title": title,
                    "height": str(media.height) if media.height else None,
                    "bitrate": str(media.bitrate) if media.bitrate else None,
                },
                children=children,
            )
        )
    return elements


def _true_false(flag: bool) -> str:
    return "true" if flag else "false"
