"""The archive's vocabulary: series, episodes, people, files, chapters; JSON and validation.

Everything here is plain data. `to_dict()` gives JSON-ready dicts (dates as ISO strings) and
`from_dict()` reads them back, validating as it goes, so `meta.json` and `catalog.json` written
by one version of the code are checked when another reads them.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import operator
import re
import secrets
import typing
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from archive import compact
from archive.errors import InvalidInput

MAX_TITLE = 300
MAX_DESCRIPTION = 20_000
MAX_NAME = 200
MAX_TAG = 60
MAX_TAGS = 30
MAX_SPEAKERS = 60

# Academic roles we keep in our own metadata; feeds map them onto the Podcasting 2.0 taxonomy.
ACADEMIC_ROLES = (
    "speaker",
    "chair",
    "discussant",
    "panellist",
    "host",
    "co-host",
    "guest",
    "moderator",
    "respondent",
    "convenor",
    "lecturer",
    "interviewer",
    "interviewee",
    "narrator",
    "organiser",
)
ROLE_ALIASES = {"panelist": "panellist", "organizer": "organiser", "convener": "convenor"}

# SPDX-style identifiers accepted as licences (lower case, as Podcasting 2.0 licenses.json).
LICENCES = {
    "cc-by-4.0": "Creative Commons Attribution 4.0 International",
    "cc-by-sa-4.0": "Creative Commons Attribution-ShareAlike 4.0 International",
    "cc-by-nc-4.0": "Creative Commons Attribution-NonCommercial 4.0 International",
    "cc-by-nc-sa-4.0": "Creative Commons Attribution-NonCommercial-ShareAlike 4.0 International",
    "cc-by-nd-4.0": "Creative Commons Attribution-NoDerivatives 4.0 International",
    "cc-by-nc-nd-4.0": "Creative Commons Attribution-NonCommercial-NoDerivatives 4.0 International",
    "cc0-1.0": "Creative Commons Zero v1.0 Universal",
    "all-rights-reserved": "All rights reserved",
}
LICENCE_URLS = {
    "cc-by-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "cc-by-sa-4.0": "https://creativecommons.org/licenses/by-sa/4.0/",
    "cc-by-nc-4.0": "https://creativecommons.org/licenses/by-nc/4.0/",
    "cc-by-nc-sa-4.0": "https://creativecommons.org/licenses/by-nc-sa/4.0/",
    "cc-by-nd-4.0": "https://creativecommons.org/licenses/by-nd/4.0/",
    "cc-by-nc-nd-4.0": "https://creativecommons.org/licenses/by-nc-nd/4.0/",
    "cc0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
}
# rightsstatements.org statements (https://rightsstatements.org/page/1.0/), by their URI as the
# vocabulary publishes it (http, trailing slash): an episode's `rights` when no licence fits.
RIGHTS_STATEMENTS = {
    "http://rightsstatements.org/vocab/InC/1.0/": "In Copyright",
    "http://rightsstatements.org/vocab/InC-OW-EU/1.0/": "In Copyright - EU Orphan Work",
    "http://rightsstatements.org/vocab/InC-EDU/1.0/":
        "In Copyright - Educational Use Permitted",
    "http://rightsstatements.org/vocab/InC-NC/1.0/":
        "In Copyright - Non-Commercial Use Permitted",
    "http://rightsstatements.org/vocab/InC-RUU/1.0/": "In Copyright - Rights-holder(s) Unlocatable "
        "or Unidentifiable",
    "http://rightsstatements.org/vocab/NoC-CR/1.0/": "No Copyright - Contractual Restrictions",
    "http://rightsstatements.org/vocab/NoC-NC/1.0/": "No Copyright - Non-Commercial Use Only",
    "http://rightsstatements.org/vocab/NoC-OKLR/1.0/": "No Copyright - Other Known Legal "
        "Restrictions",
    "http://rightsstatements.org/vocab/NoC-US/1.0/": "No Copyright - United States",
    "http://rightsstatements.org/vocab/CNE/1.0/": "Copyright Not Evaluated",
    "http://rightsstatements.org/vocab/UND/1.0/": "Copyright Undetermined",
    "http://rightsstatements.org/vocab/NKC/1.0/": "No Known Copyright",
}
# What a speaker said about publishing the recording; recorded by editors, for editors only.
CONSENT_STATUSES = ("unknown", "requested", "given", "refused", "withdrawn")
# Episode fields for editors only: never in the public API, feeds, pages, OAI, bags or the
# search index. `Episode.public_dict()` leaves them out; code that renders for the public
# reads attributes it names, never these.
PRIVATE_FIELDS = frozenset({"source_filename", "consent"})

EPISODE_TYPES = ("full", "trailer", "bonus")
MEDIUMS = ("podcast", "course")

# Roles of the files an episode owns; the key of `Episode.files`.
FILE_ROLES = (
    "audio",  # the delivery file podcast apps download (MP3 or M4A)
    "video",  # for video talks: the video itself, offered as an alternate enclosure
    "original",  # the upload exactly as received
    "cover",  # square JPEG artwork
    "transcript",  # WebVTT
    "transcript_source",  # the transcript as uploaded when it was not VTT (SRT)
    "chapters",  # Podcasting 2.0 JSON chapters
    "transcript_srt",  # SubRip, derived from the same cues as the WebVTT
    "transcript_json",  # Podcasting 2.0 JSON transcript, derived likewise
    "waveform",  # peaks for the player (audiowaveform JSON)
)
# Where a transcript came from. Only "reviewed" means a person checked every line (WCAG 1.2.1).
TRANSCRIPT_KINDS = ("automatic", "supplied", "edited", "reviewed")

# Control characters, bidi overrides, lone surrogates (unencodable) and non-characters.
_CONTROL = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]"
)
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")
_RENDITION = re.compile(r"^[1-9][0-9]{1,3}\.(?:avif|webp|jpg)$")
_ORCID = re.compile(r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$")
_ORCID_PREFIXES = ("https://orcid.org/", "http://orcid.org/", "orcid.org/")


def slugify(text: str, fallback: str = "item", max_length: int = 80) -> str:
    """Lower-case ASCII with hyphens: "Nicholas J Wheeler" -> "nicholas-j-wheeler"."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = _SLUG_JUNK.sub("-", ascii_text.lower()).strip("-")
    slug = slug[:max_length].rstrip("-")
    return slug or fallback


