"""Speech to text with faster-whisper (CTranslate2 on the CPU, int8), in bounded windows.

faster-whisper decodes a whole file into memory (about 230 MB per hour of audio) and then
computes its features and voice activity over all of it (measured: about 0.7 MB per second,
2.5 GB an hour). Here PyAV decodes 16 kHz mono float32 one window at a time (``media.convert``'s
reader), each window ends at the quietest moment of its last seconds so no word is cut, and its
timestamps are offset: a ten-hour recording needs the memory of one window. Windows are
recognised independently (with the episode's prompt, not the previous window's words, which
made Whisper repeat them on short windows); Whisper itself works in 30 s steps anyway.

Words keep their timestamps; cues are sentence-like, at most ``MAX_CUE_S`` long, in at most
two lines of ``MAX_LINE`` characters.

``transcribe`` is a plain module-level function of picklable arguments, so a job runner can
call it in a child process. Only this module imports faster_whisper.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from faster_whisper import WhisperModel, available_models

from media.convert import _duration_hint, _frames, _open, _resampled
from media.errors import MediaError
from media.transcripts import Cue, Transcript, Word

Progress = Callable[[float], None]

DEFAULT_MODEL = "base"
OFF = "off"
RATE = 16000  # what Whisper listens at
DEFAULT_WINDOW_S = 120.0  # memory grows ~0.7 MB per second of window (features, VAD)
MAX_CUE_S = 7.0
MAX_LINE = 42
MAX_LINES = 2
BEAM_SIZE = 5
_CUT_SEARCH_S = 10.0  # a window ends at the quietest moment of its last ten seconds…
_QUIET_S = 0.2  # …measured over this long, so a pause wins over the gap inside a word
_PAUSE_S = 1.0  # a longer silence between two words starts a new cue
_SENTENCE_ENDS = (".", "?", "!", "…", "。", "？", "！")
_CLAUSE_ENDS = (",", ";", ":", "，", "、")
_PROMPT_CHARS = 600  # Whisper reads at most 223 prompt tokens


class TranscriptionError(MediaError):
    """Transcription cannot run here: the message is one line for the job's status."""


class Window(NamedTuple):
    offset: float  # seconds into the recording
    samples: np.ndarray  # 16 kHz mono float32


def transcribe(
    path: str | Path,
    model_spec: str | Path | Recogniser,
    language: str | None = None,
    prompt: str = "",
    window_s: float = DEFAULT_WINDOW_S,
    progress: Progress | None = None,
) -> Transcript:
    """Transcribe one recording with the model ``ARCHIVE_TRANSCRIBE_MODEL`` names (loaded
    here), or with one already loaded by ``load_model``."""
    model = model_spec if isinstance(model_spec, Recogniser) else load_model(model_spec)
    return model.transcribe(
        path, language=language, prompt=prompt, window_s=window_s, progress=progress
    )


def initial_prompt(title: str, speakers: Iterable[str], tags: Iterable[str]) -> str:
    """The episode's own words, so the recogniser spells "Szilard" rather than "Schiller"."""
    parts = []
    if title := " ".join(title.split()).rstrip("."):
        parts.append(f"{title}.")
    names = [n for name in speakers if (n := " ".join(name.split()))]
    if names:
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        parts.append(f"With {listed}.")
    words = ", ".join(t for tag in tags if (t := " ".join(tag.split())))
    if words:
        parts.append(f"{words[0].upper()}{words[1:]}.")
    return " ".join(parts)[:_PROMPT_CHARS]


# --- the model ------------------------------------------------------------------------------


def load_model(spec: str | Path, *, cache_dir: Path | None = None) -> Recogniser:
    """A model folder, or a faster-whisper model name (from its cache, or fetched if online)."""
    source, named = _resolve(spec)
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    try:
        model = WhisperModel(source, device="cpu", compute_type="int8",
                             cpu_threads=len(os.sched_getaffinity(0)),
                             local_files_only=named and offline,
                             download_root=str(cache_dir) if cache_dir else None)
    except MemoryError:  # out of memory is not a broken model
        raise
    except Exception as error:  # CTranslate2 and huggingface_hub raise many kinds
        raise _load_failure(source, named, offline, error) from None
    return Recogniser(model)


