"""Downloads from addresses someone else wrote (an old host's feed and its enclosures).

A feed can name any address, so a download could be pointed at the archive's own network
(the S3 endpoint, a cloud metadata service, an intranet admin page). Every hop is therefore
resolved first and refused when any of its addresses is private, loopback, link-local,
multicast, reserved or unspecified (unless `allow_private`), the connection is made to exactly
the address that was checked (no second DNS answer can swap it), and redirects are followed
by hand so each target is checked the same way. Only http and https, at most 5 redirects.

Downloads to disk resume: a `.part` file is continued with `Range` (guarded by `If-Range` with
the validator the first answer gave), so an interrupted import picks up where it stopped.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

from archive.errors import InvalidInput

MAX_REDIRECTS = 5
TIMEOUT_S = 30.0
CHUNK = 256 * 1024
USER_AGENT = "archive-import/1 (podcast move; +https://podcastindex.org)"
REDIRECTS = {301, 302, 303, 307, 308}

Progress = Callable[[int, int | None], None]  # bytes so far, total when known


class FetchError(InvalidInput):
    """A download that cannot be made or was refused: one line for the person running it."""


def _blocked(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def resolve(host: str, port: int, *, allow_private: bool) -> str:
    """The address to connect to; refused if any address of the host is not public."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise FetchError(f"Cannot find the host {host!r}: {error}.") from None
    addresses = [info[4][0] for info in found]
    if not addresses:
        raise FetchError(f"Cannot find the host {host!r}.")
    if not allow_private:
        blocked = [a for a in addresses if _blocked(a)]
        if blocked:
            raise FetchError(f"{host} resolves to a private, loopback or link-local address "
                             f"({blocked[0]}); refused (use --allow-private for an intranet "
                             "host).")
    return str(addresses[0])


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str) -> None:
        super().__init__(host, port, timeout=TIMEOUT_S)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str) -> None:
        super().__init__(host, port, timeout=TIMEOUT_S, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def open_url(url: str, *, allow_private: bool, headers: dict[str, str] | None = None
             ) -> tuple[str, http.client.HTTPResponse, http.client.HTTPConnection]:
    """GET `url`, following checked redirects; the caller closes the connection."""
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchError(f"Only http and https addresses can be fetched, not {url[:200]!r}.")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise FetchError(f"The address {url[:200]!r} has a bad port.") from None
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise FetchError(f"The host name in {url[:200]!r} is not valid.") from None
        address = resolve(host, port, allow_private=allow_private)
        kind = _PinnedHTTPS if parts.scheme == "https" else _PinnedHTTP
        connection = kind(host, port, address)
        # Non-ASCII or spaces in a path are sent percent-encoded, as browsers do.
        target = quote((parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                       safe="/?&=%:@!$'()*+,;~-._")
        try:
            connection.request("GET", target, headers={"User-Agent": USER_AGENT,
                                                       "Accept-Encoding": "identity",
                                                       **(headers or {})})
            response = connection.getresponse()
        except (OSError, http.client.HTTPException, ValueError) as error:
            connection.close()
            raise FetchError(f"Cannot download {url[:200]}: {error}.") from None
        if response.status in REDIRECTS and response.getheader("location"):
            location = response.getheader("location") or ""
            connection.close()
            url = urljoin(url, location)
            continue
        return url, response, connection
    raise FetchError(f"Too many redirects from {url[:200]}.")


def fetch_bytes(url: str, *, allow_private: bool, limit: int) -> bytes:
    """A small document (feed, chapters, transcript, artwork), at most `limit` bytes."""
    _, response, connection = open_url(url, allow_private=allow_private)
    try:
        if response.status != 200:
            raise FetchError(f"{url[:200]} answered {response.status} {response.reason}.")
        data = response.read(limit + 1)
    except (OSError, http.client.HTTPException) as error:
        raise FetchError(f"Cannot download {url[:200]}: {error}.") from None
    finally:
        connection.close()
    if len(data) > limit:
        raise FetchError(f"{url[:200]} is larger than {limit // 2**20} MB.")
    return data


def download(url: str, target: Path, *, allow_private: bool, limit: int,
             progress: Progress | None = None) -> Path:
    """`url` into `target`, resuming a `.part` left by an earlier, interrupted run."""
    part = target.with_name(target.name + ".part")
    validator_file = target.with_name(target.name + ".validator")
    have = part.stat().st_size if part.exists() else 0
    validator = validator_file.read_text() if have and validator_file.exists() else ""
    headers = {"Range": f"bytes={have}-", "If-Range": validator} if have and validator else {}
    _, response, connection = open_url(url, allow_private=allow_private, headers=headers)
    try:
        if response.status == 206 and headers:
            expected = (response.getheader("content-range") or "").startswith(f"bytes {have}-")
            if not expected:
                raise FetchError(f"{url[:200]} answered a range we did not ask for.")
            mode = "ab"
        elif response.status == 200:
            have, mode = 0, "wb"
        else:
            raise FetchError(f"{url[:200]} answered {response.status} {response.reason}.")
        length = response.getheader("content-length")
        total = have + int(length) if length and length.isdigit() else None
        if total is not None and total > limit:
            raise FetchError(f"{url[:200]} is {total // 2**20} MB, more than the "
                             f"{limit // 2**20} MB allowed.")
        new_validator = response.getheader("etag") or response.getheader("last-modified") or ""
        if mode == "wb":
            validator_file.write_text(new_validator)
        done = _copy(response, part, mode, have, limit, total, progress, url)
    except (OSError, http.client.HTTPException) as error:
        raise FetchError(f"The download of {url[:200]} stopped ({error}); run the import "
                         "again to resume it.") from None
    finally:
        connection.close()
    if total is not None and done != total:
        raise FetchError(f"The download of {url[:200]} was cut short; run the import again "
                         "to resume it.")
    part.replace(target)
    validator_file.unlink(missing_ok=True)
    return target


def _copy(response: http.client.HTTPResponse, part: Path, mode: str, have: int, limit: int,
          total: int | None, progress: Progress | None, url: str) -> int:
    done = have
    with part.open(mode) as out:
        while chunk := response.read(CHUNK):
            done += len(chunk)
            if done > limit:
                raise FetchError(f"{url[:200]} is larger than the {limit // 2**20} MB allowed.")
            out.write(chunk)
            if progress is not None:
                progress(done, total)
    return done
