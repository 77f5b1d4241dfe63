"""A minimal, independent IMAP reader for the comparison (not exoimap's client).

Two uses:

* :func:`snapshot`: every folder's messages as the server has them (UID, flags, SHA-256 of
  ``BODY[]`` and of its normalised form), the reference the results are checked against;
* the *limit*: ``python -m bench.bench_raw --port P --ca F --user U --password W`` sends
  EXAMINE + ``UID FETCH 1:* (BODY.PEEK[])`` for every folder in one pipelined write and
  reads the replies to nowhere (``recv_into`` a reused buffer). It is what the server, TLS
  and the machine can do with no parsing and no storing; the harness runs it under
  ``/usr/bin/time -v`` like the tools;
* the *storing limit* (``--store DIR``): the same pipelined fetch, each message written to a
  file of its own and the file system flushed once at the end (``syncfs``). It is the least
  any tool keeping one file per message (Maildir) must add to the limit: no index, no
  hashing, no flags, no per-batch flushes.
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import os
import re
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServerMessage", "folder_counts", "list_folders", "normalise", "snapshot"]

_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")
_LIST = re.compile(rb'^\* LIST \(([^)]*)\) (?:"[^"]*"|NIL) (.*)\r\n$')
_UID = re.compile(rb"UID (\d+)")
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_TUID = re.compile(rb"^X-TUID: [^\n]*\n", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class ServerMessage:
    uid: int
    flags: frozenset[str]
    sha256: str
    #: SHA-256 after CRLF -> LF and without an X-TUID header (how mbsync stores mail)
    norm_sha256: str
    size: int


def normalise(data: bytes) -> bytes:
    """The form peers may store: LF line ends, no X-TUID header line."""
    text = data.replace(b"\r\n", b"\n")
    head, sep, body = text.partition(b"\n\n")
    return _TUID.sub(b"", head + b"\n", count=1)[:-1] + sep + body if b"X-TUID" in head else text


class _Conn:
    def __init__(self, port: int, ca_file: Path, user: str, password: str) -> None:
        ctx = ssl.create_default_context(cafile=str(ca_file))
        raw = socket.create_connection(("127.0.0.1", port))
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.file = self.sock.makefile("rb", buffering=1 << 20)
        self.tag = 0
        self.file.readline()
        self.command(f"LOGIN {_quote(user)} {_quote(password)}".encode())

    def command(self, text: bytes) -> list[tuple[bytes, bytes | None]]:
        """Run one command; returns its untagged lines, each with its literal (if any)."""
        self.tag += 1
        tag = b"t%d" % self.tag
        self.sock.sendall(tag + b" " + text + b"\r\n")
        out: list[tuple[bytes, bytes | None]] = []
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1 :].startswith(b"OK"):
                    raise RuntimeError(f"{text[:40]!r} failed: {line!r}")
                return out
            literal = None
            match = _LITERAL.search(line)
            if match:
                literal = self.file.read(int(match.group(1)))
                line += self.file.readline()
            out.append((line, literal))

    def close(self) -> None:
        try:
            self.sock.sendall(b"z LOGOUT\r\n")
        finally:
            self.sock.close()


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _folders(conn: _Conn) -> list[str]:
    names = []
    for line, literal in conn.command(b'LIST "" "*"'):
        match = _LIST.match(line) if literal is None else None
        if literal is not None:
            attrs, name = b"", literal
        elif match:
            attrs, name = match.group(1), match.group(2)
            if name.startswith(b'"'):
                name = name[1:-1].replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        else:
            continue
        if b"\\noselect" not in attrs.lower():
            names.append(name.decode("ascii"))
    return names


def list_folders(port: int, ca_file: Path, user: str, password: str) -> list[str]:
    """Selectable folder names (modified UTF-7, as the server sends them)."""
    conn = _Conn(port, ca_file, user, password)
    try:
        return _folders(conn)
    finally:
        conn.close()


def snapshot(
    port: int, ca_file: Path, user: str, password: str
) -> dict[str, dict[int, ServerMessage]]:
    """Every selectable folder's messages, keyed by folder name (modified UTF-7) and UID."""
    conn = _Conn(port, ca_file, user, password)
    result: dict[str, dict[int, ServerMessage]] = {}
    try:
        for name in _folders(conn):
            conn.command(b"EXAMINE " + _quote(name).encode())
            box: dict[int, ServerMessage] = {}
            for line, literal in conn.command(b"UID FETCH 1:* (UID FLAGS BODY.PEEK[])"):
                uid, flags = _UID.search(line), _FLAGS.search(line)
                if uid is None or flags is None or literal is None:
                    continue
                names = frozenset(flags.group(1).decode().split()) - {"\\Recent"}
                box[int(uid.group(1))] = ServerMessage(
                    uid=int(uid.group(1)),
                    flags=names,
                    sha256=hashlib.sha256(literal).hexdigest(),
                    norm_sha256=hashlib.sha256(normalise(literal)).hexdigest(),
                    size=len(literal),
                )
            result[name] = box
    finally:
        conn.close()
    return result


