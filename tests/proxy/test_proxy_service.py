"""The systemd user unit in docs/proxy.md: ``systemd-analyze verify`` accepts it, and its
``ExecStart`` line, run as systemd would run it (ports moved to free ones), serves an
IMAP client signed in with an app password and stops cleanly on SIGTERM."""

from __future__ import annotations

import imaplib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from tests.proxy.conftest import WorkAccount
from tests.proxy.proxy_helpers import EXOIMAP, cli_password_and_ca, free_port, proxy_process

pytestmark = pytest.mark.xdist_group("sandbox")

DOC = Path(__file__).resolve().parents[2] / "docs" / "proxy.md"


def documented_unit() -> str:
    text = DOC.read_text()
    found = re.search(r"<!-- exoimap-proxy\.service:.*?-->\n```ini\n(.*?)```", text, re.S)
    assert found, "docs/proxy.md lost its unit"
    return found.group(1)


def test_systemd_accepts_the_documented_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "this test needs systemd-analyze (Debian: apt-get install systemd)"
    unit = documented_unit().replace("%h/.local/bin/exoimap", EXOIMAP)
    folder = tmp_path / "units"
    folder.mkdir()
    (folder / "exoimap-proxy.service").write_text(unit)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    result = subprocess.run(
        [analyze, "verify", "--user", str(folder / "exoimap-proxy.service")],
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_units_command_serves_a_client_and_stops_on_sigterm(
    work_account: WorkAccount,
    capsys: pytest.CaptureFixture[str],
) -> None:
    upn = work_account({"INBOX": 1})
    password, context = cli_password_and_ca("service", capsys)
    (line,) = (x for x in documented_unit().splitlines() if x.startswith("ExecStart="))
    imap, smtp = free_port(), free_port()
    command = line.removeprefix("ExecStart=").replace("%h/.local/bin/exoimap", EXOIMAP)
    command = command.replace(":1993", f":{imap}").replace(":1587", f":{smtp}")
    with proxy_process(shlex.split(command), imap) as proxy:
        socket.create_connection(("127.0.0.1", smtp), timeout=5).close()  # SMTP is up too
        with imaplib.IMAP4_SSL("127.0.0.1", imap, ssl_context=context, timeout=30) as client:
            assert client.login(upn, password)[0] == "OK"
            assert client.select("INBOX", readonly=True) == ("OK", [b"1"])
    # systemd counts an end by SIGTERM as a clean stop
    assert proxy.process.returncode == -signal.SIGTERM
    assert b"Traceback" not in proxy.errors
