"""Transcription with Whisper base (faster-whisper, int8, CPU): speed, memory and words.

Speech is espeak-ng's reading of a paragraph, repeated to length; the model is the test model
assembled from its pinned packages (tests/whisper_model.py). Each recording is transcribed by
`media.transcribe` in a process of its own, measured by GNU time; the process reports the
seconds spent transcribing, apart from loading the model. Baselines: the recording's duration
(so the ratio is the real-time factor), the words spoken, and the peak RSS of one window's
worth of speech (a recording of many windows must need no more).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

from bench.tools import ROOT, Result, require, run_measured
from media.transcribe import DEFAULT_WINDOW_S
from tests.whisper_model import whisper_base

PARAGRAPH = (
    "Good morning, and welcome to the archive. Today we talk about rivers, mountains and the "
    "sea. The weather was cold, but the conversation was warm. Our guest has studied the "
    "history of maps for many years. She told us how sailors drew the coast from memory, "
    "and how a single error could travel from one chart to the next for a century. We will "
    "be back next week with another story."
)

CHILD = """
import json, sys, time
from media.transcribe import load_model
path, model, window, report = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
started = time.perf_counter()
recogniser = load_model(model)
loaded = time.perf_counter()
transcript = recogniser.transcribe(path, window_s=window)
done = time.perf_counter()
text = " ".join(cue.text for cue in transcript.cues)
with open(report, "w") as out:
    json.dump({"load_s": loaded - started, "transcribe_s": done - loaded, "text": text,
               "language": transcript.language}, out)
"""


def make_speech(folder: Path, minutes: float) -> tuple[Path, float, list[str]]:
    """A WAV of the paragraph read again and again, at most ``minutes`` long (at least once);
    its duration and the words spoken."""
    espeak = require("espeak-ng", "espeak-ng")
    once = folder / "once.wav"
    subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(once), PARAGRAPH], check=True)
    with wave.open(str(once), "rb") as clip:
        params, frames = clip.getparams(), clip.readframes(clip.getnframes())
    pause = b"\0" * (params.sampwidth * params.framerate // 2)  # half a second between readings
    repeats = max(1, int(minutes * 60 * params.framerate / (params.nframes + len(pause) // 2)))
    path = folder / f"speech-{minutes:g}min.wav"
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        for _ in range(repeats):
            out.writeframes(frames + pause)
        duration = out.getnframes() / params.framerate
    return path, duration, _words(PARAGRAPH) * repeats


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def word_errors(spoken: list[str], heard: list[str]) -> int:
    """Words substituted, dropped or added (edit distance over words, as in word error rate)."""
    row = list(range(len(heard) + 1))
    for i, word in enumerate(spoken, 1):
        previous, row[0] = row[0], i
        for j, other in enumerate(heard, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1,
                                           previous + (word != other))
    return row[-1]


def transcribe_measured(path: Path, model: Path, window_s: float) -> tuple[dict, float]:
    """The child's report and its peak RSS (MB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as report:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
        _, rss = run_measured([sys.executable, "-c", CHILD, str(path), str(model),
                               str(window_s), report.name], env)
        return json.load(report), rss


def run(window_s: float = DEFAULT_WINDOW_S, long_minutes: float = 10.0) -> list[Result]:
    """One window's worth of speech, then a recording of several windows."""
    model = whisper_base()
    with tempfile.TemporaryDirectory(prefix="bench-transcribe-") as folder:
        short, short_s, spoken = make_speech(Path(folder), window_s / 60)
        report, short_rss = transcribe_measured(short, model, window_s)
        heard = _words(report["text"])
        right = len(spoken) - word_errors(spoken, heard)
        long, long_s, _ = make_speech(Path(folder), long_minutes)
        long_report, long_rss = transcribe_measured(long, model, window_s)
    label = f"{short_s:.0f} s of speech (one window)"
    return [
        Result("transcribe", f"{label}: transcribe time vs duration (real-time factor)",
               report["transcribe_s"], short_s, "s", higher_is_better=False, target=0.35,
               extra={"load_s": report["load_s"]}),
        Result("transcribe", f"{label}: words right vs spoken (1 - word error rate)", right,
               len(spoken), "words", target=0.9, extra={"heard": len(heard)}),
        Result("transcribe", f"{label}: peak RSS (MB) vs 700 MB", short_rss, 700, "MB",
               higher_is_better=False, target=1.0),
        Result("transcribe", f"{long_minutes:g}-min speech in {window_s:g} s windows: peak RSS "
               f"vs {label}", long_rss, short_rss, "MB", higher_is_better=False, target=1.1,
               extra={"transcribe_s": long_report["transcribe_s"], "duration_s": long_s}),
    ]
