"""``python -m bench.proxy_latency`` runs end to end with a few rounds (so it cannot rot)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_proxy_latency_bench_measures_every_command_both_ways() -> None:
    command = [sys.executable, "-m", "bench.proxy_latency", "--rounds", "3", "--metrics"]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.count(" / ") == 3]
    assert [row.split("  ")[0].strip() for row in rows] == [
        "NOOP",
        "UID FETCH (FLAGS)",
        "UID FETCH (BODY.PEEK[])",
        "STATUS",
    ]
    # and the proxy's own histogram, read from its metrics endpoint
    own = done.stdout.split("the proxy's own added latency", 1)[1].splitlines()[1:]
    assert [line.rsplit(" ", 1)[0].strip() for line in own] == ["NOOP", "UID FETCH", "STATUS"]
    assert all(float(line.rsplit(" ", 1)[1]) > 0 for line in own)


def test_proxy_idle_bench_wakes_every_client() -> None:
    command = [sys.executable, "-m", "bench.proxy_idle", "--clients", "3"]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "proxy RSS with   3 idle clients" in done.stdout
    assert "clients woken by one new message        3 of 3" in done.stdout


def test_proxy_mbsync_bench_compares_both_paths() -> None:
    command = [sys.executable, "-m", "bench.proxy_mbsync", "--messages", "20", "--rounds", "1"]
    done = subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "round 1 direct" in done.stdout
    assert "round 1 proxy" in done.stdout
    assert "best through the proxy" in done.stdout
