"""``make demo`` (``python -m exoimap.demo``) end to end: it must end with ``demo ok:``."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest


@pytest.mark.slow  # about a minute on 2 cores; runs in CI (never skipped)
@pytest.mark.timeout(240)
def test_demo_runs_end_to_end() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXOIMAP_")}
    done = subprocess.run(
        [sys.executable, "-m", "exoimap.demo"],
        capture_output=True,
        text=True,
        timeout=230,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"demo ok: (\d+) messages, (\d+) folders, (\d+) bytes in ([\d.]+) s", last)
    assert match, last
    messages, folders, size = (int(g) for g in match.groups()[:3])
    assert messages == 2001  # 2000 seeded + the one that arrived between the syncs
    assert folders >= 13
    assert size > 1_000_000
    # the demo teaches the CLI: it shows each command it runs
    for command in (
        "$ exoimap account add demo",
        "$ exoimap login demo",
        "$ exoimap sandbox approve",
        "$ exoimap sync demo",
        "$ exoimap verify demo --deep",
        "$ exoimap archive stats demo",
    ):
        assert command in done.stdout
    assert "EXOIMAP_VAULT_PASSPHRASE" in done.stdout
