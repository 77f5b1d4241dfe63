"""``exoimap token print`` answered by a running agent: the same output, exit codes and
audit records as the command alone, from a client that loads almost nothing, also while the
agent runs a sync; a token it keeps is never handed out once the vault entry changed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.cli import main
from exoimap.config import Paths
from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.sandbox.tenant import SandboxTenant
from tests.agent import test_agent_cli as agent_cli
from tests.cli.sync_helpers import signed_in_account
from tests.cli.token_helpers import digest

home = agent_cli.home  # an isolated home with a socket path short enough


def handed_out() -> list[audit.AuditRecord]:
    records = audit.read_records(Paths.from_env().audit_dir)
    return [r for r in records if r.event == "token.handed_out"]


def test_the_agent_answers_token_print_and_audits_it(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    local = agent_cli._exoimap("token", "print", "work")  # no agent yet: from the vault
    assert local.returncode == 0, local.stderr
    agent_cli._start(capsys)

    served = agent_cli._exoimap("token", "print", "work")
    assert served.returncode == 0, served.stderr
    assert served.stderr == ""
    assert digest(served.stdout) == digest(local.stdout)  # still valid: the same token
    as_json = agent_cli._exoimap("-q", "token", "print", "work", "--json", "--format", "xoauth2")
    assert as_json.returncode == 0, as_json.stderr
    assert '"format": "xoauth2"' in as_json.stdout

    records = handed_out()
    assert [r.data["via"] for r in records] == ["command", "agent", "agent"]
    # who asked: the programs above the client process (this test's process first)
    assert records[1].data["requested_by"][0].endswith(f"[{os.getpid()}]")
    assert agent_cli._status()["requests"] == 0  # no sync ran: tokens are answered apart

    # After a logout the token the agent keeps in memory is not handed out again.
    assert main(["logout", "work"]) == 0
    gone = agent_cli._exoimap("token", "print", "work")
    assert gone.returncode == 3
    assert gone.stdout == ""
    assert gone.stderr.count("\n") == 1
    assert "exoimap login work" in gone.stderr
    last = handed_out()[-1]
    assert (last.data["via"], last.outcome) == ("agent", "failure")


def test_a_token_print_is_answered_while_the_agent_runs_a_sync(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sandbox_tenant.extra_server(ExchangeSettings.for_tests()) as server:
        agent_cli._slow_mailbox(sandbox_tenant, server, "slow")
        agent_cli._start(capsys)
        sync = agent_cli._sync_in_agent("slow")
        try:
            asked = agent_cli._exoimap("token", "print", "slow")
            assert asked.returncode == 0, asked.stderr
            assert asked.stdout.count(".") == 2  # a JWT
            assert agent_cli._status()["busy"]  # the sync was still running
        finally:
            _out, err = sync.communicate(timeout=300)
        assert sync.returncode == 0, err
    assert handed_out()[-1].data["via"] == "agent"


def test_the_token_client_loads_almost_nothing(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "lean", {"INBOX": 1})
    agent_cli._start(capsys)
    code = (
        "import sys, io\n"
        "from exoimap.agent.client import forward\n"
        "out = io.StringIO()\n"
        "code = forward(['token', 'print', 'lean'], stdout=out)\n"
        "print('code', code, 'dots', out.getvalue().count('.'),"
        " 'modules', ' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
    )
    last = done.stdout.strip().splitlines()[-1].split()
    assert last[:4] == ["code", "0", "dots", "2"], done.stderr
    loaded = set(last[5:])
    heavy = {"asyncio", "click", "ssl", "json", "socket", "msal", "cryptography", "exoimap.cli"}
    assert not loaded & heavy, loaded & heavy
