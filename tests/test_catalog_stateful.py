"""Stateful property test: random add / edit / publish / unpublish / delete sequences against the
real catalogue in a real bucket, checked after every step against a simple model.

Each example gets its own bucket and a running app (TestClient, lifespan on). Episodes are added
the way an ingest commits them (`Catalog.stage` + `commit`, with a real tiny MP3 as delivery file
so edits can re-tag it); every change after that goes through `archive.editing`, on the app's own
`Archive`, as the editor pages and the API do. After each step:

- a fresh `Catalog` on the bucket and the app's view both equal the model (ids, guids, titles,
  draft flags, series);
- `/feed.xml`, every series feed and the speaker's feed parse cleanly with podcastparser and
  feedparser (bozo == 0) and list exactly the model's published episodes (titles and guids);
- every object the catalogue names exists, whole: all the while `verify --repair` runs in a
  thread with no grace and `--force`, moving every orphan it sees, staged uploads of adds and
  edits in flight included. A step it races is refused (Conflict: nothing changes, the model
  neither); no committed episode ever loses an object;
- at the end, with the repair thread stopped and one last repair run, `verify` finds nothing
  damaged and no orphan (edits retire old objects, deletes remove all).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import feedparser
import podcastparser
import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from starlette.testclient import TestClient

from archive import editing
from archive.catalog import Catalog
from archive.config import Settings
from archive.errors import ArchiveError, Conflict, NotFound
from archive.fixity import verify
from archive.models import Series, slugify
from archive.runtime import Archive, make_store
from archive.storage import ObjectStore
from tests import media_samples
from tests.conftest import ACCESS_KEY, SECRET_KEY
from tests.factories import make_episode

pytestmark = pytest.mark.slow

SERIES = ["Roundtables", "Lectures", "Trust & Diplomacy"]
WORDS = ["Trust", "Enemies", "Café", "<Geneva>", "&", "Summit", "“Quoted”", "O'Neill",
         "Ünïcödé", "30th", "Anniversary", "—", "Talk"]
TITLES = st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join)
SPEAKER = "nicholas-j-wheeler"  # make_episode's speaker
ACTOR = "test:stateful"


@dataclass
class Modelled:
    guid: str
    title: str
    series: str  # slug
    draft: bool


def parse_feed(xml: bytes, url: str) -> list[tuple[str, str]]:
    """(guid, title) of each item, as two real podcast parsers read them; they must agree."""
    parsed = feedparser.parse(xml)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    from_feedparser = sorted((e["id"], e["title"]) for e in parsed.entries)
    from_podcastparser = sorted((e["guid"], e["title"])
                                for e in podcastparser.parse(url, io.BytesIO(xml))["episodes"])
    assert from_feedparser == from_podcastparser
    return from_podcastparser


class CatalogMachine(RuleBasedStateMachine):
    endpoint: ClassVar[str] = ""
    delivery: ClassVar[bytes] = b""  # a real tiny MP3, the same bytes for every episode

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="archive-stateful-"))
        self.settings = Settings(
            s3_endpoint=self.endpoint, s3_bucket=f"t-{secrets.token_hex(6)}",
            access_key=ACCESS_KEY, secret_access_key=SECRET_KEY,
            base_url="http://archive.test", data_dir=self.folder / "data",
            secret_key="test-secret-key-" + secrets.token_hex(8), catalog_ttl=0.5)
        self.store = make_store(self.settings, self.endpoint)
        self.store.ensure_bucket()
        from archive.web.app import create_app

        self.client = TestClient(create_app(self.settings), base_url=self.settings.base_url)
        self.client.__enter__()
        self.archive: Archive = self.client.app.state.archive  # type: ignore[attr-defined]
        self.model: dict[str, Modelled] = {}
        self.series: set[str] = set()
        self.deleted: list[str] = []
        self.counter = itertools.count()
        self.repairer = Repairer(self.store)
        self.repairer.start()

    def teardown(self) -> None:
        try:
            self.repairer.finish()
            if self.model:  # the last word: a clean bucket
                verify(Catalog(self.store), repair=True, grace=NO_GRACE, force=True)
                report = verify(Catalog(self.store), grace=NO_GRACE)
                assert report.damaged == [] and report.orphans == [], report
            self.every_committed_object_is_there()
        finally:
            self.repairer.finish()
            self.client.__exit__(None, None, None)
            with contextlib.suppress(ArchiveError):
                self.store.drop_bucket()
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- rules ---------------------------------------------------------------------------------

    @rule(title=TITLES, series=st.sampled_from(SERIES), draft=st.booleans(), slow=st.booleans())
    def add(self, title: str, series: str, draft: bool, slow: bool) -> None:
        """Commit an episode as an ingest does: objects staged first, catalogue last. A slow
        ingest commits only after a whole repair pass has seen its staged file."""
        episode = make_episode(title, series=slugify(series, "series"), draft=draft)
        n = next(self.counter)
        try:
            with self.archive.catalog.stage(episode.id) as stage:
                stored = self.store.put_bytes(stage.key("talk.mp3"), self.delivery,
                                              "audio/mpeg")
                audio = episode.files["audio"]
                audio.key, audio.size, audio.sha256 = stored.key, stored.size, stored.sha256
                # Unique per add, as different recordings would be (else: a Duplicate refusal).
                episode.original_sha256 = hashlib.sha256(f"recording {n}".encode()).hexdigest()
                if slow:
                    self.repairer.wait_for_a_whole_pass()
                committed = stage.commit(episode, Series.new(series))
        except Conflict as refused:  # the repair thread moved the staged file: not published
            assert "upload it again" in refused.message
            return
        self.model[committed.id] = Modelled(committed.guid, committed.title, committed.series,
                                            draft)
        self.series.add(committed.series)

    def _pick(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(self.model)), label="episode")

    @precondition(lambda self: self.model)
    @rule(data=st.data(), title=TITLES)
    def edit_title(self, data: st.DataObject, title: str) -> None:
        episode_id = self._pick(data)
        edited = self._refusable(lambda: editing.update_episode(
            self.archive, episode_id, {"title": title}, ACTOR))
        if edited is None:
            return
        assert edited.title == title and edited.guid == self.model[episode_id].guid
        self.model[episode_id].title = title

    @precondition(lambda self: self.model)
    @rule(data=st.data(), series=st.sampled_from(SERIES))
    def move_to_series(self, data: st.DataObject, series: str) -> None:
        episode_id = self._pick(data)
        edited = self._refusable(lambda: editing.update_episode(
            self.archive, episode_id, {"series": series}, ACTOR))
        if edited is None:
            return
        assert edited.series == slugify(series, "series")
        self.model[episode_id].series = edited.series
        self.series.add(edited.series)

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def publish(self, data: st.DataObject) -> None:
        episode_id = self._pick(data)
        assert editing.set_draft(self.archive, episode_id, False, ACTOR).draft is False
        self.model[episode_id].draft = False

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def unpublish(self, data: st.DataObject) -> None:
        episode_id = self._pick(data)
        assert editing.set_draft(self.archive, episode_id, True, ACTOR).draft is True
        self.model[episode_id].draft = True

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        episode_id = self._pick(data)
        removed = editing.delete_episode(self.archive, episode_id, ACTOR)
        assert removed.id == episode_id
        del self.model[episode_id]
        self.deleted.append(episode_id)

    @precondition(lambda self: self.deleted)
    @rule(data=st.data(), title=TITLES)
    def change_a_deleted_episode(self, data: st.DataObject, title: str) -> None:
        """Refused as NotFound; nothing changes (the invariants check that)."""
        episode_id = data.draw(st.sampled_from(self.deleted), label="deleted")
        for change in (lambda: editing.update_episode(self.archive, episode_id,
                                                      {"title": title}, ACTOR),
                       lambda: editing.set_draft(self.archive, episode_id, False, ACTOR),
                       lambda: editing.delete_episode(self.archive, episode_id, ACTOR)):
            with pytest.raises(NotFound):
                change()

    # -- invariants ----------------------------------------------------------------------------

    def _expected(self, series: str | None = None) -> list[tuple[str, str]]:
        return sorted((m.guid, m.title) for m in self.model.values()
                      if not m.draft and (series is None or m.series == series))

    @invariant()
    def catalogue_equals_the_model(self) -> None:
        expected = {i: (m.guid, m.title, m.series, m.draft) for i, m in self.model.items()}
        for view in (Catalog(self.store).refresh(), self.archive.catalog.cached_view()):
            found = {e.id: (e.guid, e.title, e.series, e.draft)
                     for e in view.data.episodes.values()}
            assert found == expected
            assert set(view.data.series) == self.series
            assert sorted(e.id for e in view.published) == sorted(
                i for i, m in self.model.items() if not m.draft)

    @invariant()
    def every_feed_parses_and_lists_the_published(self) -> None:
        feeds = {"/feed.xml": self._expected()}
        feeds.update({f"/series/{slug}/feed.xml": self._expected(slug) for slug in self.series})
        for path, expected in feeds.items():
            response = self.client.get(path)
            assert response.status_code == 200, (path, response.text)
            assert parse_feed(response.content, self.settings.base_url + path) == expected, path
        person = self.client.get(f"/people/{SPEAKER}/feed.xml")
        if self._expected():
            assert person.status_code == 200
            assert parse_feed(person.content, str(person.url)) == self._expected()
        else:  # nobody has spoken in a published episode
            assert person.status_code == 404

    @staticmethod
    def _refusable(edit):  # type: ignore[no-untyped-def]
        """An edit whose re-tagged file the repair thread moved is refused, not published."""
        try:
            return edit()
        except Conflict as refused:
            assert "upload it again" in refused.message
            return None

    @invariant()
    def every_committed_object_is_there(self) -> None:
        """While the repair thread runs: nothing the catalogue names is ever missing."""
        for episode in Catalog(self.store).refresh().data.episodes.values():
            for media in episode.files.values():
                assert self.store.head(media.key).size == media.size, media.key
        assert self.repairer.errors == []

    @invariant()
    def nothing_damaged(self) -> None:
        if self.model:
            assert verify(Catalog(self.store), grace=NO_GRACE, checksums=False).damaged == []


NO_GRACE = timedelta(0)


class Repairer(threading.Thread):
    """`archive verify --repair --grace 0 --force`, over and over, until told to stop."""

    runs: ClassVar[int] = 0  # repairs completed, over all examples

    def __init__(self, store: ObjectStore) -> None:
        super().__init__(daemon=True)
        self.store = store
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.passes = 0  # attempts finished, repaired or refused
        self.passed = threading.Condition()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                verify(Catalog(self.store), repair=True, grace=NO_GRACE, force=True,
                       checksums=False)
                Repairer.runs += 1
            except ArchiveError:
                pass  # no catalogue yet, or a race it lost: it tries again
            except BaseException as error:  # reported by the invariant
                self.errors.append(error)
                return
            finally:
                with self.passed:
                    self.passes += 1
                    self.passed.notify_all()

    def wait_for_a_whole_pass(self) -> None:
        """Until a pass that started after this call has finished (two passes ending)."""
        with self.passed:
            target = self.passes + 2
            assert self.passed.wait_for(
                lambda: self.passes >= target or not self.is_alive(), timeout=60)

    def finish(self) -> None:
        self.stop.set()
        if self.is_alive():
            self.join(60)


@pytest.fixture(scope="module")
def machine(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> type[CatalogMachine]:
    mp3 = media_samples.make_recording(tmp_path_factory.mktemp("stateful") / "tiny.mp3", "mp3",
                                       seconds=0.3)
    CatalogMachine.endpoint = s3_endpoint
    CatalogMachine.delivery = mp3.read_bytes()
    return CatalogMachine


def test_catalogue_follows_random_edits(machine: type[CatalogMachine]) -> None:
    run_state_machine_as_test(machine, settings=hypothesis_settings(
        max_examples=15, stateful_step_count=12, deadline=None))
    assert Repairer.runs > 0  # the repair thread really ran alongside
