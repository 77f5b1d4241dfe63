"""tools/stress-suite: runs pytest round after round under busy loops it starts and stops
itself, names every failing test, and fails when any round failed."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "stress-suite"


def _stress(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False
    )


def _load_pids(stdout: str) -> set[int]:
    announced = re.search(r"busy loops \(pids ([\d ]+);", stdout)
    assert announced is not None, stdout
    return {int(pid) for pid in announced.group(1).split()}


def _tests(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / "test_sample.py").write_text(body)
    return folder


def test_every_round_passing_is_a_success_and_the_load_is_stopped(tmp_path: Path) -> None:
    suite = _tests(tmp_path, "def test_fine():\n    assert True\n")
    # each round records the busy loops running beside it
    (suite / "conftest.py").write_text(
        "import subprocess\n"
        "def pytest_sessionstart(session):\n"
        "    out = subprocess.run(['pgrep', '-f', 'while :; do :; done'],\n"
        "                         capture_output=True, text=True).stdout\n"
        f"    open({str(tmp_path / 'seen')!r}, 'a').write(out + '--\\n')\n"
    )
    result = _stress("--rounds", "2", "--load", "2", "--", "-p", "no:xdist", str(suite))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "round 1: passed" in result.stdout
    assert "round 2: passed" in result.stdout
    assert "stress: 0 of 2 rounds failed, 0 test failures" in result.stdout
    load = _load_pids(result.stdout)
    assert len(load) == 2
    seen = [{int(pid) for pid in part.split()} for part in _rounds(tmp_path / "seen")]
    assert len(seen) == 2
    assert all(load <= running for running in seen)  # loaded during each round
    assert not any(Path(f"/proc/{pid}").exists() for pid in load)  # and stopped after


def _rounds(seen: Path) -> list[str]:
    # pgrep lists one pid a line; each round's list ends with a '--' line
    return [part for part in seen.read_text().split("--\n") if part.strip()]


def test_a_failing_test_is_named_and_fails_the_run(tmp_path: Path) -> None:
    suite = _tests(
        tmp_path,
        "import os\n"
        "def test_fine():\n    assert True\n"
        "def test_broken():\n    assert os.environ.get('NOPE') == 'set'\n",
    )
    result = _stress("--rounds", "1", "--load", "1", "--", "-p", "no:xdist", str(suite))
    assert result.returncode == 1
    assert result.stdout.count("test_sample.py::test_broken") == 1
    assert "test_fine" not in result.stdout
    assert "stress: 1 of 1 rounds failed, 1 test failures" in result.stdout
    logs = re.search(r"logs in (\S+)\)", result.stdout)
    assert logs is not None
    assert sorted(os.listdir(logs.group(1))) == ["round-1.log"]


@pytest.mark.parametrize("args", [["--rounds", "0"], ["--load", "x"], ["--bogus"]])
def test_bad_arguments_are_a_usage_error(args: list[str]) -> None:
    result = _stress(*args)
    assert result.returncode == 2
    assert result.stderr.startswith(("tools/stress-suite:", "usage: tools/stress-suite"))
    assert result.stdout == ""
