"""Maildir++ naming and durable file primitives for the archive.

Folder names
    The archive's folder names use ``/`` as the hierarchy delimiter. On disk, INBOX is the
    Maildir root (``cur/ new/ tmp/``) and every other folder is a directory ``.A.B.C`` in
    the root (Maildir++), each with an empty ``maildirfolder`` file. Each name segment is
    encoded in IMAP modified UTF-7 (RFC 3501 section 5.1.3), which is what Dovecot uses by
    default for Maildir++, with one addition: ``.`` inside a segment (it would read as a
    hierarchy separator) is written in its base64 form ``&AC4-``. Any modified UTF-7
    decoder (Dovecot, mutt, this module) reads that back as ``.``, so names round-trip.

Message files
    ``<internal date epoch>.A<uidvalidity>U<uid>.exoimap,S=<size>:2,<flags>`` in ``cur/``.
    The part before ``:2,`` (the *base*) never changes; flags live after ``:2,`` as Maildir
    letters (D draft, F flagged, P passed = $Forwarded, R replied, S seen, T trashed =
    \\Deleted). Other keywords live in the index only. The base records the archive
    UIDVALIDITY and UID so an index can be rebuilt from the files alone.

Durability
    :func:`fsync_paths` flushes many files at once (``syncfs(2)`` on Linux when asked for,
    otherwise ``fsync`` from a small thread pool), :func:`fsync_dir` makes renames durable,
    :func:`atomic_write` is write-new + fsync + rename + fsync(dir).
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import errno
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from exoimap.errors import DiskFull, StoreError

__all__ = [
    "FLAG_LETTERS",
    "atomic_write",
    "decode_folder_dir",
    "encode_folder_dir",
    "file_base",
    "flags_from_letters",
    "fsync_dir",
    "fsync_paths",
    "letters_for",
    "map_os_error",
    "parse_base",
]

DELIMITER = "/"

#: Maildir info letters for IMAP flags (the letters must appear in ASCII order).
FLAG_LETTERS: dict[str, str] = {
    "\\Draft": "D",
    "\\Flagged": "F",
    "$Forwarded": "P",
    "\\Answered": "R",
    "\\Seen": "S",
    "\\Deleted": "T",
}
_LETTER_FLAGS = {letter: flag for flag, letter in FLAG_LETTERS.items()}


# --- modified UTF-7 ----------------------------------------------------------------------


def _b64_utf16(text: str) -> str:
    raw = base64.b64encode(text.encode("utf-16-be")).decode("ascii")
    return "&" + raw.rstrip("=").replace("/", ",") + "-"


def _encode_segment(segment: str) -> str:
    out: list[str] = []
    pending: list[str] = []
    for char in segment:
        if 0x20 <= ord(char) <= 0x7E and char != ".":
            if pending:
                out.append(_b64_utf16("".join(pending)))
                pending.clear()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    if pending:
        out.append(_b64_utf16("".join(pending)))
    return "".join(out)


def _decode_segment(encoded: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(encoded):
        char = encoded[index]
        if char != "&":
            out.append(char)
            index += 1
            continue
        end = encoded.find("-", index)
        if end < 0:
            raise StoreError(f"bad modified UTF-7 in folder directory {encoded!r}")
        chunk = encoded[index + 1 : end]
        if not chunk:
            out.append("&")
        else:
            padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
            try:
                out.append(base64.b64decode(padded).decode("utf-16-be"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise StoreError(f"bad modified UTF-7 in folder directory {encoded!r}") from exc
        index = end + 1
    return "".join(out)


def encode_folder_dir(name: str) -> str:
    """The Maildir++ directory (relative to the root) of folder ``name``; ``""`` is INBOX."""
    if name.upper() == "INBOX":
        return ""
    segments = name.split(DELIMITER)
    if any(not s for s in segments):
        raise StoreError(f"invalid folder name {name!r}: empty segment")
    return "." + ".".join(_encode_segment(s) for s in segments)


def decode_folder_dir(dirname: str) -> str:
    """Inverse of :func:`encode_folder_dir`."""
    if dirname == "":
        return "INBOX"
    if not dirname.startswith("."):
        raise StoreError(f"{dirname!r} is not a Maildir++ folder directory")
    return DELIMITER.join(_decode_segment(s) for s in dirname[1:].split("."))


# --- message file names ------------------------------------------------------------------

_BASE_RE = re.compile(r"^(\d+)\.A(\d+)U(\d+)\.exoimap,S=(\d+)$")


def file_base(date_epoch: int, uidvalidity: int, uid: int, size: int) -> str:
    return f"{date_epoch}.A{uidvalidity}U{uid}.exoimap,S={size}"


def parse_base(base: str) -> tuple[int, int, int, int] | None:
    """``(date_epoch, uidvalidity, uid, size)`` from a base written by :func:`file_base`."""
    match = _BASE_RE.match(base)
    if match is None:
        return None
    date, uidvalidity, uid, size = (int(g) for g in match.groups())
    return date, uidvalidity, uid, size


def letters_for(flags: Iterable[str]) -> str:
    return "".join(sorted(FLAG_LETTERS[f] for f in flags if f in FLAG_LETTERS))


def flags_from_letters(letters: str) -> frozenset[str]:
    return frozenset(_LETTER_FLAGS[c] for c in letters if c in _LETTER_FLAGS)


def split_name(filename: str) -> tuple[str, str]:
    """``(base, letters)`` of a Maildir file name."""
    base, sep, info = filename.partition(":2,")
    return base, info if sep else ""


# --- durability --------------------------------------------------------------------------


def map_os_error(exc: OSError, what: str, *, folder: str | None = None) -> StoreError:
    """Map an OSError to the most specific store error."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(
            f"no space left on the device while {what}; everything stored before is intact. "
            "Free some space and run again.",
            folder=folder,
        )
    return StoreError(f"{what} failed: {exc.strerror or exc}", folder=folder)


_libc: ctypes.CDLL | None = None


def _syncfs(fd: int) -> bool:
    global _libc  # noqa: PLW0603 - loaded once, lazily
    if not hasattr(os, "sched_getaffinity"):  # not Linux
        return False
    if _libc is None:
        name = ctypes.util.find_library("c")
        if name is None:
            return False
        _libc = ctypes.CDLL(name, use_errno=True)
    syncfs = getattr(_libc, "syncfs", None)
    if syncfs is None:
        return False
    if syncfs(fd) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return True


_pool: tuple[int, ThreadPoolExecutor] | None = None


def _executor() -> ThreadPoolExecutor:
    """A per-process pool (a forked child must not use its parent's dead threads)."""
    global _pool  # noqa: PLW0603 - one pool per process, created lazily
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(max_workers=8, thread_name_prefix="fsync"))
    return _pool[1]


def _fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_paths(paths: Sequence[str | Path], *, mode: str = "pool") -> None:
    """Make the contents of ``paths`` durable: ``syncfs`` once, or ``fsync`` each."""
    if not paths or mode == "none":
        return
    if mode == "syncfs":
        fd = os.open(os.path.dirname(paths[0]), os.O_RDONLY)
        try:
            if _syncfs(fd):
                return
        finally:
            os.close(fd)
    if mode == "serial" or len(paths) < 4:
        for path in paths:
            _fsync_file(path)
        return
    for _ in _executor().map(_fsync_file, paths):
        pass


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old or the new content.

    ``durable=False`` skips the fsyncs: still atomic for a killed process, not for power loss.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)
