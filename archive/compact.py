"""Small records kept compressed in memory: zstd, with a dictionary learnt from the records.

A catalogue of 100,000 episodes held as Python objects takes ~300 MB in every process, and most
of it is text and file records that only an episode's own page, its feed item or an export
reads. Those parts are kept as compressed JSON and unpacked when read (a few microseconds).
One record alone compresses poorly (~2x): what records share (keys, file types, words) is
not in it. A dictionary learnt once per process from a sample of the archive's own records
holds what they share, and brings a record to about a fifth of its JSON.

Each compressed record starts with one byte naming how it was made (no dictionary, or the
process's one dictionary), so records made before the dictionary was learnt stay readable.
"""

from __future__ import annotations

import threading

import zstandard

LEVEL = 3
DICTIONARY_BYTES = 16 * 1024
SAMPLES_TO_LEARN = 256  # fewer, and a dictionary is not worth its 16 KB (nor reliable to learn)


class _Codec:
    """One dictionary (or none), with a compressor and decompressor per thread (zstandard's
    are not safe to share between threads)."""

    def __init__(self, dictionary: zstandard.ZstdCompressionDict | None) -> None:
        self.dictionary = dictionary
        self._local = threading.local()

    def _pair(self) -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
        pair = getattr(self._local, "pair", None)
        if pair is None:
            if self.dictionary is None:
                pair = (zstandard.ZstdCompressor(level=LEVEL, write_checksum=False),
                        zstandard.ZstdDecompressor())
            else:
                pair = (zstandard.ZstdCompressor(level=LEVEL, dict_data=self.dictionary,
                                                 write_checksum=False, write_dict_id=False),
                        zstandard.ZstdDecompressor(dict_data=self.dictionary))
            self._local.pair = pair
        return pair  # type: ignore[no-any-return]

    def compress(self, raw: bytes) -> bytes:
        return self._pair()[0].compress(raw)  # type: ignore[no-any-return]

    def decompress(self, frame: bytes | memoryview) -> bytes:
        return self._pair()[1].decompress(frame)  # type: ignore[no-any-return]


_codecs: list[_Codec] = [_Codec(None)]
_learning = threading.Lock()
_pool: list[bytes] = []  # samples seen while too few to learn from
_POOL_MAX = 4 * SAMPLES_TO_LEARN


def compress(raw: bytes) -> bytes:
    """`raw` compressed with the newest dictionary, prefixed by that dictionary's number."""
    number = len(_codecs) - 1
    return bytes((number,)) + _codecs[number].compress(raw)


def decompress(packed: bytes | memoryview) -> bytes:
    return _codecs[packed[0]].decompress(memoryview(packed)[1:])


def learning() -> bool:
    """Whether `learn` would still use samples (no dictionary yet, room for one)."""
    return len(_codecs) == 1


def learn(samples: list[bytes]) -> bool:
    """Learn the process's dictionary, once, from records like those to come; says whether it
    did. Samples are pooled across calls until there are enough (a shard of a 10,000-episode
    archive holds ~40 records); too alike ones leave things as they are."""
    if not learning():
        return False
    with _learning:
        if not learning():
            return False
        _pool.extend(samples[:_POOL_MAX - len(_pool)])
        if len(_pool) < SAMPLES_TO_LEARN:
            return False
        pooled = _pool[:]
        _pool.clear()
        try:
            dictionary = zstandard.train_dictionary(DICTIONARY_BYTES, pooled)
        except zstandard.ZstdError:
            return False
        dictionary.precompute_compress(level=LEVEL)
        _codecs.append(_Codec(dictionary))
        return True
