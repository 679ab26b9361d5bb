"""Ingest of a long recording against ffmpeg + raw boto3 uploads of the same files to the same S3.

Baseline for a WAV: Debian's `ffmpeg` encodes the same MP3 (128 kb/s), then boto3 uploads the
original and the MP3 (its managed multipart transfer). For an MP3 (no conversion): the upload
alone. Both sides run as separate processes so their peak RSS is measured the same way.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from bench.tools import Result, archive_env, embedded_archive, require, run_measured

UPLOAD_SCRIPT = """
import sys, boto3
from botocore.config import Config
endpoint, key, secret, *files = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key,
                  aws_secret_access_key=secret, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
for n, path in enumerate(files):
    s3.upload_file(path, "archive", f"baseline/{n}")
"""


def make_wav(path: Path, minutes: float) -> None:
    ffmpeg = require("ffmpeg", "ffmpeg")
    subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=330:sample_rate=44100:duration={minutes * 60}",
                    "-f", "lavfi", "-i",
                    "anoisesrc=color=pink:amplitude=0.05:sample_rate=44100:"
                    f"duration={minutes * 60}",
                    "-filter_complex", "amix=inputs=2,volume=0.5", "-ac", "2", str(path)],
                   check=True)


def make_mp3(wav: Path, mp3: Path) -> float:
    ffmpeg = require("ffmpeg", "ffmpeg")
    wall, _ = run_measured([ffmpeg, "-v", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame",
                            "-b:a", "128k", str(mp3)])
    return wall


def run(minutes: float) -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        work = Path(folder)
        wav, mp3 = work / "long.wav", work / "long.mp3"
        make_wav(wav, minutes)
        ffmpeg_seconds = make_mp3(wav, mp3)
        with embedded_archive(work / "s3") as archive:
            env = archive_env(archive)
            s = archive.settings
            upload = [sys.executable, "-c", UPLOAD_SCRIPT, s.s3_endpoint or "", s.access_key,
                      s.secret_access_key]
            up_both, up_rss = run_measured([*upload, str(wav), str(mp3)], env)
            up_mp3, _ = run_measured([*upload, str(mp3)], env)
            ingest = [sys.executable, "-m", "archive", "ingest", "--series", "Bench"]
            wav_wall, wav_rss = run_measured([*ingest, str(wav), "--title", "Long WAV"], env)
            mp3_wall, mp3_rss = run_measured([*ingest, str(mp3), "--title", "Long MP3"], env)
        label = f"{minutes:g}-min"
        results += [
            Result("ingest", f"{label} WAV: ingest vs ffmpeg + boto3 uploads (s)", wav_wall,
                   ffmpeg_seconds + up_both, "s", higher_is_better=False, target=1.3,
                   extra={"ffmpeg_s": ffmpeg_seconds, "upload_s": up_both}),
            Result("ingest", f"{label} WAV: ingest peak RSS (MB) vs 200 MB", wav_rss, 200, "MB",
                   higher_is_better=False, target=1.0, extra={"baseline_upload_rss": up_rss}),
            Result("ingest", f"{label} MP3: ingest vs boto3 upload (s)", mp3_wall, up_mp3, "s",
                   higher_is_better=False, target=1.3),
            Result("ingest", f"{label} MP3: ingest peak RSS (MB) vs 200 MB", mp3_rss, 200, "MB",
                   higher_is_better=False, target=1.0),
        ]
    return results
