"""Cover renditions for the web pages: small AVIF, WebP and JPEG copies, made once per cover.

A stored cover is a 1400–3000 px JPEG, right for podcast apps and far too heavy for a card in a
list. The `artwork` enrichment task (archive/enrich.py) makes the sizes the pages need
(`media.artwork.RENDITION_WIDTHS` in each of `rendition_formats()`) and records their names on
the cover (`MediaFile.renditions`); until then pages show the cover itself.

Renditions are derived data, addressed by the cover's checksum: `art/<digest>/<width>.<format>`.
The same picture used by many episodes (a series' artwork uploaded with every episode) is made
and stored once; a replaced cover simply has another digest. They live outside `episodes/` and
`series/`, so `archive verify` neither checks nor trashes them, and `/art/…` serves only the
digests of covers the published catalogue names (archive/web/artwork.py). A rendition can
always be made again from its cover (`archive enrich --missing --kind artwork`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from archive.errors import ArchiveError, NotFound
from archive.models import MediaFile, Series
from media import artwork as pictures

if TYPE_CHECKING:
    from archive.catalog import CatalogData
    from archive.runtime import Archive

PREFIX = "art/"
DIGEST_LENGTH = 32  # hex characters of the cover's SHA-256: unguessable, unique enough


def digest(cover: MediaFile) -> str:
    return cover.sha256[:DIGEST_LENGTH]


def rendition_key(cover_digest: str, name: str) -> str:
    return f"{PREFIX}{cover_digest}/{name}"


def needs_renditions(cover: MediaFile | None) -> bool:
    return cover is not None and cover.renditions is None


def make(archive: Archive, cover: MediaFile) -> list[str]:
    """Make and store the renditions of one cover; returns their names ("320.webp"…).

    Idempotent: the keys depend only on the cover's bytes, so a retried task (or a second
    worker) writes the same objects again."""
    try:
        found = archive.store.get_bytes(cover.key)
    except NotFound:
        found = None
    if found is None:
        return []  # the cover is gone (replaced meanwhile): nothing to make
    made = pictures.make_renditions(found[0])
    for name, body in made.items():
        fmt = name.rsplit(".", 1)[1]
        archive.store.put_bytes(rendition_key(digest(cover), name), body,
                                pictures.RENDITION_TYPES[fmt])
    return sorted(made, key=_order)


def _order(name: str) -> tuple[int, int]:
    width, fmt = name.split(".")
    return int(width), pictures.RENDITION_FORMATS.index(fmt)


def forget(archive: Archive, cover: MediaFile, data: CatalogData) -> None:
    """Remove a cover's renditions after a failed commit, unless a cover the catalogue names has
    the same bytes (renditions are shared by checksum)."""
    named = [f for e in data.episodes.values() if (f := e.cover)]
    named += [s.cover for s in data.series.values() if s.cover]
    if not cover.renditions or any(f.sha256 == cover.sha256 for f in named):
        return
    archive.store.delete_many([rendition_key(digest(cover), n) for n in cover.renditions])


class _Unchanged(Exception):
    """Raised inside a catalogue change to abandon it without writing."""


def record_series(archive: Archive, slug: str, cover_sha256: str, names: list[str]) -> None:
    """Name a series cover's renditions in the catalogue (unless the cover changed meanwhile)
    and in the series' meta.json, which `archive reindex` rebuilds from."""

    def apply(data: CatalogData) -> Series:
        series = data.series.get(slug)
        if series is None or series.cover is None or series.cover.sha256 != cover_sha256 \
                or series.cover.renditions == names:
            raise _Unchanged
        series.cover.renditions = list(names)
        return series

    try:
        series = archive.catalog.change(apply)
    except _Unchanged:
        return
    with contextlib.suppress(ArchiveError):  # best effort, as for an episode's meta.json
        archive.catalog.write_series_meta(series)