def _resolve(spec: str | Path) -> tuple[str, bool]:
    """(folder or name, whether it is a name)."""
    text = str(spec).strip()
    if not text or text.lower() == OFF:
        raise TranscriptionError("Transcription is off (ARCHIVE_TRANSCRIBE_MODEL=off).")
    folder = Path(text).expanduser()
    if folder.is_dir():
        if not (folder / "model.bin").is_file():
            raise TranscriptionError(
                f"The transcription model folder {folder} has no model.bin; "
                "it must hold a model converted for faster-whisper."
            )
        return str(folder), False
    if isinstance(spec, Path) or text.startswith(("/", ".", "~")):
        raise TranscriptionError(f"The transcription model folder {folder} does not exist.")
    if text in available_models() or re.fullmatch(r"[\w.-]+/[\w.-]+", text):  # or a hub id
        return text, True
    raise TranscriptionError(
        f"The transcription model {text!r} is neither a folder nor a faster-whisper model "
        f"name ({', '.join(available_models())})."
    )


def _load_failure(source: str, named: bool, offline: bool, error: Exception) -> Exception:
    if named and isinstance(error, OSError):  # huggingface_hub's "not cached / not reachable"
        why = "downloads are off (HF_HUB_OFFLINE)" if offline else "could not be downloaded"
        return TranscriptionError(
            f"The transcription model {source!r} is not on this machine and {why}; set "
            "ARCHIVE_TRANSCRIBE_MODEL to a model folder, or to off."
        )
    detail = " ".join(str(error).split())[:200].rstrip(".")
    where = repr(source) if named else f"in {source}"
    return TranscriptionError(f"The transcription model {where} cannot be loaded: {detail}.")


class Recogniser:
    """A loaded model: load once, transcribe many recordings."""

    def __init__(self, model: WhisperModel):
        self.model = model

    def transcribe(
        self,
        path: str | Path,
        *,
        language: str | None = None,
        prompt: str = "",
        window_s: float = DEFAULT_WINDOW_S,
        progress: Progress | None = None,
    ) -> Transcript:
        """Words with timestamps, window by window; ``language`` None means detect it."""
        total = _duration(path)
        fixed = _language(language, self.model.supported_languages)
        words: list[Word] = []
        for window in pcm_windows(path, window_s):
            found, detected = self._window(window, fixed, prompt.strip(), total, progress)
            if found and fixed is None:
                fixed = detected  # detected once, from the first speech, then kept
            words += found
        if progress is not None:
            progress(1.0)
        return Transcript("asr", cues_from_words(words), fixed if words or language else None)

    def _window(self, window: Window, language: str | None, prompt: str, total: float,
                progress: Progress | None) -> tuple[list[Word], str]:
        segments, info = self.model.transcribe(
            window.samples, language=language, initial_prompt=prompt or None,
            beam_size=BEAM_SIZE, word_timestamps=True, vad_filter=True,
        )
        length = len(window.samples) / RATE
        words: list[Word] = []
        for segment in segments:
            words += [_word(w, window.offset, length) for w in segment.words or ()]
            if progress is not None and total > 0:
                progress(min(0.99, (window.offset + segment.end) / total))
        return _ordered(words), info.language


def _language(code: str | None, supported: list[str]) -> str | None:
    """Whisper's code for the episode's BCP 47 tag ("en-GB" → "en"); None: detect."""
    if not code:
        return None
    primary = code.strip().lower().replace("_", "-").split("-")[0]
    return primary if primary in supported else None