def new_id() -> str:
    """A short, URL-safe, unguessable episode id (12 lower-case hex characters)."""
    return secrets.token_hex(6)


def clean_text(value: Any, field_name: str, max_length: int, *, required: bool = False) -> str:
    """Strip control characters and bidi overrides; refuse over-long or missing text."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field_name} must be text.")
    keep_newlines = max_length > MAX_TITLE
    text = _CONTROL.sub("", value)
    if not keep_newlines:
        text = " ".join(text.split())
    text = unicodedata.normalize("NFC", text.strip())
    if required and not text:
        raise InvalidInput(f"{field_name} is required.")
    if len(text) > max_length:
        raise InvalidInput(
            f"{field_name} is too long ({len(text)} characters; at most {max_length})."
        )
    return text


def parse_date(value: str | date | None, field_name: str = "date") -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidInput(f"{field_name} {value!r} is not a real date (use YYYY-MM-DD).") from None


def parse_datetime(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise InvalidInput(f"{value!r} is not an ISO date and time.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def next_revision(previous: datetime) -> datetime:
    """Now in whole seconds, but always after `previous`: a record changed twice in one second
    still gets a newer datestamp, so harvesters asking what changed since (OAI-PMH `from`) and
    editors' open forms (which carry the revision they saw) both notice the second change."""
    return max(utcnow(), previous.replace(microsecond=0) + timedelta(seconds=1))


def normalise_role(role: str) -> str:
    role = " ".join(role.lower().split()) or "speaker"
    role = ROLE_ALIASES.get(role, role)
    if role not in ACADEMIC_ROLES:
        raise InvalidInput(
            f"Unknown speaker role {role!r}; use one of: {', '.join(ACADEMIC_ROLES)}."
        )
    return role


