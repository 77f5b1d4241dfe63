"""The ``exoimap`` command's side: hand a ``sync`` or a ``token print`` to a running agent,
relay what it prints.

:func:`forward` is called before the CLI is imported. It returns None, and the command
runs in its own process as always, whenever the agent cannot take the request: no agent,
a stale socket, a busy or outdated agent, an agent that does not answer in time,
``--no-agent``, or a ``token print`` whose arguments or terminal the CLI must judge.
Once the agent has accepted, its output and exit code are the command's.
"""

from __future__ import annotations

import os
import sys
from _socket import SHUT_WR

from exoimap.agent import wire
from exoimap.home import home_dirs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["GLOBAL_FLAGS", "forward", "served_by_agent", "token_print_request"]

#: Root options that may come before ``sync`` and still let the agent run it.
GLOBAL_FLAGS = frozenset({"-v", "-vv", "-vvv", "--verbose", "-q", "--quiet"})
#: After an interrupt, how long to wait for the agent to report how the command ended.
INTERRUPT_GRACE = 30.0
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130

# Declines that need no word to the user: the command simply runs here instead.
_QUIET_DECLINES = (b"busy",)


def served_by_agent(argv: list[str]) -> bool:
    """Whether this command line is one the agent runs: ``sync``, unless ``--no-agent``."""
    rest = list(argv)
    while rest and rest[0] in GLOBAL_FLAGS:
        rest.pop(0)
    return bool(rest) and rest[0] == "sync" and "--no-agent" not in rest


def token_print_request(argv: list[str]) -> tuple[str, str, bool, bool] | None:
    """``(account, format, json, force)`` when ARGV is a ``token print`` the agent may
    answer; None for anything else, which the CLI parses (and judges) itself."""
    rest = list(argv)
    while rest and rest[0] in GLOBAL_FLAGS:
        rest.pop(0)
    if rest[:2] != ["token", "print"]:
        return None
    name, fmt, as_json, force = None, "token", False, False
    args = iter(rest[2:])
    for arg in args:
        if arg == "--json":
            as_json = True
        elif arg == "--force":
            force = True
        elif arg == "--format":
            fmt = next(args, "")
        elif arg.startswith("--format="):
            fmt = arg.partition("=")[2]
        elif arg.startswith("-") or name is not None:  # --no-agent, --help, a mistake
            return None
        else:
            name = arg
    if name is None or fmt not in ("token", "xoauth2"):
        return None
    return name, fmt, as_json, force


def _request(argv: list[str], out: TextIO) -> bytes | None:
    """The request to send for ARGV, or None when the agent does not serve it."""
    token = token_print_request(argv)
    if token is not None:
        name, fmt, as_json, force = token
        if not force and _terminal(out)[0]:
            return None  # the CLI refuses it with its own message
        return wire.token_request(name, fmt=fmt, as_json=as_json)
    if not served_by_agent(argv):
        return None
    tty, columns = _terminal(out)
    return wire.run_request(argv, tty=tty, columns=columns, cwd=os.getcwd())


def forward(
    argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int | None:
    """Run ``exoimap ARGV`` in the agent and return its exit code; None if it did not run."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    request = _request(argv, out)
    if request is None:
        return None
    sock = wire.Socket(wire.AF_UNIX, wire.SOCK_STREAM)
    try:
        sock.settimeout(wire.ACCEPT_TIMEOUT)
        sock.connect(wire.socket_path(home_dirs()[1]))
        owner = wire.peer_uid(sock)
        if owner is not None and owner != os.getuid():
            print(f"exoimap: not using the agent socket: it belongs to uid {owner}", file=err)
            sock.close()
            return None
        sock.sendall(request)
        reader = wire.FrameReader(sock)
        answer = reader.read()
    except (OSError, wire.WireError):  # no agent, a stale socket, or one that does not answer
        sock.close()
        return None
    if answer is None or answer[0] != wire.ACCEPTED:
        sock.close()
        if answer is not None and answer[0] == wire.DECLINED and answer[1] not in _QUIET_DECLINES:
            reason = answer[1].decode(errors="replace")
            print(f"exoimap: not using the agent: {reason}", file=err)
        return None
    try:
        sock.settimeout(None)
        return _relay(sock, reader, out, err)
    finally:
        sock.close()


def _terminal(out: TextIO) -> tuple[bool, int | None]:
    try:
        if not out.isatty():
            return False, None
        return True, os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError):
        return False, None


def _relay(sock: wire.Socket, reader: wire.FrameReader, out: TextIO, err: TextIO) -> int:
    interrupted = False
    while True:
        detail = ""
        try:
            message = reader.read()
        except KeyboardInterrupt:
            if interrupted:  # a second Ctrl-C: stop waiting for the agent's last words
                print("exoimap: interrupted.", file=err)
                return EXIT_INTERRUPTED
            # Half-close: the agent sees the request end and interrupts the command as
            # Ctrl-C would in its own process; what it prints about that still comes here.
            interrupted = True
            sock.shutdown(SHUT_WR)
            sock.settimeout(INTERRUPT_GRACE)
            continue
        except (OSError, wire.WireError) as exc:
            message, detail = None, f" ({exc})"
        if message is None:
            print(
                "exoimap: error: the agent stopped before the command finished"
                f"{detail}; see logs/agent.log in the data directory",
                file=err,
            )
            return EXIT_INTERRUPTED if interrupted else EXIT_FAILURE
        kind, payload = message
        if kind == wire.EXIT:
            return int(payload) if payload.isdigit() else EXIT_FAILURE
        if kind in (wire.STDOUT, wire.STDERR):
            _write(out if kind == wire.STDOUT else err, payload)


def _write(stream: TextIO, data: bytes) -> None:
    try:
        buffer = getattr(stream, "buffer", None)
        if buffer is not None:  # the bytes as the agent wrote them, whatever our locale
            stream.flush()
            buffer.write(data)
            buffer.flush()
        else:
            stream.write(data.decode(errors="replace"))
            stream.flush()
    except (OSError, ValueError):  # our reader went away (`exoimap sync | head -1`)
        pass  # as in its own process: the sync goes on, the exit code still comes
