"""``exoimap agent serve --watch`` as systemd runs it (the unit of ``schedule install --watch
--agent``): a real agent process, a real ``NOTIFY_SOCKET`` (an AF_UNIX datagram socket) and
``WATCHDOG_USEC``. READY comes once, when the agent serves and watches; the watch feeds the
watchdog; STOPPING comes on SIGTERM, and when the watch ends for want of a sign-in the agent
stops with exit code 3, as ``exoimap watch`` does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from exoimap.agent import control
from exoimap.cli import EXIT_SIGN_IN, main
from exoimap.config import Paths
from exoimap.sandbox.tenant import SandboxTenant
from tests.cli.sync_helpers import signed_in_account
from tests.cli.test_watch_cli import PATIENCE, _Manager

from .test_agent_cli import _status, home
from .test_agent_watch import _watch_state, eventually

__all__ = ["home"]  # the fixture, shared with the agent's other tests


def _serve(notify_path: Path, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="400000")
    return subprocess.Popen(
        [sys.executable, "-m", "exoimap", "agent", "serve", "--idle-timeout", "0", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _lines(messages: list[str]) -> list[str]:
    return [line for message in messages for line in message.splitlines()]


def test_a_watching_agent_says_ready_once_feeds_the_watchdog_and_says_stopping(
    sandbox_tenant: SandboxTenant, home: Path
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 2})
    manager = _Manager(home.parent / "notify.sock")
    try:
        agent = _serve(home.parent / "notify.sock", "--watch", "work")
        try:
            manager.wait_for({"READY=1"})
            # READY means serving: the agent answers at once
            assert control.status(Paths.from_env()) is not None
            got = manager.wait_for({"WATCHDOG=1"})
            # the watchdog keeps coming, at half of WATCHDOG_USEC (0.2 s) or sooner
            manager.wait_for({"WATCHDOG=1"}, after=len(manager.received))
            manager.wait_for({"STATUS=work: watching"}, after=0)
        finally:
            agent.send_signal(signal.SIGTERM)
            _out, err = agent.communicate(timeout=PATIENCE)
        assert agent.returncode == 0, err
        everything = _lines(manager.wait_for({"STOPPING=1"}))
    finally:
        manager.close()
    ready = next(m for m in got if "READY=1" in m.splitlines())
    assert f"STATUS=serving on {Paths.from_env().agent_socket}, watching work" in ready
    assert everything.count("READY=1") == 1  # the agent's; its watch does not say it again
    assert everything.count("STOPPING=1") == 1
    assert everything.index("STOPPING=1") > everything.index("WATCHDOG=1")


def test_a_watching_agent_whose_sign_in_needs_the_user_stops_with_code_3(
    sandbox_tenant: SandboxTenant, home: Path
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    assert main(["logout", "work"]) == 0
    manager = _Manager(home.parent / "notify.sock")
    try:
        agent = _serve(home.parent / "notify.sock", "--watch", "--all")
        _out, err = agent.communicate(timeout=PATIENCE)  # it stops on its own
        everything = _lines(manager.wait_for({"READY=1", "STOPPING=1"}))
    finally:
        manager.close()
    assert agent.returncode == EXIT_SIGN_IN, err
    assert "STATUS=work: signin_needed" in everything
    assert "watch: work: signin_needed" in err  # its log: stderr, the journal's
    assert "the watch ended: stopping (the agent runs as a watch service)" in err


def test_an_agent_started_in_the_background_is_no_service_and_never_notifies(
    sandbox_tenant: SandboxTenant, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`agent start` from inside a service (its NOTIFY_SOCKET in the environment): the
    detached agent is not that service's main process, so it gets none of systemd's
    variables and says nothing to the manager."""
    signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    manager = _Manager(home.parent / "notify.sock")
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", str(home.parent / "notify.sock"))
        monkeypatch.setenv("WATCHDOG_USEC", "400000")
        assert main(["agent", "start", "--watch", "work"]) == 0
        pid = int(str(_status()["pid"]))
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert not [v for v in environ if v.startswith((b"NOTIFY_SOCKET=", b"WATCHDOG_"))]
        eventually(lambda: _watch_state("work") == "watching", "the account watched")
        assert main(["agent", "stop"]) == 0
    finally:
        manager.close()
    assert manager.received == []