def orcid_check_digit(digits: str) -> str:
    """ISO 7064 MOD 11-2 over the first 15 digits of an ORCID iD ('X' stands for 10)."""
    total = 0
    for digit in digits:
        total = (total + int(digit)) * 2
    result = (12 - total % 11) % 11
    return "X" if result == 10 else str(result)


def normalise_orcid(value: Any) -> str:
    """An ORCID iD as `0000-0002-1825-0097` (also read from its https://orcid.org/ form), or ''.
    Refuses a malformed iD or one whose check digit is wrong (a typo, most often)."""
    text = clean_text(value, "ORCID", 60)
    for prefix in _ORCID_PREFIXES:
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
    text = text.upper()
    if not text:
        return ""
    if not _ORCID.match(text):
        raise InvalidInput(f"ORCID {text!r} is not of the form 0000-0002-1825-0097.")
    digits = text.replace("-", "")
    if orcid_check_digit(digits[:15]) != digits[15]:
        raise InvalidInput(f"ORCID {text!r} has a wrong check digit (mistyped?).")
    return text


def normalise_rights(value: Any) -> str:
    """A rightsstatements.org statement URI (https or http, with or without the trailing
    slash, as its canonical http form), or ''."""
    text = clean_text(value, "Rights statement", 200)
    if not text:
        return ""
    canonical = "http://" + text.split("://", 1)[-1].rstrip("/") + "/"
    for uri in RIGHTS_STATEMENTS:
        if canonical.lower() == uri.lower():
            return uri
    raise InvalidInput(f"Rights statement {text!r} is not a rightsstatements.org statement "
                       "(e.g. http://rightsstatements.org/vocab/InC/1.0/).")


