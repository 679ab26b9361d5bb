"""Receiving uploads: a streaming multipart reader with a size limit, and ingest from a form.

The body is read chunk by chunk and fed to python-multipart's parser; file parts go straight
to files on disk under `<data_dir>/uploads/<random>/` (never memory, never /tmp, which may be
RAM), named by the form field's role (`recording`, `artwork`…), never by the client's filename.
`Content-Length` over the limit is a 413 before a byte is read; bytes are counted as they arrive,
so a body without (or lying about) its length is cut off with a 413 as soon as it passes the
limit, and the spool folder is removed. The client's filename is only ever kept, cleaned, as
`Metadata.source_filename`, for people to read.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from archive import audit
from archive.errors import ArchiveError, InvalidInput, PayloadTooLarge
from archive.ingest import Metadata, ingest
from archive.models import Episode, clean_text
from archive.runtime import Archive
from archive.web.http import is_count

# Form fields that carry files, and the fixed name each is spooled under.
FILE_FIELDS = {"file": "recording", "artwork": "artwork", "transcript": "transcript",
               "chapters": "chapters"}
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 400
MAX_FILENAME = 200


class BadRequest(ArchiveError):
    status = 400


@dataclass
class UploadedFile:
    path: Path
    filename: str  # cleaned, for display and `source_filename` only
    size: int = 0


@dataclass
class UploadForm:
    """Fields (repeatable) and spooled files of one multipart body; `cleanup` removes them."""

    workdir: Path
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))

    def path(self, name: str) -> Path | None:
        upload = self.files.get(name)
        return upload.path if upload else None

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def safe_filename(name: str) -> str:
    """A client's filename made harmless to show: no folders, control or bidi characters,
    no leading dots, at most 200 characters (the extension kept)."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = clean_text(name, "File name", 100_000).lstrip(". ")
    name = unicodedata.normalize("NFC", name)
    if len(name) > MAX_FILENAME:
        stem, dot, suffix = name.rpartition(".")
        if dot and 0 < len(suffix) <= 10:
            name = f"{stem[:MAX_FILENAME - len(suffix) - 1]}.{suffix}"
        else:
            name = name[:MAX_FILENAME]
    return name or "upload"


class _Receiver:
    """python-multipart callbacks: collect fields, spool file parts to disk."""

    def __init__(self, form: UploadForm) -> None:
        self.form = form
        self.parts = 0
        self._headers: dict[bytes, bytes] = {}
        self._header_name = b""
        self._header_value = b""
        self._name = ""
        self._value = bytearray()
        self._file: IO[bytes] | None = None
        self._upload: UploadedFile | None = None
        self._is_file = False
        self._named = False

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.part_begin, "on_header_field": self.header_field,
            "on_header_value": self.header_value, "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
            "on_part_end": self.part_end,
        }

    def part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise BadRequest("This form has too many fields.")
        self._headers, self._value = {}, bytearray()
        self._file, self._upload, self._is_file = None, None, False

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        self._headers[self._header_name.lower()] = self._header_value
        self._header_name, self._header_value = b"", b""

    def headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        role = FILE_FIELDS.get(self._name)
        # A file field is spooled even without a filename (some clients omit it); any other
        # part with a filename is a file nobody asked for, and is dropped unread.
        self._is_file = filename is not None or role is not None
        if role and self._name not in self.form.files:
            upload = UploadedFile(self.form.workdir / role,
                                  safe_filename((filename or b"").decode("utf-8", "replace")))
            self._upload, self._file = upload, upload.path.open("wb")
            self._named = bool(filename)

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None and self._upload is not None:
            self._file.write(data[start:end])
            self._upload.size += end - start
        elif not self._is_file:
            self._value += data[start:end]
            if len(self._value) > MAX_FIELD_BYTES:
                raise InvalidInput(f"The field {self._name[:40]!r} is too long.")

    def part_end(self) -> None:
        if self._file is not None and self._upload is not None:
            self._file.close()
            if self._upload.size or self._named:  # a browser's "no file chosen" is neither
                self.form.files[self._name] = self._upload
        elif not self._is_file and self._name:
            text = self._value.decode("utf-8", "replace")
            self.form.fields.setdefault(self._name, []).append(text)
        self._file = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


