"""The archive's exceptions. Each carries the HTTP status it means, so one handler renders them.

The CLI prints `str(error)` as one line and exits non-zero; the web app answers `status` with the
same message as HTML or JSON. Anything that is not an `ArchiveError` is a bug (a 500).
"""

from __future__ import annotations


class ArchiveError(Exception):
    """Base of every error a user may see; the message is written for people."""

    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ArchiveError):
    """Metadata or a request that cannot be accepted as given."""

    status = 422


class InvalidRecording(InvalidInput):
    """A file that is not a usable recording (wrong type, corrupt, empty, truncated)."""

    status = 415


class NotFound(ArchiveError):
    status = 404


class Conflict(ArchiveError):
    """A write lost a race (conditional put refused) or would clash with existing data."""

    status = 409


class Duplicate(Conflict):
    """The same recording (by SHA-256 of the original) is already in the archive."""

    def __init__(self, message: str, episode_id: str) -> None:
        super().__init__(message)
        self.episode_id = episode_id


class PayloadTooLarge(ArchiveError):
    status = 413


class Unauthorized(ArchiveError):
    status = 401


class Forbidden(ArchiveError):
    status = 403


class TooManyRequests(ArchiveError):
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StorageError(ArchiveError):
    """The object store failed or could not be reached."""

    status = 503


class ConfigError(ArchiveError):
    """A setting is missing or wrong; the message names the variable."""

    status = 500
