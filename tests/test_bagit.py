"""Preservation: `archive export --bagit` writes bags the `bagit` library validates, and
`archive import --bagit` brings them back into an empty bucket, identical to the byte, or
refuses (a tampered bag, an episode already here) without writing anything."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import bagit
import pytest

from archive.bagit_io import export_bags, import_bags
from archive.catalog import Catalog
from archive.config import Settings
from archive.errors import Conflict, InvalidInput, StorageError
from archive.models import Episode, MediaFile, Person, Series
from archive.runtime import Archive, make_store
from archive.storage import ObjectStore
from media.artwork import generate_cover
from tests.cli import run_cli
from tests.conftest import bucket_listing
from tests.test_oai import amend
from tests.test_web_feeds import original_wav
from tests.test_web_media import WHEELER, publish, stored_bytes

DUPONT = Person(name="Marie Dupont", role="lecturer", affiliation="Sciences Po",
                orcid="0000-0002-1825-0097")
DC = "{http://purl.org/dc/elements/1.1/}"


def covered_series(store: ObjectStore) -> Series:
    series = Series.new("Lectures", "Inaugural and public lectures.", medium="course")
    stored = store.put_bytes("series/lectures/cover.jpg", generate_cover("Lectures"),
                             "image/jpeg")
    series.cover = MediaFile(stored.key, "cover.jpg", "image/jpeg", stored.size, stored.sha256)
    return series


@dataclasses.dataclass
class Exported:
    episodes: list[Episode]
    folder: Path


@pytest.fixture
def published(catalog: Catalog, store: ObjectStore) -> list[Episode]:
    lecture = publish(catalog, "Inaugural Lecture: Trusting Enemies",
                      series=covered_series(store), speakers=[DUPONT, WHEELER],
                      add_files=original_wav)
    lecture = amend(catalog, lecture, consent={"marie-dupont": "refused"},
                    description="On trust & its <limits>.", licence="cc-by-4.0",
                    chapters=[{"start": 0, "title": "Welcome"}])
    roundtable = publish(catalog, "Roundtable: Trust and Deception")
    draft = publish(catalog, "Unfinished draft", draft=True)
    return [lecture, roundtable, draft]


@pytest.fixture
def empty_bucket(settings: Settings) -> Iterator[Settings]:
    """Another, empty bucket on the same server: where the bags go back to."""
    other = dataclasses.replace(settings, s3_bucket=f"t-{secrets.token_hex(6)}")
    store = make_store(other, other.s3_endpoint)
    store.ensure_bucket()
    yield other
    with contextlib.suppress(StorageError):
        store.drop_bucket()


def open_bucket(settings: Settings) -> Archive:
    store = make_store(settings, settings.s3_endpoint)
    return Archive(settings, store, Catalog(store, ttl=settings.catalog_ttl))


def test_round_trip_through_bags_into_an_empty_bucket(
        published: list[Episode], catalog: Catalog, settings: Settings, store: ObjectStore,
        empty_bucket: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "bags"
    result = run_cli(settings, "export", "--bagit", folder)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("Exported 3 bags to " + str(folder) + ".")
    before = catalog.refresh().data

    for episode in published:
        bag = bagit.Bag(str(folder / episode.id))
        bag.validate()  # every checksum, by the BagIt reference library
        manifest = dict(line.split(" ", 1)[::-1] for line in
                        (folder / episode.id / "manifest-sha256.txt").read_text().splitlines())
        for media in before.episodes[episode.id].files.values():
            name = "data/objects/" + media.key.removeprefix(f"episodes/{episode.id}/")
            assert manifest[name] == media.sha256  # the archive's own fixity record
        assert bag.info["Internal-Sender-Identifier"] == episode.id
        assert bag.info["External-Identifier"] == f"http://archive.test/e/{episode.id}"
    lecture = folder / published[0].id / "data"
    meta = json.loads((lecture / "meta.json").read_text())
    assert "consent" not in meta and "source_filename" not in meta
    assert b"refused" not in b"".join(p.read_bytes() for p in lecture.rglob("*") if p.is_file())
    dc = ET.parse(lecture / "dublin-core.xml").getroot()
    assert dc.findtext(f"{DC}title") == "Inaugural Lecture: Trusting Enemies"
    assert dc.findtext(f"{DC}description") == "On trust & its <limits>."
    assert (lecture / "series-cover" / "cover.jpg").is_file()

    result = run_cli(empty_bucket, "import", "--bagit", folder)
    assert result.returncode == 0, result.stderr
    assert "Imported 3 episodes" in result.stdout
    restored = open_bucket(empty_bucket)
    after = restored.catalog.refresh().data
    assert set(after.episodes) == set(before.episodes)
    for episode_id, original in before.episodes.items():
        back = after.episodes[episode_id]
        assert back.public_dict() == original.public_dict()  # ids, guids, dates, checksums
        assert back.consent == {}  # private: never in a bag, so never brought back
        for role, media in original.files.items():
            data = stored_bytes(restored.store, back.files[role])
            assert hashlib.sha256(data).hexdigest() == media.sha256
    assert after.series["lectures"].to_dict() == before.series["lectures"].to_dict()
    assert stored_bytes(restored.store, after.series["lectures"].cover) == \
        stored_bytes(store, before.series["lectures"].cover)
    assert [e.id for e in restored.catalog.view().published] == \
        [e.id for e in catalog.view().published]
    # The restored archive passes its own fixity check.
    verified = run_cli(empty_bucket, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_tampered_bag_imports_nothing(published: list[Episode], archive: Archive,
                                        empty_bucket: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "bags"
    export_bags(archive, folder)
    victim = folder / published[1].id / "data" / "meta.json"
    victim.write_bytes(victim.read_bytes().replace(b"Deception", b"Honesty!!"))
    target = open_bucket(empty_bucket)
    with pytest.raises(InvalidInput, match=f"Bag {published[1].id} fails validation"):
        import_bags(target, folder)
    assert bucket_listing(target.store) == []  # not even the good bags' files
    result = run_cli(empty_bucket, "import", "--bagit", folder)
    assert result.returncode == 1
    assert result.stderr.startswith("archive: Bag ") and result.stderr.count("\n") == 1


def test_a_bag_whose_meta_points_outside_its_episode_is_refused(
        published: list[Episode], archive: Archive, empty_bucket: Settings,
        tmp_path: Path) -> None:
    folder = tmp_path / "bags"
    export_bags(archive, folder, series="roundtables")
    bag_dir = folder / published[1].id
    meta_path = bag_dir / "data" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["files"]["audio"]["key"] = "auth/users.json"
    meta_path.write_text(json.dumps(meta))
    for name in ("manifest-sha256.txt", "tagmanifest-sha256.txt", "bag-info.txt"):
        (bag_dir / name).unlink()
    for tagfile in bag_dir.glob("*.txt"):
        if tagfile.name != "bagit.txt":
            tagfile.unlink()
    (bag_dir / "bagit.txt").unlink()
    data = bag_dir / "data"
    for item in data.iterdir():
        item.rename(bag_dir / item.name)
    data.rmdir()
    bagit.make_bag(str(bag_dir), checksums=["sha256"])  # a valid bag with a hostile meta.json
    target = open_bucket(empty_bucket)
    with pytest.raises(InvalidInput, match="not a file of this episode"):
        import_bags(target, folder)
    assert bucket_listing(target.store) == []


def test_importing_an_episode_already_here_is_refused(published: list[Episode],
                                                      archive: Archive,
                                                      tmp_path: Path) -> None:
    folder = tmp_path / "bags"
    export_bags(archive, folder)
    listing = bucket_listing(archive.store)
    with pytest.raises(Conflict, match="already in the archive"):
        import_bags(archive, folder)
    assert bucket_listing(archive.store) == listing


def test_series_and_since_select_bags(published: list[Episode], archive: Archive,
                                      tmp_path: Path) -> None:
    bags = export_bags(archive, tmp_path / "lectures", series="lectures")
    assert [b.name for b in bags] == [published[0].id]
    tomorrow = date.today() + timedelta(days=1)
    assert export_bags(archive, tmp_path / "none", since=tomorrow) == []
    assert len(export_bags(archive, tmp_path / "all", since=date.today())) == 3
    with pytest.raises(InvalidInput, match="no series"):
        export_bags(archive, tmp_path / "x", series="nope")
    result = run_cli(archive.settings, "export", "--bagit", tmp_path / "y", "--since", "soon")
    assert result.returncode == 2 and "is not a date" in result.stderr


def test_export_refuses_bytes_that_changed_in_the_bucket(published: list[Episode],
                                                         archive: Archive,
                                                         tmp_path: Path) -> None:
    episode = published[1]
    audio = episode.files["audio"]
    archive.store.put_bytes(audio.key, b"X" * audio.size, "audio/mpeg")  # bit rot, same size
    folder = tmp_path / "bags"
    with pytest.raises(StorageError, match="no longer matches its checksum"):
        export_bags(archive, folder, series="roundtables")
    # No half-written bag, not even a hidden one; bags finished before it (the export order
    # follows the catalogue's, which ids settle on ties) are whole.
    left = sorted(path.name for path in folder.iterdir())
    assert episode.id not in left and not [name for name in left if name.startswith(".")]
    for name in left:
        bagit.Bag(str(folder / name)).validate()


def test_re_export_replaces_a_bag_whole(published: list[Episode], archive: Archive,
                                        tmp_path: Path) -> None:
    folder = tmp_path / "bags"
    export_bags(archive, folder, series="roundtables")
    amend(archive.catalog, published[1], title="Roundtable: Renamed")
    export_bags(archive, folder, series="roundtables")
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        e.id for e in published[1:])
    bagit.Bag(str(folder / published[1].id)).validate()
    assert json.loads((folder / published[1].id / "data" / "meta.json").read_text())[
        "title"] == "Roundtable: Renamed"


def test_import_takes_one_source(settings: Settings, store: ObjectStore,
                                 tmp_path: Path) -> None:
    result = run_cli(settings, "import")
    assert result.returncode == 1
    assert result.stderr == ("archive: import needs a MANIFEST (CSV or YAML), --feed "
                             "URL_OR_FILE or --bagit DIR.\n")
    result = run_cli(settings, "import", "rows.csv", "--bagit", tmp_path)
    assert result.returncode == 1 and "--bagit imports bags only" in result.stderr
    result = run_cli(settings, "import", "--bagit", tmp_path / "missing")
    assert result.returncode == 1 and "is not a folder of bags" in result.stderr
    assert bucket_listing(store) == []
