"""``exoimap agent`` end to end: a real agent process, the real ``exoimap`` command as its
client, the sandbox tenant as the server (device-code sign-in, IMAP over TLS)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from exoimap.agent import control, server, wire
from exoimap.cli import main
from exoimap.config import Paths
from exoimap.sandbox.exchange.config import ExchangeSettings
from exoimap.sandbox.exchange.server import ExchangeControl
from exoimap.sandbox.tenant import SandboxTenant
from exoimap.store.conformance import sample_message
from tests.cli.sync_helpers import isolated_home, signed_in_account
from tests.foreground import exoimap_command


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # A short path: a Unix socket's path holds at most 107 bytes, and pytest's are long.
    short = Path(tempfile.mkdtemp(prefix="exo-", dir="/tmp"))
    isolated_home(short, monkeypatch)
    yield short / "home"
    _kill_agents_of(short / "home")
    shutil.rmtree(short, ignore_errors=True)


def _kill_agents_of(home: Path) -> None:
    """Every process started for ``home`` (its ``EXOIMAP_HOME``): an agent a test's sync
    started may still be starting when the test ends, before it holds its lock, and would
    otherwise outlive the test (by its hour of idle timeout)."""
    wanted = f"EXOIMAP_HOME={home}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # gone already, or not ours to read
            continue
        if wanted in environ:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)


def _agent_pid(paths: Paths) -> int | None:
    lock = paths.agent_socket.parent / "agent.lock"
    if not control.is_running(paths):
        return None
    return int(lock.read_text().split()[0])


def _signal_agent(signum: int) -> Paths:
    """Send the running agent ``signum`` and wait until it has exited."""
    paths = Paths.from_env()
    pid = _agent_pid(paths)
    assert pid is not None
    os.kill(pid, signum)
    assert control.wait_stopped(paths, 20)
    return paths


def _exoimap(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The ``exoimap`` command as a user runs it (a new process, through the console
    script's entry point, so a running agent is used)."""
    return subprocess.run(
        [sys.executable, "-m", "exoimap", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=timeout,
    )


def _status() -> dict[str, object]:
    answer = control.status(Paths.from_env())
    assert answer is not None, "no agent answered"
    return answer


SLOW_MESSAGES = 40


def _slow_mailbox(tenant: SandboxTenant, server: ExchangeControl, name: str) -> None:
    """An account whose sync takes seconds: 300 KB messages (the server sends a write per
    256 KB of FETCH data, so one per message), and every server write waits 0.1 s."""
    upn = signed_in_account(tenant, name, {"INBOX": 0}, exchange=server)
    for n in range(SLOW_MESSAGES):
        server.deliver(upn, sample_message(n, 300_000), folder="INBOX")
    server.faults.delay = 0.1


def _sync_in_agent(name: str) -> subprocess.Popen[str]:
    """``exoimap sync NAME`` started in the background; returns once the agent runs it."""
    client = subprocess.Popen(
        exoimap_command("sync", name),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    deadline = time.monotonic() + 60
    while not _status()["busy"]:
        assert time.monotonic() < deadline, "the agent never started the sync"
        time.sleep(0.05)
    return client


def _start(capsys: pytest.CaptureFixture[str], *extra: str) -> None:
    assert main(["agent", "start", *extra]) == 0
    assert "Agent started" in capsys.readouterr().out


def test_sync_in_the_agent_prints_and_exits_as_in_its_own_process(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upn = signed_in_account(sandbox_tenant, "work", {"INBOX": 5, "Archive": 3})
    _start(capsys)
    paths = Paths.from_env()
    assert paths.agent_socket.stat().st_mode & 0o777 == 0o600
    assert paths.agent_socket.parent.stat().st_mode & 0o777 == 0o700

    first = _exoimap("sync", "work")
    assert first.returncode == 0, first.stderr
    assert "work: fetched 8 messages" in first.stdout
    assert _status()["requests"] == 1

    again = _exoimap("sync", "work")
    assert again.returncode == 0, again.stderr
    assert "work: fetched 0 messages" in again.stdout
    status = _status()
    assert status["requests"] == 2
    assert status["connections_reused"] == 1  # the second sync did not sign in again
    assert status["connections_kept"] == 1

    # Between syncs the agent holds no lock: a sync in this process works meanwhile.
    assert main(["sync", "work", "--no-agent"]) == 0
    assert "work: fetched 0 messages" in capsys.readouterr().out
    assert _status()["requests"] == 2

    sandbox_tenant.exchange.deliver(upn, sample_message(900, 2000), folder="INBOX")
    new_mail = _exoimap("sync", "work")
    assert "work: fetched 1 message" in new_mail.stdout, new_mail.stderr

    unknown = _exoimap("sync", "nosuch")
    assert unknown.returncode == 2
    assert "nosuch" in unknown.stderr
    assert _status()["requests"] == 4

    assert main(["verify", "work", "--deep"]) == 0

    # Every connection the agent opened is audited as closed, even the one it kept open
    # until it stopped: the agent has an auditor of its own between syncs.
    assert main(["agent", "stop"]) == 0
    capsys.readouterr()
    assert main(["audit", "query", "--account", "work", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    opened = {r["data"]["connection"] for r in records if r["event"] == "imap.connected"}
    closed = {r["data"]["connection"] for r in records if r["event"] == "imap.closed"}
    assert opened
    assert opened == closed
    assert main(["audit", "verify"]) == 0  # the hash chain holds with two writers


def test_a_client_loads_almost_nothing_when_the_agent_runs_the_sync(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "lean", {"INBOX": 2})
    _start(capsys)
    code = (
        "import sys\n"
        "from exoimap.agent.client import forward\n"
        "code = forward(['sync', 'lean'])\n"
        "print('code', code, 'modules', ' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
    )
    last = done.stdout.strip().splitlines()[-1].split()
    assert last[:2] == ["code", "0"], done.stdout + done.stderr
    loaded = set(last[3:])
    heavy = {"asyncio", "click", "ssl", "sqlite3", "json", "socket", "exoimap.cli", "typing"}
    assert not loaded & heavy, loaded & heavy


def test_status_stop_and_the_command_running_alone_again(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "solo", {"INBOX": 2})
    _start(capsys, "--idle-timeout", "300")
    assert main(["agent", "start"]) == 0
    assert "already running" in capsys.readouterr().out

    assert main(["agent", "status"]) == 0
    out = capsys.readouterr().out
    assert "Agent running: pid" in out
    assert "stops after 300 s idle" in out

    assert main(["agent", "stop"]) == 0
    assert "Agent stopped." in capsys.readouterr().out
    paths = Paths.from_env()
    assert not paths.agent_socket.exists()
    assert main(["agent", "status"]) == 1
    assert "No agent is running." in capsys.readouterr().out

    alone = _exoimap("sync", "solo")
    assert alone.returncode == 0, alone.stderr
    assert "solo: fetched 2 messages" in alone.stdout


def test_a_killed_agent_is_no_obstacle(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "dead", {"INBOX": 3})
    _start(capsys)
    paths = _signal_agent(signal.SIGKILL)
    assert paths.agent_socket.exists()  # left behind: nobody listens on it any more

    alone = _exoimap("sync", "dead")
    assert alone.returncode == 0, alone.stderr
    assert "dead: fetched 3 messages" in alone.stdout

    _start(capsys)  # a new agent replaces the stale socket
    assert _exoimap("sync", "dead").returncode == 0
    assert _status()["requests"] == 1


def test_an_idle_agent_stops_by_itself(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _start(capsys, "--idle-timeout", "1")
    paths = Paths.from_env()
    assert control.wait_stopped(paths, 20)
    assert not paths.agent_socket.exists()
    log = control.log_file(paths).read_text()
    assert "idle for" in log


def test_interrupting_the_client_interrupts_the_sync_and_nothing_is_lost(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sandbox_tenant.extra_server(ExchangeSettings.for_tests()) as slow:
        _slow_mailbox(sandbox_tenant, slow, "slow")
        _start(capsys)
        try:
            client = _sync_in_agent("slow")
            stored = Paths.from_env().archive_dir("slow") / "maildir"
            deadline = time.monotonic() + 60
            # the first message staged in tmp/ (a folder's batch commits at its end)
            while not any(p.is_file() for p in stored.rglob("tmp/*")):
                assert time.monotonic() < deadline, (
                    "nothing was staged",
                    client.poll(),
                    _status(),
                    sorted(str(p.relative_to(stored)) for p in stored.rglob("*")),
                )
                time.sleep(0.05)
            client.send_signal(signal.SIGINT)
            out, err = client.communicate(timeout=60)
        finally:
            slow.faults.clear()
        # the agent interrupted the sync as Ctrl-C would have, and said so through the client
        assert client.returncode == 130, out + err  # as the README's exit codes say
        assert "interrupted; what was stored is kept" in err
        assert not _status()["busy"]

        finished = _exoimap("sync", "slow")
        assert finished.returncode == 0, finished.stderr
        assert main(["verify", "slow", "--deep"]) == 0  # every message once, byte-exact
        assert f"{SLOW_MESSAGES} messages on the server" in capsys.readouterr().out


def test_a_busy_agent_lets_the_next_sync_run_in_its_own_process(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "quick", {"INBOX": 2})
    with sandbox_tenant.extra_server(ExchangeSettings.for_tests()) as slow:
        _slow_mailbox(sandbox_tenant, slow, "busy")
        _start(capsys)
        try:
            long_sync = _sync_in_agent("busy")
            meanwhile = _exoimap("sync", "quick")
            assert long_sync.poll() is None, "the slow sync ended too early to prove anything"
            long_out, long_err = long_sync.communicate(timeout=120)
        finally:
            slow.faults.clear()
    assert meanwhile.returncode == 0, meanwhile.stderr
    assert "quick: fetched 2 messages" in meanwhile.stdout
    assert "not using the agent" not in meanwhile.stderr  # busy: no need to say anything
    assert long_sync.returncode == 0, long_err
    assert f"busy: fetched {SLOW_MESSAGES} messages" in long_out
    assert _status()["requests"] == 1  # the quick one ran in its own process


def _never_run(argv: list[str], kept: object) -> int:
    raise AssertionError(f"no command should run here: {argv}")


def test_the_agent_is_free_before_its_client_hears_the_exit_code(home: Path) -> None:
    # A client that has its exit code may start the next sync at once: an agent still busy
    # with the last one would decline it (so it runs in its own process).
    agent = server.Agent(Paths.from_env(), run=lambda _argv, _kept: 0, idle_timeout=0)
    assert agent._refusal() is None  # accepted: busy until the run ends
    busy_at_exit: list[object] = []

    class NotingConnection(socket.socket):
        def sendall(self, data: Any, flags: int = 0) -> None:
            if bytes(data[:1]) == wire.EXIT:
                busy_at_exit.append(agent.status()["busy"])
            super().sendall(data, flags)

    ours, theirs = socket.socketpair()
    conn = NotingConnection(ours.family, ours.type, fileno=ours.detach())
    request = wire.RunRequest(wire.VERSION, False, None, os.getcwd(), ["sync"])
    with conn, theirs:
        agent._execute(server._Run(conn, request))
    assert busy_at_exit == [False]


def test_an_agent_whose_code_changed_declines_and_stops(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = server.Agent(Paths.from_env(), run=_never_run, idle_timeout=0)
    assert agent._refusal() is None
    newest, count = agent._fingerprint
    monkeypatch.setattr(server, "code_fingerprint", lambda: (newest + 1, count))
    agent._state.busy = False
    reason = agent._refusal()
    assert reason is not None
    assert "exoimap agent start" in reason
    assert agent.status()["busy"] is False
    assert agent._state.stopping


def test_status_is_json_over_the_socket(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _start(capsys)
    answer = _status()
    assert answer["data_dir"] == str(Paths.from_env().data_dir)
    json.dumps(answer)  # plain data, nothing secret: the socket carries no tokens
    assert set(answer) == {
        "pid", "started", "requests", "busy", "idle_timeout", "idle_for", "data_dir",
        "connections_kept", "connections_reused", "watch",
    }  # fmt: skip
    assert answer["watch"] is None  # started without --watch


def test_the_agent_works_in_the_clients_directory_and_runs_only_sync(
    sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signed_in_account(sandbox_tenant, "here", {"INBOX": 2})
    config = Paths.from_env().config_file
    text = config.read_text()
    config.write_text(text.replace("[accounts.here]\n", '[accounts.here]\narchive = "rel"\n'))
    _start(capsys)
    workdir = home.parent / "work"
    workdir.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "exoimap", "sync", "here"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=workdir,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert _status()["requests"] == 1
    assert (workdir / "rel" / "index.sqlite").exists()  # a relative path means the same

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(Paths.from_env().agent_socket))
        sock.sendall(wire.run_request(["agent", "stop"], tty=False, columns=None, cwd="/"))
        kind, reason = wire.FrameReader(sock).read() or (b"", b"")
    assert kind == wire.DECLINED
    assert b"only `exoimap sync`" in reason
    assert _status()["requests"] == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_stops_an_idle_agent_cleanly(
    signum: int, sandbox_tenant: SandboxTenant, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _start(capsys)
    paths = _signal_agent(signum)
    assert not paths.agent_socket.exists()
    assert "stopped after 0 requests" in control.log_file(paths).read_text()


def test_the_agent_drops_a_connection_from_another_user(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = server.Agent(Paths.from_env(), run=_never_run, idle_timeout=0)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with ours, theirs:
        theirs.sendall(wire.run_request(["sync"], tty=False, columns=None, cwd="/"))
        real_uid = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: real_uid + 4242)
        agent._answer(ours)  # the peer (this process) is "another user" now
        theirs.settimeout(2)
        try:
            answer = theirs.recv(100)
        except ConnectionResetError:  # closed with our request unread
            answer = b""
        assert answer == b""  # closed without an answer
    assert agent.status()["requests"] == 0
    assert agent._runs.empty()


def test_start_explains_a_socket_path_that_is_too_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    isolated_home(deep, monkeypatch)
    assert main(["agent", "start"]) == 1
    err = capsys.readouterr().err
    assert "the agent did not start" in err
    assert "longer than 107 bytes" in err
    assert "EXOIMAP_HOME" in err
    assert not control.is_running(Paths.from_env())
