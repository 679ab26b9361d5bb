"""`archive verify` and `archive reindex`: fixity checks, orphan clean-up, catalogue rebuild.

Publishing writes media first and the catalogue last, so a crash leaves objects nobody names;
`verify` finds them (and, with repair, removes them) and re-checks every stored checksum.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from archive.catalog import Catalog, CatalogData, meta_key, series_meta_key
from archive.errors import ArchiveError, NotFound
from archive.models import Episode, Series, episode_prefix

SERIES_PREFIX = "series/"


@dataclass
class Report:
    checked: int = 0
    damaged: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damaged and not self.orphans


def verify(
    catalog: Catalog,
    *,
    repair: bool = False,
    grace: timedelta = timedelta(0),
    checksums: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Check every object the catalogue names; list (and with repair, remove) the rest.

    Objects younger than `grace` are left alone: on a live archive they may belong to an
    ingest that has not committed yet.
    """
    report = Report()
    data = catalog.refresh().data
    referenced = _referenced_keys(data)
    for episode in data.episodes.values():
        for role, media in episode.files.items():
            if progress:
                progress(media.key)
            problem = _check_object(catalog, media.key, media.size, media.sha256, checksums)
            report.checked += 1
            if problem:
                report.damaged.append(f"{episode.id} {role}: {problem}")
        if not catalog.store.exists(meta_key(episode.id)):
            if repair:
                catalog.write_meta(episode)
                report.repaired.append(meta_key(episode.id))
            else:
                report.damaged.append(f"{episode.id}: meta.json is missing")
    cutoff = datetime.now(UTC) - grace
    for prefix in ("episodes/", SERIES_PREFIX):
        for info in catalog.store.list(prefix):
            if info.key in referenced:
                continue
            if info.last_modified and grace and info.last_modified > cutoff:
                continue
            report.orphans.append(info.key)
    for key, upload_id, started in catalog.store.unfinished_uploads("episodes/"):
        if started and grace and started > cutoff:
            continue  # an upload in flight
        if repair:
            catalog.store.abort_upload(key, upload_id)
            report.repaired.append(f"{key} (unfinished upload aborted)")
        else:
            report.orphans.append(f"{key} (unfinished upload)")
    if repair and report.orphans:
        # A commit may have landed while we listed: never delete what the catalogue now names.
        report.orphans = [key for key in report.orphans
                          if key not in _referenced_keys(catalog.refresh().data)]
        catalog.remove_objects(report.orphans)
        report.repaired.extend(report.orphans)
        report.orphans = []
    return report


def _referenced_keys(data: CatalogData) -> set[str]:
    keys = {meta_key(e.id) for e in data.episodes.values()}
    keys |= {f.key for e in data.episodes.values() for f in e.files.values()}
    keys |= {series_meta_key(s.slug) for s in data.series.values()}
    keys |= {s.cover.key for s in data.series.values() if s.cover}
    return keys


def _check_object(catalog: Catalog, key: str, size: int, sha256: str, checksums: bool) -> str:
    try:
        info = catalog.store.head(key)
    except NotFound:
        return "missing"
    if info.size != size:
        return f"size {info.size} bytes, expected {size}"
    if checksums:
        digest = hashlib.sha256()
        for chunk in catalog.store.open(key):
            digest.update(chunk)
        if digest.hexdigest() != sha256:
            return "checksum mismatch (the stored bytes changed)"
    return ""


def reindex(catalog: Catalog) -> CatalogData:
    """Rebuild `catalog.json` from every `meta.json` (after loss or damage of the catalogue)."""
    episodes: dict[str, Episode] = {}
    series: dict[str, Series] = {}
    for info in catalog.store.list("episodes/"):
        if info.key.endswith("/meta.json"):
            try:
                raw, _ = catalog.store.get_json(info.key)
                episode = Episode.from_dict(raw)
            except ArchiveError:
                continue  # unreadable leftovers are verify's business
            if info.key == meta_key(episode.id) and episode.files:
                episodes[episode.id] = episode
    for info in catalog.store.list(SERIES_PREFIX):
        if info.key.endswith("/meta.json"):
            try:
                raw, _ = catalog.store.get_json(info.key)
                item = Series.from_dict(raw)
            except ArchiveError:
                continue
            series[item.slug] = item
    for episode in episodes.values():
        if episode.series not in series:
            series[episode.series] = Series.from_dict(
                {"slug": episode.series, "title": episode.series.replace("-", " ").title()}
            )

    def replace(data: CatalogData) -> CatalogData:
        data.episodes = episodes
        data.series = series
        return data

    return catalog.change(replace)


def episode_objects(catalog: Catalog, episode_id: str) -> list[str]:
    return [info.key for info in catalog.store.list(episode_prefix(episode_id))]
