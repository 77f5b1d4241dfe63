"""The server-CPU measurement of the comparison: a process tree's CPU from ``/proc``, and
``bench.compare.timed`` measuring a real Dovecot's processes over a run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from bench.bench_server import BENCH_PASSWORD, BENCH_USER, SeededServer
from bench.compare import timed
from bench.process_cpu import process_cpu_seconds, tree_cpu_seconds

BURN_S = 0.3

#: A parent that runs one child burning BURN_S of CPU to its end (and reaps it), then
#: starts a second that burns as much and stays alive; then it says so and waits.
PARENT = textwrap.dedent(
    f"""
    import os, subprocess, sys
    burn = "import time\\nt = time.process_time()\\nwhile time.process_time() - t < {BURN_S}: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    alive = subprocess.Popen([sys.executable, "-c", burn + "\\nimport time; time.sleep(60)"])
    import time
    time.sleep(0.05)
    while True:
        fields = open(f"/proc/{{alive.pid}}/stat").read().rsplit(")", 1)[1].split()
        if (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") >= {BURN_S - 0.02}:
            break
        time.sleep(0.02)
    print("ready", flush=True)
    sys.stdin.read()
    alive.kill()
    """
)


def test_tree_cpu_counts_live_descendants_and_reaped_children() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline() == "ready\n"
        own = process_cpu_seconds(parent.pid)
        with_reaped = process_cpu_seconds(parent.pid, reaped_children=True)
        tree = tree_cpu_seconds(parent.pid)
    finally:
        parent.communicate("", timeout=30)
    # the reaped child's burn shows only with its parent's cutime/cstime, the live one's
    # only in the tree; the parent itself did little more than start an interpreter
    assert own < BURN_S
    assert with_reaped - own >= BURN_S - 0.03
    assert tree - with_reaped >= BURN_S - 0.05


def test_timed_measures_the_servers_cpu_over_a_run(tmp_path: Path) -> None:
    server = SeededServer.start(200, 5)
    try:
        pid = server.server.pid
        assert pid is not None
        fetch = [sys.executable, "-m", "bench.bench_raw", "--port", str(server.port)]
        fetch += ["--ca", str(server.ca_file), "--user", BENCH_USER, "--password", BENCH_PASSWORD]
        run = timed("limit", "limit", 1, fetch, tmp_path, tmp_path / "log", server_pid=pid)
        unmeasured = timed("limit", "limit", 1, fetch, tmp_path, tmp_path / "log")
    finally:
        server.stop()
    assert server.server.pid is None  # stopped
    assert run.exit_code == 0, (tmp_path / "log").read_text()
    # the login, the TLS and the fetch of 200 messages ran in Dovecot's processes (30-70
    # ms in 15 runs here; one clock tick is 10 ms)
    assert run.server_cpu_s is not None
    assert run.server_cpu_s > 0
    assert unmeasured.server_cpu_s is None
