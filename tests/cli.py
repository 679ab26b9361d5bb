"""Run the real `archive` command in a subprocess against a test's bucket."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from archive.config import Settings


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "ARCHIVE_S3_ENDPOINT": settings.s3_endpoint or "",
        "ARCHIVE_S3_BUCKET": settings.s3_bucket,
        "AWS_ACCESS_KEY_ID": settings.access_key,
        "AWS_SECRET_ACCESS_KEY": settings.secret_access_key,
        "ARCHIVE_DATA_DIR": str(settings.data_dir),
        "ARCHIVE_BASE_URL": settings.base_url,
        "ARCHIVE_SECRET_KEY": settings.secret_key,
        "ARCHIVE_TRANSCRIBE_MODEL": settings.transcribe_model,
    }


def run_cli(settings: Settings, *args: str | Path, stdin: str | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "archive", *map(str, args)],
        env=cli_env(settings), input=stdin, capture_output=True, text=True, timeout=timeout,
    )
