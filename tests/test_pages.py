"""The public pages over httpx with the lifespan running on a real bucket: filters and
pagination, episode page contents, citations, search deep links, 404s, hostile metadata."""

from __future__ import annotations

import json
import re
from datetime import date
from html.parser import HTMLParser
from typing import Any

import pytest
from starlette.testclient import TestClient

from archive import search
from archive.catalog import Catalog, CatalogData
from archive.models import Person, Series
from tests.browser import WORKSHOPS, publish_recording
from tests.factories import make_episode
from tests.test_citations import parse_bibtex, parse_ris

LECTURES = Series.new("Lectures")
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class Links(HTMLParser):
    """Collect hrefs and JSON-LD from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.json_ld: list[Any] = []
        self._in_ld = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"] or "")
        self._in_ld = tag == "script" and values.get("type") == "application/ld+json"

    def handle_data(self, data: str) -> None:
        if self._in_ld:
            self.json_ld.append(json.loads(data))
            self._in_ld = False


def parse(html: str) -> Links:
    links = Links()
    links.feed(html)
    return links


def add_many(catalog: Catalog, count: int) -> None:
    """Many catalogue entries in one change (no media needed for list pages)."""
    def apply(data: CatalogData) -> None:
        data.series.setdefault(LECTURES.slug, LECTURES)
        for n in range(count):
            episode = make_episode(
                f"Lecture {n:02d}", series=LECTURES.slug,
                date=date(2020 + n % 3, 1 + n // 28, 1 + n % 28),
                tags=["Emotions"] if n % 2 else ["Norms"],
                speakers=[Person(name="Ken Booth" if n % 5 == 0 else "Jane Doe")])
            data.episodes[episode.id] = episode

    catalog.change(apply, check_new_keys=False)


@pytest.fixture
def site(catalog: Catalog, make_client: Any) -> tuple[TestClient, dict[str, Any]]:
    add_many(catalog, 45)
    talk = publish_recording(
        catalog, "The Security Dilemma Revisited", date=date(2025, 6, 1),
        description="<p>A talk on <a href='https://example.org'>reassurance</a>.</p>",
        tags=["Nuclear"], licence="cc-by-4.0",
        cues=[(0, 2.5, "Good evening."), (2.5, 5, "Today: zeitgeist and uncertainty.")],
        chapters=[(0, "Welcome"), (2.5, "Argument")], original=b"RIFF original bytes",
        speakers=[Person(name="Nicholas J Wheeler", role="speaker",
                         affiliation="University of Birmingham"),
                  Person(name="Jan Ruzicka", role="chair", affiliation="Aberystwyth")])
    hostile = publish_recording(
        catalog, f"Hostile {HOSTILE}", date=date(2025, 1, 1), description=HOSTILE,
        tags=[HOSTILE[:40]], cues=[(0, 1, HOSTILE)],
        speakers=[Person(name=f"Eve {HOSTILE[:60]}", affiliation=HOSTILE[:80])])
    draft = make_episode("Secret draft", series=WORKSHOPS.slug, draft=True)
    catalog.change(lambda data: data.episodes.__setitem__(draft.id, draft), check_new_keys=False)
    return make_client(), {"talk": talk, "hostile": hostile, "draft": draft}


def test_home_lists_newest_first_with_series_and_search(site: Any) -> None:
    client, _ = site
    page = client.get("/")
    assert page.status_code == 200
    titles = re.findall(r'class="episode-title"><a href="[^"]+">([^<]+)</a>', page.text)
    assert titles[0] == "The Security Dilemma Revisited"
    assert len(titles) == 20
    assert 'href="/series/lectures"' in page.text and 'href="/series/workshops"' in page.text
    assert 'name="q"' in page.text
    assert "Secret draft" not in page.text


def test_filters_combine_and_pagination_keeps_them(site: Any) -> None:
    client, _ = site
    page = client.get("/", params={"series": "lectures", "tag": "emotions"})
    assert "Showing 1–20 of 22 recordings." in page.text
    next_link = next(h for h in parse(page.text).hrefs if "page=2" in h)
    assert "series=lectures" in next_link and "tag=Emotions" in next_link
    second = client.get(next_link.replace("&amp;", "&"))
    assert "Showing 21–22 of 22 recordings." in second.text
    assert all(int(n) % 2 for n in re.findall(r">Lecture (\d+)<", second.text))
    previous = next(h for h in parse(second.text).hrefs if "series=lectures" in h
                    and "page" not in h)
    assert "tag=Emotions" in previous

    by_person = client.get("/", params={"person": "ken-booth", "year": "2021"})
    numbers = re.findall(r">Lecture (\d+)<", by_person.text)
    assert numbers and all(int(n) % 5 == 0 and int(n) % 3 == 1 for n in numbers)
    assert '<option value="ken-booth" selected>' in by_person.text


def test_odd_filter_values_and_pages(site: Any) -> None:
    client, _ = site
    assert "Showing 1–20 of 47" in client.get("/", params={"series": "nope", "year": "x"}).text
    assert client.get("/", params={"page": "abc"}).status_code == 200
    missing = client.get("/", params={"page": "99"}, headers={"accept": "text/html"})
    assert missing.status_code == 404
    assert "There is no page 99" in missing.text


@pytest.mark.parametrize("path", [
    "/episodes/no-such-talk", "/series/no-such-series", "/people/nobody",
    "/episodes/secret-draft", "/episodes/the-security-dilemma-revisited/cite.docx",
    "/e/000000000000",
])
def test_missing_things_are_friendly_404s(site: Any, path: str) -> None:
    client, _ = site
    page = client.get(path, headers={"accept": "text/html"})
    assert page.status_code == 404
    assert '<a class="skip-link" href="#main">' in page.text
    assert 'role="search"' in page.text


def test_episode_page_has_player_chapters_transcript_and_downloads(site: Any) -> None:
    client, items = site
    talk = items["talk"]
    page = client.get(f"/episodes/{talk.slug}")
    assert page.status_code == 200
    html = page.text
    assert (f'<audio id="player" class="media" controls preload="none" '
            f'src="/media/{talk.id}/{talk.files["audio"].filename}"') in html
    assert re.search(r'<button type="button" class="seek chapter" data-start="2.5" '
                     r'data-end="3">.*Argument', html)
    assert re.search(r'class="seek cue" data-start="2.5" data-end="5">.*zeitgeist', html)
    hrefs = parse(html).hrefs
    for role in ("audio", "transcript", "original", "chapters"):
        assert f"/media/{talk.id}/{talk.files[role].filename}" in hrefs
    assert "/people/jan-ruzicka" in hrefs and "/?tag=Nuclear" in hrefs
    assert "Aberystwyth" in html and "https://creativecommons.org/licenses/by/4.0/" in hrefs
    assert '<a href="https://example.org">reassurance</a>' in html  # sanitised, kept
    assert f"http://archive.test/e/{talk.id}" in hrefs
    assert 'id="speed"' in html


def test_episode_page_metadata_for_machines(site: Any) -> None:
    client, items = site
    talk = items["talk"]
    html = client.get(f"/episodes/{talk.slug}").text
    (ld,) = parse(html).json_ld
    assert ld["@type"] == "PodcastEpisode"
    assert ld["partOfSeries"]["@type"] == "PodcastSeries"
    assert ld["associatedMedia"]["contentUrl"].endswith(talk.files["audio"].filename)
    assert '<meta property="og:title" content="The Security Dilemma Revisited">' in html
    assert (f'<link rel="canonical" href="http://archive.test/episodes/{talk.slug}">') in html
    assert ('type="application/rss+xml" title="Workshops (podcast feed)" '
            'href="http://archive.test/series/workshops/feed.xml"') in html


def test_permalink_follows_the_episode(site: Any) -> None:
    client, items = site
    talk = items["talk"]
    response = client.get(f"/e/{talk.id}", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == f"/episodes/{talk.slug}"


def test_citations_on_the_page_and_as_downloads(site: Any) -> None:
    client, items = site
    talk = items["talk"]
    html = client.get(f"/episodes/{talk.slug}").text
    # Every CSL style, the default (Harvard, Cite Them Right) first; tests/test_cite.py has more.
    assert html.index("Harvard (Cite Them Right)") < html.index("APA (7th edition)") \
        < html.index("Chicago (author-date)") < html.index("MLA (9th edition)")
    assert ("Wheeler, N. J., &amp; Ruzicka, J. (2025, June 1). The Security Dilemma Revisited "
            "[Audio podcast episode]. In <i>Workshops</i>.") in html
    assert "Wheeler, Nicholas J, and Jan Ruzicka. 2025. “The Security Dilemma Revisited”" in html
    assert "(Wheeler and Ruzicka, 2025)" in html
    bib = client.get(f"/episodes/{talk.slug}/cite.bib")
    assert bib.headers["content-type"].startswith("application/x-bibtex")
    assert "attachment" in bib.headers["content-disposition"]
    _, _, fields = parse_bibtex(bib.text)
    assert fields["author"] == "Wheeler, Nicholas J and Ruzicka, Jan"
    assert fields["url"] == f"http://archive.test/episodes/{talk.slug}"
    rows = parse_ris(client.get(f"/episodes/{talk.slug}/cite.ris").text)
    assert ("TI", "The Security Dilemma Revisited") in rows and rows[0] == ("TY", "SOUND")
    (item,) = client.get(f"/episodes/{talk.slug}/cite.json").json()
    assert item["issued"] == {"date-parts": [[2025, 6, 1]]}


def test_series_and_person_pages_offer_their_feeds(site: Any) -> None:
    client, _ = site
    series = client.get("/series/workshops").text
    assert ('<link rel="alternate" type="application/rss+xml" title="Workshops (podcast feed)" '
            'href="http://archive.test/series/workshops/feed.xml">') in series
    assert 'value="http://archive.test/series/workshops/feed.xml" readonly' in series
    assert 'data-copy="feed-url"' in series
    (ld,) = parse(series).json_ld
    assert ld["@type"] == "PodcastSeries"
    person = client.get("/people/nicholas-j-wheeler").text
    assert "University of Birmingham" in person
    assert 'href="http://archive.test/people/nicholas-j-wheeler/feed.xml"' in person
    assert "The Security Dilemma Revisited" in person


def test_search_links_transcript_hits_to_their_moment(site: Any) -> None:
    client, items = site
    talk = items["talk"]
    page = client.get("/search", params={"q": "zeitgeist"})
    assert "1 recording found" in page.text
    assert f'href="/episodes/{talk.slug}#t=2.5"' in page.text
    assert "<mark>zeitgeist</mark>" in page.text
    by_title = client.get("/search", params={"q": "security dilemma"})
    assert f'<a href="/episodes/{talk.slug}">' in by_title.text
    for query in ('"', "AND", "NEAR(", "title:x", ")("):
        assert client.get("/search", params={"q": query}).status_code == 200
    assert "Nothing found" in client.get("/search", params={"q": "qwertyuiop"}).text


def test_a_search_too_broad_to_rank_says_so(site: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    client, _ = site
    assert "newest first, not by relevance" not in client.get(
        "/search", params={"q": "zeitgeist"}).text
    monkeypatch.setattr(search, "RANKED_MATCHES", 0)
    page = client.get("/search", params={"q": "zeitgeist"})
    assert "1 recording found" in page.text
    assert "newest first, not by relevance" in page.text


@pytest.mark.parametrize("path", ["/", "/series/workshops", "/people/{person}",
                                  "/search?q=hostile", "/search?q=alert", "/episodes/{slug}"])
def test_hostile_metadata_is_shown_as_text(site: Any, path: str) -> None:
    client, items = site
    hostile = items["hostile"]
    page = client.get(path.format(slug=hostile.slug, person=hostile.speakers[0].slug))
    assert page.status_code == 200
    assert "<img src=x" not in page.text
    assert page.text.count("<script") == page.text.count("</script>")
    assert "<script>alert" not in page.text
    headers = page.headers
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_hostile_description_is_sanitised_not_just_escaped(site: Any) -> None:
    client, items = site
    html = client.get(f"/episodes/{items['hostile'].slug}").text
    description = html.split('<div class="description">', 1)[1].split("</div>", 1)[0]
    assert "alert" not in description
    (ld,) = parse(html).json_ld
    assert ld["name"] == f"Hostile {HOSTILE}"  # escaped as \u003c inside the script element
    assert "</script><img" not in html


def test_pages_and_search_follow_catalogue_changes(site: Any, catalog: Catalog) -> None:
    client, _ = site
    assert "Brand new talk" not in client.get("/").text
    assert "Nothing found" in client.get("/search", params={"q": "quasar"}).text
    new = publish_recording(catalog, "Brand new talk", date=date(2030, 1, 1),
                            cues=[(0, 1, "A quasar appears.")])
    client.app.state.archive.catalog.refresh()  # what the background revalidation does
    assert "Brand new talk" in client.get("/").text
    assert f'href="/episodes/{new.slug}#t=0"' in client.get("/search", params={"q": "quasar"}).text
