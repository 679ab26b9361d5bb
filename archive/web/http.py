"""HTTP details shared by the feed and media endpoints: validators, dates, ranges, encodings.

Pure functions over header values, so both endpoints answer conditional and ranged requests the
same way and the rules are tested once, through the endpoints that use them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import quote

from starlette.requests import Request

from archive.errors import PayloadTooLarge


class RangeNotSatisfiable(Exception):
    """The Range asks only for bytes past the end: answer 416 with `bytes */size`."""


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range within a representation of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


def http_date(moment: datetime) -> str:
    """IMF-fixdate (`Tue, 04 Mar 2025 18:30:00 GMT`), the only form HTTP senders may use."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return format_datetime(aware.astimezone(UTC).replace(microsecond=0), usegmt=True)


def parse_http_date(value: str | None) -> datetime | None:
    """A date header as an aware datetime; None when absent or unreadable (then it is ignored)."""
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _opaque(tag: str) -> str:
    """The tag without its weakness marker: If-None-Match compares weakly."""
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def etag_matches(header: str | None, etags: tuple[str, ...]) -> bool:
    """If-None-Match: does any listed tag (or `*`) weakly match one of our current tags?"""
    if not header:
        return False
    listed = {_opaque(tag) for tag in header.split(",")}
    return "*" in listed or any(_opaque(tag) in listed for tag in etags)


def is_not_modified(
    headers: Mapping[str, str], etags: tuple[str, ...], last_modified: datetime | None
) -> bool:
    """304 rules of RFC 9110 §13.2.2: If-None-Match wins; If-Modified-Since only without it."""
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        return etag_matches(if_none_match, etags)
    since = parse_http_date(headers.get("if-modified-since"))
    if since is None or last_modified is None:
        return False
    return last_modified.replace(microsecond=0) <= since


def if_range_allows(header: str | None, etag: str, last_modified: datetime | None) -> bool:
    """If-Range: honour the Range only when the validator is still current (strong match)."""
    if header is None:
        return True
    header = header.strip()
    if header.startswith(('"', "W/")):
        return not header.startswith("W/") and header == etag
    since = parse_http_date(header)
    return since is not None and last_modified is not None and (
        last_modified.replace(microsecond=0) == since
    )


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """One byte range, or None to send the whole body.

    Syntax we cannot read, other units and multiple ranges are ignored (a full 200 is always a
    correct answer to a Range request); browsers and podcast apps ask for one range at a time.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first or last) or not _digits(first) or not _digits(last):
        return None
    if not first:
        return _suffix_range(int(last), size)
    start = int(first)
    if last and int(last) < start:
        return None  # invalid, so ignored
    if start >= size:
        raise RangeNotSatisfiable
    return ByteRange(start, min(int(last), size - 1) if last else size - 1, size)


def _digits(text: str) -> bool:
    return text == "" or is_count(text, max_digits=18)


def is_count(text: str, *, max_digits: int = 9) -> bool:
    """ASCII digits only, and not absurdly many: `str.isdigit` accepts "²" and `int()` refuses
    strings of thousands of digits, and either would be a 500."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def _suffix_range(length: int, size: int) -> ByteRange:
    if length == 0 or size == 0:
        raise RangeNotSatisfiable
    return ByteRange(max(size - length, 0), size - 1, size)


def accepts_gzip(header: str | None) -> bool:
    """Accept-Encoding allows gzip (explicitly or through `*`) with a non-zero quality."""
    if not header:
        return False
    qualities: dict[str, float] = {}
    for item in header.split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        qualities[coding.lower()] = _quality(params)
    if "gzip" in qualities:
        return qualities["gzip"] > 0
    return qualities.get("*", 0) > 0


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266 / 5987)."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = "".join(c if c.isprintable() and c not in '"\\;' else "_" for c in ascii_name)
    ascii_name = ascii_name.strip() or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def read_limited(request: Request, limit: int, too_large: str) -> bytes:
    """A small body, refused (413) as soon as its declared or received size passes `limit`."""
    declared = request.headers.get("content-length", "")
    if is_count(declared, max_digits=18) and int(declared) > limit:
        raise PayloadTooLarge(too_large)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(too_large)
    return bytes(body)
