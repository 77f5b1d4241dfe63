"""``exoimap agent start --watch``: the watch inside a real agent process, against the
sandbox tenant; the agent keeps running syncs for its clients meanwhile, outlives its idle
timeout while it watches, and stops cleanly."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from exoimap.agent import control
from exoimap.cli import EXIT_FAILURE, EXIT_USAGE, main
from exoimap.config import Paths
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.conformance import sample_message
from tests.cli.sync_helpers import signed_in_account

from .test_agent_cli import _exoimap, _status, home

__all__ = ["home"]  # the fixture, shared with the agent's other tests

#: Generous: the watch usually takes well under a second; a loaded machine may be slow.
PATIENCE = 60.0


def eventually(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + PATIENCE
    while not check():
        assert time.monotonic() < deadline, f"not within {PATIENCE:g} s: {what}"
        time.sleep(0.1)


def archived(name: str) -> int:
    root = Paths.from_env().archive_dir(name) / "maildir"
    return sum(1 for p in root.rglob("*") if p.is_file() and p.parent.name == "cur")


def _watch_state(name: str) -> str:
    watch = _status()["watch"]
    assert isinstance(watch, dict)
    return next(str(m["state"]) for m in watch["mailboxes"] if m["account"] == name)


def test_the_agent_watches_runs_syncs_meanwhile_and_outlives_its_idle_timeout(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 2, "Notes": 1})
    signed_in_account(sandbox_tenant, "other", {"INBOX": 2})
    health_file = home / "health.json"
    argv = ["agent", "start", "--watch", "work", "--idle-timeout", "1", "--poll-interval", "1"]
    # IDLE re-issued well within the test tenant's 30 s limit for a silent session
    argv += ["--idle-interval", "10", "--health-file", str(health_file), "--metrics-port", "0"]
    assert main(argv) == 0
    assert "watching work" in capsys.readouterr().out

    eventually(lambda: archived("work") == 3, "the watch's first sync")
    eventually(lambda: _watch_state("work") == "watching", "the account watched")
    sandbox_tenant.exchange.deliver(upn, sample_message(901, 800), folder="INBOX")
    eventually(lambda: archived("work") == 4, "new mail in INBOX (IDLE, in the agent)")
    sandbox_tenant.exchange.deliver(upn, sample_message(902, 800), folder="Notes")
    eventually(lambda: archived("work") == 5, "new mail in Notes (STATUS poll, in the agent)")

    # a sync of another account still runs in the agent, beside the watch
    other = _exoimap("sync", "other")
    assert other.returncode == 0, other.stderr
    assert "other: fetched 2 messages" in other.stdout
    assert _status()["requests"] == 1

    time.sleep(2)  # past the idle timeout: a watching agent goes on
    assert _status()["watch"]["active"] is True  # type: ignore[index]
    assert main(["agent", "status"]) == 0
    out = capsys.readouterr().out
    assert "does not stop while it watches" in out
    assert "Watching work: " in out
    assert " (IDLE on INBOX, Sent Items), " in out
    assert f"Health file: {health_file}" in out
    url = _status()["watch"]["metrics_url"]  # type: ignore[index]
    assert f"Metrics: {url}" in out

    def served() -> str:
        with urllib.request.urlopen(url, timeout=30) as response:
            return str(response.read().decode())

    synced = 'exoimap_messages_synced_total{account="work"} 5.0'
    try:
        eventually(lambda: synced in served(), "the metrics counting every message")
    except AssertionError:
        counted = [line for line in served().splitlines() if "messages_synced" in line]
        raise AssertionError(f"expected {synced!r}; served {counted}") from None
    metrics = served()
    current = [line for line in metrics.splitlines() if line.endswith("} 1.0")]
    states = [line for line in current if line.startswith("exoimap_watch_state{")]
    # one state at a time; a poll may have found a change and be syncing it right now
    assert len(states) == 1
    assert states[0].split('state="')[1].split('"')[0] in ("watching", "syncing")
    assert 'exoimap_watch_state{account="work",state="starting"} 0.0' in metrics
    document = json.loads(health_file.read_text())
    assert [m["account"] for m in document["mailboxes"]] == ["work"]
    assert document["mailboxes"][0]["messages_synced"] == 5

    assert main(["agent", "stop"]) == 0
    assert "Agent stopped." in capsys.readouterr().out
    log = control.log_file(Paths.from_env()).read_text()
    assert "watch: work" in log
    assert "watch ended" in log
    assert "Traceback" not in log
    assert main(["verify", "work", "--deep"]) == 0


def test_a_watch_whose_sign_in_needs_the_user_ends_and_the_agent_may_idle_out(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    assert main(["logout", "work"]) == 0
    health_file = home / "health.json"
    argv = ["agent", "start", "--watch", "--all", "--idle-timeout", "2"]
    assert main([*argv, "--health-file", str(health_file)]) == 0
    paths = Paths.from_env()
    assert control.wait_stopped(paths, PATIENCE)  # nothing left to watch, then idle
    mailbox = json.loads(health_file.read_text())["mailboxes"][0]
    assert mailbox["state"] == "signin_needed"
    assert mailbox["last_error"].startswith("sign-in: ")
    log = control.log_file(paths).read_text()
    assert "watch: work: signin_needed" in log
    assert "idle for" in log


def test_watch_names_need_watch_and_a_running_agent_that_does_not_watch_says_so(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    assert main(["agent", "start", "work"]) == EXIT_USAGE
    assert "account names, --all and --metrics-port go with --watch" in capsys.readouterr().err
    assert main(["agent", "start", "--watch", "nosuch"]) == EXIT_USAGE
    assert "nosuch" in capsys.readouterr().err
    assert not control.is_running(Paths.from_env())

    assert main(["agent", "start", "--idle-timeout", "300"]) == 0
    capsys.readouterr()
    assert main(["agent", "start", "--watch", "work"]) == EXIT_FAILURE
    captured = capsys.readouterr()
    assert "already running" in captured.out
    assert "It does not watch: stop it (`exoimap agent stop`)" in captured.err
    assert _status()["watch"] is None
    assert main(["agent", "stop"]) == 0
