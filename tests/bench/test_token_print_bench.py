"""``python -m bench.token_print`` runs end to end with one round (so it cannot rot)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_token_print_bench_measures_all_four_ways() -> None:
    command = [sys.executable, "-m", "bench.token_print", "--rounds", "1"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    for label in ("interpreter start", "no agent, key-file vault", "passphrase vault",
                  "answered by the agent"):  # fmt: skip
        assert label in done.stdout
    assert done.stdout.count(" median ") == 4
