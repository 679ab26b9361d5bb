"""An episode as the public record scholarly services receive: OAI-PMH, BagIt, IIIF.

One place decides which fields leave the archive, so a harvester, a preservation bag and a
IIIF viewer all see the same thing, and only public things: this module reads the attributes
it names and nothing else (never `Episode.consent` or `source_filename`, see PRIVATE_FIELDS).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

from archive.config import Settings
from archive.models import LICENCE_URLS, LICENCES, RIGHTS_STATEMENTS, Episode, MediaFile, Series

# Roles that make someone an author of the recording (Dublin Core creator); the others
# (chair, discussant, convenor…) contributed to it.
CREATOR_ROLES = frozenset({"speaker", "lecturer", "panellist", "host", "co-host", "guest",
                           "narrator", "interviewee"})
MIME_TYPES = {".mp3": "audio/mpeg", ".m4a": "audio/mp4", ".mp4": "video/mp4",
              ".webm": "video/webm", ".vtt": "text/vtt", ".jpg": "image/jpeg",
              ".png": "image/png", ".json": "application/json"}


@dataclass(frozen=True)
class Agent:
    name: str
    role: str
    affiliation: str
    orcid: str  # bare iD
    homepage: str

    @property
    def creator(self) -> bool:
        return self.role in CREATOR_ROLES

    @property
    def orcid_url(self) -> str:
        return f"https://orcid.org/{self.orcid}" if self.orcid else ""


@dataclass(frozen=True)
class Delivery:
    url: str
    content_type: str
    size: int
    duration: float | None
    width: int | None
    height: int | None


@dataclass(frozen=True)
class PublicRecord:
    """What any outside service may know of an episode."""

    id: str
    guid: str
    title: str
    description: str
    date: str  # YYYY-MM-DD: the event's date, else the publication day
    updated_at: datetime  # UTC, whole seconds: the OAI datestamp
    language: str
    tags: tuple[str, ...]
    agents: tuple[Agent, ...]
    series_slug: str
    series_title: str
    series_url: str
    permalink: str  # /e/{id}: follows the episode if its slug changes
    page_url: str
    video: bool
    delivery: Delivery | None
    transcript_url: str
    cover_url: str
    rights_url: str
    rights_label: str
    publisher: str
    event: str
    location: str

    @property
    def dc_type(self) -> str:
        return "MovingImage" if self.video else "Sound"


def whole_seconds(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def media_url(base_url: str, episode: Episode, media: MediaFile) -> str:
    return f"{base_url}/media/{episode.id}/{quote(media.filename, safe='')}"


def mime_type(media: MediaFile) -> str:
    suffix = PurePosixPath(media.filename).suffix.lower()
    return MIME_TYPES.get(suffix) or media.content_type or "application/octet-stream"


def rights_of(episode: Episode, settings: Settings) -> tuple[str, str]:
    """(URL, label): the episode's licence, else its rights statement, else the site's licence."""
    if episode.licence:
        return LICENCE_URLS.get(episode.licence, ""), LICENCES[episode.licence]
    if episode.rights:
        return episode.rights, RIGHTS_STATEMENTS.get(episode.rights, "")
    if settings.licence:
        return LICENCE_URLS.get(settings.licence, ""), LICENCES.get(settings.licence, "")
    return "", ""


def delivery_file(episode: Episode) -> MediaFile | None:
    """What a listener plays: the video when there is one, else the audio."""
    return episode.files.get("video") or episode.files.get("audio")


def agents_of(episode: Episode) -> tuple[Agent, ...]:
    return tuple(Agent(name=p.name, role=p.role, affiliation=p.affiliation,
                       orcid=p.orcid, homepage=p.url) for p in episode.speakers)


def public_record(episode: Episode, series: Series | None, settings: Settings) -> PublicRecord:
    base = settings.base_url.rstrip("/")
    media = delivery_file(episode)
    delivery = None
    if media is not None:
        delivery = Delivery(media_url(base, episode, media), mime_type(media), media.size,
                            media.duration or episode.duration, media.width, media.height)
    transcript = episode.files.get("transcript")
    cover = episode.files.get("cover") or (series.cover if series else None)
    cover_url = ""
    if episode.files.get("cover") is not None:
        cover_url = media_url(base, episode, episode.files["cover"])
    elif cover is not None and series is not None:
        cover_url = f"{base}/media/series/{series.slug}/{quote(cover.filename, safe='')}"
    rights_url, rights_label = rights_of(episode, settings)
    return PublicRecord(
        id=episode.id,
        guid=episode.guid,
        title=episode.title,
        description=episode.description,
        date=(episode.date or episode.published_at.date()).isoformat(),
        updated_at=whole_seconds(episode.updated_at),
        language=episode.language,
        tags=tuple(episode.tags),
        agents=agents_of(episode),
        series_slug=episode.series,
        series_title=series.title if series else episode.series,
        series_url=f"{base}/series/{episode.series}",
        permalink=f"{base}/e/{episode.id}",
        page_url=f"{base}/episodes/{episode.slug}",
        video="video" in episode.files or bool(media and media.content_type.startswith("video")),
        delivery=delivery,
        transcript_url=media_url(base, episode, transcript) if transcript else "",
        cover_url=cover_url,
        rights_url=rights_url,
        rights_label=rights_label,
        publisher=settings.owner_name,
        event=episode.event,
        location=episode.location.name if episode.location else "",
    )


def repository_host(settings: Settings) -> str:
    """The domain part of OAI identifiers: the public host name, without a port."""
    return urlsplit(settings.base_url).hostname or "localhost"
