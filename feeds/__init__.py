"""Podcast feeds: RSS 2.0 with the iTunes and Podcasting 2.0 namespaces, built with feedgen.

Only this package imports feedgen; the rest of the code hands it `archive.models` objects.
"""

from __future__ import annotations

from feeds.build import MIME_TYPES, Fragments, build_feed, podcast_guid
from feeds.channel import BaseUrls, Channel, FeedUrls
from feeds.taxonomy import person_role
from feeds.text import sanitise_html

__all__ = [
    "MIME_TYPES",
    "BaseUrls",
    "Channel",
    "FeedUrls",
    "Fragments",
    "build_feed",
    "person_role",
    "podcast_guid",
    "sanitise_html",
]
