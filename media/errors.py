"""Errors raised by ``media``: each message is one sentence a person can act on."""

from __future__ import annotations


class MediaError(ValueError):
    """Base class: the message is shown to the uploader as is."""


class InvalidRecording(MediaError):
    """The file is not a usable recording."""


class InvalidArtwork(MediaError):
    """The image cannot be used as podcast artwork."""


class InvalidTranscript(MediaError):
    """The transcript is neither valid WebVTT nor valid SRT."""


class InvalidChapters(MediaError):
    """The chapters file does not follow the Podcasting 2.0 JSON chapters format."""
