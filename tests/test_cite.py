"""Citations rendered from CSL styles (citeproc-py), hand-checked against the style guides.

Harvard follows Cite Them Right, APA the 7th edition's podcast-episode form, Chicago the
author-date system and MLA the 9th edition. Whole entries are compared where citeproc-py gives
what the guide asks for; where it departs (see archive/cite.py: punctuation outside quotation
marks, no role labels, no "[Podcast]" in Cite Them Right), the tests keep to what matters:
names, year, title, medium, URL, and the time range of a cited moment.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from archive import cite
from archive.citations import CitationSource
from archive.errors import ConfigError
from archive.models import Person, Series
from tests.factories import make_episode

SERIES = Series.new("Roundtables")
URL = "https://archive.example.org/episodes/trust"
ACCESSED = date(2026, 12, 3)
HARVARD, APA, CHICAGO, MLA = (cite.STYLES[k] for k in ("harvard", "apa", "chicago", "mla"))


def source(*speakers: str, **fields: object) -> CitationSource:
    episode = make_episode(str(fields.pop("title", "The Social Construction of Trust")),
                           date=fields.pop("date", date(2024, 3, 5)),
                           speakers=[Person.parse(s) for s in speakers], **fields)
    return CitationSource.of(episode, SERIES, url=URL, publisher="Trust Research Group")


ONE = source("Nicholas J Wheeler;lecturer;University of Birmingham")
THREE = source("Nicholas J Wheeler;chair;University of Birmingham",
               "Marijn van der Berg;discussant", "Naomi Head;panellist;Glasgow")


def entry(src: CitationSource, style: cite.Style) -> str:
    return cite.render(src, style, accessed=ACCESSED).entry_text


def test_one_speaker_in_every_style() -> None:
    assert entry(ONE, HARVARD) == (
        "Wheeler, N.J. (2024) \u2018The Social Construction of Trust\u2019, Roundtables. Trust "
        f"Research Group. Available at: {URL} (Accessed: 3 December 2026).")
    assert entry(ONE, APA) == (
        "Wheeler, N. J. (2024, March 5). The Social Construction of Trust [Audio podcast "
        f"episode]. In Roundtables. Trust Research Group. {URL}")
    # Chicago wants 'Trust.”': citeproc-py leaves the full stop outside the quotation marks.
    assert entry(ONE, CHICAGO) == (
        "Wheeler, Nicholas J. 2024. \u201cThe Social Construction of Trust\u201d. Audio podcast "
        f"episode. Roundtables. Trust Research Group, March 5. 1:00. {URL}.")
    assert entry(ONE, MLA) == (
        "Wheeler, Nicholas J. \u201cThe Social Construction of Trust\u201d. Audio podcast episode. "
        f"Roundtables, Trust Research Group, 5 Mar. 2024, {URL}.")
    in_text = {s.key: cite.render(ONE, s).in_text for s in cite.STYLES.values()}
    assert in_text == {"harvard": "(Wheeler, 2024)", "apa": "(Wheeler, 2024)",
                       "chicago": "(Wheeler 2024)",
                       "mla": "(Wheeler, \u201cThe Social Construction of Trust\u201d)"}


def test_three_speakers_with_roles() -> None:
    # Every speaker is an author whatever their role (citeproc-py knows no host/guest/chair).
    assert entry(THREE, HARVARD).startswith(
        "Wheeler, N.J., van der Berg, M. and Head, N. (2024) \u2018The Social Construction")
    assert entry(THREE, APA).startswith(
        "Wheeler, N. J., van der Berg, M., & Head, N. (2024, March 5). The Social")
    assert entry(THREE, CHICAGO).startswith(
        "Wheeler, Nicholas J, Marijn van der Berg, and Naomi Head. 2024.")
    assert entry(THREE, MLA).startswith("Wheeler, Nicholas J, et al. \u201cThe Social")
    assert cite.render(THREE, APA).in_text == "(Wheeler et al., 2024)"
    assert cite.render(THREE, HARVARD).in_text == "(Wheeler, van der Berg and Head, 2024)"
    for style in cite.STYLES.values():
        text = entry(THREE, style)
        assert URL in text and "Roundtables" in text and "2024" in text


def test_no_recording_date_cites_the_publication_date() -> None:
    episode = make_episode("Undated Seminar", speakers=[Person.parse("Ana Silva")])
    undated = CitationSource.of(episode, SERIES, url=URL, publisher="Trust Research Group")
    year = str(episode.published_at.year)
    for style in cite.STYLES.values():
        assert year in entry(undated, style)


def test_no_date_at_all_reads_n_d() -> None:
    dateless = dataclasses.replace(ONE, issued=None)
    assert entry(dateless, HARVARD).startswith("Wheeler, N.J. (no date) \u2018The Social")
    assert entry(dateless, APA).startswith("Wheeler, N. J. (n.d.). The Social Construction")
    assert entry(dateless, CHICAGO).startswith("Wheeler, Nicholas J. n.d. \u201cThe Social")
    assert cite.render(dateless, HARVARD).in_text == "(Wheeler, no date)"
    assert cite.render(dateless, APA).in_text == "(Wheeler, n.d.)"


def test_a_time_range_is_a_locator_and_is_in_the_link() -> None:
    moment = THREE.moment(90, 125)
    link = f"{URL}#t=90,125"
    expected = {"harvard": "(Wheeler, van der Berg and Head, 2024, 1:30\u20132:05)",
                "apa": "(Wheeler et al., 2024, 1:30\u20132:05)",
                "chicago": "(Wheeler et al. 2024, 1:30\u20132:05)",
                "mla": "(Wheeler et al., \u201cThe Social Construction of Trust\u201d "
                       "1:30\u20132:05)"}
    for style in cite.STYLES.values():
        rendered = cite.render(moment, style, accessed=ACCESSED)
        assert rendered.in_text == expected[style.key]
        assert link in rendered.entry_text
        # The entry cites the recording: the locator belongs to the in-text form only.
        assert "1:30" not in rendered.entry_text
    over_an_hour = cite.render(ONE.moment(3723, 3790), APA).in_text
    assert over_an_hour == "(Wheeler, 2024, 1:02:03\u20131:03:10)"


def test_video_and_courses_say_so() -> None:
    video = dataclasses.replace(ONE, genre="Video recording", medium="Video")
    assert "[Video recording]" in entry(video, APA)


def test_markup_in_metadata_is_escaped_and_only_italics_are_tags() -> None:
    hostile = source("Eve <img src=x onerror=alert(1)>",
                     title="<script>alert(1)</script> & \ue000Trust\ue001")
    for style in cite.STYLES.values():
        rendered = cite.render(hostile, style)
        assert "<script>" not in rendered.entry_html and "<img" not in rendered.entry_html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Trust" in rendered.entry_html
        assert rendered.entry_html.count("<i>") == rendered.entry_html.count("</i>") == 1
        assert "<i>Roundtables</i>" in rendered.entry_html
        assert "<script>alert(1)</script> & Trust" in rendered.entry_text


def test_the_panel_puts_the_default_first() -> None:
    assert [s.key for s in cite.panel_styles("apa")] == ["apa", "harvard", "chicago", "mla"]
    extra = cite.panel_styles("ieee")
    assert extra[0].key == "ieee" and extra[0].label.startswith("IEEE")
    assert len(extra) == 5


@pytest.mark.parametrize("name", ["nope-not-a-style", "../../etc/passwd", "APA 7", ""])
def test_an_unknown_style_is_a_configuration_error(name: str) -> None:
    with pytest.raises(ConfigError, match="ARCHIVE_CITATION_STYLE"):
        cite.style_named(name)
