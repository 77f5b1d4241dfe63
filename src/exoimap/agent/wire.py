"""What the ``exoimap`` command and the agent say to each other: small binary frames.

A frame is one kind byte, a 4-byte big-endian length, and that many bytes of payload.
Frames rather than JSON lines because this module is imported by every ``exoimap``
command before it knows whether the agent will run it, and :mod:`json` (with :mod:`re`)
and :mod:`socket` (with :mod:`enum` and :mod:`selectors`) cost about 20 ms to import on a
slow machine, a fifth of a no-change sync's budget. For the same reason the socket is
``_socket.socket``, the C type that :class:`socket.socket` only subclasses.

Client to agent, one frame: ``R`` (run: version, tty flag, terminal columns, working
directory, then the arguments, NUL-separated), ``K`` (``token print``: version, account,
format, JSON flag), ``S`` (status) or ``Q`` (stop), each carrying the version.

Agent to client: ``A`` (accepted) at once, or ``D`` (declined, with the reason; the client
then runs the command itself); after ``A``, any number of ``O`` (stdout) and ``E`` (stderr)
frames of UTF-8 text, then ``X`` with the exit code. ``S`` is answered with ``T`` (the
status as JSON) and ``Q`` with ``A``.

The agent reads tokens from its own vault, exactly as the command would. The only secret
that crosses the socket is the answer to ``K``, the token ``token print`` prints, and only
to a peer of the same user (``SO_PEERCRED``, a 0600 socket in a 0700 folder).
"""

from __future__ import annotations

import _socket
import os
import sys
from _socket import AF_UNIX, SOCK_STREAM
from _socket import socket as Socket  # noqa: N812 - a class, named as one

from exoimap.home import AGENT_SOCKET

__all__ = [
    "ACCEPT_TIMEOUT",
    "AF_UNIX",
    "MAX_FRAME",
    "MAX_SOCKET_PATH",
    "SOCK_STREAM",
    "VERSION",
    "FrameReader",
    "RunRequest",
    "Socket",
    "WireError",
    "frame",
    "peer_uid",
    "run_request",
    "parse_run_request",
    "parse_token_request",
    "peer_pid",
    "socket_path",
    "token_request",
]

VERSION = 1
#: How long a client waits for the agent to accept a request before running it itself.
ACCEPT_TIMEOUT = 10.0
#: The largest payload either side accepts (a request is small; output is sent in pieces).
MAX_FRAME = 1 << 20
# sockaddr_un.sun_path holds 108 bytes on Linux, including the final NUL.
MAX_SOCKET_PATH = 107

RUN, STATUS, STOP, TOKEN = b"R", b"S", b"Q", b"K"
ACCEPTED, DECLINED, STDOUT, STDERR, EXIT, STATUS_REPLY = b"A", b"D", b"O", b"E", b"X", b"T"


class WireError(Exception):
    """The other side broke the protocol, or went away in the middle of a frame."""


def socket_path(data_dir: str) -> str:
    return os.path.join(data_dir, AGENT_SOCKET)


def _peer_credentials(sock: Socket) -> bytes | None:
    """``struct ucred`` (pid, uid, gid) of the process at the other end (Linux), else None."""
    option = getattr(_socket, "SO_PEERCRED", None)
    if option is None:  # not Linux: the 0700 directory is the guard
        return None
    return sock.getsockopt(_socket.SOL_SOCKET, option, 12)


def peer_uid(sock: Socket) -> int | None:
    """The user id of the process at the other end of a Unix socket (Linux), else None.
    Both sides check it: neither talks to another user's process."""
    creds = _peer_credentials(sock)
    return None if creds is None else int.from_bytes(creds[4:8], sys.byteorder)


def peer_pid(sock: Socket) -> int | None:
    """The process id at the other end of a Unix socket (Linux), else None."""
    creds = _peer_credentials(sock)
    return None if creds is None else int.from_bytes(creds[0:4], sys.byteorder)


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_FRAME:
        raise WireError(f"a frame of {len(payload)} bytes (at most {MAX_FRAME})")
    return kind + len(payload).to_bytes(4, "big") + payload


def run_request(argv: list[str], *, tty: bool, columns: int | None, cwd: str) -> bytes:
    fields = [str(VERSION), "1" if tty else "0", str(columns or 0), cwd, *argv]
    return frame(RUN, b"\0".join(os.fsencode(f) for f in fields))


def token_request(name: str, *, fmt: str, as_json: bool) -> bytes:
    fields = [str(VERSION), name, fmt, "1" if as_json else "0"]
    return frame(TOKEN, b"\0".join(os.fsencode(f) for f in fields))


def parse_token_request(payload: bytes) -> tuple[str, str, bool]:
    """(account, format, JSON flag) of a token request; WireError if it is malformed."""
    fields = [os.fsdecode(f) for f in payload.split(b"\0")]
    if len(fields) != 4 or not fields[1] or fields[3] not in ("0", "1"):
        raise WireError("a malformed token request")
    return fields[1], fields[2], fields[3] == "1"


class RunRequest:
    """A parsed run request. (A plain class: NamedTuple would import typing, see above.)"""

    __slots__ = ("argv", "columns", "cwd", "tty", "version")

    def __init__(
        self, version: int, tty: bool, columns: int | None, cwd: str, argv: list[str]
    ) -> None:
        self.version = version
        self.tty = tty
        self.columns = columns
        #: The client's working directory: relative paths in the config mean the same there.
        self.cwd = cwd
        self.argv = argv


def parse_run_request(payload: bytes) -> RunRequest:
    """The fields of a run request; WireError if it is malformed."""
    fields = [os.fsdecode(f) for f in payload.split(b"\0")]
    if len(fields) < 4 or not fields[0].isdigit() or not fields[2].isdigit():
        raise WireError("a malformed run request")
    version, tty, columns, cwd, *argv = fields
    return RunRequest(int(version), tty == "1", int(columns) or None, cwd, argv)


class FrameReader:
    """Reads frames from a socket."""

    def __init__(self, sock: Socket) -> None:
        self._sock = sock
        self._buffer = b""

    def read(self) -> tuple[bytes, bytes] | None:
        """The next (kind, payload), or None at a clean end of stream (between frames)."""
        header = self._take(5, at_start=True)
        if header is None:
            return None
        length = int.from_bytes(header[1:], "big")
        if length > MAX_FRAME:
            raise WireError(f"a frame of {length} bytes (at most {MAX_FRAME})")
        payload = self._take(length, at_start=False)
        assert payload is not None
        return header[:1], payload

    def _take(self, count: int, *, at_start: bool) -> bytes | None:
        while len(self._buffer) < count:
            chunk = self._sock.recv(max(65536, count - len(self._buffer)))
            if not chunk:
                if at_start and not self._buffer:
                    return None
                raise WireError("the connection ended in the middle of a frame")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data
