"""``exoimap token print``: the token and nothing else on stdout, refreshed when it expires
within five minutes, exit code 3 when a sign-in is needed, never onto a terminal unless
``--force``, every call audited without the token; against the sandbox tenant."""

from __future__ import annotations

import base64
import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.cli import main
from exoimap.config import Paths
from exoimap.sandbox.tenant import SandboxTenant
from tests.cli.sync_helpers import isolated_home, signed_in_account
from tests.cli.token_helpers import digest, imap_accepts


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


@pytest.fixture
def short_tokens(sandbox_tenant: SandboxTenant) -> Iterator[None]:
    """The sandbox issues access tokens living 290 s: each one expires within five minutes."""
    sandbox_tenant.admin.configure(access_token_lifetime=290)
    try:
        yield
    finally:
        sandbox_tenant.admin.configure(access_token_lifetime=3599)  # the tenant is shared


def token_print(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["token", "print", *args])
    out, err = capsys.readouterr()
    return code, out, err


def records_of(event: str) -> list[audit.AuditRecord]:
    return [r for r in audit.read_records(Paths.from_env().audit_dir) if r.event == event]


def handed_out_records() -> list[audit.AuditRecord]:
    return records_of("token.handed_out")


def audit_text() -> str:
    return "".join(p.read_text() for p in sorted(Paths.from_env().audit_dir.glob("*.jsonl")))


def test_prints_only_a_token_the_server_accepts_and_audits_the_call(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    capsys.readouterr()
    code, out, err = token_print(capsys, "work")
    assert (code, err) == (0, "")
    assert out.endswith("\n")
    assert out.count("\n") == 1
    token = out.strip()
    assert imap_accepts(sandbox_tenant, upn, token)

    (record,) = handed_out_records()
    assert record.account == "work"
    assert record.outcome == "success"
    assert record.data["via"] == "command"
    assert record.data["format"] == "token"
    assert 300 < int(record.data["expires_in"]) <= 3600
    # who asked: this test process's parent, by name and pid
    asked_by = record.data["requested_by"]
    assert asked_by
    assert asked_by[0].endswith(f"[{os.getppid()}]")
    leaked = token in audit_text()
    assert not leaked


def test_xoauth2_and_json_formats(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    capsys.readouterr()
    token = token_print(capsys, "work")[1].strip()

    code, out, _ = token_print(capsys, "work", "--format", "xoauth2")
    assert code == 0
    decoded = base64.b64decode(out.strip(), validate=True)
    expected = f"user={upn}\x01auth=Bearer {token}\x01\x01".encode()
    assert digest(decoded) == digest(expected)

    code, out, _ = token_print(capsys, "work", "--json")
    assert code == 0
    document = json.loads(out)
    assert digest(document["token"]) == digest(token)
    assert document["account"] == "work"
    assert document["format"] == "token"
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
    assert document["expires_at"] == claims["exp"]
    assert abs(document["expires_in"] - (claims["exp"] - time.time())) < 60

    code, out, _ = token_print(capsys, "work", "--json", "--format=xoauth2")
    assert digest(json.loads(out)["token"]) == digest(base64.b64encode(decoded).decode())
    assert [r.data["format"] for r in handed_out_records()] == [
        "token", "xoauth2", "token", "xoauth2",
    ]  # fmt: skip


def test_refreshes_a_token_that_expires_within_five_minutes(
    sandbox_tenant: SandboxTenant,
    home: Path,
    capsys: pytest.CaptureFixture[str],
    short_tokens: None,
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 1})  # its token lives 290 s
    capsys.readouterr()
    first = digest(token_print(capsys, "work")[1])
    second = digest(token_print(capsys, "work")[1])
    assert first != second  # each was too short-lived to hand out as it was
    sandbox_tenant.admin.configure(access_token_lifetime=3599)
    third = digest(token_print(capsys, "work")[1])
    fourth_token = token_print(capsys, "work")[1].strip()
    assert third != second
    assert digest(fourth_token + "\n") == third  # good for an hour: handed out again as it is
    assert imap_accepts(sandbox_tenant, upn, fourth_token)
    assert len(records_of("token.refreshed")) == 3


def test_min_validity_asks_for_a_token_that_lives_longer(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox_tenant.admin.configure(access_token_lifetime=1000)
    try:
        signed_in_account(sandbox_tenant, "work", {"INBOX": 1})  # its token lives 1000 s
        capsys.readouterr()
        first = digest(token_print(capsys, "work")[1])
        assert digest(token_print(capsys, "work", "--min-validity", "900")[1]) == first
        second = digest(token_print(capsys, "work", "--min-validity", "1200")[1])
        assert second != first  # 1000 s is too short: refreshed (and still 1000 s)
        sandbox_tenant.admin.configure(access_token_lifetime=3599)
        third = digest(token_print(capsys, "work", "--min-validity", "1200")[1])
    finally:
        sandbox_tenant.admin.configure(access_token_lifetime=3599)  # the tenant is shared
    assert third not in (first, second)
    assert digest(token_print(capsys, "work", "--min-validity", "1200")[1]) == third
    assert len(records_of("token.refreshed")) == 2
    code, _, err = token_print(capsys, "work", "--min-validity", "4000")
    assert code == 2
    assert "--min-validity" in err


def test_exit_code_3_with_one_line_when_a_sign_in_is_needed(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    assert main(["logout", "work"]) == 0
    capsys.readouterr()
    code, out, err = token_print(capsys, "work")
    assert code == 3
    assert out == ""
    assert err.count("\n") == 1
    assert "not signed in" in err
    assert "exoimap login work" in err
    (record,) = handed_out_records()
    assert record.outcome == "failure"
    assert "TokenExpiredOrRevoked" in record.data["error"]


def test_refuses_a_terminal_unless_forced(sandbox_tenant: SandboxTenant, home: Path) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 1})

    def on_terminal(*extra: str) -> tuple[int, bytes, str]:
        controller, terminal = pty.openpty()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "exoimap", "token", "print", "work", *extra],
                stdout=terminal,
                stderr=subprocess.PIPE,
                text=True,
                env=dict(os.environ),
                timeout=60,
            )
            os.close(terminal)
            shown = b""
            while True:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the terminal's other side is closed: all was read
                    break
                if not chunk:
                    break
                shown += chunk
        finally:
            os.close(controller)
        return done.returncode, shown, done.stderr

    code, shown, err = on_terminal()
    assert code == 2
    assert shown == b""
    assert "not printing an access token to a terminal" in err
    assert "--force" in err
    assert handed_out_records() == []

    code, shown, err = on_terminal("--force")
    assert code == 0, err
    assert shown.count(b".") == 2  # a JWT, on the terminal as asked
    assert len(handed_out_records()) == 1
