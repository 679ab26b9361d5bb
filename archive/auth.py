"""Editors, their passwords, live sessions and API tokens, kept in the bucket.

Storage layout (small JSON documents, changed only with conditional writes, like the catalogue):

    auth/users.json    {"version": 1, "users": {name: {"hash": argon2id, "created_at": iso,
                                                        "sessions": {sha256(sid): expires}}}}
    auth/tokens.json   {"version": 1, "tokens": {id: {"user", "sha256", "label", "created_at"}}}

Passwords are Argon2id hashes (argon2-cffi's defaults). A token is `arch_` + 32 random bytes;
only its SHA-256 is stored (a fast hash is enough for a secret with 256 bits of entropy), so a
copy of the bucket does not let anyone in. Readers cache each document for `ttl` seconds; checks
that guard a write (`fresh=True`) revalidate with a conditional GET first, so a revoked token or
a removed editor stops working at once in every process, not only in the one that changed it.

Sessions: the signed cookie names a session id; the editor's record lists the live ones (only
their SHA-256, with the wall-clock time each expires). Signing out removes one; a password change
or "sign out everywhere" empties the list in the same write; removing an editor removes the list
with them, so re-adding the name starts with none. At most `MAX_SESSIONS` per editor (the oldest
ends first). A rehash at sign-in (raised Argon2 parameters) is not a password change and keeps
them.

Sign-in throttling is `archive.signin`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from archive.errors import Conflict, InvalidInput, NotFound, StorageError
from archive.models import utcnow
from archive.storage import ObjectStore

USERS_KEY = "auth/users.json"
TOKENS_KEY = "auth/tokens.json"
FORMAT_VERSION = 1
MAX_ATTEMPTS = 30
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # Argon2 hashes anything, but nobody types more; refuses a CPU-burning POST
TOKEN_PREFIX = "arch_"
SESSION_LIFETIME = 12 * 3600  # seconds; the cookie's Max-Age is the same
MAX_SESSIONS = 20  # per editor: phones, laptops, a lab computer; the oldest ends first
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
GENERIC_FAILURE = "Wrong username or password."
T = TypeVar("T")


def normalise_username(name: str) -> str:
    """Case-insensitive names: "Alice" and "alice" are one editor."""
    return (name or "").strip().lower()


def check_username(name: str) -> str:
    name = normalise_username(name)
    if not _USERNAME.match(name):
        raise InvalidInput(
            "A username is 1–64 lower-case letters, digits, dots, hyphens or underscores."
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"A password needs at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(f"A password may have at most {MAX_PASSWORD} characters.")
    return password


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class JsonDocument:
    """One small JSON object in the bucket: cached reads, read-modify-write with If-Match."""

    def __init__(self, store: ObjectStore, key: str, ttl: float) -> None:
        self.store = store
        self.key = key
        self.ttl = ttl
        self._value: dict[str, Any] = {"version": FORMAT_VERSION}
        self._etag: str | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def read(self, *, fresh: bool = False) -> dict[str, Any]:
        """The document (treat as read-only); revalidated when stale or when `fresh`."""
        if fresh or time.monotonic() - self._checked_at >= self.ttl:
            self._revalidate()
        return self._value

    def _revalidate(self) -> None:
        with self._lock:
            try:
                result = self.store.get_bytes(self.key, if_none_match=self._etag)
            except NotFound:
                self._value, self._etag = {"version": FORMAT_VERSION}, None
            else:
                if result is not None:
                    self._value, self._etag = _parse(result[0], self.key), result[1]
            self._checked_at = time.monotonic()

    def change(self, apply: Callable[[dict[str, Any]], T]) -> T:
        """Apply `apply` to a fresh copy and write it back; retried when another writer won.
        When `apply` leaves the document as it was, nothing is written."""
        for attempt in range(MAX_ATTEMPTS):
            value, etag = self._load()
            before = _canonical(value)
            result = apply(value)
            if etag is not None and _canonical(value) == before:
                self._remember(value, etag)
                return result
            try:
                stored = self.store.put_json(self.key, value, if_match=etag,
                                             if_none_match=etag is None)
            except Conflict:
                time.sleep(secrets.SystemRandom().uniform(0, min(0.5, 0.01 * 2**attempt)))
                continue
            self._remember(value, stored.etag)
            return result
        raise Conflict(f"{self.key} is changing too fast to save this change; try again.")

    def _remember(self, value: dict[str, Any], etag: str) -> None:
        with self._lock:
            self._value, self._etag = value, etag
            self._checked_at = time.monotonic()

    def _load(self) -> tuple[dict[str, Any], str | None]:
        try:
            result = self.store.get_bytes(self.key)
        except NotFound:
            return {"version": FORMAT_VERSION}, None
        assert result is not None
        return _parse(result[0], self.key), result[1]


def _canonical(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True)


def _parse(raw: bytes, key: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise StorageError(f"{key} in the bucket is not valid JSON.") from None
    if not isinstance(value, dict) or value.get("version") != FORMAT_VERSION:
        raise StorageError(f"{key} has an unknown format.")
    return value


@dataclass(frozen=True)
class TokenInfo:
    id: str
    user: str
    label: str
    created_at: str


class Auth:
    """Editors and tokens of one archive. One instance per process, shared by all requests."""

    def __init__(self, store: ObjectStore, *, ttl: float = 2.0,
                 hasher: PasswordHasher | None = None) -> None:
        self.users = JsonDocument(store, USERS_KEY, ttl)
        self.tokens = JsonDocument(store, TOKENS_KEY, ttl)
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None

    # -- editors ---------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> str:
        name = check_username(name)
        hashed = self.hasher.hash(check_password(password))

        def apply(doc: dict[str, Any]) -> None:
            users = doc.setdefault("users", {})
            if name in users:
                raise Conflict(f"There is already an editor called {name!r}.")
            users[name] = {"hash": hashed, "created_at": utcnow().isoformat()}

        self.users.change(apply)
        return name

    def set_password(self, name: str, password: str) -> None:
        """A new password ends every session of that editor (in the same write)."""
        self._store_hash(name, self.hasher.hash(check_password(password)), end_sessions=True)

    def _store_hash(self, name: str, hashed: str, *, end_sessions: bool) -> None:
        name = normalise_username(name)

        def apply(doc: dict[str, Any]) -> None:
            user = _user(doc, name)
            user["hash"] = hashed
            if end_sessions:
                user["sessions"] = {}

        self.users.change(apply)

    def remove_user(self, name: str) -> None:
        """Remove an editor and revoke their tokens; their sessions end at their next request."""
        name = normalise_username(name)

        def apply(doc: dict[str, Any]) -> None:
            if doc.get("users", {}).pop(name, None) is None:
                raise NotFound(f"There is no editor called {name!r}.")

        self.users.change(apply)
        self.tokens.change(lambda doc: _drop_tokens(doc, lambda t: t.get("user") == name))

    def list_users(self) -> list[str]:
        return sorted(self.users.read(fresh=True).get("users", {}))

    def exists(self, name: str, *, fresh: bool = False) -> bool:
        return normalise_username(name) in self.users.read(fresh=fresh).get("users", {})

    def verify_password(self, name: str, password: str) -> str | None:
        """The editor's name when the password is right, else None.

        An unknown name is checked against a dummy hash, so the answer takes as long as for a
        real editor and nothing (time or message) tells which names exist.
        """
        name = normalise_username(name)
        user = self.users.read(fresh=True).get("users", {}).get(name)
        stored = user["hash"] if user else self._dummy()
        too_long = len(password) > MAX_PASSWORD  # no stored password is; still spend the time
        try:
            self.hasher.verify(stored, password[:MAX_PASSWORD])
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if user is None or too_long:
            return None
        if self.hasher.check_needs_rehash(stored):
            self._rehash(name, password)
        return name

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(24))
        return self._dummy_hash

    def _rehash(self, name: str, password: str) -> None:
        """Parameters were raised since this hash was made: upgrade it while we know it (the
        same password, so the editor's sessions stay)."""
        with contextlib.suppress(NotFound):
            self._store_hash(name, self.hasher.hash(password), end_sessions=False)

    # -- sessions ----------------------------------------------------------------------------

    def start_session(self, name: str) -> str:
        """A new live session for an existing editor: its id, for the signed cookie."""
        name = normalise_username(name)
        sid = secrets.token_urlsafe(32)

        def apply(doc: dict[str, Any]) -> None:
            user = _user(doc, name)
            now = time.time()
            sessions = _live_sessions(user, now)
            sessions[_session_digest(sid)] = now + SESSION_LIFETIME
            newest = sorted(sessions.items(), key=lambda item: item[1])[-MAX_SESSIONS:]
            user["sessions"] = dict(newest)

        self.users.change(apply)
        return sid

    def session_alive(self, name: str, sid: str, *, fresh: bool = False) -> bool:
        """Whether `sid` is a live session of editor `name` (ended, expired or unknown: no)."""
        if not sid:
            return False
        user = self.users.read(fresh=fresh).get("users", {}).get(normalise_username(name))
        if not isinstance(user, dict):
            return False
        expires = _live_sessions(user, time.time()).get(_session_digest(sid))
        return expires is not None

    def end_session(self, name: str, sid: str) -> None:
        """Sign one session out (nothing to do when it already ended)."""
        name, digest = normalise_username(name), _session_digest(sid)

        def apply(doc: dict[str, Any]) -> None:
            user = doc.get("users", {}).get(name)
            if isinstance(user, dict) and digest in (user.get("sessions") or {}):
                user["sessions"] = _live_sessions(user, time.time())
                user["sessions"].pop(digest, None)

        self.users.change(apply)

    def end_all_sessions(self, name: str) -> None:
        """Sign the editor out everywhere."""
        name = normalise_username(name)

        def apply(doc: dict[str, Any]) -> None:
            _user(doc, name)["sessions"] = {}

        self.users.change(apply)

    # -- API tokens ------------------------------------------------------------------------

    def create_token(self, user: str, label: str = "") -> tuple[TokenInfo, str]:
        """A new token for an existing editor: (its record, the secret to show once)."""
        user = normalise_username(user)
        if not self.exists(user, fresh=True):
            raise NotFound(f"There is no editor called {user!r}.")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        info = TokenInfo(id=secrets.token_hex(4), user=user, label=label.strip()[:100],
                         created_at=utcnow().isoformat())

        def apply(doc: dict[str, Any]) -> None:
            doc.setdefault("tokens", {})[info.id] = {
                "user": info.user, "label": info.label, "created_at": info.created_at,
                "sha256": token_digest(secret),
            }

        self.tokens.change(apply)
        return info, secret

    def list_tokens(self) -> list[TokenInfo]:
        tokens = self.tokens.read(fresh=True).get("tokens", {})
        return sorted((_info(tid, t) for tid, t in tokens.items()), key=lambda t: t.created_at)

    def revoke_token(self, token_id: str) -> TokenInfo:
        def apply(doc: dict[str, Any]) -> TokenInfo:
            record = doc.get("tokens", {}).pop(token_id, None)
            if record is None:
                raise NotFound(f"There is no token with id {token_id!r}.")
            return _info(token_id, record)

        return self.tokens.change(apply)

    def user_for_token(self, token: str, *, fresh: bool = False) -> str | None:
        """The editor a token belongs to, or None (unknown, revoked, or its editor removed)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        digest = token_digest(token)
        owner = None
        for record in self.tokens.read(fresh=fresh).get("tokens", {}).values():
            if hmac.compare_digest(str(record.get("sha256", "")), digest):
                owner = str(record.get("user", ""))
        if owner and self.exists(owner, fresh=fresh):
            return owner
        return None


def _user(doc: dict[str, Any], name: str) -> dict[str, Any]:
    user = doc.get("users", {}).get(name)
    if not isinstance(user, dict):
        raise NotFound(f"There is no editor called {name!r}.")
    return user


def _session_digest(sid: str) -> str:
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


def _live_sessions(user: dict[str, Any], now: float) -> dict[str, float]:
    """The editor's sessions that have not expired (a copy)."""
    sessions = user.get("sessions")
    if not isinstance(sessions, dict):
        return {}
    return {digest: float(expires) for digest, expires in sessions.items()
            if isinstance(expires, int | float) and expires > now}


def _info(token_id: str, record: dict[str, Any]) -> TokenInfo:
    return TokenInfo(id=token_id, user=str(record.get("user", "")),
                     label=str(record.get("label", "")), created_at=str(record.get("created_at")))


def _drop_tokens(doc: dict[str, Any], matches: Callable[[dict[str, Any]], bool]) -> None:
    tokens = doc.setdefault("tokens", {})
    for token_id in [tid for tid, record in tokens.items() if matches(record)]:
        del tokens[token_id]
