"""The benchmark harness keeps working (a smoke run of the section that needs no extra tools)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_quick_scale_benchmark_prints_a_table_and_writes_results(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "scale", "--output", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "1,000 episodes: cold_start_s vs budget 3" in run.stdout
    results = json.loads(output.read_text())["results"]
    names = {r["name"] for r in results}
    assert "1,000 episodes: search_p95_ms vs budget 25" in names
    assert all(r["baseline"] > 0 and r["value"] >= 0 for r in results)
