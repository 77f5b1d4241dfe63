"""`make test` installs the Debian packages the tests need, or says the one line to run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "system-packages"


def _fake_bin(tmp_path: Path, *, installed: bool, uid: int) -> dict[str, str]:
    """A PATH whose dpkg-query and id answer as a machine with or without the packages,
    as root or as a user, would (nothing is installed for real)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    status = "install ok installed" if installed else ""
    (bin_dir / "dpkg-query").write_text(f"#!/bin/sh\nprintf '%s' '{status}'\n")
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bin_dir / "apt-get").write_text("#!/bin/sh\necho apt-get must not run here >&2\nexit 9\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_a_user_without_the_packages_gets_the_one_line_to_run(tmp_path: Path) -> None:
    env = _fake_bin(tmp_path, installed=False, uid=1000)
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert (
        "sudo apt-get install -y --no-install-recommends dovecot-imapd dovecot-core openssl"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_nothing_to_do_when_the_packages_are_there(tmp_path: Path) -> None:
    env = _fake_bin(tmp_path, installed=True, uid=1000)
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_make_test_and_ci_run_the_step_first() -> None:
    dry = subprocess.run(
        ["make", "--no-print-directory", "-n", "test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = [line for line in dry.stdout.splitlines() if line.strip()]
    assert lines[0].endswith("tools/system-packages")
    commands = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands.index("tools/system-packages") < commands.index("make test")
