"""``exoimap watch`` as systemd runs it: a real process, a real ``NOTIFY_SOCKET`` (an
AF_UNIX datagram socket), ``WATCHDOG_USEC``, the health file, and SIGTERM to stop it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from exoimap import audit
from exoimap.app.sd_notify import Notifier
from exoimap.cli import main
from exoimap.config import Paths
from exoimap.sandbox.tenant import SandboxTenant

from .sync_helpers import isolated_home, signed_in_account

PATIENCE = 60.0


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolated_home(tmp_path, monkeypatch)


class _Manager:
    """The service manager's side of ``NOTIFY_SOCKET``: reads every notification as it
    comes (as systemd does; a reader that stops reading makes the notifier drop them)."""

    def __init__(self, path: Path) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(0.2)
        self.received: list[str] = []
        self._closing = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while not self._closing.is_set():
            try:
                self.received.append(self._sock.recv(4096).decode())
            except TimeoutError:
                continue

    def wait_for(self, until: set[str], *, after: int = 0) -> list[str]:
        """The notifications from number ``after`` on, once each of ``until`` is among them."""
        deadline = time.monotonic() + PATIENCE
        while not until <= {line for m in self.received[after:] for line in m.splitlines()}:
            if time.monotonic() > deadline:
                raise AssertionError(f"not received: {until}; got {self.received[after:]}")
            time.sleep(0.02)
        return self.received[after:]

    def close(self) -> None:
        self._closing.set()
        self._reader.join()
        self._sock.close()


def _health(path: Path) -> dict[str, object]:
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            document = json.loads(path.read_text())
            mailbox = document["mailboxes"][0]
            if mailbox["state"] == "watching" and mailbox["syncs"] >= 1:
                return dict(document)
        except (OSError, ValueError, IndexError, KeyError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"the health file never said 'watching': {path}")
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_watch_under_systemd_notifies_writes_health_and_stops_on_sigterm(
    sandbox_tenant: SandboxTenant, home: Path, tmp_path: Path
) -> None:
    signed_in_account(sandbox_tenant, "work", {"INBOX": 2})
    notify_path = tmp_path / "notify.sock"
    port = _free_port()
    health_path = tmp_path / "health.json"
    command = [
        sys.executable, "-m", "exoimap", "watch", "work",
        "--health-file", str(health_path), "--metrics-port", str(port),
    ]  # fmt: skip
    manager = _Manager(notify_path)
    try:
        env = dict(os.environ, NOTIFY_SOCKET=str(notify_path), WATCHDOG_USEC="400000")
        process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            got = manager.wait_for({"READY=1", "WATCHDOG=1"})
            health = _health(health_path)
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                metrics = r.read().decode()
            # the watchdog keeps coming while the watch runs
            manager.wait_for({"WATCHDOG=1"}, after=len(manager.received))
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=PATIENCE)
        assert process.returncode == 0, err
        stopping = manager.wait_for({"STOPPING=1"})
    finally:
        manager.close()
    assert any(line.startswith("STATUS=work: ") for m in got for line in m.splitlines())
    assert stopping
    assert health["pid"] == process.pid
    assert oct(health_path.stat().st_mode & 0o777) == "0o600"
    assert "work: watching (IDLE on INBOX" in out
    assert "watch stopped" in err
    assert 'exoimap_watch_state{account="work",state="watching"} 1.0' in metrics
    assert 'exoimap_watch_state{account="work",state="starting"} 0.0' in metrics
    audit_log = "".join(p.read_text() for p in Paths.from_env().audit_dir.glob("*.jsonl"))
    assert '"event":"watch.state"' in audit_log
    # the watch's token came from a short-lived `exoimap token print` it started, so the
    # watch itself never loads MSAL (see exoimap.auth.token_child)
    records = audit.read_records(Paths.from_env().audit_dir)
    handed_out = [r for r in records if r.event == "token.handed_out"]
    assert handed_out
    assert all(r.outcome == "success" for r in handed_out)
    assert all(r.data["requested_by"][0].endswith(f"[{process.pid}]") for r in handed_out)


def test_the_notifier_does_nothing_outside_systemd_and_reads_the_watchdog() -> None:
    assert not Notifier({}).ready()
    assert Notifier({"NOTIFY_SOCKET": "relative/path"}).enabled is False
    systemd = Notifier({"NOTIFY_SOCKET": "@abstract", "WATCHDOG_USEC": "30000000"})
    assert systemd.enabled
    assert systemd.watchdog_seconds == 30.0
    # the watchdog is for another process: not ours to feed
    other = Notifier({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "5", "WATCHDOG_PID": "1"})
    assert other.watchdog_seconds is None


def test_the_notifier_never_blocks_when_nobody_reads(tmp_path: Path) -> None:
    """A manager whose queue is full (it does not read) costs dropped notifications, never a
    frozen watch: the heartbeat sends from the event loop."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        notifier = Notifier({"NOTIFY_SOCKET": str(path)})
        sent: list[bool] = []
        sender = threading.Thread(  # the kernel queues only a few datagrams
            target=lambda: sent.extend(notifier.watchdog() for _ in range(500)), daemon=True
        )
        sender.start()
        sender.join(30)
        assert not sender.is_alive(), f"blocked after {len(sent)} notifications"
        assert sent[0] is True
        assert sent[-1] is False
        assert sock.recv(100) == b"WATCHDOG=1"  # what was queued is intact


def test_the_notifier_sends_to_an_abstract_socket() -> None:
    name = f"exoimap-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).status("two\nlines")
        assert sock.recv(100) == b"STATUS=two lines"


def test_watch_exits_3_when_the_sign_in_needs_the_user(
    sandbox_tenant: SandboxTenant, home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No usable sign-in (here: signed out; in life: a refresh token revoked or unused for
    90 days): the watch cannot go on without the user. It says so, records it in the health
    file, and exits with 3, which the systemd unit does not restart."""
    signed_in_account(sandbox_tenant, "work", {"INBOX": 1})
    assert main(["logout", "work"]) == 0
    health_path = tmp_path / "health.json"
    capsys.readouterr()
    assert main(["watch", "work", "--health-file", str(health_path)]) == 3
    err = capsys.readouterr().err
    assert "work: sign-in needed:" in err
    assert "run `exoimap login work`" in err
    mailbox = json.loads(health_path.read_text())["mailboxes"][0]
    assert mailbox["state"] == "signin_needed"
    assert mailbox["syncs"] == 0
    assert mailbox["last_error"].startswith("sign-in: ")
