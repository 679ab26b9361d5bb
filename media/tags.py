"""Read and write tags (ID3v2.4 for MP3, MP4 atoms for M4A). The only importer of mutagen."""

from __future__ import annotations

import base64
import contextlib
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mutagen
import mutagen.apev2
from mutagen.flac import Picture
from mutagen.id3 import (
    APIC,
    CHAP,
    COMM,
    CTOC,
    ID3,
    TALB,
    TCON,
    TCOP,
    TDES,
    TDRC,
    TIT2,
    TLAN,
    TPE1,
    TXXX,
    WOAS,
    WXXX,
    CTOCFlags,
    ID3NoHeaderError,
)
from mutagen.mp3 import MP3
from mutagen.mp4 import MP4, MP4Cover, MP4FreeForm

from media.chapters import ChapterMark
from media.errors import MediaError

_UTF8 = 3  # ID3v2.4 text encoding
_NO_OFFSET = 0xFFFFFFFF  # CHAP byte offsets unused: players seek by time
_GUID_ATOM = "----:com.apple.iTunes:GUID"


@dataclass
class TagData:
    title: str = ""
    artists: list[str] = field(default_factory=list)
    album: str = ""
    date: str = ""  # YYYY-MM-DD or YYYY
    description: str = ""
    genre: str = "Podcast"
    copyright: str = ""
    url: str = ""
    guid: str = ""
    language: str = ""
    cover_jpeg: bytes | None = None  # when read: the embedded picture as stored
    chapters: list[ChapterMark] = field(default_factory=list)


def write_tags(path: str | Path, kind: str, tags: TagData) -> None:
    """Replace all tags of an MP3 (ID3v2.4) or M4A (MP4 atoms) with ``tags``."""
    path = Path(path)
    try:
        if kind == "mp3":
            _write_id3(path, tags)
        elif kind == "m4a":
            _write_mp4(path, tags)
        else:
            raise MediaError(f"We can only tag MP3 and M4A files, not {kind}.")
    except MediaError:
        raise
    except (mutagen.MutagenError, OSError, ValueError, struct.error) as exc:
        # ValueError/struct.error: a value a frame cannot hold (say a chapter time too large)
        raise MediaError(f"The file could not be tagged ({type(exc).__name__}).") from None


# --- MP3 ------------------------------------------------------------------------------------


def _write_id3(path: Path, tags: TagData) -> None:
    mutagen.apev2.delete(path)  # old players prefer stale APEv2/ID3v1 junk over our ID3v2
    with contextlib.suppress(ID3NoHeaderError):
        ID3(path).delete(path, delete_v1=True, delete_v2=True)
    id3 = ID3()
    for frame in _id3_frames(tags):
        id3.add(frame)
    for frame in _chapter_frames(tags.chapters, _mp3_duration(path)):
        id3.add(frame)
    id3.save(path, v2_version=4, v1=0)


def _id3_frames(tags: TagData) -> list[Any]:
    frames: list[Any] = [TCON(encoding=_UTF8, text=[tags.genre])] if tags.genre else []
    texts = [
        (TIT2, tags.title), (TALB, tags.album), (TDRC, tags.date),
        (TCOP, tags.copyright), (TLAN, tags.language), (TDES, tags.description),
    ]  # fmt: skip
    frames += [cls(encoding=_UTF8, text=[value]) for cls, value in texts if value]
    if tags.artists:
        frames.append(TPE1(encoding=_UTF8, text=list(tags.artists)))
    if tags.description:
        frames.append(COMM(encoding=_UTF8, lang="eng", desc="", text=[tags.description]))
    if tags.url:
        frames += [WOAS(url=tags.url), WXXX(encoding=_UTF8, desc="", url=tags.url)]
    if tags.guid:
        frames.append(TXXX(encoding=_UTF8, desc="GUID", text=[tags.guid]))
    if tags.cover_jpeg:
        frames.append(
            APIC(encoding=_UTF8, mime="image/jpeg", type=3, desc="Cover", data=tags.cover_jpeg)
        )
    return frames


def _mp3_duration(path: Path) -> float:
    try:
        return MP3(path).info.length
    except mutagen.MutagenError:
        return 0.0


def _chapter_frames(chapters: list[ChapterMark], duration: float) -> list[Any]:
    """CHAP frames chp0, chp1 … and one ordered top-level CTOC listing them."""
    if not chapters:
        return []
    frames: list[Any] = []
    for index, mark in enumerate(chapters):
        following = chapters[index + 1].start if index + 1 < len(chapters) else duration
        end = mark.end if mark.end is not None else max(following, mark.start)
        sub_frames: list[Any] = [TIT2(encoding=_UTF8, text=[mark.title])]
        if mark.url:
            sub_frames.append(WXXX(encoding=_UTF8, desc="", url=mark.url))
        frames.append(
            CHAP(
                element_id=f"chp{index}",
                start_time=round(mark.start * 1000),
                end_time=round(end * 1000),
                start_offset=_NO_OFFSET,
                end_offset=_NO_OFFSET,
                sub_frames=sub_frames,
            )
        )
    frames.append(
        CTOC(
            element_id="toc",
            flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
            child_element_ids=[f"chp{i}" for i in range(len(chapters))],
            sub_frames=[TIT2(encoding=_UTF8, text=["Chapters"])],
        )
    )
    return frames


