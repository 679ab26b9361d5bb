"""Waveform peaks for the player's scrubber, in the audiowaveform JSON format (version 2).

The format is BBC's `audiowaveform` output, which peaks.js and other players read: min/max
pairs of 8-bit values, one pair per `samples_per_pixel` samples. An overview needs no more than a
few thousand pairs whatever the length of the recording, so the resolution follows the duration
and memory stays flat: samples are folded into the current pair as they are decoded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

from media.errors import MediaError

RATE = 8000  # enough for the shape of speech; decoding and resampling stay cheap
MAX_PIXELS = 4000
MIN_SECONDS_PER_PIXEL = 0.05


@dataclass
class Waveform:
    sample_rate: int
    samples_per_pixel: int
    data: list[int] = field(default_factory=list)  # min, max, min, max… in −128…127

    @property
    def length(self) -> int:
        return len(self.data) // 2

    def to_json(self) -> bytes:
        return json.dumps({
            "version": 2, "channels": 1, "sample_rate": self.sample_rate,
            "samples_per_pixel": self.samples_per_pixel, "bits": 8, "length": self.length,
            "data": self.data,
        }, separators=(",", ":")).encode()


def samples_per_pixel(duration: float) -> int:
    seconds = max(duration / MAX_PIXELS, MIN_SECONDS_PER_PIXEL)
    return max(1, math.ceil(seconds * RATE))


class _Folder:
    """Folds a stream of samples into min/max pairs without keeping the samples."""

    def __init__(self, per_pixel: int) -> None:
        self.per_pixel = per_pixel
        self.pending = np.empty(0, dtype=np.float32)
        self.data: list[int] = []

    def add(self, samples: np.ndarray) -> None:
        samples = np.concatenate((self.pending, samples)) if self.pending.size else samples
        whole = samples.size - samples.size % self.per_pixel
        if whole:
            blocks = samples[:whole].reshape(-1, self.per_pixel)
            self._emit(blocks.min(axis=1), blocks.max(axis=1))
        self.pending = samples[whole:].copy()

    def finish(self) -> list[int]:
        if self.pending.size:
            self._emit(self.pending.min(keepdims=True), self.pending.max(keepdims=True))
            self.pending = np.empty(0, dtype=np.float32)
        return self.data

    def _emit(self, low: np.ndarray, high: np.ndarray) -> None:
        low8 = np.clip(np.floor(low * 128), -128, 127).astype(int)
        high8 = np.clip(np.ceil(high * 127), -128, 127).astype(int)
        pairs = np.empty(low8.size * 2, dtype=int)
        pairs[0::2], pairs[1::2] = low8, high8
        self.data.extend(pairs.tolist())


def waveform(path: str | Path, duration: float,
             progress: Callable[[float], None] | None = None) -> Waveform:
    """Decode the recording's first audio stream once and fold it into peaks."""
    per_pixel = samples_per_pixel(duration)
    folder = _Folder(per_pixel)
    try:
        with av.open(str(path)) as container:
            stream = next(s for s in container.streams if s.type == "audio")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            done = 0
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    samples = out.to_ndarray().reshape(-1)
                    folder.add(samples)
                    done += samples.size
                if progress and duration > 0:
                    progress(min(done / RATE / duration, 1.0))
            for out in resampler.resample(None):
                folder.add(out.to_ndarray().reshape(-1))
    except StopIteration:
        raise MediaError("The recording has no audio to draw.") from None
    except (av.FFmpegError, OSError) as error:
        raise MediaError(f"The recording could not be decoded for its waveform ({error}).") \
            from None
    return Waveform(RATE, per_pixel, folder.finish())
