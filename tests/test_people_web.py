"""People records over the web and the CLI: the person editor page changes every episode the
person speaks in, and the ORCID iD reaches `podcast:person href`, JSON-LD, citations and the
person page; hostile input gets clear errors; `reindex` keeps the records."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from starlette.testclient import TestClient

from archive.catalog import CATALOG_KEY, Catalog
from archive.config import Settings
from archive.fixity import reindex
from archive.models import Person
from archive.runtime import Archive
from archive.storage import ObjectStore
from tests import media_samples
from tests.browser import publish_recording
from tests.cli import run_cli
from tests.test_auth import add_editor, sign_in

ORCID = "0000-0002-1825-0097"
PODCAST = "https://podcastindex.org/namespace/1.0"


def two_talks(archive: Archive) -> list[Any]:
    return [publish_recording(archive.catalog, title, speakers=[
        Person.parse(f"Marie Dupont;{role};LSE"), Person.parse("Ana Silva;discussant")])
        for title, role in (("First Roundtable", "chair"), ("Second Roundtable", "speaker"))]


def wait_for(client: TestClient, path: str, text: str) -> str:
    """The app revalidates its snapshot every catalog_ttl: look until the change shows."""
    deadline = time.monotonic() + 10
    while True:
        body = client.get(path).text
        if text in body or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def test_the_person_editor_sets_orcid_for_every_episode(archive: Archive,
                                                        client: TestClient) -> None:
    first, second = two_talks(archive)
    add_editor(archive.store)
    csrf = sign_in(client)
    listing = client.get("/edit/people").text
    assert "/edit/people/marie-dupont" in listing and "/edit/people/ana-silva" in listing
    form = client.get("/edit/people/marie-dupont").text
    assert 'name="orcid"' in form and "Marie Dupont" in form
    response = client.post("/edit/people/marie-dupont", data={
        "csrf": csrf, "name": "Marie Dupont", "orcid": f"https://orcid.org/{ORCID}",
        "url": "https://www.lse.ac.uk/people/marie-dupont",
        "image": "https://www.lse.ac.uk/people/marie-dupont.jpg"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    data = Catalog(archive.store).refresh().data
    assert data.people["marie-dupont"].orcid == ORCID
    for episode in (first, second):
        (marie,) = [p for p in data.episodes[episode.id].speakers if p.slug == "marie-dupont"]
        assert (marie.orcid, marie.url) == (ORCID, "https://www.lse.ac.uk/people/marie-dupont")
        copy = json.loads(archive.store.get_bytes(f"episodes/{episode.id}/meta.json")[0])
        assert copy["speakers"][0]["orcid"] == ORCID
    # Their datestamps moved, so an OAI-PMH harvest `from` before the edit gets them again.
    assert all(data.episodes[e.id].updated_at > e.updated_at for e in (first, second))
    # Roles stay each recording's own.
    assert [data.episodes[e.id].speakers[0].role for e in (first, second)] == ["chair",
                                                                              "speaker"]
    # The feed: podcast:person href is the ORCID iD, img the portrait.
    feed = etree.fromstring(wait_for(client, "/feed.xml", ORCID).encode())
    people = feed.findall(f".//{{{PODCAST}}}person")
    maries = [p for p in people if p.text == "Marie Dupont"]
    assert len(maries) == 2
    assert {p.get("href") for p in maries} == {f"https://orcid.org/{ORCID}"}
    assert {p.get("img") for p in maries} == {"https://www.lse.ac.uk/people/marie-dupont.jpg"}
    assert not [p for p in people if p.text == "Ana Silva" and p.get("href")]
    # JSON-LD: sameAs and identifier.
    page = wait_for(client, f"/episodes/{first.slug}", ORCID)
    ld = json.loads(page.split('<script type="application/ld+json">')[1].split("</script>")[0])
    (person,) = [c for c in ld["contributor"] if c["name"] == "Marie Dupont"]
    assert person["sameAs"] == [f"https://orcid.org/{ORCID}",
                                "https://www.lse.ac.uk/people/marie-dupont"]
    assert person["identifier"]["propertyID"] == "ORCID" and person["identifier"]["value"] == ORCID
    # CSL-JSON and the person page.
    (item,) = client.get(f"/episodes/{first.slug}/cite.json").json()
    assert item["author"][0]["ORCID"] == f"https://orcid.org/{ORCID}"
    person_page = client.get("/people/marie-dupont").text
    assert f'href="https://orcid.org/{ORCID}"' in person_page
    ld = json.loads(person_page.split('<script type="application/ld+json">')[1]
                    .split("</script>")[0])
    assert (ld["@type"], ld["sameAs"][0], ld["image"]) == (
        "Person", f"https://orcid.org/{ORCID}", "https://www.lse.ac.uk/people/marie-dupont.jpg")
    assert "person.update" in client.get("/audit").text


@pytest.mark.parametrize(("form", "status"), [
    ({"name": "Marie Dupont", "orcid": "0000-0002-1825-0098"}, 422),
    ({"name": "Marie Dupont", "orcid": "not an orcid"}, 422),
    ({"name": "Someone Else"}, 422),  # would move her to /people/someone-else
    ({"name": ""}, 422),
    ({"name": "Marie Dupont", "url": "javascript:alert(1)"}, 422),
    ({"name": "Marie Dupont", "image": "data:image/png;base64,AAAA"}, 422),
])
def test_hostile_person_forms_get_clear_errors(archive: Archive, client: TestClient,
                                               form: dict[str, str], status: int) -> None:
    two_talks(archive)
    add_editor(archive.store)
    csrf = sign_in(client)
    tag = archive.store.head(CATALOG_KEY).etag
    response = client.post("/edit/people/marie-dupont", data={"csrf": csrf, **form})
    assert response.status_code == status, response.text
    assert archive.store.head(CATALOG_KEY).etag == tag


def test_unknown_people_and_strangers(archive: Archive, client: TestClient) -> None:
    two_talks(archive)
    assert client.get("/edit/people/marie-dupont", follow_redirects=False).status_code == 303
    assert client.post("/edit/people/marie-dupont",
                       data={"name": "Marie Dupont"}).status_code in (401, 403)
    add_editor(archive.store)
    csrf = sign_in(client)
    assert client.get("/edit/people/nobody-at-all").status_code == 404
    assert client.post("/edit/people/nobody-at-all",
                       data={"csrf": csrf, "name": "Nobody At All"}).status_code == 404


def test_an_orcid_given_at_ingest_reaches_the_record_and_reindex_keeps_it(
        archive: Archive) -> None:
    first, _ = two_talks(archive)
    publish_recording(archive.catalog, "Third Roundtable", speakers=[
        Person.parse(f"Ana Silva;chair;SOAS;{ORCID}")])
    data = Catalog(archive.store).refresh().data
    assert data.people["ana-silva"].orcid == ORCID
    assert all(p.orcid == ORCID for e in data.episodes.values() for p in e.speakers
               if p.slug == "ana-silva")
    from archive import person_edits

    person_edits.write_copies(archive, "ana-silva")
    archive.store.delete(CATALOG_KEY)
    rebuilt = reindex(archive.catalog)
    assert rebuilt.people["ana-silva"].orcid == ORCID
    (ana,) = [p for p in rebuilt.episodes[first.id].speakers if p.slug == "ana-silva"]
    assert ana.orcid == ORCID


def test_the_cli_speaker_form_carries_an_orcid(settings: Settings, store: ObjectStore,
                                               tmp_path: Path) -> None:
    source = media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=1.0)
    typo = run_cli(settings, "ingest", source, "--title", "Typo", "--series", "Seminars",
                   "--speaker", "Marie Dupont;chair;LSE;0000-0002-1825-0098")
    assert typo.returncode != 0
    assert typo.stderr.strip().count("\n") == 0 and "check digit" in typo.stderr
    done = run_cli(settings, "ingest", source, "--title", "Identified", "--series", "Seminars",
                   "--speaker", f"Marie Dupont;chair;LSE;https://orcid.org/{ORCID}",
                   "--speaker", "Ana Silva;discussant")
    assert done.returncode == 0, done.stderr
    data = Catalog(store).refresh().data
    assert data.people["marie-dupont"].orcid == ORCID and data.people["ana-silva"].orcid == ""
    (episode,) = data.episodes.values()
    assert [(p.name, p.role, p.affiliation, p.orcid) for p in episode.speakers] == [
        ("Marie Dupont", "chair", "LSE", ORCID), ("Ana Silva", "discussant", "", "")]
