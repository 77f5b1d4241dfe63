"""The console script ends the process itself once the command is done: output flushed,
atexit handlers run, exit code kept; a still-running thread gets the normal exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EXOIMAP_HOME": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )


def test_script_keeps_output_exit_code_and_atexit(tmp_path: Path) -> None:
    done = _run(
        "import atexit, sys\n"
        "atexit.register(lambda: print('atexit ran'))\n"
        "sys.argv = ['exoimap', 'config', 'path']\n"
        "print('x' * 200_000, end='')  # a large buffered write must reach the pipe\n"
        "from exoimap.entry import run\n"
        "run()\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("x" * 200_000)
    assert str(tmp_path / "config.toml") in done.stdout
    assert done.stdout.rstrip().endswith("atexit ran")


def test_script_exit_code_of_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[accounts.a]\nimap_port = 'x'\n")
    done = _run(
        "import sys; sys.argv = ['exoimap', 'sync']; from exoimap.entry import run; run()", tmp_path
    )
    assert done.returncode == 2
    assert "imap_port" in done.stderr


def test_a_running_thread_is_waited_for(tmp_path: Path) -> None:
    done = _run(
        "import sys, threading, time\n"
        "def late():\n"
        "    time.sleep(0.3)\n"
        "    print('thread finished', flush=True)\n"
        "threading.Thread(target=late).start()\n"
        "sys.argv = ['exoimap', '--version']\n"
        "from exoimap.entry import run\n"
        "run()\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "thread finished" in done.stdout


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    env = {**os.environ, "EXOIMAP_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "exoimap", "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0
    assert done.stdout.startswith("exoimap ")


def test_the_command_runs_with_the_cli_collector_thresholds(tmp_path: Path) -> None:
    done = _run(
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('thresholds', gc.get_threshold()))\n"
        "sys.argv = ['exoimap', 'config', 'path']\n"
        "from exoimap.entry import GC_THRESHOLDS, run\n"
        "assert gc.get_threshold() != GC_THRESHOLDS  # Python's default until the CLI runs\n"
        "run()\n",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "thresholds (10000, 10, 10)" in done.stdout
