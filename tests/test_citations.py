"""Citations: BibTeX, RIS and CSL-JSON that parsers read back, cited moments, media fragments.
(The CSL styles are tested in tests/test_cite.py.)"""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from archive.citations import (
    CitationSource,
    Name,
    bibtex,
    csl_json,
    media_fragment,
    parse_media_fragment,
    ris,
    time_range,
)
from archive.errors import InvalidInput
from archive.models import Person, Series
from tests.factories import make_episode

SERIES = Series.new("Roundtables")
URL = "http://archive.test/episodes/trust"


def source(**fields: object) -> CitationSource:
    fields.setdefault("speakers", [
        Person(name="Nicholas J Wheeler", role="chair", affiliation="University of Birmingham"),
        Person(name="Marijn van der Berg", role="discussant"),
    ])
    episode = make_episode(fields.pop("title", "The Social Construction of Trust"),
                           date=date(2024, 3, 5), tags=["trust", "diplomacy"], **fields)
    return CitationSource.of(episode, SERIES, url=URL, publisher="Trust Research Group")


def parse_bibtex(text: str) -> tuple[str, str, dict[str, str]]:
    """A strict little reader: @type{key, name = {balanced braces} | bare, ...}."""
    match = re.fullmatch(r"@(\w+)\{([^,\s]+),\n(.*)\}\n", text, re.DOTALL)
    assert match, text
    kind, key, body = match.groups()
    fields: dict[str, str] = {}
    position = 0
    while position < len(body):
        name_match = re.compile(r"\s*(\w+) = ").match(body, position)
        assert name_match, body[position:]
        position = name_match.end()
        if body[position] == "{":
            depth, start = 0, position
            while True:
                char = body[position]
                if char == "\\":
                    position += 2
                    continue
                depth += {"{": 1, "}": -1}.get(char, 0)
                position += 1
                if depth == 0:
                    break
            value = body[start + 1: position - 1]
        else:
            bare = re.compile(r"\w+").match(body, position)
            assert bare
            value, position = bare.group(), bare.end()
        fields[name_match.group(1)] = value
        position = body.index("\n", position) + 1 if "\n" in body[position:] else len(body)
    return kind, key, fields


def parse_ris(text: str) -> list[tuple[str, str]]:
    lines = text.split("\r\n")
    assert lines[-1] == ""
    rows = []
    for line in lines[:-1]:
        match = re.fullmatch(r"([A-Z][A-Z0-9])  - (.*)", line)
        assert match, line
        rows.append((match[1], match[2]))
    return rows


def test_names_split_as_citation_styles_need() -> None:
    assert Name.parse("Nicholas J Wheeler") == Name("Nicholas J", "Wheeler")
    assert Name.parse("Marijn van der Berg") == Name("Marijn", "van der Berg")
    assert Name.parse("Jean-Paul Sartre").initials == "J.-P."
    assert Name.parse("Plato") == Name("", "Plato")


def test_bibtex_parses_back_with_special_characters_escaped() -> None:
    cite = source(title="Trust & {Braces} 100% $ure_ness #1 ~ ^ \\ end")
    kind, key, fields = parse_bibtex(bibtex(cite))
    assert kind == "misc"
    assert re.fullmatch(r"wheeler2024trust[0-9a-f]{4}", key)
    assert fields["author"] == "Wheeler, Nicholas J and van der Berg, Marijn"
    assert fields["title"] == (r"Trust \& \{Braces\} 100\% \$ure\_ness \#1 \~{} \^{} "
                               r"\textbackslash{} end")
    assert fields["year"] == "2024" and fields["month"] == "mar"
    assert fields["url"] == URL
    assert fields["keywords"] == "trust, diplomacy"


def test_ris_parses_back() -> None:
    rows = parse_ris(ris(source(description="<p>First line.</p>\n<p>Second\nline.</p>")))
    assert rows[0] == ("TY", "SOUND")
    assert rows[-1] == ("ER", "")
    values = dict(rows)
    assert [v for k, v in rows if k == "AU"] == ["Wheeler, Nicholas J", "van der Berg, Marijn"]
    assert values["TI"] == "The Social Construction of Trust"
    assert values["T2"] == "Roundtables"
    assert values["DA"] == "2024/03/05"
    assert values["AB"] == "First line. Second line."
    assert [v for k, v in rows if k == "KW"] == ["trust", "diplomacy"]


def test_csl_json_is_a_list_of_one_item() -> None:
    (item,) = json.loads(csl_json(source()))
    assert item["type"] == "broadcast"
    assert item["author"][0] == {"family": "Wheeler", "given": "Nicholas J"}
    assert item["issued"] == {"date-parts": [[2024, 3, 5]]}
    assert item["container-title"] == "Roundtables"
    assert item["URL"] == URL


def test_an_episode_without_speakers_is_credited_to_the_publisher() -> None:
    cite = source(speakers=[])
    assert dict(parse_ris(ris(cite)))["AU"] == "Trust Research Group"
    assert parse_bibtex(bibtex(cite))[2]["author"] == "{Trust Research Group}"


def test_csl_json_authors_carry_their_orcid_as_crossref_does() -> None:
    cite = source(speakers=[Person.parse("Marie Dupont;chair;LSE;0000-0002-1825-0097"),
                            Person.parse("Ana Silva;discussant")])
    (item,) = json.loads(csl_json(cite))
    assert item["author"] == [
        {"family": "Dupont", "given": "Marie", "ORCID": "https://orcid.org/0000-0002-1825-0097"},
        {"family": "Silva", "given": "Ana"}]


def test_a_cited_moment_is_in_the_link_and_the_note_of_every_download() -> None:
    cite = source().moment(90, 125.5)
    assert cite.url == f"{URL}#t=90,125.5"
    _, _, fields = parse_bibtex(bibtex(cite))
    assert fields["url"] == f"{URL}\\#t=90,125.5"  # BibTeX escapes the hash
    assert fields["note"].startswith("Cited from 1:30\u20132:05")
    values = dict(parse_ris(ris(cite)))
    assert values["UR"] == f"{URL}#t=90,125.5"
    assert values["N1"] == "Cited from 1:30\u20132:05"
    (item,) = json.loads(csl_json(cite))
    assert item["URL"] == f"{URL}#t=90,125.5" and item["note"] == "Cited from 1:30\u20132:05"
    # A moment of a moment replaces the fragment, never appends another.
    assert cite.moment(3700).url == f"{URL}#t=3700"


@pytest.mark.parametrize(("text", "moment"), [
    ("90", (90.0, None)), ("90,125.5", (90.0, 125.5)), ("npt:1:30,2:05", (90.0, 125.0)),
    (",20", (0.0, 20.0)), ("1:02:03", (3723.0, None)), ("0.5", (0.5, None)),
])
def test_media_fragments_are_read(text: str, moment: tuple[float, float | None]) -> None:
    assert parse_media_fragment(text) == moment


@pytest.mark.parametrize("text", ["", "abc", "90,", "125,90", "90,90", "-5", "1e9",
                                  "99999999", "1,2,3", "90;alert(1)"])
def test_bad_media_fragments_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_media_fragment(text)


def test_time_ranges_read_as_clock_times() -> None:
    assert media_fragment(90.0, 125.25) == "90,125.25"
    assert media_fragment(3.1234) == "3.123"
    assert time_range(90, 125) == "1:30\u20132:05"
    assert time_range(3725) == "1:02:05"
