"""`archive ingest`, `archive import`, `archive demo`, `verify`, `reindex` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import yaml

from archive.catalog import Catalog
from archive.config import Settings
from archive.storage import ObjectStore
from tests import media_samples
from tests.cli import run_cli
from tests.conftest import bucket_listing


def test_ingest_prints_the_id_and_url(settings: Settings, store: ObjectStore,
                                      tmp_path: Path) -> None:
    source = media_samples.make_recording(tmp_path / "talk.wav", "wav", seconds=2.0)
    result = run_cli(settings, "ingest", source, "--title", "Trusting Enemies",
                     "--series", "Lectures", "--date", "2018-02-21",
                     "--speaker", "Nicholas J Wheeler;lecturer;University of Birmingham",
                     "--tag", "trust", "--licence", "cc-by-4.0")
    assert result.returncode == 0, result.stderr
    episode_id, url = result.stdout.strip().splitlines()[-2:]
    assert url == "http://archive.test/episodes/trusting-enemies"
    episode = Catalog(store).view().episode(episode_id)
    assert episode.licence == "cc-by-4.0"
    assert episode.speakers[0].affiliation == "University of Birmingham"


def test_bad_input_is_one_readable_line(settings: Settings, store: ObjectStore,
                                        tmp_path: Path) -> None:
    bad = media_samples.write_html(tmp_path / "talk.mp3")
    before = bucket_listing(store)
    result = run_cli(settings, "ingest", bad, "--title", "T", "--series", "S")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("archive: ") and "Traceback" not in result.stderr
    assert "HTML" in lines[-1]
    assert bucket_listing(store) == before
    dated = run_cli(settings, "ingest", bad, "--title", "T", "--series", "S", "--date",
                    "2017-13-45")
    assert dated.stderr.strip().splitlines()[-1] == \
        "archive: date '2017-13-45' is not a real date (use YYYY-MM-DD)."


def test_import_goes_on_past_a_bad_row(settings: Settings, store: ObjectStore,
                                       tmp_path: Path) -> None:
    rows = []
    for n in range(4):
        media_samples.make_recording(tmp_path / f"rec{n}.wav", "wav", seconds=1.0,
                                     frequency=300 + 50 * n)
        rows.append({"file": f"rec{n}.wav", "title": f"Workshop session {n}",
                     "series": "Workshops", "date": f"2015-03-2{n}",
                     "speakers": "Marcus Holmes;speaker;College of William & Mary"})
    media_samples.write_random_bytes(tmp_path / "broken.mp3")
    rows.insert(2, {"file": "broken.mp3", "title": "Broken", "series": "Workshops"})
    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(yaml.safe_dump(rows))
    result = run_cli(settings, "import", manifest)
    assert result.returncode == 1
    assert "4 imported, 1 failed." in result.stdout
    assert "   3  FAILED" in result.stdout
    assert len(Catalog(store).view().published) == 4


def test_import_reads_csv(settings: Settings, store: ObjectStore, tmp_path: Path) -> None:
    media_samples.make_recording(tmp_path / "a.wav", "wav", seconds=1.0)
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,title,series,speakers,tags\n"
                        'a.wav,Panel,Roundtables,"A One;chair;X|B Two;panellist;Y","trust,ir"\n')
    result = run_cli(settings, "import", manifest)
    assert result.returncode == 0, result.stdout + result.stderr
    episode = Catalog(store).view().published[0]
    assert [p.name for p in episode.speakers] == ["A One", "B Two"]
    assert episode.tags == ["trust", "ir"]


def test_demo_then_verify_and_reindex(settings: Settings, store: ObjectStore) -> None:
    result = run_cli(settings, "demo", "--if-empty")
    assert result.returncode == 0, result.stderr
    assert "Loaded 7 demo recordings." in result.stdout
    view = Catalog(store).view()
    assert {s.title for s in view.all_series} >= {"Roundtables", "Workshops", "Lectures",
                                                  "Conferences", "Training programmes"}
    assert all(e.files.get("transcript") and e.files.get("chapters") for e in view.published)
    again = run_cli(settings, "demo", "--if-empty")
    assert "already has recordings" in again.stdout
    verified = run_cli(settings, "verify")
    assert verified.returncode == 0, verified.stdout
    assert "0 damaged, 0 orphaned" in verified.stdout
    store.delete("catalog.json")
    rebuilt = run_cli(settings, "reindex")
    assert "Rebuilt the catalogue: 7 episodes in 5 series." in rebuilt.stdout
    assert [e.id for e in Catalog(store).view().published] == [e.id for e in view.published]
