"""Speech to text with the real Whisper base model on speech espeak-ng makes in the session.

The model is assembled from its pinned PyPI packages (tests/whisper_model.py) and loaded once.
Nothing here reaches the network: model names are looked up with HF_HUB_OFFLINE set.
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import subprocess
import wave
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media.convert import encode_mp3
from media.errors import InvalidRecording
from media.probe import probe
from media.transcribe import (
    MAX_CUE_S,
    MAX_LINE,
    Recogniser,
    TranscriptionError,
    cues_from_words,
    initial_prompt,
    load_model,
    pcm_windows,
    transcribe,
)
from media.transcripts import Transcript, Word, parse_transcript, to_vtt
from tests.whisper_model import whisper_base

pytestmark = pytest.mark.slow

SPEECH = ("Good morning, and welcome to the archive. Today we talk about rivers, mountains and "
          "the sea. The weather was cold, but the conversation was warm. We will be back next "
          "week with another story.")  # about 13 s, which Whisper base hears word for word


def _speak(folder: Path, name: str, text: str, voice: str = "en-us") -> Path:
    espeak = shutil.which("espeak-ng")
    if not espeak:
        pytest.fail("espeak-ng is missing: apt-get install espeak-ng (.ci/run does).")
    path = folder / f"{name}.wav"
    subprocess.run([espeak, "-v", voice, "-s", "150", "-w", str(path), text], check=True,
                   timeout=60)
    return path


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def _said(transcript: Transcript) -> list[str]:
    return _words(" ".join(cue.text for cue in transcript.cues))


@pytest.fixture(scope="session")
def model_dir() -> Path:
    return whisper_base()


@pytest.fixture(scope="session")
def model(model_dir: Path) -> Recogniser:
    return load_model(model_dir)


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def speech_mp3(clips: Path) -> Path:
    """Speech as a 44.1 kHz stereo MP3, so decoding and resampling are part of the test."""
    mp3 = clips / "speech.mp3"
    encode_mp3(_speak(clips, "speech", SPEECH), mp3)
    return mp3


@pytest.fixture(scope="session")
def speech(model: Recogniser, speech_mp3: Path) -> Transcript:
    return model.transcribe(speech_mp3)


def test_the_words_come_back_with_timings_inside_the_recording(speech: Transcript,
                                                               speech_mp3: Path) -> None:
    said = _said(speech)
    assert said == _words(SPEECH)
    assert speech.format == "asr" and speech.language == "en"  # detected
    duration = probe(speech_mp3).duration
    times = [t for cue in speech.cues for t in (cue.start, cue.end)]
    assert times == sorted(times) and times[0] >= 0 and times[-1] <= duration
    words = [w for cue in speech.cues for w in cue.words]
    assert [w.text.strip() for w in words] == " ".join(c.text for c in speech.cues).split()
    stamps = [t for w in words for t in (w.start, w.end)]
    assert stamps == sorted(stamps) and stamps[-1] <= duration
    assert all(cue.words[0].start == cue.start and cue.words[-1].end == cue.end
               for cue in speech.cues)
    assert len(speech.cues) >= 3  # one per sentence at least


def test_cues_are_short_and_survive_webvtt(speech: Transcript) -> None:
    for cue in speech.cues:
        assert cue.end - cue.start <= MAX_CUE_S
        lines = cue.text.split("\n")
        assert len(lines) <= 2 and all(len(line) <= MAX_LINE for line in lines)
    again = parse_transcript(to_vtt(speech).encode())
    assert [c.text for c in again.cues] == [c.text for c in speech.cues]


def test_windows_give_the_same_words_across_their_boundaries(
    model: Recogniser, speech: Transcript, speech_mp3: Path
) -> None:
    windows = list(pcm_windows(speech_mp3, window_s=3.0))
    assert len(windows) >= 4
    offsets = [offset for offset, _ in windows]
    lengths = [len(samples) / 16000 for _, samples in windows]
    assert offsets[0] == 0 and all(n <= 3.0 for n in lengths)
    assert offsets[1:] == pytest.approx([a + n for a, n in zip(offsets[:-1], lengths[:-1],
                                                                 strict=True)])
    assert sum(lengths) == pytest.approx(probe(speech_mp3).duration, abs=0.1)

    assert len(list(pcm_windows(speech_mp3, window_s=8.0))) == 2
    reported: list[float] = []  # 8 s: the cut falls between two sentences, as it would in 300 s
    windowed = model.transcribe(speech_mp3, window_s=8.0, progress=reported.append)
    assert _said(windowed) == _said(speech)
    whole = [w.start for c in speech.cues for w in c.words]
    pieces = [w.start for c in windowed.cues for w in c.words]
    assert pieces == pytest.approx(whole, abs=0.5)  # offsets applied
    assert reported == sorted(reported) and reported[-1] == 1.0 and len(reported) >= 3


def test_the_prompt_spells_the_names_it_gives(model: Recogniser, clips: Path) -> None:
    clip = _speak(clips, "szilard", "Today we talk with Leo Szilard about his work.")
    prompt = initial_prompt("Physics in exile", ["Leo Szilard"], ["physics", "history"])
    transcript = transcribe(clip, model, language="en", prompt=prompt)  # a loaded model
    assert "Leo Szilard" in " ".join(" ".join(c.text.split()) for c in transcript.cues)


def test_the_language_is_detected_or_taken_as_given(model: Recogniser, clips: Path) -> None:
    german = _speak(clips, "german", "Guten Morgen. Wie geht es Ihnen heute?", voice="de")
    assert model.transcribe(german).language == "de"
    assert model.transcribe(german, language="de-AT").language == "de"


def test_silence_gives_no_cues(model: Recogniser, clips: Path) -> None:
    path = clips / "silence.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 16000 * 3)
    transcript = model.transcribe(path)
    assert transcript.cues == [] and transcript.language is None


def test_a_file_that_is_not_a_recording_is_refused(model: Recogniser, tmp_path: Path) -> None:
    junk = tmp_path / "notes.mp3"
    junk.write_text("not audio at all")
    with pytest.raises(InvalidRecording):
        model.transcribe(junk)


def test_transcribe_runs_in_a_child_process(model_dir: Path, clips: Path) -> None:
    clip = _speak(clips, "short", "We will be back next week with another story.")
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        transcript = pool.submit(transcribe, clip, str(model_dir), "en").result(timeout=300)
    assert _said(transcript) == _words("We will be back next week with another story.")
    assert transcript.language == "en"


# --- refusals: one clear line, fast, no network ----------------------------------------------


def _one_line(error: pytest.ExceptionInfo[TranscriptionError], *phrases: str) -> None:
    message = str(error.value)
    assert "\n" not in message and message.endswith("."), message
    for phrase in phrases:
        assert phrase in message, message


def test_off_is_refused(clips: Path) -> None:
    with pytest.raises(TranscriptionError) as error:
        transcribe(clips / "any.wav", "off")
    _one_line(error, "off")


@pytest.mark.parametrize("where", ["absolute", "relative"])
def test_a_missing_folder_is_refused(tmp_path: Path, where: str) -> None:
    folder = tmp_path / "nowhere" if where == "absolute" else Path("models/nowhere")
    with pytest.raises(TranscriptionError) as error:
        load_model(folder)  # a Path is a folder, never a model hub id
    _one_line(error, str(folder), "does not exist")


def test_a_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TranscriptionError) as error:
        load_model(tmp_path)
    _one_line(error, "model.bin")


def test_a_broken_model_is_refused(model_dir: Path, tmp_path: Path) -> None:
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copy(model_dir / name, tmp_path / name)
    with open(model_dir / "model.bin", "rb") as whole:
        (tmp_path / "model.bin").write_bytes(whole.read(4096))
    with pytest.raises(TranscriptionError) as error:
        load_model(tmp_path)
    _one_line(error, "cannot be loaded")


def test_a_model_name_that_cannot_be_fetched_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TranscriptionError) as error:
        load_model("base", cache_dir=tmp_path)
    _one_line(error, "'base'", "not on this machine", "ARCHIVE_TRANSCRIBE_MODEL")


def test_an_unknown_model_name_is_refused() -> None:
    with pytest.raises(TranscriptionError) as error:
        load_model("enormous")
    _one_line(error, "'enormous'", "large-v3")


# --- pieces without the model -------------------------------------------------------------


def test_the_prompt_names_title_speakers_and_tags() -> None:
    prompt = initial_prompt("Glasnost and physics", ["Mikhail Gorbachev", " John Wheeler "],
                            ["cold war", "", "physics"])
    assert prompt == ("Glasnost and physics. With Mikhail Gorbachev and John Wheeler. "
                      "Cold war, physics.")
    assert initial_prompt("", [], []) == ""
    assert len(initial_prompt("x" * 5000, ["y" * 5000], [])) <= 600


_WORDS = st.lists(
    st.tuples(st.floats(0, 3), st.floats(0.05, 2),
              st.text(st.sampled_from("abcdefghij"), min_size=1, max_size=15),
              st.sampled_from(["", "", "", ",", ".", "?"])),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(_WORDS)
def test_cues_from_any_words_are_ordered_short_and_keep_every_word(raw: list) -> None:
    words, now = [], 0.0
    for gap, length, letters, mark in raw:
        words.append(Word(now + gap, now + gap + length, " " + letters + mark))
        now += gap + length
    cues = cues_from_words(words)
    assert [w for cue in cues for w in cue.words] == words
    assert " ".join(c.text.replace("\n", " ") for c in cues).split() == [
        w.text.strip() for w in words]
    times = [t for cue in cues for t in (cue.start, cue.end)]
    assert times == sorted(times)
    for cue in cues:
        lines = cue.text.split("\n")
        assert len(lines) <= 2
        if len(cue.words) > 1:  # a single word is never split, however long
            assert cue.end - cue.start <= MAX_CUE_S and max(map(len, lines)) <= MAX_LINE
        assert not any(w.text.endswith((".", "?")) for w in cue.words[:-1])
