"""Start, stop and ask after an agent (what ``exoimap agent start|stop|status`` do)."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from exoimap.agent import wire
from exoimap.errors import ExoimapError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from exoimap.config import Paths

__all__ = [
    "AgentError",
    "is_running",
    "log_file",
    "request_stop",
    "spawn",
    "status",
    "wait_stopped",
]

#: How long ``start`` waits for a new agent to answer.
START_TIMEOUT = 30.0


class AgentError(ExoimapError):
    """An agent could not be started or stopped."""


def log_file(paths: Paths) -> Path:
    return paths.log_dir / "agent.log"


def _ask(paths: Paths, request: bytes) -> tuple[bytes, bytes] | None:
    """Send one request and read one answer; None when no agent answers."""
    sock = wire.Socket(wire.AF_UNIX, wire.SOCK_STREAM)
    try:
        sock.settimeout(wire.ACCEPT_TIMEOUT)
        sock.connect(str(paths.agent_socket))
        sock.sendall(request)
        return wire.FrameReader(sock).read()
    except (OSError, wire.WireError):
        return None
    finally:
        sock.close()


def status(paths: Paths) -> dict[str, Any] | None:
    """The running agent's status, or None if no agent answers."""
    answer = _ask(paths, wire.frame(wire.STATUS, str(wire.VERSION).encode()))
    if answer is None or answer[0] != wire.STATUS_REPLY:
        return None
    value = json.loads(answer[1])
    return value if isinstance(value, dict) else None


def is_running(paths: Paths) -> bool:
    """Whether an agent holds this data directory's lock (alive, maybe not yet listening)."""
    lock = paths.agent_socket.parent / "agent.lock"
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock if we got it
    return False


def request_stop(paths: Paths) -> bool:
    """Ask the agent to stop after the command it is running; False if none answered."""
    answer = _ask(paths, wire.frame(wire.STOP, str(wire.VERSION).encode()))
    return answer is not None and answer[0] == wire.ACCEPTED


def wait_stopped(paths: Paths, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while is_running(paths):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


#: What systemd tells the main process of a service (see exoimap.app.sd_notify).
_SERVICE_MANAGER_VARIABLES = frozenset({"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})


def spawn(
    paths: Paths, *, idle_timeout: float, verbose: bool = True, options: Sequence[str] = ()
) -> dict[str, Any]:
    """Start an agent in its own session, wait until it answers, and return its status.

    Its stdout and stderr go to ``logs/agent.log`` (0600). It runs with this process's
    environment, which is the one every command it runs will see, less systemd's
    notification variables (a detached agent is no service's main process: it must not
    say READY or stop with its watch for one). ``options`` go on its ``agent serve``
    command line (``--watch NAME...``).
    """
    target = log_file(paths)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.chmod(target, 0o600)
    argv = [sys.executable, "-m", "exoimap", *(["-v"] if verbose else [])]
    argv += ["agent", "serve", "--idle-timeout", f"{idle_timeout:g}", *options]
    with os.fdopen(fd, "ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # not in the terminal's process group: Ctrl-C is not for it
            close_fds=True,
            env={k: v for k, v in os.environ.items() if k not in _SERVICE_MANAGER_VARIABLES},
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        answer = status(paths)
        if answer is not None and answer.get("pid") == process.pid:
            return answer
        if process.poll() is not None:
            raise AgentError(
                f"the agent did not start (exit code {process.returncode}):"
                f"{_tail(target)} (more in {target})"
            )
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    raise AgentError(f"the agent did not answer within {START_TIMEOUT:.0f} s; see {target}")


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "".join(f"\n  {line}" for line in text[-lines:])
