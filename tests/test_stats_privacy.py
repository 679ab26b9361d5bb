"""Nothing stored identifies a listener once the day's key is gone.

The bucket is versioned (as backups advise), so an overwritten or deleted key could survive as
an old version: the roll-up must destroy every version. Then every byte under `stats/` (every
version of every object) is searched for the addresses and for every unkeyed hash of them a
dictionary attack over the IPv4 space could compute.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from archive.errors import StorageError
from archive.stats.events import EVENTS_PREFIX
from archive.stats.listeners import (
    KEYS_PREFIX,
    DailyKeys,
    key_name,
    listener_id,
    network_of,
)
from archive.stats.rollup import roll_up_due
from archive.storage import ObjectStore
from tests.stats_helpers import ANTENNAPOD, FIREFOX, at, hit, id3_file, put_media, recorder

DAY = "2026-11-02"
ADDRESSES = [f"192.0.2.{n}" for n in range(1, 40)] + ["2001:db8:1:2::a", "198.51.100.77"]
HASHES = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "blake2b", "blake2s",
          "sha3_256")


def every_version(store: ObjectStore, prefix: str) -> Iterator[tuple[str, bytes]]:
    client = store._client  # tests may look behind the ObjectStore: versions of everything
    for page in client.get_paginator("list_object_versions").paginate(
            Bucket=store.bucket, Prefix=prefix):
        for version in page.get("Versions", []):
            body = client.get_object(Bucket=store.bucket, Key=version["Key"],
                                     VersionId=version["VersionId"])["Body"].read()
            yield version["Key"], body


def key_versions(store: ObjectStore) -> list[str]:
    page = store._client.list_object_versions(Bucket=store.bucket, Prefix=KEYS_PREFIX)
    return [v["Key"] for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]


def unkeyed_forms(address: str, user_agent: str) -> set[bytes]:
    """What a careless design would store, and an attacker could recompute for 2^32 addresses."""
    texts = {address, network_of(address), f"{address}{user_agent}", f"{address} {user_agent}",
             f"{address}\x00{user_agent}", f"{network_of(address)}\x00{user_agent}",
             f"{address}|{user_agent}"}
    forms: set[bytes] = {address.encode()}
    for text in texts:
        for name in HASHES:
            digest = hashlib.new(name, text.encode()).digest()
            for value in (digest, digest[:16], digest[:8]):
                forms |= {value, value.hex().encode(), value.hex().upper().encode()}
        for empty_key in (b"", b"\x00" * 32):  # HMAC with a guessable key
            digest = hmac.new(empty_key, text.encode(), hashlib.sha256).digest()
            forms |= {digest[:16], digest[:16].hex().encode()}
    return forms


def stored_strings(data: bytes) -> set[str]:
    """Every string value of a Parquet object, decoded (compression hides nothing then)."""
    table = pq.read_table(io.BytesIO(data))
    values: set[str] = set()
    for column in table.columns:
        for value in column.to_pylist():
            if isinstance(value, str):
                values.add(value)
    return values


def test_no_address_survives_in_any_form_once_the_key_is_gone(
        store: ObjectStore, tmp_path: Path) -> None:
    store.enable_versioning()
    media = put_media(store, "ep1", "talk.mp3", id3_file(4_000, 200_000), duration=120.0,
                      bitrate=8_000)
    rec = recorder(store, tmp_path)
    agents = {address: (ANTENNAPOD if n % 2 else FIREFOX) for n, address in enumerate(ADDRESSES)}
    for n, address in enumerate(ADDRESSES):
        rec.record(hit(media, at(DAY, f"10:{n % 60:02d}:00"), address, agents[address], 0,
                       media.size))
    rec.flush()
    # Overwrite the key once so an old version exists, as a careless rotation would leave.
    day_key, _ = store.get_bytes(key_name(datetime.fromisoformat(DAY).date()))  # type: ignore[misc]
    store.put_bytes(key_name(datetime.fromisoformat(DAY).date()), day_key)

    stored_ids = set()
    for _key, data in every_version(store, EVENTS_PREFIX):
        stored_ids |= set(pq.read_table(io.BytesIO(data)).column("listener").to_pylist())
    # The ids are the keyed hash: with the key, and only with it, they can be recomputed.
    assert stored_ids == {listener_id(day_key, a, agents[a]) for a in ADDRESSES}

    roll_up_due(store, tmp_path / "cache", datetime(2026, 11, 4, tzinfo=UTC))
    assert key_versions(store) == []  # the key, its old version and any delete marker: gone

    everything = list(every_version(store, "stats/"))
    assert any(key.startswith("stats/daily/") for key, _ in everything)
    for address in ADDRESSES:
        forms = unkeyed_forms(address, agents[address])
        for key, data in everything:
            assert not any(form in data for form in forms), (key, address)
            if key.endswith(".parquet"):
                assert not forms & {s.encode() for s in stored_strings(data)}, (key, address)
    # A dictionary attack with the wrong key finds nothing either.
    wrong = b"\x00" * 32
    assert not stored_ids & {listener_id(wrong, a, agents[a]) for a in ADDRESSES}


def test_an_empty_day_key_is_refused_not_used(store: ObjectStore, tmp_path: Path) -> None:
    """HMAC under an empty key is a hash anyone can recompute: never hash with one."""
    day = datetime.fromisoformat(DAY).date()
    store.put_bytes(key_name(day), b"")
    with pytest.raises(StorageError, match="not a usable key"):
        DailyKeys(store).key_for(day)
    media = put_media(store, "ep1", "talk.mp3", id3_file(4_000, 20_000), duration=10.0)
    rec = recorder(store, tmp_path)
    rec.record(hit(media, at(DAY), "192.0.2.1", ANTENNAPOD, 0, media.size))
    assert rec.flush().written == 0  # kept in memory, not written with a guessable id
    assert not list(store.list(EVENTS_PREFIX))
