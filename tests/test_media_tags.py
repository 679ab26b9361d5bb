"""Tags written by media.tags, checked with mutagen directly and with probe()."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from mutagen.apev2 import APENoHeaderError, APEv2
from mutagen.flac import FLAC
from mutagen.id3 import ID3
from mutagen.mp4 import MP4
from PIL import Image

from media.chapters import ChapterMark
from media.errors import MediaError
from media.probe import probe
from media.tags import TagData, read_tags, write_tags
from tests import media_samples as samples


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tags")


@pytest.fixture(scope="module")
def cover() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 120, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def _tags(cover: bytes) -> TagData:
    return TagData(
        title="Über Sensors",
        artists=["Ada Lovelace", "Grace Hopper"],
        album="Lab Talks",
        date="2024-05-01",
        description="A talk about sensors.",
        copyright="CC BY 4.0",
        url="https://example.org/ep/1",
        guid="urn:uuid:1234",
        language="en",
        cover_jpeg=cover,
        chapters=[
            ChapterMark(0.0, "Intro"),
            ChapterMark(0.8, "Panel", url="https://example.org/panel"),
            ChapterMark(1.5, "Q&A"),
        ],
    )


def test_mp3_tags_are_id3v24_with_everything(made: Path, cover: bytes) -> None:
    path = samples.make_recording(made / "plain.mp3", "mp3", seconds=2.0)
    write_tags(path, "mp3", _tags(cover))
    id3 = ID3(path)
    assert id3.version[:2] == (2, 4)
    assert id3["TIT2"].text == ["Über Sensors"]
    assert id3["TPE1"].text == ["Ada Lovelace", "Grace Hopper"]
    assert id3["TALB"].text == ["Lab Talks"]
    assert str(id3["TDRC"].text[0]) == "2024-05-01"
    assert id3["TCON"].text == ["Podcast"]
    assert id3.getall("COMM")[0].text == ["A talk about sensors."]
    assert id3.getall("TXXX:GUID")[0].text == ["urn:uuid:1234"]
    assert id3["WOAS"].url == "https://example.org/ep/1"
    apic = id3.getall("APIC")[0]
    assert (apic.mime, apic.type, apic.data) == ("image/jpeg", 3, cover)


def test_mp3_chapters_are_chap_frames_with_one_ordered_toc(made: Path, cover: bytes) -> None:
    path = samples.make_recording(made / "chapters.mp3", "mp3", seconds=2.0)
    write_tags(path, "mp3", _tags(cover))
    id3 = ID3(path)
    chaps = sorted(id3.getall("CHAP"), key=lambda frame: frame.start_time)
    assert [c.element_id for c in chaps] == ["chp0", "chp1", "chp2"]
    assert [c.sub_frames["TIT2"].text[0] for c in chaps] == ["Intro", "Panel", "Q&A"]
    assert [(c.start_time, c.end_time) for c in chaps[:2]] == [(0, 800), (800, 1500)]
    assert chaps[2].end_time == pytest.approx(2000, abs=100)
    (toc,) = id3.getall("CTOC")
    assert toc.child_element_ids == ["chp0", "chp1", "chp2"]
    assert toc.flags & 0x03 == 0x03  # top level, ordered
    assert [c.title for c in probe(path).chapters] == ["Intro", "Panel", "Q&A"]


def test_mp3_round_trip_through_read_tags(made: Path, cover: bytes) -> None:
    path = samples.make_recording(made / "roundtrip.mp3", "mp3", seconds=2.0)
    written = _tags(cover)
    write_tags(path, "mp3", written)
    read = read_tags(path)
    for name in ("title", "artists", "album", "date", "description", "genre", "copyright",
                 "url", "guid", "language", "cover_jpeg"):  # fmt: skip
        assert getattr(read, name) == getattr(written, name), name
    assert [(c.start, c.title) for c in read.chapters] == [(0.0, "Intro"), (0.8, "Panel"),
                                                            (1.5, "Q&A")]  # fmt: skip
    assert read.chapters[1].url == "https://example.org/panel"


def test_rewriting_replaces_old_tags_and_strips_apev2_and_id3v1(made: Path, cover: bytes) -> None:
    path = samples.make_apev2_mp3(made / "ape.mp3")
    write_tags(path, "mp3", TagData(title="Fresh"))
    with pytest.raises(APENoHeaderError):
        APEv2(path)
    assert b"TAG" not in path.read_bytes()[-128:-125]
    assert ID3(path)["TIT2"].text == ["Fresh"]
    assert probe(path).duration == pytest.approx(2.0, abs=0.1)
    write_tags(path, "mp3", TagData(title="Again"))
    assert ID3(path).getall("TIT2")[0].text == ["Again"]


@pytest.mark.parametrize(
    ("maker", "title", "artist"),
    [
        (samples.make_id3v22_mp3, "Ancient tag", "Grace Hopper"),
        (samples.make_id3v23_mp3, "Old tag", "Ada Lovelace"),
    ],
)
def test_old_id3_versions_are_read_and_retagged(made: Path, maker, title, artist) -> None:
    path = maker(made / f"{maker.__name__}.mp3")
    read = read_tags(path)
    assert (read.title, read.artists) == (title, [artist])
    write_tags(path, "mp3", TagData(title="New"))
    assert ID3(path).version[:2] == (2, 4)
    assert probe(path).kind == "mp3"


def test_m4a_atoms(made: Path, cover: bytes) -> None:
    path = samples.make_recording(made / "tagged.m4a", "m4a", seconds=2.0)
    write_tags(path, "m4a", _tags(cover))
    mp4 = MP4(path)
    assert mp4["\xa9nam"] == ["Über Sensors"]
    assert mp4["\xa9ART"] == ["Ada Lovelace", "Grace Hopper"]
    assert mp4["\xa9alb"] == ["Lab Talks"]
    assert mp4["\xa9gen"] == ["Podcast"]
    assert mp4["ldes"] == ["A talk about sensors."]
    assert bytes(mp4["----:com.apple.iTunes:GUID"][0]) == b"urn:uuid:1234"
    assert bytes(mp4["covr"][0]) == cover
    read = read_tags(path)
    assert (read.title, read.guid, read.cover_jpeg) == ("Über Sensors", "urn:uuid:1234", cover)
    assert probe(path).duration == pytest.approx(2.0, abs=0.1)


def test_read_flac_vorbis_comments(made: Path, cover: bytes) -> None:
    from mutagen.flac import Picture

    path = samples.make_recording(made / "tagged.flac", "flac", seconds=1.0)
    flac = FLAC(path)
    flac["title"], flac["artist"], flac["date"] = "Flac title", ["One", "Two"], "2020"
    picture = Picture()
    picture.type, picture.mime, picture.data = 3, "image/jpeg", cover
    flac.add_picture(picture)
    flac.save()
    read = read_tags(path)
    assert (read.title, read.artists, read.date, read.cover_jpeg) == (
        "Flac title", ["One", "Two"], "2020", cover,
    )  # fmt: skip


@pytest.mark.parametrize("fmt", ["mp3", "wav", "ogg", "opus"])
def test_untagged_files_read_as_empty(made: Path, fmt: str) -> None:
    path = samples.make_recording(made / f"bare.{fmt}", fmt, seconds=1.0)
    if fmt == "mp3":
        ID3().save(path)  # an empty but present tag
    read = read_tags(path)
    assert (read.title, read.artists, read.cover_jpeg, read.chapters) == ("", [], None, [])


@pytest.mark.parametrize("maker", [samples.write_random_bytes, samples.write_html,
                                   samples.write_empty])  # fmt: skip
def test_read_tags_never_raises(made: Path, maker) -> None:
    assert read_tags(maker(made / f"{maker.__name__}.mp3")).title == ""


def test_write_tags_refuses_what_it_cannot_tag(made: Path) -> None:
    with pytest.raises(MediaError, match="only tag MP3 and M4A"):
        write_tags(samples.make_recording(made / "x.wav", "wav", seconds=1.0), "wav", TagData())
    broken = samples.write_html(made / "broken.m4a")
    with pytest.raises(MediaError, match="could not be tagged"):
        write_tags(broken, "m4a", TagData(title="x"))


def test_writing_to_a_copy_leaves_the_original_alone(made: Path) -> None:
    original = samples.make_id3v23_mp3(made / "original.mp3")
    copy = made / "copy.mp3"
    shutil.copyfile(original, copy)
    write_tags(copy, "mp3", TagData(title="Copy"))
    assert read_tags(original).title == "Old tag"
