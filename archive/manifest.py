"""Manifests for `archive import`: one row per recording, as CSV or YAML.

Columns/keys are the `archive ingest` options: file, title, series, date, speakers (several
separated by `|`), description, tags (separated by `,`), licence, event, location, language,
artwork, transcript, chapters, draft. Paths are relative to the manifest. A bad row becomes an
error in its place, so the import goes on with the others.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import yaml

from archive.errors import ArchiveError, InvalidInput
from archive.ingest import Metadata

Row = tuple[Path, Metadata] | ArchiveError
TRUE = {"1", "true", "yes", "y", "draft"}


def read_manifest(path: Path) -> list[Row]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise InvalidInput(f"Cannot read the manifest {path}: {error.strerror}.") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"The manifest {path.name} is not UTF-8 text.") from None
    records = _yaml_rows(text, path) if path.suffix.lower() in {".yaml", ".yml"} else \
        list(csv.DictReader(text.splitlines()))
    if not records:
        raise InvalidInput(f"The manifest {path.name} has no rows.")
    return [_row(record, path.parent) for record in records]


def _yaml_rows(text: str, path: Path) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise InvalidInput(f"The manifest {path.name} is not valid YAML: {error}.") from None
    if isinstance(data, dict):
        data = data.get("recordings")
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise InvalidInput(f"The manifest {path.name} must be a list of recordings.")
    return data


def _split(value: Any, separator: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(separator) if part.strip()]


def _path(base: Path, value: Any) -> Path | None:
    return base / str(value).strip() if value not in (None, "") else None


def _row(record: dict[str, Any], base: Path) -> Row:
    record = {str(k).strip().lower(): v for k, v in record.items() if k is not None}
    file = _path(base, record.get("file"))
    if file is None:
        return InvalidInput("The row has no file.")
    try:
        meta = Metadata(
            title=str(record.get("title") or ""),
            series=str(record.get("series") or ""),
            date=str(record["date"]) if record.get("date") else None,
            speakers=_split(record.get("speakers") or record.get("speaker"), "|"),
            description=str(record.get("description") or ""),
            tags=_split(record.get("tags") or record.get("tag"), ","),
            licence=str(record["licence"]) if record.get("licence") else None,
            event=str(record.get("event") or ""),
            location=str(record.get("location") or ""),
            language=str(record["language"]) if record.get("language") else None,
            artwork=_path(base, record.get("artwork")),
            transcript=_path(base, record.get("transcript")),
            chapters=_path(base, record.get("chapters")),
            draft=str(record.get("draft") or "").strip().lower() in TRUE,
            source_filename=file.name,
        )
    except ArchiveError as error:
        return error
    if not meta.title or not meta.series:
        return InvalidInput(f"{file.name}: every row needs a title and a series.")
    return file, meta
