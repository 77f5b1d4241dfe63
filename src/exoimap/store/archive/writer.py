"""Write message files on a background thread, so the event loop keeps reading the network.

The event loop hands over chunks; the thread opens, writes, hashes (SHA-256) and closes
the files, all of which release the GIL. The hand-over is in groups of operations (up to
:data:`GROUP_BYTES`): a queue put per chunk wakes the thread for every message and the two
threads then trade the GIL far more often than the work needs. For the same reason the
chunks of one file that arrive in one group are written with one ``write`` and hashed with
one ``update``: every call that releases the GIL lets the other thread take it, and a
message spanning several network reads arrives in as many chunks. Memory stays
bounded: when more than :data:`PENDING_LIMIT` bytes wait, the producer awaits until the
thread catches up. One writer serves one append batch (see
:mod:`exoimap.store.archive.append`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["GROUP_BYTES", "PENDING_LIMIT", "FileWriter"]

#: Bytes queued for the thread before the producer waits.
PENDING_LIMIT = 8 * 1024 * 1024
#: Bytes of chunks gathered before they are handed to the thread as one group.
GROUP_BYTES = 256 * 1024

Write = Callable[[int, bytes | memoryview], int]
_Operation = tuple[str, int, Any]


class FileWriter:
    """A thread that writes, hashes and closes files in the order they were handed over."""

    def __init__(self, write: Write) -> None:
        self._write = write
        self._queue: queue.SimpleQueue[list[_Operation] | None] = queue.SimpleQueue()
        # operations not handed over yet, and the bytes of chunks among them
        self._group: list[_Operation] = []
        self._group_bytes = 0
        # bytes handed over / bytes taken by the thread: each written by one side only,
        # so no lock is needed on the hot path
        self._queued = 0
        self._taken = 0
        self._next = 0
        self._paths: dict[int, str] = {}
        # the open files, touched by the thread only
        self._files: dict[int, tuple[int, Any]] = {}
        self.digests: dict[int, str] = {}
        #: The first OSError the thread met; every later operation is skipped.
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="exoimap-writer", daemon=True)
        self._thread.start()

    # --- producer side (the event loop) --------------------------------------------------

    def open(self, path: str) -> int:
        self._next += 1
        self._paths[self._next] = path
        self._group.append(("open", self._next, path))
        return self._next

    def write(self, token: int, chunk: bytes) -> None:
        self._queued += len(chunk)
        self._group.append(("data", token, chunk))
        self._group_bytes += len(chunk)
        if self._group_bytes >= GROUP_BYTES:
            self._hand_over()

    @property
    def congested(self) -> bool:
        return self._queued - self._taken > PENDING_LIMIT

    async def wait_for_room(self) -> None:
        self._hand_over()
        await asyncio.to_thread(self._wait_for_room)

    def close(self, token: int, mtime: int) -> None:
        self._group.append(("close", token, mtime))

    def discard(self, token: int) -> None:
        self._group.append(("discard", token, None))

    def finish(self) -> None:
        """Wait until everything handed over is written (blocking: call from a thread
        once the producer is done)."""
        self._hand_over()
        self._queue.put(None)
        self._thread.join()

    def _hand_over(self) -> None:
        if self._group:
            self._queue.put(self._group)
            self._group = []
            self._group_bytes = 0

    def remove_all(self) -> None:
        """After :meth:`finish`: delete every file this writer created."""
        for path in self._paths.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    # --- the thread -------------------------------------------------------------------------

    def _wait_for_room(self) -> None:
        while self._queued - self._taken > PENDING_LIMIT // 2 and self._thread.is_alive():
            time.sleep(0.002)

    def _run(self) -> None:
        handlers: dict[str, Callable[[int, Any], None]] = {
            "open": self._open_file,
            "data": self._write_data,
            "close": self._close_file,
            "discard": self._discard_file,
        }
        while (group := self._queue.get()) is not None:
            for kind, token, argument in _joined(group):
                if kind == "data":
                    self._taken += len(argument)
                if self.error is not None:
                    continue  # after a failure only the byte count matters (wait_for_room)
                try:
                    handlers[kind](token, argument)
                except OSError as exc:
                    self.error = exc
                    self._close_all()
        self._close_all()

    def _open_file(self, token: int, path: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._files[token] = (fd, hashlib.sha256())

    def _write_data(self, token: int, chunk: bytes) -> None:
        fd, digest = self._files[token]
        written = self._write(fd, chunk)
        if written != len(chunk):  # a short write: go on from where it stopped
            view = memoryview(chunk)[written:]
            while view:
                view = view[self._write(fd, view) :]
        digest.update(chunk)

    def _close_file(self, token: int, mtime: int) -> None:
        fd, digest = self._files.pop(token)
        try:
            os.utime(fd, (mtime, mtime))
        finally:
            os.close(fd)
        self.digests[token] = digest.hexdigest()

    def _discard_file(self, token: int, _unused: None) -> None:
        if token in self._files:
            os.close(self._files.pop(token)[0])
        os.unlink(self._paths[token])

    def _close_all(self) -> None:
        for fd, _digest in self._files.values():
            os.close(fd)
        self._files.clear()


def _joined(group: list[_Operation]) -> list[_Operation]:
    """``group`` with each run of data operations for the same file made one operation
    (its chunks joined: one copy of a few KB, against a GIL hand-over per call saved)."""
    out: list[_Operation] = []
    run: list[bytes] = []
    for operation in group:
        kind, token, argument = operation
        if kind == "data" and out and out[-1][0] == "data" and out[-1][1] == token:
            if not run:
                run.append(out[-1][2])
            run.append(argument)
            continue
        if run:
            out[-1] = ("data", out[-1][1], b"".join(run))
            run = []
        out.append(operation)
    if run:
        out[-1] = ("data", out[-1][1], b"".join(run))
    return out
