"""Files only their owner may read: 0700 folders, and 0600 files replaced whole and durably
(the vault, the proxy's CA and app passwords, the sandbox's state)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["private_dir", "write_private"]


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) 0700, and make ``path`` itself 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``, 0600 from the first byte. When this returns the new
    content survives a crash or a power cut (file and folder flushed); before, a reader
    finds the old content (or none), never a mix. Raises ``OSError`` (the caller says what
    failed). A missing folder is created 0700; an existing one is left as it is."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
