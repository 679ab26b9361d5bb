"""The audit log: who changed what, and when, kept in the bucket.

One small JSON object per event, `audit/<UTC timestamp>-<random>.json`, written with
If-None-Match: writers never contend (no shared document to read-modify-write) and keys sort by
time, so the newest events are the last keys of a listing. Nothing ever rewrites an event.
"""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from archive.errors import ArchiveError, NotFound, StorageError
from archive.storage import ObjectStore

PREFIX = "audit/"
MAX_DETAIL = 2000


@dataclass(frozen=True)
class Event:
    at: str  # ISO 8601, UTC, microseconds
    actor: str  # editor name, or "cli:<user>" for the command line
    action: str  # e.g. "episode.update", "episode.delete", "token.create"
    target: str = ""  # episode id, user name, token id…
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "actor": self.actor, "action": self.action,
                "target": self.target, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        return cls(at=str(data.get("at", "")), actor=str(data.get("actor", "")),
                   action=str(data.get("action", "")), target=str(data.get("target", "")),
                   detail=dict(data.get("detail") or {}))


def record(store: ObjectStore, actor: str, action: str, target: str = "",
           **detail: Any) -> Event:
    """Write one event. A failed audit write is reported, never silently dropped."""
    now = datetime.now(UTC)
    event = Event(at=now.isoformat(), actor=actor, action=action, target=target,
                  detail=_trim(detail))
    key = f"{PREFIX}{now.strftime('%Y%m%dT%H%M%S%fZ')}-{secrets.token_hex(4)}.json"
    store.put_json(key, event.to_dict(), if_none_match=True)
    return event


def recent(store: ObjectStore, limit: int = 200) -> list[Event]:
    """The newest `limit` events, newest first (events that vanish mid-read are skipped)."""
    keys = sorted(info.key for info in store.list(PREFIX))[-limit:]
    events: list[Event] = []
    for key in reversed(keys):
        with contextlib.suppress(NotFound, StorageError):
            data, _ = store.get_json(key)
            events.append(Event.from_dict(data))
    return events


def _trim(detail: dict[str, Any]) -> dict[str, Any]:
    """Keep events small: long values (descriptions) are cut, not stored whole."""
    trimmed: dict[str, Any] = {}
    for name, value in detail.items():
        if isinstance(value, str) and len(value) > MAX_DETAIL:
            value = value[:MAX_DETAIL] + "…"
        trimmed[name] = value
    return trimmed


def safe_record(store: ObjectStore, actor: str, action: str, target: str = "",
                **detail: Any) -> Event | None:
    """For callers whose change already happened: log the audit failure, do not undo it."""
    try:
        return record(store, actor, action, target, **detail)
    except ArchiveError:
        import logging

        logging.getLogger("archive.audit").exception("audit write failed: %s %s", action, target)
        return None