def normalise_consent(value: Any) -> dict[str, str]:
    """Consent by speaker slug; 'unknown' is the default and not stored."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("Consent must be an object of speaker slug to status.")
    found: dict[str, str] = {}
    for slug, status in value.items():
        status = str(status or "unknown").strip().lower()
        if status not in CONSENT_STATUSES:
            raise InvalidInput(f"Consent must be one of {', '.join(CONSENT_STATUSES)}.")
        if status != "unknown":
            found[slugify(str(slug), "person")] = status
    return found


def _https_url(value: Any, field_name: str) -> str:
    url = clean_text(value, field_name, 500)
    if url and not url.startswith(("https://", "http://")):
        raise InvalidInput(f"{field_name} {url!r} must start with https://.")
    return url


def normalise_licence(licence: str | None) -> str | None:
    if not licence:
        return None
    key = licence.strip().lower()
    if key not in LICENCES:
        raise InvalidInput(f"Unknown licence {licence!r}; use one of: {', '.join(LICENCES)}.")
    return key


@dataclass(slots=True)
class Person:
    """A person: as a speaker of an episode (with their role and affiliation there), and as the
    one record per person in `CatalogData.people` (keyed by `slug`), whose name, ORCID iD,
    homepage (`url`) and image every episode they appear in shares (see archive/people.py)."""

    name: str
    role: str = "speaker"
    affiliation: str = ""
    orcid: str = ""  # bare iD, checksum-validated: 0000-0002-1825-0097
    url: str = ""  # homepage
    image: str = ""  # https URL of a portrait (Podcasting 2.0 `img`)

    @property
    def slug(self) -> str:
        return slugify(self.name, fallback="person")

    @property
    def homepage(self) -> str:
        return self.url

    @property
    def orcid_url(self) -> str:
        return f"https://orcid.org/{self.orcid}" if self.orcid else ""

    @classmethod
    def parse(cls, spec: str) -> Person:
        """Read the CLI form `Name;role;affiliation;ORCID` (the last parts optional)."""
        parts = [part.strip() for part in spec.split(";")]
        if len(parts) > 4:
            raise InvalidInput(
                f"Speaker {spec!r} has too many parts; use 'Name;role;affiliation;ORCID'.")
        name, role, affiliation, orcid = [*parts, "", "", ""][:4]
        return cls.from_dict({"name": name, "role": role or "speaker", "affiliation": affiliation,
                              "orcid": orcid})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Person:
        return cls(
            name=clean_text(data.get("name"), "Speaker name", MAX_NAME, required=True),
            role=normalise_role(str(data.get("role") or "speaker")),
            affiliation=clean_text(data.get("affiliation"), "Affiliation", MAX_NAME),
            orcid=normalise_orcid(data.get("orcid")),
            url=_https_url(data.get("url") or data.get("homepage"), "Speaker URL"),
            image=_https_url(data.get("image"), "Image URL"),
        )

    def to_dict(self) -> dict[str, Any]:
        found = dataclasses.asdict(self)
        if not self.image:
            del found["image"]  # older readers' Person(**…) never meets a field it lacks
        return found


@dataclass(slots=True)
class Chapter:
    start: float
    title: str
    end: float | None = None
    url: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chapter:
        try:
            start = float(data["start"])
            end = None if data.get("end") is None else float(data["end"])
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("A chapter needs a numeric start time.") from None
        if start < 0 or (end is not None and end < start):
            raise InvalidInput(f"Chapter times are out of order at {start} s.")
        return cls(
            start=start,
            title=clean_text(data.get("title"), "Chapter title", MAX_TITLE, required=True),
            end=end,
            url=clean_text(data.get("url"), "Chapter URL", 500),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class MediaFile:
    """One stored object of an episode, with what we know of it and its checksum (fixity)."""

    key: str
    filename: str
    content_type: str
    size: int
    sha256: str
    duration: float | None = None
    bitrate: int | None = None
    width: int | None = None
    height: int | None = None
    # A cover's web renditions ("320.webp"…, see archive/artwork.py); None until they are made.
    renditions: list[str] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaFile:
        found = cls(**{f.name: data.get(f.name) for f in dataclasses.fields(cls)})
        if not isinstance(found.renditions, list):
            found.renditions = None
        else:
            found.renditions = [n for n in found.renditions
                                if isinstance(n, str) and _RENDITION.match(n)]
        return found

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(slots=True)
class Location:
    name: str
    geo: str = ""  # "geo:46.2044,6.1432"
    osm: str = ""  # "R123456"
    country: str = ""  # ISO 3166-1 alpha-2

    @classmethod
    def from_dict(cls, data: dict[str, Any] | str | None) -> Location | None:
        if not data:
            return None
        if isinstance(data, str):
            data = {"name": data}
        if not isinstance(data, dict):
            raise InvalidInput("Location must be a place name or an object with a name.")
        name = clean_text(data.get("name"), "Location", 128, required=True)
        geo = clean_text(data.get("geo"), "Location geo", 100)
        if geo and not re.match(r"^geo:-?\d+(\.\d+)?,-?\d+(\.\d+)?$", geo):
            raise InvalidInput(f"Location geo {geo!r} must look like geo:46.2044,6.1432.")
        country = clean_text(data.get("country"), "Country", 2).upper()
        osm = clean_text(data.get("osm"), "OSM id", 40)
        return cls(name=name, geo=geo, osm=osm, country=country)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class Loudness:
    integrated_lufs: float
    true_peak_dbtp: float
    normalised: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class Series:
    slug: str
    title: str
    description: str = ""
    medium: str = "podcast"
    cover: MediaFile | None = None
    podcast_guid: str = ""
    created_at: datetime = field(default_factory=utcnow)
    # Where listeners also find the show (set by editors, `archive series set`): Apple offers
    # no subscribe-by-feed link, so its directory page is linked instead. `old_feed_url` is
    # the feed this series was moved from (`archive import --feed`), kept for the record.
    apple_url: str = ""
    spotify_url: str = ""
    old_feed_url: str = ""

    @classmethod
    def new(cls, title: str, description: str = "", medium: str = "podcast") -> Series:
        title = clean_text(title, "Series", MAX_TITLE, required=True)
        return cls.from_dict(
            {"slug": slugify(title, "series"), "title": title, "description": description,
             "medium": medium}
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Series:
        medium = data.get("medium") or "podcast"
        if medium not in MEDIUMS:
            raise InvalidInput(f"Series medium must be one of {', '.join(MEDIUMS)}.")
        cover = data.get("cover")
        return cls(
            slug=slugify(str(data.get("slug") or data.get("title") or ""), "series"),
            title=clean_text(data.get("title"), "Series title", MAX_TITLE, required=True),
            description=clean_text(data.get("description"), "Series description", MAX_DESCRIPTION),
            medium=medium,
            cover=MediaFile.from_dict(cover) if cover else None,
            podcast_guid=str(data.get("podcast_guid") or ""),
            created_at=parse_datetime(data.get("created_at")) or utcnow(),
            apple_url=_https_url(data.get("apple_url"), "Apple Podcasts address"),
            spotify_url=_https_url(data.get("spotify_url"), "Spotify address"),
            old_feed_url=_https_url(data.get("old_feed_url"), "Old feed address"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "title": self.title,
            "description": self.description,
            "medium": self.medium,
            "cover": self.cover.to_dict() if self.cover else None,
            "podcast_guid": self.podcast_guid,
            "created_at": self.created_at.isoformat(),
            # Written only when set, so catalogues without them stay as they were.
            **{name: value for name, value in (("apple_url", self.apple_url),
                                                ("spotify_url", self.spotify_url),
                                                ("old_feed_url", self.old_feed_url)) if value},
        }


@dataclass(slots=True)
class Provenance:
    """Where an episode's transcript came from, and when; `model` for automatic ones."""

    kind: str
    at: datetime = field(default_factory=utcnow)
    model: str = ""
    by: str = ""  # the editor who supplied, edited or reviewed it

    @property
    def reviewed(self) -> bool:
        return self.kind == "reviewed"

    @property
    def protected(self) -> bool:
        """A person made or checked it: automatic transcription never overwrites it unforced."""
        return self.kind != "automatic"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provenance:
        kind = str(data.get("kind") or "")
        if kind not in TRANSCRIPT_KINDS:
            kinds = ", ".join(TRANSCRIPT_KINDS)
            raise InvalidInput(f"Transcript provenance must be one of {kinds}.")
        return cls(kind=kind, at=parse_datetime(data.get("at")) or utcnow(),
                   model=clean_text(data.get("model"), "Model", 200),
                   by=clean_text(data.get("by"), "Editor", 100))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "at": self.at.isoformat(), "model": self.model, "by": self.by}


