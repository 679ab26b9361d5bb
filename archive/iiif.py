"""IIIF Presentation 3 manifests for audio and video (https://iiif.io/api/presentation/3.0/).

A IIIF viewer (Universal Viewer, Aviary, Ramp, Clover) plays a recording from its manifest: one
Canvas as long as the recording, the delivery file painted on it, chapters as `structures`
Ranges over parts of the canvas (media fragments `#t=start,end`), the WebVTT transcript as a
`supplementing` annotation, speakers and licence as metadata and `rights`, the artwork as
thumbnail. Built from a `PublicRecord`, so nothing private reaches it.
"""

from __future__ import annotations

from typing import Any

from archive.models import Chapter, Episode
from archive.records import PublicRecord

CONTEXT = "http://iiif.io/api/presentation/3/context.json"
# `rights` must be a Creative Commons or rightsstatements.org URI (or a registered extension).
RIGHTS_HOSTS = ("http://creativecommons.org/", "https://creativecommons.org/",
                "http://rightsstatements.org/vocab/")
DEFAULT_VIDEO_SIZE = (1280, 720)


def _label(text: str, language: str = "none") -> dict[str, list[str]]:
    return {language: [text]}


def _entry(label: str, value: str) -> dict[str, Any]:
    return {"label": _label(label, "en"), "value": _label(value)}


def speaker_line(agent: Any) -> str:
    parts = [agent.name, f"({agent.role}"]
    parts[-1] += f", {agent.affiliation})" if agent.affiliation else ")"
    if agent.orcid:
        parts.append(agent.orcid_url)
    return " ".join(parts)


def chapter_ranges(episode: Episode, canvas_id: str, duration: float) -> list[dict[str, Any]]:
    """One Range per chapter, each over its stretch of the canvas; a chapter with no end runs
    to the next one's start (the last to the end of the recording)."""
    chapters: list[Chapter] = episode.chapters
    ranges = []
    for index, chapter in enumerate(chapters, start=1):
        following = chapters[index].start if index < len(chapters) else duration
        end = min(chapter.end if chapter.end is not None else following, duration)
        start = min(chapter.start, end)
        ranges.append({
            "id": f"{canvas_id}/range/{index}",
            "type": "Range",
            "label": _label(chapter.title),
            "items": [{"id": f"{canvas_id}#t={start:g},{end:g}", "type": "Canvas"}],
        })
    return ranges


def manifest(record: PublicRecord, episode: Episode, manifest_id: str,
             oai_url: str = "") -> dict[str, Any]:
    """The manifest of a published episode (with a delivery file)."""
    assert record.delivery is not None
    delivery = record.delivery
    duration = float(delivery.duration or episode.duration or 0.0) or 0.001
    canvas_id = manifest_id.removesuffix("/manifest.json") + "/canvas/1"
    body: dict[str, Any] = {"id": delivery.url, "type": "Video" if record.video else "Sound",
                            "format": delivery.content_type, "duration": duration}
    canvas: dict[str, Any] = {"id": canvas_id, "type": "Canvas", "duration": duration,
                              "label": _label(record.title)}
    if record.video:
        width, height = (delivery.width, delivery.height) if delivery.width and \
            delivery.height else DEFAULT_VIDEO_SIZE
        canvas.update(width=width, height=height)
        body.update(width=width, height=height)
    canvas["items"] = [{
        "id": f"{canvas_id}/page/1", "type": "AnnotationPage",
        "items": [{"id": f"{canvas_id}/page/1/painting", "type": "Annotation",
                   "motivation": "painting", "body": body, "target": canvas_id}],
    }]
    if record.transcript_url:
        canvas["annotations"] = [{
            "id": f"{canvas_id}/annotations/1", "type": "AnnotationPage",
            "items": [{"id": f"{canvas_id}/annotations/1/transcript", "type": "Annotation",
                       "motivation": "supplementing", "target": canvas_id,
                       "body": {"id": record.transcript_url, "type": "Text",
                                "format": "text/vtt",
                                "language": episode.transcript_language or record.language,
                                "label": _label("Transcript", "en")}}],
        }]
    document: dict[str, Any] = {
        "@context": CONTEXT,
        "id": manifest_id,
        "type": "Manifest",
        "label": _label(record.title, record.language),
        "metadata": _metadata(record),
        "requiredStatement": _entry("Attribution", record.publisher),
        "homepage": [{"id": record.page_url, "type": "Text", "format": "text/html",
                      "label": _label(record.title, record.language)}],
        "items": [canvas],
    }
    if record.description:
        document["summary"] = _label(record.description, record.language)
    if record.rights_url.startswith(RIGHTS_HOSTS):
        document["rights"] = record.rights_url
    if record.cover_url:
        document["thumbnail"] = [{"id": record.cover_url, "type": "Image",
                                  "format": "image/jpeg"}]
    if oai_url:
        document["seeAlso"] = [{"id": oai_url, "type": "Dataset", "format": "text/xml",
                                "profile": "http://www.loc.gov/mods/v3",
                                "label": _label("MODS record (OAI-PMH)", "en")}]
    ranges = chapter_ranges(episode, canvas_id, duration)
    if ranges:
        document["structures"] = [{"id": f"{canvas_id}/range/chapters", "type": "Range",
                                   "label": _label("Chapters", "en"), "items": ranges}]
    return document


def _metadata(record: PublicRecord) -> list[dict[str, Any]]:
    entries = [_entry("Speaker", speaker_line(agent)) for agent in record.agents]
    entries.append(_entry("Date", record.date))
    entries.append(_entry("Series", record.series_title))
    if record.event:
        entries.append(_entry("Event", record.event))
    if record.location:
        entries.append(_entry("Location", record.location))
    if record.tags:
        entries.append({"label": _label("Subjects", "en"), "value": {"none": list(record.tags)}})
    if record.rights_label or record.rights_url:
        entries.append(_entry("Licence", " ".join(filter(None, (record.rights_label,
                                                                 record.rights_url)))))
    entries.append(_entry("Identifier", record.permalink))
    return entries
