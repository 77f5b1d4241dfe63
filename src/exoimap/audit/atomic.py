"""Replacing a small file whole (the checkpoint, the anchor): write a new one (0600),
fsync it, rename it over the old, so a reader sees the old or the new, never a mix."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["replace_file"]


def replace_file(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``; raises ``OSError`` (the caller says what failed).

    No directory fsync: if a crash loses the rename, the old file stays, and both the
    checkpoint and the anchor may lag behind the records (verify accepts newer records by
    their MACs)."""
    temp = path.with_name(f"{path.name}.new")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
