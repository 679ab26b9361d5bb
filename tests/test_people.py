"""People records: ORCID iDs (ISO 7064 11,2), the `Name;role;affiliation;ORCID` form, one record
per slug shared by every episode, and catalogues written before records existed."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from archive import people
from archive.catalog import Catalog, CatalogData
from archive.errors import InvalidInput
from archive.models import (
    Person,
    Series,
    next_revision,
    normalise_orcid,
    orcid_check_digit,
    utcnow,
)
from tests.factories import make_episode

ROUNDTABLES = Series.new("Roundtables")


@pytest.mark.parametrize(("orcid", "check"), [
    ("0000-0002-1825-0097", "7"),  # ORCID's own example (Josiah Carberry)
    ("0000-0001-5109-3700", "0"),
    ("0000-0002-1694-233X", "X"),  # check digit 10
])
def test_check_digit_is_iso_7064_mod_11_2(orcid: str, check: str) -> None:
    assert orcid_check_digit(orcid.replace("-", "")[:15]) == check
    assert normalise_orcid(orcid) == orcid


def test_an_orcid_is_read_from_its_url_and_lower_case_x() -> None:
    assert normalise_orcid("https://orcid.org/0000-0002-1694-233x") == "0000-0002-1694-233X"
    assert normalise_orcid("") == ""


@pytest.mark.parametrize("bad", [
    "0000-0002-1825-0098",  # one digit off: the checksum catches it
    "0000-0002-1825-009",
    "0000000218250097",
    "https://example.org/0000-0002-1825-0097",
    "0000-0002-1852-0097",  # two digits swapped
])
def test_a_mistyped_orcid_is_refused(bad: str) -> None:
    with pytest.raises(InvalidInput, match="ORCID"):
        normalise_orcid(bad)


def test_speaker_spec_with_orcid() -> None:
    person = Person.parse("Marie Dupont;chair;LSE;0000-0002-1825-0097")
    assert (person.name, person.role, person.affiliation, person.orcid) == (
        "Marie Dupont", "chair", "LSE", "0000-0002-1825-0097")
    assert person.orcid_url == "https://orcid.org/0000-0002-1825-0097"
    assert Person.parse("Marie Dupont").orcid == ""
    with pytest.raises(InvalidInput, match="too many parts"):
        Person.parse("A;chair;B;0000-0002-1825-0097;extra")
    with pytest.raises(InvalidInput, match="check digit"):
        Person.parse("Marie Dupont;chair;LSE;0000-0002-1825-0098")


def test_a_person_without_image_keeps_the_old_json_shape() -> None:
    assert set(Person(name="A B").to_dict()) == {"name", "role", "affiliation", "orcid", "url"}
    with_image = Person.from_dict({"name": "A B", "image": "https://example.org/a.jpg"})
    assert Person.from_dict(with_image.to_dict()) == with_image
    with pytest.raises(InvalidInput, match="Image URL"):
        Person.from_dict({"name": "A B", "image": "javascript:alert(1)"})


def test_an_old_catalogue_without_people_loads_and_round_trips() -> None:
    data = CatalogData()
    data.episodes = {e.id: e for e in [make_episode("One")]}
    document = data.to_dict()
    del document["people"]
    for episode in document["episodes"]:
        for name in ("rights", "publish_at", "consent"):
            del episode[name]
    loaded = CatalogData.from_dict(json.loads(json.dumps(document)))
    assert loaded.people == {}
    (episode,) = loaded.episodes.values()
    assert (episode.rights, episode.publish_at, episode.consent) == ("", None, {})
    again = CatalogData.from_dict(json.loads(json.dumps(loaded.to_dict())))
    assert again.to_dict() == loaded.to_dict()


def test_a_record_must_live_under_its_own_slug() -> None:
    document = CatalogData().to_dict()
    document["people"] = [{"slug": "someone-else", "name": "Marie Dupont"}]
    with pytest.raises(InvalidInput, match="new address"):
        CatalogData.from_dict(document)


def test_linking_shares_a_record_across_episodes() -> None:
    first = make_episode("First", speakers=[Person.parse("Marie Dupont;chair;LSE")])
    second = make_episode("Second", speakers=[Person.parse("Marie Dupont;discussant")])
    records: dict[str, Person] = {}
    episodes = {first.id: first, second.id: second}
    people.link(records, episodes, [first, second], {})
    assert set(records) == {"marie-dupont"}
    before = people.snapshot(records)
    # A third episode states her ORCID iD: the record learns it, and every episode shows it.
    third = make_episode("Third", speakers=[
        Person.parse("Marie Dupont;speaker;;0000-0002-1825-0097")])
    episodes[third.id] = third
    people.link(records, episodes, [third], before)
    assert records["marie-dupont"].orcid == "0000-0002-1825-0097"
    assert [e.speakers[0].orcid for e in episodes.values()] == ["0000-0002-1825-0097"] * 3
    # Roles and affiliations stay each appearance's own.
    assert [(e.speakers[0].role, e.speakers[0].affiliation) for e in episodes.values()] == [
        ("chair", "LSE"), ("discussant", ""), ("speaker", "")]
    # A speaker who states nothing does not clear the record.
    fourth = make_episode("Fourth", speakers=[Person.parse("Marie Dupont")])
    episodes[fourth.id] = fourth
    people.link(records, episodes, [fourth], people.snapshot(records))
    assert fourth.speakers[0].orcid == "0000-0002-1825-0097"


def test_catalogue_changes_keep_records_and_copies_together(catalog: Catalog) -> None:
    def add(title: str, spec: str) -> None:
        episode = make_episode(title, speakers=[Person.parse(spec)])
        catalog.change(lambda data: data.series.setdefault(ROUNDTABLES.slug, ROUNDTABLES)
                       and data.episodes.__setitem__(episode.id, episode),
                       check_new_keys=False)

    add("One", "Marie Dupont;chair;LSE")
    add("Two", "Marie Dupont;discussant;LSE;0000-0002-1825-0097")
    data = Catalog(catalog.store).refresh().data
    assert data.people["marie-dupont"].orcid == "0000-0002-1825-0097"
    assert {e.speakers[0].orcid for e in data.episodes.values()} == {"0000-0002-1825-0097"}


def test_a_record_change_touches_only_the_episodes_the_person_speaks_in() -> None:
    from archive.catalog_format import TrackedEpisodes

    hers = make_episode("Hers", speakers=[Person.parse("Marie Dupont;chair")])
    other = make_episode("Other", speakers=[Person.parse("Ana Silva")])
    snapshot = {hers.id: hers, other.id: other}
    tracked = TrackedEpisodes(snapshot)
    records = {"marie-dupont": Person(name="Marie Dupont"), "ana-silva": Person(name="Ana Silva")}
    before = people.snapshot(records)
    records["marie-dupont"].orcid = "0000-0002-1825-0097"
    people.link(records, tracked, [], before)
    assert tracked.touched == {hers.id}
    assert tracked.peek(hers.id).speakers[0].orcid == "0000-0002-1825-0097"
    assert hers.speakers[0].orcid == ""  # the shared snapshot is never mutated


def test_a_revision_is_always_newer_than_the_last_even_within_one_second() -> None:
    """Datestamps are whole seconds: a person edit in the same second as the episode's last
    change must still move it, or a harvester (and an editor's open form) would miss it."""
    now = utcnow()
    assert next_revision(now) > now
    assert next_revision(now + timedelta(seconds=30)) == now + timedelta(seconds=31)
    assert next_revision(now.replace(microsecond=999_999)) > now
    assert next_revision(now - timedelta(days=2)) >= now
