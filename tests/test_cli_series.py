"""`archive series list|set` and /edit/series (#15): directory pages and the old feed address
of a series, set from the command line or by editors, validated, audited, and shown by the
subscribe panel."""

from __future__ import annotations

import re
from typing import Any

from archive.catalog import Catalog
from archive.config import Settings
from tests.browser import publish_recording
from tests.cli import run_cli
from tests.test_auth import add_editor, sign_in

APPLE = "https://podcasts.apple.com/gb/podcast/workshops/id1234567890"
SPOTIFY = "https://open.spotify.com/show/0abcDEF"


def test_set_list_and_clear_directory_pages(settings: Settings, catalog: Catalog,
                                            make_client: Any) -> None:
    publish_recording(catalog, "A Workshop")
    done = run_cli(settings, "series", "set", "workshops", "--apple-url", APPLE,
                   "--spotify-url", SPOTIFY, "--old-feed-url", "https://old.example/feed.xml")
    assert done.returncode == 0, done.stderr
    series = catalog.refresh().data.series["workshops"]
    assert (series.apple_url, series.spotify_url) == (APPLE, SPOTIFY)
    assert series.old_feed_url == "https://old.example/feed.xml"
    assert catalog.store.get_json("series/workshops/meta.json")[0]["apple_url"] == APPLE
    listing = run_cli(settings, "series", "list")
    assert f"apple_url: {APPLE}" in listing.stdout and "workshops\tWorkshops" in listing.stdout
    page = make_client().get("/series/workshops").text
    assert "Listen on Apple Podcasts" in page and "Listen on Spotify" in page

    cleared = run_cli(settings, "series", "set", "workshops", "--spotify-url", "")
    assert cleared.returncode == 0, cleared.stderr
    series = catalog.refresh().data.series["workshops"]
    assert series.spotify_url == "" and series.apple_url == APPLE


def test_bad_addresses_and_unknown_series_are_one_line_errors(settings: Settings,
                                                              catalog: Catalog) -> None:
    publish_recording(catalog, "A Workshop")
    bad = run_cli(settings, "series", "set", "workshops", "--apple-url", "javascript:alert(1)")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "https://" in bad.stderr
    assert catalog.refresh().data.series["workshops"].apple_url == ""
    missing = run_cli(settings, "series", "set", "no-such-series", "--apple-url", APPLE)
    assert missing.returncode == 1 and "no-such-series" in missing.stderr


def test_editors_set_them_on_the_series_page(settings: Settings, catalog: Catalog,
                                             make_client: Any) -> None:
    publish_recording(catalog, "A Workshop")
    client = make_client()
    assert client.get("/edit/series", follow_redirects=False).status_code == 303  # sign in first
    add_editor(catalog.store)
    sign_in(client)
    assert "/edit/series/workshops" in client.get("/edit/series").text
    form = client.get("/edit/series/workshops").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    fields = {"apple_url": APPLE, "spotify_url": "", "old_feed_url": ""}
    refused = client.post("/edit/series/workshops", data=fields, follow_redirects=False)
    assert refused.status_code == 403  # no CSRF token
    saved = client.post("/edit/series/workshops", data={**fields, "csrf": csrf},
                        follow_redirects=False)
    assert saved.status_code == 303, saved.text
    assert catalog.refresh().data.series["workshops"].apple_url == APPLE
    assert "Listen on Apple Podcasts" in client.get("/series/workshops").text
    bad = client.post("/edit/series/workshops", data={**fields, "apple_url": "ftp://x",
                                                      "csrf": csrf})
    assert bad.status_code == 422 and catalog.refresh().data.series["workshops"].apple_url == APPLE
    assert client.get("/edit/series/no-such").status_code == 404
