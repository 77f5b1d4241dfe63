"""Issue 23, item 4: ``exoimap login`` with the browser flow against the sandbox's own public
app, as a user runs it (a new process; the sign-in page driven over HTTPS like a browser),
and the loopback wait ending after ``--timeout`` with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exoimap.auth.loopback import REGISTERED_REDIRECT_URI
from exoimap.cli import EXIT_SIGN_IN, main
from exoimap.sandbox.identity import PUBLIC_APP, RunningIdentity

from .conftest import client_id, new_user
from .test_signin_flows_e2e import drive_sign_in


def add_browser_account(idp: RunningIdentity, name: str, upn: str) -> None:
    assert main(["account", "add", name, "--email", upn, "--flow", "browser",
                 "--cloud", "custom", "--authority", idp.authority, "--imap-host", "127.0.0.1",
                 "--ca-file", str(idp.ca_file),
                 "--client-id", client_id(idp, PUBLIC_APP)]) == 0  # fmt: skip


def test_the_sandbox_app_registers_what_the_docs_say() -> None:
    docs = Path(__file__).parents[2] / "docs" / "setup-microsoft-365.md"
    assert f"redirect URI `{REGISTERED_REDIRECT_URI}`" in docs.read_text()


def test_browser_login_with_the_sandbox_default_app(
    idp: RunningIdentity, exo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = idp.sandbox.directory.find_app(PUBLIC_APP)
    assert app is not None
    assert app.redirect_uris == [REGISTERED_REDIRECT_URI]  # as seeded, untouched
    upn = new_user(idp, password="Browser-Cli-1!")
    add_browser_account(idp, "desk", upn)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    with subprocess.Popen(
        [sys.executable, "-m", "exoimap", "login", "desk", "--timeout", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as process:
        assert process.stderr is not None
        said = []
        for line in process.stderr:  # no display: the address is printed for the user
            said.append(line)
            if line.startswith("https://"):
                url = line.strip()
                break
        else:
            raise AssertionError(f"no sign-in address was printed: {said}")
        assert "redirect_uri=http%3A%2F%2Flocalhost%3A" in url
        landed = drive_sign_in(url, idp.ca_file, upn, "Browser-Cli-1!")
        assert landed.status_code == 200
        assert "Sign-in finished" in landed.text
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert f"Signed in 'desk' as {upn}" in out


def test_the_loopback_wait_ends_after_the_timeout_with_a_clear_message(
    idp: RunningIdentity,
    exo_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    add_browser_account(idp, "desk", new_user(idp))
    capsys.readouterr()
    # Nobody finishes the sign-in (as when the browser shows AADSTS50011).
    assert main(["login", "desk", "--timeout", "1"]) == EXIT_SIGN_IN
    error = capsys.readouterr().err.splitlines()[-1]
    assert error.startswith(
        "exoimap: error: account 'desk': the browser sign-in did not finish within 1 s "
        "(nothing came back to http://localhost:"
    )
    assert "AADSTS50011" in error
    assert "redirect URI http://localhost." in error
    assert "`exoimap login desk` again (--timeout SECONDS to wait longer)" in error
    assert main(["login", "desk", "--timeout", "0"]) == 2  # at least one second
