"""Demo content: the working group's real events, with audio generated here (nothing downloaded).

The audio is a calm synthesised tone sequence, not speech; each recording comes with a transcript
and chapters so the player, search and feeds can be tried on a laptop without any files.
"""

from __future__ import annotations

import array
import json
import math
import tempfile
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

from archive.errors import Duplicate
from archive.ingest import Metadata, Progress, ingest
from archive.models import Episode
from archive.runtime import Archive
from media.artwork import generate_cover

RATE = 22050
SECONDS = 36


@dataclass(frozen=True)
class DemoEvent:
    title: str
    series: str
    date: str
    speakers: tuple[str, ...]
    description: str
    tags: tuple[str, ...]
    lines: tuple[str, ...]  # the transcript, one cue each
    location: str = ""


WHEELER = "Nicholas J Wheeler;{role};University of Birmingham"

EVENTS = (
    DemoEvent(
        "Roundtable: The Social Construction of Trust", "Roundtables", "2017-05-11",
        (WHEELER.format(role="chair"), "Naomi Head;panellist;University of Glasgow",
         "Vincent Charles Keating;panellist;University of Southern Denmark"),
        "A roundtable on how trust between states is built, sustained and lost, and on what "
        "constructivist accounts of trust add to rationalist ones.",
        ("trust", "constructivism", "international relations"),
        ("Welcome to this roundtable on the social construction of trust.",
         "Our first question is whether trust between states is a calculation or a relationship.",
         "Constructivists argue that identities shape which risks actors are willing to take.",
         "Empathy matters here: the capacity to understand the other side's fears.",
         "We then turn to the question of how trust is lost, and whether it can be rebuilt.",
         "Thank you all for joining us; questions from the floor follow."),
    ),
    DemoEvent(
        "Trust and Deception Workshop", "Workshops", "2015-03-26",
        ("Marcus Holmes;speaker;College of William & Mary", WHEELER.format(role="discussant")),
        "A one-day workshop on the relationship between trust and deception in diplomacy, "
        "from signalling theory to the neuroscience of face-to-face encounters.",
        ("deception", "diplomacy", "signalling"),
        ("This workshop asks how leaders detect deception in one another.",
         "Costly signals are one answer; personal encounters are another.",
         "The neuroscience of intention reading suggests faces carry information.",
         "But deception can exploit exactly the channels that build trust.",
         "Our discussant will now respond to the papers.",
         "We close with a discussion of future research."),
    ),
    DemoEvent(
        "Geneva Summit: 30th Anniversary Conference", "Conferences", "2015-11-19",
        (WHEELER.format(role="convenor"), "Jan Ruzicka;speaker;Aberystwyth University"),
        "Thirty years after Reagan and Gorbachev met in Geneva, this conference revisits the "
        "summit and its place in the end of the Cold War.",
        ("cold war", "summitry", "nuclear arms control"),
        ("In November 1985 Reagan and Gorbachev met for the first time in Geneva.",
         "The fireside talks became a turning point in their relationship.",
         "Archival evidence shows how each leader revised his view of the other.",
         "The joint statement declared that a nuclear war cannot be won.",
         "We ask what today's leaders can learn from Geneva.",
         "Thank you for taking part in this anniversary conference."),
        location="Geneva",
    ),
    DemoEvent(
        "Face-to-face Diplomacy and Interpersonal Trust in IR", "Workshops", "2015-06-04",
        ("Marcus Holmes;speaker;College of William & Mary",
         "Naomi Head;chair;University of Glasgow"),
        "Why do leaders still travel to meet in person? A workshop on face-to-face diplomacy "
        "and interpersonal trust.",
        ("face-to-face diplomacy", "trust", "leaders"),
        ("Leaders spend scarce time travelling to meet one another in person.",
         "Face-to-face meetings allow them to read intentions directly.",
         "Interpersonal trust may not translate into trust between states.",
         "Cases include Camp David and the Reykjavik summit.",
         "The chair opens the floor to questions.",
         "Thank you for joining us."),
    ),
    DemoEvent(
        "Trusting Enemies: Inaugural Lecture", "Lectures", "2018-02-21",
        (WHEELER.format(role="lecturer"), "Ken Booth;respondent;Aberystwyth University"),
        "An inaugural lecture on how trust can develop between adversaries, and the "
        "interpersonal bonds that made the end of the Cold War possible.",
        ("trusting enemies", "security dilemma", "cold war"),
        ("Can enemies come to trust one another?",
         "The security dilemma makes every defensive step look like a threat.",
         "Security dilemma sensibility is the capacity to see one's own part in it.",
         "Leaders who bond can move their states beyond mistrust.",
         "The respondent asks how such bonds outlive those who forged them.",
         "Thank you for coming to this inaugural lecture."),
    ),
    DemoEvent(
        "Trust, Diplomacy and Conflict Transformation", "Training programmes", "2018-09-12",
        ("Naomi Head;lecturer;University of Glasgow", WHEELER.format(role="host")),
        "Sessions from the 2017–2019 training programme for practitioners on trust-building "
        "in diplomacy and conflict transformation.",
        ("training", "conflict transformation", "mediation"),
        ("This training session introduces trust-building in mediation.",
         "Practitioners share how they establish rapport with parties in conflict.",
         "Empathy is not sympathy: it is understanding without endorsement.",
         "Exercises follow in small groups.",
         "We reconvene to compare what each group found.",
         "Thank you for your participation."),
    ),
    DemoEvent(
        "Trust, Cooperation and the Global Nuclear Future", "Conferences", "2012-10-05",
        ("Jan Ruzicka;speaker;Aberystwyth University", WHEELER.format(role="chair")),
        "A conference on whether trust can underpin cooperation on nuclear disarmament, "
        "non-proliferation and the peaceful use of nuclear energy.",
        ("nuclear disarmament", "non-proliferation", "cooperation"),
        ("The global nuclear future depends on cooperation among rivals.",
         "Verification is often presented as an alternative to trust.",
         "But verification regimes themselves rest on a measure of trust.",
         "The non-proliferation treaty is a bargain that requires trust to endure.",
         "The chair invites the panel to reflect on the next review conference.",
         "Thank you, and goodbye."),
    ),
)


