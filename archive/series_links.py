"""Where else listeners find a series (#15): its Apple Podcasts and Spotify pages, and the feed
it was moved from. Set by editors (`/edit/series/{slug}`) or `archive series set`; both come
here, so the validation (`Series.from_dict`: http(s) only) and the audit are the same."""

from __future__ import annotations

from typing import Any

from archive import audit
from archive.errors import NotFound
from archive.models import Series

FIELDS = ("apple_url", "spotify_url", "old_feed_url")


def set_series_links(archive: Any, slug: str, changes: dict[str, str], actor: str) -> Series:
    """Commit the changed fields (an empty value clears one); returns the series."""
    changes = {name: value.strip() for name, value in changes.items() if name in FIELDS}

    def apply(data: Any) -> Series:
        if slug not in data.series:
            raise NotFound(f"There is no series {slug!r}.")
        changed = Series.from_dict({**data.series[slug].to_dict(), **changes})
        data.series[slug] = changed
        return changed

    series: Series = archive.catalog.change(apply, check_new_keys=False)
    archive.catalog.write_series_meta(series)
    audit.record(archive.store, actor, "series.links", series.slug, **changes)
    return series
