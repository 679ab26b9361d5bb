"""Sign-in throttling, shared by every app process through small documents in the bucket.

Failures (a wrong name or password) are counted three ways:

- per (account, address): `free` failures, then a back-off of `backoff` seconds that doubles with
  every further failure, up to `max_backoff`. A success from that address clears it; it is
  forgotten `forget_after` seconds after its last failure. This is the limit a guesser meets, and
  it shuts out only their own address: the editor elsewhere still signs in.
- per account, from every address: `account` failures in `window` seconds, a much higher
  ceiling that only a guesser with many addresses reaches.
- per address, over every account: `address` failures in `window` seconds (password spraying).

The counters live in `auth/signin/<shard>.json` (64 shards by a hash of the account or the
address; names and addresses are stored only hashed), changed with If-Match: one conditional
write per failed guess (two when account and address fall in different shards), none for a
refused attempt. A refusal is decided from the cached documents (revalidated at most every `ttl`
seconds, so a throttled guesser costs no storage request); an attempt the cache allows is checked
again against a fresh read, with this process's attempts in flight counted too, before the
password is tried. So parallel guesses cannot outrun a limit within a process, and across
processes only the guesses in flight at the same instant can. (An attempt in flight whose
failure is already in the newest version seen counts twice until it finishes: near a limit,
parallel attempts may be refused one early, never let through one late.)
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from archive.auth import Auth, JsonDocument, normalise_username
from archive.errors import TooManyRequests

PREFIX = "auth/signin/"
SHARDS = 64
MAX_PAIRS = 500  # per account: a guesser cycling addresses cannot grow a document for ever


@dataclass(frozen=True)
class Limits:
    """How many failures are allowed, and for how long they count (seconds)."""

    free: int = 5
    backoff: float = 60.0
    max_backoff: float = 3600.0
    forget_after: float = 86_400.0
    account: int = 100
    address: int = 20
    window: float = 900.0

    def pair_wait(self, failures: int, last: float, now: float) -> float:
        """Seconds until this (account, address) may try again (0 when it may now)."""
        if failures < self.free:
            return 0.0
        delay = min(self.backoff * 2 ** min(failures - self.free, 32), self.max_backoff)
        return max(last + delay - now, 0.0)

    def window_wait(self, times: list[float], pending: int, limit: int, now: float) -> float:
        """Seconds until fewer than `limit` failures (plus those in flight) are in the window."""
        recent = sorted(t for t in times if t > now - self.window)
        over = len(recent) + pending - limit
        if over < 0:
            return 0.0
        if over < len(recent):  # the failure whose expiry frees a slot
            return recent[over] + self.window - now
        return self.window


@dataclass(frozen=True)
class Who:
    """One attempt's counters, by hashed name: the account, the address, and the pair."""

    account: str
    address: str

    @classmethod
    def of(cls, username: str, address: str) -> Who:
        return cls(_digest("account", normalise_username(username)[:64]),
                   _digest("address", address))

    @property
    def keys(self) -> tuple[str, str, str]:
        """What attempts in flight are counted under."""
        return (f"a:{self.account}", f"i:{self.address}", f"p:{self.account}:{self.address}")


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def throttled(wait: float) -> TooManyRequests:
    seconds = math.ceil(wait)
    return TooManyRequests(
        f"Too many failed sign-ins. Try again in {max(round(seconds / 60), 1)} minute(s).",
        retry_after=seconds)


def shard_key(digest: str) -> str:
    return f"{PREFIX}{int(digest[:4], 16) % SHARDS:02d}.json"


