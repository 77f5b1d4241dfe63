"""``python -m bench.watch_latency`` runs end to end, small (so it cannot rot)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_watch_latency_bench_times_every_delivery_and_the_idle_cost() -> None:
    command = [
        sys.executable, "-m", "bench.watch_latency",
        "--mailboxes", "2", "--deliveries", "4", "--idle", "1",
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, check=False, timeout=300
    )
    result = json.loads(done.stdout)
    assert result["mailboxes"] == 2
    assert result["deliveries"] == 4
    assert 0 < result["latency_p50_s"] <= result["latency_p95_s"] <= result["latency_max_s"]
    assert result["idle_rss_mb"] > 0
    assert set(result["targets_met"]) == {"latency_p95_s", "idle_cpu_percent", "idle_rss_mb"}
    # the exit code says whether every target was met
    assert done.returncode == (0 if all(result["targets_met"].values()) else 1), done.stderr
