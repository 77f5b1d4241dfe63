"""Files only their owner may read: 0700 folders, and 0600 files replaced whole and durably
(the vault, the proxy's CA and app passwords, the sandbox's state)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["private_dir", "write_private"]


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) 0700, and make ``path`` itself 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def _new_temporary(path: Path) -> tuple[int, Path]:
    """A new file next to ``path``, 0600 and never an existing one. Not tempfile: importing it
    (and shutil and random with it) costs ~8 ms of every start."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, 0600 from the first byte. When this returns the new
    content survives a crash or a power cut (file and folder flushed); before, a reader
    finds the old content (or none), never a mix. Raises ``OSError`` (the caller says what
    failed). A missing folder is created 0700; an existing one is left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = _new_temporary(path)
    try:
        os.fchmod(fd, 0o600)  # exactly, whatever the umask
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
