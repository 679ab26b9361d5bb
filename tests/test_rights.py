"""Rights: rights statements, embargo (scheduled publication by a real catalogue write), and
speakers' consent, private to editors, whose withdrawal unpublishes in one audited action."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from archive import audit, editing, rights
from archive.catalog import CATALOG_KEY, Catalog
from archive.errors import Conflict, InvalidInput
from archive.models import Episode, Person, normalise_rights, utcnow
from archive.runtime import Archive
from tests.browser import publish_recording
from tests.cli import cli_env, run_cli
from tests.test_auth import add_editor, bearer, sign_in, token_for

IN_COPYRIGHT = "http://rightsstatements.org/vocab/InC/1.0/"
SPEAKERS = [Person.parse("Marie Dupont;chair;LSE"), Person.parse("Ana Silva;discussant")]


def talk(catalog: Catalog, title: str = "Trust Between States", **fields: Any) -> Episode:
    fields.setdefault("speakers", SPEAKERS)
    return publish_recording(catalog, title, cues=[(0, 2, "Good evening.")], **fields)


def etag(archive: Archive) -> str | None:
    return archive.store.head(CATALOG_KEY).etag


def events(archive: Archive, action: str) -> list[audit.Event]:
    return [e for e in audit.recent(archive.store) if e.action == action]


@pytest.mark.parametrize("given", [
    IN_COPYRIGHT, "https://rightsstatements.org/vocab/InC/1.0",
    "http://RightsStatements.org/vocab/InC/1.0/"])
def test_rights_statements_are_read_in_their_canonical_form(given: str) -> None:
    assert normalise_rights(given) == IN_COPYRIGHT


@pytest.mark.parametrize("bad", ["http://rightsstatements.org/vocab/Nope/1.0/",
                                 "https://example.org/rights", "javascript:alert(1)"])
def test_other_rights_statements_are_refused(bad: str) -> None:
    with pytest.raises(InvalidInput, match=r"rightsstatements\.org"):
        normalise_rights(bad)


def test_rights_through_the_api_and_in_the_public_json(archive: Archive, client: TestClient
                                                        ) -> None:
    episode = talk(archive.catalog)
    token = token_for(archive.store)
    response = client.patch(f"/api/episodes/{episode.id}", headers=bearer(token),
                            json={"rights": "https://rightsstatements.org/vocab/InC-EDU/1.0/"})
    assert response.status_code == 200, response.text
    public = client.get(f"/api/episodes/{episode.id}").json()
    assert public["rights"] == "http://rightsstatements.org/vocab/InC-EDU/1.0/"
    assert client.patch(f"/api/episodes/{episode.id}", headers=bearer(token),
                        json={"rights": "no such thing"}).status_code == 422


def test_an_embargo_hides_until_due_then_a_real_write_publishes(archive: Archive) -> None:
    episode = talk(archive.catalog)
    before = archive.catalog.refresh().published
    assert [e.id for e in before] == [episode.id]
    when = utcnow() + timedelta(days=2)
    scheduled = rights.schedule(archive, episode.id, when.isoformat(), "editor")
    assert scheduled.scheduled and scheduled.draft and scheduled.publish_at == when
    assert archive.catalog.refresh().published == []
    # Nothing due: no catalogue write at all.
    tag = etag(archive)
    assert rights.publish_due(archive, now=utcnow()) == []
    assert etag(archive) == tag
    # Due: published with a new publication time, in one conditional write.
    (published,) = rights.publish_due(archive, now=when + timedelta(seconds=1))
    assert published.id == episode.id
    assert etag(archive) != tag
    fresh = Catalog(archive.store).refresh().data.episodes[episode.id]
    assert not fresh.draft and fresh.publish_at is None and not fresh.scheduled
    assert fresh.published_at == when + timedelta(seconds=1)  # when it was made public
    (event,) = events(archive, "episode.publish")
    assert (event.actor, event.target) == (rights.SCHEDULER, episode.id)
    assert json.loads(archive.store.get_bytes(f"episodes/{episode.id}/meta.json")[0]
                      )["draft"] is False


def test_the_worker_scheduler_publishes_and_the_feed_follows(archive: Archive,
                                                             client: TestClient) -> None:
    episode = talk(archive.catalog)
    rights.schedule(archive, episode.id, (utcnow() + timedelta(seconds=1)).isoformat(), "ed")
    assert episode.guid not in client.get("/feed.xml").text
    stop = threading.Event()
    thread = rights.Scheduler(archive, every=0.2).start(stop)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not Catalog(archive.store).refresh().data.episodes[episode.id].draft:
                break
            stop.wait(0.1)
    finally:
        stop.set()
        thread.join(5)
    assert not Catalog(archive.store).refresh().data.episodes[episode.id].draft
    deadline = time.monotonic() + 10  # the app's snapshot revalidates within catalog_ttl
    while episode.guid not in client.get("/feed.xml").text and time.monotonic() < deadline:
        stop.wait(0.1)
    assert episode.guid in client.get("/feed.xml").text


def test_editors_see_scheduled(archive: Archive, client: TestClient) -> None:
    episode = talk(archive.catalog)
    add_editor(archive.store)
    csrf = sign_in(client)
    response = client.post(f"/edit/{episode.id}/rights", data={
        "csrf": csrf, "action": "schedule", "publish_at": "2031-05-04T09:30"},
        follow_redirects=False)
    assert response.status_code == 303, response.text
    assert "<td>scheduled</td>" in client.get("/edit").text
    page = client.get(f"/edit/{episode.id}/rights").text
    assert "Scheduled" in page and "04 May 2031, 09:30 UTC" in page
    assert client.get(f"/episodes/{episode.slug}").status_code == 404
    client.post(f"/edit/{episode.id}/rights", data={"csrf": csrf, "action": "unschedule"})
    assert Catalog(archive.store).refresh().data.episodes[episode.id].publish_at is None


def test_consent_is_private(archive: Archive, make_client: Any) -> None:
    episode = talk(archive.catalog)
    rights.set_consent(archive, episode.id, "marie-dupont", "given", "editor")
    rights.set_consent(archive, episode.id, "ana-silva", "requested", "editor")
    client = make_client()  # its first snapshot has the consent
    stored = Catalog(archive.store).refresh().data.episodes[episode.id]
    assert stored.consent == {"marie-dupont": "given", "ana-silva": "requested"}
    public = client.get(f"/api/episodes/{episode.id}")
    assert public.status_code == 200 and "consent" not in public.json()
    listing = client.get("/api/episodes").text
    for text in (client.get("/feed.xml").text, client.get("/series/workshops/feed.xml").text,
                 client.get(f"/episodes/{episode.slug}").text, listing):
        assert "requested" not in text and "consent" not in text.lower()
    assert f"/episodes/{episode.slug}" not in client.get("/search?q=requested").text
    assert f"/episodes/{episode.slug}" in client.get("/search?q=evening").text
    token = token_for(archive.store)
    private = client.get(f"/api/episodes/{episode.id}", headers=bearer(token)).json()
    assert private["consent"]["ana-silva"] == "requested"  # editors' API only


def test_withdrawing_consent_unpublishes_in_one_audited_action(archive: Archive,
                                                               client: TestClient) -> None:
    episode = talk(archive.catalog, "Withdrawn Talk")
    add_editor(archive.store)
    csrf = sign_in(client)
    tag = etag(archive)
    response = client.post(f"/edit/{episode.id}/rights", data={
        "csrf": csrf, "action": "consent", "speaker": "ana-silva", "status": "withdrawn"},
        follow_redirects=False)
    assert response.status_code == 303
    assert etag(archive) != tag
    stored = Catalog(archive.store).refresh().data.episodes[episode.id]
    assert stored.draft and stored.consent == {"ana-silva": "withdrawn"}
    (event,) = events(archive, "consent.withdraw")
    assert (event.actor, event.target) == ("editor", episode.id)
    assert event.detail == {"speaker": "ana-silva", "status": "withdrawn", "unpublished": True}
    assert "consent.withdraw" in client.get("/audit").text
    deadline = time.monotonic() + 10
    while client.get(f"/episodes/{episode.slug}").status_code != 404:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert episode.guid not in client.get("/feed.xml").text
    # Publishing or scheduling it again is refused until consent is recorded again.
    with pytest.raises(Conflict, match="Ana Silva withdrew"):
        editing.set_draft(archive, episode.id, False, "editor")
    with pytest.raises(Conflict):
        rights.schedule(archive, episode.id, (utcnow() + timedelta(days=1)).isoformat(), "e")
    token = token_for(archive.store)
    assert client.patch(f"/api/episodes/{episode.id}", headers=bearer(token),
                        json={"draft": False}).status_code == 409
    rights.set_consent(archive, episode.id, "ana-silva", "given", "editor")
    assert not editing.set_draft(archive, episode.id, False, "editor").draft


def test_consent_withdrawn_before_a_scheduled_date_keeps_it_unpublished(archive: Archive
                                                                        ) -> None:
    episode = talk(archive.catalog)
    when = utcnow() + timedelta(hours=1)
    rights.schedule(archive, episode.id, when, "editor")
    withdrawn = rights.set_consent(archive, episode.id, "marie-dupont", "withdrawn", "editor")
    assert withdrawn.draft and withdrawn.publish_at is None
    assert rights.publish_due(archive, now=when + timedelta(hours=1)) == []


@pytest.mark.parametrize(("form", "status"), [
    ({"action": "consent", "speaker": "nobody-here", "status": "given"}, 404),
    ({"action": "consent", "speaker": "ana-silva", "status": "maybe"}, 422),
    ({"action": "schedule", "publish_at": "next tuesday"}, 422),
    ({"action": "schedule", "publish_at": ""}, 422),
    ({"action": "rights", "rights": "http://example.org"}, 422),
    ({"action": "explode"}, 422),
])
def test_hostile_rights_forms_get_clear_errors(archive: Archive, client: TestClient,
                                                form: dict[str, str], status: int) -> None:
    episode = talk(archive.catalog)
    add_editor(archive.store)
    csrf = sign_in(client)
    tag = etag(archive)
    response = client.post(f"/edit/{episode.id}/rights", data={"csrf": csrf, **form})
    assert response.status_code == status, response.text
    assert etag(archive) == tag  # nothing half-written


def test_rights_pages_need_an_editor(archive: Archive, client: TestClient) -> None:
    episode = talk(archive.catalog)
    response = client.get(f"/edit/{episode.id}/rights", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert client.post(f"/edit/{episode.id}/rights",
                       data={"action": "consent"}).status_code in (401, 403)


def test_archive_publish_due_from_the_command_line(archive: Archive) -> None:
    episode = talk(archive.catalog)
    rights.schedule(archive, episode.id, utcnow() + timedelta(days=1), "editor")
    nothing = run_cli(archive.settings, "publish-due")
    assert nothing.returncode == 0 and "Nothing scheduled is due." in nothing.stdout
    rights.schedule(archive, episode.id, utcnow() - timedelta(minutes=1), "editor")
    done = run_cli(archive.settings, "publish-due")
    assert done.returncode == 0, done.stderr
    assert f"Published {episode.id}" in done.stdout
    assert not Catalog(archive.store).refresh().data.episodes[episode.id].draft


def test_archive_worker_publishes_what_is_due(archive: Archive) -> None:
    episode = talk(archive.catalog)
    rights.schedule(archive, episode.id, utcnow() - timedelta(seconds=1), "editor")
    worker = subprocess.Popen([sys.executable, "-m", "archive", "worker"],
                              env=cli_env(archive.settings), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while Catalog(archive.store).refresh().data.episodes[episode.id].draft:
            assert worker.poll() is None, worker.communicate()
            assert time.monotonic() < deadline, "the worker did not publish the due episode"
            time.sleep(0.2)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=30)
    (event,) = events(archive, "episode.publish")
    assert event.actor == rights.SCHEDULER


def test_a_bad_citation_style_setting_fails_in_one_line(archive: Archive) -> None:
    env = {**cli_env(archive.settings), "ARCHIVE_CITATION_STYLE": "no-such-style"}
    result = subprocess.run([sys.executable, "-m", "archive", "jobs"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and "ARCHIVE_CITATION_STYLE" in result.stderr


def test_a_rights_statement_replaces_the_default_licence_on_the_page(archive: Archive,
                                                                     make_client: Any) -> None:
    stated = talk(archive.catalog, "In Copyright Talk", rights=IN_COPYRIGHT)
    licensed = talk(archive.catalog, "Licensed Talk", rights=IN_COPYRIGHT, licence="cc-by-4.0")
    client = make_client()
    page = client.get(f"/episodes/{stated.slug}").text
    assert "<dt>Rights</dt>" in page and f'href="{IN_COPYRIGHT}" rel="license">In Copyright' in page
    ld = json.loads(page.split('<script type="application/ld+json">')[1].split("</script>")[0])
    assert ld["license"] == IN_COPYRIGHT
    page = client.get(f"/episodes/{licensed.slug}").text
    assert "<dt>Licence</dt>" in page and "creativecommons.org/licenses/by/4.0/" in page


def test_the_api_schedules_and_cancels(archive: Archive, client: TestClient) -> None:
    episode = talk(archive.catalog)
    token = token_for(archive.store)
    url = f"/api/episodes/{episode.id}"
    response = client.patch(url, headers=bearer(token),
                            json={"publish_at": "2031-05-04T09:30:00+00:00"})
    assert response.status_code == 200, response.text
    stored = Catalog(archive.store).refresh().data.episodes[episode.id]
    assert stored.scheduled and stored.publish_at.isoformat() == "2031-05-04T09:30:00+00:00"
    assert client.patch(url, headers=bearer(token),
                        json={"publish_at": "tomorrow"}).status_code == 422
    assert client.patch(url, headers=bearer(token), json={"publish_at": 5}).status_code == 422
    # Published by hand: the schedule is done with.
    assert client.patch(url, headers=bearer(token), json={"draft": False}).status_code == 200
    stored = Catalog(archive.store).refresh().data.episodes[episode.id]
    assert not stored.draft and stored.publish_at is None
