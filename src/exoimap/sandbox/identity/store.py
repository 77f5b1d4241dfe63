"""The directory on disk, shared live between the server and admin commands.

``<state>/directory.json`` (0600) is the single source of truth. Every change goes through
:meth:`DirectoryStore.transaction`, which takes a thread lock and an ``fcntl`` lock on
``directory.lock``, reloads the file if another process changed it, lets the caller mutate
the directory, and writes it back atomically. Readers call :meth:`DirectoryStore.current`,
which reloads only when the file's identity (inode, size, mtime) changed. So
``exoimap sandbox user add`` in one terminal takes effect on the running ``sandbox up`` in
another at its next request, with no admin port to protect.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from exoimap.sandbox.identity.model import Directory, directory_from_json, directory_to_json
from exoimap.sandbox.state import ensure_private_dir, read_json, write_private_bytes

__all__ = ["DIRECTORY_FILE", "DirectoryStore"]

DIRECTORY_FILE = "directory.json"
_LOCK_FILE = "directory.lock"


class DirectoryStore:
    """Loads, reloads and saves the directory of one state folder."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = ensure_private_dir(state_dir)
        self.path = state_dir / DIRECTORY_FILE
        self._lock = threading.RLock()
        self._stamp: tuple[int, int, int] | None = None
        self._directory = Directory()
        if self.path.exists():
            self._reload()
        else:
            with self.transaction():
                pass  # writes an empty directory

    # --- reading ----------------------------------------------------------------------------

    def current(self) -> Directory:
        """The directory as last saved by anyone (treat it as read-only)."""
        with self._lock:
            if self._file_stamp() != self._stamp:
                self._reload()
            return self._directory

    def now(self) -> float:
        """The sandbox clock: wall time plus the test clock offset."""
        return time.time() + self.current().settings.clock_offset

    # --- writing ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Directory]:
        """Mutate the directory under both locks and save it when the block succeeds."""
        with self._lock, self._file_lock():
            if self._file_stamp() != self._stamp:
                self._reload()
            directory = self._directory
            try:
                yield directory
                text = json.dumps(directory_to_json(directory), separators=(",", ":"))
                write_private_bytes(self.path, text.encode())
            except BaseException:
                self._stamp = (-1, -1, -1)  # drop the half-made change: reload next time
                raise
            self._stamp = self._file_stamp()

    # --- internals --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        fd = os.open(self.state_dir / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return (info.st_ino, info.st_size, info.st_mtime_ns)

    def _reload(self) -> None:
        stamp = self._file_stamp()
        if stamp is None:
            self._directory, self._stamp = Directory(), None
            return
        self._directory = directory_from_json(read_json(self.path))
        self._stamp = stamp