@dataclass(slots=True)
class Episode:
    """A recording and all that is known of it. Readers see it once the catalogue names it."""

    id: str
    guid: str
    slug: str
    title: str
    series: str  # Series.slug
    date: date | None = None
    description: str = ""
    speakers: list[Person] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    licence: str | None = None
    rights: str = ""  # a rightsstatements.org URI (RIGHTS_STATEMENTS), when no licence fits
    event: str = ""
    location: Location | None = None
    language: str = "en"
    season: int | None = None
    number: int | None = None
    episode_type: str = "full"
    explicit: bool = False
    draft: bool = False
    files: dict[str, MediaFile] = field(default_factory=dict)
    chapters: list[Chapter] = field(default_factory=list)
    loudness: Loudness | None = None
    original_sha256: str = ""
    source_filename: str = ""
    transcript_language: str = ""
    transcript_provenance: Provenance | None = None
    pending: list[str] = field(default_factory=list)  # enrichment asked for, not yet done
    enrichment_errors: dict[str, str] = field(default_factory=dict)  # kind -> why it failed
    published_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    # Embargo: a draft with a date is "scheduled"; `archive worker` publishes it once the date
    # has passed (archive/rights.py).
    publish_at: datetime | None = None
    consent: dict[str, str] = field(default_factory=dict)  # speaker slug -> CONSENT_STATUSES
    # A catalogue snapshot's episodes keep PACKED_FIELDS compressed here and unpack them when
    # read (`__getattr__`); None for an episode made or copied in this process (`packed_episode`).
    packed: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def __getattr__(self, name: str) -> Any:
        """Reached only when a slot is empty: a packed episode's packed fields. They are
        unpacked on each read, never put back on the object: a snapshot's episodes are shared
        by every reader and never changed (a change works on copies)."""
        packed = object.__getattribute__(self, "packed")
        if packed is None or name not in _PACKED_NAMES:
            raise AttributeError(name)
        return getattr(unpacked(packed), name)

    def unpacked_fields(self) -> Any:
        """The packed fields read at once, for a pass over many episodes that reads several
        (an object with those attributes; the episode itself when it is whole)."""
        return self if self.packed is None else unpacked(self.packed)

    @property
    def scheduled(self) -> bool:
        return self.draft and self.publish_at is not None

    @property
    def has_audio(self) -> bool:
        """Whether there is audio to play: what lists of every published episode ask, answered
        without unpacking."""
        if self.packed is not None:
            return bool(self.packed[0] & _HAS_AUDIO)
        return "audio" in self.files

    @property
    def audio(self) -> MediaFile | None:
        return self.files.get("audio") if self.has_audio else None

    @property
    def cover(self) -> MediaFile | None:
        if self.packed is not None and not self.packed[0] & _HAS_COVER:
            return None
        return self.files.get("cover")

    @property
    def transcript_sha256(self) -> str:
        """The transcript's checksum, "" without one (the search index's version of it)."""
        packed = self.packed
        if packed is not None and packed[0] & _SHA_KEPT:
            return packed[2:2 + packed[1]].decode("ascii")
        transcript = self.files.get("transcript")
        return transcript.sha256 if transcript else ""

    @property
    def duration(self) -> float | None:
        audio = self.audio
        return audio.duration if audio else None

    @property
    def prefix(self) -> str:
        return episode_prefix(self.id)

    @property
    def year(self) -> int:
        return (self.date or self.published_at.date()).year

    @classmethod
    def new(cls, **fields: Any) -> Episode:
        """A fresh episode with a new id and a guid that will never change."""
        fields.setdefault("id", new_id())
        fields.setdefault("guid", str(uuid.uuid4()))
        fields.setdefault("slug", slugify(str(fields.get("title", "")), "recording"))
        return cls.from_dict(fields)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Episode:
        episode_id = str(data.get("id") or "")
        if not re.fullmatch(r"[a-z0-9]{6,32}", episode_id):
            raise InvalidInput(f"Episode id {episode_id!r} is not valid.")
        speakers = data.get("speakers") or []
        tags = data.get("tags") or []
        if not isinstance(speakers, list) or not isinstance(tags, list):
            raise InvalidInput("Speakers and tags must be lists.")
        if len(speakers) > MAX_SPEAKERS:
            raise InvalidInput(f"Too many speakers (at most {MAX_SPEAKERS}).")
        if len(tags) > MAX_TAGS:
            raise InvalidInput(f"Too many tags (at most {MAX_TAGS}).")
        episode_type = data.get("episode_type") or "full"
        if episode_type not in EPISODE_TYPES:
            raise InvalidInput(f"Episode type must be one of {', '.join(EPISODE_TYPES)}.")
        chapters = [c if isinstance(c, Chapter) else Chapter.from_dict(c)
                    for c in data.get("chapters") or []]
        if any(b.start < a.start for a, b in itertools.pairwise(chapters)):
            raise InvalidInput("Chapters must be in ascending order of start time.")
        loudness = data.get("loudness")
        return cls(
            id=episode_id,
            guid=clean_text(data.get("guid"), "guid", 200, required=True),
            slug=slugify(str(data.get("slug") or ""), "recording"),
            title=clean_text(data.get("title"), "Title", MAX_TITLE, required=True),
            series=slugify(str(data.get("series") or ""), "series"),
            date=parse_date(data.get("date")),
            description=clean_text(data.get("description"), "Description", MAX_DESCRIPTION),
            speakers=[s if isinstance(s, Person) else Person.from_dict(s) for s in speakers],
            tags=_clean_tags(tags),
            licence=normalise_licence(data.get("licence")),
            rights=normalise_rights(data.get("rights")),
            event=clean_text(data.get("event"), "Event", MAX_TITLE),
            location=data["location"] if isinstance(data.get("location"), Location)
            else Location.from_dict(data.get("location")),
            language=_clean_language(data.get("language") or "en"),
            season=_positive_int(data.get("season"), "Season"),
            number=_positive_int(data.get("number"), "Episode number"),
            episode_type=episode_type,
            explicit=bool(data.get("explicit", False)),
            draft=bool(data.get("draft", False)),
            files={role: f if isinstance(f, MediaFile) else MediaFile.from_dict(f)
                   for role, f in (data.get("files") or {}).items()},
            chapters=chapters,
            loudness=Loudness(**loudness) if isinstance(loudness, dict) else loudness,
            original_sha256=str(data.get("original_sha256") or ""),
            source_filename=clean_text(data.get("source_filename"), "File name", 255),
            transcript_language=_clean_language(data.get("transcript_language") or "")
            if data.get("transcript_language") else "",
            transcript_provenance=_provenance(data.get("transcript_provenance")),
            pending=[clean_text(k, "Task", 40) for k in data.get("pending") or []],
            enrichment_errors={clean_text(k, "Task", 40): clean_text(v, "Error", 500)
                               for k, v in (data.get("enrichment_errors") or {}).items()},
            published_at=parse_datetime(data.get("published_at")) or utcnow(),
            updated_at=parse_datetime(data.get("updated_at")) or utcnow(),
            publish_at=parse_datetime(data.get("publish_at")),
            consent=normalise_consent(data.get("consent")),
        )

    def to_dict(self) -> dict[str, Any]:
        p = self.unpacked_fields()  # unpacked once, not per field
        return {
            "id": self.id,
            "guid": p.guid,
            "slug": self.slug,
            "title": self.title,
            "series": self.series,
            "date": self.date.isoformat() if self.date else None,
            "description": p.description,
            "speakers": [s.to_dict() for s in self.speakers],
            "tags": list(self.tags),
            "licence": p.licence,
            "rights": p.rights,
            "event": p.event,
            "location": p.location.to_dict() if p.location else None,
            "language": self.language,
            "season": p.season,
            "number": p.number,
            "episode_type": p.episode_type,
            "explicit": p.explicit,
            "draft": self.draft,
            "files": {role: f.to_dict() for role, f in p.files.items()},
            "chapters": [c.to_dict() for c in p.chapters],
            "loudness": p.loudness.to_dict() if p.loudness else None,
            "original_sha256": self.original_sha256,
            "source_filename": p.source_filename,
            "transcript_language": p.transcript_language,
            "transcript_provenance": p.transcript_provenance.to_dict()
            if p.transcript_provenance else None,
            "pending": list(p.pending),
            "enrichment_errors": dict(p.enrichment_errors),
            "published_at": self.published_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "publish_at": self.publish_at.isoformat() if self.publish_at else None,
            "consent": dict(sorted(p.consent.items())),
        }

    def public_dict(self) -> dict[str, Any]:
        """`to_dict()` without the fields that are for editors only (`PRIVATE_FIELDS`)."""
        return {k: v for k, v in self.to_dict().items() if k not in PRIVATE_FIELDS}


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What remains of a deleted episode: enough to say it existed and is gone, nothing of its
    content. Its key names the id, so listing the tombstones lists the deletions."""

    id: str
    guid: str
    deleted_at: datetime

    @classmethod
    def of(cls, episode: Episode) -> Tombstone:
        return cls(episode.id, episode.guid, utcnow())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tombstone:
        return cls(id=str(data.get("id") or ""), guid=str(data.get("guid") or ""),
                   deleted_at=parse_datetime(data.get("deleted_at")) or utcnow())

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "guid": self.guid, "deleted_at": self.deleted_at.isoformat()}


def _provenance(value: Any) -> Provenance | None:
    if value is None or isinstance(value, Provenance):
        return value
    if not isinstance(value, dict):
        raise InvalidInput("Transcript provenance must be an object.")
    return Provenance.from_dict(value)


def episode_prefix(episode_id: str) -> str:
    return f"episodes/{episode_id}/"


def _clean_tags(tags: list[Any]) -> list[str]:
    cleaned: list[str] = []
    for tag in tags:
        text = clean_text(tag, "Tag", MAX_TAG)
        if text and text.lower() not in (t.lower() for t in cleaned):
            cleaned.append(text)
    return cleaned


def _clean_language(value: str) -> str:
    value = str(value).strip().lower()
    if not re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", value):
        raise InvalidInput(f"Language {value!r} is not an ISO 639 code such as en or en-gb.")
    return value


def _positive_int(value: Any, field_name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInput(f"{field_name} must be a whole number.") from None
    if number < 1:
        raise InvalidInput(f"{field_name} must be a positive number.")
    return number


# -- packed episodes --------------------------------------------------------------------------
# What an episode's own page, feed item, search entry or export reads, but no list, filter,
# ordering or people index does: kept compressed in a catalogue snapshot (~3 KB of objects an
# episode becomes ~1 KB; archive/compact.py). Lists learn what they need from the header.
# (`original_sha256` stays listed: every ingest looks for an episode made from the same file.)
PACKED_FIELDS = ("guid", "description", "licence", "rights", "event", "location", "season",
                 "number", "episode_type", "explicit", "files", "chapters", "loudness",
                 "source_filename", "transcript_language", "transcript_provenance", "pending",
                 "enrichment_errors", "consent")
_PACKED_NAMES = frozenset(PACKED_FIELDS)
LISTED_FIELDS = tuple(f.name for f in dataclasses.fields(Episode)
                      if f.init and f.name not in _PACKED_NAMES)
# Header: flags, the transcript checksum's length, the checksum (ASCII), then the fields.
_HAS_AUDIO, _HAS_COVER, _SHA_KEPT = 1, 2, 4
_listed_values = operator.attrgetter(*LISTED_FIELDS)

PackedFields = msgspec.defstruct(
    "PackedFields", [(name, typing.get_type_hints(Episode)[name]) for name in PACKED_FIELDS],
    array_like=True)
_PACKED_DECODER = msgspec.json.Decoder(PackedFields)


@functools.lru_cache(maxsize=1024)  # a page reads an episode's fields many times over
def unpacked(packed: bytes) -> Any:
    return _PACKED_DECODER.decode(compact.decompress(memoryview(packed)[2 + packed[1]:]))


def packed_episode(listed: Any, raw: bytes, fields: Any) -> Episode:
    """An episode with `LISTED_FIELDS` taken from `listed` and `PACKED_FIELDS` kept as `raw`,
    their JSON array, already checked by decoding it as `fields` (whose `files` the header
    is made from)."""
    episode = Episode.__new__(Episode)
    for name, value in zip(LISTED_FIELDS, _listed_values(listed), strict=True):
        setattr(episode, name, value)
    files = fields.files
    transcript = files.get("transcript")
    checksum = transcript.sha256 if transcript is not None else ""
    kept = isinstance(checksum, str) and checksum.isascii() and len(checksum) < 256
    sha = checksum.encode("ascii") if kept else b""
    flags = ((_HAS_AUDIO if "audio" in files else 0) | (_HAS_COVER if "cover" in files else 0)
             | (_SHA_KEPT if kept else 0))
    episode.packed = bytes((flags, len(sha))) + sha + compact.compress(raw)
    return episode


def pack(episode: Episode) -> Episode:
    """`episode` packed as a catalogue snapshot holds it (an equal episode)."""
    if episode.packed is not None:
        return episode
    document = episode.to_dict()
    raw = msgspec.json.encode([document[name] for name in PACKED_FIELDS])
    try:
        fields = _PACKED_DECODER.decode(raw)
    except msgspec.ValidationError:  # a shape only the validating reader takes: kept whole
        return episode
    return packed_episode(episode, raw, fields)
