"""Listeners without identities: a keyed hash of (IP, user agent) under a key that lives one day.

IAB v2.3 counts one download per listener per episode per day, where a listener is the pair
IP address + user agent (an IPv6 address by its /64, which one household or phone keeps while
the rest of the address rotates). We never store the address: the listener id is
HMAC-SHA256(day key, address + user agent), cut to 128 bits. The day key is 32 random bytes in
the bucket at `stats/keys/YYYY-MM-DD.key`, created by whichever process needs it first
(a conditional write, so all processes agree) and deleted with all its versions once the day
has been rolled up. Without the key, the 2^32 IPv4 addresses cannot be tried against an id,
and ids of different days cannot be linked: there is no way to count unique listeners across
days, by design.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import secrets
import threading
from datetime import date

from archive.errors import Conflict, NotFound, StorageError
from archive.storage import ObjectStore

KEYS_PREFIX = "stats/keys/"
KEY_BYTES = 32
ID_BYTES = 16


def network_of(address: str) -> str:
    """The part of an address that names a listener: IPv4 whole, IPv6 by its /64; an
    IPv4-mapped IPv6 address as the IPv4 one. Anything else (a unix socket) as given."""
    try:
        ip = ipaddress.ip_address(address.strip().split("%")[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)).network_address) + "/64"
    return str(ip)


def listener_id(key: bytes, address: str, user_agent: str) -> str:
    """128 bits of HMAC-SHA256 over the listener's network and user agent, as hex."""
    message = network_of(address).encode() + b"\x00" + user_agent.encode("utf-8", "replace")
    return hmac.new(key, message, hashlib.sha256).digest()[:ID_BYTES].hex()


def key_name(day: date) -> str:
    return f"{KEYS_PREFIX}{day.isoformat()}.key"


def day_of_key(name: str) -> date | None:
    stem = name.removeprefix(KEYS_PREFIX).removesuffix(".key")
    try:
        return date.fromisoformat(stem)
    except ValueError:
        return None


class DailyKeys:
    """The day keys this process holds, fetched or created on first use (blocks on storage:
    only the flush thread and roll-ups call it, never a request)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._keys: dict[date, bytes] = {}
        self._lock = threading.Lock()

    def key_for(self, day: date) -> bytes:
        with self._lock:
            key = self._keys.get(day)
            if key is None:
                key = self._fetch_or_create(day)
                self._keys[day] = key
            return key

    def _fetch_or_create(self, day: date) -> bytes:
        name = key_name(day)
        with contextlib.suppress(Conflict):  # another process made the day's key first
            self.store.put_bytes(name, secrets.token_bytes(KEY_BYTES), if_none_match=True)
        found = self.store.get_bytes(name)
        assert found is not None
        if len(found[0]) < KEY_BYTES // 2:  # an empty or truncated key would be guessable
            raise StorageError(f"{name} is not a usable key; delete it to have a new one made.")
        return found[0]

    def forget_before(self, day: date) -> None:
        """Drop keys of days before `day` from memory (they are deleted from the bucket by
        the roll-up)."""
        with self._lock:
            for old in [d for d in self._keys if d < day]:
                del self._keys[old]


def pending_days(store: ObjectStore) -> list[date]:
    """Days whose key still exists: days with events that have not been rolled up yet."""
    days = {day_of_key(info.key) for info in store.list(KEYS_PREFIX)}
    return sorted(d for d in days if d is not None)


def destroy_key(store: ObjectStore, day: date) -> None:
    """Delete the day's key and every version of it; a missing key is already destroyed."""
    with contextlib.suppress(NotFound):
        store.delete_every_version(key_name(day))