async def read_upload(request: Request, limit: int, spool_dir: Path) -> UploadForm:
    """Parse a multipart body of at most `limit` bytes, spooling files under `spool_dir`."""
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise BadRequest("Send the recording as multipart/form-data.")
    declared = request.headers.get("content-length")
    if declared and is_count(declared, max_digits=18) and int(declared) > limit:
        raise PayloadTooLarge(_too_large(limit))
    spool_dir.mkdir(parents=True, exist_ok=True)
    form = UploadForm(Path(tempfile.mkdtemp(prefix="upload-", dir=spool_dir)))
    receiver = _Receiver(form)
    parser = MultipartParser(boundary, receiver.callbacks())  # type: ignore[arg-type]
    try:
        await _feed(request, parser, limit)
    except MultipartParseError:
        form.cleanup()
        raise BadRequest("The upload was not a well-formed multipart body.") from None
    except BaseException:
        receiver.close()
        form.cleanup()
        raise
    receiver.close()
    return form


async def _feed(request: Request, parser: MultipartParser, limit: int) -> None:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(_too_large(limit))
        if chunk:
            await run_in_threadpool(parser.write, chunk)
    parser.finalize()


def _too_large(limit: int) -> str:
    return f"The upload is larger than the limit of {limit // (1024 * 1024)} MB."


# -- from form fields to an ingest --------------------------------------------------------------


def speakers_from_form(form: UploadForm) -> list[str]:
    """Speakers as `Name;role;affiliation`: from repeatable `speaker` fields (as the CLI), and
    from the upload page's rows (`speaker_name`, `speaker_role`, `speaker_affiliation`)."""
    specs = [s for s in form.getlist("speaker") + form.getlist("speakers") if s.strip()]
    rows = zip(form.getlist("speaker_name"), form.getlist("speaker_role"),
               form.getlist("speaker_affiliation"), strict=False)
    for name, role, affiliation in rows:
        if name.strip():
            # ";" separates the parts of a spec; in a name or affiliation it becomes ","
            specs.append(";".join(part.replace(";", ",").strip()
                                  for part in (name, role or "speaker", affiliation)))
    return specs


def _int_field(form: UploadForm, name: str, label: str) -> int | None:
    value = form.get(name).strip()
    if not value:
        return None
    if not is_count(value):
        raise InvalidInput(f"{label} must be a whole number.")
    return int(value)


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on", "draft"}


def metadata_from_form(form: UploadForm) -> Metadata:
    """The same fields as `archive ingest` (plus the upload page's spellings)."""
    tags = form.getlist("tag") + [t for v in form.getlist("tags") for t in v.split(",")]
    recording = form.files.get("file")
    return Metadata(
        title=form.get("title"), series=form.get("series") or form.get("series_new"),
        date=form.get("date") or None, speakers=speakers_from_form(form),
        description=form.get("description"), tags=[t.strip() for t in tags if t.strip()],
        licence=form.get("licence") or form.get("license") or None,
        event=form.get("event"), location=form.get("location"),
        language=form.get("language") or None, season=_int_field(form, "season", "Season"),
        number=_int_field(form, "episode", "Episode number")
        or _int_field(form, "number", "Episode number"),
        episode_type=form.get("episode_type") or "full",
        explicit=_flag(form.get("explicit")),
        draft=_flag(form.get("draft")) or form.get("publish") == "draft",
        artwork=form.path("artwork"), transcript=form.path("transcript"),
        chapters=form.path("chapters"),
        source_filename=recording.filename if recording else "",
    )


def recording_of(form: UploadForm) -> Path:
    recording = form.files.get("file")
    if recording is None:
        raise InvalidInput("Attach the recording (the form field `file`).")
    return recording.path


def ingest_upload(archive: Archive, user: str, path: Path, meta: Metadata,
                  progress: Any = None) -> Episode:
    """Ingest a spooled upload and record who added it."""
    episode = ingest(archive, path, meta, progress=progress)
    audit.safe_record(archive.store, user, "episode.upload", episode.id, title=episode.title,
                      draft=episode.draft, filename=meta.source_filename)
    return episode


def spool_dir(archive: Archive) -> Path:
    return Path(archive.settings.data_dir) / "uploads"


def sweep_stale_spools(folder: Path, idle: timedelta = timedelta(hours=1)) -> list[Path]:
    """Remove spool folders nothing has written to for `idle`: left by a process that died
    mid-upload (a live upload keeps touching its file, and every process cleans its own)."""
    cutoff = time.time() - idle.total_seconds()
    removed = []
    for spool in folder.glob("upload-*"):
        try:
            newest = max([spool.stat().st_mtime, *(p.stat().st_mtime for p in spool.iterdir())])
        except OSError:
            continue
        if newest < cutoff:
            shutil.rmtree(spool, ignore_errors=True)
            removed.append(spool)
    return removed

