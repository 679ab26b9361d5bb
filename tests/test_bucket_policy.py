"""docs/bucket-policy.json: anonymous readers may fetch published media, never anything else.

Evaluated here with S3's own rules (an explicit Deny wins, otherwise an Allow is needed; `*` in a
resource matches any run of characters, `/` included, `?` exactly one), against every kind of
key the archive writes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

POLICY = Path(__file__).resolve().parent.parent / "docs" / "bucket-policy.json"
BUCKET = "archive"

PUBLIC = [
    "episodes/0123456789ab/trusting-enemies.mp3",
    "episodes/0123456789ab/original.wav",
    "episodes/0123456789ab/cover-0123456789ab.jpg",
    "episodes/0123456789ab/transcript.vtt",
    "episodes/0123456789ab/chapters.json",
    "episodes/0123456789ab/transcript.srt",
    "episodes/0123456789ab/original.bin",
    "series/lectures/cover-0123456789ab.jpg",
    "site/cover-0123456789ab.jpg",
]
PRIVATE = [
    "auth/users.json", "auth/tokens.json", "auth/signin/0a.json", "audit/20240101T000000Z-ab.json",
    "catalog.json", "jobs/abc.json", "tasks/queue/x.json", "tasks/failed/x.json",
    "search/index.sqlite", "episodes/0123456789ab/meta.json", "series/lectures/meta.json",
    "series/lectures/other.txt", "site/anything-else.json", "stats/2024-01.json",
    "tombstones/0123456789ab.json", "trash/2024-01-01/episodes/0123456789ab/talk.mp3",
    "trash/2024-01-01/auth/users.json", "episodes/0123456789ab/notes.json",
]


def _matches(pattern: str, value: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value) is not None


def _as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def anonymous_may(policy: dict, action: str, resource: str) -> bool:  # type: ignore[type-arg]
    verdicts = set()
    for statement in policy["Statement"]:
        if statement.get("Principal") not in ("*", {"AWS": "*"}):
            continue
        if not any(_matches(a, action) for a in _as_list(statement["Action"])):
            continue
        if any(_matches(r, resource) for r in _as_list(statement["Resource"])):
            assert "Condition" not in statement, "conditions are not evaluated by this test"
            verdicts.add(statement["Effect"])
    return "Allow" in verdicts and "Deny" not in verdicts


@pytest.fixture(scope="module")
def policy() -> dict:  # type: ignore[type-arg]
    policy = json.loads(POLICY.read_text(encoding="utf-8"))
    assert policy["Version"] == "2012-10-17"
    for statement in policy["Statement"]:
        for resource in _as_list(statement["Resource"]):
            assert resource.startswith(f"arn:aws:s3:::{BUCKET}"), resource
    return policy


@pytest.mark.parametrize("key", PUBLIC)
def test_published_media_is_readable(policy: dict, key: str) -> None:  # type: ignore[type-arg]
    assert anonymous_may(policy, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/{key}")


@pytest.mark.parametrize("key", PRIVATE)
def test_everything_else_stays_private(policy: dict, key: str) -> None:  # type: ignore[type-arg]
    assert not anonymous_may(policy, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/{key}")


def test_the_apps_own_access_is_never_denied(policy: dict) -> None:  # type: ignore[type-arg]
    """A Deny for everyone would stop the app itself reading meta.json (reindex, verify)."""
    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])


def test_nobody_anonymous_lists_or_writes(policy: dict) -> None:  # type: ignore[type-arg]
    assert not anonymous_may(policy, "s3:ListBucket", f"arn:aws:s3:::{BUCKET}")
    for action in ("s3:PutObject", "s3:DeleteObject", "s3:GetObjectAcl", "s3:PutBucketPolicy"):
        assert not anonymous_may(policy, action, f"arn:aws:s3:::{BUCKET}/episodes/x/a.mp3")
    for statement in policy["Statement"]:
        if statement["Effect"] == "Allow":
            assert _as_list(statement["Action"]) == ["s3:GetObject"], statement
