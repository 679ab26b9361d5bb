"""ObjectStore: the archive's only door to S3 (and the only module that imports boto3).

Every call speaks our vocabulary and raises our errors: `NotFound`, `Conflict` (a conditional
write lost), `StorageError` (anything else, with a readable message). botocore's standard retry
mode retries 5xx, throttling and connection errors with backoff, and never plain 4xx.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import boto3
import botocore.exceptions
from botocore.config import Config

from archive.errors import Conflict, NotFound, StorageError

PART_SIZE = 8 * 1024 * 1024  # S3's minimum is 5 MiB; one part is the most we hold in memory
STREAM_CHUNK = 256 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str
    last_modified: datetime | None = None
    content_type: str = ""


@dataclass(frozen=True)
class Stored:
    """What an upload wrote: enough to record fixity in the catalogue."""

    key: str
    size: int
    sha256: str
    etag: str


def file_sha256(path: Path, chunk: int = 1024 * 1024) -> str:
    """The SHA-256 of a local file, read in chunks (what the archive keeps for every object)."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class ObjectStore:
    """One bucket on an S3-compatible server."""

    def __init__(
        self,
        endpoint: str | None,
        bucket: str,
        *,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
        max_attempts: int = 5,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ) -> None:
        self.bucket = bucket
        self.endpoint = endpoint or "AWS S3"
        config = Config(
            retries={"max_attempts": max_attempts, "mode": "standard"},
            s3={"addressing_style": "path"},
            signature_version="s3v4",  # presigned URLs too (botocore's us-east-1 default is v2)
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=32,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=config,
        )

    # -- bucket --------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist (embedded server and tests)."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except botocore.exceptions.ClientError as error:
            if _status(error) not in (404, 400):
                raise self._translate(error, self.bucket) from None
        except botocore.exceptions.BotoCoreError as error:
            raise self._translate(error, self.bucket) from None
        with self._errors(self.bucket):
            self._client.create_bucket(Bucket=self.bucket)

    def unfinished_uploads(self, prefix: str = "") -> list[tuple[str, str, datetime | None]]:
        """Multipart uploads begun and never completed nor aborted: (key, upload id, started)."""
        found: list[tuple[str, str, datetime | None]] = []
        paginator = self._client.get_paginator("list_multipart_uploads")
        with self._errors(prefix or self.bucket):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                found += [(u["Key"], u["UploadId"], u.get("Initiated"))
                          for u in page.get("Uploads", [])]
        return found

    def abort_upload(self, key: str, upload_id: str) -> None:
        with self._errors(key):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def drop_bucket(self) -> None:
        """Delete every object, unfinished upload and the bucket itself (tests, benchmarks)."""
        self.delete_many(info.key for info in self.list())
        with self._errors(self.bucket):
            uploads = self._client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
            for upload in uploads:
                self._abort(upload["Key"], upload["UploadId"])
            self._client.delete_bucket(Bucket=self.bucket)

    def check(self) -> None:
        """Raise StorageError unless the bucket answers (used by /healthz)."""
        try:
            with self._errors(self.bucket):
                self._client.head_bucket(Bucket=self.bucket)
        except NotFound:
            raise StorageError(f"The bucket {self.bucket!r} does not exist.") from None

    # -- small objects ---------------------------------------------------------------------

    def put_bytes(
        self,
        key: str,
        data: bytes,
        content_type: str = "application/octet-stream",
        *,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> Stored:
        """Write a whole object; with `if_match`/`if_none_match` a lost race raises Conflict."""
        args: dict[str, Any] = {
            "Bucket": self.bucket, "Key": key, "Body": data, "ContentType": content_type,
        }
        if if_match:
            args["IfMatch"] = if_match
        if if_none_match:
            args["IfNoneMatch"] = "*"
        with self._errors(key):
            response = self._client.put_object(**args)
        return Stored(key, len(data), hashlib.sha256(data).hexdigest(), response["ETag"])

    def put_many(self, items: list[tuple[str, bytes]], content_type: str,
                 threads: int = 16) -> None:
        """Write several small objects at once (new segments of a catalogue change)."""
        if len(items) <= 1:
            for key, data in items:
                self.put_bytes(key, data, content_type)
            return
        with ThreadPoolExecutor(min(threads, len(items))) as pool:
            for _ in pool.map(lambda item: self.put_bytes(item[0], item[1], content_type),
                              items):
                pass

    def put_json(self, key: str, value: Any, **conditions: Any) -> Stored:
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        return self.put_bytes(key, data, "application/json", **conditions)

    def get_bytes(self, key: str, *, if_none_match: str | None = None) -> tuple[bytes, str] | None:
        """The object and its ETag; None when `if_none_match` still matches (304)."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if if_none_match:
            args["IfNoneMatch"] = if_none_match
        try:
            response = self._client.get_object(**args)
            return response["Body"].read(), response["ETag"]
        except botocore.exceptions.ClientError as error:
            if _status(error) == 304:
                return None
            raise self._translate(error, key) from None
        except botocore.exceptions.BotoCoreError as error:
            raise self._translate(error, key) from None

    def get_json(self, key: str) -> tuple[Any, str]:
        result = self.get_bytes(key)
        assert result is not None
        data, etag = result
        try:
            return json.loads(data), etag
        except ValueError:
            raise StorageError(f"{key} in the bucket is not valid JSON.") from None

    # -- large objects ---------------------------------------------------------------------

    def upload_stream(
        self,
        key: str,
        stream: IO[bytes],
        content_type: str = "application/octet-stream",
        *,
        progress: Any = None,
    ) -> Stored:
        """Stream a file of any size with bounded memory (about two parts), hashing as it goes.

        Small files go in one PUT; larger ones as a multipart upload that is aborted on any
        failure, so no invisible parts are left to pay for.
        """
        digest = hashlib.sha256()
        first = _read_part(stream)
        digest.update(first)
        if len(first) < PART_SIZE:
            stored = self.put_bytes(key, bytes(first), content_type)
            if progress:
                progress(len(first))
            return stored
        with self._errors(key):
            upload_id = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type
            )["UploadId"]
        try:
            parts, size = self._upload_parts(key, upload_id, stream, first, digest, progress)
            with self._errors(key):
                response = self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
        except BaseException:
            self._abort(key, upload_id)
            raise
        return Stored(key, size, digest.hexdigest(), response.get("ETag", ""))

    def _upload_parts(
        self, key: str, upload_id: str, stream: IO[bytes], chunk: bytearray, digest: Any,
        progress: Any,
    ) -> tuple[list[dict[str, Any]], int]:
        parts: list[dict[str, Any]] = []
        size = 0
        while chunk:
            number = len(parts) + 1
            with self._errors(key):
                response = self._client.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                )
            parts.append({"PartNumber": number, "ETag": response["ETag"]})
            size += len(chunk)
            if progress:
                progress(len(chunk))
            del chunk  # let the part go before the next one is read
            chunk = _read_part(stream)
            digest.update(chunk)
        return parts, size

    def _abort(self, key: str, upload_id: str) -> None:
        # When storage is down the bucket's lifecycle rule cleans incomplete uploads.
        failures = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)
        with contextlib.suppress(*failures):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def upload_file(
        self, key: str, path: Any, content_type: str, *, progress: Any = None
    ) -> Stored:
        with open(path, "rb") as stream:
            return self.upload_stream(key, stream, content_type, progress=progress)

    def open(self, key: str, byte_range: tuple[int, int] | None = None) -> Iterator[bytes]:
        """Stream an object (or the inclusive byte range) in chunks; memory does not grow."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if byte_range is not None:
            args["Range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        with self._errors(key):
            body = self._client.get_object(**args)["Body"]
        return _chunks(body, key, self)

    def download_to(self, key: str, stream: IO[bytes]) -> None:
        for chunk in self.open(key):
            stream.write(chunk)

    # -- metadata, listing, deleting --------------------------------------------------------

    def head(self, key: str) -> ObjectInfo:
        with self._errors(key):
            r = self._client.head_object(Bucket=self.bucket, Key=key)
        return ObjectInfo(key, r["ContentLength"], r["ETag"], r.get("LastModified"),
                          r.get("ContentType", ""))

    def exists(self, key: str) -> bool:
        try:
            self.head(key)
            return True
        except NotFound:
            return False

    def list(self, prefix: str = "", *, limit: int | None = None) -> Iterator[ObjectInfo]:
        """Every object under `prefix` in key order (or the first `limit`), following
        continuation tokens."""
        paginator = self._client.get_paginator("list_objects_v2")
        pages = {"MaxItems": limit, "PageSize": min(limit, 1000)} if limit else {}
        with self._errors(prefix or self.bucket):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix,
                                           PaginationConfig=pages):
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"], item["Size"], item.get("ETag", ""),
                                     item.get("LastModified"))

    def copy(self, source: str, target: str) -> None:
        """Server-side copy (no bytes through us); multipart for objects too large for one."""
        with self._errors(source):
            self._client.copy({"Bucket": self.bucket, "Key": source}, self.bucket, target)

    def delete(self, key: str) -> None:
        with self._errors(key):
            self._client.delete_object(Bucket=self.bucket, Key=key)

    def delete_every_version(self, key: str) -> int:
        """Delete the object and every earlier version and delete marker of it, so bucket
        versioning keeps nothing (the statistics' daily keys). Returns how many went."""
        removed = 0
        paginator = self._client.get_paginator("list_object_versions")
        with self._errors(key):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=key):
                for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    if entry["Key"] != key:
                        continue
                    self._client.delete_object(Bucket=self.bucket, Key=key,
                                               VersionId=entry["VersionId"])
                    removed += 1
        return removed

    def enable_versioning(self) -> None:
        """Turn on bucket versioning (tests that prove nothing survives in old versions)."""
        with self._errors(self.bucket):
            self._client.put_bucket_versioning(
                Bucket=self.bucket, VersioningConfiguration={"Status": "Enabled"})

    def delete_many(self, keys: Iterable[str]) -> None:
        batch: list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) == 1000:
                self._delete_batch(batch)
                batch = []
        if batch:
            self._delete_batch(batch)

    def _delete_batch(self, keys: list[str]) -> None:
        with self._errors(keys[0]):
            response = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True}
            )
        errors = response.get("Errors") or []
        if errors:
            first = errors[0]
            raise StorageError(f"Could not delete {first.get('Key')}: {first.get('Message')}.")

    def presigned_get(self, key: str, expires: int = 3600) -> str:
        with self._errors(key):
            return self._client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires
            )

    # -- errors ------------------------------------------------------------------------------

    def _errors(self, key: str) -> _Translate:
        return _Translate(self, key)

    def _translate(self, error: Exception, key: str) -> Exception:
        if isinstance(error, botocore.exceptions.ClientError):
            status = _status(error)
            code = error.response.get("Error", {}).get("Code", "")
            if status == 404 or code in {"NoSuchKey", "NotFound", "NoSuchBucket"}:
                if code == "NoSuchBucket":
                    return StorageError(f"The bucket {self.bucket!r} does not exist.")
                return NotFound(f"{key} is not in the archive.")
            if status in (409, 412) or code == "PreconditionFailed":
                return Conflict(f"{key} was changed by someone else; try again.")
            message = error.response.get("Error", {}).get("Message") or code or "error"
            return StorageError(f"Storage refused the request for {key}: {message} ({status}).")
        kind = type(error).__name__
        return StorageError(f"Storage at {self.endpoint} is not reachable ({kind}).")


class _Translate:
    """Context manager turning botocore exceptions into ours."""

    def __init__(self, store: ObjectStore, key: str) -> None:
        self.store, self.key = store, key

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> bool:
        if isinstance(error, botocore.exceptions.ClientError | botocore.exceptions.BotoCoreError):
            raise self.store._translate(error, self.key) from None
        return False


def _status(error: botocore.exceptions.ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _read_part(stream: IO[bytes]) -> bytearray:
    """Read up to PART_SIZE bytes into one buffer, even from streams that return short reads."""
    buffer = bytearray()
    while len(buffer) < PART_SIZE:
        piece = stream.read(min(STREAM_CHUNK * 4, PART_SIZE - len(buffer)))
        if not piece:
            break
        buffer += piece
    return buffer


def _chunks(body: Any, key: str, store: ObjectStore) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(STREAM_CHUNK)
    except (botocore.exceptions.BotoCoreError, OSError) as error:
        raise StorageError(f"Reading {key} from storage failed ({type(error).__name__}).") from None
    finally:
        body.close()
