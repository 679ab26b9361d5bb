"""What the web layer tells the feed builder: the channel, and where each file is served."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import quote

from archive.models import LICENCES, MEDIUMS, Episode, Person
from feeds.categories import check_category

DEFAULT_CATEGORIES: tuple[tuple[str, str | None], ...] = (("Education", None), ("Government", None))


@dataclass(frozen=True)
class Channel:
    """One feed's channel-level metadata; validated on creation so a bad config fails at start."""

    title: str
    link: str
    feed_url: str
    description: str
    author: str
    owner_name: str
    owner_email: str
    image_url: str
    language: str = "en-gb"
    categories: tuple[tuple[str, str | None], ...] = DEFAULT_CATEGORIES
    explicit: bool = False
    type: Literal["episodic", "serial"] = "episodic"
    podcast_guid: str = ""
    locked: bool = True
    locked_owner: str = ""
    medium: Literal["podcast", "course"] = "podcast"
    license: str | None = None
    license_url: str = ""
    funding_url: str = ""
    funding_text: str = ""
    copyright: str = ""
    new_feed_url: str = ""
    persons: tuple[Person, ...] = ()

    def __post_init__(self) -> None:
        for name in ("title", "link", "feed_url", "description", "author", "image_url"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"Channel {name} must not be empty.")
        if not self.categories:
            raise ValueError("Channel needs at least one Apple Podcasts category.")
        for category, subcategory in self.categories:
            check_category(category, subcategory)
        if self.type not in ("episodic", "serial"):
            raise ValueError("Channel type must be 'episodic' or 'serial'.")
        if self.medium not in MEDIUMS:
            raise ValueError(f"Channel medium must be one of {', '.join(MEDIUMS)}.")
        if self.license is not None and self.license not in LICENCES:
            raise ValueError(f"Unknown licence {self.license!r}; use one of {', '.join(LICENCES)}.")


class FeedUrls(Protocol):
    """Absolute URLs for an episode's files and page; the web layer owns the URL scheme."""

    def media(self, episode: Episode, role: str) -> str: ...

    def page(self, episode: Episode) -> str: ...


class BaseUrls:
    """URLs under one public base (and optionally a separate media/CDN base)."""

    def __init__(self, base_url: str, media_base: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.media_base = (media_base or base_url).rstrip("/")

    def media(self, episode: Episode, role: str) -> str:
        filename = quote(episode.files[role].filename, safe="")
        return f"{self.media_base}/media/{episode.id}/{filename}"

    def page(self, episode: Episode) -> str:
        return f"{self.base_url}/episodes/{episode.slug}"
