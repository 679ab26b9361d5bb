"""OAI-PMH at /oai: harvested by a real harvester (sickle) from a running `archive serve`, and
the protocol's errors, tokens and dates checked request by request over the app.

What a harvester must learn: published episodes as records (oai_dc and MODS), unpublished
and deleted ones as deleted records that stay deleted, series as sets, changes by `from`.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner
from sickle import Sickle
from sickle.oaiexceptions import BadResumptionToken, IdDoesNotExist, NoRecordsMatch
from starlette.testclient import TestClient

from archive import oai
from archive.catalog import Catalog
from archive.config import Settings
from archive.editing import delete_episode, set_draft
from archive.models import Episode, Person, Series
from archive.runtime import Archive
from tests.factories import make_episode
from tests.servers import serve
from tests.test_web_media import WHEELER, publish

NS = {"oai": oai.OAI, "dc": "http://purl.org/dc/elements/1.1/",
      "oai_dc": "http://www.openarchives.org/OAI/2.0/oai_dc/", "mods": "http://www.loc.gov/mods/v3"}
LECTURES = Series.new("Lectures", "Inaugural and public lectures.", medium="course")
DUPONT = Person(name="Marie Dupont", role="lecturer", affiliation="Sciences Po",
                orcid="0000-0002-1825-0097")
HOSTILE = 'Trust & "Deception" <script>alert(1)</script>'


def amend(catalog: Catalog, episode: Episode, **fields: Any) -> Episode:
    def apply(data: Any) -> Episode:
        current = data.episodes[episode.id]
        changed = Episode.from_dict({**current.to_dict(), **fields})
        data.episodes[episode.id] = changed
        return changed

    return catalog.change(apply)


@dataclasses.dataclass
class Repository:
    archive: Archive
    roundtable: Episode
    lecture: Episode
    unpublished: Episode
    deleted: Episode
    draft: Episode

    def identifier(self, episode: Episode) -> str:
        return f"oai:archive.test:{episode.id}"


@pytest.fixture
def repository(archive: Archive, catalog: Catalog) -> Repository:
    roundtable = publish(catalog, HOSTILE)
    roundtable = amend(catalog, roundtable, description="Who trusts whom, and why.",
                       tags=["trust", "diplomacy"], licence="cc-by-4.0", language="en-gb",
                       consent={"nicholas-j-wheeler": "refused"},
                       chapters=[{"start": 0, "title": "Welcome"},
                                 {"start": 1, "title": "Discussion"}],
                       updated_at="2025-06-01T10:00:00+00:00")
    lecture = publish(catalog, "Inaugural Lecture: Trusting Enemies", series=LECTURES,
                      speakers=[DUPONT, WHEELER])
    lecture = amend(catalog, lecture, rights="http://rightsstatements.org/vocab/InC-EDU/1.0/")
    unpublished = publish(catalog, "Withdrawn talk")
    set_draft(archive, unpublished.id, True, "editor")
    deleted = publish(catalog, "Taken down talk", series=LECTURES)
    delete_episode(archive, deleted.id, "editor")
    draft = publish(catalog, "Unfinished draft", draft=True)
    return Repository(archive, roundtable, lecture, unpublished, deleted, draft)


@pytest.fixture
def app(repository: Repository, make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


def oai_get(client: TestClient, **params: str) -> ET.Element:
    response = client.get("/oai", params=params)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    return ET.fromstring(response.content)


def error_code(root: ET.Element) -> str | None:
    error = root.find("oai:error", NS)
    return None if error is None else error.get("code")


# -- a real harvester against a running server -----------------------------------------------


def test_sickle_harvests_records_sets_and_deletions(repository: Repository,
                                                    settings: Settings) -> None:
    with serve(settings) as base:
        sickle = Sickle(f"{base}/oai", max_retries=1, timeout=30)
        identify = sickle.Identify()
        assert identify.protocolVersion == "2.0"
        assert identify.deletedRecord == "persistent"
        assert identify.granularity == "YYYY-MM-DDThh:mm:ssZ"
        assert identify.baseURL == "http://archive.test/oai"
        assert {f.metadataPrefix for f in sickle.ListMetadataFormats()} == {"oai_dc", "mods"}
        assert {s.setSpec: s.setName for s in sickle.ListSets()} == {
            "roundtables": "Roundtables", "lectures": "Lectures"}

        records = {r.header.identifier: r for r in
                   sickle.ListRecords(metadataPrefix="oai_dc", ignore_deleted=False)}
        assert set(records) == {repository.identifier(e) for e in (
            repository.roundtable, repository.lecture, repository.unpublished,
            repository.deleted, repository.draft)}
        deleted = {i for i, r in records.items() if r.header.deleted}
        assert deleted == {repository.identifier(e) for e in (
            repository.unpublished, repository.deleted, repository.draft)}

        dc = records[repository.identifier(repository.roundtable)].metadata
        assert dc["title"] == [HOSTILE]  # escaped on the way out, intact on the way in
        assert dc["contributor"] == ["Nicholas J Wheeler"]  # a chair contributes
        assert dc["type"] == ["Sound"]
        assert dc["format"] == ["audio/mpeg"]
        assert dc["identifier"] == [f"http://archive.test/e/{repository.roundtable.id}"]
        assert dc["language"] == ["en-gb"]
        assert dc["subject"] == ["trust", "diplomacy"]
        assert "https://creativecommons.org/licenses/by/4.0/" in dc["rights"]
        assert "http://archive.test/series/roundtables" in dc["relation"]
        assert dc["date"] == [repository.roundtable.published_at.date().isoformat()]
        lecture = records[repository.identifier(repository.lecture)].metadata
        assert lecture["creator"] == ["Marie Dupont"]
        assert lecture["rights"][0] == "http://rightsstatements.org/vocab/InC-EDU/1.0/"

        in_set = [h.identifier for h in sickle.ListIdentifiers(
            metadataPrefix="oai_dc", set="lectures", ignore_deleted=False)]
        assert repository.identifier(repository.lecture) in in_set
        assert repository.identifier(repository.roundtable) not in in_set

        record = sickle.GetRecord(identifier=repository.identifier(repository.lecture),
                                  metadataPrefix="mods")
        mods = record.xml.find(".//mods:mods", NS)
        names = mods.findall("mods:name", NS)
        assert [n.findtext("mods:namePart", namespaces=NS) for n in names] == [
            "Marie Dupont", "Nicholas J Wheeler"]
        assert names[0].findtext("mods:role/mods:roleTerm", namespaces=NS) == "lecturer"
        assert names[0].findtext("mods:nameIdentifier", namespaces=NS) == \
            "https://orcid.org/0000-0002-1825-0097"
        assert names[0].findtext("mods:affiliation", namespaces=NS) == "Sciences Po"
        assert mods.findtext("mods:physicalDescription/mods:extent", namespaces=NS) == "2.000"

        gone = sickle.GetRecord(identifier=repository.identifier(repository.deleted),
                                metadataPrefix="oai_dc")
        assert gone.header.deleted
        assert gone.xml.find(".//oai:metadata", NS) is None
        with pytest.raises(IdDoesNotExist):
            sickle.GetRecord(identifier="oai:archive.test:nosuchrecord", metadataPrefix="oai_dc")
        later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d")
        with pytest.raises(NoRecordsMatch):
            sickle.ListIdentifiers(metadataPrefix="oai_dc", **{"from": later})


def test_sickle_follows_resumption_tokens_through_a_large_list(
        catalog: Catalog, settings: Settings) -> None:
    """250 records, 100 a page: the harvester gets every one exactly once in three requests."""
    series = Series.new("Roundtables")
    episodes = [make_episode(f"Session {n}") for n in range(250)]

    def apply(data: Any) -> None:
        data.series[series.slug] = series
        for episode in episodes:
            data.episodes[episode.id] = episode

    catalog.change(apply, check_new_keys=False)
    with serve(settings) as base:
        sickle = Sickle(f"{base}/oai", max_retries=1, timeout=30)
        headers = sickle.ListIdentifiers(metadataPrefix="oai_dc")
        seen = [h.identifier for h in headers]
        assert headers.resumption_token.token is None  # the last page ends the list
        assert headers.resumption_token.complete_list_size == "250"
        assert headers.resumption_token.cursor == "200"
    assert sorted(seen) == sorted(f"oai:archive.test:{e.id}" for e in episodes)
    with serve(settings) as base, pytest.raises(BadResumptionToken):
        next(iter(Sickle(f"{base}/oai").ListRecords(resumptionToken="forged.token")))


# -- the protocol, request by request ----------------------------------------------------------


@pytest.mark.parametrize(("params", "code"), [
    ({}, "badVerb"),
    ({"verb": "Harvest"}, "badVerb"),
    ({"verb": "ListRecords"}, "badArgument"),
    ({"verb": "Identify", "set": "x"}, "badArgument"),
    ({"verb": "GetRecord", "metadataPrefix": "oai_dc"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "marc21"}, "cannotDisseminateFormat"),
    ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "yesterday"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2020-01-01",
      "until": "2020-01-01T00:00:00Z"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "from": "2021-01-01",
      "until": "2020-01-01"}, "badArgument"),
    ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "set": "no-such-series"},
     "noRecordsMatch"),
    ({"verb": "ListRecords", "metadataPrefix": "oai_dc", "until": "2001-01-01"},
     "noRecordsMatch"),
    ({"verb": "ListRecords", "resumptionToken": "abc", "metadataPrefix": "oai_dc"},
     "badArgument"),
    ({"verb": "ListIdentifiers", "resumptionToken": "abc"}, "badResumptionToken"),
    ({"verb": "GetRecord", "metadataPrefix": "oai_dc", "identifier": "nonsense"},
     "idDoesNotExist"),
    ({"verb": "ListMetadataFormats", "identifier": "oai:archive.test:000000000000"},
     "idDoesNotExist"),
])
def test_errors_are_reported_per_spec(app: TestClient, params: dict[str, str],
                                      code: str) -> None:
    root = oai_get(app, **params)
    assert error_code(root) == code
    request = root.find("oai:request", NS)
    assert request.text == "http://archive.test/oai"
    if code in ("badVerb", "badArgument"):
        assert request.attrib == {}
    assert root.find("oai:ListRecords", NS) is None


def test_a_repeated_argument_is_bad(app: TestClient) -> None:
    response = app.get("/oai?verb=ListRecords&metadataPrefix=oai_dc&metadataPrefix=mods")
    assert error_code(ET.fromstring(response.content)) == "badArgument"
    response = app.get("/oai?verb=Identify&verb=Identify")
    assert error_code(ET.fromstring(response.content)) == "badVerb"


def test_control_characters_in_arguments_keep_the_answer_well_formed(app: TestClient) -> None:
    root = oai_get(app, verb="GetRecord", metadataPrefix="oai_dc", identifier="oai:\x01\x1b:x")
    assert error_code(root) == "idDoesNotExist"
    assert root.find("oai:request", NS).get("identifier") == "oai:\ufffd\ufffd:x"
    root = oai_get(app, verb="ListRecords", metadataPrefix="\x00<&>")
    assert error_code(root) == "cannotDisseminateFormat"


def test_post_is_answered_like_get(app: TestClient, repository: Repository) -> None:
    response = app.post("/oai", data={"verb": "GetRecord", "metadataPrefix": "oai_dc",
                                      "identifier": repository.identifier(repository.lecture)})
    root = ET.fromstring(response.content)
    assert root.findtext(".//dc:title", namespaces=NS) == "Inaugural Lecture: Trusting Enemies"
    assert root.find("oai:request", NS).get("verb") == "GetRecord"
    assert app.post("/oai", content=b"verb=Identify&" + b"x" * 70_000,
                    headers={"content-type": "application/x-www-form-urlencoded"}
                    ).status_code == 413


def test_private_consent_never_leaves(app: TestClient, repository: Repository) -> None:
    for prefix in ("oai_dc", "mods"):
        body = app.get("/oai", params={"verb": "ListRecords", "metadataPrefix": prefix}).content
        assert b"refused" not in body and b"consent" not in body


def test_from_and_until_select_by_last_change(app: TestClient, repository: Repository,
                                              catalog: Catalog) -> None:
    changed = catalog.refresh().data.episodes[repository.lecture.id].updated_at
    since = oai.stamp(changed)
    root = oai_get(app, verb="ListIdentifiers", metadataPrefix="oai_dc", **{"from": since})
    found = [h.findtext("oai:identifier", namespaces=NS)
             for h in root.iterfind(".//oai:header", NS)]
    assert repository.identifier(repository.lecture) in found
    assert repository.identifier(repository.roundtable) not in found  # changed earlier
    before = oai.stamp(changed - timedelta(seconds=1))
    root = oai_get(app, verb="ListIdentifiers", metadataPrefix="oai_dc", until=before)
    assert repository.identifier(repository.lecture) not in [
        h.findtext("oai:identifier", namespaces=NS) for h in root.iterfind(".//oai:header", NS)]
    day = changed.strftime("%Y-%m-%d")
    root = oai_get(app, verb="ListIdentifiers", metadataPrefix="oai_dc", until=day)
    assert error_code(root) is None  # a day includes its last second


def test_tokens_page_in_order_and_expire(app: TestClient, repository: Repository,
                                         monkeypatch: pytest.MonkeyPatch,
                                         settings: Settings) -> None:
    monkeypatch.setattr(oai, "PAGE_SIZE", 2)
    seen: list[str] = []
    root = oai_get(app, verb="ListIdentifiers", metadataPrefix="oai_dc")
    while True:
        seen += [h.findtext("oai:identifier", namespaces=NS)
                 for h in root.iterfind(".//oai:header", NS)]
        token = root.find(".//oai:resumptionToken", NS)
        assert token.get("completeListSize") == "5"
        if not token.text:
            break
        assert token.get("expirationDate") > oai.stamp(datetime.now(UTC))
        root = oai_get(app, verb="ListIdentifiers", resumptionToken=token.text)
    assert len(seen) == len(set(seen)) == 5

    class Yesterday(TimestampSigner):
        def get_timestamp(self) -> int:
            return int((datetime.now(UTC) - timedelta(days=2)).timestamp())

    old = URLSafeTimedSerializer(settings.secret_key, salt="oai-pmh", signer=Yesterday).dumps(
        {"m": "oai_dc", "s": "", "f": "", "u": "", "a": ["2000-01-01T00:00:00Z", "0"]})
    root = oai_get(app, verb="ListIdentifiers", resumptionToken=old)
    assert error_code(root) == "badResumptionToken"
    assert "expired" in root.findtext("oai:error", namespaces=NS)


def test_a_record_unpublished_then_deleted_stays_deleted(
        app: TestClient, repository: Repository, archive: Archive) -> None:
    identifier = repository.identifier(repository.unpublished)
    delete_episode(archive, repository.unpublished.id, "editor")
    view = app.app.state.archive.catalog.refresh()  # the app's own snapshot, now
    assert repository.unpublished.id not in view.data.episodes
    root = oai_get(app, verb="GetRecord", metadataPrefix="mods", identifier=identifier)
    header = root.find(".//oai:header", NS)
    assert header.get("status") == "deleted"
    assert root.find(".//oai:metadata", NS) is None


def test_identify_names_the_repository(app: TestClient) -> None:
    root = oai_get(app, verb="Identify")
    assert root.findtext(".//oai:adminEmail", namespaces=NS) == "archive@example.org"
    earliest = root.findtext(".//oai:earliestDatestamp", namespaces=NS)
    assert datetime.strptime(earliest, "%Y-%m-%dT%H:%M:%SZ")
    assert root.find(".//{http://www.openarchives.org/OAI/2.0/oai-identifier}"
                     "repositoryIdentifier").text == "archive.test"



def test_an_incremental_harvest_learns_of_unpublishing_and_deletion(
        app: TestClient, repository: Repository, archive: Archive) -> None:
    """What a harvester asks every night: `from` its last harvest. Both an unpublished and a
    deleted episode come back as deleted records, stamped with the moment it happened."""
    last_harvest = oai.stamp(datetime.now(UTC))
    set_draft(archive, repository.lecture.id, True, "editor")
    delete_episode(archive, repository.roundtable.id, "editor")
    app.app.state.archive.catalog.refresh()
    root = oai_get(app, verb="ListIdentifiers", metadataPrefix="oai_dc",
                   **{"from": last_harvest})
    headers = {h.findtext("oai:identifier", namespaces=NS): h
               for h in root.iterfind(".//oai:header", NS)}
    for episode in (repository.lecture, repository.roundtable):
        header = headers[repository.identifier(episode)]
        assert header.get("status") == "deleted"
        assert header.findtext("oai:datestamp", namespaces=NS) >= last_harvest
    # The roundtable changed long before (2025): only its deletion brings it back.
    assert repository.roundtable.updated_at.year == 2025