class SignIn:
    """Password sign-in with shared throttling. One instance per process."""

    def __init__(self, auth: Auth, *, ttl: float | None = None, limits: Limits | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.auth = auth
        self.store = auth.users.store
        self.ttl = auth.users.ttl if ttl is None else ttl
        self.limits = limits or Limits()
        self.clock = clock
        self._docs: dict[str, JsonDocument] = {}
        # The newest version of each shard seen (by its "seq"), and the attempts in flight:
        # both change under `_lock` only, so no failure is ever missed (one may count twice,
        # briefly, while its own attempt is still in flight).
        self._latest: dict[str, dict[str, Any]] = {}
        self._pending: Counter[str] = Counter()
        self._lock = threading.Lock()

    def attempt(self, username: str, password: str, address: str) -> str | None:
        """The editor's name, None for a wrong name or password, TooManyRequests when throttled.

        Blocks on storage: call it from a worker thread."""
        who = Who.of(username, address)
        self._check(who, fresh=False)  # from the cache: costs nothing while throttled
        self._check(who, fresh=True, reserve=True)
        written: list[tuple[str, dict[str, Any]]] = []
        try:
            name = self.auth.verify_password(username, password)
            written = self._record_failure(who) if name is None else self._clear_pair(who)
            return name
        finally:
            self._settle(who, written)

    # -- deciding --------------------------------------------------------------------------

    def _check(self, who: Who, *, fresh: bool, reserve: bool = False) -> None:
        """Refuse while throttled; with `reserve`, count the attempt as in flight in the same
        step, so parallel attempts cannot all pass the check before any is counted."""
        seen = [(shard_key(d), self._doc(d).read(fresh=fresh)) for d in (who.account, who.address)]
        with self._lock:
            for key, value in seen:
                self._observe(key, value)
            wait = self._wait(who)
            if wait <= 0 and reserve:
                self._pending.update(who.keys)
        if wait > 0:
            raise throttled(wait)

    def _settle(self, who: Who, written: list[tuple[str, dict[str, Any]]]) -> None:
        """The attempt is over: what it wrote now counts, so it no longer counts as in flight."""
        with self._lock:
            for key, value in written:
                self._observe(key, value)
            self._pending.subtract(who.keys)
            for key in who.keys:
                if self._pending[key] <= 0:
                    del self._pending[key]

    def _observe(self, key: str, value: dict[str, Any]) -> None:
        """Keep the newest version of a shard (a version read late may be older than one
        written meanwhile). Call with the lock held."""
        known = self._latest.get(key)
        if known is None or value.get("seq", 0) >= known.get("seq", 0):
            self._latest[key] = value

    def _wait(self, who: Who) -> float:
        """Seconds this attempt must wait (0: it may go ahead). Call with the lock held."""
        now, limits = self.clock(), self.limits
        account_key, address_key, pair_key = who.keys
        accounts = self._latest.get(shard_key(who.account), {}).get("accounts", {})
        addresses = self._latest.get(shard_key(who.address), {}).get("addresses", {})
        record = accounts.get(who.account) or {}
        failures, last = (record.get("pairs") or {}).get(who.address) or (0, 0.0)
        in_flight = self._pending[pair_key]
        pair = limits.pair_wait(failures + in_flight, now if in_flight else last, now)
        account = limits.window_wait(list(record.get("failures") or []),
                                     self._pending[account_key], limits.account, now)
        spraying = limits.window_wait(list(addresses.get(who.address) or []),
                                      self._pending[address_key], limits.address, now)
        return max(pair, account, spraying)

    # -- counting ----------------------------------------------------------------------------

    def _record_failure(self, who: Who) -> list[tuple[str, dict[str, Any]]]:
        """Count a failure in the bucket: the new versions of the shards written."""
        now = self.clock()
        account_key, address_key = shard_key(who.account), shard_key(who.address)
        account_doc, address_doc = self._doc(who.account), self._doc(who.address)

        def count_account(doc: dict[str, Any]) -> None:
            record = doc.setdefault("accounts", {}).setdefault(who.account, {})
            record["failures"] = [*record.get("failures", []), now][-self.limits.account:]
            pairs = record.setdefault("pairs", {})
            failures = (pairs.get(who.address) or (0, 0.0))[0]
            pairs[who.address] = [failures + 1, now]
            if len(pairs) > MAX_PAIRS:
                for stale in sorted(pairs, key=lambda a: pairs[a][1])[:len(pairs) - MAX_PAIRS]:
                    del pairs[stale]

        def count_address(doc: dict[str, Any]) -> None:
            addresses = doc.setdefault("addresses", {})
            addresses[who.address] = [*addresses.get(who.address, []),
                                      now][-self.limits.address:]

        if account_doc is address_doc:
            return [(account_key, account_doc.change(
                self._edit(now, count_account, count_address)))]
        return [(account_key, account_doc.change(self._edit(now, count_account))),
                (address_key, address_doc.change(self._edit(now, count_address)))]

    def _clear_pair(self, who: Who) -> list[tuple[str, dict[str, Any]]]:
        """A success forgives that address's failures on that account (a write only if any)."""
        key, doc = shard_key(who.account), self._doc(who.account)
        with self._lock:
            accounts = self._latest.get(key, {}).get("accounts", {})
            if who.address not in ((accounts.get(who.account) or {}).get("pairs") or {}):
                return []

        def clear(value: dict[str, Any]) -> None:
            (value.get("accounts", {}).get(who.account) or {}).get("pairs", {}).pop(
                who.address, None)

        return [(key, doc.change(self._edit(self.clock(), clear)))]

    def _edit(self, now: float, *edits: Callable[[dict[str, Any]], None]
              ) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """One write to a shard: prune it, apply `edits`, advance its version."""

        def apply(doc: dict[str, Any]) -> dict[str, Any]:
            self._prune(doc, now)
            for edit in edits:
                edit(doc)
            doc["seq"] = int(doc.get("seq", 0)) + 1
            return doc

        return apply

    def _prune(self, doc: dict[str, Any], now: float) -> None:
        """Drop what no longer counts, so each shard stays small."""
        since = now - self.limits.window
        accounts = doc.setdefault("accounts", {})
        for digest, record in list(accounts.items()):
            record["failures"] = [t for t in record.get("failures", []) if t > since]
            pairs = record.setdefault("pairs", {})
            for address in [a for a, (_, last) in pairs.items()
                            if last <= now - self.limits.forget_after]:
                del pairs[address]
            if not record["failures"] and not pairs:
                del accounts[digest]
        addresses = doc.setdefault("addresses", {})
        for digest, times in list(addresses.items()):
            addresses[digest] = [t for t in times if t > since]
            if not addresses[digest]:
                del addresses[digest]

    def _doc(self, digest: str) -> JsonDocument:
        key = shard_key(digest)
        with self._lock:
            doc = self._docs.get(key)
            if doc is None:
                doc = self._docs[key] = JsonDocument(self.store, key, self.ttl)
            return doc