def folder_counts(
    port: int, ca_file: Path, user: str, password: str, items: bytes = b"UID FLAGS"
) -> dict[str, int]:
    """Messages per selectable folder (modified UTF-7 names), counted from the replies to
    ``UID FETCH 1:* (items)``: the fetch also makes Dovecot index every folder and cache
    those items (a warm-up that costs no message bodies)."""
    conn = _Conn(port, ca_file, user, password)
    counts: dict[str, int] = {}
    try:
        for name in _folders(conn):
            conn.command(b"EXAMINE " + _quote(name).encode())
            replies = conn.command(b"UID FETCH 1:* (" + items + b")")
            counts[name] = sum(1 for line, _literal in replies if b" FETCH " in line)
    finally:
        conn.close()
    return counts


def limit_fetch(port: int, ca_file: Path, user: str, password: str) -> int:
    """Pipelined fetch of every folder's BODY[] to nowhere; returns bytes received."""
    conn = _Conn(port, ca_file, user, password)
    names = _folders(conn)
    batch = b"".join(
        b"x%d EXAMINE %s\r\ny%d UID FETCH 1:* (BODY.PEEK[])\r\n" % (i, _quote(n).encode(), i)
        for i, n in enumerate(names)
    )
    last = b"\r\ny%d OK" % (len(names) - 1)
    conn.sock.sendall(batch)
    # drain what the buffered reader already holds, then read raw
    buf = bytearray(1 << 18)
    view = memoryview(buf)
    tail = b""
    total = 0
    while True:
        n = conn.sock.recv_into(buf)
        if n == 0:
            raise ConnectionError("server closed the connection")
        total += n
        window = tail + bytes(view[max(0, n - 4096) : n])
        if window.find(last) >= 0:
            break
        tail = window[-64:]
    conn.close()
    return total


def store_fetch(port: int, ca_file: Path, user: str, password: str, into: Path) -> int:
    """The pipelined fetch of :func:`limit_fetch`, each ``BODY[]`` written to a file of its
    own under ``into`` (a directory per folder), then one flush of the file system; returns
    the bytes stored."""
    conn = _Conn(port, ca_file, user, password)
    names = _folders(conn)
    conn.sock.sendall(
        b"".join(
            b"x%d EXAMINE %s\r\ny%d UID FETCH 1:* (BODY.PEEK[])\r\n" % (i, _quote(n).encode(), i)
            for i, n in enumerate(names)
        )
    )
    total = 0
    for i in range(len(names)):
        folder = into / str(i)
        folder.mkdir(parents=True)
        done = b"y%d " % i
        count = 0
        while not (line := conn.file.readline()).startswith(done):
            match = _LITERAL.search(line)
            if match is None:
                continue
            body = conn.file.read(int(match.group(1)))
            count += 1
            fd = os.open(folder / str(count), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            total += len(body)
    _flush_file_system(into)
    conn.close()
    return total


def _flush_file_system(path: Path) -> None:
    """``syncfs(2)`` on the file system holding ``path`` (``sync(2)`` where libc lacks it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "syncfs"):
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syncfs(fd) != 0:
            raise OSError(ctypes.get_errno(), "syncfs failed")
    finally:
        os.close(fd)


def main() -> None:
    parser = argparse.ArgumentParser(description="pipelined raw fetch to nowhere (the limit)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", type=Path, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument(
        "--store",
        type=Path,
        default=None,
        help="write each message to a file under this new directory",
    )
    args = parser.parse_args()
    if args.store is None:
        total = limit_fetch(args.port, args.ca, args.user, args.password)
        print(f"received {total} bytes")
    else:
        total = store_fetch(args.port, args.ca, args.user, args.password, args.store)
        print(f"stored {total} bytes")


if __name__ == "__main__":
    sys.exit(main())
