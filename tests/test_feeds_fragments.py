"""Feed items built once and kept: after one edit a feed costs one item's build and a join,
and the bytes are those of a build from scratch; the whole-archive feed can carry only the
newest items."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from lxml import etree

from feeds import build
from feeds.build import Fragments, build_feed
from tests.test_feeds_data import URLS, make_channel, sample_episodes

TITLES = {"trust-lectures": "Trust Lectures"}


def count_item_builds(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many items each build made with feedgen (the costly part), one entry per build."""
    built: list[int] = []
    items = build.item_fragments

    def counting(*args: Any) -> list[bytes]:
        built.append(len(args[1]))
        return items(*args)

    monkeypatch.setattr(build, "item_fragments", counting)
    return built


def test_an_unchanged_feed_reuses_every_item_and_says_the_same(
        monkeypatch: pytest.MonkeyPatch) -> None:
    channel, episodes = make_channel(), sample_episodes()
    kept = Fragments()
    first = build_feed(channel, episodes, URLS, series_titles=TITLES, fragments=kept)
    assert first == build_feed(channel, episodes, URLS, series_titles=TITLES)

    built = count_item_builds(monkeypatch)
    assert build_feed(channel, episodes, URLS, series_titles=TITLES, fragments=kept) == first
    assert built == [0]  # nothing to rebuild

    edited = dataclasses.replace(episodes[0], title="Edited <b>title</b> & more")
    changed = [edited, *episodes[1:]]
    again = build_feed(channel, changed, URLS, series_titles=TITLES, fragments=kept)
    assert built[-1] == 1  # only the edited episode's item was built
    assert again == build_feed(channel, changed, URLS, series_titles=TITLES)
    assert b"Edited &lt;b&gt;title&lt;/b&gt; &amp; more" in again
    etree.fromstring(again, etree.XMLParser(recover=False, resolve_entities=False))


def test_a_changed_channel_rebuilds_every_item() -> None:
    episodes = sample_episodes()
    kept = Fragments()
    build_feed(make_channel(), episodes, URLS, fragments=kept)
    other = dataclasses.replace(make_channel(), language="de")
    assert build_feed(other, episodes, URLS, fragments=kept) == build_feed(other, episodes, URLS)


def test_a_limit_keeps_the_newest_items() -> None:
    episodes = sample_episodes()
    whole = etree.fromstring(build_feed(make_channel(), episodes, URLS))
    newest = etree.fromstring(build_feed(make_channel(), episodes, URLS, limit=1))
    assert len(newest.findall("channel/item")) == 1
    assert newest.findtext("channel/item/guid") == whole.findtext("channel/item/guid")