# --- M4A ------------------------------------------------------------------------------------


def _write_mp4(path: Path, tags: TagData) -> None:
    mp4 = MP4(path)
    mp4.delete()
    mp4 = MP4(path)
    atoms: dict[str, Any] = {
        "\xa9nam": tags.title, "\xa9alb": tags.album, "\xa9day": tags.date,
        "\xa9gen": tags.genre, "cprt": tags.copyright,
        "desc": tags.description[:255], "ldes": tags.description,
    }  # fmt: skip
    for key, value in atoms.items():
        if value:
            mp4[key] = [value]
    if tags.artists:
        mp4["\xa9ART"] = list(tags.artists)
    if tags.guid:
        mp4[_GUID_ATOM] = [MP4FreeForm(tags.guid.encode("utf-8"))]
    if tags.cover_jpeg:
        mp4["covr"] = [MP4Cover(tags.cover_jpeg, imageformat=MP4Cover.FORMAT_JPEG)]
    mp4.save()


# --- reading --------------------------------------------------------------------------------


def read_tags(path: str | Path) -> TagData:
    """Whatever tags the file has, for prefilling the form; empty TagData when none or broken."""
    try:
        audio = mutagen.File(Path(path))
    except (mutagen.MutagenError, OSError, ValueError):
        audio = None
    if audio is None or audio.tags is None:
        return TagData(genre="")
    try:
        if isinstance(audio.tags, ID3):
            return _read_id3(audio.tags)
        if isinstance(audio, MP4):
            return _read_mp4(audio.tags)
        return _read_vorbis(audio)
    except (KeyError, ValueError, TypeError, AttributeError, IndexError):
        return TagData(genre="")


def _text(tags: Any, key: str) -> str:
    frame = tags.get(key)
    return str(frame.text[0]) if frame is not None and frame.text else ""


def _read_id3(id3: ID3) -> TagData:
    artists = [str(text) for frame in id3.getall("TPE1") for text in frame.text]
    comments = id3.getall("COMM")
    description = _text(id3, "TDES") or (str(comments[0].text[0]) if comments else "")
    pictures = id3.getall("APIC")
    urls = id3.getall("WOAS") or id3.getall("WXXX")
    guids = [frame for frame in id3.getall("TXXX") if frame.desc.upper() == "GUID"]
    return TagData(
        title=_text(id3, "TIT2"),
        artists=artists,
        album=_text(id3, "TALB"),
        date=_text(id3, "TDRC"),
        description=description,
        genre=_text(id3, "TCON"),
        copyright=_text(id3, "TCOP"),
        url=str(urls[0].url) if urls else "",
        guid=str(guids[0].text[0]) if guids else "",
        language=_text(id3, "TLAN"),
        cover_jpeg=bytes(pictures[0].data) if pictures else None,
        chapters=_read_chap(id3),
    )


def _read_chap(id3: ID3) -> list[ChapterMark]:
    marks = []
    for frame in id3.getall("CHAP"):
        title = frame.sub_frames.get("TIT2")
        links = frame.sub_frames.getall("WXXX")
        marks.append(
            ChapterMark(
                start=frame.start_time / 1000,
                title=str(title.text[0]) if title and title.text else "",
                end=frame.end_time / 1000,
                url=str(links[0].url) if links else "",
            )
        )
    return sorted(marks, key=lambda mark: mark.start)


def _first(tags: Any, key: str) -> str:
    values = tags.get(key) or []
    return str(values[0]) if values else ""


def _read_mp4(tags: Any) -> TagData:
    covers = tags.get("covr") or []
    guid = tags.get(_GUID_ATOM) or []
    return TagData(
        title=_first(tags, "\xa9nam"),
        artists=[str(a) for a in tags.get("\xa9ART") or []],
        album=_first(tags, "\xa9alb"),
        date=_first(tags, "\xa9day"),
        description=_first(tags, "ldes") or _first(tags, "desc"),
        genre=_first(tags, "\xa9gen"),
        copyright=_first(tags, "cprt"),
        guid=bytes(guid[0]).decode("utf-8", "replace") if guid else "",
        cover_jpeg=bytes(covers[0]) if covers else None,
    )


def _read_vorbis(audio: Any) -> TagData:
    """FLAC and Ogg Vorbis/Opus comments (keys are case-insensitive)."""
    tags = audio.tags
    return TagData(
        title=_first(tags, "title"),
        artists=[str(a) for a in tags.get("artist") or []],
        album=_first(tags, "album"),
        date=_first(tags, "date"),
        description=_first(tags, "description") or _first(tags, "comment"),
        genre=_first(tags, "genre"),
        copyright=_first(tags, "copyright"),
        url=_first(tags, "contact"),
        language=_first(tags, "language"),
        cover_jpeg=_vorbis_picture(audio),
    )


def _vorbis_picture(audio: Any) -> bytes | None:
    pictures = getattr(audio, "pictures", None)
    if pictures:
        return bytes(pictures[0].data)
    encoded = audio.tags.get("metadata_block_picture") or []
    if encoded:
        return bytes(Picture(base64.b64decode(encoded[0])).data)
    return None
