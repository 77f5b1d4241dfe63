"""``make demo-tenant`` (``python -m exoimap.demo_tenant``) end to end: 50 mailboxes, 2
workers, ending with ``demo ok:``."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_tenant_runs_end_to_end() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXOIMAP_")}
    done = subprocess.run(
        [sys.executable, "-m", "exoimap.demo_tenant"],
        capture_output=True,
        text=True,
        timeout=880,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    pattern = r"demo ok: 50 mailboxes \((\d+) messages\) backed up by 2 workers and verified"
    match = re.match(pattern, last)
    assert match, last
    assert int(match.group(1)) == 400
    for command in (
        "$ exoimap tenant add demo",
        "$ exoimap tenant discover demo",
        "$ exoimap worker --concurrency 2",
        "$ exoimap tenant backup demo",
        "$ exoimap tenant verify demo --deep",
    ):
        assert command in done.stdout
    assert "50 mailboxes verified deep: 50 match (400 messages), 0 do not" in done.stdout
    assert "50 mailboxes: 50 ok" in done.stdout
