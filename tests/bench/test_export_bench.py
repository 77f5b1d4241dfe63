"""``python -m bench.export_mbox`` runs end to end on a small archive (so it cannot rot)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_export_bench_runs_on_a_small_archive(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench.export_mbox", "--messages", "40", "--rounds", "1"]
    command += ["--big-mb", "2", "--dir", str(tmp_path)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "round 1: 40 messages" in done.stdout
    assert "one 2 MB message: 1 messages" in done.stdout
    assert "peak RSS" in done.stdout
    assert not (tmp_path / "out").exists()
