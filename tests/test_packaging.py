"""`pip install .` gives a working `archive` with its templates and static files."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_carries_templates_and_runs_from_anywhere(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path / "dist"), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    wheel = next((tmp_path / "dist").glob("archive-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    assert {"archive/templates/base.html", "archive/templates/static/site.css",
            "media/probe.py", "feeds/build.py", "archive/cli.py"} <= names
    assert not any(name.startswith(("tests/", "bench/")) for name in names)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "PYTHONSAFEPATH": "1"}
    result = subprocess.run(
        [sys.executable, "-c",
         "import archive, sys; from archive.web.templating import templates_dir, static_dir;"
         "print(archive.__file__); print(templates_dir()); print(static_dir())"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60, check=True,
    )
    module, templates, static = result.stdout.split()
    assert module.startswith(str(tmp_path / "site"))
    assert templates == str(tmp_path / "site" / "archive" / "templates")
    assert Path(static, "site.css").is_file()
    usage = subprocess.run([sys.executable, "-m", "archive", "--help"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=60)
    assert usage.returncode == 0
    for verb in ("serve", "ingest", "import", "reindex", "verify", "demo"):
        assert verb in usage.stdout
