"""Local files and folders a process names after itself (`<prefix><pid>-…`), and removing those
of processes that are gone: caches and scratch space under ARCHIVE_DATA_DIR that a killed
process could not clean up. (Process ids are per host: give each container its own folder.)"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path


def own_name(prefix: str) -> str:
    """A name no other live process uses: this process's id, then a random part."""
    return f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"


def remove_dead(folder: Path, prefix: str) -> None:
    """Every file or folder in `folder` named by `own_name(prefix)` of a process now gone."""
    for path in folder.glob(f"{prefix}*"):
        pid = path.name[len(prefix):].split("-", 1)[0]
        if not pid.isdigit() or Path(f"/proc/{pid}").exists():
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
