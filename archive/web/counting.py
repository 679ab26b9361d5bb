"""The media route's side of the statistics: decide cheaply whether a request may count, and
hand the recorder what was sent. No hashing, no I/O here (`archive.stats.recorder` does that
off the request path).

Never recorded: HEAD, 304 and 416 answers (nothing is sent), `Range: bytes=0-1` probes, drafts,
and signed-in editors' own plays (a session cookie naming an editor, or an API token).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.requests import Request

from archive.models import Episode, MediaFile
from archive.stats.events import BYTES, REQUESTS
from archive.stats.recorder import Hit, Recorder

PROBE = "bytes=0-1"
# Longer user agents are cut: they are only hashed and matched, and a client sending endless
# distinct long ones must not grow the classifier's cache or the buffer.
MAX_USER_AGENT = 512


@dataclass(slots=True)
class Listen:
    """One request that may count; told what was sent when the answer is over."""

    recorder: Recorder
    ts: float
    address: str
    user_agent: str
    episode_id: str
    series: str
    role: str
    media: MediaFile

    def sent(self, start: int, count: int) -> None:
        if count > 0:
            self._record(start, count, BYTES)

    def redirected(self) -> None:
        """Redirect modes: the archive sees the request, never the bytes."""
        self._record(0, 0, REQUESTS)

    def _record(self, start: int, count: int, method: str) -> None:
        media = self.media
        self.recorder.record(Hit(self.ts, self.address, self.user_agent, self.episode_id,
                                 self.series, self.role, media.key, media.sha256, media.size,
                                 media.duration, media.bitrate, start, count, method))


def listen_to(request: Request, episode: Episode, role: str, media: MediaFile) -> Listen | None:
    recorder: Recorder | None = getattr(request.app.state, "stats", None)
    if recorder is None or request.method != "GET" or episode.draft:
        return None
    headers = request.headers
    if request.session.get("user") or headers.get("authorization"):
        return None  # an editor's own play, or a script with an API token
    if (headers.get("range") or "").replace(" ", "").lower() == PROBE:
        return None
    address = request.client.host if request.client else ""
    return Listen(recorder, time.time(), address, headers.get("user-agent", "")[:MAX_USER_AGENT],
                  episode.id, episode.series, role, media)
