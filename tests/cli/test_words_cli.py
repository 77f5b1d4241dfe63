"""What a user reads (issue 23, item 10), through the real CLI against the sandbox tenant:
an error and its fix as two sentences, the tenant named as asked, a failed refresh shown
by `account list`, "1 message", one line per throttling wait, columns by display width,
and Ctrl-C ending a running sync with 130."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from rich.cells import cell_len

from exoimap import audit
from exoimap.auth.provider import TokenProvider
from exoimap.auth.vault import Vault
from exoimap.cli import EXIT_SIGN_IN, EXIT_USAGE, main
from exoimap.config import Paths, load_config
from exoimap.errors import TokenExpiredOrRevoked
from exoimap.sandbox.exchange.config import ExchangeSettings, ThrottlePolicy
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.conformance import sample_message
from tests.foreground import exoimap_command

from .sync_helpers import (
    add_account,
    isolated_home,
    login,
    new_mailbox,
    public_client_id,
    signed_in_account,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


def test_not_signed_in_is_a_sentence_and_its_fix_another(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_account(sandbox_tenant, "work", new_mailbox(sandbox_tenant, {"INBOX": 1}))
    capsys.readouterr()
    assert main(["sync", "work"]) == EXIT_SIGN_IN
    assert main(["token", "show", "work"]) == EXIT_SIGN_IN
    sync_err, token_err = capsys.readouterr().err.splitlines()
    assert sync_err == (
        "work: failed: account 'work' is not signed in. Sign in with `exoimap login work`."
    )
    assert token_err == (
        "exoimap: error: account 'work' is not signed in. Sign in with `exoimap login work`."
    )


def test_an_unknown_tenant_is_named_as_asked(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = sandbox_tenant.authority.rsplit("/", 1)[0]
    args = [
        "account", "add", "lost",
        "--email", "alice@contoso.onmicrosoft.com",
        "--cloud", "custom",
        "--authority", f"{base}/nosuch.example",
        "--ca-file", str(sandbox_tenant.ca_file),
        "--imap-host", sandbox_tenant.imap_host,
        "--client-id", public_client_id(sandbox_tenant),
    ]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    assert main(["login", "lost"]) == EXIT_SIGN_IN
    err = capsys.readouterr().err
    assert "does not know the tenant 'nosuch.example'" in err
    assert "organizations" not in err


def test_account_list_says_when_the_last_refresh_failed(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    capsys.readouterr()
    assert main(["account", "list"]) == 0
    assert (
        capsys.readouterr().out.rstrip("\n").endswith("\tsigned in, refresh token used 0 days ago")
    )
    sandbox_tenant.admin.revoke_sessions(upn)
    provider = TokenProvider(load_config().account("work"), vault=Vault.from_paths())
    with pytest.raises(TokenExpiredOrRevoked):
        provider.token_info(min_validity=3700)  # what sync does once the token runs out
    assert main(["account", "list"]) == 0
    state = capsys.readouterr().out.rstrip("\n").split("\t")[-1]
    assert state.startswith("signed in (last refresh failed: the refresh token was revoked")
    assert state.endswith("; run `exoimap login work`)")
    # signing in again clears it (tokens are stamped in whole seconds: move past the
    # second of the revocation)
    sandbox_tenant.admin.advance_clock(1.5)
    try:
        login(sandbox_tenant, "work", upn)
    finally:
        sandbox_tenant.admin.advance_clock(-1.5)
    capsys.readouterr()
    assert main(["account", "list"]) == 0
    assert "last refresh failed" not in capsys.readouterr().out


def test_counts_have_their_plural_and_wide_names_keep_the_columns(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = new_mailbox(sandbox_tenant, {"INBOX": 2})
    exchange = sandbox_tenant.exchange
    for n, folder in enumerate(["共有", "Zürich", "Zürich", "Zürich"]):
        if n < 2:
            store = exchange.server.mailboxes.get(upn).store
            exchange.run(store.create_folder_now, folder)
        exchange.deliver(upn, sample_message(n, 700), folder=folder)
    add_account(sandbox_tenant, "work", upn)
    login(sandbox_tenant, "work", upn)
    capsys.readouterr()
    assert main(["sync", "work"]) == 0
    out = capsys.readouterr().out
    assert "  work/共有: 1 message, " in out
    assert re.search(r"\b1 (messages|folders|files|flag changes)\b", out) is None
    assert main(["archive", "stats", "work"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.search(r"\d+ messages? ", line)]
    assert {row.split()[0] for row in rows} >= {"INBOX", "共有", "Zürich"}
    # the counts end in the same terminal column, whatever the names' widths
    ends = {cell_len(re.split(r"(?<=\d) message", row)[0]) for row in rows}
    assert len(ends) == 1, rows
    assert re.search(r"共有 +1 message ", out)


def test_throttling_is_one_line_per_wait_and_the_total_is_wall_time(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # After a first sync's FETCH the mailbox is over its limit for 4 s; the next sync
    # starts within that and is asked to wait 4.5 s (the window is over by then).
    throttle = ThrottlePolicy(window_seconds=4.0, max_messages=2, backoff_ms=4500)
    with sandbox_tenant.extra_server(ExchangeSettings.for_tests(throttle=throttle)) as server:
        upn = signed_in_account(sandbox_tenant, "busy", {"INBOX": 3}, exchange=server)
        assert main(["sync", "busy"]) == 0
        server.deliver(upn, sample_message(4, 600), folder="INBOX")
        server.deliver(upn, sample_message(5, 600), folder="Archive")
        capsys.readouterr()
        assert main(["sync", "busy"]) == 0
    captured = capsys.readouterr()
    waits = [
        r
        for r in audit.read_records(Paths.from_env().audit_dir)
        if r.event == "imap.throttled" and r.account == "busy"
    ]
    assert waits
    said = [line for line in captured.out.splitlines() if "slow down" in line]
    assert said == ["  busy: the server asked us to slow down; waiting 4.5 s."] * len(waits)
    assert "throttl" not in captured.err.lower()  # no second and third line in the log
    summary = captured.out.splitlines()[-1]
    match = re.search(r" in ([\d.]+) s, throttled (\d+) times? \(([\d.]+) s waited\)\.$", summary)
    assert match, summary
    run, count, waited = float(match[1]), int(match[2]), float(match[3])
    assert count == len(waits)
    assert 4.0 <= waited <= run


def _sigint_disposition(pid: int) -> str:
    """Whether a process ignores, blocks or catches SIGINT (``/proc/PID/status``)."""
    masks = dict(
        line.split(":\t", 1)
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith(("SigBlk", "SigIgn", "SigCgt"))
    )
    bit = 1 << (signal.SIGINT - 1)
    return ", ".join(f"{k} {'yes' if int(v, 16) & bit else 'no'}" for k, v in masks.items())


def test_ctrl_c_ends_a_running_sync_with_130(sandbox_tenant: SandboxTenant, home: Path) -> None:
    with sandbox_tenant.extra_server(ExchangeSettings.for_tests()) as slow:
        upn = signed_in_account(sandbox_tenant, "slow", {"INBOX": 0}, exchange=slow)
        for n in range(30):  # 300 KB each: one server write per message, each 0.2 s late
            slow.deliver(upn, sample_message(n, 300_000), folder="INBOX")
        slow.faults.delay = 0.2
        sync = subprocess.Popen(
            exoimap_command("sync", "slow"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        try:
            staged = Paths.from_env().archive_dir("slow") / "maildir"
            deadline = time.monotonic() + 60
            while not any(p.is_file() for p in staged.rglob("tmp/*")):  # fetching now
                assert sync.poll() is None, sync.communicate()
                assert time.monotonic() < deadline, "the sync never started fetching"
                time.sleep(0.05)
            # slower still, so that the sync cannot finish before the Ctrl-C arrives, however
            # late a busy machine runs this process again
            slow.faults.delay = 5.0
            sigint = _sigint_disposition(sync.pid)
            sync.send_signal(signal.SIGINT)
            out, err = sync.communicate(timeout=60)
        finally:
            slow.faults.clear()
            if sync.poll() is None:
                sync.kill()
        assert sync.returncode == 130, f"SIGINT in the child: {sigint}\n{out}{err}"
        assert err.splitlines()[-1] == (
            "exoimap: interrupted; what was stored is kept. Run the same command again to go on."
        )
        assert main(["sync", "slow"]) == 0  # and the next run goes on


def test_usage_errors_still_exit_2(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "nosuch"]) == EXIT_USAGE
    assert capsys.readouterr().err.endswith("(accounts: none configured).\n")