def write_tone_recording(path: Path, seed: int, seconds: int = SECONDS) -> None:
    """A gentle, slowly changing two-note tone: pleasant to play, realistic to encode."""
    base = 196.0 * (1.0 + 0.06 * seed)
    samples = array.array("h")
    for n in range(RATE * seconds):
        t = n / RATE
        step = int(t // 6)
        pitch = base * (1.0, 1.25, 1.5, 1.125, 1.333, 1.0)[step % 6]
        envelope = 0.55 + 0.45 * math.sin(math.pi * (t % 6) / 6)
        value = 0.18 * envelope * (math.sin(2 * math.pi * pitch * t)
                                   + 0.35 * math.sin(2 * math.pi * 2 * pitch * t))
        samples.append(int(value * 32767))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(samples.tobytes())


def write_transcript(path: Path, lines: tuple[str, ...], seconds: int = SECONDS) -> None:
    step = seconds / len(lines)
    cues = ["WEBVTT", ""]
    for n, line in enumerate(lines):
        cues += [f"{_stamp(n * step)} --> {_stamp((n + 1) * step)}", line, ""]
    path.write_text("\n".join(cues), encoding="utf-8")


def write_chapters(path: Path, seconds: int = SECONDS) -> None:
    titles = ("Welcome", "Opening remarks", "Discussion", "Questions from the floor")
    step = seconds / len(titles)
    chapters = [{"startTime": round(n * step, 3), "title": t} for n, t in enumerate(titles)]
    path.write_text(json.dumps({"version": "1.2.0", "chapters": chapters}), encoding="utf-8")


def _stamp(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"00:{int(minutes):02d}:{rest:06.3f}"


def load_demo(archive: Archive, progress: Progress | None = None,
              stop: threading.Event | None = None, events: tuple[DemoEvent, ...] = EVENTS
              ) -> list[Episode]:
    """Ingest every demo event; ones already present are skipped. `stop` ends it early."""
    loaded: list[Episode] = []
    with tempfile.TemporaryDirectory(prefix="archive-demo-") as folder:
        work = Path(folder)
        for seed, event in enumerate(events):
            if stop is not None and stop.is_set():
                break
            audio, transcript, chapters, cover = (work / f"{seed}.wav", work / f"{seed}.vtt",
                                                  work / f"{seed}.json", work / f"{seed}.jpg")
            write_tone_recording(audio, seed)
            # Every demo recording has its own cover, as most podcast episodes do.
            cover.write_bytes(generate_cover(event.title, event.series))
            write_transcript(transcript, event.lines)
            write_chapters(chapters)
            meta = Metadata(
                title=event.title, series=event.series, date=event.date,
                speakers=list(event.speakers), description=event.description,
                tags=list(event.tags), event=event.title, location=event.location,
                transcript=transcript, chapters=chapters, artwork=cover, licence="cc-by-nc-4.0",
                source_filename=f"{event.title}.wav",
            )
            try:
                loaded.append(ingest(archive, audio, meta, progress=progress))
            except Duplicate:
                continue
    return loaded
