"""``python -m bench.ab`` runs end to end on a small mailbox (so it cannot rot)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_ab_bench_alternates_the_two_builds_and_prints_medians() -> None:
    exe = str(Path(sys.executable).with_name("exoimap"))
    command = [sys.executable, "-m", "bench.ab", "--before", exe, "--after", exe]
    command += ["--messages", "30", "--rounds", "2"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    rounds = re.findall(r"^round (\d) (\w+) *:", done.stdout, re.M)
    assert rounds == [("0", "before"), ("0", "after"), ("1", "after"), ("1", "before")]
    summary = re.findall(
        r"^(\w+) +(initial|resync) +wall median .* \(n=(\d+)\)$", done.stdout, re.M
    )
    assert summary == [
        ("before", "initial", "2"),
        ("after", "initial", "2"),
        ("before", "resync", "6"),
        ("after", "resync", "6"),
    ]
