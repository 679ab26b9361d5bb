"""Editors, their passwords and API tokens, kept in the bucket; sign-in throttling.

Storage layout (small JSON documents, changed only with conditional writes, like the catalogue):

    auth/users.json    {"version": 1, "users": {name: {"hash": argon2id, "created_at": iso}}}
    auth/tokens.json   {"version": 1, "tokens": {id: {"user", "sha256", "label", "created_at"}}}

Passwords are Argon2id hashes (argon2-cffi's defaults). A token is `arch_` + 32 random bytes;
only its SHA-256 is stored (a fast hash is enough for a secret with 256 bits of entropy), so a
copy of the bucket does not let anyone in. Readers cache each document for `ttl` seconds; checks
that guard a write (`fresh=True`) revalidate with a conditional GET first, so a revoked token or
a removed editor stops working at once in every process, not only in the one that changed it.

Sign-in failures are throttled per account and per client address in memory (`Throttle`): it is
per process, so N processes allow at most N times the limit, which still defeats guessing.
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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from archive.errors import Conflict, InvalidInput, NotFound, StorageError, TooManyRequests
from archive.models import utcnow
from archive.storage import ObjectStore

USERS_KEY = "auth/users.json"
TOKENS_KEY = "auth/tokens.json"
FORMAT_VERSION = 1
MAX_ATTEMPTS = 30
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # Argon2 hashes anything, but nobody types more; refuses a CPU-burning POST
TOKEN_PREFIX = "arch_"
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
        """Apply `apply` to a fresh copy and write it back; retried when another writer won."""
        for attempt in range(MAX_ATTEMPTS):
            value, etag = self._load()
            result = apply(value)
            try:
                stored = self.store.put_json(self.key, value, if_match=etag,
                                             if_none_match=etag is None)
            except Conflict:
                time.sleep(secrets.SystemRandom().uniform(0, min(0.5, 0.01 * 2**attempt)))
                continue
            with self._lock:
                self._value, self._etag = value, stored.etag
                self._checked_at = time.monotonic()
            return result
        raise Conflict(f"{self.key} is changing too fast to save this change; try again.")

    def _load(self) -> tuple[dict[str, Any], str | None]:
        try:
            result = self.store.get_bytes(self.key)
        except NotFound:
            return {"version": FORMAT_VERSION}, None
        assert result is not None
        return _parse(result[0], self.key), result[1]


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
        name = normalise_username(name)
        hashed = self.hasher.hash(check_password(password))

        def apply(doc: dict[str, Any]) -> None:
            user = doc.get("users", {}).get(name)
            if user is None:
                raise NotFound(f"There is no editor called {name!r}.")
            user["hash"] = hashed

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
        """Parameters were raised since this hash was made: upgrade it while we know it."""
        with contextlib.suppress(NotFound, InvalidInput):
            self.set_password(name, password)

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


def _info(token_id: str, record: dict[str, Any]) -> TokenInfo:
    return TokenInfo(id=token_id, user=str(record.get("user", "")),
                     label=str(record.get("label", "")), created_at=str(record.get("created_at")))


def _drop_tokens(doc: dict[str, Any], matches: Callable[[dict[str, Any]], bool]) -> None:
    tokens = doc.setdefault("tokens", {})
    for token_id in [tid for tid, record in tokens.items() if matches(record)]:
        del tokens[token_id]


class Throttle:
    """Sliding-window failure counter: at most `limit` failures per `window` seconds per key.

    Keys are `account:<name>` (whether or not the account exists, so the answer does not reveal
    it) and `address:<ip>`. A throttled attempt is refused before any password is checked.
    """

    def __init__(self, limit: int, window: float, *, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.RLock()  # take() checks under the same lock

    def check(self, key: str) -> None:
        """Raise TooManyRequests (with Retry-After seconds) while `key` is over its limit."""
        with self._lock:
            recent = self._recent(key)
            if len(recent) >= self.limit:
                wait = int(recent[0] + self.window - self.clock()) + 1
                raise TooManyRequests(
                    f"Too many failed sign-ins. Try again in {max(wait // 60, 1)} minute(s).",
                    retry_after=wait,
                )

    def fail(self, key: str) -> None:
        with self._lock:
            self._recent(key).append(self.clock())

    def take(self, key: str) -> None:
        """Check and count an attempt in one step, so parallel guesses cannot all slip past
        the limit while the (slow) password check runs; `refund` gives it back on success."""
        with self._lock:
            self.check(key)
            self._recent(key).append(self.clock())

    def refund(self, key: str) -> None:
        with self._lock:
            recent = self._failures.get(key)
            if recent:
                recent.pop()

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str) -> deque[float]:
        recent = self._failures.setdefault(key, deque())
        while recent and recent[0] <= self.clock() - self.window:
            recent.popleft()
        if len(self._failures) > 10_000:  # forget idle keys so memory stays bounded
            for idle in [k for k, v in self._failures.items() if not v and k != key]:
                del self._failures[idle]
        return recent


class SignIn:
    """Password sign-in with throttling per account (5 per 15 min) and per address (20)."""

    def __init__(self, auth: Auth, *, account_limit: int = 5, address_limit: int = 20,
                 window: float = 15 * 60) -> None:
        self.auth = auth
        self.accounts = Throttle(account_limit, window)
        self.addresses = Throttle(address_limit, window)

    def attempt(self, username: str, password: str, address: str) -> str | None:
        """The editor's name, None for a wrong name or password, TooManyRequests when throttled."""
        account = f"account:{normalise_username(username)[:64]}"
        where = f"address:{address}"
        self.addresses.take(where)
        try:
            self.accounts.take(account)
        except TooManyRequests:
            self.addresses.refund(where)
            raise
        name = self.auth.verify_password(username, password)
        if name is None:
            return None  # both attempts stay counted
        self.accounts.clear(account)
        self.addresses.refund(where)
        return name