def _word(word: Any, offset: float, length: float) -> Word:
    start = min(max(float(word.start), 0.0), length)
    end = min(max(float(word.end), start), length)
    return Word(round(offset + start, 3), round(offset + end, 3), word.word,
                round(float(word.probability), 3))


def _ordered(words: list[Word]) -> list[Word]:
    """Whisper's word times can step back a little; players need them in order."""
    last = 0.0
    for word in words:
        word.start = max(word.start, last)
        word.end = max(word.end, word.start)
        last = word.end
    return words


# --- audio, window by window ----------------------------------------------------------------


def _duration(path: str | Path) -> float:
    container, stream = _open(path)
    with container:
        return _duration_hint(container, stream)


def pcm_windows(path: str | Path, window_s: float = DEFAULT_WINDOW_S) -> Iterator[Window]:
    """16 kHz mono float32 pieces of at most ``window_s``, cut where it is quietest."""
    size = max(int(window_s * RATE), RATE)
    search = int(min(_CUT_SEARCH_S, size / RATE / 4) * RATE)
    container, stream = _open(path)
    with container:
        pending: list[np.ndarray] = []
        count = offset = 0
        for frame in _resampled(_frames(container, stream), fmt="flt", layout="mono", rate=RATE):
            pending.append(frame.to_ndarray().reshape(-1))
            count += pending[-1].size
            while count >= size:
                buffer = np.concatenate(pending)
                cut = _quietest(buffer, size - search, size)
                yield Window(offset / RATE, buffer[:cut])
                offset += cut
                pending, count = [buffer[cut:].copy()], buffer.size - cut
        if count:
            yield Window(offset / RATE, np.concatenate(pending))


def _quietest(samples: np.ndarray, start: int, stop: int) -> int:
    """Where, between start and stop, the sound is quietest (averaged over ``_QUIET_S``)."""
    span = max(1, min(int(_QUIET_S * RATE), (stop - start) // 4))
    energy = np.concatenate(([0.0], np.cumsum(np.square(samples[start:stop], dtype=np.float64))))
    if energy.size <= span + 1:
        return stop
    moving = energy[span:] - energy[:-span]
    return start + int(np.argmin(moving)) + span // 2


# --- cues -----------------------------------------------------------------------------------


def cues_from_words(words: list[Word]) -> list[Cue]:
    """Sentence-like cues of at most MAX_CUE_S in at most two lines of MAX_LINE characters."""
    cues: list[Cue] = []
    current: list[Word] = []
    for word in words:
        if current and _starts_new_cue(current, word):
            cues.append(_cue(current, cues[-1].end if cues else 0.0))
            current = []
        current.append(word)
    if current:
        cues.append(_cue(current, cues[-1].end if cues else 0.0))
    return cues


def _starts_new_cue(current: list[Word], word: Word) -> bool:
    last = current[-1].text.strip()
    return (
        last.endswith(_SENTENCE_ENDS)
        or word.start - current[-1].end > _PAUSE_S
        or word.end - current[0].start > MAX_CUE_S
        or len(_lines(_text([*current, word]))) > MAX_LINES
        or (last.endswith(_CLAUSE_ENDS) and len(_text(current)) > MAX_LINE)
    )


def _cue(words: list[Word], previous_end: float) -> Cue:
    start = max(words[0].start, previous_end)
    return Cue(start, max(words[-1].end, start), "\n".join(_lines(_text(words))),
               words=list(words))


def _text(words: list[Word]) -> str:
    return "".join(w.text for w in words).strip()


def _lines(text: str) -> list[str]:
    """Two lines as even as they can be, when one is not enough."""
    text = " ".join(text.split())
    lines = textwrap.wrap(text, MAX_LINE, break_long_words=False, break_on_hyphens=False)
    if len(lines) != 2:
        return lines
    spaces = [i for i, char in enumerate(text) if char == " "]
    best = min(spaces, key=lambda i: max(i, len(text) - i - 1))
    return [text[:best], text[best + 1:]]
