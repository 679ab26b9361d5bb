"""A local copy of the statistics' objects under ARCHIVE_DATA_DIR, for DuckDB to read.

Event batches and daily roll-ups are written once and never changed, so a file already here
with the object's size is the object: each is downloaded once per machine, in parallel.
(DuckDB's httpfs extension is fetched at run time and cannot be had everywhere; pyarrow's S3
filesystem works too, but a year of roll-ups would be hundreds of GETs per page view.)
"""

from __future__ import annotations

import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from archive.storage import ObjectInfo, ObjectStore

THREADS = 8


class LocalCache:
    def __init__(self, store: ObjectStore, folder: Path) -> None:
        self.store = store
        self.folder = folder

    def path_of(self, key: str) -> Path:
        return self.folder / key

    def fetch(self, objects: list[ObjectInfo]) -> list[Path]:
        """Local paths of these objects, downloading the ones not here yet."""
        missing = [info for info in objects if not self._have(info)]
        if len(missing) == 1:
            self._download(missing[0])
        elif missing:
            with ThreadPoolExecutor(min(THREADS, len(missing))) as pool:
                list(pool.map(self._download, missing))
        return [self.path_of(info.key) for info in objects]

    def _have(self, info: ObjectInfo) -> bool:
        try:
            return self.path_of(info.key).stat().st_size == info.size
        except OSError:
            return False

    def _download(self, info: ObjectInfo) -> None:
        target = self.path_of(info.key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
        try:
            with open(partial, "wb") as stream:
                self.store.download_to(info.key, stream)
            os.replace(partial, target)  # readers never see half a file
        finally:
            partial.unlink(missing_ok=True)


def cache_folder(data_dir: Path) -> Path:
    """Where every process of this machine keeps its copy (shared: files appear atomically)."""
    return data_dir / "stats-cache"
